//! The analysis part of a job config (`analysis_config`, `analysis_limits`), as Elasticsearch names it.
//!
//! These are plain serde types: `job::config` validates them and fills in defaults when a job is
//! created; the model only reads them.

use serde::{Deserialize, Serialize};

/// An Elasticsearch time value such as `5m`, `300s`, `1h`, `30d`, kept as whole milliseconds.
///
/// Serialized back in the unit it was written in (ES echoes `"bucket_span":"15m"`), so the
/// original text is kept next to the parsed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeSpan {
    pub millis: i64,
    pub text: String,
}

impl TimeSpan {
    /// Parses `<number><unit>` with units `nanos micros ms s m h d`, as Elasticsearch's TimeValue does.
    /// A bare number is rejected, like ES ("failed to parse setting ... missing unit").
    pub fn parse(text: &str) -> Result<TimeSpan, String> {
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let (digits, unit) = trimmed.split_at(split);
        let unit_ms: f64 = match unit {
            "nanos" => 1e-6,
            "micros" => 1e-3,
            "ms" => 1.0,
            "s" => 1_000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            "d" => 86_400_000.0,
            _ => {
                return Err(format!(
                    "failed to parse setting [{text}] with value [{text}] as a time value: unit is missing or unrecognized"
                ))
            }
        };
        let number: i64 = digits.parse().map_err(|_| {
            format!("failed to parse [{text}]: expected a whole number followed by a unit")
        })?;
        let millis = (number as f64 * unit_ms) as i64;
        Ok(TimeSpan {
            millis,
            text: trimmed.to_string(),
        })
    }

    pub fn from_millis(millis: i64) -> TimeSpan {
        let text = if millis % 86_400_000 == 0 {
            format!("{}d", millis / 86_400_000)
        } else if millis % 3_600_000 == 0 {
            format!("{}h", millis / 3_600_000)
        } else if millis % 60_000 == 0 {
            format!("{}m", millis / 60_000)
        } else if millis % 1000 == 0 {
            format!("{}s", millis / 1000)
        } else {
            format!("{millis}ms")
        };
        TimeSpan { millis, text }
    }

    pub fn seconds(&self) -> i64 {
        self.millis / 1000
    }
}

impl Serialize for TimeSpan {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for TimeSpan {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        TimeSpan::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `analysis_config`. Fields are in the order Elasticsearch renders them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Elasticsearch's default when a job is created without one.
    #[serde(default = "default_bucket_span")]
    pub bucket_span: TimeSpan,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categorization_field_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categorization_filters: Option<Vec<String>>,
    /// The analyzer as given (`job::config` checks which ones auspex supports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categorization_analyzer: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_partition_categorization: Option<PerPartitionCategorization>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<TimeSpan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_count_field_name: Option<String>,
    pub detectors: Vec<Detector>,
    #[serde(default)]
    pub influencers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multivariate_by_fields: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_prune_window: Option<TimeSpan>,
}

/// `per_partition_categorization`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerPartitionCategorization {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub stop_on_warn: bool,
}

/// The field detectors name to split, filter or partition by a record's category.
pub const ML_CATEGORY: &str = "mlcategory";

fn default_bucket_span() -> TimeSpan {
    TimeSpan::from_millis(5 * 60_000)
}

impl AnalysisConfig {
    pub fn latency_millis(&self) -> i64 {
        self.latency.as_ref().map_or(0, |l| l.millis)
    }

    /// Every record field the analysis reads, without duplicates, in a stable order:
    /// detector fields in detector order, then influencers, then the summary count field, then
    /// the categorization field. Ingest extracts exactly these (index = slot in
    /// `ingest::Record::values`). `mlcategory` is not read from records: the model adds it.
    pub fn analysis_fields(&self) -> Vec<String> {
        let mut fields: Vec<String> = Vec::new();
        let mut push = |name: &Option<String>| {
            if let Some(name) = name.as_ref().filter(|n| *n != ML_CATEGORY) {
                if !fields.iter().any(|f| f == name) {
                    fields.push(name.clone());
                }
            }
        };
        for d in &self.detectors {
            push(&d.field_name);
            push(&d.by_field_name);
            push(&d.over_field_name);
            push(&d.partition_field_name);
        }
        // A lat_long field may arrive as an object {"lat":..,"lon":..}: ingest flattens it.
        for d in &self.detectors {
            if d.function == "lat_long" {
                if let Some(field) = &d.field_name {
                    for part in crate::model::geo::part_fields(field) {
                        push(&Some(part));
                    }
                }
            }
        }
        for i in &self.influencers {
            push(&Some(i.clone()));
        }
        push(&self.summary_count_field_name);
        push(&self.categorization_field_name);
        fields
    }
}

/// One entry of `analysis_config.detectors`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detector_description: Option<String>,
    pub function: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_field_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over_field_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_field_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_null: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_frequent: Option<String>,
    /// As Elasticsearch renders them (`job::config` normalizes); the model applies them in the
    /// resolved form of `model::rules`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_rules: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detector_index: Option<usize>,
}

/// `analysis_limits`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisLimits {
    /// Always rendered as a string in mb (`"1024mb"`), as Elasticsearch does.
    pub model_memory_limit: String,
    pub categorization_examples_limit: u32,
}

impl Default for AnalysisLimits {
    fn default() -> Self {
        AnalysisLimits {
            model_memory_limit: "1024mb".to_string(),
            categorization_examples_limit: 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_span_units() {
        assert_eq!(TimeSpan::parse("5m").unwrap().millis, 300_000);
        assert_eq!(TimeSpan::parse("300s").unwrap().millis, 300_000);
        assert_eq!(TimeSpan::parse("1h").unwrap().millis, 3_600_000);
        assert_eq!(TimeSpan::parse("30d").unwrap().millis, 30 * 86_400_000);
        assert_eq!(TimeSpan::parse("250ms").unwrap().millis, 250);
        assert!(TimeSpan::parse("5").is_err());
        assert!(TimeSpan::parse("m").is_err());
        assert!(TimeSpan::parse("5 parsecs").is_err());
        assert_eq!(TimeSpan::from_millis(3_600_000).text, "1h");
        assert_eq!(TimeSpan::from_millis(90_000).text, "90s");
    }

    #[test]
    fn analysis_fields_are_deduplicated_in_order() {
        let config: AnalysisConfig = serde_json::from_value(serde_json::json!({
            "bucket_span": "1h",
            "detectors": [
                {"function": "mean", "field_name": "responsetime", "by_field_name": "airline"},
                {"function": "count", "by_field_name": "airline"}
            ],
            "influencers": ["airline", "host"]
        }))
        .unwrap();
        assert_eq!(
            config.analysis_fields(),
            vec!["responsetime", "airline", "host"]
        );
    }
}
