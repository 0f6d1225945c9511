//! Model snapshot endpoints: `GET/POST model_snapshots[/<snapshot_id>]`, `model_snapshots/<id>/_update`,
//! `DELETE model_snapshots/<id>`, `model_snapshots/<id>/_revert`, and `model_snapshots/<id>/_upgrade`
//! (`/_stats`): auspex snapshots are always in the current format, so an upgrade completes at once
//! and none is ever in progress.
//!
//! Owns their parameters (query string or body; `page: {from, size}` in the body), the listing
//! (time range `[start, end)` on `timestamp`, `sort` on any field, newest first unless `desc` is
//! false, paging; a snapshot id may be `_all`, `*` or a wildcard pattern) and the reply shapes.
//! Does not own: what a snapshot holds or what reverting does (`job::model_snapshots`).
//! Talks to: `job`.

use serde_json::{json, Value};

use super::error::ApiError;
use super::params::ParamSpec;
use super::reply::Reply;
use super::request::ApiRequest;
use super::results::{page, time_range};
use super::results_query::{query_buckets, BucketsQuery};
use super::AppState;
use crate::job::wildcard_match;

const GET_SNAPSHOTS: ParamSpec = ParamSpec {
    api: "get_model_snapshots",
    query: &["from", "size", "start", "end", "sort", "desc"],
    body: Some(&["page", "start", "end", "sort", "desc", "snapshot_id"]),
};

const UPDATE_SNAPSHOT: ParamSpec = ParamSpec {
    api: "update_model_snapshot",
    query: &[],
    body: Some(&["description", "retain", "snapshot_id"]),
};

const DELETE_SNAPSHOT: ParamSpec = ParamSpec {
    api: "delete_model_snapshot",
    query: &[],
    body: None,
};

const UPGRADE_SNAPSHOT: ParamSpec = ParamSpec {
    api: "upgrade_job_snapshot",
    query: &["timeout", "wait_for_completion"],
    body: None,
};

const UPGRADE_STATS: ParamSpec = ParamSpec {
    api: "get_model_snapshot_upgrade_stats",
    query: &["allow_no_match"],
    body: None,
};

const REVERT_SNAPSHOT: ParamSpec = ParamSpec {
    api: "revert_model_snapshot",
    query: &["delete_intervening_results"],
    body: Some(&["delete_intervening_results", "snapshot_id"]),
};

pub fn get(
    state: &AppState,
    job_id: &str,
    snapshot_id: Option<String>,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params(&GET_SNAPSHOTS)?;
    let (start, end) = time_range(&params)?;
    let query = BucketsQuery {
        sort: params.string("sort")?.unwrap_or_else(|| "timestamp".into()),
        desc: params.bool_or("desc", true)?,
        page: page(&params)?.unwrap_or_default(),
        ..BucketsQuery::default()
    };
    let pattern = snapshot_id
        .or(params.string("snapshot_id")?)
        .filter(|id| !id.is_empty() && id != "_all" && id != "*");
    let snapshots: Vec<Value> = state
        .jobs
        .model_snapshots(job_id)?
        .into_iter()
        .filter(|doc| {
            let id = doc.get("snapshot_id").and_then(Value::as_str).unwrap_or("");
            let time = doc.get("timestamp").and_then(Value::as_i64).unwrap_or(0);
            pattern.as_deref().is_none_or(|p| wildcard_match(p, id))
                && start.is_none_or(|s| time >= s)
                && end.is_none_or(|e| time < e)
        })
        .collect();
    if let Some(id) = pattern.as_deref().filter(|p| !p.contains('*')) {
        if snapshots.is_empty() {
            return Err(ApiError::from(crate::job::JobError::Missing(format!(
                "No model snapshot with id [{id}] exists for job [{job_id}]"
            ))));
        }
    }
    let page = query_buckets(snapshots, &query);
    Ok(Reply::ok(
        json!({ "count": page.count, "model_snapshots": page.results }),
    ))
}

pub async fn update(
    state: &AppState,
    job_id: &str,
    snapshot_id: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params(&UPDATE_SNAPSHOT)?;
    let description = params.string("description")?;
    let retain = params.bool("retain")?;
    let model = state
        .jobs
        .update_model_snapshot(job_id, snapshot_id, description, retain)
        .await?;
    Ok(Reply::ok(json!({ "acknowledged": true, "model": model })))
}

pub async fn delete(
    state: &AppState,
    job_id: &str,
    snapshot_id: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    request.params_without_body(&DELETE_SNAPSHOT)?;
    state
        .jobs
        .delete_model_snapshot(job_id, snapshot_id)
        .await?;
    Ok(Reply::acknowledged())
}

pub async fn revert(
    state: &AppState,
    job_id: &str,
    snapshot_id: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params(&REVERT_SNAPSHOT)?;
    let delete_intervening = params.bool_or("delete_intervening_results", false)?;
    let model = state
        .jobs
        .revert_model_snapshot(job_id, snapshot_id, delete_intervening)
        .await?;
    Ok(Reply::ok(json!({ "model": model })))
}

pub fn upgrade(
    state: &AppState,
    job_id: &str,
    snapshot_id: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params_without_body(&UPGRADE_SNAPSHOT)?;
    params.time_value("timeout")?;
    params.bool("wait_for_completion")?;
    let exists = state
        .jobs
        .model_snapshots(job_id)?
        .iter()
        .any(|doc| doc.get("snapshot_id").and_then(Value::as_str) == Some(snapshot_id));
    if !exists {
        return Err(ApiError::from(crate::job::JobError::Missing(format!(
            "No model snapshot with id [{snapshot_id}] exists for job [{job_id}]"
        ))));
    }
    let active = state.jobs.active_snapshot_id(job_id)?;
    let open = state
        .jobs
        .job_state(job_id)
        .is_some_and(|s| s != crate::job::JobState::Closed);
    if open && active.as_deref() == Some(snapshot_id) {
        return Err(ApiError::new(
            super::error::EsType::BadRequestStatus,
            format!(
                "Cannot upgrade snapshot [{snapshot_id}] for job [{job_id}] as it is the current primary job snapshot and the job's state is [opened]"
            ),
        ));
    }
    Ok(Reply::ok(json!({
        "node": state.jobs.node_id(),
        "completed": true,
    })))
}

pub fn upgrade_stats(
    state: &AppState,
    job_id: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params_without_body(&UPGRADE_STATS)?;
    let allow_no_match = params.bool_or("allow_no_match", true)?;
    state.jobs.expand_ids(job_id, allow_no_match)?;
    Ok(Reply::ok(
        json!({"count": 0, "model_snapshot_upgrades": []}),
    ))
}
