//! The `analysis_config` rules Elasticsearch checks when a job is created, with their exact messages,
//! the `model_prune_window` default, and the refusals of what auspex cannot analyse yet.
//!
//! Each detector is checked by `detector` first (Elasticsearch builds them while parsing); this
//! module numbers them. Does not own job-level rules (ids, retention, time field): `job::config` does.

use crate::engine::JobError;
use crate::model::{AnalysisConfig, TimeSpan};

use super::detector::{check_detector, check_field_name};

const ML_CATEGORY_FIELD: &str = "mlcategory";
const DEFAULT_MODEL_PRUNE_WINDOW_MS: i64 = 30 * 86_400_000;
const MIN_MODEL_PRUNE_WINDOW_BUCKETS: i64 = 2;

fn invalid(message: impl Into<String>) -> JobError {
    JobError::InvalidArgument(message.into())
}

/// Elasticsearch's `AnalysisConfig` build: every detector first (they are built while parsing), then
/// the config-wide rules. Numbers the detectors and fills in their descriptions.
pub(super) fn check_analysis_config(config: &mut AnalysisConfig) -> Result<(), JobError> {
    for (index, detector) in config.detectors.iter_mut().enumerate() {
        check_detector(detector)?;
        detector.detector_index = Some(index);
    }
    if config.bucket_span.millis <= 0 {
        return Err(invalid(format!(
            "bucket_span cannot be less or equal than 0. Value = {}",
            config.bucket_span.text
        )));
    }
    check_whole_seconds("bucket_span", &config.bucket_span)?;
    if let Some(window) = &config.model_prune_window {
        check_model_prune_window(window, &config.bucket_span)?;
    }
    if let Some(latency) = &config.latency {
        check_whole_seconds("latency", latency)?;
    }
    if config.detectors.is_empty() {
        return Err(invalid("No detectors configured"));
    }
    check_field_name(&config.summary_count_field_name)?;
    check_field_name(&config.categorization_field_name)?;
    let uses_ml_category = config.detectors.iter().any(|d| {
        [
            &d.by_field_name,
            &d.over_field_name,
            &d.partition_field_name,
        ]
        .iter()
        .any(|f| f.as_deref() == Some(ML_CATEGORY_FIELD))
    });
    match (&config.categorization_field_name, uses_ml_category) {
        (None, true) => {
            return Err(invalid(
                "categorization_field_name must be set for mlcategory to be available",
            ))
        }
        (Some(_), false) => {
            return Err(invalid(
                "categorization_field_name is set but mlcategory is not used in any detector by/over/partition field",
            ))
        }
        _ => {}
    }
    let has_filters = config
        .categorization_filters
        .as_ref()
        .is_some_and(|f| !f.is_empty());
    if has_filters && config.categorization_field_name.is_none() {
        return Err(invalid(
            "categorization_filters require setting categorization_field_name",
        ));
    }
    super::categorization::check_categorization(config)?;
    if config
        .summary_count_field_name
        .as_deref()
        .is_some_and(|f| !f.is_empty())
        && config.detectors.iter().any(|d| d.function == "metric")
    {
        return Err(invalid(
            "The 'metric' function cannot be used in jobs that will take pre-summarized input",
        ));
    }
    check_no_nested_term_fields(config)
}

/// A time value that must be a whole, non-negative number of seconds.
pub(super) fn check_whole_seconds(name: &str, span: &TimeSpan) -> Result<(), JobError> {
    if span.millis < 0 {
        return Err(invalid(format!(
            "{name} cannot be less than 0. Value = {}",
            span.text
        )));
    }
    if span.millis % 1000 != 0 {
        return Err(invalid(format!(
            "{name} has to be a multiple of 1s; actual was '{}'",
            span.text
        )));
    }
    Ok(())
}

fn check_model_prune_window(window: &TimeSpan, bucket_span: &TimeSpan) -> Result<(), JobError> {
    let (window_s, bucket_s) = (window.seconds(), bucket_span.seconds());
    if window_s % bucket_s != 0 {
        return Err(invalid(format!(
            "model_prune_window [{}] must be a multiple of bucket_span [{}]",
            window.text, bucket_span.text
        )));
    }
    if window_s / bucket_s < MIN_MODEL_PRUNE_WINDOW_BUCKETS {
        return Err(invalid(format!(
            "model_prune_window [{}] must be at least {MIN_MODEL_PRUNE_WINDOW_BUCKETS} times greater than bucket_span [{}]",
            window.text, bucket_span.text
        )));
    }
    Ok(())
}

/// Fields may not nest inside one another (`a` with `a.b`): results could not hold both.
fn check_no_nested_term_fields(config: &AnalysisConfig) -> Result<(), JobError> {
    let mut terms: Vec<&str> = config
        .detectors
        .iter()
        .flat_map(|d| {
            [
                &d.by_field_name,
                &d.over_field_name,
                &d.partition_field_name,
            ]
        })
        .filter_map(|f| f.as_deref())
        .chain(config.influencers.iter().map(String::as_str))
        .filter(|f| !f.is_empty())
        .collect();
    terms.sort_unstable();
    terms.dedup();
    for pair in terms.windows(2) {
        if pair[1]
            .strip_prefix(pair[0])
            .is_some_and(|rest| rest.starts_with('.'))
        {
            return Err(invalid(format!(
                "Fields [{}] and [{}] cannot both be used in the same analysis_config",
                pair[0], pair[1]
            )));
        }
    }
    Ok(())
}

/// Every record field the analysis reads, the categorization field included.
pub(super) fn analysis_field_names(config: &AnalysisConfig) -> Vec<String> {
    config.analysis_fields()
}

/// Elasticsearch accepts these, but auspex would silently not analyse them: refuse them clearly.
pub(super) fn check_supported_by_auspex(config: &AnalysisConfig) -> Result<(), JobError> {
    if config.multivariate_by_fields == Some(true) {
        return Err(invalid(
            "multivariate_by_fields is not supported by auspex yet",
        ));
    }
    Ok(())
}

/// Elasticsearch 8.1+ default: 30 days, or 20 buckets when that is longer.
pub(super) fn fill_model_prune_window(config: &mut AnalysisConfig) {
    if config.model_prune_window.is_none() {
        let millis = DEFAULT_MODEL_PRUNE_WINDOW_MS.max(20 * config.bucket_span.millis);
        config.model_prune_window = Some(TimeSpan::from_millis(millis));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(value: serde_json::Value) -> AnalysisConfig {
        serde_json::from_value(value).expect("test config must deserialize")
    }

    fn checked(value: serde_json::Value) -> Result<AnalysisConfig, String> {
        let mut config = config(value);
        check_analysis_config(&mut config).map_err(|e| e.to_string())?;
        Ok(config)
    }

    /// The error for a config with the given detectors (and a 1h bucket span).
    fn detector_error(detectors: serde_json::Value) -> String {
        checked(json!({"bucket_span": "1h", "detectors": detectors}))
            .expect_err("config must be refused")
    }

    #[test]
    fn config_wide_field_names_are_checked() {
        let refused = checked(
            json!({"summary_count_field_name": "a\"", "detectors": [{"function": "count"}]}),
        );
        assert!(refused.unwrap_err().starts_with("Invalid field name 'a\"'"));
    }

    #[test]
    fn no_detectors() {
        assert_eq!(
            checked(json!({"detectors": []})).unwrap_err(),
            "No detectors configured"
        );
    }

    #[test]
    fn bucket_span_and_latency_are_whole_seconds() {
        let with = |extra: serde_json::Value| {
            let mut value = json!({"detectors": [{"function": "count"}]});
            for (k, v) in extra.as_object().unwrap() {
                value[k] = v.clone();
            }
            checked(value).map(drop)
        };
        assert_eq!(
            with(json!({"bucket_span": "0s"})).unwrap_err(),
            "bucket_span cannot be less or equal than 0. Value = 0s"
        );
        assert_eq!(
            with(json!({"bucket_span": "1500ms"})).unwrap_err(),
            "bucket_span has to be a multiple of 1s; actual was '1500ms'"
        );
        assert_eq!(
            with(json!({"latency": "500ms"})).unwrap_err(),
            "latency has to be a multiple of 1s; actual was '500ms'"
        );
        assert!(with(json!({"latency": "0s"})).is_ok());
        assert_eq!(
            with(json!({"bucket_span": "2h", "model_prune_window": "3h"})).unwrap_err(),
            "model_prune_window [3h] must be a multiple of bucket_span [2h]"
        );
        assert_eq!(
            with(json!({"bucket_span": "1h", "model_prune_window": "1h"})).unwrap_err(),
            "model_prune_window [1h] must be at least 2 times greater than bucket_span [1h]"
        );
        assert!(with(json!({"bucket_span": "1h", "model_prune_window": "2h"})).is_ok());
    }

    #[test]
    fn categorization_rules() {
        assert_eq!(
            detector_error(json!([{"function": "count", "by_field_name": "mlcategory"}])),
            "categorization_field_name must be set for mlcategory to be available"
        );
        assert_eq!(
            checked(json!({"categorization_field_name": "message", "detectors": [{"function": "count"}]})).unwrap_err(),
            "categorization_field_name is set but mlcategory is not used in any detector by/over/partition field"
        );
        assert_eq!(
            checked(json!({"categorization_filters": ["x"], "detectors": [{"function": "count"}]}))
                .unwrap_err(),
            "categorization_filters require setting categorization_field_name"
        );
    }

    #[test]
    fn metric_cannot_take_summarized_input() {
        assert_eq!(
            checked(json!({"summary_count_field_name": "n", "detectors": [{"function": "metric", "field_name": "x"}]}))
                .unwrap_err(),
            "The 'metric' function cannot be used in jobs that will take pre-summarized input"
        );
        assert!(checked(json!({"summary_count_field_name": "n", "detectors": [{"function": "mean", "field_name": "x"}]})).is_ok());
    }

    #[test]
    fn nested_term_fields_clash() {
        assert_eq!(
            checked(json!({"detectors": [{"function": "count", "by_field_name": "a.b"}], "influencers": ["a"]})).unwrap_err(),
            "Fields [a] and [a.b] cannot both be used in the same analysis_config"
        );
        assert!(checked(json!({"detectors": [{"function": "count", "by_field_name": "a.b"}], "influencers": ["a.c", "ab"]})).is_ok());
    }

    #[test]
    fn detectors_are_numbered_and_normalized() {
        let config = checked(json!({"detectors": [
            {"function": "nzc", "by_field_name": "host", "use_null": false},
            {"function": "avg", "field_name": "x", "exclude_frequent": "ALL", "by_field_name": ""},
            {"function": "dc", "field_name": "user", "detector_index": 7}
        ]}))
        .unwrap();
        let d = &config.detectors;
        assert_eq!(
            d.iter().map(|d| d.detector_index).collect::<Vec<_>>(),
            [Some(0), Some(1), Some(2)]
        );
        assert_eq!(
            d.iter().map(|d| d.function.as_str()).collect::<Vec<_>>(),
            ["non_zero_count", "avg", "distinct_count"]
        );
        assert_eq!(d[0].use_null, None, "use_null is rendered only when true");
        assert_eq!(d[1].exclude_frequent.as_deref(), Some("all"));
        assert_eq!(d[1].by_field_name, None);
        assert_eq!(
            d[1].detector_description.as_deref(),
            Some("avg(x) excludefrequent=all")
        );
        let bad = detector_error(
            json!([{"function": "count", "by_field_name": "a", "exclude_frequent": "some"}]),
        );
        assert!(bad.contains("[exclude_frequent]"), "{bad}");
    }

    #[test]
    fn what_auspex_cannot_analyse_is_refused() {
        let refused = |value: serde_json::Value| {
            let config = checked(value).unwrap();
            check_supported_by_auspex(&config).unwrap_err().to_string()
        };
        assert_eq!(
            refused(json!({"multivariate_by_fields": true, "detectors": [{"function": "count"}]})),
            "multivariate_by_fields is not supported by auspex yet"
        );
        // Every Elasticsearch function is analysed.
        let supported = checked(json!({"detectors": [
            {"function": "high_mean", "field_name": "x"}, {"function": "count"},
            {"function": "rare", "by_field_name": "status"},
            {"function": "freq_rare", "by_field_name": "uri", "over_field_name": "ip"},
            {"function": "lat_long", "field_name": "loc"}, {"function": "time_of_week"},
            {"function": "low_info_content", "field_name": "q"}, {"function": "high_varp", "field_name": "x"},
            {"function": "dc", "field_name": "user", "over_field_name": "ip"}
        ]}))
        .unwrap();
        assert!(check_supported_by_auspex(&supported).is_ok());
    }

    #[test]
    fn model_prune_window_defaults_to_30_days_or_20_buckets() {
        let mut short = config(json!({"bucket_span": "15m", "detectors": [{"function": "count"}]}));
        fill_model_prune_window(&mut short);
        assert_eq!(short.model_prune_window.unwrap().text, "30d");
        let mut long = config(json!({"bucket_span": "2d", "detectors": [{"function": "count"}]}));
        fill_model_prune_window(&mut long);
        assert_eq!(long.model_prune_window.unwrap().text, "40d");
        let mut given =
            config(json!({"model_prune_window": "12h", "detectors": [{"function": "count"}]}));
        fill_model_prune_window(&mut given);
        assert_eq!(given.model_prune_window.unwrap().text, "12h");
    }
}
