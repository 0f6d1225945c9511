//! Forecast endpoints: `POST _forecast`, `DELETE _forecast[/<forecast_id>]`, and the auspex
//! extensions `results/forecasts` (the job's forecasts: their request stats documents) and
//! `results/forecasts/<forecast_id>` (one forecast's rows, queried like model plot rows).
//!
//! Owns the parameters (query string or body) and their checks in Elasticsearch's words:
//! `duration` (default `1d`, positive, at most `3650d`), `expires_in` (default `14d`, not
//! negative, `0` = never), `max_model_memory` (default `20mb`, at least `1mb`, under `500mb`).
//! Does not own: running, storing or deleting forecasts (`job::forecast`). Talks to: `job`.

use serde_json::{json, Value};

use super::error::{ApiError, EsType};
use super::model_plot::RowsQuery;
use super::params::{ParamSpec, Params};
use super::reply::Reply;
use super::request::ApiRequest;
use super::results::{blocking, page};
use super::results_query::{query_plain, ResultsPage};
use super::AppState;
use crate::job::{ForecastRequest, JobError};
use crate::model::TimeSpan;

const FORECAST: ParamSpec = ParamSpec {
    api: "forecast",
    query: &["duration", "expires_in", "max_model_memory"],
    body: Some(&["duration", "expires_in", "max_model_memory"]),
};

const DELETE_FORECAST: ParamSpec = ParamSpec {
    api: "delete_forecast",
    query: &["allow_no_forecasts", "timeout"],
    body: None,
};

const LIST_FORECASTS: ParamSpec = ParamSpec {
    api: "get_forecasts",
    query: &["from", "size", "sort", "desc"],
    body: Some(&["page", "sort", "desc"]),
};

const FORECAST_ROWS: ParamSpec = ParamSpec {
    api: "get_forecast",
    query: &[
        "start",
        "end",
        "from",
        "size",
        "sort",
        "desc",
        "detector_index",
        "by_field_value",
        "partition_field_value",
    ],
    body: Some(&[
        "start",
        "end",
        "page",
        "sort",
        "desc",
        "detector_index",
        "by_field_value",
        "partition_field_value",
    ]),
};

const MAX_DURATION_MS: i64 = 3650 * 86_400_000;
const MIN_MODEL_MEMORY: u64 = 1 << 20;
const MAX_MODEL_MEMORY: u64 = 500 << 20;
const DEFAULT_MODEL_MEMORY: u64 = 20 << 20;

/// A time value in ms (`0` and `-1` may go without a unit, as in Elasticsearch).
fn time_value(name: &str, text: &str) -> Result<i64, ApiError> {
    let trimmed = text.trim();
    if matches!(trimmed, "0" | "-1") {
        return Ok(if trimmed == "0" { 0 } else { -1 });
    }
    let (sign, magnitude) = match trimmed.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, trimmed),
    };
    TimeSpan::parse(magnitude)
        .map(|span| sign * span.millis)
        .map_err(|_| {
            ApiError::new(
                EsType::Parse,
                format!("failed to parse setting [{name}] with value [{text}] as a time value: unit is missing or unrecognized"),
            )
        })
}

/// A byte size (`20mb`, `1gb`, or a number of bytes).
fn byte_size(name: &str, text: &str) -> Result<u64, ApiError> {
    const UNITS: &[(&str, u64)] = &[
        ("kb", 1 << 10),
        ("mb", 1 << 20),
        ("gb", 1 << 30),
        ("tb", 1 << 40),
        ("k", 1 << 10),
        ("m", 1 << 20),
        ("g", 1 << 30),
        ("t", 1 << 40),
        ("b", 1),
    ];
    let normalized = text.trim().to_ascii_lowercase();
    let (number, unit) = UNITS
        .iter()
        .find_map(|(suffix, bytes)| normalized.strip_suffix(suffix).map(|n| (n.trim(), *bytes)))
        .unwrap_or((normalized.as_str(), 1));
    number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map(|n| (n * unit as f64) as u64)
        .ok_or_else(|| {
            ApiError::new(
                EsType::Parse,
                format!("failed to parse setting [{name}] with value [{text}] as a size in bytes: unit is missing or unrecognized"),
            )
        })
}

fn forecast_request(job_id: &str, params: &Params) -> Result<ForecastRequest, ApiError> {
    let duration_text = params.string("duration")?.unwrap_or_else(|| "1d".into());
    let duration_ms = time_value("duration", &duration_text)?;
    if duration_ms <= 0 {
        return Err(ApiError::illegal_argument(format!(
            "[duration] must be positive: [{duration_text}]"
        )));
    }
    if duration_ms > MAX_DURATION_MS {
        return Err(ApiError::illegal_argument(format!(
            "[duration] must be 3650d or less: [{duration_text}]"
        )));
    }
    let expires_text = params.string("expires_in")?.unwrap_or_else(|| "14d".into());
    let expires_in_ms = time_value("expires_in", &expires_text)?;
    if expires_in_ms < 0 {
        return Err(ApiError::illegal_argument(format!(
            "[expires_in] must be non-negative: [{expires_text}]"
        )));
    }
    let max_model_memory = match params.string("max_model_memory")? {
        None => DEFAULT_MODEL_MEMORY,
        Some(text) => byte_size("max_model_memory", &text)?,
    };
    if max_model_memory < MIN_MODEL_MEMORY {
        return Err(ApiError::illegal_argument(
            "[max_model_memory] must be at least 1mb.",
        ));
    }
    if max_model_memory >= MAX_MODEL_MEMORY {
        return Err(ApiError::new(
            EsType::BadRequestStatus,
            "[max_model_memory] must be less than 500mb",
        ));
    }
    Ok(ForecastRequest {
        job_id: job_id.to_string(),
        duration_ms,
        expires_in_ms,
        max_model_memory,
    })
}

/// `POST _ml/anomaly_detectors/<job_id>/_forecast`.
pub async fn post(state: &AppState, job_id: &str, request: &ApiRequest) -> Result<Reply, ApiError> {
    let params = request.params(&FORECAST)?;
    let forecast = forecast_request(job_id, &params)?;
    let forecast_id = state.jobs.forecast(forecast).await?;
    Ok(Reply::ok(
        json!({ "acknowledged": true, "forecast_id": forecast_id }),
    ))
}

/// `DELETE _ml/anomaly_detectors/<job_id>/_forecast[/<forecast_id>]`.
pub async fn delete(
    state: &AppState,
    job_id: &str,
    forecast_id: Option<&str>,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params_without_body(&DELETE_FORECAST)?;
    let allow_no_forecasts = params.bool_or("allow_no_forecasts", true)?;
    params.time_value("timeout")?;
    state
        .jobs
        .delete_forecasts(job_id, forecast_id.unwrap_or("_all"), allow_no_forecasts)
        .await?;
    Ok(Reply::ok(json!({ "acknowledged": true })))
}

/// auspex extension `results/forecasts`: the job's forecasts (request stats), oldest first.
pub async fn list(
    state: &AppState,
    job_id: String,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params(&LIST_FORECASTS)?;
    let sort = params
        .string("sort")?
        .unwrap_or_else(|| "forecast_create_timestamp".into());
    let desc = params.bool_or("desc", false)?;
    let page = page(&params)?.unwrap_or_default();
    state.jobs.require_job(&job_id)?;
    let store = state.jobs.store().clone();
    let found = blocking(move || {
        let stats = crate::job::forecast_request_stats(&store, &job_id)?;
        Ok(query_plain(stats, false, &sort, desc, &page))
    })
    .await?;
    Ok(Reply::ok(
        json!({ "count": found.count, "forecasts": found.results }),
    ))
}

/// auspex extension `results/forecasts/<forecast_id>`: one forecast's rows.
pub async fn rows(
    state: &AppState,
    job_id: String,
    forecast_id: String,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params(&FORECAST_ROWS)?;
    let query = RowsQuery::parse(&params)?;
    state.jobs.require_job(&job_id)?;
    let store = state.jobs.store().clone();
    let found = blocking(
        move || match crate::job::forecast_rows(&store, &job_id, &forecast_id)? {
            Some(rows) => Ok(query.apply(rows)),
            None => Err(ApiError::from(JobError::Missing(format!(
                "No forecast(s) [{forecast_id}] exists for job [{job_id}]"
            )))),
        },
    )
    .await?;
    Ok(rows_reply(found))
}

fn rows_reply(found: ResultsPage) -> Reply {
    let rows: Vec<Value> = found.results;
    Reply::ok(json!({ "count": found.count, "model_forecast": rows }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&str, &str)]) -> Result<ForecastRequest, ApiError> {
        let query = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let params = Params::new("/p", &FORECAST, query, None)?;
        forecast_request("j", &params)
    }

    fn reason(pairs: &[(&str, &str)]) -> (EsType, String) {
        let error = request(pairs).unwrap_err();
        (error.kind, error.reason)
    }

    #[test]
    fn defaults_and_units() {
        let r = request(&[]).unwrap();
        assert_eq!(
            (r.duration_ms, r.expires_in_ms, r.max_model_memory),
            (86_400_000, 14 * 86_400_000, 20 << 20)
        );
        let r = request(&[
            ("duration", "90m"),
            ("expires_in", "0"),
            ("max_model_memory", "1gb"),
        ]);
        assert_eq!(
            reason(&[("max_model_memory", "1gb")]),
            (
                EsType::BadRequestStatus,
                "[max_model_memory] must be less than 500mb".into()
            )
        );
        assert!(r.is_err());
        let r = request(&[
            ("duration", "90m"),
            ("expires_in", "0"),
            ("max_model_memory", "2097152"),
        ])
        .unwrap();
        assert_eq!(
            (r.duration_ms, r.expires_in_ms, r.max_model_memory),
            (5_400_000, 0, 2 << 20)
        );
    }

    #[test]
    fn checks_in_elasticsearch_words() {
        assert_eq!(
            reason(&[("duration", "0")]),
            (
                EsType::IllegalArgument,
                "[duration] must be positive: [0]".into()
            )
        );
        assert_eq!(
            reason(&[("duration", "-1")]).1,
            "[duration] must be positive: [-1]"
        );
        assert_eq!(
            reason(&[("duration", "3651d")]).1,
            "[duration] must be 3650d or less: [3651d]"
        );
        assert_eq!(
            reason(&[("expires_in", "-2h")]).1,
            "[expires_in] must be non-negative: [-2h]"
        );
        assert_eq!(
            reason(&[("max_model_memory", "10kb")]).1,
            "[max_model_memory] must be at least 1mb."
        );
        assert_eq!(reason(&[("duration", "soon")]).0, EsType::Parse);
        assert_eq!(reason(&[("max_model_memory", "lots")]).0, EsType::Parse);
    }
}
