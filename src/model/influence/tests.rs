//! Tests of the influence calculation, its aggregation into influencer results, and influencer
//! results of the whole model driven the way the pipeline drives it. Seeded, no clock.

use serde_json::json;

use super::*;
use crate::ingest::FieldValue;
use crate::model::accumulator::DetectorBucket;
use crate::model::distribution::normal_upper_tail;
use crate::model::series::tests::TestRng;
use crate::model::{AnalysisConfig, AnomalyDetector, BucketResult};

/// Upper-tail probability under N(mean, sd): a stand-in for a series model on a high anomaly.
fn upper(mean: f64, sd: f64) -> impl Fn(f64) -> f64 {
    move |v| normal_upper_tail((v - mean) / sd).max(1e-300)
}

/// One series-bucket: (influencer value, metric value) per record, all of field 0.
fn bucket_of(records: &[(&str, f64)]) -> DetectorBucket {
    let mut bucket = DetectorBucket::default();
    let acc = bucket.entry(0);
    for (term, value) in records {
        acc.add_record(1.0, Some(*value), false);
        acc.add_influencer(0, term, 1.0, Some(*value));
    }
    bucket
}

fn influences_of(
    bucket: &DetectorBucket,
    feature: Feature,
    empty: Option<f64>,
) -> Vec<(String, f64)> {
    influences_with(bucket, feature, empty, upper(100.0, 10.0))
}

fn influences_with(
    bucket: &DetectorBucket,
    feature: Feature,
    empty: Option<f64>,
    probability: impl Fn(f64) -> f64,
) -> Vec<(String, f64)> {
    let acc = bucket.get(0).expect("series 0");
    let values: Vec<&InfluencerMoments> = acc.influencers.iter().collect();
    let fb = FeatureBucket {
        feature,
        actual: acc.feature(feature).expect("a value"),
        totals: acc.totals(),
        empty_value: empty,
    };
    let weights = value_influences(&fb, &values, probability);
    values
        .iter()
        .zip(weights)
        .map(|(v, w)| (v.value.clone(), w))
        .collect()
}

fn weight(influences: &[(String, f64)], value: &str) -> f64 {
    influences
        .iter()
        .find(|(v, _)| v == value)
        .map(|(_, w)| *w)
        .expect("value present")
}

#[test]
fn the_value_behind_a_high_mean_has_all_the_influence() {
    // Four airlines answer in ~100 ms, AAL in 1000 ms: the mean (280) is far off.
    let bucket = bucket_of(&[
        ("AAL", 1000.0),
        ("UAL", 98.0),
        ("DAL", 103.0),
        ("JBU", 101.0),
        ("SWA", 99.0),
    ]);
    let influences = influences_of(&bucket, Feature::Mean, None);
    assert!(weight(&influences, "AAL") > 0.95, "{influences:?}");
    for innocent in ["UAL", "DAL", "JBU", "SWA"] {
        assert!(weight(&influences, innocent) < 0.05, "{influences:?}");
    }
}

#[test]
fn a_count_spike_shared_by_two_values_names_both_and_not_the_bystander() {
    // Typical count 100 (sd 10); this bucket has 400: 190 + 190 from two values, 20 from a third.
    let mut records = Vec::new();
    for (term, n) in [("a", 190), ("b", 190), ("c", 20)] {
        records.extend(std::iter::repeat_n((term, 1.0), n));
    }
    let bucket = bucket_of(&records);
    let influences = influences_of(&bucket, Feature::Count, Some(0.0));
    // Without `a` the count is 210: still anomalous, but far less (most of the log-probability
    // goes away). Without `c` it is 380: as anomalous as ever.
    let (a, b, c) = (
        weight(&influences, "a"),
        weight(&influences, "b"),
        weight(&influences, "c"),
    );
    assert_eq!(a, b);
    assert!((INFLUENCE_CUTOFF..0.95).contains(&a), "{influences:?}");
    assert!(c < INFLUENCE_CUTOFF / 2.0, "{influences:?}");
}

#[test]
fn an_extreme_belongs_to_the_value_whose_record_it_is() {
    let bucket = bucket_of(&[("h1", 101.0), ("h2", 500.0), ("h3", 104.0)]);
    let influences = influences_of(&bucket, Feature::Max, None);
    assert_eq!(weight(&influences, "h2"), 1.0);
    assert!(weight(&influences, "h1") < 0.01, "{influences:?}");
    assert!(weight(&influences, "h3") < 0.01, "{influences:?}");
}

#[test]
fn a_lone_value_or_an_unremarkable_bucket_gives_full_influence() {
    let bucket = bucket_of(&[("only", 1000.0), ("only", 900.0)]);
    assert_eq!(
        influences_of(&bucket, Feature::Mean, None),
        vec![("only".to_string(), 1.0)]
    );
    // Nothing anomalous on the side asked about: nobody is singled out.
    let bucket = bucket_of(&[("x", 100.0), ("y", 101.0)]);
    let influences = influences_with(&bucket, Feature::Mean, None, |_| 1.0);
    assert_eq!(weight(&influences, "x"), 1.0);
    assert_eq!(weight(&influences, "y"), 1.0);
}

#[test]
fn removing_every_record_of_a_skipped_empty_bucket_clears_the_anomaly() {
    // non_zero_count: with no records left the bucket would not be scored at all.
    let mut records = vec![("a", 1.0); 300];
    records.push(("b", 1.0));
    let bucket = bucket_of(&records);
    let influences = influences_of(&bucket, Feature::Count, None);
    assert!(weight(&influences, "a") > 0.95, "{influences:?}");
    assert!(weight(&influences, "b") < 0.05, "{influences:?}");
}

fn influence(field: usize, value: &str, influence: f64) -> Influence {
    Influence {
        field,
        value: value.to_string(),
        influence,
    }
}

#[test]
fn records_name_only_values_at_or_above_the_cutoff() {
    let names = vec!["host".to_string(), "airline".to_string()];
    let listed = record_influencers(
        &[
            influence(0, "h2", 0.6),
            influence(0, "h1", INFLUENCE_CUTOFF),
            influence(0, "h3", 0.2),
            influence(1, "AAL", 0.1),
        ],
        &names,
    );
    assert_eq!(
        listed,
        vec![("host".to_string(), vec!["h1".to_string(), "h2".to_string()])]
    );
}

#[test]
fn bucket_influences_take_the_most_anomalous_record_of_each_value() {
    let names = vec!["airline".to_string(), "host".to_string()];
    let mut bucket = BucketInfluences::default();
    bucket.add_record(1e-20, &[influence(0, "AAL", 1.0), influence(1, "h1", 0.5)]);
    bucket.add_record(1e-6, &[influence(0, "AAL", 1.0), influence(0, "UAL", 0.3)]);
    let identity = vec![Normalization::identity(); 2];
    let (fields, results) = bucket.results(&names, &identity, &Normalization::identity());
    let found: Vec<(&str, &str, f64)> = results
        .iter()
        .map(|r| {
            (
                r.influencer_field_name.as_str(),
                r.influencer_field_value.as_str(),
                r.probability,
            )
        })
        .collect();
    // UAL is below the cutoff; h1's probability is p^0.5.
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0], ("airline", "AAL", 1e-20));
    assert_eq!(found[1].1, "h1");
    assert!((found[1].2 / 1e-10 - 1.0).abs() < 1e-9, "{found:?}");
    assert!(results[0].influencer_score > results[1].influencer_score);
    assert_eq!(
        results[0].influencer_score,
        results[0].initial_influencer_score
    );
    let field_names: Vec<&str> = fields
        .iter()
        .map(|f| f.influencer_field_name.as_str())
        .collect();
    assert_eq!(field_names, vec!["airline", "host"]);
    assert_eq!(fields[0].probability, 1e-20);
    assert_eq!(fields[0].anomaly_score, results[0].influencer_score);
}

#[test]
fn the_field_history_discounts_values_that_keep_spiking() {
    let names = vec!["airline".to_string()];
    let mut scoring = InfluencerScoring::new(1);
    let score_now = |scoring: &InfluencerScoring| {
        let mut bucket = BucketInfluences::default();
        bucket.add_record(1e-15, &[influence(0, "AAL", 1.0)]);
        bucket
            .results(
                &names,
                &scoring.normalizations(1),
                &Normalization::identity(),
            )
            .1[0]
            .influencer_score
    };
    let first = score_now(&scoring);
    let mut rng = TestRng::new(3);
    for _ in 0..500 {
        for _ in 0..10 {
            scoring.observe_unremarkable(raw_score(rng.uniform().max(0.05)));
        }
        let mut bucket = BucketInfluences::default();
        bucket.add_record(1e-15, &[influence(0, "AAL", 1.0)]);
        scoring.observe_records_and_age(&bucket, HistoryDecay::for_bucket_span(3_600));
    }
    let later = score_now(&scoring);
    assert!(first > 50.0, "{first}");
    assert!(later < first / 2.0, "first {first}, later {later}");
}

// --- The whole model ---

const SPAN: i64 = 3_600_000;
const AIRLINES: [&str; 5] = ["AAL", "UAL", "DAL", "JBU", "SWA"];

fn config(value: serde_json::Value) -> AnalysisConfig {
    serde_json::from_value(value).expect("test config parses")
}

fn record(config: &AnalysisConfig, pairs: &[(&str, FieldValue)]) -> Vec<Option<FieldValue>> {
    config
        .analysis_fields()
        .iter()
        .map(|f| pairs.iter().find(|(n, _)| n == f).map(|(_, v)| v.clone()))
        .collect()
}

/// `mean(responsetime)` over all airlines, `airline` an influencer; AAL answers in 1000 ms in
/// bucket `spike`, everyone ~100 ms otherwise. Returns every finalized bucket.
fn run_flights(spike: i64, buckets: i64) -> (AnomalyDetector, Vec<BucketResult>) {
    let cfg = config(json!({
        "bucket_span": "1h",
        "detectors": [{"function": "mean", "field_name": "responsetime"}],
        "influencers": ["airline"]
    }));
    let mut detector = AnomalyDetector::new(&cfg, &cfg.analysis_fields());
    let mut rng = TestRng::new(11);
    let mut results = Vec::new();
    for b in 0..buckets {
        for airline in AIRLINES {
            for _ in 0..3 {
                let value = if b == spike && airline == "AAL" {
                    1000.0
                } else {
                    rng.gaussian(100.0, 5.0)
                };
                let values = record(
                    &cfg,
                    &[
                        ("airline", FieldValue::Text(airline.to_string())),
                        ("responsetime", FieldValue::Num(value)),
                    ],
                );
                detector.add_record(b * SPAN, &values);
            }
        }
        results.push(detector.finalize_bucket(b * SPAN));
    }
    (detector, results)
}

#[test]
fn the_airline_behind_a_spike_is_the_top_influencer_and_the_others_are_not() {
    let (_, results) = run_flights(200, 201);
    let spike = &results[200];
    assert!(spike.anomaly_score >= 75.0, "{spike:?}");
    let top = &spike.influencers[0];
    assert_eq!(top.influencer_field_value, "AAL");
    assert!(top.influencer_score >= 75.0, "{top:?}");
    // The innocents did not make the mean anomalous: no influencer result for them.
    assert_eq!(spike.influencers.len(), 1, "{:?}", spike.influencers);
    assert_eq!(
        spike.records[0].influencers,
        vec![("airline".to_string(), vec!["AAL".to_string()])]
    );
    let names: Vec<&str> = spike
        .bucket_influencers
        .iter()
        .map(|b| b.influencer_field_name.as_str())
        .collect();
    assert_eq!(names, vec!["bucket_time", "airline"]);
    // Clean buckets name no influencer above a warning.
    for result in &results[..200] {
        for i in &result.influencers {
            assert!(i.influencer_score < 25.0, "{i:?} at {}", result.timestamp);
        }
    }
}

#[test]
fn interim_influencers_change_nothing_and_snapshots_round_trip() {
    let (mut detector, _) = run_flights(-1, 150);
    let cfg_values = |airline: &str, value: f64| {
        vec![
            Some(FieldValue::Num(value)),
            Some(FieldValue::Text(airline.to_string())),
        ]
    };
    for airline in AIRLINES {
        let value = if airline == "UAL" { 2000.0 } else { 100.0 };
        detector.add_record(150 * SPAN, &cfg_values(airline, value));
    }
    let before = bincode::serde::encode_to_vec(&detector, bincode::config::standard()).unwrap();
    let interim = detector.interim_bucket(150 * SPAN);
    assert_eq!(interim.influencers[0].influencer_field_value, "UAL");
    let after = bincode::serde::encode_to_vec(&detector, bincode::config::standard()).unwrap();
    assert_eq!(before, after, "interim scoring changed the model");
    let (restored, _): (AnomalyDetector, usize) =
        bincode::serde::decode_from_slice(&before, bincode::config::standard()).unwrap();
    let mut restored = restored;
    assert_eq!(
        restored.finalize_bucket(150 * SPAN),
        detector.finalize_bucket(150 * SPAN)
    );
    assert_eq!(restored, detector);
}
