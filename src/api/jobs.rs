//! Job CRUD endpoints: `PUT`, `GET` and `DELETE _ml/anomaly_detectors/<id>`, and `_stats`.
//!
//! Owns the parameters of these endpoints and their reply shapes (`{"count":N,"jobs":[..]}`,
//! `{"acknowledged":true}`), plus `exclude_generated` (done here on the job documents).
//! Does not own: validating or storing jobs (`job::JobManager`). Talks to: `job`.
//!
//! `DELETE` accepts `wait_for_completion` and `delete_user_annotations` but always deletes before
//! answering (there are no annotations), so `wait_for_completion=false` still answers
//! `{"acknowledged":true}` rather than a task id.

use serde_json::{json, Value};

use super::error::{ApiError, EsType};
use super::params::ParamSpec;
use super::reply::Reply;
use super::request::ApiRequest;
use super::AppState;
use crate::config::RetentionDefaults;

const PUT_JOB: ParamSpec = ParamSpec {
    api: "put_job",
    // Datafeed index options Elasticsearch accepts on this endpoint; auspex has no datafeeds.
    query: &[
        "ignore_unavailable",
        "allow_no_indices",
        "ignore_throttled",
        "expand_wildcards",
    ],
    body: None,
};

const GET_JOBS: ParamSpec = ParamSpec {
    api: "get_jobs",
    query: &["allow_no_match", "exclude_generated"],
    body: None,
};

const JOB_STATS: ParamSpec = ParamSpec {
    api: "get_job_stats",
    query: &["allow_no_match"],
    body: None,
};

const DELETE_JOB: ParamSpec = ParamSpec {
    api: "delete_job",
    query: &["force", "wait_for_completion", "delete_user_annotations"],
    body: None,
};

pub async fn put(state: &AppState, job_id: &str, request: &ApiRequest) -> Result<Reply, ApiError> {
    let params = request.params(&PUT_JOB)?;
    params.bool("ignore_unavailable")?;
    params.bool("allow_no_indices")?;
    params.bool("ignore_throttled")?;
    if request.body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(EsType::Parse, "request body is required"));
    }
    let body = with_retention_defaults(&request.body, &state.config.retention);
    let job = state.jobs.put_job(job_id, &body).await?;
    Ok(Reply::ok(job))
}

/// The body with the configured retention defaults (`auspex.toml` `[retention]`) filled in where
/// it sets none. A body that is not a JSON object is passed on untouched, for the job layer to
/// refuse in Elasticsearch's words.
fn with_retention_defaults(body: &[u8], defaults: &RetentionDefaults) -> Vec<u8> {
    let fields = [
        (
            "model_snapshot_retention_days",
            defaults.model_snapshot_retention_days,
        ),
        (
            "daily_model_snapshot_retention_after_days",
            defaults.daily_model_snapshot_retention_after_days,
        ),
        ("results_retention_days", defaults.results_retention_days),
    ];
    if fields.iter().all(|(_, value)| value.is_none()) {
        return body.to_vec();
    }
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    for (name, value) in fields {
        if let Some(days) = value {
            map.entry(name).or_insert_with(|| days.into());
        }
    }
    serde_json::to_vec(&map).unwrap_or_else(|_| body.to_vec())
}

pub fn get(state: &AppState, expression: &str, request: &ApiRequest) -> Result<Reply, ApiError> {
    let params = request.params_without_body(&GET_JOBS)?;
    let allow_no_match = params.bool_or("allow_no_match", true)?;
    let exclude_generated = params.bool_or("exclude_generated", false)?;
    let mut jobs = state.jobs.get_jobs(expression, allow_no_match)?;
    if exclude_generated {
        jobs.iter_mut().for_each(remove_generated_fields);
    }
    Ok(Reply::ok(json!({ "count": jobs.len(), "jobs": jobs })))
}

pub async fn stats(
    state: &AppState,
    expression: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params_without_body(&JOB_STATS)?;
    let allow_no_match = params.bool_or("allow_no_match", true)?;
    let stats = state.jobs.job_stats(expression, allow_no_match).await?;
    Ok(Reply::ok(json!({ "count": stats.len(), "jobs": stats })))
}

pub async fn delete(
    state: &AppState,
    job_id: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params_without_body(&DELETE_JOB)?;
    let force = params.bool_or("force", false)?;
    params.bool("wait_for_completion")?;
    params.bool("delete_user_annotations")?;
    state.jobs.delete_job(job_id, force).await?;
    Ok(Reply::acknowledged())
}

/// What `exclude_generated=true` leaves out: the fields Elasticsearch fills in itself, so the
/// document can be `PUT` elsewhere as is.
const GENERATED_FIELDS: &[&str] = &[
    "job_type",
    "job_version",
    "create_time",
    "finished_time",
    "model_snapshot_id",
    "model_snapshot_min_version",
    "deleting",
    "blocked",
];

fn remove_generated_fields(job: &mut Value) {
    if let Some(map) = job.as_object_mut() {
        for field in GENERATED_FIELDS {
            map.remove(*field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclude_generated_keeps_the_user_config() {
        let mut job = json!({
            "job_id": "j",
            "job_type": "anomaly_detector",
            "job_version": "8.15.0",
            "create_time": 1,
            "model_snapshot_id": "s",
            "analysis_config": {"bucket_span": "1h"},
            "description": "d",
        });
        remove_generated_fields(&mut job);
        assert_eq!(
            job,
            json!({"job_id": "j", "analysis_config": {"bucket_span": "1h"}, "description": "d"})
        );
    }

    #[test]
    fn retention_defaults_fill_only_what_the_body_leaves_unset() {
        let defaults = RetentionDefaults {
            model_snapshot_retention_days: Some(3),
            daily_model_snapshot_retention_after_days: None,
            results_retention_days: Some(30),
        };
        let body = br#"{"results_retention_days": 7, "description": "d"}"#;
        let filled: Value =
            serde_json::from_slice(&with_retention_defaults(body, &defaults)).unwrap();
        assert_eq!(
            filled,
            json!({"results_retention_days": 7, "description": "d", "model_snapshot_retention_days": 3})
        );
        assert_eq!(with_retention_defaults(b"[1]", &defaults), b"[1]");
        assert_eq!(
            with_retention_defaults(body, &RetentionDefaults::default()),
            body.to_vec()
        );
    }
}
