//! Model snapshots as the API sees them: list, `_update` (`description`, `retain`), delete, and
//! `_revert`.
//!
//! Revert semantics: reverting makes the snapshot the job's active one, rewinds the job's status
//! (data counts, last finalized bucket, model size) to what the snapshot holds, and writes an
//! `InputEntry::Revert` marker into the input log. The input stored between the snapshot and the
//! marker is kept but superseded: the next open loads the snapshot and replays only what comes
//! after the marker, so the model forgets everything the job learnt after the snapshot, as in
//! Elasticsearch (where a datafeed would re-send that data). With `delete_intervening_results` the
//! results from the snapshot's last finalized bucket on are removed in the same transaction.
//! Talks to: the store, through `on_job_data` (store I1).

use serde_json::Value;

use crate::engine::pipeline::{InputEntry, PipelineState};
use crate::engine::JobStatus;
use crate::job::maintenance::Needs;
use crate::job::{JobError, JobManager};
use crate::store::{self, Commit, PersistedState, Progress, SnapshotDoc, Store};

/// A snapshot's ES document, as listed.
pub fn snapshot_json(doc: &SnapshotDoc) -> Result<Value, JobError> {
    serde_json::from_slice(&doc.json).map_err(|error| {
        JobError::Store(store::StoreError::Encode(format!(
            "snapshot [{}] document is not JSON: {error}",
            doc.snapshot_id
        )))
    })
}

fn snapshot_missing(job_id: &str, snapshot_id: &str) -> JobError {
    JobError::Missing(format!(
        "No model snapshot with id [{snapshot_id}] exists for job [{job_id}]"
    ))
}

fn existing_snapshot(
    store: &Store,
    job_id: &str,
    snapshot_id: &str,
) -> Result<SnapshotDoc, JobError> {
    // An id the store cannot key (empty, NUL) cannot exist either.
    match store.get_snapshot(job_id, snapshot_id) {
        Ok(Some(doc)) => Ok(doc),
        Ok(None) | Err(store::StoreError::Encode(_)) => Err(snapshot_missing(job_id, snapshot_id)),
        Err(error) => Err(error.into()),
    }
}

fn active_snapshot(store: &Store, job_id: &str) -> Result<Option<String>, JobError> {
    Ok(store
        .get_progress(job_id)?
        .and_then(|progress| progress.latest_snapshot_id))
}

impl JobManager {
    /// Every snapshot of the job, newest first, as ES documents.
    pub fn model_snapshots(&self, job_id: &str) -> Result<Vec<Value>, JobError> {
        self.require_job(job_id)?;
        self.store
            .list_snapshots(job_id)?
            .iter()
            .map(snapshot_json)
            .collect()
    }

    /// The active snapshot id, as the job document's `model_snapshot_id`.
    pub fn active_snapshot_id(&self, job_id: &str) -> Result<Option<String>, JobError> {
        active_snapshot(&self.store, job_id)
    }

    /// `model_snapshots/<id>/_update`: returns the updated document.
    pub async fn update_model_snapshot(
        &self,
        job_id: &str,
        snapshot_id: &str,
        description: Option<String>,
        retain: Option<bool>,
    ) -> Result<Value, JobError> {
        let (job, snapshot) = (job_id.to_string(), snapshot_id.to_string());
        let work = move |store: &Store| {
            let doc = existing_snapshot(store, &job, &snapshot)?;
            let mut json = snapshot_json(&doc)?;
            if let Some(map) = json.as_object_mut() {
                if let Some(description) = description {
                    map.insert("description".into(), description.into());
                }
                if let Some(retain) = retain {
                    map.insert("retain".into(), retain.into());
                }
            }
            let bytes = serde_json::to_vec(&json)
                .map_err(|e| JobError::Store(store::StoreError::Encode(e.to_string())))?;
            if !store.put_snapshot_json(&job, &snapshot, &bytes)? {
                return Err(snapshot_missing(&job, &snapshot));
            }
            Ok(json)
        };
        self.on_job_data(job_id, Needs::Any, Box::new(work)).await
    }

    /// `DELETE model_snapshots/<id>`: any snapshot but the active one.
    pub async fn delete_model_snapshot(
        &self,
        job_id: &str,
        snapshot_id: &str,
    ) -> Result<(), JobError> {
        let (job, snapshot) = (job_id.to_string(), snapshot_id.to_string());
        let work = move |store: &Store| {
            existing_snapshot(store, &job, &snapshot)?;
            if active_snapshot(store, &job)?.as_deref() == Some(snapshot.as_str()) {
                return Err(JobError::InvalidArgument(format!(
                    "Model snapshot '{snapshot}' is the active snapshot for job '{job}', so cannot be deleted"
                )));
            }
            store.delete_snapshot(&job, &snapshot)?;
            Ok(Value::Null)
        };
        self.on_job_data(job_id, Needs::Any, Box::new(work)).await?;
        Ok(())
    }

    /// `model_snapshots/<id>/_revert` (closed jobs only): returns the snapshot's document.
    pub async fn revert_model_snapshot(
        &self,
        job_id: &str,
        snapshot_id: &str,
        delete_intervening_results: bool,
    ) -> Result<Value, JobError> {
        let (job, snapshot) = (job_id.to_string(), snapshot_id.to_string());
        let work = move |store: &Store| revert(store, &job, &snapshot, delete_intervening_results);
        self.on_job_data(
            job_id,
            Needs::Closed("Can only revert to a model snapshot when the job is closed."),
            Box::new(work),
        )
        .await
    }
}

/// The revert itself, on a closed job (see the module doc). One commit: the marker, the results
/// removed, and the progress pointing at the snapshot with the status it implies.
fn revert(
    store: &Store,
    job_id: &str,
    snapshot_id: &str,
    delete_intervening_results: bool,
) -> Result<Value, JobError> {
    let doc = existing_snapshot(store, job_id, snapshot_id)?;
    let state: PipelineState = store::decode(&store.get_snapshot_state(job_id, snapshot_id)?)?;
    let progress = store
        .get_progress(job_id)?
        .unwrap_or_else(|| Progress::fresh(PersistedState::Closed));
    let mut status = JobStatus::from_progress(&progress)?;
    let stale_interim = status.interim_range.take();
    status.counts = state.counts.clone();
    status.finalized_end = state.finalized_end;
    status.latest_record_time = state.latest_record_time;
    status.latest_result_time = state.latest_result_time;
    status.model_size_stats = state.detector.model_size_stats();
    let clear_results = if delete_intervening_results {
        Some((state.finalized_end.unwrap_or(i64::MIN), i64::MAX))
    } else {
        stale_interim
    };
    let seq = progress.last_seq + 1;
    let marker = InputEntry::Revert {
        to_seq: doc.last_seq,
    };
    store.commit(
        job_id,
        &Commit {
            input: vec![(seq, store::encode(&marker)?)],
            results: Vec::new(),
            clear_results,
            progress: Progress {
                state: progress.state,
                last_seq: seq,
                latest_snapshot_id: Some(snapshot_id.to_string()),
                status: store::encode(&status)?,
            },
        },
    )?;
    snapshot_json(&doc)
}
