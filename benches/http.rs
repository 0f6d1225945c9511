//! Records per second over HTTP: large NDJSON `_data` bodies for `mean(value)` (one series and
//! 10,000 by-field series) posted to an in-process server on a loopback port, each answered only
//! once durable.
//!
//! Run: `cargo bench --bench http`

use std::sync::Arc;

use auspex::api::AppState;
use auspex::config::Config;
use auspex::job::JobManager;
use auspex::security::Security;
use auspex::store::Store;
use clap::Parser;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const RECORDS_PER_BODY: usize = 100_000;
const START_MS: i64 = 1_700_000_000_000;

fn body(start_ms: i64, records: usize, series: usize) -> String {
    let mut out = String::with_capacity(records * 60);
    for i in 0..records {
        let value = 100.0 + ((i * 7919) % 1000) as f64 / 100.0;
        let time = start_ms + (i as i64) * 10;
        if series > 1 {
            out.push_str(&format!(
                "{{\"time\":{time},\"host\":\"host-{}\",\"value\":{value}}}\n",
                i % series
            ));
        } else {
            out.push_str(&format!("{{\"time\":{time},\"value\":{value}}}\n"));
        }
    }
    out
}

fn over_http(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let base = runtime.block_on(async {
        let store = Store::open(&dir.path().join("store")).expect("store");
        let security = Arc::new(Security::new(store.clone(), false).expect("security"));
        let jobs = JobManager::start(store).await.expect("manager");
        let config = Config::parse_from(["auspex", "--listen", "127.0.0.1:0", "--no-security"]);
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let state = Arc::new(AppState {
            config,
            jobs,
            security,
        });
        tokio::spawn(auspex::server::run(
            listener,
            state,
            std::future::pending::<()>(),
        ));
        format!("http://{address}")
    });
    let client = reqwest::Client::new();
    let mut group = c.benchmark_group("http");
    group.sample_size(10);
    group.throughput(Throughput::Elements(RECORDS_PER_BODY as u64));
    for series in [1usize, 10_000] {
        let job = format!("http-{series}");
        let detector = if series > 1 {
            serde_json::json!({"function": "mean", "field_name": "value", "by_field_name": "host"})
        } else {
            serde_json::json!({"function": "mean", "field_name": "value"})
        };
        runtime.block_on(async {
            let config = serde_json::json!({
                "analysis_config": {"bucket_span": "5m", "detectors": [detector]},
                "data_description": {"time_field": "time", "time_format": "epoch_ms"}
            });
            let url = format!("{base}/_ml/anomaly_detectors/{job}");
            client.put(&url).json(&config).send().await.expect("put");
            client
                .post(format!("{url}/_open"))
                .send()
                .await
                .expect("open");
        });
        let mut next_start = START_MS;
        group.bench_function(format!("post_data_mean_{series}_series"), |b| {
            b.iter_custom(|iterations| {
                let bodies: Vec<String> = (0..iterations)
                    .map(|_| {
                        let text = body(next_start, RECORDS_PER_BODY, series);
                        next_start += RECORDS_PER_BODY as i64 * 10;
                        text
                    })
                    .collect();
                let url = format!("{base}/_ml/anomaly_detectors/{job}/_data");
                runtime.block_on(async {
                    let started = std::time::Instant::now();
                    for text in bodies {
                        let answer = client
                            .post(&url)
                            .header("content-type", "application/x-ndjson")
                            .body(text)
                            .send()
                            .await
                            .expect("post");
                        assert!(
                            answer.status().is_success(),
                            "post failed: {}",
                            answer.status()
                        );
                    }
                    started.elapsed()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, over_http);
criterion_main!(benches);
