//! Rules applied by the whole model (`AnomalyDetector`), driven as the pipeline drives it.

use serde_json::json;

use super::*;
use crate::ingest::FieldValue;
use crate::model::series::tests::TestRng;
use crate::model::{AnalysisConfig, AnomalyDetector, BucketResult};

const SPAN: i64 = 300_000;

fn config() -> AnalysisConfig {
    serde_json::from_value(json!({
        "bucket_span": "5m",
        "detectors": [{"function": "mean", "field_name": "value", "by_field_name": "airline"}]
    }))
    .unwrap()
}

/// Runs buckets of (airline, value) records; returns the finalized results.
fn run(rules: JobRules, buckets: &[Vec<(&str, f64)>]) -> Vec<BucketResult> {
    let cfg = config();
    let fields = cfg.analysis_fields();
    let mut detector = AnomalyDetector::new(&cfg, &fields);
    detector.set_rules(rules);
    let slot = |name: &str| fields.iter().position(|f| f == name).unwrap();
    let mut out = Vec::new();
    for (i, records) in buckets.iter().enumerate() {
        let start = i as i64 * SPAN;
        for (airline, value) in records {
            let mut values = vec![None; fields.len()];
            values[slot("airline")] = Some(FieldValue::Text(airline.to_string()));
            values[slot("value")] = Some(FieldValue::Num(*value));
            detector.add_record(start, &values);
        }
        out.push(detector.finalize_bucket(start));
    }
    out
}

fn one_rule(rule: DetectionRule) -> JobRules {
    JobRules {
        detectors: vec![vec![rule]],
    }
}

fn noisy(seed: u64, n: usize, airlines: &[&'static str]) -> Vec<Vec<(&'static str, f64)>> {
    let mut rng = TestRng::new(seed);
    (0..n)
        .map(|_| {
            airlines
                .iter()
                .map(|a| (*a, rng.gaussian(100.0, 5.0)))
                .collect()
        })
        .collect()
}

fn record_for<'a>(
    bucket: &'a BucketResult,
    airline: &str,
) -> Option<&'a crate::model::AnomalyRecord> {
    bucket
        .records
        .iter()
        .find(|r| r.by_field_value.as_deref() == Some(airline))
}

#[test]
fn skip_result_suppresses_the_record_and_its_share_of_the_bucket_score() {
    let mut buckets = noisy(7, 300, &["AAL", "UAL"]);
    buckets.push(vec![("AAL", 400.0), ("UAL", 100.0)]);
    let scope = |include| ScopeField {
        field: "airline".into(),
        include,
        items: vec!["AAL".into()],
    };
    let rule = |include| {
        one_rule(DetectionRule {
            skip_result: true,
            skip_model_update: false,
            scope: vec![scope(include)],
            conditions: vec![],
        })
    };
    let plain = run(JobRules::default(), &buckets);
    let last = plain.last().unwrap();
    assert!(
        record_for(last, "AAL").is_some(),
        "the spike is a record without rules"
    );
    assert!(last.anomaly_score > 0.0);

    let skipped = run(rule(true), &buckets);
    let last = skipped.last().unwrap();
    assert!(record_for(last, "AAL").is_none(), "{:?}", last.records);
    assert!(
        last.anomaly_score < plain.last().unwrap().anomaly_score,
        "the skipped series no longer makes the bucket anomalous"
    );
    // An exclude scope on AAL leaves AAL's record alone.
    let excluded = run(rule(false), &buckets);
    assert!(record_for(excluded.last().unwrap(), "AAL").is_some());
}

#[test]
fn skip_model_update_keeps_a_level_shift_anomalous() {
    let mut buckets = noisy(3, 300, &["AAL"]);
    buckets.extend((0..40).map(|_| vec![("AAL", 300.0)]));
    let last_score = |rules| {
        let results = run(rules, &buckets);
        results
            .last()
            .and_then(|b| record_for(b, "AAL"))
            .map_or(0.0, |r| r.probability.ln().abs())
    };
    let learnt = last_score(JobRules::default());
    let held = last_score(one_rule(DetectionRule {
        skip_result: false,
        skip_model_update: true,
        scope: vec![],
        conditions: vec![RuleCondition {
            applies_to: AppliesTo::Actual,
            operator: Operator::Gt,
            value: 200.0,
        }],
    }));
    assert!(
        held > 10.0 && held > 3.0 * learnt,
        "without learning the shift, the 40th shifted bucket is still very unlikely (-ln p {held} vs {learnt})"
    );
}
