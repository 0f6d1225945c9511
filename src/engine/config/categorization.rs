//! The categorization settings of `analysis_config` as Elasticsearch checks them, with its
//! messages: `categorization_filters` (non-empty, unique, valid regexes, not together with an
//! analyzer), `categorization_analyzer` (only with a field; auspex refuses analyzers it cannot run,
//! see `model::categorize::tokenize`), and `per_partition_categorization` (every detector that
//! uses `mlcategory` has the same partition field).

use crate::engine::JobError;
use crate::model::categorize::tokenize::AnalyzerSpec;
use crate::model::{AnalysisConfig, ML_CATEGORY};

fn invalid(message: impl Into<String>) -> JobError {
    JobError::InvalidArgument(message.into())
}

pub(super) fn check_categorization(config: &AnalysisConfig) -> Result<(), JobError> {
    if config.categorization_analyzer.is_some() && config.categorization_field_name.is_none() {
        return Err(invalid(
            "categorization_analyzer requires setting categorization_field_name",
        ));
    }
    if let Some(filters) = &config.categorization_filters {
        if config.categorization_analyzer.is_some() && !filters.is_empty() {
            return Err(invalid("categorization_filters cannot be used with categorization_analyzer - instead specify them as pattern_replace char_filters in the analyzer"));
        }
        let mut seen = std::collections::BTreeSet::new();
        if filters.iter().any(|f| !seen.insert(f)) {
            return Err(invalid("categorization_filters contain duplicates"));
        }
        if filters.iter().any(String::is_empty) {
            return Err(invalid(
                "categorization_filters are not allowed to contain empty strings",
            ));
        }
        if let Some(bad) = filters.iter().find(|f| regex::Regex::new(f).is_err()) {
            return Err(invalid(format!(
                "categorization_filters contains invalid regular expression '{bad}'"
            )));
        }
    }
    let spec = AnalyzerSpec::from_config(
        config.categorization_filters.as_deref(),
        config.categorization_analyzer.as_ref(),
    )
    .map_err(invalid)?;
    if let Some(bad) = spec
        .strip_patterns
        .iter()
        .find(|p| regex::Regex::new(p).is_err())
    {
        return Err(invalid(format!(
            "categorization_analyzer contains invalid regular expression '{bad}'"
        )));
    }
    let Some(per_partition) = &config.per_partition_categorization else {
        return Ok(());
    };
    if per_partition.stop_on_warn && !per_partition.enabled {
        return Err(invalid(
            "stop_on_warn cannot be true in per_partition_categorization when enabled is false",
        ));
    }
    if !per_partition.enabled {
        return Ok(());
    }
    if config.categorization_field_name.is_none() {
        return Err(invalid(
            "categorization_field_name must be set for per-partition categorization",
        ));
    }
    let mut partitions = config
        .detectors
        .iter()
        .filter(|d| {
            [
                &d.by_field_name,
                &d.over_field_name,
                &d.partition_field_name,
            ]
            .iter()
            .any(|f| f.as_deref() == Some(ML_CATEGORY))
        })
        .map(|d| d.partition_field_name.as_deref());
    let first = partitions.next().flatten();
    if first.is_none() {
        return Err(invalid("partition_field_name must be set for detectors that reference mlcategory when per-partition categorization is enabled"));
    }
    if partitions.any(|p| p != first) {
        return Err(invalid("partition_field_name cannot vary for detectors that reference mlcategory when per-partition categorization is enabled"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error(value: serde_json::Value) -> String {
        let mut value = value;
        value["categorization_field_name"] = "message".into();
        if value.get("detectors").is_none() {
            value["detectors"] = json!([{"function": "count", "by_field_name": "mlcategory"}]);
        }
        let config: AnalysisConfig = serde_json::from_value(value).unwrap();
        check_categorization(&config).unwrap_err().to_string()
    }

    #[test]
    fn elasticsearch_messages() {
        assert_eq!(
            error(json!({"categorization_filters": ["a", "a"]})),
            "categorization_filters contain duplicates"
        );
        assert_eq!(
            error(json!({"categorization_filters": [""]})),
            "categorization_filters are not allowed to contain empty strings"
        );
        assert_eq!(
            error(json!({"categorization_filters": ["(unclosed"]})),
            "categorization_filters contains invalid regular expression '(unclosed'"
        );
        assert!(error(
            json!({"categorization_filters": ["x"], "categorization_analyzer": {"tokenizer": "ml_standard"}})
        )
        .starts_with("categorization_filters cannot be used with categorization_analyzer"));
        assert!(
            error(json!({"categorization_analyzer": {"tokenizer": "whitespace"}}))
                .contains("tokenizer [\"whitespace\"] is not supported by auspex")
        );
        assert!(error(json!({"categorization_analyzer": "standard"})).contains("not supported"));
        assert_eq!(
            error(json!({"per_partition_categorization": {"enabled": true}})),
            "partition_field_name must be set for detectors that reference mlcategory when per-partition categorization is enabled"
        );
        assert_eq!(
            error(json!({"per_partition_categorization": {"enabled": true}, "detectors": [
                {"function": "count", "by_field_name": "mlcategory", "partition_field_name": "a"},
                {"function": "count", "by_field_name": "mlcategory", "partition_field_name": "b"}]})),
            "partition_field_name cannot vary for detectors that reference mlcategory when per-partition categorization is enabled"
        );
    }
}
