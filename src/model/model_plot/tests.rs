//! Model plot rows: bounds that hold a stable series' values, widen with its noise, stay off
//! during warm-up, follow `terms`, and render as Elasticsearch documents.

use serde_json::json;

use super::*;
use crate::ingest::FieldValue;
use crate::model::series::tests::TestRng;
use crate::model::{AnalysisConfig, AnomalyDetector, BucketResult};

pub(crate) const SPAN: i64 = 3_600_000;

pub(crate) fn detector(value: Value) -> (AnalysisConfig, AnomalyDetector) {
    let config: AnalysisConfig = serde_json::from_value(value).expect("test config parses");
    let detector = AnomalyDetector::new(&config, &config.analysis_fields());
    (config, detector)
}

/// Feeds `value(i)` (with by value `by`) into bucket i for i in `buckets`, finalizing each.
pub(crate) fn feed(
    config: &AnalysisConfig,
    detector: &mut AnomalyDetector,
    buckets: std::ops::Range<i64>,
    by: &[&str],
    mut value: impl FnMut(i64) -> f64,
) -> Vec<BucketResult> {
    let fields = config.analysis_fields();
    let mut out = Vec::new();
    for i in buckets {
        for b in by {
            let values: Vec<Option<FieldValue>> = fields
                .iter()
                .map(|f| match f.as_str() {
                    "value" => Some(FieldValue::Num(value(i))),
                    _ => Some(FieldValue::Text(b.to_string())),
                })
                .collect();
            detector.add_record(i * SPAN, &values);
        }
        out.push(detector.finalize_bucket(i * SPAN));
    }
    out
}

fn mean_job() -> (AnalysisConfig, AnomalyDetector) {
    detector(
        json!({"bucket_span": "1h", "detectors": [{"function": "mean", "field_name": "value"}]}),
    )
}

fn plotted(spec: Option<ModelPlotSpec>, sd: f64, seed: u64) -> Vec<BucketResult> {
    let (config, mut d) = mean_job();
    d.set_model_plot(spec);
    let mut rng = TestRng::new(seed);
    feed(&config, &mut d, 0..400, &[""], |_| rng.gaussian(100.0, sd))
}

fn bounds(result: &BucketResult) -> Option<(f64, f64, f64)> {
    result.model_plot.first().and_then(|row| row.bounds)
}

#[test]
fn a_stable_series_stays_within_its_bounds() {
    let results = plotted(Some(ModelPlotSpec::default()), 5.0, 3);
    assert!(results.iter().all(|r| r.model_plot.len() == 1));
    let settled = &results[50..];
    let inside = settled
        .iter()
        .filter(|r| {
            let (lower, _, upper) = bounds(r).expect("bounds once warmed up");
            r.model_plot[0]
                .actual
                .is_some_and(|a| (lower..=upper).contains(&a))
        })
        .count();
    let share = inside as f64 / settled.len() as f64;
    assert!(
        (0.9..1.0).contains(&share),
        "{inside} of {} inside",
        settled.len()
    );
    for r in settled {
        let (lower, median, upper) = bounds(r).unwrap();
        assert!((median - 100.0).abs() < 3.0, "{median}");
        assert!(lower < median && median < upper);
    }
}

#[test]
fn bounds_widen_with_noise() {
    let width = |sd: f64| {
        let results = plotted(Some(ModelPlotSpec::default()), sd, 9);
        let widths: Vec<f64> = results[100..]
            .iter()
            .map(|r| bounds(r).map(|(l, _, u)| u - l).unwrap())
            .collect();
        widths.iter().sum::<f64>() / widths.len() as f64
    };
    let (quiet, noisy) = (width(1.0), width(10.0));
    // About 2 * 1.96 sd each.
    assert!((3.0..6.0).contains(&quiet), "{quiet}");
    assert!(noisy > 6.0 * quiet, "{quiet} vs {noisy}");
}

#[test]
fn warm_up_rows_carry_only_the_actual_value_and_off_means_no_rows() {
    let results = plotted(Some(ModelPlotSpec::default()), 5.0, 1);
    assert!(bounds(&results[0]).is_none());
    assert!(bounds(&results[100]).is_some());
    let doc = results[0].model_plot_json("j")[0].clone();
    assert!(doc.get("model_lower").is_none() && doc.get("actual").is_some());
    assert!(plotted(None, 5.0, 1)
        .iter()
        .all(|r| r.model_plot.is_empty()));
}

#[test]
fn terms_restrict_the_plotted_series() {
    let (config, mut d) = detector(json!({"bucket_span": "1h", "detectors": [
        {"function": "count", "by_field_name": "host"},
        {"function": "mean", "field_name": "value", "partition_field_name": "host"}]}));
    let spec = ModelPlotSpec::from_config(Some(&json!({"enabled": true, "terms": "b, c"})));
    assert_eq!(spec.as_ref().map(|s| s.terms.len()), Some(2));
    d.set_model_plot(spec);
    let results = feed(&config, &mut d, 0..3, &["a", "b"], |i| i as f64);
    let rows = &results[2].model_plot;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows
        .iter()
        .all(|r| r.series.by_field_value.as_deref() == Some("b")
            || r.series.partition_field_value.as_deref() == Some("b")));
    let docs = results[2].model_plot_json("j");
    assert_eq!(docs[0]["model_feature"], "'count per bucket by person'");
    assert_eq!(docs[0]["by_field_name"], "host");
    assert_eq!(docs[0]["by_field_value"], "b");
    assert!(docs[0].get("partition_field_name").is_none());
    assert_eq!(
        docs[1]["model_feature"],
        "'arithmetic mean value by person'"
    );
    assert_eq!(docs[1]["partition_field_value"], "b");
    assert_eq!(docs[1]["actual"], 2.0);
    assert_eq!(docs[1]["timestamp"], 2 * SPAN);
    assert_eq!(docs[1]["bucket_span"], 3600);
    assert_eq!(docs[1]["result_type"], "model_plot");
    assert_eq!(docs[1]["detector_index"], 1);
}

#[test]
fn the_spec_follows_the_config_document() {
    assert_eq!(ModelPlotSpec::from_config(None), None);
    assert_eq!(
        ModelPlotSpec::from_config(Some(&json!({"enabled": false}))),
        None
    );
    assert_eq!(
        ModelPlotSpec::from_config(Some(&json!({"enabled": true, "annotations_enabled": true}))),
        Some(ModelPlotSpec::default())
    );
}

#[test]
fn model_plot_is_not_part_of_the_snapshot() {
    let (_, mut d) = mean_job();
    let plain = crate::store::encode(&d).unwrap();
    d.set_model_plot(Some(ModelPlotSpec::default()));
    assert_eq!(crate::store::encode(&d).unwrap(), plain);
}
