//! Influencers: which values of the job's influencer fields made a record anomalous, how much
//! (an influence in 0..1), and what that makes of each value's probability and score in a bucket.
//!
//! Owns the influence calculation, the per-bucket aggregation into influencer results and
//! `bucket_influencers`, and the influencer score normalizers (part of the model snapshot).
//! Does not own the statistics of a value's records (`accumulator`), the series models or which
//! series are records (`detector_model`), nor the score mapping itself (`score`).
//!
//! The idea, as in Elasticsearch: a value influenced an anomaly when the anomaly depends on its
//! records. For additive features (count, sum, mean) the bucket is re-scored *without* the value's
//! records: if the anomaly goes away, the value explains it (`1 - ln p_without / ln p`). For
//! extremes (min, max) the value's records are scored *alone*: if they are as anomalous as the
//! whole, the value explains it (`ln p_only / ln p`). A series with a single value of a field, or
//! whose by/partition field is the influencer, gives that value influence 1. Values below
//! [`INFLUENCE_CUTOFF`] are not named by the record and get no influencer result from it.
//!
//! A value's probability for one record is `p^influence`; its probability in a bucket is the
//! smallest over the records it influenced, and a field's (`bucket_influencers`) the smallest over
//! its values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::accumulator::{Feature, InfluencerMoments, Moments};
use crate::model::result::{BucketInfluencer, InfluencerResult};
use crate::model::score::{raw_score, HistoryDecay, Normalization, ScoreNormalizer};

/// A value with less influence than this on a record is not one of the record's influencers
/// (Elasticsearch's default cutoff).
pub const INFLUENCE_CUTOFF: f64 = 0.5;

/// One influencer value's influence on one anomalous record.
#[derive(Debug, Clone, PartialEq)]
pub struct Influence {
    /// Index of the field in the job's influencer list.
    pub field: usize,
    pub value: String,
    pub influence: f64,
}

/// How a value's records are set against the whole bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counterfactual {
    /// The bucket without the value's records.
    Without,
    /// Only the value's records.
    Only,
}

/// The counterfactual and the feature to compute on it. A median cannot be split by value (the
/// values are not kept per influencer), so a value's records stand for themselves by their mean.
fn counterfactual(feature: Feature) -> (Counterfactual, Feature) {
    match feature {
        Feature::Count | Feature::Sum | Feature::Mean => (Counterfactual::Without, feature),
        Feature::Median => (Counterfactual::Only, Feature::Mean),
        Feature::Min | Feature::Max => (Counterfactual::Only, feature),
        // Variance, distinct values and information content are not kept per value either: a
        // value's records stand for themselves by their count.
        Feature::Varp | Feature::DistinctCount | Feature::InfoContent => {
            (Counterfactual::Only, Feature::Count)
        }
    }
}

/// `ln p_only / ln p`: the share of the anomaly the value's records carry alone.
fn intersection_influence(log_p: f64, log_p_only: f64) -> f64 {
    if log_p == 0.0 {
        return 1.0;
    }
    (log_p_only / log_p).clamp(0.0, 1.0)
}

/// `1 - ln p_without / ln p`: the share of the anomaly that goes away without the value's records.
fn complement_influence(log_p: f64, log_p_without: f64) -> f64 {
    if log_p == 0.0 {
        return 0.0;
    }
    (1.0 - log_p_without / log_p).clamp(0.0, 1.0)
}

/// One series-bucket's feature as the influence calculation sees it.
pub struct FeatureBucket<'a> {
    pub feature: Feature,
    /// The series' value of the feature in the bucket (what the record reports as `actual`).
    pub actual: f64,
    /// All the series' records in the bucket.
    pub totals: &'a Moments,
    /// The feature's value when no record is left (`Some(0)` for count and sum; `None` when the
    /// function skips an empty bucket, which is then not anomalous at all).
    pub empty_value: Option<f64>,
}

/// The influence of each of `values` (the values of one field in the series-bucket) on its
/// anomaly. `probability(v)` scores a feature value on the side the anomaly is on.
pub fn value_influences(
    bucket: &FeatureBucket,
    values: &[&InfluencerMoments],
    probability: impl Fn(f64) -> f64,
) -> Vec<f64> {
    if values.len() <= 1 {
        return vec![1.0; values.len()];
    }
    let log_p = probability(bucket.actual).ln();
    // NaN included: a probability of 1 (or garbage) singles no value out.
    if log_p.is_nan() || log_p >= 0.0 {
        // Nothing anomalous on this side: no value is more to blame than another.
        return vec![1.0; values.len()];
    }
    let (kind, feature) = counterfactual(bucket.feature);
    values
        .iter()
        .map(|v| {
            let value = match kind {
                Counterfactual::Only => v.moments.feature(feature),
                Counterfactual::Without => {
                    let rest = bucket.totals.without(&v.moments);
                    if rest.count <= 0.0 {
                        bucket.empty_value
                    } else {
                        rest.feature(feature)
                    }
                }
            };
            let log_p_value = value.map_or(0.0, |x| probability(x).ln());
            match kind {
                Counterfactual::Only => intersection_influence(log_p, log_p_value),
                Counterfactual::Without => complement_influence(log_p, log_p_value),
            }
        })
        .collect()
}

/// The record's influencers as it lists them: values at or above the cutoff, per field name
/// (sorted), values sorted and deduplicated.
pub fn record_influencers(
    influences: &[Influence],
    names: &[String],
) -> Vec<(String, Vec<String>)> {
    let mut per_field: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for i in influences
        .iter()
        .filter(|i| i.influence >= INFLUENCE_CUTOFF)
    {
        if let Some(name) = names.get(i.field) {
            per_field.entry(name).or_default().push(i.value.clone());
        }
    }
    per_field
        .into_iter()
        .map(|(name, mut values)| {
            values.sort();
            values.dedup();
            (name.to_string(), values)
        })
        .collect()
}

/// What one bucket's anomalous records say about the influencer values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BucketInfluences {
    /// (field, value) -> smallest `p^influence` over the records the value influenced.
    values: BTreeMap<(usize, String), f64>,
    /// Per record and field with an influencer: the raw score the field's history learns,
    /// `raw(p) * largest influence`.
    record_raws: Vec<(usize, f64)>,
    /// Records seen (each one history observation per field).
    records: usize,
}

impl BucketInfluences {
    /// Adds one anomalous record of probability `probability` and its values' influences.
    pub fn add_record(&mut self, probability: f64, influences: &[Influence]) {
        self.records += 1;
        let raw = raw_score(probability);
        let mut strongest: BTreeMap<usize, f64> = BTreeMap::new();
        for i in influences
            .iter()
            .filter(|i| i.influence >= INFLUENCE_CUTOFF)
        {
            let p = probability.powf(i.influence);
            let slot = self.values.entry((i.field, i.value.clone())).or_insert(1.0);
            *slot = slot.min(p);
            let best = strongest.entry(i.field).or_insert(0.0);
            *best = best.max(i.influence);
        }
        self.record_raws
            .extend(strongest.into_iter().map(|(f, w)| (f, raw * w)));
    }

    /// The bucket's influencer results, most anomalous first, and one `bucket_influencers` entry
    /// per field that influenced it (scored with the bucket's own `normalization`), in field order.
    pub fn results(
        &self,
        names: &[String],
        scoring: &[Normalization],
        normalization: &Normalization,
    ) -> (Vec<BucketInfluencer>, Vec<InfluencerResult>) {
        let mut results = Vec::with_capacity(self.values.len());
        let mut per_field: BTreeMap<usize, f64> = BTreeMap::new();
        for ((field, value), p) in &self.values {
            let (Some(name), Some(field_normalization)) = (names.get(*field), scoring.get(*field))
            else {
                continue;
            };
            let lowest = per_field.entry(*field).or_insert(1.0);
            *lowest = lowest.min(*p);
            let score = field_normalization.score(*p);
            results.push(InfluencerResult {
                influencer_field_name: name.clone(),
                influencer_field_value: value.clone(),
                probability: *p,
                influencer_score: score,
                initial_influencer_score: score,
            });
        }
        results.sort_by(|a, b| {
            b.influencer_score
                .total_cmp(&a.influencer_score)
                .then(a.probability.total_cmp(&b.probability))
                .then_with(|| a.influencer_field_name.cmp(&b.influencer_field_name))
                .then_with(|| a.influencer_field_value.cmp(&b.influencer_field_value))
        });
        let bucket_influencers = per_field
            .into_iter()
            .map(|(field, p)| bucket_influencer(&names[field], p, normalization))
            .collect();
        (bucket_influencers, results)
    }
}

/// A `bucket_influencers` entry: `bucket_time` or an influencer field, scored like the bucket.
pub fn bucket_influencer(
    name: &str,
    probability: f64,
    normalization: &Normalization,
) -> BucketInfluencer {
    let score = normalization.score(probability);
    BucketInfluencer {
        influencer_field_name: name.to_string(),
        initial_anomaly_score: score,
        anomaly_score: score,
        raw_anomaly_score: raw_score(probability),
        probability,
    }
}

/// One score history per influencer field (job order): what is unusual for an influencer is
/// judged against that field's past, as Elasticsearch keeps a normalizer per influencer field.
///
/// Every scored series-bucket of a finalized bucket is one observation of every field: a record
/// contributes `raw(p)` scaled by the field's largest influence on it (0 when the field had no
/// say), any other series-bucket its plain `raw(p)` (what the field could at most have inherited).
/// The histogram therefore counts the same population as the job's own normalizer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InfluencerScoring {
    normalizers: Vec<ScoreNormalizer>,
}

impl InfluencerScoring {
    pub fn new(fields: usize) -> InfluencerScoring {
        InfluencerScoring {
            normalizers: vec![ScoreNormalizer::new(); fields],
        }
    }

    /// Each field's normalization for the next bucket, the history shared among `series`.
    pub fn normalizations(&self, series: usize) -> Vec<Normalization> {
        self.normalizers
            .iter()
            .map(|normalizer| normalizer.normalization_per_series(series))
            .collect()
    }

    /// A scored series-bucket that is not a record.
    pub fn observe_unremarkable(&mut self, raw: f64) {
        for normalizer in &mut self.normalizers {
            normalizer.observe(raw);
        }
    }

    /// The records of a finalized bucket, then ages every history by one bucket.
    pub fn observe_records_and_age(&mut self, influences: &BucketInfluences, decay: HistoryDecay) {
        for (field, normalizer) in self.normalizers.iter_mut().enumerate() {
            let mut seen = 0;
            for (_, raw) in influences.record_raws.iter().filter(|(f, _)| *f == field) {
                normalizer.observe(*raw);
                seen += 1;
            }
            for _ in seen..influences.records {
                normalizer.observe(0.0);
            }
            normalizer.end_bucket(decay);
        }
    }
}

#[cfg(test)]
mod tests;
