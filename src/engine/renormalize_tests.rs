use serde_json::json;

use super::*;
use crate::engine::storage::SledJob;
use crate::model::score::ScoreNormalizer;
use crate::store::{Commit, PersistedState, Progress, Store};

const HOUR: i64 = 3_600_000;

/// A renormalization after `anomalies` anomalies of raw score 12 (job and `host` alike).
fn after(anomalies: usize) -> Renormalization {
    let mut history = ScoreNormalizer::new();
    for _ in 0..anomalies {
        history.observe(12.0);
    }
    Renormalization {
        job: history.normalization(),
        fields: vec![("host".into(), history.normalization())],
    }
}

/// A finalized bucket at `hour` with one record (or none) and one influencer, all first scored 90.
fn bucket_docs(hour: i64, with_record: bool, interim: bool) -> Vec<ResultDoc> {
    let t = hour * HOUR;
    let p = if with_record { 1e-12 } else { 0.5 };
    let score = if with_record { 90.0 } else { 0.0 };
    let doc = |kind, json: Value| ResultDoc {
        kind,
        timestamp_ms: t,
        ordinal: 0,
        json: serde_json::to_vec(&json).expect("json"),
    };
    let mut docs = vec![doc(
        ResultKind::Bucket,
        json!({"result_type": "bucket", "timestamp": t, "anomaly_score": score,
            "initial_anomaly_score": score, "is_interim": interim, "bucket_influencers": [
                {"influencer_field_name": "bucket_time", "probability": p,
                 "anomaly_score": score, "initial_anomaly_score": score}]}),
    )];
    if with_record {
        docs.push(doc(
            ResultKind::Record,
            json!({"result_type": "record", "timestamp": t, "probability": p,
                "record_score": score, "initial_record_score": score, "is_interim": interim}),
        ));
        docs.push(doc(
            ResultKind::Influencer,
            json!({"result_type": "influencer", "timestamp": t, "influencer_field_name": "host",
                "influencer_field_value": "a", "probability": p, "influencer_score": score,
                "initial_influencer_score": score, "is_interim": interim}),
        ));
    }
    docs
}

fn commit(store: &Store, results: Vec<ResultDoc>) {
    let progress = Progress::fresh(PersistedState::Opened);
    let commit = Commit {
        input: Vec::new(),
        results,
        clear_results: None,
        progress,
    };
    store.commit("j", &commit).expect("commit");
}

/// Every stored bucket, record and influencer, parsed.
fn stored(store: &Store) -> Vec<Value> {
    [
        ResultKind::Bucket,
        ResultKind::Record,
        ResultKind::Influencer,
    ]
    .into_iter()
    .flat_map(|kind| store.scan_results("j", kind, None, None).expect("scan"))
    .map(|bytes| serde_json::from_slice(&bytes).expect("json"))
    .collect()
}

fn score_at(docs: &[Value], kind: &str, hour: i64, field: &str) -> f64 {
    docs.iter()
        .find(|d| d["result_type"] == kind && d["timestamp"] == hour * HOUR)
        .and_then(|d| d[field].as_f64())
        .unwrap_or(f64::NAN)
}

#[test]
fn window_defaults_to_the_longer_of_30_days_and_100_buckets() {
    assert_eq!(window_ms(None, HOUR), 30 * DAY_MS);
    assert_eq!(window_ms(None, 24 * HOUR), 100 * DAY_MS);
    assert_eq!(window_ms(Some(7), HOUR), 7 * DAY_MS);
    assert_eq!(window_ms(Some(u64::MAX), HOUR), i64::MAX);
}

#[test]
fn stored_documents_in_the_window_are_rescored_and_the_rest_left_alone() {
    let store = Store::temporary().expect("store");
    let mut docs = Vec::new();
    for hour in [0, 10, 20] {
        docs.extend(bucket_docs(hour, true, false));
    }
    docs.extend(bucket_docs(15, false, false));
    docs.extend(bucket_docs(30, true, true));
    commit(&store, docs);
    let before = stored(&store);
    let renormalization = after(4);
    let mut fresh = Vec::new();
    // After hour 25 with a 24-hour window: hours 1..=25.
    let changed = rescore(
        &SledJob::new(store.clone(), "j"),
        24 * HOUR,
        &[(25 * HOUR, renormalization.clone())],
        &mut fresh,
    )
    .expect("rescored");
    // The records, influencers and buckets of hours 10 and 20.
    assert_eq!((changed, fresh.len()), (6, 6));
    commit(&store, fresh);
    let now = stored(&store);
    let expected = renormalization.job.score_in_hindsight(1e-12);
    assert!(expected < 80.0, "{expected}");
    for hour in [10, 20] {
        assert_eq!(score_at(&now, "record", hour, "record_score"), expected);
        assert_eq!(score_at(&now, "bucket", hour, "anomaly_score"), expected);
        assert_eq!(
            score_at(&now, "influencer", hour, "influencer_score"),
            expected
        );
        assert_eq!(score_at(&now, "record", hour, "initial_record_score"), 90.0);
        assert_eq!(
            score_at(&now, "bucket", hour, "initial_anomaly_score"),
            90.0
        );
    }
    // Outside the window, without records, or interim: untouched.
    for (kind, hour) in [("record", 0), ("bucket", 0), ("bucket", 15), ("record", 30)] {
        let field = if kind == "record" {
            "record_score"
        } else {
            "anomaly_score"
        };
        assert_eq!(
            score_at(&now, kind, hour, field),
            score_at(&before, kind, hour, field),
            "{kind} {hour}"
        );
    }
}

/// Two renormalizations in one commit leave what they leave one commit at a time.
#[test]
fn one_commit_applies_each_document_its_last_covering_renormalization() {
    let window = 24 * HOUR;
    let renormalizations = [(20 * HOUR, after(3)), (40 * HOUR, after(9))];
    let hours = [-10, 0, 10, 19, 20, 21, 30, 39];
    let run = |split: bool| {
        let store = Store::temporary().expect("store");
        let mut pending: Vec<ResultDoc> = Vec::new();
        for hour in hours {
            if split && hour > 20 && renormalizations[0].0 < hour * HOUR && !pending.is_empty() {
                // The first renormalization is due once hour 20 is finalized: commit it there.
                rescore(
                    &SledJob::new(store.clone(), "j"),
                    window,
                    &renormalizations[..1],
                    &mut pending,
                )
                .expect("rescored");
                commit(&store, std::mem::take(&mut pending));
            }
            pending.extend(bucket_docs(hour, true, false));
        }
        let due = if split {
            &renormalizations[1..]
        } else {
            &renormalizations[..]
        };
        rescore(&SledJob::new(store.clone(), "j"), window, due, &mut pending).expect("rescored");
        commit(&store, pending);
        stored(&store)
    };
    let straight = run(false);
    assert_eq!(straight, run(true));
    let first = renormalizations[0].1.job.score_in_hindsight(1e-12);
    let second = renormalizations[1].1.job.score_in_hindsight(1e-12);
    assert_ne!(first, second);
    let expected = [
        (-10, 90.0),
        (0, first),
        (10, first),
        (19, second),
        (39, second),
    ];
    for (hour, expected) in expected {
        assert_eq!(
            score_at(&straight, "record", hour, "record_score"),
            expected,
            "{hour}"
        );
    }
}

#[test]
fn a_document_of_this_commit_replaces_the_stored_one_of_its_key() {
    let store = Store::temporary().expect("store");
    commit(&store, bucket_docs(5, true, false));
    let mut fresh = bucket_docs(5, true, false);
    let changed = rescore(
        &SledJob::new(store.clone(), "j"),
        24 * HOUR,
        &[(6 * HOUR, after(4))],
        &mut fresh,
    )
    .expect("rescored");
    // Only this commit's three documents, rescored; no stale stored copy after them.
    assert_eq!((changed, fresh.len()), (3, 3));
}
