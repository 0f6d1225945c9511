//! Which influencer values made a population result unit anomalous, and how much: the
//! population side of [`DetectorModel::influences`], so population records feed influencer
//! results and `bucket_influencers` exactly like series records do.
//!
//! A unit (a member with an over field, else a pair) is anomalous through its causes, one pair per
//! attribute. As in Elasticsearch, each cause is judged on its own: a value's influence on a cause
//! is computed like a series' (`influence::value_influences` on the cause's most unusual feature,
//! re-scored against the attribute's population model), the by or partition value of the cause
//! has influence 1 on it, and a value that is the only one of its field in the cause (the over
//! value itself, when the over field is an influencer) has influence 1 too. A cause counts towards
//! the unit in proportion to the share of the unit's anomaly it carries (`ln p_cause / ln p_unit`,
//! 1 for the worst cause), and a value's influence on the unit is its largest over the causes.
//! For the measures that are not bucket features (rare, times, positions) every value of a cause
//! carries it whole, as Elasticsearch's indicator influence does.
//!
//! A child of `detector_model` so it reads the detector's influencer sources directly.

use std::collections::BTreeMap;

use super::{DetectorModel, EmptyBucket, InfluencerSource, Observation};
use crate::model::accumulator::{DetectorBucket, InfluencerMoments};
use crate::model::function::Tail;
use crate::model::influence::{self, FeatureBucket, Influence};
use crate::model::population::{PairVerdict, Population};

impl DetectorModel {
    /// The influences on the population unit of `observation`, in (field, value) order.
    pub(super) fn population_influences(
        &self,
        population: &Population,
        observation: &Observation,
        bucket: Option<&DetectorBucket>,
    ) -> Vec<Influence> {
        let verdicts =
            population.unit_verdicts(bucket, observation.bucket_start, observation.series);
        let log_p = observation.assessment.probability.ln();
        let mut strongest: BTreeMap<(usize, String), f64> = BTreeMap::new();
        for verdict in &verdicts {
            let share = if log_p < 0.0 {
                (verdict.probability.ln() / log_p).clamp(0.0, 1.0)
            } else {
                1.0
            };
            for (field, value, influence) in self.cause_influences(population, verdict, bucket) {
                let slot = strongest.entry((field, value)).or_insert(0.0);
                *slot = slot.max(influence * share);
            }
        }
        strongest
            .into_iter()
            .filter(|((_, value), _)| !value.is_empty())
            .map(|((field, value), influence)| Influence {
                field,
                value,
                influence,
            })
            .collect()
    }

    /// (field, value, influence) of every influencer value on one cause.
    fn cause_influences(
        &self,
        population: &Population,
        verdict: &PairVerdict,
        bucket: Option<&DetectorBucket>,
    ) -> Vec<(usize, String, f64)> {
        let Some((partition, by, _)) = population.pair_terms(verdict.pair) else {
            return Vec::new();
        };
        let accumulator = bucket.and_then(|b| b.get(verdict.pair));
        let mut out = Vec::new();
        for (field, source) in self.influencer_sources.iter().enumerate() {
            match source {
                InfluencerSource::By => out.push((field, by.to_string(), 1.0)),
                InfluencerSource::Partition => out.push((field, partition.to_string(), 1.0)),
                InfluencerSource::Record => {
                    let Some(accumulator) = accumulator else {
                        continue;
                    };
                    let values: Vec<&InfluencerMoments> = accumulator
                        .influencers
                        .iter()
                        .filter(|e| e.influencer == field as u32 && !e.value.is_empty())
                        .collect();
                    let weights = match population.feature_of(verdict.feature) {
                        Some((feature, tail)) => {
                            let (Some(&actual), Some(&typical)) =
                                (verdict.actual.first(), verdict.typical.first())
                            else {
                                continue;
                            };
                            let side = match tail {
                                Tail::Both if actual < typical => Tail::Low,
                                Tail::Both => Tail::High,
                                one_sided => one_sided,
                            };
                            let bucket = FeatureBucket {
                                feature,
                                actual,
                                totals: accumulator.totals(),
                                empty_value: self
                                    .spec
                                    .is_some_and(|s| s.empty == EmptyBucket::Zero)
                                    .then_some(0.0),
                            };
                            influence::value_influences(&bucket, &values, |x| {
                                population.feature_probability(
                                    verdict.pair,
                                    verdict.feature,
                                    x,
                                    side,
                                )
                            })
                        }
                        None => vec![1.0; values.len()],
                    };
                    out.extend(
                        values
                            .iter()
                            .zip(weights)
                            .map(|(v, w)| (field, v.value.clone(), w)),
                    );
                }
            }
        }
        out
    }
}
