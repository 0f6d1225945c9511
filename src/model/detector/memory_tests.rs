//! `model_memory_limit` through the whole model: the hard limit refuses new series but keeps
//! modelling known ones, the soft limit prunes quiet series, memory recovers, and a snapshot round
//! trip in the middle changes nothing.

use serde_json::json;

use super::tests::{config, new_detector, num, record, text};
use super::*;
use crate::model::memory::MemoryStatus;
use crate::model::series::tests::TestRng;

const HOUR: i64 = 3_600_000;

fn by_host() -> AnalysisConfig {
    config(json!({
        "bucket_span": "1h",
        "detectors": [{"function": "mean", "field_name": "value", "by_field_name": "host"}]
    }))
}

/// One bucket: `busy` hosts each with a noisy value, plus the given one-off hosts.
fn bucket(
    detector: &mut AnomalyDetector,
    cfg: &AnalysisConfig,
    b: i64,
    busy: usize,
    one_off: std::ops::Range<usize>,
    rng: &mut TestRng,
) -> BucketResult {
    for h in 0..busy {
        let rec = record(
            cfg,
            &[
                ("host", text(&format!("busy-{h}"))),
                ("value", num(rng.gaussian(100.0, 5.0))),
            ],
        );
        detector.add_record(b * HOUR, &rec);
    }
    for h in one_off {
        let rec = record(
            cfg,
            &[("host", text(&format!("new-{h}"))), ("value", num(1.0))],
        );
        detector.add_record(b * HOUR, &rec);
    }
    detector.finalize_bucket(b * HOUR)
}

fn hosts(detector: &AnomalyDetector, prefix: &str) -> usize {
    detector.detectors[0]
        .series()
        .entries()
        .iter()
        .filter(|e| e.by.starts_with(prefix))
        .count()
}

/// A detector with `busy` hosts learnt over `buckets` hours, and its size.
fn warmed(
    cfg: &AnalysisConfig,
    busy: usize,
    buckets: i64,
    rng: &mut TestRng,
) -> (AnomalyDetector, u64) {
    let mut detector = new_detector(cfg);
    for b in 0..buckets {
        bucket(&mut detector, cfg, b, busy, 0..0, rng);
    }
    let bytes = detector.model_size_stats().model_bytes;
    (detector, bytes)
}

#[test]
fn hard_limit_refuses_new_series_keeps_known_ones_and_recovers() {
    let cfg = by_host();
    let mut rng = TestRng::new(5);
    let (mut detector, bytes) = warmed(&cfg, 10, 30, &mut rng);
    // Room for a few more series only.
    detector.set_memory_limit(Some(bytes + bytes / 10), &cfg);
    bucket(&mut detector, &cfg, 30, 10, 0..500, &mut rng);
    let stats = detector.model_size_stats();
    assert_eq!(stats.memory_status, "hard_limit");
    assert_eq!(stats.bucket_allocation_failures_count, 1);
    assert!(stats.model_bytes_exceeded > 0);
    let created = hosts(&detector, "new-");
    assert!(
        created > 0 && created < 20,
        "{created} new series were created"
    );
    // More refusals in a later bucket count once more; known series are still modelled.
    bucket(&mut detector, &cfg, 31, 10, 500..600, &mut rng);
    assert_eq!(
        detector.model_size_stats().bucket_allocation_failures_count,
        2
    );
    assert_eq!(hosts(&detector, "new-"), created);
    let spike = record(&cfg, &[("host", text("busy-3")), ("value", num(400.0))]);
    detector.add_record(32 * HOUR, &spike);
    let result = detector.finalize_bucket(32 * HOUR);
    assert!(
        result
            .records
            .iter()
            .any(|r| r.by_field_value.as_deref() == Some("busy-3")),
        "{:?}",
        result.records
    );
    // The one-off series go quiet and soft-limit pruning drops them: memory falls below the low
    // limit and new series are modelled again.
    let mut b = 33;
    while detector.model_size_stats().memory_status == "hard_limit" {
        bucket(&mut detector, &cfg, b, 10, 0..0, &mut rng);
        b += 1;
        assert!(b < 200, "memory never recovered");
    }
    assert_eq!(hosts(&detector, "new-"), 0);
    bucket(&mut detector, &cfg, b, 10, 1000..1001, &mut rng);
    assert_eq!(hosts(&detector, "new-"), 1);
    let stats = detector.model_size_stats();
    assert_eq!(stats.bucket_allocation_failures_count, 2);
    assert!(stats.peak_model_bytes > stats.model_bytes);
}

#[test]
fn soft_limit_prunes_quiet_series_and_keeps_busy_ones() {
    let cfg = by_host();
    let mut rng = TestRng::new(9);
    let mut detector = new_detector(&cfg);
    bucket(&mut detector, &cfg, 0, 10, 0..200, &mut rng);
    let bytes = detector.model_size_stats().model_bytes;
    // Above 3/5 of the limit, well below the limit itself.
    detector.set_memory_limit(Some(bytes * 10 / 7), &cfg);
    let mut saw_soft = false;
    for b in 1..100 {
        bucket(&mut detector, &cfg, b, 10, 0..0, &mut rng);
        saw_soft |= detector.memory.status() == MemoryStatus::SoftLimit;
    }
    assert!(saw_soft);
    assert_eq!(hosts(&detector, "new-"), 0, "quiet series were pruned");
    assert_eq!(hosts(&detector, "busy-"), 10, "busy series were kept");
    let stats = detector.model_size_stats();
    assert_eq!(stats.bucket_allocation_failures_count, 0);
    assert!(stats.model_bytes < bytes);
}

#[test]
fn no_limit_changes_nothing() {
    let cfg = by_host();
    let (mut limited, _) = warmed(&cfg, 5, 0, &mut TestRng::new(1));
    limited.set_memory_limit(Some(1 << 30), &cfg);
    let mut free = new_detector(&cfg);
    let (mut a, mut b) = (TestRng::new(2), TestRng::new(2));
    for i in 0..50 {
        let x = bucket(&mut limited, &cfg, i, 5, i as usize..i as usize + 3, &mut a);
        let y = bucket(&mut free, &cfg, i, 5, i as usize..i as usize + 3, &mut b);
        assert_eq!(x, y);
    }
    assert_eq!(limited.detectors, free.detectors);
}

/// Snapshot bytes of a detector and the detector they decode to (the job then sets the limit
/// again, as it does on every open).
fn round_trip(detector: &AnomalyDetector, cfg: &AnalysisConfig, limit: u64) -> AnomalyDetector {
    let config = bincode::config::standard();
    let bytes = bincode::serde::encode_to_vec(detector, config).unwrap();
    let (mut restored, _): (AnomalyDetector, usize) =
        bincode::serde::decode_from_slice(&bytes, config).unwrap();
    assert_eq!(&restored, detector);
    assert_eq!(restored.model_size_stats(), detector.model_size_stats());
    restored.set_memory_limit(Some(limit), cfg);
    restored
}

#[test]
fn a_snapshot_round_trip_under_memory_pressure_gives_the_same_results() {
    let cfg = by_host();
    let (start, bytes) = warmed(&cfg, 10, 5, &mut TestRng::new(13));
    let limit = bytes * 3;
    // Forty new hosts an hour: the job hits the hard limit, prunes, refuses, recovers.
    let drive = |snapshot_at: Option<i64>| {
        let mut detector = start.clone();
        detector.set_memory_limit(Some(limit), &cfg);
        let mut rng = TestRng::new(14);
        let mut results = Vec::new();
        for b in 5..80 {
            let first = b as usize * 40;
            for h in first..first + 40 {
                let rec = record(
                    &cfg,
                    &[("host", text(&format!("new-{h}"))), ("value", num(1.0))],
                );
                detector.add_record(b * HOUR, &rec);
            }
            if snapshot_at == Some(b) {
                // Mid-bucket: the open bucket's accumulators ride along.
                detector = round_trip(&detector, &cfg, limit);
            }
            for h in 0..10 {
                let value = rng.gaussian(100.0, 5.0);
                let rec = record(
                    &cfg,
                    &[("host", text(&format!("busy-{h}"))), ("value", num(value))],
                );
                detector.add_record(b * HOUR, &rec);
            }
            results.push(detector.finalize_bucket(b * HOUR));
        }
        (results, detector)
    };
    let (expected, straight) = drive(None);
    let stats = straight.model_size_stats();
    assert!(stats.bucket_allocation_failures_count > 0, "{stats:?}");
    for at in [6, 30, 61] {
        let (results, resumed) = drive(Some(at));
        assert_eq!(results, expected, "snapshot at bucket {at}");
        assert_eq!(resumed, straight);
        assert_eq!(resumed.model_size_stats(), stats);
    }
}
