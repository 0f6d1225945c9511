//! Replaying a stored job: the source job's input entries `(from_seq, to_seq]` through a pipeline
//! that starts fresh (`from_seq` = 0) or from one of the source's model snapshots, into a new job
//! (a copy of the source's config with some top-level fields replaced) or to NDJSON.
//!
//! A replay from a snapshot keeps the source's `analysis_config` and `data_description`: the
//! snapshot's model state only means something under them. Changing them means replaying from the
//! start, which needs the source's whole input (none of it pruned).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::clock::now_ms;
use crate::engine::pipeline::{Pipeline, PipelineState};
use crate::engine::{JobConfig, JobError};
use crate::ingest::RecordReader;
use crate::replay::{Counters, Replayer, Sink, StoreSink};
use crate::store::{self, PersistedState, Progress, Store};

/// Fields of a stored job document that a new job cannot be created with.
const NOT_COPIED: [&str; 6] = [
    "job_id",
    "create_time",
    "finished_time",
    "model_snapshot_id",
    "job_type",
    "job_version",
];

/// A replay ready to run.
pub struct StoredReplay {
    pub source_job_id: String,
    pub snapshot_id: Option<String>,
    /// The job the results belong to (created in the store by [`StoredReplay::run_into_store`]'s
    /// caller; only named in NDJSON output).
    pub target: Arc<JobConfig>,
    /// Entries after this sequence number are replayed...
    pub from_seq: u64,
    /// ...through this one (the source's `last_seq` when the replay was prepared).
    pub to_seq: u64,
    pipeline: Pipeline,
}

/// The PUT body of a copy of `source` with `changes` (top-level fields) applied.
pub fn copy_body(
    source: &JobConfig,
    changes: Option<&Map<String, Value>>,
) -> Result<Vec<u8>, JobError> {
    let mut body = match serde_json::to_value(source) {
        Ok(Value::Object(map)) => map,
        _ => {
            return Err(JobError::Parse(
                "the stored job config is not an object".into(),
            ))
        }
    };
    for field in NOT_COPIED {
        body.remove(field);
    }
    if let Some(changes) = changes {
        for (name, value) in changes {
            body.insert(name.clone(), value.clone());
        }
    }
    serde_json::to_vec(&body).map_err(|e| JobError::Parse(e.to_string()))
}

/// The stored config of `job_id` (404 when the store has no such job).
pub fn stored_config(store: &Store, job_id: &str) -> Result<JobConfig, JobError> {
    let bytes = store
        .get_job_config(job_id)?
        .ok_or_else(|| JobError::NotFound {
            job_id: job_id.to_string(),
        })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        JobError::Parse(format!(
            "the stored config of job [{job_id}] is unreadable: {e}"
        ))
    })
}

/// Creates `config` in a store no job manager serves (offline commands); refuses an existing id.
pub fn create_in_store(store: &Store, config: &JobConfig) -> Result<(), JobError> {
    let json = serde_json::to_vec(config).map_err(|e| JobError::Parse(e.to_string()))?;
    if store.create_job(
        &config.job_id,
        &json,
        &Progress::fresh(PersistedState::Closed),
    )? {
        Ok(())
    } else {
        Err(JobError::AlreadyExists {
            job_id: config.job_id.clone(),
        })
    }
}

/// A reader for the job's data.
pub fn reader_for(config: &JobConfig) -> Result<Arc<RecordReader>, JobError> {
    Ok(Arc::new(RecordReader::new(
        &config.data_description,
        &config.analysis_fields(),
    )?))
}

impl StoredReplay {
    /// Checks everything that can be checked before any work: the source exists, the snapshot
    /// exists and fits the target config, the input the replay needs is all there.
    pub fn prepare(
        store: &Store,
        source_job_id: &str,
        target: JobConfig,
        snapshot_id: Option<&str>,
    ) -> Result<StoredReplay, JobError> {
        let source = stored_config(store, source_job_id)?;
        let to_seq = store
            .get_progress(source_job_id)?
            .map_or(0, |progress| progress.last_seq);
        let reader = reader_for(&target)?;
        let (mut pipeline, from_seq) = match snapshot_id {
            Some(id) => {
                if !same_json(&source.analysis_config, &target.analysis_config)
                    || !same_json(&source.data_description, &target.data_description)
                {
                    return Err(JobError::InvalidArgument(format!(
                        "A replay from model snapshot [{id}] cannot change analysis_config or data_description; replay from the start instead"
                    )));
                }
                let doc = store.get_snapshot(source_job_id, id)?.ok_or_else(|| {
                    JobError::InvalidArgument(format!(
                        "No model snapshot with id [{id}] exists for job [{source_job_id}]"
                    ))
                })?;
                let state: PipelineState =
                    store::decode(&store.get_snapshot_state(source_job_id, id)?)?;
                (
                    Pipeline::resume(&target.analysis_config, reader, state)
                        .memory_limited(&target),
                    doc.last_seq,
                )
            }
            None => (crate::engine::snapshot::fresh_pipeline(&target, reader), 0),
        };
        pipeline.set_model_plot(&target);
        if let Some(first) = store.scan_input(source_job_id, from_seq)?.next() {
            let (seq, _) = first?;
            if seq != from_seq + 1 && seq <= to_seq {
                return Err(JobError::InvalidArgument(format!(
                    "The input of job [{source_job_id}] before entry [{seq}] was pruned; replay from a later model snapshot"
                )));
            }
        }
        Ok(StoredReplay {
            source_job_id: source_job_id.to_string(),
            snapshot_id: snapshot_id.map(str::to_string),
            target: Arc::new(target),
            from_seq,
            to_seq,
            pipeline,
        })
    }

    /// Input entries the replay applies.
    pub fn entry_count(&self) -> u64 {
        self.to_seq.saturating_sub(self.from_seq)
    }

    /// Applies the entries to `sink`.
    pub fn run<S: Sink>(
        self,
        store: &Store,
        sink: S,
        counters: Arc<Counters>,
    ) -> Result<(Pipeline, S), JobError> {
        counters.total.store(self.entry_count(), Ordering::Relaxed);
        let mut replayer = Replayer::new(self.pipeline, sink, counters.clone());
        for stored in store.scan_input(&self.source_job_id, self.from_seq)? {
            let (seq, bytes) = stored?;
            if seq > self.to_seq {
                break;
            }
            replayer.apply_stored(seq, bytes)?;
            counters.done.fetch_add(1, Ordering::Relaxed);
        }
        replayer.finish()
    }

    /// Runs into the target job, which must exist in the store with nothing in it yet. A replay
    /// from a snapshot first gives the target that snapshot's state, so every input entry it
    /// stores follows a snapshot (I4).
    pub fn run_into_store(
        self,
        store: &Store,
        counters: Arc<Counters>,
    ) -> Result<Pipeline, JobError> {
        let description = format!(
            "State persisted after a replay of job [{}]",
            self.source_job_id
        );
        let mut sink = StoreSink::new_job(store.clone(), self.target.clone(), description);
        if let Some(id) = &self.snapshot_id {
            let copied = format!(
                "Copied from model snapshot [{id}] of job [{}] at {}",
                self.source_job_id,
                now_ms()
            );
            sink.write_snapshot(&self.pipeline, &copied)?;
        }
        let (pipeline, _) = self.run(store, sink, counters)?;
        Ok(pipeline)
    }
}

fn same_json<T: serde::Serialize>(a: &T, b: &T) -> bool {
    match (serde_json::to_value(a), serde_json::to_value(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
