//! The `PUT` job body as it arrives on the wire, and its parse errors in Elasticsearch's words.
//!
//! Owns the accepted field set (unknown fields are refused, as Elasticsearch's strict parser does),
//! `analysis_limits` (whose memory limit may be a number or a byte size), and the `data_description`
//! checks. Does not own any rule across fields: `job::config` and `analysis` do.
//!
//! Parse errors read `[line:column] <reason>`, like Elasticsearch's `x_content_parse_exception`; the
//! position is where serde stopped (Elasticsearch points at the start of the token, so columns can
//! differ by the token's length). Unknown fields read `[object] unknown field [name]` with
//! Elasticsearch's object names; type errors keep serde's wording.

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::engine::JobError;
use crate::ingest::time::TimeFormat;
use crate::ingest::DataDescription;
use crate::model::{AnalysisConfig, AnalysisLimits, TimeSpan};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PutJobBody {
    pub job_id: Option<String>,
    /// Accepted (a `GET` job document can be sent back) and ignored, as a new job always gets these.
    #[serde(rename = "job_type")]
    _job_type: Option<IgnoredAny>,
    #[serde(rename = "job_version")]
    _job_version: Option<IgnoredAny>,
    pub create_time: Option<IgnoredAny>,
    pub finished_time: Option<IgnoredAny>,
    pub model_snapshot_id: Option<String>,
    pub custom_settings: Option<serde_json::Map<String, serde_json::Value>>,
    pub groups: Option<Vec<String>>,
    pub description: Option<String>,
    pub analysis_config: Option<AnalysisConfig>,
    pub analysis_limits: Option<AnalysisLimitsBody>,
    pub data_description: Option<DataDescription>,
    pub model_plot_config: Option<serde_json::Map<String, serde_json::Value>>,
    pub renormalization_window_days: Option<i64>,
    pub background_persist_interval: Option<TimeSpan>,
    pub model_snapshot_retention_days: Option<i64>,
    pub daily_model_snapshot_retention_after_days: Option<i64>,
    pub results_retention_days: Option<i64>,
    pub results_index_name: Option<String>,
    pub allow_lazy_open: Option<bool>,
    pub datafeed_config: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AnalysisLimitsBody {
    model_memory_limit: Option<serde_json::Value>,
    categorization_examples_limit: Option<i64>,
}

/// (Rust type, a field only that type has, Elasticsearch's name for the object). serde names the
/// type in type errors and lists the expected fields in unknown-field errors; this maps both back.
const OBJECTS: &[(&str, &str, &str)] = &[
    ("PutJobBody", "`analysis_config`", "job_details"),
    ("AnalysisConfig", "`bucket_span`", "analysis_config"),
    ("Detector", "`function`", "detector"),
    ("DataDescription", "`time_field`", "data_description"),
    (
        "AnalysisLimitsBody",
        "`model_memory_limit`",
        "analysis_limits",
    ),
];

impl PutJobBody {
    pub(super) fn parse(body: &[u8]) -> Result<PutJobBody, JobError> {
        let Some(start) = body.iter().position(|b| !b.is_ascii_whitespace()) else {
            return Err(JobError::Parse("request body is required".to_string()));
        };
        // serde would also build a struct from an array of its fields in order; Elasticsearch
        // takes only an object.
        let token = match body[start] {
            b'{' => None,
            b'[' => Some("START_ARRAY"),
            b'"' => Some("VALUE_STRING"),
            b't' | b'f' => Some("VALUE_BOOLEAN"),
            b'n' => Some("VALUE_NULL"),
            b'-' | b'0'..=b'9' => Some("VALUE_NUMBER"),
            _ => None,
        };
        if let Some(token) = token {
            let line_start = body[..start]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let line = 1 + body[..start].iter().filter(|&&b| b == b'\n').count();
            return Err(JobError::Parse(format!(
                "[{line}:{}] [job_details] Expected START_OBJECT but was: {token}",
                start - line_start + 1
            )));
        }
        let mut parsed: PutJobBody =
            serde_json::from_slice(body).map_err(|e| JobError::Parse(describe(&e)))?;
        // Elasticsearch renders model_plot_config with annotations_enabled defaulting to enabled.
        if let Some(plot) = parsed.model_plot_config.as_mut() {
            check_model_plot_config(plot)?;
            if let Some(enabled) = plot.get("enabled").cloned() {
                plot.entry("annotations_enabled").or_insert(enabled);
            }
        }
        Ok(parsed)
    }
}

/// Elasticsearch's strict `model_plot_config` parser: `enabled` (required) and
/// `annotations_enabled` are booleans, `terms` a string, nothing else.
fn check_model_plot_config(
    plot: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), JobError> {
    let parse = |message: String| Err(JobError::Parse(format!("[model_plot_config] {message}")));
    for (field, value) in plot {
        let fits = match field.as_str() {
            "enabled" | "annotations_enabled" => value.is_boolean(),
            "terms" => value.is_string(),
            _ => return parse(format!("unknown field [{field}]")),
        };
        if !fits {
            return parse(format!("failed to parse field [{field}]"));
        }
    }
    if !plot.contains_key("enabled") {
        return Err(JobError::Parse("Required [enabled]".to_string()));
    }
    Ok(())
}

fn describe(error: &serde_json::Error) -> String {
    let full = error.to_string();
    let location = format!(" at line {} column {}", error.line(), error.column());
    let message = full.strip_suffix(&location).unwrap_or(&full);
    let reason = if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let object = OBJECTS
            .iter()
            .find(|(_, marker, _)| expected.contains(marker))
            .map_or("job_details", |(_, _, name)| name);
        format!("[{object}] unknown field [{field}]")
    } else if let Some(rest) = message.strip_prefix("missing field `") {
        format!("Required [{}]", rest.trim_end_matches('`'))
    } else {
        OBJECTS
            .iter()
            .fold(message.to_string(), |text, (rust, _, es)| {
                text.replace(&format!("struct {rust}"), &format!("object [{es}]"))
            })
    };
    format!("[{}:{}] {reason}", error.line(), error.column())
}

impl AnalysisLimitsBody {
    /// Elasticsearch keeps the limit in whole MiB and renders it as `<n>mb`; a bare number means MiB.
    pub(super) fn into_limits(self) -> Result<AnalysisLimits, JobError> {
        let defaults = AnalysisLimits::default();
        let model_memory_limit = match self.model_memory_limit {
            None => defaults.model_memory_limit,
            Some(value) => {
                let mb = match &value {
                    serde_json::Value::String(text) => byte_size_mb(text)?,
                    serde_json::Value::Number(n) => n
                        .as_i64()
                        .or_else(|| n.as_f64().map(|f| f as i64))
                        .unwrap_or(0),
                    _ => {
                        return Err(JobError::Parse(
                            "[analysis_limits] failed to parse field [model_memory_limit]: expected a number or a byte size such as \"1024mb\"".to_string(),
                        ))
                    }
                };
                if mb < 1 {
                    return Err(JobError::InvalidArgument(format!(
                        "model_memory_limit must be at least 1 MiB. Value = {mb}"
                    )));
                }
                format!("{mb}mb")
            }
        };
        let categorization_examples_limit = match self.categorization_examples_limit {
            None => defaults.categorization_examples_limit,
            Some(limit) => u32::try_from(limit).map_err(|_| {
                JobError::InvalidArgument(if limit < 0 {
                    format!("categorization_examples_limit cannot be less than 0. Value = {limit}")
                } else {
                    format!("categorization_examples_limit [{limit}] is too large")
                })
            })?,
        };
        Ok(AnalysisLimits {
            model_memory_limit,
            categorization_examples_limit,
        })
    }
}

/// Elasticsearch's byte-size syntax (`512mb`, `1GB`, `1.5g`, `100b`), converted to whole MiB.
fn byte_size_mb(text: &str) -> Result<i64, JobError> {
    const UNITS: &[(&str, i64)] = &[
        ("kb", 1 << 10),
        ("k", 1 << 10),
        ("mb", 1 << 20),
        ("m", 1 << 20),
        ("gb", 1 << 30),
        ("g", 1 << 30),
        ("tb", 1 << 40),
        ("t", 1 << 40),
        ("pb", 1 << 50),
        ("p", 1 << 50),
        ("b", 1),
    ];
    let failed = |why: &str| {
        JobError::Parse(format!(
            "[analysis_limits] failed to parse field [model_memory_limit]: failed to parse setting [model_memory_limit] with value [{text}] as a size in bytes{why}"
        ))
    };
    let normalized = text.trim().to_ascii_lowercase();
    let (number, unit_bytes) = UNITS
        .iter()
        .find_map(|(suffix, bytes)| normalized.strip_suffix(suffix).map(|n| (n.trim(), *bytes)))
        .ok_or_else(|| failed(": unit is missing or unrecognized"))?;
    let bytes = match number.parse::<i64>() {
        Ok(n) => n.checked_mul(unit_bytes),
        Err(_) => number
            .parse::<f64>()
            .ok()
            .map(|f| f * unit_bytes as f64)
            .filter(|b| b.is_finite() && b.abs() < i64::MAX as f64)
            .map(|b| b as i64),
    }
    .ok_or_else(|| failed(""))?;
    Ok(bytes / (1 << 20))
}

/// `data_description` as Elasticsearch 8 takes it: only JSON (`xcontent`; the old `delimited` is
/// silently taken as JSON), no delimiter settings, a time format that can be read. The format is not
/// rendered back, as in Elasticsearch.
pub(super) fn check_data_description(description: &mut DataDescription) -> Result<(), JobError> {
    if let Some(format) = description.format.take() {
        if !matches!(
            format.to_ascii_lowercase().as_str(),
            "xcontent" | "delimited"
        ) {
            return Err(JobError::Parse(format!(
                "[data_description] failed to parse field [format]: unknown data format [{format}], only [xcontent] is supported"
            )));
        }
    }
    for (name, value) in [
        ("field_delimiter", &description.field_delimiter),
        ("quote_character", &description.quote_character),
    ] {
        if value.is_some() {
            return Err(JobError::Parse(format!(
                "[data_description] unknown field [{name}]"
            )));
        }
    }
    match description.time_format.as_str() {
        "epoch" | "epoch_ms" => Ok(()),
        pattern => TimeFormat::parse(pattern)
            .map(drop)
            .map_err(|e| JobError::InvalidArgument(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_error(body: &str) -> String {
        match PutJobBody::parse(body.as_bytes()) {
            Err(JobError::Parse(reason)) => reason,
            other => panic!("expected a parse error for {body}, got {other:?}"),
        }
    }

    #[test]
    fn model_plot_config_is_parsed_strictly() {
        let body = |plot: &str| format!("{{\"model_plot_config\": {plot}}}");
        assert_eq!(
            parse_error(&body(r#"{"enabled": true, "colour": "red"}"#)),
            "[model_plot_config] unknown field [colour]"
        );
        assert_eq!(
            parse_error(&body(r#"{"enabled": "yes"}"#)),
            "[model_plot_config] failed to parse field [enabled]"
        );
        assert_eq!(
            parse_error(&body(r#"{"enabled": true, "terms": 3}"#)),
            "[model_plot_config] failed to parse field [terms]"
        );
        assert_eq!(
            parse_error(&body(r#"{"terms": "a"}"#)),
            "Required [enabled]"
        );
        let parsed = PutJobBody::parse(body(r#"{"enabled": true, "terms": "a,b"}"#).as_bytes())
            .expect("valid");
        assert_eq!(
            parsed.model_plot_config.expect("kept")["annotations_enabled"],
            true
        );
    }

    fn limits(json: &str) -> Result<AnalysisLimits, JobError> {
        let body: AnalysisLimitsBody = serde_json::from_str(json).unwrap();
        body.into_limits()
    }

    #[test]
    fn unknown_fields_name_the_elasticsearch_object() {
        assert_eq!(
            parse_error(r#"{"foo":1}"#),
            "[1:6] [job_details] unknown field [foo]"
        );
        assert_eq!(
            parse_error(r#"{"analysis_config":{"detectors":[],"bar":1}}"#),
            "[1:40] [analysis_config] unknown field [bar]"
        );
        assert_eq!(
            parse_error(r#"{"analysis_config":{"detectors":[{"function":"count","baz":1}]}}"#),
            "[1:58] [detector] unknown field [baz]"
        );
        assert_eq!(
            parse_error(r#"{"data_description":{"time_feld":"t"}}"#),
            "[1:32] [data_description] unknown field [time_feld]"
        );
        assert_eq!(
            parse_error(r#"{"analysis_limits":{"model_memory":"1mb"}}"#),
            "[1:34] [analysis_limits] unknown field [model_memory]"
        );
    }

    #[test]
    fn malformed_and_mistyped_bodies_are_parse_errors() {
        assert_eq!(parse_error(""), "request body is required");
        assert_eq!(parse_error("  \n"), "request body is required");
        assert!(parse_error(r#"{"analysis_config": }"#).starts_with("[1:21] "));
        assert_eq!(parse_error("xyz"), "[1:1] expected value");
        assert_eq!(
            parse_error(
                r#"{"analysis_config":{"detectors":[],"bucket_span":"1h","analysis_config":1}}"#
            ),
            "[1:71] [analysis_config] unknown field [analysis_config]"
        );
        assert_eq!(
            parse_error(r#"{"model_snapshot_retention_days":"x"}"#),
            "[1:36] invalid type: string \"x\", expected i64"
        );
        assert_eq!(
            parse_error(r#"{"analysis_config":"x"}"#),
            "[1:22] invalid type: string \"x\", expected object [analysis_config]"
        );
        assert_eq!(
            parse_error("[]"),
            "[1:1] [job_details] Expected START_OBJECT but was: START_ARRAY"
        );
        assert_eq!(
            parse_error("\n  42"),
            "[2:3] [job_details] Expected START_OBJECT but was: VALUE_NUMBER"
        );
        assert_eq!(
            parse_error(r#"{"analysis_config":{}}"#),
            "[1:21] Required [detectors]"
        );
        assert!(
            parse_error(r#"{"analysis_config":{"bucket_span":"5","detectors":[]}}"#)
                .contains("as a time value")
        );
        assert!(parse_error(r#"{"custom_settings":1}"#).starts_with("[1:20] invalid type"));
    }

    #[test]
    fn memory_limit_is_normalized_to_whole_mebibytes() {
        assert_eq!(
            limits(r#"{"model_memory_limit":"11MB"}"#)
                .unwrap()
                .model_memory_limit,
            "11mb"
        );
        assert_eq!(
            limits(r#"{"model_memory_limit":"1gb"}"#)
                .unwrap()
                .model_memory_limit,
            "1024mb"
        );
        assert_eq!(
            limits(r#"{"model_memory_limit":"1.5g"}"#)
                .unwrap()
                .model_memory_limit,
            "1536mb"
        );
        assert_eq!(
            limits(r#"{"model_memory_limit":"2048kb"}"#)
                .unwrap()
                .model_memory_limit,
            "2mb"
        );
        assert_eq!(
            limits(r#"{"model_memory_limit":300}"#)
                .unwrap()
                .model_memory_limit,
            "300mb"
        );
        let defaults = limits("{}").unwrap();
        assert_eq!(defaults.model_memory_limit, "1024mb");
        assert_eq!(defaults.categorization_examples_limit, 4);
    }

    #[test]
    fn bad_memory_limits_are_refused_with_elasticsearch_messages() {
        let too_low = limits(r#"{"model_memory_limit":"500kb"}"#).unwrap_err();
        assert_eq!(
            too_low.to_string(),
            "model_memory_limit must be at least 1 MiB. Value = 0"
        );
        assert!(matches!(too_low, JobError::InvalidArgument(_)));
        let no_unit = limits(r#"{"model_memory_limit":"100"}"#).unwrap_err();
        assert_eq!(
            no_unit.to_string(),
            "[analysis_limits] failed to parse field [model_memory_limit]: failed to parse setting [model_memory_limit] with value [100] as a size in bytes: unit is missing or unrecognized"
        );
        assert!(matches!(
            limits(r#"{"model_memory_limit":"xmb"}"#),
            Err(JobError::Parse(_))
        ));
        assert!(matches!(
            limits(r#"{"model_memory_limit":true}"#),
            Err(JobError::Parse(_))
        ));
        assert_eq!(
            limits(r#"{"categorization_examples_limit":-1}"#)
                .unwrap_err()
                .to_string(),
            "categorization_examples_limit cannot be less than 0. Value = -1"
        );
    }

    #[test]
    fn data_description_takes_json_and_epoch_formats_only() {
        let mut description = DataDescription {
            format: Some("XContent".to_string()),
            time_format: "epoch".to_string(),
            ..DataDescription::default()
        };
        check_data_description(&mut description).unwrap();
        assert_eq!(description.format, None, "the format is not rendered back");

        description.format = Some("csv".to_string());
        assert_eq!(
            check_data_description(&mut description).unwrap_err().to_string(),
            "[data_description] failed to parse field [format]: unknown data format [csv], only [xcontent] is supported"
        );

        description.field_delimiter = Some(",".to_string());
        assert_eq!(
            check_data_description(&mut description)
                .unwrap_err()
                .to_string(),
            "[data_description] unknown field [field_delimiter]"
        );
        // Date patterns go to ingest's TimeFormat::parse; tested there.
    }
}
