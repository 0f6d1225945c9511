//! Elasticsearch function semantics through the whole model: empty buckets per function,
//! `use_null`, missing and non-numeric values, summary counts, sides, influencers, pruning.

use serde_json::json;

use super::tests::{config, count_config, new_detector, num, record, text, SPAN};
use super::*;
use crate::model::series::tests::TestRng;

#[test]
fn count_gives_known_series_a_zero_and_non_zero_count_skips_it() {
    let cfg = config(json!({
        "bucket_span": "5m",
        "detectors": [
            {"function": "count", "by_field_name": "host"},
            {"function": "non_zero_count", "by_field_name": "host"}
        ]
    }));
    let mut detector = new_detector(&cfg);
    let rec = record(&cfg, &[("host", text("a"))]);
    for b in 0..100 {
        for _ in 0..50 {
            detector.add_record(b * SPAN, &rec);
        }
        detector.finalize_bucket(b * SPAN);
    }
    let empty = detector.finalize_bucket(100 * SPAN);
    assert_eq!(empty.event_count, 0);
    assert_eq!(empty.records.len(), 1, "{:?}", empty.records);
    assert_eq!(empty.records[0].detector_index, 0);
    assert_eq!(empty.records[0].actual, vec![0.0]);
    assert_eq!(empty.records[0].by_field_value.as_deref(), Some("a"));
}

#[test]
fn sum_counts_an_empty_bucket_as_zero_and_non_null_sum_skips_it() {
    let cfg = config(json!({
        "bucket_span": "5m",
        "detectors": [
            {"function": "sum", "field_name": "bytes"},
            {"function": "non_null_sum", "field_name": "bytes"}
        ]
    }));
    let mut detector = new_detector(&cfg);
    let mut rng = TestRng::new(4);
    for b in 0..200 {
        let v = rng.gaussian(1000.0, 20.0);
        detector.add_record(b * SPAN, &record(&cfg, &[("bytes", num(v))]));
        detector.finalize_bucket(b * SPAN);
    }
    let empty = detector.finalize_bucket(200 * SPAN);
    let indexes: Vec<usize> = empty.records.iter().map(|r| r.detector_index).collect();
    assert_eq!(indexes, vec![0]);
    assert_eq!(empty.records[0].function, "sum");
}

#[test]
fn missing_and_non_numeric_values_and_use_null() {
    let cfg = config(json!({
        "bucket_span": "5m",
        "detectors": [
            {"function": "mean", "field_name": "value", "by_field_name": "host"},
            {"function": "count", "by_field_name": "host", "use_null": true},
            {"function": "count", "partition_field_name": "dc"}
        ]
    }));
    let mut detector = new_detector(&cfg);
    detector.add_record(0, &record(&cfg, &[("value", num(1.0))])); // no host
    detector.add_record(
        0,
        &record(&cfg, &[("value", text("n/a")), ("host", text("a"))]),
    );
    detector.add_record(
        0,
        &record(&cfg, &[("value", text("2.5")), ("host", text("b"))]),
    );
    detector.add_record(0, &record(&cfg, &[("dc", num(7.0))]));
    detector.finalize_bucket(0);
    let entries = |d: usize| -> Vec<(String, String)> {
        detector.detectors[d]
            .series()
            .entries()
            .iter()
            .map(|e| (e.partition.clone(), e.by.clone()))
            .collect()
    };
    // mean: only "b" had a numeric value and a host.
    assert_eq!(entries(0), vec![(String::new(), "b".to_string())]);
    // count with use_null: the host-less records form the "" series.
    assert_eq!(
        entries(1),
        vec![
            (String::new(), String::new()),
            (String::new(), "a".to_string()),
            (String::new(), "b".to_string())
        ]
    );
    // Partition values are terms: 7.0 renders as "7".
    assert_eq!(entries(2), vec![("7".to_string(), String::new())]);
}

#[test]
fn summary_count_weights_counts_and_means() {
    let cfg = config(json!({
        "bucket_span": "5m",
        "summary_count_field_name": "doc_count",
        "detectors": [{"function": "count"}, {"function": "mean", "field_name": "value"}]
    }));
    let mut detector = new_detector(&cfg);
    detector.add_record(
        0,
        &record(&cfg, &[("doc_count", num(3.0)), ("value", num(10.0))]),
    );
    detector.add_record(
        0,
        &record(&cfg, &[("doc_count", num(1.0)), ("value", num(30.0))]),
    );
    detector.add_record(0, &record(&cfg, &[("value", num(1e9))])); // no count: stands for nothing
    let open = &detector.open_buckets[&0];
    assert_eq!(open.event_count, 3);
    let count = open.detectors[0].get(0).unwrap();
    assert_eq!(
        count.feature(crate::model::accumulator::Feature::Count),
        Some(4.0)
    );
    let mean = open.detectors[1].get(0).unwrap();
    assert_eq!(
        mean.feature(crate::model::accumulator::Feature::Mean),
        Some(15.0)
    );
}

#[test]
fn prune_forgets_quiet_series_only() {
    let cfg = config(json!({
        "bucket_span": "5m",
        "detectors": [{"function": "count", "by_field_name": "host"}]
    }));
    let mut detector = new_detector(&cfg);
    for b in 0..10 {
        detector.add_record(b * SPAN, &record(&cfg, &[("host", text("busy"))]));
        if b < 3 {
            detector.add_record(b * SPAN, &record(&cfg, &[("host", text("quiet"))]));
        }
        detector.finalize_bucket(b * SPAN);
    }
    // "late" is only in a still-open bucket that started long ago.
    detector.add_record(0, &record(&cfg, &[("host", text("late"))]));
    detector.add_record(10 * SPAN, &record(&cfg, &[("host", text("busy"))]));
    assert_eq!(detector.model_size_stats().total_by_field_count, 3);
    assert_eq!(detector.prune(5 * SPAN), 1);
    let names: Vec<&str> = detector.detectors[0]
        .series()
        .entries()
        .iter()
        .map(|e| e.by.as_str())
        .collect();
    assert_eq!(names, vec!["busy", "late"]);
    // The open bucket still finds its series after the renumbering.
    let open = &detector.open_buckets[&(10 * SPAN)];
    assert_eq!(open.detectors[0].get(0).map(|a| a.count()), Some(1.0));
    assert_eq!(detector.model_size_stats().total_by_field_count, 2);
}

#[test]
fn discard_drops_the_open_bucket() {
    let cfg = count_config("count");
    let mut detector = new_detector(&cfg);
    detector.add_record(0, &record(&cfg, &[]));
    detector.discard_bucket(0);
    assert_eq!(detector.finalize_bucket(0).event_count, 0);
}

#[test]
fn min_max_and_metric_flag_their_own_side() {
    let cfg = config(json!({
        "bucket_span": "5m",
        "detectors": [
            {"function": "min", "field_name": "value"},
            {"function": "max", "field_name": "value"},
            {"function": "metric", "field_name": "value"},
            {"function": "median", "field_name": "value"}
        ]
    }));
    let mut detector = new_detector(&cfg);
    let mut rng = TestRng::new(12);
    let mut bucket = |detector: &mut AnomalyDetector, b: i64, outlier: Option<f64>| {
        for i in 0..5 {
            let v = match (i, outlier) {
                (0, Some(o)) => o,
                _ => rng.gaussian(100.0, 5.0),
            };
            detector.add_record(b * SPAN, &record(&cfg, &[("value", num(v))]));
        }
        detector.finalize_bucket(b * SPAN)
    };
    for b in 0..200 {
        bucket(&mut detector, b, None);
    }
    let flagged = |r: &BucketResult| -> Vec<(usize, String)> {
        r.records
            .iter()
            // Above the warning band: the high outlier right after the low one is the job's second
            // anomaly of that size, and repeats are discounted (`model::score`).
            .filter(|x| x.record_score >= 25.0)
            .map(|x| (x.detector_index, x.function_description.clone()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let low = bucket(&mut detector, 200, Some(10.0));
    assert_eq!(
        flagged(&low),
        vec![(0, "min".to_string()), (2, "min".to_string())]
    );
    let metric = low.records.iter().find(|r| r.detector_index == 2).unwrap();
    assert_eq!(metric.function, "metric");
    assert_eq!(metric.actual, vec![10.0]);
    let high = bucket(&mut detector, 201, Some(190.0));
    assert_eq!(
        flagged(&high),
        vec![(1, "max".to_string()), (2, "max".to_string())]
    );
}

#[test]
fn records_carry_influencers_and_the_bucket_lists_influencer_fields() {
    let cfg = config(json!({
        "bucket_span": "5m",
        "detectors": [{"function": "count", "by_field_name": "airline"}],
        "influencers": ["airline", "host"]
    }));
    let mut detector = new_detector(&cfg);
    let mut rng = TestRng::new(13);
    for b in 0..=150i64 {
        for airline in ["AAL", "JZA"] {
            let n = if b == 150 && airline == "AAL" {
                200
            } else {
                10 + rng.poisson(10.0)
            };
            for i in 0..n {
                let host = format!("h{}", i % 2);
                detector.add_record(
                    b * SPAN,
                    &record(&cfg, &[("airline", text(airline)), ("host", text(&host))]),
                );
            }
        }
        let result = detector.finalize_bucket(b * SPAN);
        if b < 150 {
            continue;
        }
        let top = &result.records[0];
        assert_eq!(top.by_field_value.as_deref(), Some("AAL"));
        assert!(top.record_score >= 75.0, "{top:?}");
        assert_eq!(
            top.influencers,
            vec![
                ("airline".to_string(), vec!["AAL".to_string()]),
                ("host".to_string(), vec!["h0".to_string(), "h1".to_string()])
            ]
        );
        let names: Vec<&str> = result
            .bucket_influencers
            .iter()
            .map(|b| b.influencer_field_name.as_str())
            .collect();
        assert_eq!(names, vec!["bucket_time", "airline", "host"]);
        assert_eq!(
            result.bucket_influencers[0].anomaly_score,
            result.anomaly_score
        );
        assert_eq!(result.anomaly_score, top.record_score);
        let doc = &result.records_json("j")[0];
        assert_eq!(doc["airline"], json!(["AAL"]));
        assert_eq!(doc["host"], json!(["h0", "h1"]));
    }
}
