//! The one commit path: [`Writer`] gathers what steps of a job's run produced (input entries,
//! finalized and interim buckets) and writes it with the job's new status and progress in one
//! [`JobStore::commit`] (store I2), rescoring the past results the buckets renormalize in the same
//! commit. The job actor commits after every request; replay gathers many entries per commit. Both
//! go through here, so I2 has one owner.
//!
//! Times come from the caller (`elapsed_ms` of the work, `now_ms` of the wall clock): the engine
//! reads no clock. The writer's progress and status change only once a commit succeeded; a failed
//! commit drops what was pending, and the caller rebuilds its pipeline from the store.

use std::time::Instant;

use crate::engine::pipeline::{Pipeline, PipelineState};
use crate::engine::storage::JobStore;
use crate::engine::{renormalize, result_docs, snapshot, JobConfig, JobError, JobStatus};
use crate::model::renormalize::Renormalization;
use crate::model::BucketResult;
use crate::store::{self, Commit, PersistedState, Progress, ResultDoc};

/// A job's committed progress and status, and what is pending for its next commit.
pub struct Writer<S: JobStore> {
    store: S,
    /// Renormalization window (ms) of the job.
    window_ms: i64,
    bucket_span: i64,
    progress: Progress,
    status: JobStatus,
    pending: Pending,
}

#[derive(Default)]
struct Pending {
    input: Vec<(u64, Vec<u8>)>,
    input_bytes: usize,
    results: Vec<ResultDoc>,
    /// Renormalizations the pending buckets carry, oldest first.
    renormalizations: Vec<(i64, Renormalization)>,
    finalized: usize,
    /// `[start, end)` of the pending interim buckets.
    interim: Option<(i64, i64)>,
}

impl<S: JobStore> Writer<S> {
    /// A writer continuing from the job's committed `progress` and `status`.
    pub fn new(store: S, config: &JobConfig, progress: Progress, status: JobStatus) -> Writer<S> {
        let bucket_span = config.analysis_config.bucket_span.millis;
        Writer {
            store,
            window_ms: renormalize::window_ms(config.renormalization_window_days, bucket_span),
            bucket_span,
            progress,
            status,
            pending: Pending::default(),
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    pub fn status(&self) -> &JobStatus {
        &self.status
    }

    /// The persisted state the next commits write (`opened` for a job an actor runs).
    pub fn set_state(&mut self, state: PersistedState) {
        self.progress.state = state;
    }

    /// Bytes of input and number of result documents pending.
    pub fn pending_size(&self) -> (usize, usize) {
        (self.pending.input_bytes, self.pending.results.len())
    }

    /// Adds an encoded input entry to the next commit (sequence numbers increasing).
    pub fn add_input(&mut self, seq: u64, stored: Vec<u8>) {
        self.pending.input_bytes += stored.len();
        self.pending.input.push((seq, stored));
    }

    /// Adds finalized buckets, each documented as taking `processing_ms`.
    pub fn add_finalized(
        &mut self,
        mut finalized: Vec<BucketResult>,
        processing_ms: u64,
    ) -> Result<(), JobError> {
        for bucket in &finalized {
            result_docs(
                self.store.job_id(),
                bucket,
                processing_ms,
                &mut self.pending.results,
            )?;
        }
        let renormalizations = renormalize::take_renormalizations(&mut finalized);
        self.pending.renormalizations.extend(renormalizations);
        self.pending.finalized += finalized.len();
        Ok(())
    }

    /// Adds interim buckets (`calc_interim`): they replace the interim results stored so far.
    pub fn add_interim(&mut self, interim: Vec<BucketResult>) -> Result<(), JobError> {
        if let (Some(first), Some(last)) = (interim.first(), interim.last()) {
            self.pending.interim = Some((first.timestamp, last.timestamp + self.bucket_span));
        }
        for bucket in &interim {
            result_docs(self.store.job_id(), bucket, 0, &mut self.pending.results)?;
        }
        Ok(())
    }

    /// Writes everything pending with the status brought up to `state`, in one commit (I2).
    /// `elapsed_ms` is the time the pending buckets took (timing stats), `now_ms` the wall clock.
    pub fn commit(
        &mut self,
        state: &PipelineState,
        elapsed_ms: f64,
        now_ms: i64,
    ) -> Result<(), JobError> {
        let mut pending = std::mem::take(&mut self.pending);
        let mut status = self.status.clone();
        status.advance(state, pending.finalized, elapsed_ms, now_ms);
        // Interim results are replaced by whatever buckets come next, final or interim.
        let mut clear_results = None;
        if !pending.results.is_empty() {
            clear_results = status.interim_range.take();
        }
        if pending.interim.is_some() {
            status.interim_range = pending.interim;
        }
        // I2: past results rescored by these buckets are written with them.
        if !pending.renormalizations.is_empty() {
            let started = Instant::now();
            renormalize::rescore(
                &self.store,
                self.window_ms,
                &pending.renormalizations,
                &mut pending.results,
            )?;
            let seconds = started.elapsed().as_secs_f64();
            let job_id = self.store.job_id();
            crate::metrics::observe_job(crate::metrics::JOB_RENORMALIZE_SECONDS, job_id, seconds);
        }
        let last_seq = pending
            .input
            .last()
            .map_or(self.progress.last_seq, |(seq, _)| *seq);
        let progress = Progress {
            last_seq,
            status: store::encode(&status)?,
            ..self.progress.clone()
        };
        let commit = Commit {
            input: pending.input,
            results: pending.results,
            clear_results,
            progress: progress.clone(),
        };
        self.store.commit(&commit)?;
        self.progress = progress;
        self.status = status;
        Ok(())
    }

    /// Writes the pipeline's state as the job's active snapshot, with the progress pointing at it
    /// in `state` (I3). Nothing may be pending.
    pub fn write_snapshot(
        &mut self,
        config: &JobConfig,
        pipeline: &Pipeline,
        state: PersistedState,
        description: &str,
        now_ms: i64,
    ) -> Result<(), JobError> {
        debug_assert!(self.pending.input.is_empty() && self.pending.results.is_empty());
        self.progress = snapshot::write(
            config,
            &self.store,
            pipeline,
            &self.progress,
            &self.status,
            state,
            description,
            now_ms,
        )?;
        Ok(())
    }

    /// Takes a pipeline that was loaded rather than built by this writer's commits (a replay
    /// starting from another job's snapshot): progress and status move up to its state.
    pub fn adopt(&mut self, state: &PipelineState, now_ms: i64) {
        self.progress.last_seq = self.progress.last_seq.max(state.last_seq);
        self.status.advance(state, 0, 0.0, now_ms);
    }

    /// Replaces the committed progress and status (after a rebuild from the store, or a snapshot
    /// written outside the writer).
    pub fn reset(&mut self, progress: Progress, status: JobStatus) {
        self.progress = progress;
        self.status = status;
        self.pending = Pending::default();
    }
}
