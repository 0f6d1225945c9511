//! When past results are renormalized, and with what: the model's half of renormalization.
//!
//! Owns the decision, per finalized bucket, that the stored `record_score`, `anomaly_score` and
//! `influencer_score` of past results are stale ([`RenormalizationClock`], part of the model
//! snapshot), the [`Renormalization`] to rescore them with, and the rescoring of one stored result
//! document ([`rescore_document`]). Does not own the score maths (`score`: only
//! [`Normalization::score`] and [`Normalization::score_in_hindsight`] are used, so this works
//! whatever those compute) nor which documents are read and written (`job::renormalize`).
//!
//! Deciding in the model, per bucket, makes renormalization a function of the input alone: a job
//! fed in one request or a thousand, and a replay of its input, renormalize at the same buckets
//! with the same normalizations, so they store the same documents.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::score::Normalization;

/// Probabilities whose scores are watched: the severity bands' range (raw scores 2 to 20).
const PROBES: [f64; 6] = [1e-2, 1e-3, 1e-5, 1e-8, 1e-12, 1e-20];
/// A renormalization is due once the score of some probe has moved by this many points since the
/// last one: less is invisible in the results API (and in every severity band).
const MOVE_POINTS: f64 = 1.0;
/// At most one renormalization per this many buckets. Each one reads the records and influencers
/// in the window, so over a job of `B` buckets the work is at most `B / N` window scans of sparse
/// documents; a young job's history moves at nearly every anomalous bucket, and without a bound
/// it would rescan the window that often. 12 buckets keeps the total cost small next to scoring
/// (see README, Results) while a stored score lags the model by at most 12 buckets, one hour at
/// 5-minute buckets; a due renormalization is never dropped, only deferred.
const MIN_BUCKETS_BETWEEN: u32 = 12;

/// What stored results are rescored with after a bucket: the job's normalization (records,
/// buckets and `bucket_influencers`) and each influencer field's (influencers).
#[derive(Debug, Clone, PartialEq)]
pub struct Renormalization {
    pub job: Normalization,
    /// (influencer field name, its normalization), in the job's influencer order.
    pub fields: Vec<(String, Normalization)>,
}

/// The probe scores when results were last renormalized, and the buckets finalized since.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RenormalizationClock {
    /// Per normalization (job first, then fields), the score of each probe; empty before the
    /// first renormalization (stored results then follow a history-free normalization).
    scores: Vec<f64>,
    buckets_since: u32,
}

fn probe_scores<'a>(normalizations: impl Iterator<Item = &'a Normalization>) -> Vec<f64> {
    normalizations
        .flat_map(|n| PROBES.iter().map(|p| n.score(*p)))
        .collect()
}

impl RenormalizationClock {
    /// After each finalized bucket: the renormalization due, if any, given the `current` one
    /// (only built when it may be due). The clock then counts results as renormalized with it.
    pub fn renormalization_due(
        &mut self,
        current: impl FnOnce() -> Renormalization,
    ) -> Option<Renormalization> {
        self.buckets_since = self.buckets_since.saturating_add(1);
        if self.buckets_since < MIN_BUCKETS_BETWEEN {
            return None;
        }
        let current = current();
        let normalizations =
            || std::iter::once(&current.job).chain(current.fields.iter().map(|f| &f.1));
        let now = probe_scores(normalizations());
        if self.scores.len() != now.len() {
            let identity = Normalization::identity();
            self.scores = probe_scores(normalizations().map(|_| &identity));
        }
        let moved = now
            .iter()
            .zip(&self.scores)
            .any(|(now, was)| (now - was).abs() >= MOVE_POINTS);
        if !moved {
            return None;
        }
        self.scores = now;
        self.buckets_since = 0;
        Some(current)
    }
}

/// Rescores one stored bucket, record or influencer document (`result_type` says which) with
/// `renormalization`; true if a score changed. Only `record_score`, `anomaly_score` (of the
/// bucket and of each of its `bucket_influencers`) and `influencer_score` change, each from the
/// document's own `probability`; `initial_*` scores never do. Interim documents are left alone.
pub fn rescore_document(doc: &mut Value, renormalization: &Renormalization) -> bool {
    if doc["is_interim"] == Value::Bool(true) {
        return false;
    }
    let mut changed = false;
    let mut set = |target: &mut Value, probability: Option<f64>, normalization: &Normalization| {
        let Some(p) = probability else {
            return;
        };
        let score = normalization.score_in_hindsight(p);
        if target.as_f64() != Some(score) {
            *target = serde_json::json!(score);
            changed = true;
        }
    };
    let job = &renormalization.job;
    match doc["result_type"].as_str() {
        Some("record") => {
            let p = doc["probability"].as_f64();
            set(&mut doc["record_score"], p, job);
        }
        Some("influencer") => {
            let field = doc["influencer_field_name"].as_str();
            let normalization = renormalization
                .fields
                .iter()
                .find(|(name, _)| Some(name.as_str()) == field);
            if let Some((_, normalization)) = normalization {
                let p = doc["probability"].as_f64();
                set(&mut doc["influencer_score"], p, normalization);
            }
        }
        Some("bucket") => {
            let mut bucket_p = None;
            if let Some(influencers) = doc["bucket_influencers"].as_array_mut() {
                for bi in influencers {
                    let p = bi["probability"].as_f64();
                    if bi["influencer_field_name"] == "bucket_time" {
                        bucket_p = p;
                    }
                    set(&mut bi["anomaly_score"], p, job);
                }
            }
            set(&mut doc["anomaly_score"], bucket_p, job);
        }
        _ => {}
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::score::ScoreNormalizer;

    fn renormalization(job: &ScoreNormalizer, host: &ScoreNormalizer) -> Renormalization {
        Renormalization {
            job: job.normalization(),
            fields: vec![("host".into(), host.normalization())],
        }
    }

    /// Ticks the clock `buckets` times; how many renormalizations it asked for.
    fn due_over(clock: &mut RenormalizationClock, r: &Renormalization, buckets: u32) -> u32 {
        (0..buckets)
            .map(|_| u32::from(clock.renormalization_due(|| r.clone()).is_some()))
            .sum()
    }

    #[test]
    fn renormalization_is_due_when_a_score_moves_and_at_most_once_per_n_buckets() {
        let mut job = ScoreNormalizer::new();
        let host = ScoreNormalizer::new();
        let mut clock = RenormalizationClock::default();
        // No history: scores are those results were given.
        assert_eq!(due_over(&mut clock, &renormalization(&job, &host), 100), 0);
        // A big anomaly lowers what later ones of its size score: due, once.
        job.observe(12.0);
        let moved = renormalization(&job, &host);
        assert_eq!(due_over(&mut clock, &moved, 100), 1);
        // Moves on every bucket: no more than once per MIN_BUCKETS_BETWEEN.
        let mut due = 0;
        for _ in 0..(10 * MIN_BUCKETS_BETWEEN) {
            job.observe(12.0);
            job.observe(20.0);
            let r = renormalization(&job, &host);
            due += u32::from(clock.renormalization_due(|| r).is_some());
        }
        assert!((2..=10).contains(&due), "{due}");
    }

    #[test]
    fn a_moved_influencer_field_alone_makes_renormalization_due() {
        let job = ScoreNormalizer::new();
        let mut host = ScoreNormalizer::new();
        let mut clock = RenormalizationClock::default();
        host.observe(12.0);
        assert_eq!(due_over(&mut clock, &renormalization(&job, &host), 50), 1);
    }

    #[test]
    fn documents_are_rescored_from_their_probability_and_keep_initial_scores() {
        let mut job = ScoreNormalizer::new();
        let mut host = ScoreNormalizer::new();
        for _ in 0..6 {
            job.observe(12.0);
            host.observe(9.0);
        }
        let r = renormalization(&job, &host);
        let expected = r.job.score_in_hindsight(1e-12);
        assert!(expected < 50.0, "{expected}");
        let mut record = serde_json::json!({"result_type": "record", "probability": 1e-12,
            "record_score": 80.0, "initial_record_score": 80.0, "is_interim": false});
        assert!(rescore_document(&mut record, &r));
        assert_eq!(record["record_score"].as_f64(), Some(expected));
        assert_eq!(record["initial_record_score"].as_f64(), Some(80.0));
        assert!(!rescore_document(&mut record, &r), "idempotent");

        let mut bucket = serde_json::json!({"result_type": "bucket", "anomaly_score": 80.0,
            "initial_anomaly_score": 80.0, "bucket_influencers": [
                {"influencer_field_name": "bucket_time", "probability": 1e-12, "anomaly_score": 80.0,
                 "initial_anomaly_score": 80.0},
                {"influencer_field_name": "host", "probability": 1e-9, "anomaly_score": 40.0}]});
        assert!(rescore_document(&mut bucket, &r));
        assert_eq!(bucket["anomaly_score"].as_f64(), Some(expected));
        let influencers = &bucket["bucket_influencers"];
        assert_eq!(influencers[0]["anomaly_score"].as_f64(), Some(expected));
        assert_eq!(influencers[0]["initial_anomaly_score"].as_f64(), Some(80.0));
        let by_job = r.job.score_in_hindsight(1e-9);
        assert_eq!(influencers[1]["anomaly_score"].as_f64(), Some(by_job));
        assert_eq!(bucket["initial_anomaly_score"].as_f64(), Some(80.0));

        // An influencer is rescored against its own field's history.
        let mut influencer = serde_json::json!({"result_type": "influencer",
            "influencer_field_name": "host", "probability": 1e-9, "influencer_score": 40.0,
            "initial_influencer_score": 40.0});
        assert!(rescore_document(&mut influencer, &r));
        let by_host = r.fields[0].1.score_in_hindsight(1e-9);
        assert_eq!(influencer["influencer_score"].as_f64(), Some(by_host));
        assert_eq!(influencer["initial_influencer_score"].as_f64(), Some(40.0));
    }

    #[test]
    fn interim_documents_and_unknown_fields_are_left_alone() {
        let mut job = ScoreNormalizer::new();
        job.observe(12.0);
        job.observe(12.0);
        let r = renormalization(&job, &ScoreNormalizer::new());
        let mut interim = serde_json::json!({"result_type": "record", "probability": 1e-12,
            "record_score": 80.0, "is_interim": true});
        assert!(!rescore_document(&mut interim, &r));
        let mut other_field = serde_json::json!({"result_type": "influencer",
            "influencer_field_name": "user", "probability": 1e-9, "influencer_score": 40.0});
        assert!(!rescore_document(&mut other_field, &r));
        assert_eq!(other_field["influencer_score"].as_f64(), Some(40.0));
    }
}
