//! Job management endpoints beyond CRUD: `_update`, `_reset`, `_validate`, `_validate/detector`,
//! `_estimate_model_memory`, `GET _ml/info`, `DELETE _ml/_delete_expired_data[/<job_id>]`.
//!
//! Owns their parameters and reply shapes, and the model memory estimate (a pure function of the
//! request). Does not own: the update rules (`job::update`), reset and retention (`job`).
//! Talks to: `job`.
//!
//! `wait_for_completion=false` on `_reset` still resets before answering (no tasks API); the answer
//! is always `{"acknowledged":true}`. `requests_per_second` and `timeout` of `_delete_expired_data`
//! are validated and otherwise unused.

use serde_json::{json, Map, Value};

use super::error::{ApiError, EsType};
use super::params::ParamSpec;
use super::reply::Reply;
use super::request::{parse_param_body, ApiRequest};
use super::root::BUILD_HASH;
use super::AppState;
use crate::engine::config::ES_COMPAT_VERSION;
use crate::job::JobConfig;
use crate::model::AnalysisConfig;

const NO_PARAMS: ParamSpec = ParamSpec {
    api: "ml",
    query: &[],
    body: None,
};

const RESET_JOB: ParamSpec = ParamSpec {
    api: "reset_job",
    query: &["wait_for_completion", "delete_user_annotations"],
    body: None,
};

const DELETE_EXPIRED: ParamSpec = ParamSpec {
    api: "delete_expired_data",
    query: &["requests_per_second", "timeout"],
    body: Some(&["requests_per_second", "timeout"]),
};

fn required_body(request: &ApiRequest) -> Result<(), ApiError> {
    if request.body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(EsType::Parse, "request body is required"));
    }
    Ok(())
}

pub async fn update_job(
    state: &AppState,
    job_id: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    request.params(&ParamSpec {
        api: "update_job",
        ..NO_PARAMS
    })?;
    required_body(request)?;
    Ok(Reply::ok(
        state.jobs.update_job(job_id, &request.body).await?,
    ))
}

pub async fn reset_job(
    state: &AppState,
    job_id: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params_without_body(&RESET_JOB)?;
    params.bool("wait_for_completion")?;
    params.bool("delete_user_annotations")?;
    state.jobs.reset_job(job_id).await?;
    Ok(Reply::acknowledged())
}

pub fn validate(request: &ApiRequest) -> Result<Reply, ApiError> {
    request.params(&ParamSpec {
        api: "validate",
        ..NO_PARAMS
    })?;
    required_body(request)?;
    JobConfig::validate_body(&request.body)?;
    Ok(Reply::acknowledged())
}

/// A detector is valid when a job with it as its only detector would be.
pub fn validate_detector(request: &ApiRequest) -> Result<Reply, ApiError> {
    request.params(&ParamSpec {
        api: "validate_detector",
        ..NO_PARAMS
    })?;
    required_body(request)?;
    let detector = parse_param_body("detector", &request.body)?.unwrap_or_default();
    let job = json!({
        "analysis_config": {"detectors": [Value::Object(detector)]},
        // A time field no detector can name, so only the detector's own rules apply.
        "data_description": {"time_field": "\u{1}time"},
    });
    JobConfig::validate_body(job.to_string().as_bytes())?;
    Ok(Reply::acknowledged())
}

pub fn estimate_model_memory(request: &ApiRequest) -> Result<Reply, ApiError> {
    request.params(&ParamSpec {
        api: "estimate_model_memory",
        ..NO_PARAMS
    })?;
    let body = parse_param_body("estimate_model_memory", &request.body)?.unwrap_or_default();
    if let Some(field) = body.keys().find(|k| {
        ![
            "analysis_config",
            "max_bucket_cardinality",
            "overall_cardinality",
        ]
        .contains(&k.as_str())
    }) {
        return Err(ApiError::new(
            EsType::XContentParse,
            format!("[estimate_model_memory] unknown field [{field}]"),
        ));
    }
    let analysis: AnalysisConfig = match body.get("analysis_config") {
        Some(value) => serde_json::from_value(value.clone()).map_err(|e| {
            ApiError::new(
                EsType::XContentParse,
                format!("[estimate_model_memory] failed to parse field [analysis_config]: {e}"),
            )
        })?,
        None => {
            return Err(ApiError::illegal_argument(
                "[analysis_config] must be specified",
            ))
        }
    };
    let cardinalities = |name: &str| -> Result<Map<String, Value>, ApiError> {
        match body.get(name) {
            None => Ok(Map::new()),
            Some(Value::Object(map)) => Ok(map.clone()),
            Some(_) => Err(ApiError::new(
                EsType::XContentParse,
                format!("[estimate_model_memory] failed to parse field [{name}]"),
            )),
        }
    };
    let mb = estimate_mb(
        &analysis,
        &cardinalities("overall_cardinality")?,
        &cardinalities("max_bucket_cardinality")?,
    );
    Ok(Reply::ok(
        json!({ "model_memory_estimate": format!("{mb}mb") }),
    ))
}

/// Fixed overhead of a job's model, in KiB.
const BASE_KIB: u64 = 10 * 1024;
/// Per modelled series: metric functions keep more than counts.
const METRIC_SERIES_KIB: u64 = 15;
const COUNT_SERIES_KIB: u64 = 8;
/// Per over-field value (population analysis) and per influencer value seen in a bucket.
const OVER_VALUE_KIB: u64 = 1;
const INFLUENCER_VALUE_KIB: u64 = 10;

/// auspex's own estimate, in whole MiB rounded up: a base, plus each detector's series (the product
/// of its by and partition cardinalities) and over values, plus the influencer values of a bucket.
/// A field without a cardinality counts as 1. Calibrated to answer Elasticsearch's documented
/// example (21mb).
pub fn estimate_mb(
    analysis: &AnalysisConfig,
    overall: &Map<String, Value>,
    max_bucket: &Map<String, Value>,
) -> u64 {
    let card = |map: &Map<String, Value>, field: &Option<String>| -> u64 {
        field
            .as_ref()
            .and_then(|f| map.get(f))
            .and_then(Value::as_u64)
            .unwrap_or(1)
            .max(1)
    };
    let mut kib = BASE_KIB;
    let mut split_fields = Vec::new();
    for detector in &analysis.detectors {
        let series = card(overall, &detector.by_field_name)
            .saturating_mul(card(overall, &detector.partition_field_name));
        let per_series =
            if detector.function.contains("count") || detector.function.contains("rare") {
                COUNT_SERIES_KIB
            } else {
                METRIC_SERIES_KIB
            };
        kib = kib.saturating_add(series.saturating_mul(per_series));
        if detector.over_field_name.is_some() {
            kib = kib.saturating_add(card(overall, &detector.over_field_name) * OVER_VALUE_KIB);
        }
        split_fields.extend(
            [
                &detector.by_field_name,
                &detector.over_field_name,
                &detector.partition_field_name,
            ]
            .into_iter()
            .flatten()
            .cloned(),
        );
    }
    for influencer in &analysis.influencers {
        if !split_fields.contains(influencer) {
            let values = card(max_bucket, &Some(influencer.clone()));
            kib = kib.saturating_add(values.saturating_mul(INFLUENCER_VALUE_KIB));
        }
    }
    kib.div_ceil(1024)
}

pub fn info(state: &AppState, request: &ApiRequest) -> Result<Reply, ApiError> {
    request.params_without_body(&ParamSpec {
        api: "info",
        ..NO_PARAMS
    })?;
    // Elasticsearch reports the machine-learning share of the node's memory; auspex the same share
    // of this machine's (1gb when the OS does not say).
    let ml_memory = super::cat::render_bytes(
        super::node::machine_memory_bytes()
            .map(super::node::ml_memory_bytes)
            .unwrap_or(1 << 30) as f64,
        None,
    );
    Ok(Reply::ok(json!({
        "defaults": {
            "anomaly_detectors": {
                "categorization_analyzer": {
                    "char_filter": ["first_line_with_letters"],
                    "tokenizer": "ml_standard",
                    "filter": [{"type": "stop", "stopwords": [
                        "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
                        "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
                        "January", "February", "March", "April", "May", "June", "July", "August",
                        "September", "October", "November", "December",
                        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                        "Dec", "GMT", "UTC"]},
                        {"type": "limit", "max_token_count": "100"}]
                },
                "model_memory_limit": "1gb",
                "categorization_examples_limit": 4,
                "model_snapshot_retention_days": 10,
                "daily_model_snapshot_retention_after_days": 1
            },
            "datafeeds": {"scroll_size": 1000}
        },
        "upgrade_mode": state.jobs.upgrade_mode(),
        "native_code": {"version": ES_COMPAT_VERSION, "build_hash": BUILD_HASH},
        "limits": {
            "max_single_ml_node_processors": 2,
            "total_ml_processors": 2,
            "effective_max_model_memory_limit": ml_memory,
            "total_ml_memory": ml_memory
        }
    })))
}

const SET_UPGRADE_MODE: ParamSpec = ParamSpec {
    api: "set_upgrade_mode",
    query: &["enabled", "timeout"],
    body: None,
};

/// `POST _ml/set_upgrade_mode?enabled=`: parks or resumes every open job (`job::upgrade_mode`).
pub async fn set_upgrade_mode(state: &AppState, request: &ApiRequest) -> Result<Reply, ApiError> {
    let params = request.params_without_body(&SET_UPGRADE_MODE)?;
    let enabled = params.bool_or("enabled", false)?;
    params.time_value("timeout")?;
    state.jobs.set_upgrade_mode(enabled).await?;
    Ok(Reply::ok(json!({ "acknowledged": true })))
}

pub async fn delete_expired_data(
    state: &AppState,
    job_id: Option<&str>,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params(&DELETE_EXPIRED)?;
    if let Some(rate) = params.double("requests_per_second")? {
        if rate <= 0.0 && rate != -1.0 {
            return Err(ApiError::illegal_argument(format!(
                "[requests_per_second] must be positive or -1 (unthrottled); was [{rate}]"
            )));
        }
    }
    params.time_value("timeout")?;
    state
        .jobs
        .delete_expired_data(job_id.unwrap_or("_all"))
        .await?;
    Ok(Reply::ok(json!({ "deleted": true })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analysis(value: Value) -> AnalysisConfig {
        serde_json::from_value(value).unwrap()
    }

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn the_documented_example_estimates_21mb() {
        let config = analysis(json!({
            "bucket_span": "5m",
            "detectors": [{"function": "sum", "field_name": "bytes", "by_field_name": "status",
                           "partition_field_name": "app"}],
            "influencers": ["source_ip", "dest_ip"]
        }));
        let overall = map(json!({"status": 10, "app": 50}));
        let bucket = map(json!({"source_ip": 300, "dest_ip": 30}));
        assert_eq!(estimate_mb(&config, &overall, &bucket), 21);
    }

    #[test]
    fn estimates_grow_with_cardinality_and_start_at_the_base() {
        let config =
            analysis(json!({"detectors": [{"function": "count", "by_field_name": "host"}]}));
        let small = estimate_mb(&config, &map(json!({"host": 1})), &Map::new());
        let large = estimate_mb(&config, &map(json!({"host": 10000})), &Map::new());
        assert_eq!(small, 11);
        assert!(large > 80, "{large}");
    }
}
