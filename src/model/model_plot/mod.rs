//! Model plot (`model_plot_config`): for each finalized bucket and each modelled series, the
//! model's 95% bounds and median at the bucket's time next to the bucket's actual value, for charts.
//!
//! Owns the config as the model reads it ([`ModelPlotSpec`]: on/off and `terms`), the rows
//! ([`ModelPlotRow`]) and their Elasticsearch JSON (`result_type: "model_plot"`), and the names
//! Elasticsearch gives features (`model_feature`). The bounds are those the bucket was scored
//! against: `detector` asks for the rows after scoring and before learning, so a value outside
//! them is exactly one whose two-sided probability was below 5%. Population detectors plot as
//! Elasticsearch's do (`population::plot`): each attribute's bounds, one row per member with its
//! `over_field_value` and `actual`. Pure: no I/O, no state of its own (the spec is not part of the
//! snapshot; the job sets it from its config).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::model::accumulator::{DetectorBucket, Feature};
use crate::model::detector_model::{DetectorModel, Observation};
use crate::model::function::DetectorFunction;
use crate::model::interval::{Interval, CONFIDENCE};
use crate::model::series_table::SeriesEntry;

/// Model plot as configured: present when `model_plot_config.enabled` is true.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelPlotSpec {
    /// `terms`: only series whose by or partition value is one of these are plotted (empty: all).
    pub terms: Vec<String>,
}

impl ModelPlotSpec {
    /// The spec of a job's `model_plot_config` document, `None` when model plot is off.
    pub fn from_config(config: Option<&Value>) -> Option<ModelPlotSpec> {
        let config = config?;
        if config.get("enabled").and_then(Value::as_bool) != Some(true) {
            return None;
        }
        let terms = config
            .get("terms")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect();
        Some(ModelPlotSpec { terms })
    }

    /// Whether a series (or population attribute) with these by and partition values is plotted.
    fn plots(&self, by: &str, partition: &str) -> bool {
        self.terms.is_empty() || self.terms.iter().any(|t| t == by || t == partition)
    }
}

/// The by/partition (and, for a population member, over) identity of a series as its result
/// documents carry it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesFields {
    pub by_field_name: Option<String>,
    pub by_field_value: Option<String>,
    pub partition_field_name: Option<String>,
    pub partition_field_value: Option<String>,
    #[serde(default)]
    pub over_field_name: Option<String>,
    #[serde(default)]
    pub over_field_value: Option<String>,
}

impl SeriesFields {
    pub fn of(detector: &DetectorModel, entry: &SeriesEntry) -> SeriesFields {
        SeriesFields::of_terms(detector, &entry.by, &entry.partition, None)
    }

    /// The fields of a detector's series (or population attribute and member) with these values;
    /// each is set only when the detector has the field.
    fn of_terms(
        detector: &DetectorModel,
        by: &str,
        partition: &str,
        over: Option<&str>,
    ) -> SeriesFields {
        let name = |n: Option<&str>| n.map(String::from);
        let value = |n: Option<&str>, v: &str| n.map(|_| v.to_string());
        let over_name = over.and(detector.over_field_name());
        SeriesFields {
            by_field_name: name(detector.by_field_name()),
            by_field_value: value(detector.by_field_name(), by),
            partition_field_name: name(detector.partition_field_name()),
            partition_field_value: value(detector.partition_field_name(), partition),
            over_field_name: name(over_name),
            over_field_value: over_name.and(over).map(String::from),
        }
    }

    /// Adds the fields that are set to a result document.
    pub fn put(&self, doc: &mut Map<String, Value>) {
        let fields = [
            ("partition_field_name", &self.partition_field_name),
            ("partition_field_value", &self.partition_field_value),
            ("by_field_name", &self.by_field_name),
            ("by_field_value", &self.by_field_value),
            ("over_field_name", &self.over_field_name),
            ("over_field_value", &self.over_field_value),
        ];
        for (key, value) in fields {
            if let Some(v) = value {
                doc.insert(key.to_string(), json!(v));
            }
        }
    }
}

/// One series' feature in one finalized bucket (for a population: one member's, or an attribute's
/// bounds alone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPlotRow {
    pub detector_index: usize,
    pub model_feature: String,
    pub series: SeriesFields,
    /// `None` while the series' model is still warming up: the row then carries only `actual`.
    pub bounds: Option<(f64, f64, f64)>,
    /// `None` for a population attribute no member used in the bucket.
    pub actual: Option<f64>,
}

impl ModelPlotRow {
    /// The document Elasticsearch writes for model plot (`result_type: "model_plot"`).
    pub fn to_json(&self, job_id: &str, timestamp: i64, bucket_span_secs: i64) -> Value {
        let mut doc = Map::new();
        doc.insert("job_id".into(), json!(job_id));
        doc.insert("result_type".into(), json!("model_plot"));
        doc.insert("bucket_span".into(), json!(bucket_span_secs));
        doc.insert("detector_index".into(), json!(self.detector_index));
        doc.insert("timestamp".into(), json!(timestamp));
        doc.insert("model_feature".into(), json!(self.model_feature));
        self.series.put(&mut doc);
        if let Some((lower, median, upper)) = self.bounds {
            doc.insert("model_lower".into(), json!(lower));
            doc.insert("model_upper".into(), json!(upper));
            doc.insert("model_median".into(), json!(median));
        }
        if let Some(actual) = self.actual {
            doc.insert("actual".into(), json!(actual));
        }
        Value::Object(doc)
    }
}

/// The model plot rows of one bucket, from the observations it was scored with and its
/// accumulators (one of each per detector, in detector order; no accumulators for an empty
/// bucket) and the models as they were before learning from it.
pub fn rows(
    detectors: &[DetectorModel],
    observations: &[Vec<Observation>],
    buckets: &[DetectorBucket],
    bucket_start: i64,
    spec: &ModelPlotSpec,
) -> Vec<ModelPlotRow> {
    let time = bucket_start.div_euclid(1000);
    let mut out = Vec::new();
    for (d, (detector, observed)) in detectors.iter().zip(observations).enumerate() {
        if let Some(population) = detector.population() {
            let plot = population.plot(buckets.get(d), |partition, by| spec.plots(by, partition));
            out.extend(plot.into_iter().map(|p| ModelPlotRow {
                detector_index: detector.detector_index(),
                model_feature: population_feature(detector.function(), p.feature).to_string(),
                series: SeriesFields::of_terms(detector, p.by, p.partition, p.member.map(|m| m.0)),
                bounds: p.bounds,
                actual: p.member.map(|m| m.1),
            }));
            continue;
        }
        let features = detector.features();
        for observation in observed {
            let Some(entry) = detector.series().get(observation.series) else {
                continue;
            };
            if !spec.plots(&entry.by, &entry.partition) {
                continue;
            }
            for (f, ((feature, _), model)) in features.iter().zip(&entry.models).enumerate() {
                let actual = observation.values[f];
                if actual.is_nan() {
                    continue;
                }
                let bounds = model
                    .interval(time, CONFIDENCE)
                    .map(|i: Interval| (i.lower, i.median, i.upper));
                out.push(ModelPlotRow {
                    detector_index: detector.detector_index(),
                    model_feature: model_feature(detector.function(), *feature).to_string(),
                    series: SeriesFields::of(detector, entry),
                    bounds,
                    actual: Some(actual),
                });
            }
        }
    }
    out
}

/// Elasticsearch's name of the feature a function models (ml-cpp's feature names), as model plot
/// and forecast documents carry it in `model_feature`.
pub fn model_feature(function: DetectorFunction, feature: Feature) -> &'static str {
    use DetectorFunction as F;
    match (function, feature) {
        (F::NonZeroCount, _) => "'non-zero count per bucket by person'",
        (F::HighNonZeroCount, _) => "'high non-zero count per bucket by person'",
        (F::LowNonZeroCount, _) => "'low non-zero count per bucket by person'",
        (F::HighCount, _) => "'high values of count per bucket by person'",
        (F::LowCount, _) => "'low values of count per bucket by person'",
        (F::HighMean, _) => "'high mean value by person'",
        (F::LowMean, _) => "'low mean value by person'",
        (F::HighMedian, _) => "'high median value by person'",
        (F::LowMedian, _) => "'low median value by person'",
        (F::HighSum, _) => "'high bucket sum by person'",
        (F::LowSum, _) => "'low bucket sum by person'",
        (F::NonNullSum, _) => "'bucket non-null sum by person'",
        (F::HighNonNullSum, _) => "'high bucket non-null sum by person'",
        (F::LowNonNullSum, _) => "'low bucket non-null sum by person'",
        (_, Feature::Count) => "'count per bucket by person'",
        (_, Feature::Mean) => "'arithmetic mean value by person'",
        (_, Feature::Median) => "'median value by person'",
        (_, Feature::Min) => "'minimum value by person'",
        (_, Feature::Max) => "'maximum value by person'",
        (_, Feature::Sum) => "'bucket sum by person'",
        (_, Feature::Varp) => "'variance of values by person'",
        (_, Feature::DistinctCount) => "'unique count by person'",
        (_, Feature::InfoContent) => "'information content of value by person'",
    }
}

/// Elasticsearch's name of a population feature (ml-cpp's `'... by person and attribute'`
/// features), as population model plot documents carry it in `model_feature`.
pub fn population_feature(function: DetectorFunction, feature: Feature) -> &'static str {
    use DetectorFunction as F;
    match (function, feature) {
        (F::HighCount | F::HighNonZeroCount, _) => {
            "'high values of non-zero count per bucket by person and attribute'"
        }
        (F::LowCount | F::LowNonZeroCount, _) => {
            "'low values of non-zero count per bucket by person and attribute'"
        }
        (F::HighDistinctCount, _) => "'high unique count per bucket by person and attribute'",
        (F::LowDistinctCount, _) => "'low unique count per bucket by person and attribute'",
        (F::HighInfoContent, _) => {
            "'high information content of value per bucket by person and attribute'"
        }
        (F::LowInfoContent, _) => {
            "'low information content of value per bucket by person and attribute'"
        }
        (F::HighMean, _) => "'high mean by person and attribute'",
        (F::LowMean, _) => "'low mean by person and attribute'",
        (F::HighMedian, _) => "'high median value by person and attribute'",
        (F::LowMedian, _) => "'low median value by person and attribute'",
        (F::HighVarp, _) => "'high variance of values by person and attribute'",
        (F::LowVarp, _) => "'low variance of values by person and attribute'",
        (F::HighSum | F::HighNonNullSum, _) => "'high bucket sum by person and attribute'",
        (F::LowSum | F::LowNonNullSum, _) => "'low bucket sum by person and attribute'",
        (_, Feature::Count) => "'non-zero count per bucket by person and attribute'",
        (_, Feature::Mean) => "'mean value by person and attribute'",
        (_, Feature::Median) => "'median value by person and attribute'",
        (_, Feature::Min) => "'minimum value by person and attribute'",
        (_, Feature::Max) => "'maximum value by person and attribute'",
        (_, Feature::Sum) => "'bucket sum by person and attribute'",
        (_, Feature::Varp) => "'variance of values by person and attribute'",
        (_, Feature::DistinctCount) => "'unique count per bucket by person and attribute'",
        (_, Feature::InfoContent) => {
            "'information content of value per bucket by person and attribute'"
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
