//! Model snapshots from the job's side: what a snapshot holds (the whole `PipelineState`, bincode),
//! its Elasticsearch metadata document, and restoring a job = newest intact snapshot + replay of the
//! input stored after it (store invariant I4).

use std::sync::Arc;

use crate::ingest::RecordReader;
use crate::job::clock::now_ms;
use crate::job::pipeline::{InputEntry, Pipeline, PipelineState};
use crate::job::status::JobStatus;
use crate::job::{JobConfig, JobError};
use crate::store::{self, PersistedState, Progress, SnapshotDoc, Store};

/// The oldest version whose snapshots this one can read, as ES reports `min_version`.
const SNAPSHOT_MIN_VERSION: &str = "8.0.0";

/// A job rebuilt from the store.
pub struct Restored {
    pub pipeline: Pipeline,
    pub progress: Progress,
    /// Set when the newest snapshot could not be used: what was damaged and what the job was
    /// rebuilt from instead (logged, and shown as the job's `assignment_explanation`).
    pub note: Option<String>,
}

/// Rebuilds a job's pipeline: the active snapshot if intact, else the newest intact older one, else
/// from scratch; then every input entry stored after it. Damaged input that the replay needs, or a
/// replay that ends short of the committed input, is `JobError::Damaged`: a job never resumes from
/// a state that silently lacks acknowledged data.
pub fn restore(
    config: &JobConfig,
    store: &Store,
    reader: Arc<RecordReader>,
) -> Result<Restored, JobError> {
    let job_id = &config.job_id;
    let analysis = &config.analysis_config;
    let damaged = |reason: String| JobError::Damaged {
        job_id: job_id.clone(),
        reason,
    };
    let progress = store
        .get_progress(job_id)
        .map_err(|e| damaged(e.to_string()))?
        .unwrap_or_else(|| Progress {
            state: PersistedState::Closed,
            last_seq: 0,
            latest_snapshot_id: None,
            status: Vec::new(),
        });
    let mut pipeline = None;
    let mut unusable = Vec::new();
    let candidates = snapshot_candidates(store, job_id, progress.latest_snapshot_id.as_deref())
        .map_err(|e| damaged(e.to_string()))?;
    for candidate in candidates {
        let loaded = store
            .get_snapshot_state(job_id, &candidate)
            .map_err(JobError::from)
            .and_then(|bytes| Ok(store::decode::<PipelineState>(&bytes)?));
        match loaded {
            Ok(state) => {
                pipeline = Some((candidate, Pipeline::resume(analysis, reader.clone(), state)));
                break;
            }
            Err(error) => {
                tracing::warn!(snapshot_id = %candidate, %error, "model snapshot unusable; trying an older one");
                unusable.push(format!("model snapshot [{candidate}] is damaged ({error})"));
            }
        }
    }
    let (restored_from, pipeline) = match pipeline {
        Some((id, pipeline)) => (format!("model snapshot [{id}]"), pipeline),
        None => (
            "no snapshot (model rebuilt from the start)".to_string(),
            fresh_pipeline(config, reader),
        ),
    };
    let mut pipeline = pipeline.memory_limited(config);
    let mut replayed = 0u64;
    let superseded = superseded_ranges(store, job_id, pipeline.state.last_seq)
        .map_err(|e| damaged(format!("input needed for replay: {e}")))?;
    let input = store
        .scan_input(job_id, pipeline.state.last_seq)
        .map_err(|e| damaged(e.to_string()))?;
    for stored in input {
        let (seq, bytes) = stored.map_err(|e| damaged(format!("input needed for replay: {e}")))?;
        if superseded.iter().any(|&(to, at)| to < seq && seq < at) {
            continue;
        }
        let entry: InputEntry = store::decode(&bytes)
            .map_err(|e| damaged(format!("input entry {seq} needed for replay: {e}")))?;
        pipeline.apply(seq, &entry)?;
        replayed += 1;
    }
    // After the replay: the results it reproduced are already stored, model plot included.
    pipeline.set_model_plot(config);
    if pipeline.state.last_seq != progress.last_seq {
        return Err(damaged(format!(
            "the replay from {restored_from} ends at input entry {} but entries up to {} were \
             acknowledged",
            pipeline.state.last_seq, progress.last_seq
        )));
    }
    let note = (!unusable.is_empty()).then(|| {
        let note = format!(
            "{}; restored from {restored_from} and {replayed} replayed input entries",
            unusable.join("; ")
        );
        tracing::warn!(%note, "job restored from an older state");
        note
    });
    Ok(Restored {
        pipeline,
        progress,
        note,
    })
}

/// `(to_seq, marker_seq)` of every `Revert` marker stored after `after_seq`: the input strictly
/// between the two was reverted away and is not replayed (it stays stored, see `InputEntry::Revert`).
/// A separate pass, so the replay itself never applies an entry a later marker supersedes.
fn superseded_ranges(
    store: &Store,
    job_id: &str,
    after_seq: u64,
) -> Result<Vec<(u64, u64)>, JobError> {
    let mut ranges = Vec::new();
    for stored in store.scan_input(job_id, after_seq)? {
        let (seq, bytes) = stored?;
        let entry: InputEntry = store::decode(&bytes)?;
        if let InputEntry::Revert { to_seq } = entry {
            ranges.push((to_seq, seq));
        }
    }
    Ok(ranges)
}

/// Snapshot ids to try, best first: the active one, then the rest newest first.
fn snapshot_candidates(
    store: &Store,
    job_id: &str,
    active: Option<&str>,
) -> Result<Vec<String>, JobError> {
    let mut all = store.list_snapshots(job_id)?;
    all.sort_by(|a, b| {
        b.timestamp_ms
            .cmp(&a.timestamp_ms)
            .then(b.snapshot_id.cmp(&a.snapshot_id))
    });
    let mut ids: Vec<String> = active.map(str::to_string).into_iter().collect();
    ids.extend(
        all.into_iter()
            .map(|s| s.snapshot_id)
            .filter(|id| Some(id.as_str()) != active),
    );
    Ok(ids)
}

/// Writes a snapshot of the pipeline with its metadata and the progress pointing at it (I3).
/// Returns the new progress.
pub fn write(
    config: &JobConfig,
    store: &Store,
    pipeline: &Pipeline,
    progress: &Progress,
    status: &JobStatus,
    state: PersistedState,
    description: &str,
) -> Result<Progress, JobError> {
    let job_id = &config.job_id;
    let timestamp_ms = now_ms();
    // After a revert the active snapshot is not the newest: number after every existing one, so a
    // new snapshot never replaces an old one.
    let newest_id = store
        .list_snapshots(job_id)?
        .into_iter()
        .filter_map(|s| s.snapshot_id.parse::<i64>().ok())
        .chain(
            progress
                .latest_snapshot_id
                .as_deref()
                .and_then(|id| id.parse().ok()),
        )
        .max()
        .map(|id| id.to_string());
    let snapshot_id = next_snapshot_id(newest_id.as_deref(), timestamp_ms);
    let state_bytes = store::encode(&pipeline.state)?;
    let mut doc = serde_json::json!({
        "job_id": job_id,
        "min_version": SNAPSHOT_MIN_VERSION,
        "timestamp": timestamp_ms,
        "description": described_at(description, timestamp_ms),
        "snapshot_id": snapshot_id,
        "snapshot_doc_count": state_bytes.len().div_ceil(store::SNAPSHOT_CHUNK_LEN).max(1),
        "model_size_stats": status.model_size_stats_json(job_id, memory_limit_bytes(config)),
        "retain": false,
    });
    let map = doc.as_object_mut().expect("object literal");
    if let Some(t) = pipeline.state.latest_record_time {
        map.insert("latest_record_time_stamp".into(), t.into());
    }
    if let Some(t) = pipeline.state.latest_result_time {
        map.insert("latest_result_time_stamp".into(), t.into());
    }
    let snapshot = SnapshotDoc {
        snapshot_id: snapshot_id.clone(),
        timestamp_ms,
        last_seq: pipeline.state.last_seq,
        json: serde_json::to_vec(&doc).map_err(|e| store::StoreError::Encode(e.to_string()))?,
    };
    let next = Progress {
        state,
        last_seq: progress.last_seq,
        latest_snapshot_id: Some(snapshot_id),
        status: store::encode(status)?,
    };
    store.put_snapshot(job_id, &snapshot, &state_bytes, &next)?;
    Ok(next)
}

/// ES's snapshot descriptions end with the time they were taken: `... at 2019-12-03T19:43:57+0000`.
fn described_at(description: &str, timestamp_ms: i64) -> String {
    let at = chrono::DateTime::from_timestamp_millis(timestamp_ms).unwrap_or_default();
    format!("{description} at {}", at.format("%Y-%m-%dT%H:%M:%S%z"))
}

/// ES snapshot ids are epoch seconds; keep them increasing even for two snapshots in one second.
fn next_snapshot_id(previous: Option<&str>, now_ms: i64) -> String {
    let now = now_ms / 1000;
    let after = previous
        .and_then(|p| p.parse::<i64>().ok())
        .map_or(now, |p| p + 1);
    now.max(after).to_string()
}

/// `analysis_limits.model_memory_limit` in bytes (it is always stored as `<n>mb`).
pub fn memory_limit_bytes(config: &JobConfig) -> u64 {
    let text = config
        .analysis_limits
        .model_memory_limit
        .trim_end_matches("mb");
    text.parse::<u64>().unwrap_or(1024) << 20
}

/// Status as the store holds it for a job (empty if it never committed).
pub fn stored_status(
    store: &Store,
    job_id: &str,
) -> Result<(Option<Progress>, JobStatus), JobError> {
    let progress = store.get_progress(job_id)?;
    let status = match &progress {
        Some(p) => JobStatus::from_progress(p)?,
        None => JobStatus::default(),
    };
    Ok((progress, status))
}

/// A pipeline for a job that has seen no data yet, with the job's analysis limits and model plot
/// applied.
pub fn fresh_pipeline(config: &JobConfig, reader: Arc<RecordReader>) -> Pipeline {
    let mut pipeline = Pipeline::new(&config.analysis_config, reader).memory_limited(config);
    if let Some(categorizer) = pipeline.state.detector.categorizer_mut() {
        categorizer
            .set_examples_limit(config.analysis_limits.categorization_examples_limit as usize);
    }
    pipeline.set_model_plot(config);
    pipeline
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_end_with_the_time_as_elasticsearch_writes_it() {
        assert_eq!(
            described_at("State persisted due to job close", 1_575_402_237_000),
            "State persisted due to job close at 2019-12-03T19:43:57+0000"
        );
    }

    #[test]
    fn snapshot_ids_increase_within_a_second() {
        assert_eq!(next_snapshot_id(None, 1_700_000_000_500), "1700000000");
        assert_eq!(
            next_snapshot_id(Some("1700000000"), 1_700_000_000_900),
            "1700000001"
        );
        assert_eq!(
            next_snapshot_id(Some("1600000000"), 1_700_000_000_000),
            "1700000000"
        );
    }
}
