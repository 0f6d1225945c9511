//! One detector as Elasticsearch builds it: the rules on its function and fields with their exact
//! messages, the normalizations it applies (canonical function names, `use_null` and
//! `exclude_frequent` forms), the generated `detector_description`, and the duplicate check.
//!
//! Reads [`DetectorFunction`] for what each function needs; the config-wide rules are in `analysis`.

use crate::engine::JobError;
use crate::model::function::DetectorFunction;
use crate::model::Detector;

/// The autodetect control field; no analysis field may be named like it.
const CONTROL_FIELD_NAME: &str = ".";
const EXCLUDE_FREQUENT_VALUES: &[&str] = &["all", "none", "by", "over"];

fn invalid(message: impl Into<String>) -> JobError {
    JobError::InvalidArgument(message.into())
}

/// Elasticsearch's name for a function as rendered back: aliases become the full name, except the
/// `avg` family, which Elasticsearch keeps as functions of their own.
fn full_name(written: &str, function: DetectorFunction) -> String {
    if matches!(written, "avg" | "high_avg" | "low_avg") {
        written.to_string()
    } else {
        function.name().to_string()
    }
}

/// Checks one detector in Elasticsearch's order and normalizes it (the index is the caller's).
pub(super) fn check_detector(detector: &mut Detector) -> Result<(), JobError> {
    let function = DetectorFunction::parse(&detector.function)
        .ok_or_else(|| invalid(format!("Unknown function '{}'", detector.function)))?;
    detector.function = full_name(&detector.function, function);
    for name in [
        &mut detector.field_name,
        &mut detector.by_field_name,
        &mut detector.over_field_name,
        &mut detector.partition_field_name,
    ] {
        if name.as_deref() == Some("") {
            *name = None;
        }
    }
    // Elasticsearch renders use_null only when true.
    if detector.use_null == Some(false) {
        detector.use_null = None;
    }
    if let Some(value) = detector.exclude_frequent.as_mut() {
        let lower = value.to_ascii_lowercase();
        if !EXCLUDE_FREQUENT_VALUES.contains(&lower.as_str()) {
            return Err(JobError::Parse(format!(
                "[detector] failed to parse field [exclude_frequent]: unknown value [{value}], expected one of [all, none, by, over]"
            )));
        }
        *value = lower;
    }

    let f = detector.function.as_str();
    let (field, by, over, partition) = (
        &detector.field_name,
        &detector.by_field_name,
        &detector.over_field_name,
        &detector.partition_field_name,
    );
    use DetectorFunction::*;
    let is_rare = matches!(function, Rare | FreqRare);
    let is_non_zero_count = matches!(function, NonZeroCount | HighNonZeroCount | LowNonZeroCount);
    if field.is_none()
        && by.is_none()
        && over.is_none()
        && (function.requires_field_name() || is_rare)
    {
        return Err(invalid(
            "Unless a count or temporal function is used one of field_name, by_field_name or over_field_name must be set",
        ));
    }
    if field.is_none() && function.requires_field_name() {
        return Err(invalid(format!(
            "field_name must be set when the '{f}' function is used"
        )));
    }
    if field.is_some() && !function.requires_field_name() {
        return Err(invalid(format!(
            "field_name cannot be used with function '{f}'"
        )));
    }
    if by.is_none() && is_rare {
        return Err(invalid(format!(
            "by_field_name must be set when the '{f}' function is used"
        )));
    }
    if over.is_none() && function == FreqRare {
        return Err(invalid(format!(
            "over_field_name must be set when the '{f}' function is used"
        )));
    }
    if over.is_some() && is_non_zero_count {
        return Err(invalid(format!(
            "over_field_name cannot be used with function '{f}'"
        )));
    }
    for name in [field, by, over, partition] {
        check_field_name(name)?;
    }
    super::rules::check_custom_rules(detector)?;
    let (by, over, partition) = (
        &detector.by_field_name,
        &detector.over_field_name,
        &detector.partition_field_name,
    );
    for (a_name, a, b_name, b) in [
        ("partition_field_name", partition, "by_field_name", by),
        ("partition_field_name", partition, "over_field_name", over),
        ("by_field_name", by, "over_field_name", over),
    ] {
        if let Some(value) = a.as_ref().filter(|value| Some(*value) == b.as_ref()) {
            return Err(invalid(format!(
                "{a_name} and {b_name} cannot be the same: '{value}'"
            )));
        }
    }
    // The native process reads these words as syntax; Elasticsearch refuses them as by/over names.
    for reserved in ["count", "by", "over"] {
        for (name, value) in [("by_field_name", by), ("over_field_name", over)] {
            if value.as_deref() == Some(reserved) {
                return Err(invalid(format!(
                    "'{reserved}' is not a permitted value for {name}"
                )));
            }
        }
    }
    if detector.detector_description.is_none() {
        detector.detector_description = Some(default_detector_description(detector));
    }
    Ok(())
}

pub(super) fn check_field_name(name: &Option<String>) -> Result<(), JobError> {
    let Some(name) = name else { return Ok(()) };
    if name
        .chars()
        .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        return Err(invalid(format!(
            "Invalid field name '{name}'. Field names including over, by and partition fields cannot contain any of these characters: \",\\"
        )));
    }
    if name == CONTROL_FIELD_NAME {
        return Err(invalid(format!(
            "Invalid field name '{name}'. Field names including over, by and partition fields cannot be '{CONTROL_FIELD_NAME}'"
        )));
    }
    Ok(())
}

/// Elasticsearch's generated description: `function(field) by X over Y usenull=true
/// partitionfield=Z excludefrequent=all`, each field double-quoted when it is not a plain word.
pub fn default_detector_description(detector: &Detector) -> String {
    let mut text = detector.function.clone();
    let present = |f: &Option<String>| f.clone().filter(|f| !f.is_empty());
    if let Some(field) = present(&detector.field_name) {
        text += &format!("({})", quote_field(&field));
    }
    if let Some(by) = present(&detector.by_field_name) {
        text += &format!(" by {}", quote_field(&by));
    }
    if let Some(over) = present(&detector.over_field_name) {
        text += &format!(" over {}", quote_field(&over));
    }
    if detector.use_null == Some(true) {
        text += " usenull=true";
    }
    if let Some(partition) = present(&detector.partition_field_name) {
        text += &format!(" partitionfield={}", quote_field(&partition));
    }
    if let Some(exclude) = &detector.exclude_frequent {
        text += &format!(" excludefrequent={exclude}");
    }
    text
}

fn quote_field(field: &str) -> String {
    if field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return field.to_string();
    }
    let mut quoted = String::with_capacity(field.len() + 2);
    quoted.push('"');
    for c in field.chars() {
        if matches!(c, '"' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// Equal detectors (ignoring their index) would produce the same results twice.
pub(super) fn check_detectors_unique(detectors: &[Detector]) -> Result<(), JobError> {
    let without_index = |d: &Detector| Detector {
        detector_index: None,
        ..d.clone()
    };
    let keys: Vec<Detector> = detectors.iter().map(without_index).collect();
    for (i, key) in keys.iter().enumerate() {
        if keys[..i].contains(key) {
            return Err(invalid(format!(
                "Duplicate detectors are not allowed: [{}]",
                key.detector_description.as_deref().unwrap_or_default()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn checked(value: serde_json::Value) -> Result<Detector, String> {
        let mut detector: Detector =
            serde_json::from_value(value).expect("test detector must deserialize");
        check_detector(&mut detector).map_err(|e| e.to_string())?;
        Ok(detector)
    }

    fn detector_error(value: serde_json::Value) -> String {
        checked(value).expect_err("detector must be refused")
    }

    fn description(value: serde_json::Value) -> String {
        checked(value).unwrap().detector_description.unwrap()
    }

    #[test]
    fn unknown_function() {
        assert_eq!(
            detector_error(json!({"function": "means", "field_name": "x"})),
            "Unknown function 'means'"
        );
    }

    #[test]
    fn functions_that_need_a_field() {
        assert_eq!(
            detector_error(json!({"function": "mean"})),
            "Unless a count or temporal function is used one of field_name, by_field_name or over_field_name must be set"
        );
        assert_eq!(
            detector_error(json!({"function": "mean", "by_field_name": "airline"})),
            "field_name must be set when the 'mean' function is used"
        );
        assert_eq!(
            detector_error(json!({"function": "avg", "over_field_name": "host"})),
            "field_name must be set when the 'avg' function is used"
        );
        assert_eq!(
            detector_error(json!({"function": "rare", "over_field_name": "host"})),
            "by_field_name must be set when the 'rare' function is used"
        );
        assert_eq!(
            detector_error(json!({"function": "freq_rare", "by_field_name": "uri"})),
            "over_field_name must be set when the 'freq_rare' function is used"
        );
        assert!(checked(json!({"function": "time_of_day"})).is_ok());
    }

    #[test]
    fn field_rules_of_the_other_functions() {
        for function in ["lat_long", "info_content", "high_varp", "low_dc"] {
            assert_eq!(
                detector_error(json!({"function": function, "by_field_name": "user"})),
                format!(
                    "field_name must be set when the '{}' function is used",
                    checked(json!({"function": function, "field_name": "x"}))
                        .unwrap()
                        .function
                )
            );
        }
        assert_eq!(
            detector_error(json!({"function": "info_content"})),
            "Unless a count or temporal function is used one of field_name, by_field_name or over_field_name must be set"
        );
        assert_eq!(
            detector_error(json!({"function": "time_of_week", "field_name": "x"})),
            "field_name cannot be used with function 'time_of_week'"
        );
        assert_eq!(
            detector_error(json!({"function": "rare", "field_name": "x", "by_field_name": "p"})),
            "field_name cannot be used with function 'rare'"
        );
        assert_eq!(
            detector_error(json!({"function": "rare"})),
            "Unless a count or temporal function is used one of field_name, by_field_name or over_field_name must be set"
        );
        assert_eq!(
            checked(json!({"function": "dc", "field_name": "x"}))
                .unwrap()
                .function,
            "distinct_count"
        );
        for ok in [
            json!({"function": "time_of_day", "by_field_name": "job", "over_field_name": "host"}),
            json!({"function": "freq_rare", "by_field_name": "uri", "over_field_name": "ip"}),
            json!({"function": "lat_long", "field_name": "loc", "over_field_name": "user"}),
            json!({"function": "varp", "field_name": "x", "partition_field_name": "p"}),
        ] {
            assert!(checked(ok.clone()).is_ok(), "{ok}");
        }
    }

    #[test]
    fn count_functions_take_no_field_name() {
        assert_eq!(
            detector_error(json!({"function": "count", "field_name": "bytes"})),
            "field_name cannot be used with function 'count'"
        );
        assert_eq!(
            detector_error(json!({"function": "nzc", "field_name": "bytes"})),
            "field_name cannot be used with function 'non_zero_count'"
        );
        assert_eq!(
            detector_error(json!({"function": "low_nzc", "over_field_name": "host"})),
            "over_field_name cannot be used with function 'low_non_zero_count'"
        );
    }

    #[test]
    fn field_names_with_forbidden_characters() {
        let expected = "Invalid field name 'a\"b'. Field names including over, by and partition fields cannot contain any of these characters: \",\\";
        assert_eq!(
            detector_error(json!({"function": "count", "by_field_name": "a\"b"})),
            expected
        );
        assert!(
            detector_error(json!({"function": "mean", "field_name": "a\\b"}))
                .starts_with("Invalid field name 'a\\b'.")
        );
        assert!(
            detector_error(json!({"function": "count", "partition_field_name": "a\nb"}))
                .starts_with("Invalid field name")
        );
        assert_eq!(
            detector_error(json!({"function": "count", "over_field_name": "."})),
            "Invalid field name '.'. Field names including over, by and partition fields cannot be '.'"
        );
    }

    #[test]
    fn by_over_partition_must_differ() {
        assert_eq!(
            detector_error(
                json!({"function": "count", "by_field_name": "a", "partition_field_name": "a"})
            ),
            "partition_field_name and by_field_name cannot be the same: 'a'"
        );
        assert_eq!(
            detector_error(
                json!({"function": "count", "over_field_name": "a", "partition_field_name": "a"})
            ),
            "partition_field_name and over_field_name cannot be the same: 'a'"
        );
        assert_eq!(
            detector_error(
                json!({"function": "count", "by_field_name": "a", "over_field_name": "a"})
            ),
            "by_field_name and over_field_name cannot be the same: 'a'"
        );
    }

    #[test]
    fn reserved_words_are_not_by_or_over_fields() {
        for word in ["count", "by", "over"] {
            assert_eq!(
                detector_error(json!({"function": "count", "by_field_name": word})),
                format!("'{word}' is not a permitted value for by_field_name")
            );
            assert_eq!(
                detector_error(json!({"function": "count", "over_field_name": word})),
                format!("'{word}' is not a permitted value for over_field_name")
            );
        }
        assert!(checked(json!({"function": "count", "partition_field_name": "count"})).is_ok());
    }

    #[test]
    fn descriptions_follow_elasticsearch_format() {
        assert_eq!(
            description(
                json!({"function": "mean", "field_name": "responsetime", "by_field_name": "airline"})
            ),
            "mean(responsetime) by airline"
        );
        assert_eq!(description(json!({"function": "count"})), "count");
        assert_eq!(
            description(
                json!({"function": "high_count", "by_field_name": "airline", "partition_field_name": "host"})
            ),
            "high_count by airline partitionfield=host"
        );
        assert_eq!(
            description(
                json!({"function": "sum", "field_name": "bytes", "over_field_name": "clientip"})
            ),
            "sum(bytes) over clientip"
        );
        assert_eq!(
            description(
                json!({"function": "count", "by_field_name": "a", "over_field_name": "b", "use_null": true,
                "partition_field_name": "c", "exclude_frequent": "by"})
            ),
            "count by a over b usenull=true partitionfield=c excludefrequent=by"
        );
        assert_eq!(
            description(
                json!({"function": "max", "field_name": "cpu.pct", "by_field_name": "host name"})
            ),
            "max(\"cpu.pct\") by \"host name\""
        );
        assert_eq!(
            description(json!({"function": "min", "field_name": "a'b"})),
            "min(\"a'b\")"
        );
        assert_eq!(
            description(json!({"function": "min", "field_name": "é"})),
            "min(\"é\")"
        );
        assert_eq!(
            description(json!({"function": "count", "detector_description": "mine"})),
            "mine"
        );
    }

    #[test]
    fn quoting_escapes_backslashes_and_quotes() {
        assert_eq!(quote_field("plain_Word9"), "plain_Word9");
        assert_eq!(quote_field("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    #[test]
    fn duplicate_detectors() {
        let detectors: Vec<Detector> = [
            json!({"function": "mean", "field_name": "x", "detector_index": 0}),
            json!({"function": "count", "detector_index": 1}),
            json!({"function": "avg", "field_name": "x", "detector_index": 2}),
            json!({"function": "mean", "field_name": "x", "detector_index": 3}),
        ]
        .into_iter()
        .map(|d| checked(d).unwrap())
        .collect();
        assert_eq!(
            check_detectors_unique(&detectors).unwrap_err().to_string(),
            "Duplicate detectors are not allowed: [mean(x)]",
            "the index does not make a detector different"
        );
        assert!(
            check_detectors_unique(&detectors[..3]).is_ok(),
            "avg and mean are distinct functions in Elasticsearch"
        );
    }
}
