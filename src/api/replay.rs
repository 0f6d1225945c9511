//! auspex extension: replay a job over the input it stored, as a background task.
//!
//! `POST /_auspex/anomaly_detectors/<job_id>/_replay` with an optional body
//! `{"new_job_id": "...", "snapshot_id": "...", "job": {<job config fields to change>}}` checks
//! everything up front (Elasticsearch-style errors), creates the new job (default id
//! `<job_id>-replay`), which stays `opening` while the task fills it, and answers
//! `{"task_id": "replay-N", "job_id": ..., "input_entries": ...}` at once.
//! `GET /_auspex/tasks/<task_id>` answers the task's progress; `GET /_auspex/tasks` all tasks.
//! Does not own the replay itself (`replay`). Talks to `job` (the manager, configs) and `replay`.

use serde_json::{json, Value};

use super::error::{ApiError, EsType};
use super::params::ParamSpec;
use super::reply::Reply;
use super::request::ApiRequest;
use super::AppState;
use crate::replay::stored::{copy_body, stored_config, StoredReplay};
use crate::replay::tasks::tasks as registry;

const REPLAY: ParamSpec = ParamSpec {
    api: "auspex_replay",
    query: &["new_job_id", "snapshot_id"],
    body: Some(&["new_job_id", "snapshot_id", "job"]),
};

pub async fn start(
    state: &AppState,
    job_id: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params(&REPLAY)?;
    let new_job_id = params
        .string("new_job_id")?
        .unwrap_or_else(|| format!("{job_id}-replay"));
    let snapshot_id = params.string("snapshot_id")?.filter(|s| !s.is_empty());
    let changes = match params.body_field("job") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map.clone()),
        Some(_) => {
            return Err(ApiError::new(
                EsType::Parse,
                "[auspex_replay] [job] must be an object of job config fields",
            ))
        }
    };
    state.jobs.require_job(job_id)?;
    let store = state.jobs.store().clone();
    let source = stored_config(&store, job_id)?;
    let body = copy_body(&source, changes.as_ref())?;
    // Validates the new config and reserves the id: the job exists, `opening`, from here on.
    let target = state.jobs.put_job_reserved(&new_job_id, &body).await?;
    let prepared = {
        let store = store.clone();
        let source_id = job_id.to_string();
        let snapshot = snapshot_id.clone();
        tokio::task::spawn_blocking(move || {
            StoredReplay::prepare(&store, &source_id, target, snapshot.as_deref())
        })
        .await
        .map_err(|e| ApiError::internal(&e))?
    };
    let replay = match prepared {
        Ok(replay) => replay,
        Err(error) => {
            // Nothing was written for the new job but its config: take it back.
            let _ = state.jobs.release(&new_job_id, false).await;
            let _ = state.jobs.delete_job(&new_job_id, false).await;
            return Err(error.into());
        }
    };
    let entries = replay.entry_count();
    let task = registry().start(state.jobs.clone(), replay);
    Ok(Reply::ok(json!({
        "task_id": task.id,
        "job_id": new_job_id,
        "source_job_id": job_id,
        "input_entries": entries,
    })))
}

pub fn tasks(task_id: Option<&str>) -> Result<Reply, ApiError> {
    match task_id {
        Some(id) => match registry().get(id) {
            Some(task) => Ok(Reply::ok(task.to_json())),
            None => Err(ApiError::new(
                EsType::ResourceNotFound,
                format!("task [{id}] isn't running and hasn't stored its results"),
            )),
        },
        None => {
            let all: Vec<Value> = registry().list().iter().map(|t| t.to_json()).collect();
            Ok(Reply::ok(json!({ "count": all.len(), "tasks": all })))
        }
    }
}
