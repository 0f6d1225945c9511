//! Throughput of the job pipeline (parsing included, no HTTP, no store) for `mean(value)` with one
//! series and with 10,000 by-field series, and the bytes of model state per series.
//!
//! Run: `cargo bench --bench pipeline`

use std::sync::Arc;

use auspex::engine::pipeline::{InputEntry, Pipeline};
use auspex::ingest::{DataDescription, RecordReader};
use auspex::model::AnalysisConfig;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

/// Records per `_data` body in the benchmarks: a large body, as bulk loaders send.
const RECORDS_PER_BODY: usize = 100_000;
const BUCKET_SPAN_MS: i64 = 300_000;

fn analysis(by_field: bool) -> AnalysisConfig {
    let detector = if by_field {
        serde_json::json!({"function": "mean", "field_name": "value", "by_field_name": "host"})
    } else {
        serde_json::json!({"function": "mean", "field_name": "value"})
    };
    serde_json::from_value(serde_json::json!({"bucket_span": "5m", "detectors": [detector]}))
        .expect("valid analysis config")
}

fn pipeline(analysis: &AnalysisConfig) -> Pipeline {
    let reader = RecordReader::new(&DataDescription::default(), &analysis.analysis_fields())
        .expect("valid reader");
    Pipeline::new(analysis, Arc::new(reader))
}

/// NDJSON records `step_ms` apart starting at `start_ms`, spread over `series` hosts.
fn body(start_ms: i64, records: usize, series: usize, step_ms: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(records * 60);
    for i in 0..records {
        let value = 100.0 + ((i * 7919) % 1000) as f64 / 100.0;
        if series > 1 {
            out.extend_from_slice(
                format!(
                    "{{\"time\":{},\"host\":\"host-{}\",\"value\":{value}}}\n",
                    start_ms + i as i64 * step_ms,
                    i % series
                )
                .as_bytes(),
            );
        } else {
            out.extend_from_slice(
                format!(
                    "{{\"time\":{},\"value\":{value}}}\n",
                    start_ms + i as i64 * 1000
                )
                .as_bytes(),
            );
        }
    }
    out
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(RECORDS_PER_BODY as u64));
    group.sample_size(20);
    // One series: a record a second (300 a bucket). 10,000 series: each body spans two buckets,
    // so every series has about 5 records a bucket and each body finalizes 10,000-series buckets.
    for (name, series, step_ms) in [
        ("mean_1_series", 1usize, 1000i64),
        (
            "mean_10000_series",
            10_000,
            2 * BUCKET_SPAN_MS / RECORDS_PER_BODY as i64,
        ),
    ] {
        let analysis = analysis(series > 1);
        let entry = InputEntry::Data {
            input_bytes: 0,
            received_ms: 0,
            ndjson: body(1_700_000_000_000, RECORDS_PER_BODY, series, step_ms),
        };
        // Warm the models so the measured body finalizes buckets against known series.
        let mut warm = pipeline(&analysis);
        warm.apply(1, &entry).expect("bench body parses");
        let state = warm.state.clone();
        let next = InputEntry::Data {
            input_bytes: 0,
            received_ms: 0,
            ndjson: body(
                1_700_000_000_000 + RECORDS_PER_BODY as i64 * step_ms,
                RECORDS_PER_BODY,
                series,
                step_ms,
            ),
        };
        group.bench_function(name, |b| {
            b.iter_batched(
                || Pipeline::resume(&analysis, warm.reader().clone(), state.clone()),
                |mut p| p.apply(2, &next).expect("bench body parses"),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, throughput);
criterion_main!(benches);
