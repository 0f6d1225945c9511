//! Model memory per series after 30 days of 5-minute data for `mean(value) by host`, and the time
//! of the operations that touch all of it: finalizing one bucket of every series, and encoding the
//! model as a snapshot.
//!
//! The series follow a daily and a weekly pattern with noise, each host with its own phase and
//! level, so both seasonal profiles are learnt in full. Printed once (criterion has no unit for
//! bytes): `model_bytes` per series (what `model_size_stats` reports) and snapshot bytes per series
//! (bincode of the model).
//!
//! Run: `cargo bench --bench model_memory`

use auspex::ingest::FieldValue;
use auspex::model::{AnalysisConfig, AnomalyDetector};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

const SERIES: usize = 200;
const SPAN_MS: i64 = 300_000;
const DAYS: i64 = 30;
const BUCKETS_PER_DAY: i64 = 86_400_000 / SPAN_MS;

/// A tiny seeded generator (splitmix64) for the noise.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Host `host`'s value in bucket `b`: a level, a daily wave, quieter weekends, noise.
fn value(host: usize, b: i64, rng: &mut Rng) -> f64 {
    let level = 50.0 + host as f64;
    let day = (b % BUCKETS_PER_DAY) as f64 / BUCKETS_PER_DAY as f64;
    let phase = host as f64 * 0.1;
    let daily = 0.4 * level * (std::f64::consts::TAU * (day + phase)).sin();
    let weekend = if (b / BUCKETS_PER_DAY) % 7 >= 5 {
        0.5
    } else {
        1.0
    };
    (level + daily) * weekend + (rng.uniform() - 0.5) * 0.1 * level
}

fn config() -> AnalysisConfig {
    serde_json::from_value(serde_json::json!({
        "bucket_span": "5m",
        "detectors": [{"function": "mean", "field_name": "value", "by_field_name": "host"}]
    }))
    .expect("config")
}

/// Adds bucket `b` of every host and finalizes it.
fn bucket(detector: &mut AnomalyDetector, names: &[String], b: i64, rng: &mut Rng) {
    let start = b * SPAN_MS;
    for (host, name) in names.iter().enumerate() {
        let record = [
            Some(FieldValue::Num(value(host, b, rng))),
            Some(FieldValue::Text(name.clone())),
        ];
        detector.add_record(start, &record);
    }
    detector.finalize_bucket(start);
}

fn month_of_data() -> (AnomalyDetector, Vec<String>, Rng) {
    let config = config();
    let mut detector = AnomalyDetector::new(&config, &config.analysis_fields());
    let names: Vec<String> = (0..SERIES).map(|h| format!("host-{h:04}")).collect();
    let mut rng = Rng(42);
    for b in 0..DAYS * BUCKETS_PER_DAY {
        bucket(&mut detector, &names, b, &mut rng);
    }
    (detector, names, rng)
}

fn model_memory(c: &mut Criterion) {
    let (detector, names, rng) = month_of_data();
    let stats = detector.model_size_stats();
    let snapshot =
        bincode::serde::encode_to_vec(&detector, bincode::config::standard()).expect("encode");
    eprintln!(
        "model memory after {DAYS} days of 5-minute data, {SERIES} mean(value) by-field series: \
         model_bytes {:.0} bytes per series, snapshot {:.0} bytes per series",
        stats.model_bytes as f64 / SERIES as f64,
        snapshot.len() as f64 / SERIES as f64
    );
    let mut group = c.benchmark_group("model_memory");
    group.bench_function(
        format!("finalize_one_bucket_{SERIES}_series_after_30_days"),
        |b| {
            let mut next = DAYS * BUCKETS_PER_DAY;
            b.iter_batched(
                || (detector.clone(), rng.0),
                |(mut d, seed)| {
                    bucket(&mut d, &names, next, &mut Rng(seed));
                    next += 1;
                    d
                },
                BatchSize::LargeInput,
            )
        },
    );
    group.bench_function(
        format!("snapshot_encode_{SERIES}_series_after_30_days"),
        |b| b.iter(|| bincode::serde::encode_to_vec(&detector, bincode::config::standard())),
    );
    group.finish();
}

criterion_group!(benches, model_memory);
criterion_main!(benches);
