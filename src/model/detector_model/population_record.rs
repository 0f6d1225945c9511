//! How a result unit of a [`Population`] becomes an [`AnomalyRecord`]: with an over field, one
//! record per member with its `causes`; without one (`rare`, `time_of_*`, `lat_long` split by a by
//! field at most), one record per series-like pair with `actual`/`typical` at the top level.
//!
//! The record's `influencers` are the values `population_influence` finds at or above the cutoff.
//!
//! A child of `detector_model` so it reads the detector's names directly.

use super::{DetectorModel, FunctionSpec, Observation};
use crate::model::accumulator::DetectorBucket;
use crate::model::causes::{Cause, GeoResults};
use crate::model::config::Detector;
use crate::model::function::DetectorFunction;
use crate::model::geo::render_point;
use crate::model::influence::{self, Influence};
use crate::model::population::{ExcludeFrequent, Measure, PairVerdict, Population};
use crate::model::result::AnomalyRecord;
use crate::model::series::FeatureKind;

impl DetectorModel {
    pub(super) fn population_record(
        &self,
        population: &Population,
        observation: &Observation,
        bucket: Option<&DetectorBucket>,
        influences: &[Influence],
        influencer_names: &[String],
        score: f64,
    ) -> AnomalyRecord {
        let verdicts =
            population.unit_verdicts(bucket, observation.bucket_start, observation.series);
        let names = CauseNames {
            function: self.function.name().to_string(),
            field: self.field_name.clone(),
            by: self.by_field_name.clone(),
            over: self.over_field_name.clone(),
            partition: self.partition_field_name.clone(),
        };
        let describe = |v: &PairVerdict| self.population_description(population, v);
        let worst = verdicts.first();
        let worst_cause = worst.map(|v| cause(population, v, &names, describe(v)));
        let (partition, over) = if population.has_over() {
            population
                .member_terms(observation.series)
                .unwrap_or_default()
        } else {
            worst
                .and_then(|v| population.pair_terms(v.pair))
                .map(|(p, _, o)| (p, o))
                .unwrap_or_default()
        };
        let mut record = AnomalyRecord {
            detector_index: self.detector_index,
            probability: observation.assessment.probability,
            multi_bucket_impact: 0.0,
            record_score: score,
            initial_record_score: score,
            function: names.function.clone(),
            function_description: worst
                .map_or_else(|| self.function.description(), describe)
                .to_string(),
            field_name: self.field_name.clone(),
            by_field_name: None,
            by_field_value: None,
            over_field_name: self.over_field_name.clone(),
            over_field_value: self.over_field_name.as_ref().map(|_| over.to_string()),
            partition_field_name: self.partition_field_name.clone(),
            partition_field_value: self
                .partition_field_name
                .as_ref()
                .map(|_| partition.to_string()),
            actual: Vec::new(),
            typical: Vec::new(),
            causes: Vec::new(),
            geo_results: None,
            influencers: influence::record_influencers(influences, influencer_names),
        };
        match worst_cause {
            Some(cause) if !population.has_over() => {
                // An ordinary series in all but its model: the values sit on the record itself.
                record.by_field_name = cause.by_field_name;
                record.by_field_value = cause.by_field_value;
                record.actual = cause.actual;
                record.typical = cause.typical;
                record.geo_results = cause.geo_results;
            }
            _ => {
                record.causes = verdicts
                    .iter()
                    .map(|v| cause(population, v, &names, describe(v)))
                    .collect();
            }
        }
        record
    }

    /// `function_description`: the function without its side, or for `metric` the feature that was
    /// unusual.
    fn population_description(
        &self,
        population: &Population,
        verdict: &PairVerdict,
    ) -> &'static str {
        match population.measure() {
            Measure::Features(features) if self.function == DetectorFunction::Metric => features
                .get(verdict.feature)
                .map_or("metric", |(feature, _, _)| feature.name()),
            _ => self.function.description(),
        }
    }
}

/// The detector's names that results repeat.
struct CauseNames {
    function: String,
    field: Option<String>,
    by: Option<String>,
    over: Option<String>,
    partition: Option<String>,
}

/// A cause (or the record-level values) of one verdict.
fn cause(
    population: &Population,
    verdict: &PairVerdict,
    names: &CauseNames,
    function_description: &str,
) -> Cause {
    let (partition, by, over) = population.pair_terms(verdict.pair).unwrap_or_default();
    Cause {
        probability: verdict.probability,
        function: names.function.clone(),
        function_description: function_description.to_string(),
        field_name: names.field.clone(),
        by_field_name: names.by.clone(),
        by_field_value: names.by.as_ref().map(|_| by.to_string()),
        over_field_name: names.over.clone(),
        over_field_value: names.over.as_ref().map(|_| over.to_string()),
        partition_field_name: names.partition.clone(),
        partition_field_value: names.partition.as_ref().map(|_| partition.to_string()),
        actual: verdict.actual.clone(),
        typical: verdict.typical.clone(),
        geo_results: verdict.points.map(|(actual, typical)| GeoResults {
            actual_point: render_point(actual),
            typical_point: render_point(typical),
        }),
    }
}

/// The population state a detector needs: with an over field, or for a function that is
/// modelled per attribute.
pub(super) fn population_of(
    function: DetectorFunction,
    spec: Option<FunctionSpec>,
    detector: &Detector,
) -> Option<Population> {
    use DetectorFunction as F;
    let measure = match function {
        F::Rare => Measure::Rare { freq: false },
        F::FreqRare => Measure::Rare { freq: true },
        F::TimeOfDay => Measure::Phase(crate::model::input::DAY_SECS),
        F::TimeOfWeek => Measure::Phase(crate::model::input::WEEK_SECS),
        F::LatLong => Measure::Position,
        _ if detector.over_field_name.is_some() => {
            let spec = spec?;
            Measure::Features(
                spec.features()
                    .iter()
                    .zip(spec.kinds())
                    .map(|((f, t), k)| (*f, *t, k == FeatureKind::Count))
                    .collect(),
            )
        }
        _ => return None,
    };
    // Only a field the detector has can have frequent values.
    let exclude = ExcludeFrequent::parse(detector.exclude_frequent.as_deref());
    let exclude = ExcludeFrequent {
        by: exclude.by && detector.by_field_name.is_some(),
        over: exclude.over && detector.over_field_name.is_some(),
    };
    Some(Population::new(
        measure,
        detector.over_field_name.is_some(),
        exclude,
    ))
}
