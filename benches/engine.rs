//! The job engine without HTTP: flush latency (nothing pending; 10,000 series), close and open time
//! against the number of series, and the bytes of model state per series (printed once).
//!
//! Run: `cargo bench --bench engine`

use std::sync::Arc;
use std::time::{Duration, Instant};

use auspex::job::{FlushParams, JobManager};
use auspex::store::Store;
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use tokio::runtime::Runtime;

const START_MS: i64 = 1_700_000_000_000;
const BUCKET_SPAN_MS: i64 = 300_000;

struct Engine {
    runtime: Runtime,
    jobs: Arc<JobManager>,
    _dir: tempfile::TempDir,
}

fn engine() -> Engine {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&dir.path().join("store")).expect("store");
    let jobs = runtime.block_on(JobManager::start(store)).expect("manager");
    Engine {
        runtime,
        jobs,
        _dir: dir,
    }
}

/// Creates and opens `job_id` with `mean(value) by host`, then posts one bucket of data for
/// `series` hosts and finalizes it, so the model holds `series` series.
fn job_with_series(engine: &Engine, job_id: &str, series: usize) {
    let config = serde_json::json!({
        "analysis_config": {"bucket_span": "5m", "detectors": [
            {"function": "mean", "field_name": "value", "by_field_name": "host"}]},
        "data_description": {"time_field": "time", "time_format": "epoch_ms"}
    });
    engine.runtime.block_on(async {
        engine
            .jobs
            .put_job(job_id, config.to_string().as_bytes())
            .await
            .expect("put job");
        engine.jobs.open_job(job_id).await.expect("open");
        for bucket in 0..3 {
            let mut body = String::with_capacity(series * 50);
            for host in 0..series {
                let time = START_MS + bucket * BUCKET_SPAN_MS + host as i64 % BUCKET_SPAN_MS;
                body.push_str(&format!(
                    "{{\"time\":{time},\"host\":\"host-{host}\",\"value\":{}}}\n",
                    100 + host % 7
                ));
            }
            engine
                .jobs
                .post_data(job_id, Bytes::from(body))
                .await
                .expect("post");
        }
        engine
            .jobs
            .flush(
                job_id,
                FlushParams {
                    advance_time: Some(START_MS + 3 * BUCKET_SPAN_MS),
                    ..FlushParams::default()
                },
            )
            .await
            .expect("flush");
    });
}

fn flush_latency(c: &mut Criterion) {
    let engine = engine();
    job_with_series(&engine, "flush-1", 1);
    job_with_series(&engine, "flush-10000", 10_000);
    let mut group = c.benchmark_group("flush");
    for job in ["flush-1", "flush-10000"] {
        group.bench_function(format!("{job}_nothing_pending"), |b| {
            b.iter(|| {
                engine
                    .runtime
                    .block_on(engine.jobs.flush(job, FlushParams::default()))
                    .expect("flush")
            })
        });
    }
    group.finish();
}

fn close_and_open(c: &mut Criterion) {
    let mut group = c.benchmark_group("close_open");
    group.sample_size(10);
    for series in [1_000usize, 10_000, 100_000] {
        let engine = engine();
        let job = format!("series-{series}");
        job_with_series(&engine, &job, series);
        group.bench_function(format!("close_{series}_series"), |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let started = Instant::now();
                    engine
                        .runtime
                        .block_on(engine.jobs.close_jobs(&job, false, false))
                        .expect("close");
                    total += started.elapsed();
                    engine
                        .runtime
                        .block_on(engine.jobs.open_job(&job))
                        .expect("open");
                }
                total
            })
        });
        group.bench_function(format!("open_{series}_series"), |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    engine
                        .runtime
                        .block_on(engine.jobs.close_jobs(&job, false, false))
                        .expect("close");
                    let started = Instant::now();
                    engine
                        .runtime
                        .block_on(engine.jobs.open_job(&job))
                        .expect("open");
                    total += started.elapsed();
                }
                total
            })
        });
        report_state_size(&engine, &job, series);
    }
    group.finish();
}

/// Prints the snapshot size per series (criterion has no unit for bytes).
fn report_state_size(engine: &Engine, job: &str, series: usize) {
    engine
        .runtime
        .block_on(engine.jobs.close_jobs(job, false, false))
        .expect("close");
    let store = engine.jobs.store();
    let snapshots = store.list_snapshots(job).expect("snapshots");
    if let Some(latest) = snapshots.iter().max_by_key(|s| s.timestamp_ms) {
        let bytes = store
            .get_snapshot_state(job, &latest.snapshot_id)
            .expect("state")
            .len();
        eprintln!(
            "model state: {series} series -> {bytes} bytes, {:.0} bytes per series",
            bytes as f64 / series as f64
        );
    }
    engine
        .runtime
        .block_on(engine.jobs.open_job(job))
        .expect("open");
}

/// A flush that finalizes one bucket of 10,000 series each time: one bucket of data is posted
/// (not timed), then `advance_time` moves past it (timed). Prints the p50/p99 criterion does not.
fn flush_finalizing_10000_series(c: &mut Criterion) {
    let engine = engine();
    let job = "finalize-10000";
    let series = 10_000usize;
    job_with_series(&engine, job, series);
    let mut next_bucket = 3i64;
    let mut samples = Vec::new();
    let mut group = c.benchmark_group("flush");
    group.sample_size(30);
    group.bench_function("flush_advance_one_bucket_10000_series", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let bucket_start = START_MS + next_bucket * BUCKET_SPAN_MS;
                let mut body = String::with_capacity(series * 50);
                for host in 0..series {
                    body.push_str(&format!(
                        "{{\"time\":{},\"host\":\"host-{host}\",\"value\":{}}}\n",
                        bucket_start + host as i64,
                        100 + host % 7
                    ));
                }
                engine
                    .runtime
                    .block_on(engine.jobs.post_data(job, Bytes::from(body)))
                    .expect("post");
                next_bucket += 1;
                let params = FlushParams {
                    advance_time: Some(START_MS + next_bucket * BUCKET_SPAN_MS),
                    ..FlushParams::default()
                };
                let started = Instant::now();
                engine
                    .runtime
                    .block_on(engine.jobs.flush(job, params))
                    .expect("flush");
                let elapsed = started.elapsed();
                samples.push(elapsed);
                total += elapsed;
            }
            total
        })
    });
    group.finish();
    samples.sort();
    if !samples.is_empty() {
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
        eprintln!(
            "flush finalizing 10,000 series: p50 {:?}, p99 {:?} over {} flushes",
            at(0.5),
            at(0.99),
            samples.len()
        );
    }
}

criterion_group!(
    benches,
    flush_latency,
    flush_finalizing_10000_series,
    close_and_open
);
criterion_main!(benches);
