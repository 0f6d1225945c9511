//! Behaviour tests of the whole model (`AnomalyDetector`), driven the way the job pipeline drives
//! it: records into open buckets, then one finalize per bucket in time order. Seeded, no clock.

use serde_json::json;

use super::*;
use crate::model::series::tests::TestRng;
use crate::model::series::WARMUP_BUCKETS;

pub(super) const SPAN: i64 = 300_000;

pub(super) fn config(value: serde_json::Value) -> AnalysisConfig {
    serde_json::from_value(value).expect("test config parses")
}

pub(super) fn new_detector(config: &AnalysisConfig) -> AnomalyDetector {
    AnomalyDetector::new(config, &config.analysis_fields())
}

/// Record values in slot order from (field, value) pairs.
pub(super) fn record(
    config: &AnalysisConfig,
    pairs: &[(&str, FieldValue)],
) -> Vec<Option<FieldValue>> {
    config
        .analysis_fields()
        .iter()
        .map(|f| pairs.iter().find(|(n, _)| n == f).map(|(_, v)| v.clone()))
        .collect()
}

pub(super) fn num(v: f64) -> FieldValue {
    FieldValue::Num(v)
}

pub(super) fn text(v: &str) -> FieldValue {
    FieldValue::Text(v.to_string())
}

pub(super) fn max_record_score(result: &BucketResult) -> f64 {
    result
        .records
        .iter()
        .map(|r| r.record_score)
        .fold(0.0, f64::max)
}

fn mean_config() -> AnalysisConfig {
    config(json!({
        "bucket_span": "5m",
        "detectors": [{"function": "mean", "field_name": "value"}]
    }))
}

/// Feeds one value per bucket; returns the finalized results.
fn feed_means(
    detector: &mut AnomalyDetector,
    cfg: &AnalysisConfig,
    values: &[f64],
) -> Vec<BucketResult> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let start = i as i64 * SPAN;
            detector.add_record(start, &record(cfg, &[("value", num(*v))]));
            detector.finalize_bucket(start)
        })
        .collect()
}

#[test]
fn ten_sigma_spike_is_critical() {
    for seed in 1..=5 {
        let cfg = mean_config();
        let mut detector = new_detector(&cfg);
        let mut rng = TestRng::new(seed);
        let mut values: Vec<f64> = (0..200).map(|_| rng.gaussian(100.0, 10.0)).collect();
        values.push(200.0);
        let results = feed_means(&mut detector, &cfg, &values);
        let last = results.last().expect("one result per bucket");
        assert_eq!(last.records.len(), 1, "seed {seed}");
        let record = &last.records[0];
        assert!(record.record_score >= 75.0, "seed {seed}: {record:?}");
        assert_eq!(record.initial_record_score, record.record_score);
        assert_eq!(record.actual, vec![200.0]);
        assert!((record.typical[0] - 100.0).abs() < 5.0);
        assert_eq!(last.anomaly_score, record.record_score);
    }
}

#[test]
fn gaussian_noise_stays_below_warning() {
    for seed in 10..15 {
        let cfg = mean_config();
        let mut detector = new_detector(&cfg);
        let mut rng = TestRng::new(seed);
        let values: Vec<f64> = (0..6000).map(|_| rng.gaussian(50.0, 3.0)).collect();
        let results = feed_means(&mut detector, &cfg, &values);
        let worst = results.iter().map(max_record_score).fold(0.0, f64::max);
        assert!(worst < 25.0, "seed {seed}: worst noise score {worst}");
        assert!(results.iter().all(|r| r.anomaly_score < 25.0));
        // Warm-up: nothing at all in the first buckets.
        assert!(results[..WARMUP_BUCKETS as usize]
            .iter()
            .all(|r| r.records.is_empty()));
    }
}

#[test]
fn by_field_noise_over_fifty_series_stays_below_warning() {
    let cfg = config(json!({
        "bucket_span": "5m",
        "detectors": [{"function": "mean", "field_name": "value", "by_field_name": "host"}],
        "influencers": ["host"]
    }));
    let hosts: Vec<String> = (0..50).map(|i| format!("host-{i:02}")).collect();
    for seed in 20..23 {
        let mut detector = new_detector(&cfg);
        let mut rng = TestRng::new(seed);
        let mut worst: f64 = 0.0;
        for b in 0..5000 {
            let start = b * SPAN;
            for (h, host) in hosts.iter().enumerate() {
                let level = 10.0 + h as f64 * 7.0;
                let v = rng.gaussian(level, 1.0 + h as f64 / 10.0);
                detector.add_record(
                    start,
                    &record(&cfg, &[("value", num(v)), ("host", text(host))]),
                );
            }
            let result = detector.finalize_bucket(start);
            worst = worst
                .max(max_record_score(&result))
                .max(result.anomaly_score);
        }
        assert!(worst < 25.0, "seed {seed}: worst noise score {worst}");
    }
}

pub(super) fn count_config(function: &str) -> AnalysisConfig {
    config(json!({
        "bucket_span": "5m",
        "detectors": [{"function": function}]
    }))
}

/// Feeds Poisson(rate) events per bucket for `buckets` buckets, then one bucket of `last` events.
fn count_run(function: &str, rate: f64, last: u64, seed: u64) -> BucketResult {
    let cfg = count_config(function);
    let mut detector = new_detector(&cfg);
    let mut rng = TestRng::new(seed);
    let empty = record(&cfg, &[]);
    for b in 0..300 {
        let start = b * SPAN;
        for _ in 0..rng.poisson(rate) {
            detector.add_record(start, &empty);
        }
        let result = detector.finalize_bucket(start);
        assert!(
            b < 50 || max_record_score(&result) < 25.0,
            "{function}: noise bucket {b} scored {}",
            max_record_score(&result)
        );
    }
    let start = 300 * SPAN;
    for _ in 0..last {
        detector.add_record(start, &empty);
    }
    detector.finalize_bucket(start)
}

/// A brute-force attack on one of many hosts (`high_count` partitioned by host): a few failed
/// logins per host and bucket for two weeks, spiky ones included, then one host gets 60 in a
/// bucket. Whatever the score history does, that bucket is the job's top bucket.
#[test]
fn a_brute_force_burst_on_one_host_is_the_top_bucket() {
    let cfg = config(json!({
        "bucket_span": "5m",
        "detectors": [{"function": "high_count", "partition_field_name": "host"}],
        "influencers": ["host"]
    }));
    for seed in 40..43 {
        let mut detector = new_detector(&cfg);
        let mut rng = TestRng::new(seed);
        let hosts: Vec<String> = (0..20).map(|h| format!("web-{h}")).collect();
        let attack = 14 * 288;
        let mut best = (f64::MIN, 0);
        for b in 0..attack + 288 {
            let start = b * SPAN;
            for (h, host) in hosts.iter().enumerate() {
                // Ordinary noise: mostly 0-4 failures, now and then a user retrying a dozen times.
                let mut failures = rng.poisson(1.5);
                if rng.uniform() < 0.002 {
                    failures += 12;
                }
                if b == attack && h == 7 {
                    failures += 60;
                }
                for _ in 0..failures {
                    detector.add_record(start, &record(&cfg, &[("host", text(host))]));
                }
            }
            let result = detector.finalize_bucket(start);
            if b >= 288 && result.anomaly_score > best.0 {
                best = (result.anomaly_score, b);
            }
            if b == attack {
                let top = &result.records[0];
                assert_eq!(top.partition_field_value.as_deref(), Some("web-7"));
            }
        }
        assert_eq!(best.1, attack, "seed {seed}: top bucket {best:?}");
    }
}

#[test]
fn count_burst_drop_and_sides() {
    for seed in 30..33 {
        let burst = count_run("count", 20.0, 200, seed);
        assert!(max_record_score(&burst) >= 75.0, "{:?}", burst.records);
        assert_eq!(burst.records[0].function, "count");
        assert_eq!(burst.event_count, 200);

        let high_burst = count_run("high_count", 20.0, 200, seed);
        assert!(max_record_score(&high_burst) >= 75.0);
        assert_eq!(high_burst.records[0].function_description, "count");

        let drop = count_run("low_count", 100.0, 10, seed);
        assert!(max_record_score(&drop) >= 50.0, "{:?}", drop.records);
        assert_eq!(drop.records[0].function, "low_count");

        let ignored_drop = count_run("high_count", 100.0, 10, seed);
        assert!(
            ignored_drop.records.is_empty(),
            "{:?}",
            ignored_drop.records
        );
        let ignored_burst = count_run("low_count", 20.0, 200, seed);
        assert!(ignored_burst.records.is_empty());
    }
}

#[test]
fn flat_series_then_small_step_is_finite() {
    let cfg = config(json!({
        "bucket_span": "5m",
        "detectors": [
            {"function": "mean", "field_name": "value"},
            {"function": "max", "field_name": "value"},
            {"function": "count"},
            {"function": "metric", "field_name": "value"}
        ]
    }));
    let mut detector = new_detector(&cfg);
    let mut values: Vec<f64> = vec![42.0; 300];
    values.extend(std::iter::repeat_n(43.0, 50));
    values.extend(std::iter::repeat_n(0.0, 50));
    values.extend(std::iter::repeat_n(0.0, 50));
    values.push(1e-300);
    values.push(f64::MAX);
    let results = feed_means(&mut detector, &cfg, &values);
    for result in &results {
        assert!(result.anomaly_score.is_finite());
        for r in &result.records {
            assert!(r.record_score.is_finite() && (0.0..=100.0).contains(&r.record_score));
            assert!(r.probability > 0.0 && r.probability <= 1.0, "{r:?}");
            assert!(r.typical.iter().chain(&r.actual).all(|v| !v.is_nan()));
        }
        let json = result.bucket_json("j", 0);
        assert!(serde_json::to_string(&json).is_ok());
    }
    // The tiny step is not a lasting catastrophe: the series settles at its new level.
    let settled = &results[340];
    assert!(settled.records.is_empty(), "{:?}", settled.records);
}

#[test]
fn interim_scoring_changes_nothing() {
    let cfg = mean_config();
    let mut detector = new_detector(&cfg);
    let mut rng = TestRng::new(8);
    let values: Vec<f64> = (0..50).map(|_| rng.gaussian(10.0, 1.0)).collect();
    feed_means(&mut detector, &cfg, &values);
    detector.add_record(50 * SPAN, &record(&cfg, &[("value", num(99.0))]));
    let encode = |d: &AnomalyDetector| {
        bincode::serde::encode_to_vec(d, bincode::config::standard()).expect("encodes")
    };
    let before = encode(&detector);
    let interim = detector.interim_bucket(50 * SPAN);
    assert!(interim.is_interim);
    assert!(max_record_score(&interim) > 50.0);
    assert_eq!(encode(&detector), before);
    let last = detector.finalize_bucket(50 * SPAN);
    assert!(!last.is_interim);
    assert_eq!(last.records, interim.records);
}

/// A mixed workload that exercises every kind of state: several detectors, by and partition
/// fields, influencers, a summary count, several open buckets at once.
/// (bucket start, record values).
type Workload = Vec<(i64, Vec<Option<FieldValue>>)>;

fn mixed_workload() -> (AnalysisConfig, Workload) {
    let cfg = config(json!({
        "bucket_span": "5m",
        "detectors": [
            {"function": "mean", "field_name": "responsetime", "by_field_name": "airline"},
            {"function": "high_count", "partition_field_name": "region"},
            {"function": "median", "field_name": "responsetime"},
            {"function": "metric", "field_name": "responsetime", "by_field_name": "airline"},
            {"function": "low_non_null_sum", "field_name": "bytes", "by_field_name": "airline"}
        ],
        "influencers": ["airline", "host"]
    }));
    let mut rng = TestRng::new(99);
    let airlines = ["AAL", "JZA", "UAL", "DAL"];
    let mut records = Vec::new();
    for b in 0..400i64 {
        for a in &airlines {
            for _ in 0..(1 + rng.poisson(3.0)) {
                let mut rt = rng.gaussian(100.0, 10.0);
                if b == 300 && *a == "JZA" {
                    rt *= 10.0;
                }
                // Latency: a few records land in the previous, still open bucket.
                let bucket = if b > 0 && rng.uniform() < 0.1 {
                    b - 1
                } else {
                    b
                };
                let host = format!("h{}", rng.next_u64() % 3);
                let rec = record(
                    &cfg,
                    &[
                        ("responsetime", num(rt)),
                        ("airline", text(a)),
                        (
                            "region",
                            text(if rng.uniform() < 0.5 { "eu" } else { "us" }),
                        ),
                        ("host", text(&host)),
                        ("bytes", num(rng.gaussian(500.0, 50.0))),
                    ],
                );
                records.push((bucket * SPAN, rec));
            }
        }
    }
    (cfg, records)
}

/// Runs the workload, finalizing bucket b-1 once bucket b starts; `restore_at` round-trips the
/// model through bincode at that point.
fn run_mixed(restore_at: Option<usize>) -> Vec<BucketResult> {
    let (cfg, records) = mixed_workload();
    let mut detector = new_detector(&cfg);
    let mut results = Vec::new();
    let mut finalized_until = 0;
    for (i, (start, rec)) in records.iter().enumerate() {
        if Some(i) == restore_at {
            let bytes = bincode::serde::encode_to_vec(&detector, bincode::config::standard())
                .expect("encodes");
            let (restored, read): (AnomalyDetector, usize) =
                bincode::serde::decode_from_slice(&bytes, bincode::config::standard())
                    .expect("decodes");
            assert_eq!(read, bytes.len());
            assert_eq!(restored, detector);
            detector = restored;
        }
        while finalized_until + SPAN < *start {
            results.push(detector.finalize_bucket(finalized_until));
            finalized_until += SPAN;
        }
        detector.add_record(*start, rec);
    }
    results.push(detector.finalize_bucket(finalized_until));
    results.push(detector.finalize_bucket(finalized_until + SPAN));
    results
}

#[test]
fn bincode_round_trip_continues_identically() {
    let uninterrupted = run_mixed(None);
    let (_, records) = mixed_workload();
    for cut in [1, records.len() / 3, records.len() * 3 / 4] {
        let restored = run_mixed(Some(cut));
        assert_eq!(restored.len(), uninterrupted.len());
        for (a, b) in uninterrupted.iter().zip(&restored) {
            assert_eq!(a, b, "results differ after a restore at record {cut}");
            let ja = serde_json::to_string(&a.records_json("j")).unwrap();
            let jb = serde_json::to_string(&b.records_json("j")).unwrap();
            assert_eq!(ja, jb);
        }
    }
    // The injected anomaly is found, by airline.
    let bucket = &uninterrupted[300];
    let top = &bucket.records[0];
    assert_eq!(
        top.by_field_value.as_deref(),
        Some("JZA"),
        "{:?}",
        bucket.records
    );
    assert!(top.record_score >= 75.0, "{top:?}");
}

#[test]
fn same_calls_give_identical_bytes() {
    let a = run_mixed(None);
    let b = run_mixed(None);
    assert_eq!(a, b);
}
