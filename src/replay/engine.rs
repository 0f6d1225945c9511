//! The replay engine: a [`Replayer`] applies input entries to a pipeline and hands every entry and
//! the buckets it finalized to a [`Sink`]. [`StoreSink`] commits them as the job actor would (input,
//! results, the past results they renormalize, and progress in one transaction, I2; batched, since
//! nobody waits for an acknowledgement) and ends with a model snapshot; [`NdjsonSink`] writes the
//! result documents, one per line, as first scored (a stream cannot rewrite what it wrote).

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::ingest::Batch;
use crate::job::pipeline::{InputEntry, Pipeline};
use crate::job::renormalize;
use crate::job::snapshot;
use crate::job::{now_ms, result_docs, JobConfig, JobError, JobStatus};
use crate::model::renormalize::Renormalization;
use crate::model::BucketResult;
use crate::store::{self, Commit, PersistedState, Progress, ResultDoc, Store, StoreError};

/// A store commit is written once this much input or this many result documents are pending:
/// large enough that transactions are few, small enough to bound memory.
const COMMIT_INPUT_BYTES: usize = 4 << 20;
const COMMIT_RESULTS: usize = 20_000;

/// Live progress of one replay, readable from another thread (the progress bar, the task API).
#[derive(Debug, Default)]
pub struct Counters {
    /// Units of work expected (input bytes for files, entries for stored input); 0 = unknown.
    pub total: AtomicU64,
    /// Units done so far.
    pub done: AtomicU64,
    pub entries: AtomicU64,
    pub records: AtomicU64,
    pub buckets: AtomicU64,
    pub anomaly_records: AtomicU64,
    /// Records read but not analysed (out of order, or without a usable time).
    pub skipped: AtomicU64,
}

/// A copy of [`Counters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CountersSnapshot {
    pub total: u64,
    pub done: u64,
    pub entries: u64,
    pub records: u64,
    pub buckets: u64,
    pub anomaly_records: u64,
    pub skipped: u64,
}

impl Counters {
    pub fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            total: self.total.load(Ordering::Relaxed),
            done: self.done.load(Ordering::Relaxed),
            entries: self.entries.load(Ordering::Relaxed),
            records: self.records.load(Ordering::Relaxed),
            buckets: self.buckets.load(Ordering::Relaxed),
            anomaly_records: self.anomaly_records.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
        }
    }
}

/// Where finalized buckets (and, for a store, the input entries) go.
pub trait Sink {
    /// One entry was applied. `stored` is its encoded form (kept by sinks that store input).
    fn accept(
        &mut self,
        pipeline: &Pipeline,
        seq: u64,
        stored: Vec<u8>,
        finalized: Vec<BucketResult>,
    ) -> Result<(), JobError>;

    /// Everything was applied: write what is pending (and, for a store, the closing snapshot).
    fn finish(&mut self, pipeline: &Pipeline) -> Result<(), JobError>;
}

/// A pipeline and its sink.
pub struct Replayer<S: Sink> {
    pipeline: Pipeline,
    sink: S,
    counters: Arc<Counters>,
    /// Records the pipeline had processed (and skipped) before this replay: a resumed job counts
    /// only its new ones.
    records_before: u64,
    skipped_before: u64,
}

impl<S: Sink> Replayer<S> {
    pub fn new(pipeline: Pipeline, sink: S, counters: Arc<Counters>) -> Replayer<S> {
        Replayer {
            records_before: pipeline.state.counts.processed_record_count,
            skipped_before: skipped(&pipeline),
            pipeline,
            sink,
            counters,
        }
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Sequence number the next new entry gets.
    pub fn next_seq(&self) -> u64 {
        self.pipeline.state.last_seq + 1
    }

    /// Applies a stored entry (`bytes` is its encoded form, as the `input` tree holds it).
    pub fn apply_stored(&mut self, seq: u64, bytes: Vec<u8>) -> Result<(), JobError> {
        let entry: InputEntry = store::decode(&bytes)?;
        let finalized = self.pipeline.apply(seq, &entry)?.finalized;
        self.after(seq, bytes, finalized)
    }

    /// Applies records parsed from `input_bytes` bytes of a file, as a `_data` request would.
    pub fn apply_batch(&mut self, batch: &Batch, input_bytes: u64) -> Result<(), JobError> {
        let seq = self.next_seq();
        let received_ms = now_ms();
        let entry = InputEntry::Data {
            input_bytes,
            received_ms,
            ndjson: batch.stored.clone(),
        };
        let stored = store::encode(&entry)?;
        let finalized = self
            .pipeline
            .apply_data(seq, &batch.records, input_bytes, received_ms)?
            .finalized;
        self.after(seq, stored, finalized)
    }

    /// Applies a new entry that is not data (`Close` at the end of a run).
    pub fn apply_new(&mut self, entry: &InputEntry) -> Result<(), JobError> {
        let seq = self.next_seq();
        let stored = store::encode(entry)?;
        let finalized = self.pipeline.apply_checked(seq, entry)?.finalized;
        self.after(seq, stored, finalized)
    }

    fn after(
        &mut self,
        seq: u64,
        stored: Vec<u8>,
        finalized: Vec<BucketResult>,
    ) -> Result<(), JobError> {
        let anomalies: usize = finalized.iter().map(|b| b.records.len()).sum();
        self.counters
            .buckets
            .fetch_add(finalized.len() as u64, Ordering::Relaxed);
        self.counters
            .anomaly_records
            .fetch_add(anomalies as u64, Ordering::Relaxed);
        self.counters.entries.fetch_add(1, Ordering::Relaxed);
        let records = self.pipeline.state.counts.processed_record_count;
        self.counters.records.store(
            records.saturating_sub(self.records_before),
            Ordering::Relaxed,
        );
        self.counters.skipped.store(
            skipped(&self.pipeline).saturating_sub(self.skipped_before),
            Ordering::Relaxed,
        );
        self.sink.accept(&self.pipeline, seq, stored, finalized)
    }

    /// Ends the replay; returns the pipeline (its final state) and the sink.
    pub fn finish(mut self) -> Result<(Pipeline, S), JobError> {
        self.sink.finish(&self.pipeline)?;
        Ok((self.pipeline, self.sink))
    }
}

fn skipped(pipeline: &Pipeline) -> u64 {
    let counts = &pipeline.state.counts;
    counts
        .input_record_count
        .saturating_sub(counts.processed_record_count)
}

/// Commits into one job of a store, as that job's only writer (see the module doc).
pub struct StoreSink {
    store: Store,
    config: Arc<JobConfig>,
    progress: Progress,
    status: JobStatus,
    input: Vec<(u64, Vec<u8>)>,
    input_bytes: usize,
    results: Vec<ResultDoc>,
    /// Renormalizations carried by the buckets of `results`, applied when they are committed.
    renormalizations: Vec<(i64, Renormalization)>,
    finalized: usize,
    since: Instant,
    snapshot_description: String,
}

impl StoreSink {
    /// A sink continuing from the job's stored `progress` and `status`.
    pub fn new(
        store: Store,
        config: Arc<JobConfig>,
        progress: Progress,
        status: JobStatus,
        snapshot_description: impl Into<String>,
    ) -> StoreSink {
        StoreSink {
            store,
            config,
            progress,
            status,
            input: Vec::new(),
            input_bytes: 0,
            results: Vec::new(),
            renormalizations: Vec::new(),
            finalized: 0,
            since: Instant::now(),
            snapshot_description: snapshot_description.into(),
        }
    }

    /// A sink filling a job just created (nothing stored yet). Until [`Sink::finish`] writes the
    /// closing snapshot, its commits mark the job `failed`: a process killed midway leaves a job
    /// that says it is incomplete, never one that looks whole.
    pub fn new_job(
        store: Store,
        config: Arc<JobConfig>,
        snapshot_description: impl Into<String>,
    ) -> StoreSink {
        let progress = Progress {
            state: PersistedState::Failed,
            last_seq: 0,
            latest_snapshot_id: None,
            status: Vec::new(),
        };
        StoreSink::new(
            store,
            config,
            progress,
            JobStatus::default(),
            snapshot_description,
        )
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Writes the pipeline's current state as the job's active snapshot (a replay from a snapshot
    /// starts the target job with this, so its stored input always has a snapshot to follow).
    pub fn write_snapshot(
        &mut self,
        pipeline: &Pipeline,
        description: &str,
    ) -> Result<(), JobError> {
        self.progress.last_seq = self.progress.last_seq.max(pipeline.state.last_seq);
        self.status.advance(&pipeline.state, 0, 0.0, now_ms());
        self.progress = snapshot::write(
            &self.config,
            &self.store,
            pipeline,
            &self.progress,
            &self.status,
            self.progress.state,
            description,
        )?;
        Ok(())
    }

    fn commit(&mut self, pipeline: &Pipeline) -> Result<(), JobError> {
        let elapsed_ms = self.since.elapsed().as_secs_f64() * 1000.0;
        self.status
            .advance(&pipeline.state, self.finalized, elapsed_ms, now_ms());
        let input = std::mem::take(&mut self.input);
        // As the job actor does (I2): past results rescored by these buckets are written with them.
        renormalize::rescore(
            &self.store,
            &self.config.job_id,
            renormalize::window_ms(
                self.config.renormalization_window_days,
                self.config.analysis_config.bucket_span.millis,
            ),
            &std::mem::take(&mut self.renormalizations),
            &mut self.results,
        )?;
        let last_seq = input.last().map_or(self.progress.last_seq, |(seq, _)| *seq);
        let progress = Progress {
            last_seq,
            status: store::encode(&self.status)?,
            ..self.progress.clone()
        };
        let commit = Commit {
            input,
            results: std::mem::take(&mut self.results),
            clear_results: None,
            progress: progress.clone(),
        };
        self.store.commit(&self.config.job_id, &commit)?;
        self.progress = progress;
        self.input_bytes = 0;
        self.finalized = 0;
        self.since = Instant::now();
        Ok(())
    }
}

impl Sink for StoreSink {
    fn accept(
        &mut self,
        pipeline: &Pipeline,
        seq: u64,
        stored: Vec<u8>,
        mut finalized: Vec<BucketResult>,
    ) -> Result<(), JobError> {
        self.input_bytes += stored.len();
        self.input.push((seq, stored));
        for bucket in &finalized {
            result_docs(&self.config.job_id, bucket, 0, &mut self.results)?;
        }
        let renormalizations = renormalize::take_renormalizations(&mut finalized);
        self.renormalizations.extend(renormalizations);
        self.finalized += finalized.len();
        if self.input_bytes >= COMMIT_INPUT_BYTES || self.results.len() >= COMMIT_RESULTS {
            self.commit(pipeline)?;
        }
        Ok(())
    }

    fn finish(&mut self, pipeline: &Pipeline) -> Result<(), JobError> {
        self.commit(pipeline)?;
        let description = self.snapshot_description.clone();
        self.progress.state = PersistedState::Closed;
        self.write_snapshot(pipeline, &description)
    }
}

/// Writes every finalized bucket's documents (the bucket, then its records) as NDJSON.
pub struct NdjsonSink<W: Write> {
    out: W,
    job_id: String,
}

impl<W: Write> NdjsonSink<W> {
    pub fn new(out: W, job_id: impl Into<String>) -> NdjsonSink<W> {
        NdjsonSink {
            out,
            job_id: job_id.into(),
        }
    }

    fn line(&mut self, doc: &serde_json::Value) -> Result<(), JobError> {
        serde_json::to_writer(&mut self.out, doc)
            .map_err(|e| StoreError::Encode(format!("cannot write a result: {e}")))?;
        self.out.write_all(b"\n").map_err(write_error)
    }
}

fn write_error(error: std::io::Error) -> JobError {
    JobError::Store(StoreError::Encode(format!("cannot write results: {error}")))
}

impl<W: Write> Sink for NdjsonSink<W> {
    fn accept(
        &mut self,
        _pipeline: &Pipeline,
        _seq: u64,
        _stored: Vec<u8>,
        finalized: Vec<BucketResult>,
    ) -> Result<(), JobError> {
        for bucket in &finalized {
            let bucket_doc = bucket.bucket_json(&self.job_id, 0);
            self.line(&bucket_doc)?;
            for doc in bucket.records_json(&self.job_id) {
                self.line(&doc)?;
            }
            for doc in bucket.model_plot_json(&self.job_id) {
                self.line(&doc)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self, _pipeline: &Pipeline) -> Result<(), JobError> {
        self.out.flush().map_err(write_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::stored::{create_in_store, reader_for};
    use crate::store::ResultKind;

    fn count_job() -> Arc<JobConfig> {
        let body =
            br#"{"analysis_config": {"bucket_span": "1h", "detectors": [{"function": "count"}]},
            "data_description": {"time_field": "time", "time_format": "epoch"}}"#;
        Arc::new(JobConfig::from_put_body("t", body, 0).expect("valid job"))
    }

    #[test]
    fn a_new_job_is_failed_until_its_closing_snapshot_and_then_restores_exactly() {
        let store = Store::temporary().expect("store");
        let config = count_job();
        create_in_store(&store, &config).expect("created");
        let reader = reader_for(&config).expect("reader");
        let counters = Arc::new(Counters::default());
        let sink = StoreSink::new_job(store.clone(), config.clone(), "test");
        let pipeline = Pipeline::new(&config.analysis_config, reader.clone());
        let mut replayer = Replayer::new(pipeline, sink, counters.clone());
        let body: String = (0..50)
            .map(|i| format!("{{\"time\":{}}}\n", 1_700_000_000 + i * 600))
            .collect();
        let batch = reader.read_body(body.as_bytes()).expect("records");
        replayer
            .apply_batch(&batch, body.len() as u64)
            .expect("applied");
        replayer.sink.commit(&replayer.pipeline).expect("commit");
        let midway = store.get_progress("t").expect("read").expect("progress");
        assert_eq!(midway.state, PersistedState::Failed);
        assert_eq!(midway.last_seq, 1);

        replayer.apply_new(&InputEntry::Close).expect("close");
        let (pipeline, _) = replayer.finish().expect("finished");
        let done = store.get_progress("t").expect("read").expect("progress");
        assert_eq!(done.state, PersistedState::Closed);
        assert_eq!(done.last_seq, 2);
        assert!(done.latest_snapshot_id.is_some());
        let seen = counters.snapshot();
        assert_eq!((seen.records, seen.entries), (50, 2));
        let buckets = store
            .scan_results("t", ResultKind::Bucket, None, None)
            .expect("scan");
        assert_eq!(buckets.len() as u64, seen.buckets);
        assert!(seen.buckets >= 8, "{seen:?}");
        // A server opening the job restores the same state from the snapshot.
        let restored = snapshot::restore(&config, &store, reader)
            .expect("restore")
            .pipeline;
        assert_eq!(restored.state.counts, pipeline.state.counts);
        assert_eq!(restored.state.finalized_end, pipeline.state.finalized_end);
    }
}
