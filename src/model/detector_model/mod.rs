//! One configured detector: which records it reads, which series they belong to, which bucket
//! features its function models, and how a scored series becomes an [`AnomalyRecord`].
//!
//! Owns the Elasticsearch function semantics (empty buckets, `use_null`, missing or non-numeric
//! metric values, summary counts as weights, high/low sides). Does not own time or bucket
//! bookkeeping (`detector`), the statistics (`series`), nor scores (`score`): it is handed the
//! bucket's accumulators and a score for each record it builds.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::ingest::FieldValue;
use crate::model::accumulator::{DetectorBucket, Feature, InfluencerMoments, SeriesAccumulator};
use crate::model::config::Detector;
use crate::model::function::{DetectorFunction, Tail};
use crate::model::influence::{self, FeatureBucket, Influence};
use crate::model::input::FieldUse;
use crate::model::population::{ExcludeFrequent, Population};
use crate::model::rare::Sightings;
use crate::model::result::AnomalyRecord;
use crate::model::series::{Assessment, FeatureKind, SeriesModel};
use crate::model::series_table::SeriesTable;

/// What a function does with a bucket in which a known series had no usable record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum EmptyBucket {
    /// `count`, `sum`: the series' value is 0.
    Zero,
    /// `non_zero_count`, `non_null_sum`, metrics: the bucket is skipped for the series.
    Skip,
}

/// The features a function models, each with the side it flags. Kept with the detector so the
/// hot path does not re-derive it per record.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct FunctionSpec {
    features: [(Feature, Tail); 3],
    len: usize,
    empty: EmptyBucket,
}

impl FunctionSpec {
    fn of(function: DetectorFunction) -> Option<FunctionSpec> {
        use DetectorFunction as F;
        let tail = function.tail();
        let single = |feature, empty| FunctionSpec {
            features: [(feature, tail); 3],
            len: 1,
            empty,
        };
        Some(match function {
            F::Count | F::HighCount | F::LowCount => single(Feature::Count, EmptyBucket::Zero),
            F::NonZeroCount | F::HighNonZeroCount | F::LowNonZeroCount => {
                single(Feature::Count, EmptyBucket::Skip)
            }
            F::Mean | F::HighMean | F::LowMean => single(Feature::Mean, EmptyBucket::Skip),
            F::Median | F::HighMedian | F::LowMedian => single(Feature::Median, EmptyBucket::Skip),
            F::Min => single(Feature::Min, EmptyBucket::Skip),
            F::Max => single(Feature::Max, EmptyBucket::Skip),
            F::Sum | F::HighSum | F::LowSum => single(Feature::Sum, EmptyBucket::Zero),
            F::NonNullSum | F::HighNonNullSum | F::LowNonNullSum => {
                single(Feature::Sum, EmptyBucket::Skip)
            }
            F::Metric => FunctionSpec {
                features: [
                    (Feature::Mean, Tail::Both),
                    (Feature::Min, Tail::Low),
                    (Feature::Max, Tail::High),
                ],
                len: 3,
                empty: EmptyBucket::Skip,
            },
            // Only buckets with values of the field have a distinct count, a variance or an
            // information content.
            F::DistinctCount | F::HighDistinctCount | F::LowDistinctCount => {
                single(Feature::DistinctCount, EmptyBucket::Skip)
            }
            F::Varp | F::HighVarp | F::LowVarp => single(Feature::Varp, EmptyBucket::Skip),
            F::InfoContent | F::HighInfoContent | F::LowInfoContent => {
                single(Feature::InfoContent, EmptyBucket::Skip)
            }
            _ => return None,
        })
    }

    fn features(&self) -> &[(Feature, Tail)] {
        &self.features[..self.len]
    }

    fn kinds(&self) -> [FeatureKind; 3] {
        self.features.map(|(f, _)| match f {
            Feature::Count | Feature::DistinctCount => FeatureKind::Count,
            _ => FeatureKind::Continuous,
        })
    }

    /// A series' value of `feature` in a bucket, or `None` when the function skips the bucket
    /// for that series.
    fn bucket_value(
        &self,
        accumulator: Option<&SeriesAccumulator>,
        feature: Feature,
    ) -> Option<f64> {
        let zero = (self.empty == EmptyBucket::Zero).then_some(0.0);
        match accumulator.and_then(|a| a.feature(feature)) {
            // Records that stand for no events (summary count 0) make an empty bucket.
            Some(count) if feature == Feature::Count && count <= 0.0 => zero,
            Some(value) => Some(value),
            None => zero,
        }
    }

    fn keeps_values(&self) -> bool {
        self.features().iter().any(|(f, _)| *f == Feature::Median)
    }
}

/// Where a job influencer's value comes from for this detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InfluencerSource {
    /// Read from each record (an allocation the first time a value appears in a bucket).
    Record,
    /// It is this detector's by field: the series key already holds the value.
    By,
    /// It is this detector's partition field.
    Partition,
}

/// One series' verdict in one bucket.
#[derive(Debug, Clone, Copy)]
pub struct Observation {
    pub series: u32,
    /// The feature values (NaN where the bucket gave none), in the function's feature order.
    pub values: [f64; 3],
    /// The most anomalous feature.
    worst: usize,
    /// Its assessment; for several features the probability is corrected for the number looked at.
    pub assessment: Assessment,
    bucket_start: i64,
}

/// A slot in the record's values; `usize::MAX` for a configured field the caller did not pass.
type Slot = Option<usize>;

/// One detector of the job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorModel {
    detector_index: usize,
    bucket_span_secs: i64,
    function: DetectorFunction,
    field_name: Option<String>,
    by_field_name: Option<String>,
    partition_field_name: Option<String>,
    field_slot: Slot,
    by_slot: Slot,
    partition_slot: Slot,
    over_field_name: Option<String>,
    over_slot: Slot,
    /// What the function reads from a record's field (or time).
    input: FieldUse,
    use_null: bool,
    /// Per job influencer, in the job's order.
    influencer_sources: Vec<InfluencerSource>,
    /// `None` for a function this model does not handle: the detector then models nothing.
    spec: Option<FunctionSpec>,
    series: SeriesTable,
    /// Population analysis, and the functions modelled per attribute rather than per series
    /// (`rare`, `freq_rare`, `time_of_*`, `lat_long`); `series` is then unused.
    population: Option<Box<Population>>,
    /// `exclude_frequent` on a plain by-field detector: buckets each series was seen in.
    frequent_by: Option<Sightings>,
}

/// The value in `slot` as a series term. `Some("")` when the field is not configured;
/// `None` when the record lacks it and `use_null` is off (the record is ignored).
fn term<'a>(values: &'a [Option<FieldValue>], slot: Slot, use_null: bool) -> Option<Cow<'a, str>> {
    let Some(slot) = slot else {
        return Some(Cow::Borrowed(""));
    };
    match values.get(slot).and_then(Option::as_ref) {
        Some(value) => Some(value.as_term()),
        None => use_null.then_some(Cow::Borrowed("")),
    }
}

impl DetectorModel {
    pub fn new(
        index: usize,
        bucket_span_secs: i64,
        detector: &Detector,
        fields: &[String],
        influencers: &[String],
    ) -> DetectorModel {
        let slot = |name: &Option<String>| -> Slot {
            name.as_ref()
                .map(|n| fields.iter().position(|f| f == n).unwrap_or(usize::MAX))
        };
        let influencer_sources = influencers
            .iter()
            .map(|name| {
                if detector.by_field_name.as_deref() == Some(name.as_str()) {
                    InfluencerSource::By
                } else if detector.partition_field_name.as_deref() == Some(name.as_str()) {
                    InfluencerSource::Partition
                } else {
                    InfluencerSource::Record
                }
            })
            .collect();
        // An unknown function is rejected at job creation; here it just models nothing.
        let function =
            DetectorFunction::parse(&detector.function).unwrap_or(DetectorFunction::Rare);
        let spec = FunctionSpec::of(function);
        let slot_of = |name: &str| fields.iter().position(|f| f == name).unwrap_or(usize::MAX);
        let population = population_record::population_of(function, spec, detector);
        let frequent_by = (population.is_none()
            && detector.by_field_name.is_some()
            && ExcludeFrequent::parse(detector.exclude_frequent.as_deref()).by)
            .then(Sightings::default);
        DetectorModel {
            detector_index: detector.detector_index.unwrap_or(index),
            bucket_span_secs,
            function,
            field_name: detector.field_name.clone(),
            by_field_name: detector.by_field_name.clone(),
            partition_field_name: detector.partition_field_name.clone(),
            field_slot: slot(&detector.field_name),
            by_slot: slot(&detector.by_field_name),
            partition_slot: slot(&detector.partition_field_name),
            over_field_name: detector.over_field_name.clone(),
            over_slot: slot(&detector.over_field_name),
            input: FieldUse::of(function, detector.field_name.as_deref(), slot_of),
            use_null: detector.use_null.unwrap_or(false),
            influencer_sources,
            spec,
            series: SeriesTable::default(),
            population: population.map(Box::new),
            frequent_by,
        }
    }

    pub fn series(&self) -> &SeriesTable {
        &self.series
    }

    pub fn series_mut(&mut self) -> &mut SeriesTable {
        &mut self.series
    }

    pub fn has_by_field(&self) -> bool {
        self.by_field_name.is_some()
    }

    pub fn has_partition_field(&self) -> bool {
        self.partition_field_name.is_some()
    }

    pub fn population(&self) -> Option<&Population> {
        self.population.as_deref()
    }

    /// Sets the bytes new series (or population members) may take while the next record is added.
    pub fn set_budget(&mut self, budget: Option<u64>) {
        match self.population.as_mut() {
            Some(population) => population.set_budget(budget),
            None => self.series.set_budget(budget),
        }
    }

    /// What is left of the budget.
    pub fn budget(&self) -> Option<u64> {
        match self.population.as_deref() {
            Some(population) => population.budget(),
            None => self.series.budget(),
        }
    }

    /// Whether something new was refused since the last call.
    pub fn take_refused(&mut self) -> bool {
        match self.population.as_mut() {
            Some(population) => population.take_refused(),
            None => self.series.take_refused(),
        }
    }

    /// Adds one record (of summary-count `weight`) to this detector's accumulators of a bucket.
    /// `influencer_slots[i]` is the record slot of the job's i-th influencer.
    pub fn add_record(
        &mut self,
        bucket_start: i64,
        time_ms: i64,
        values: &[Option<FieldValue>],
        weight: f64,
        bucket: &mut DetectorBucket,
        influencer_slots: &[usize],
    ) {
        let Some(over) = term(values, self.over_slot, self.use_null) else {
            return;
        };
        let Some(partition) = term(values, self.partition_slot, self.use_null) else {
            return;
        };
        let Some(by) = term(values, self.by_slot, self.use_null) else {
            return;
        };
        // A field that is missing or unusable (not a number for a metric, not a point for
        // lat_long) makes the record count as missing.
        let Some(input) = self.input.read(values, time_ms) else {
            return;
        };
        let keep_values = self.spec.is_some_and(|s| s.keeps_values());
        // `None`: a new series (or population member) past the memory limit, not modelled.
        let id = if let Some(population) = self.population.as_mut() {
            population.find_or_insert(&partition, &by, &over, bucket_start)
        } else if let Some(spec) = self.spec {
            self.series_id(spec, &partition, &by, bucket_start)
        } else {
            return;
        };
        let Some(id) = id else {
            return;
        };
        let accumulator = bucket.entry(id);
        let value = input.number();
        self.input.apply(&input, weight, keep_values, accumulator);
        for (i, source) in self.influencer_sources.iter().enumerate() {
            if *source != InfluencerSource::Record {
                continue;
            }
            if let Some(v) = influencer_slots
                .get(i)
                .and_then(|s| values.get(*s))
                .and_then(Option::as_ref)
            {
                accumulator.add_influencer(i as u32, &v.as_term(), weight, value);
            }
        }
    }

    fn series_id(
        &mut self,
        spec: FunctionSpec,
        partition: &str,
        by: &str,
        bucket_start: i64,
    ) -> Option<u32> {
        if self.by_slot.is_none() && self.partition_slot.is_none() && self.series.count() == 1 {
            // The only series there can be: no key to hash.
            self.series.touch(0, bucket_start);
            return Some(0);
        }
        let kinds = spec.kinds();
        self.series.find_or_insert(
            partition,
            by,
            bucket_start,
            &kinds[..spec.len],
            self.bucket_span_secs,
        )
    }

    /// Scores every series that has a value in the bucket starting at `bucket_start`, learning
    /// nothing. Series first seen after this bucket are left out (no zero before their birth).
    pub fn score(&self, bucket: Option<&DetectorBucket>, bucket_start: i64) -> Vec<Observation> {
        if let Some(population) = &self.population {
            return population
                .score(bucket, bucket_start)
                .into_iter()
                .map(|(unit, assessment)| Observation {
                    series: unit,
                    values: [f64::NAN; 3],
                    worst: 0,
                    assessment,
                    bucket_start,
                })
                .collect();
        }
        let Some(spec) = self.spec else {
            return Vec::new();
        };
        let mut observations = Vec::new();
        for (id, entry) in self.series.entries().iter().enumerate() {
            let id = id as u32;
            if entry.first_seen > bucket_start
                || self.frequent_by.as_ref().is_some_and(|f| f.is_frequent(id))
            {
                continue;
            }
            let accumulator = bucket.and_then(|b| b.get(id));
            let mut values = [f64::NAN; 3];
            let mut worst: Option<(usize, Assessment)> = None;
            let mut scored_features = 0;
            for (f, (feature, tail)) in spec.features().iter().enumerate() {
                let Some(value) = spec.bucket_value(accumulator, *feature) else {
                    continue;
                };
                let Some(model) = entry.models.get(f) else {
                    continue;
                };
                values[f] = value;
                let assessment = model.probability(bucket_start.div_euclid(1000), value, *tail);
                scored_features += 1;
                if worst.is_none_or(|(_, w)| assessment.probability < w.probability) {
                    worst = Some((f, assessment));
                }
            }
            let Some((worst, mut assessment)) = worst else {
                continue;
            };
            if scored_features > 1 {
                // Šidák: the chance that the smallest of k probabilities is this small.
                let p = assessment.probability;
                assessment.probability =
                    (-((scored_features as f64) * (-p).ln_1p()).exp_m1()).clamp(p, 1.0);
            }
            observations.push(Observation {
                series: id,
                values,
                worst,
                assessment,
                bucket_start,
            });
        }
        observations
    }

    /// What custom rules judge this series on in this bucket (`model::rules`).
    pub fn rule_subject(
        &self,
        observation: &Observation,
        bucket_start: i64,
    ) -> crate::model::rules::RuleSubject<'_> {
        let entry = self.series.get(observation.series);
        fn field<'a>(
            name: &'a Option<String>,
            value: Option<&'a String>,
        ) -> Option<(&'a str, &'a str)> {
            name.as_deref().zip(value.map(String::as_str))
        }
        crate::model::rules::RuleSubject {
            fields: [
                field(&self.partition_field_name, entry.map(|e| &e.partition)),
                field(&self.by_field_name, entry.map(|e| &e.by)),
            ],
            actual: observation.values[observation.worst.min(2)],
            typical: observation.assessment.typical,
            time_secs: bucket_start.div_euclid(1000),
        }
    }

    /// Learns the bucket's values (after scoring it). Returns the series that started predicting
    /// with a longer seasonal component, with its period in seconds ([`SeriesModel::update`]).
    pub fn learn(
        &mut self,
        bucket_start: i64,
        observations: &[Observation],
        bucket: Option<&DetectorBucket>,
    ) -> Vec<(u32, i64)> {
        if let Some(population) = self.population.as_mut() {
            population.learn(bucket, bucket_start);
            return Vec::new();
        }
        if let Some(frequent) = self.frequent_by.as_mut() {
            for id in 0..self.series.count() as u32 {
                if bucket.is_some_and(|b| b.contains(id)) {
                    frequent.add(id, 1.0);
                }
            }
            frequent.end_bucket();
        }
        let time = bucket_start.div_euclid(1000);
        let mut adopted = Vec::new();
        for observation in observations {
            let Some(entry) = self.series.get_mut(observation.series) else {
                continue;
            };
            let mut period = None;
            for (model, value) in entry.models.iter_mut().zip(observation.values) {
                if !value.is_nan() {
                    period = period.max(model.update(time, value, 1.0));
                }
            }
            adopted.extend(period.map(|p| (observation.series, p)));
        }
        adopted
    }

    /// The record document of an anomalous observation; `influences` are its values' influences
    /// ([`DetectorModel::influences`]).
    pub fn record(
        &self,
        observation: &Observation,
        bucket: Option<&DetectorBucket>,
        influences: &[Influence],
        influencer_names: &[String],
        score: f64,
    ) -> AnomalyRecord {
        if let Some(population) = &self.population {
            return self.population_record(
                population,
                observation,
                bucket,
                influences,
                influencer_names,
                score,
            );
        }
        let entry = self.series.get(observation.series);
        let feature = self
            .spec
            .map_or(Feature::Count, |s| s.features[observation.worst.min(2)].0);
        let function_description = if self.function == DetectorFunction::Metric {
            feature.name()
        } else {
            self.function.description()
        };
        AnomalyRecord {
            detector_index: self.detector_index,
            probability: observation.assessment.probability,
            multi_bucket_impact: observation.assessment.multi_bucket_impact,
            record_score: score,
            initial_record_score: score,
            function: self.function.name().to_string(),
            function_description: function_description.to_string(),
            field_name: self.field_name.clone(),
            by_field_name: self.by_field_name.clone(),
            by_field_value: self.by_field_name.as_ref().and(entry.map(|e| e.by.clone())),
            over_field_name: None,
            over_field_value: None,
            partition_field_name: self.partition_field_name.clone(),
            partition_field_value: self
                .partition_field_name
                .as_ref()
                .and(entry.map(|e| e.partition.clone())),
            actual: vec![observation.values[observation.worst.min(2)]],
            typical: vec![observation.assessment.typical],
            causes: Vec::new(),
            geo_results: None,
            influencers: influence::record_influencers(influences, influencer_names),
        }
    }

    /// How much each influencer value in the series-bucket of `observation` made it anomalous,
    /// judged on its most anomalous feature, on the side the anomaly is on.
    pub fn influences(
        &self,
        observation: &Observation,
        bucket: Option<&DetectorBucket>,
        bucket_start: i64,
    ) -> Vec<Influence> {
        if let Some(population) = &self.population {
            return self.population_influences(population, observation, bucket);
        }
        let (Some(spec), Some(entry)) = (self.spec, self.series.get(observation.series)) else {
            return Vec::new();
        };
        let worst = observation.worst.min(spec.len - 1);
        let (feature, tail) = spec.features[worst];
        let actual = observation.values[worst];
        let side = match tail {
            Tail::Both if actual < observation.assessment.typical => Tail::Low,
            Tail::Both => Tail::High,
            one_sided => one_sided,
        };
        let time = bucket_start.div_euclid(1000);
        let model = entry.models.get(worst);
        let probability =
            |value: f64| model.map_or(1.0, |m| m.probability(time, value, side).probability);
        let accumulator = bucket.and_then(|b| b.get(observation.series));
        let mut influences = Vec::new();
        for (field, source) in self.influencer_sources.iter().enumerate() {
            let own = match source {
                InfluencerSource::By => &entry.by,
                InfluencerSource::Partition => &entry.partition,
                InfluencerSource::Record => {
                    let Some(accumulator) = accumulator else {
                        continue;
                    };
                    // A use_null series or an empty term has no real value for the field.
                    let values: Vec<&InfluencerMoments> = accumulator
                        .influencers
                        .iter()
                        .filter(|e| e.influencer == field as u32 && !e.value.is_empty())
                        .collect();
                    let feature_bucket = FeatureBucket {
                        feature,
                        actual,
                        totals: accumulator.totals(),
                        empty_value: (spec.empty == EmptyBucket::Zero).then_some(0.0),
                    };
                    let weights =
                        influence::value_influences(&feature_bucket, &values, probability);
                    influences.extend(values.iter().zip(weights).map(|(v, influence)| Influence {
                        field,
                        value: v.value.clone(),
                        influence,
                    }));
                    continue;
                }
            };
            if !own.is_empty() {
                influences.push(Influence {
                    field,
                    value: own.clone(),
                    influence: 1.0,
                });
            }
        }
        influences
    }

    /// Whether the series' misfits may yet be explained by a longer cycle (`model::misfits`).
    pub fn may_explain_misfits(&self, series: u32) -> bool {
        self.population.is_none()
            && self.series.get(series).is_some_and(|entry| {
                entry
                    .models
                    .iter()
                    .any(|model| model.may_learn_longer_cycle())
            })
    }

    /// Forgets series for which `keep` is false; returns old id -> new id (`u32::MAX` = gone).
    pub fn retain_series(&mut self, keep: impl FnMut(u32, i64) -> bool) -> Vec<u32> {
        let mut keep = keep;
        if let Some(population) = self.population.as_mut() {
            return population.retain(keep);
        }
        let remap = self.series.retain(|id, e| keep(id, e.last_seen));
        if let Some(frequent) = self.frequent_by.as_mut() {
            frequent.remap(&remap);
        }
        remap
    }
}

/// What model plot and forecasts read of a detector (`model_plot`, `forecast`).
impl DetectorModel {
    pub fn detector_index(&self) -> usize {
        self.detector_index
    }

    pub fn function(&self) -> DetectorFunction {
        self.function
    }

    pub fn by_field_name(&self) -> Option<&str> {
        self.by_field_name.as_deref()
    }

    pub fn partition_field_name(&self) -> Option<&str> {
        self.partition_field_name.as_deref()
    }

    pub fn over_field_name(&self) -> Option<&str> {
        self.over_field_name.as_deref()
    }

    /// Population analysis (an over field): such a detector is not forecast.
    pub fn has_over_field(&self) -> bool {
        self.over_slot.is_some()
    }

    /// The modelled features with their sides, in model order (none for an unmodelled function).
    pub fn features(&self) -> &[(Feature, Tail)] {
        self.spec.as_ref().map_or(&[], FunctionSpec::features)
    }
}
mod population_record;

mod population_influence;
