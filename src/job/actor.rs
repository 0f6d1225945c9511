//! The job actor: one OS thread per open job, the only owner of its pipeline (model, counts,
//! watermark) and the only writer of the job's input, results, snapshots and progress (store I1).
//!
//! Commands arrive in order on a bounded channel (a slow job pushes back on HTTP) and are handled one
//! at a time, so concurrent posts to one job are applied in arrival order. Each command commits its
//! changes in one store transaction and replies; the caller then awaits `Store::flush` before
//! acknowledging, so concurrent requests of all jobs share fsyncs. The work runs on this thread,
//! never on the async reactor.
//!
//! Failure: if a store write fails, the in-memory state may be ahead of the store, so the actor
//! rebuilds it from the store (snapshot + input replay) before taking the next command. A panic or a
//! failed rebuild marks the job `failed` (persisted); only a force close clears that.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::ingest::{DataCounts, RecordReader};
use crate::job::clock::now_ms;
use crate::job::forecast::{self, ForecastRequest};
use crate::job::pipeline::{InputEntry, Pipeline};
use crate::job::renormalize;
use crate::job::snapshot;
use crate::job::status::JobStatus;
use crate::job::{FlushParams, JobConfig, JobError};
use crate::model::rules::JobRules;
use crate::model::BucketResult;
use crate::store::{self, Commit, PersistedState, Progress, ResultDoc, ResultKind, Store};

/// Largest input entry stored as one value: bigger bodies are split at record boundaries so no
/// single sled value (or replay step) gets huge.
const MAX_ENTRY_BYTES: usize = 8 << 20;

/// Queue length per job: enough to overlap parsing with the next request's network read.
const QUEUE_CAPACITY: usize = 16;

type Reply<T> = oneshot::Sender<Result<T, JobError>>;

enum JobCommand {
    PostData {
        body: Bytes,
        reply: Reply<DataCounts>,
    },
    Flush {
        params: FlushParams,
        reply: Reply<Option<i64>>,
    },
    /// Finalize, snapshot, mark closed, and stop.
    Close { reply: Reply<()> },
    /// Snapshot but stay `opened` on disk (server shutdown), then stop.
    Persist { reply: Reply<()> },
    /// Stop without persisting anything (force close / force delete).
    Stop { reply: Reply<()> },
    /// Every `background_persist_interval`: snapshot if input arrived since the last snapshot.
    PersistPeriodic,
    /// Work on the job's stored data that must not interleave with the actor's own writes (I1):
    /// snapshot edits and retention while the job is open. It must not write `progress`.
    Exclusive {
        work: ExclusiveWork,
        reply: Reply<serde_json::Value>,
    },
    /// `_update` of `model_plot_config` while open: applies from the next finalized bucket.
    SetModelPlot {
        model_plot_config: Option<serde_json::Value>,
        reply: Reply<()>,
    },
    /// `_forecast`: reads the model between two commands, writes the forecast's documents.
    Forecast {
        request: ForecastRequest,
        reply: Reply<String>,
    },
    /// Put these custom rules in force (through the input log) if they differ from those in force.
    SetRules { rules: JobRules, reply: Reply<()> },
}

/// See [`JobCommand::Exclusive`].
pub type ExclusiveWork =
    Box<dyn FnOnce(&Store) -> Result<serde_json::Value, JobError> + Send + 'static>;

/// Hidden testing setting (README, Guarantees): replaces every job's `background_persist_interval`,
/// below the API's one-hour minimum, so the crash tests can kill the process mid-persist.
pub const PERSIST_INTERVAL_VAR: &str = "AUSPEX_BACKGROUND_PERSIST_INTERVAL";

/// ES picks a random 3-4 h when `background_persist_interval` is unset; auspex spreads jobs over
/// the same hour by their id, so the choice is stable across restarts.
fn persist_interval(config: &JobConfig) -> std::time::Duration {
    let forced = std::env::var(PERSIST_INTERVAL_VAR)
        .ok()
        .and_then(|text| crate::config::parse_duration(&text).ok());
    if let Some(interval) = forced {
        return interval.max(std::time::Duration::from_millis(10));
    }
    let millis = match &config.background_persist_interval {
        Some(span) => span.millis.max(1000),
        None => {
            let spread = config
                .job_id
                .bytes()
                .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
            (3 * 3_600_000 + (spread % 3_600) * 1000) as i64
        }
    };
    std::time::Duration::from_millis(millis as u64)
}

/// The async side's handle on a job actor.
#[derive(Clone)]
pub struct JobHandle {
    job_id: Arc<str>,
    commands: mpsc::Sender<JobCommand>,
    failed: Arc<AtomicBool>,
    /// What the restore had to fall back from, if anything (`snapshot::Restored::note`).
    note: Option<Arc<str>>,
}

impl JobHandle {
    /// True once the actor gave up (panic, or state it could not rebuild).
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire) || self.commands.is_closed()
    }

    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// Queues a lifecycle command, waiting for room: closing or persisting must not fail under load.
    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> JobCommand) -> Result<T, JobError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| self.gone())?;
        answer.await.map_err(|_| self.gone())?
    }

    /// Queues a `_data` or `_flush`, or refuses it at once with 429 when the queue is full: a
    /// waiting request would hold its body in memory, so waiting without bound is unbounded memory.
    async fn offer<T>(&self, make: impl FnOnce(Reply<T>) -> JobCommand) -> Result<T, JobError> {
        let (reply, answer) = oneshot::channel();
        match self.commands.try_send(make(reply)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                return Err(JobError::Overloaded {
                    job_id: self.job_id.to_string(),
                })
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(self.gone()),
        }
        answer.await.map_err(|_| self.gone())?
    }

    fn gone(&self) -> JobError {
        JobError::ActorGone {
            job_id: self.job_id.to_string(),
        }
    }

    pub async fn post_data(&self, body: Bytes) -> Result<DataCounts, JobError> {
        self.offer(|reply| JobCommand::PostData { body, reply })
            .await
    }

    pub async fn flush(&self, params: FlushParams) -> Result<Option<i64>, JobError> {
        self.offer(|reply| JobCommand::Flush { params, reply })
            .await
    }

    pub async fn close(&self) -> Result<(), JobError> {
        self.call(|reply| JobCommand::Close { reply }).await
    }

    pub async fn persist(&self) -> Result<(), JobError> {
        self.call(|reply| JobCommand::Persist { reply }).await
    }

    pub async fn stop(&self) -> Result<(), JobError> {
        self.call(|reply| JobCommand::Stop { reply }).await
    }

    /// Runs `work` on the actor's thread, between two of its own commands.
    pub async fn exclusive(&self, work: ExclusiveWork) -> Result<serde_json::Value, JobError> {
        self.call(|reply| JobCommand::Exclusive { work, reply })
            .await
    }

    pub async fn set_model_plot(
        &self,
        model_plot_config: Option<serde_json::Value>,
    ) -> Result<(), JobError> {
        self.call(|reply| JobCommand::SetModelPlot {
            model_plot_config,
            reply,
        })
        .await
    }

    /// Runs a forecast in the job's order of work; answers its id once its documents are committed.
    pub async fn forecast(&self, request: ForecastRequest) -> Result<String, JobError> {
        self.call(|reply| JobCommand::Forecast { request, reply })
            .await
    }

    pub async fn set_rules(&self, rules: JobRules) -> Result<(), JobError> {
        self.call(|reply| JobCommand::SetRules { rules, reply })
            .await
    }

    /// Asks for a periodic snapshot every `interval` until the actor stops.
    fn start_persist_timer(&self, interval: std::time::Duration) {
        // Weak: the timer must not keep the channel open, or the actor would outlive its handles.
        let commands = self.commands.downgrade();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(commands) = commands.upgrade() else {
                    return;
                };
                if commands.send(JobCommand::PersistPeriodic).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Starts the actor thread: restores the job from the store (snapshot + replay), marks it opened on
/// disk, and answers once it is ready to take commands.
/// `max_empty_buckets` is the gap bound of new input (`job::pipeline`).
pub async fn spawn(
    config: Arc<JobConfig>,
    store: Store,
    max_empty_buckets: u64,
) -> Result<JobHandle, JobError> {
    let (commands, inbox) = mpsc::channel(QUEUE_CAPACITY);
    let failed = Arc::new(AtomicBool::new(false));
    let mut handle = JobHandle {
        job_id: Arc::from(config.job_id.as_str()),
        commands,
        failed: failed.clone(),
        note: None,
    };
    let (ready, is_ready) = oneshot::channel();
    let interval = persist_interval(&config);
    let thread_name = format!("job-{}", config.job_id);
    std::thread::Builder::new()
        .name(thread_name)
        .spawn(move || {
            let span = tracing::info_span!("job", job_id = %config.job_id);
            let _entered = span.enter();
            let started = std::panic::catch_unwind(AssertUnwindSafe(|| {
                JobActor::start(config, store, max_empty_buckets)
            }));
            let (actor, note) = match started {
                Ok(Ok(started)) => started,
                Ok(Err(error)) => {
                    let _ = ready.send(Err(error));
                    return;
                }
                Err(_) => {
                    let _ = ready.send(Err(JobError::Conflict(
                        "the job's model state could not be restored".to_string(),
                    )));
                    return;
                }
            };
            let _ = ready.send(Ok(note));
            actor.run(inbox, &failed);
        })
        .map_err(|e| JobError::Conflict(format!("could not start the job's thread: {e}")))?;
    handle.note = is_ready.await.map_err(|_| handle.gone())??.map(Arc::from);
    handle.start_persist_timer(interval);
    Ok(handle)
}

struct JobActor {
    config: Arc<JobConfig>,
    store: Store,
    pipeline: Pipeline,
    progress: Progress,
    status: JobStatus,
    /// A failed write could not be undone by rebuilding from the store: the in-memory state may be
    /// ahead of the store, so the actor must stop (the job becomes `failed`).
    broken: bool,
    /// Input sequence number the newest snapshot covers (periodic snapshots skip an idle job).
    persisted_seq: u64,
    /// The gap bound of new input, kept for rebuilds.
    max_empty_buckets: u64,
}

impl JobActor {
    /// The actor and the restore's note (see `snapshot::Restored`).
    fn start(
        config: Arc<JobConfig>,
        store: Store,
        max_empty_buckets: u64,
    ) -> Result<(JobActor, Option<String>), JobError> {
        let reader = Arc::new(RecordReader::new(
            &config.data_description,
            &config.analysis_config.analysis_fields(),
        )?);
        let restored = snapshot::restore(&config, &store, reader)?;
        let mut actor = JobActor {
            status: JobStatus::from_progress(&restored.progress)?,
            persisted_seq: restored.progress.last_seq,
            config,
            store,
            pipeline: restored.pipeline.with_max_empty_buckets(max_empty_buckets),
            progress: restored.progress,
            broken: false,
            max_empty_buckets,
        };
        actor.apply_calendar_events()?;
        let rules = crate::job::rules::resolve(&actor.store, &actor.config)?;
        actor.apply_rules(rules)?;
        actor.progress.state = PersistedState::Opened;
        actor
            .store
            .put_progress(&actor.config.job_id, &actor.progress)?;
        Ok((actor, restored.note))
    }

    /// Puts the job's current scheduled events in force if they changed (through the input log, so
    /// a replay applies them at the same point).
    fn apply_calendar_events(&mut self) -> Result<(), JobError> {
        let events = crate::job::calendars::scheduled_events(&self.store, &self.config)?;
        if events == self.pipeline.state.scheduled_events {
            return Ok(());
        }
        self.append_control(InputEntry::Calendar { events })
    }

    /// Puts custom rules in force if they differ from those in force (through the input log).
    fn apply_rules(&mut self, rules: JobRules) -> Result<(), JobError> {
        if &rules == self.pipeline.state.detector.rules() {
            return Ok(());
        }
        self.append_control(InputEntry::Rules { rules })
    }

    /// Applies and commits one input entry that carries no records.
    fn append_control(&mut self, entry: InputEntry) -> Result<(), JobError> {
        let seq = self.progress.last_seq + 1;
        let finalized = self.pipeline.apply(seq, &entry)?.finalized;
        self.commit(
            vec![(seq, store::encode(&entry)?)],
            finalized,
            Vec::new(),
            Instant::now(),
        )
    }

    fn job_id(&self) -> &str {
        &self.config.job_id
    }

    fn run(mut self, mut inbox: mpsc::Receiver<JobCommand>, failed: &AtomicBool) {
        while let Some(command) = inbox.blocking_recv() {
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| self.handle(command)));
            match outcome {
                Ok(Continue::Yes) if !self.broken => {}
                Ok(Continue::No) => return,
                _ => {
                    tracing::error!("job actor panicked or lost its state; the job is now failed");
                    failed.store(true, Ordering::Release);
                    self.progress.state = PersistedState::Failed;
                    if let Err(error) = self.store.put_progress(self.job_id(), &self.progress) {
                        tracing::error!(%error, "could not persist the failed state");
                    }
                    return;
                }
            }
        }
    }

    fn handle(&mut self, command: JobCommand) -> Continue {
        match command {
            JobCommand::PostData { body, reply } => {
                let result = self.post_data(&body);
                let _ = reply.send(result);
                Continue::Yes
            }
            JobCommand::Flush { params, reply } => {
                let result = self.flush(&params);
                let _ = reply.send(result);
                Continue::Yes
            }
            JobCommand::Close { reply } => {
                let result = self.close();
                let stop = result.is_ok();
                let _ = reply.send(result);
                if stop {
                    Continue::No
                } else {
                    Continue::Yes
                }
            }
            JobCommand::Persist { reply } => {
                let result = self.write_snapshot(
                    PersistedState::Opened,
                    "State persisted due to node shutdown",
                );
                let _ = reply.send(result);
                Continue::No
            }
            JobCommand::Stop { reply } => {
                let _ = reply.send(Ok(()));
                Continue::No
            }
            JobCommand::PersistPeriodic => {
                if self.progress.last_seq != self.persisted_seq {
                    // The kill harness reads these two lines (target `auspex::persist`) to tell a
                    // kill during a periodic snapshot from one after it.
                    let started = Instant::now();
                    tracing::debug!(target: "auspex::persist", job_id = self.job_id(), "periodic persist started");
                    if let Err(error) = self.write_snapshot(
                        PersistedState::Opened,
                        "State persisted due to periodic background persist",
                    ) {
                        tracing::error!(%error, "periodic model snapshot failed");
                    }
                    let took_us = started.elapsed().as_micros() as u64;
                    tracing::debug!(target: "auspex::persist", job_id = self.job_id(), took_us, "periodic persist done");
                }
                Continue::Yes
            }
            JobCommand::Exclusive { work, reply } => {
                let _ = reply.send(work(&self.store));
                Continue::Yes
            }
            JobCommand::SetModelPlot {
                model_plot_config,
                reply,
            } => {
                // Kept in the actor's config too, so a rebuild after a failed write keeps it.
                let mut config = (*self.config).clone();
                config.model_plot_config = model_plot_config;
                self.pipeline.set_model_plot(&config);
                self.config = Arc::new(config);
                let _ = reply.send(Ok(()));
                Continue::Yes
            }
            JobCommand::Forecast { request, reply } => {
                let result = forecast::run(&self.store, &self.pipeline, &self.progress, &request);
                let _ = reply.send(result);
                Continue::Yes
            }
            JobCommand::SetRules { rules, reply } => {
                let _ = reply.send(self.apply_rules(rules));
                Continue::Yes
            }
        }
    }

    /// Applies a body as input entries of at most `MAX_ENTRY_BYTES`, each exactly as a replay
    /// applies it, and answers the counts of this request alone (ES's incremental stats).
    fn post_data(&mut self, body: &[u8]) -> Result<DataCounts, JobError> {
        // Parse first: a malformed body is rejected whole and changes nothing.
        let batch = self.pipeline.reader().read_body(body)?;
        // The gap bound covers the whole request, so no piece of it can be refused midway.
        self.pipeline.check_records(&batch.records)?;
        let received_ms = now_ms();
        let started = Instant::now();
        let before = self.pipeline.state.counts.clone();
        let mut pieces = split_lines(&batch.stored, MAX_ENTRY_BYTES);
        if pieces.is_empty() {
            pieces.push(&[]);
        }
        let mut input_bytes = batch.input_bytes;
        let mut records = &batch.records[..];
        let mut encoded = Vec::with_capacity(pieces.len());
        let mut finalized = Vec::new();
        for piece in pieces {
            // One record per stored line.
            let (these, rest) = records.split_at(piece.iter().filter(|&&b| b == b'\n').count());
            records = rest;
            let seq = self.progress.last_seq + 1 + encoded.len() as u64;
            let applied = self
                .pipeline
                .apply_data(seq, these, input_bytes, received_ms);
            let applied = match applied {
                Ok(applied) => applied,
                // Earlier pieces of this body changed the pipeline: back to the store's state.
                Err(error) => return Err(self.undo(error)),
            };
            finalized.extend(applied.finalized);
            encoded.push((
                seq,
                store::encode(&InputEntry::Data {
                    input_bytes,
                    received_ms,
                    ndjson: piece.to_vec(),
                })?,
            ));
            input_bytes = 0;
        }
        self.commit(encoded, finalized, Vec::new(), started)?;
        Ok(self.pipeline.state.counts.since(&before))
    }

    /// Gives up changes the pipeline made that will not be committed: rebuilds it from the store.
    fn undo(&mut self, error: JobError) -> JobError {
        if let Err(rebuild) = self.rebuild() {
            tracing::error!(%rebuild, "rebuilding after a refused request failed");
            self.broken = true;
        }
        error
    }

    fn flush(&mut self, params: &FlushParams) -> Result<Option<i64>, JobError> {
        let started = Instant::now();
        let result = self.flush_inner(params, started);
        let seconds = started.elapsed().as_secs_f64();
        crate::metrics::observe_job(crate::metrics::JOB_FLUSH_SECONDS, self.job_id(), seconds);
        result
    }

    fn flush_inner(
        &mut self,
        params: &FlushParams,
        started: Instant,
    ) -> Result<Option<i64>, JobError> {
        let mut input = Vec::new();
        let mut finalized = Vec::new();
        if params.skip_time.is_some() || params.advance_time.is_some() {
            let entry = InputEntry::Flush {
                skip_time: params.skip_time,
                advance_time: params.advance_time,
            };
            let seq = self.progress.last_seq + 1;
            finalized = self.pipeline.apply_checked(seq, &entry)?.finalized;
            input.push((seq, store::encode(&entry)?));
        }
        let interim = if params.calc_interim {
            self.pipeline.interim(params.start, params.end)
        } else {
            Vec::new()
        };
        if !input.is_empty() || !interim.is_empty() {
            self.commit(input, finalized, interim, started)?;
        }
        Ok(self.pipeline.state.finalized_end)
    }

    /// Prunes and persists: the open bucket is not finalized, it is part of the snapshot.
    fn close(&mut self) -> Result<(), JobError> {
        self.append_control(InputEntry::Close)?;
        self.write_snapshot(PersistedState::Closed, "State persisted due to job close")
    }

    fn write_snapshot(&mut self, state: PersistedState, description: &str) -> Result<(), JobError> {
        let started = Instant::now();
        let written = snapshot::write(
            &self.config,
            &self.store,
            &self.pipeline,
            &self.progress,
            &self.status,
            state,
            description,
        );
        let seconds = started.elapsed().as_secs_f64();
        crate::metrics::observe_job(crate::metrics::JOB_PERSIST_SECONDS, self.job_id(), seconds);
        match written {
            Ok(progress) => {
                self.persisted_seq = progress.last_seq;
                self.progress = progress;
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Writes the input entries, the results and the new progress in one transaction (I2). On
    /// failure the in-memory state is rebuilt from the store, which still holds the last good state.
    fn commit(
        &mut self,
        input: Vec<(u64, Vec<u8>)>,
        mut finalized: Vec<BucketResult>,
        interim: Vec<BucketResult>,
        started: Instant,
    ) -> Result<(), JobError> {
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let job_id = self.config.job_id.clone();
        let mut status = self.status.clone();
        status.advance(&self.pipeline.state, finalized.len(), elapsed_ms, now_ms());
        let mut clear_results = None;
        if !finalized.is_empty() || !interim.is_empty() {
            clear_results = status.interim_range.take();
        }
        if let (Some(first), Some(last)) = (interim.first(), interim.last()) {
            status.interim_range = Some((
                first.timestamp,
                last.timestamp + self.pipeline.bucket_span(),
            ));
        }
        let per_bucket_ms = if finalized.is_empty() {
            0
        } else {
            (elapsed_ms / finalized.len() as f64) as u64
        };
        let mut results = Vec::new();
        for bucket in finalized.iter().chain(interim.iter()) {
            result_docs(&job_id, bucket, per_bucket_ms, &mut results)?;
        }
        // I2: past results rescored by these buckets are written with them.
        let renormalizations = renormalize::take_renormalizations(&mut finalized);
        if !renormalizations.is_empty() {
            let started = Instant::now();
            let window = renormalize::window_ms(
                self.config.renormalization_window_days,
                self.pipeline.bucket_span(),
            );
            renormalize::rescore(
                &self.store,
                &job_id,
                window,
                &renormalizations,
                &mut results,
            )?;
            let seconds = started.elapsed().as_secs_f64();
            crate::metrics::observe_job(crate::metrics::JOB_RENORMALIZE_SECONDS, &job_id, seconds);
        }
        let last_seq = input.last().map_or(self.progress.last_seq, |(seq, _)| *seq);
        let progress = Progress {
            state: PersistedState::Opened,
            last_seq,
            latest_snapshot_id: self.progress.latest_snapshot_id.clone(),
            status: store::encode(&status)?,
        };
        let commit = Commit {
            input,
            results,
            clear_results,
            progress: progress.clone(),
        };
        if let Err(error) = self.store.commit(&job_id, &commit) {
            tracing::error!(%error, "commit failed; rebuilding the job state from the store");
            if let Err(rebuild) = self.rebuild() {
                tracing::error!(%rebuild, "rebuilding after a failed commit failed");
                self.broken = true;
            }
            return Err(error.into());
        }
        self.progress = progress;
        self.status = status;
        Ok(())
    }

    /// Reloads the pipeline from what the store holds (after a failed write).
    fn rebuild(&mut self) -> Result<(), JobError> {
        let reader = self.pipeline.reader().clone();
        let restored = snapshot::restore(&self.config, &self.store, reader)?;
        self.status = JobStatus::from_progress(&restored.progress)?;
        self.pipeline = restored
            .pipeline
            .with_max_empty_buckets(self.max_empty_buckets);
        self.progress = restored.progress;
        Ok(())
    }
}

enum Continue {
    Yes,
    No,
}

/// The documents of one bucket: the bucket at ordinal 0, its records and its influencers at 0..n,
/// and the category definitions that changed up to it.
pub fn result_docs(
    job_id: &str,
    bucket: &BucketResult,
    processing_ms: u64,
    out: &mut Vec<ResultDoc>,
) -> Result<(), JobError> {
    let encode = |value: &serde_json::Value| {
        serde_json::to_vec(value)
            .map_err(|e| JobError::Store(store::StoreError::Encode(e.to_string())))
    };
    out.push(ResultDoc {
        kind: ResultKind::Bucket,
        timestamp_ms: bucket.timestamp,
        ordinal: 0,
        json: encode(&bucket.bucket_json(job_id, processing_ms))?,
    });
    let records = bucket.records_json(job_id);
    let influencers = bucket.influencers_json(job_id);
    let kinds = [
        (ResultKind::Record, records),
        (ResultKind::Influencer, influencers),
    ];
    for (kind, docs) in kinds {
        for (ordinal, doc) in docs.iter().enumerate() {
            out.push(ResultDoc {
                kind,
                timestamp_ms: bucket.timestamp,
                ordinal: ordinal as u32,
                json: encode(doc)?,
            });
        }
    }
    for (ordinal, row) in bucket.model_plot_json(job_id).iter().enumerate() {
        out.push(ResultDoc {
            kind: ResultKind::ModelPlot,
            timestamp_ms: bucket.timestamp,
            ordinal: ordinal as u32,
            json: encode(row)?,
        });
    }
    // A category definition has one key (its id) and is rewritten whenever it changes.
    for category in &bucket.categories {
        out.push(ResultDoc {
            kind: ResultKind::Category,
            timestamp_ms: 0,
            ordinal: u32::try_from(category.id).unwrap_or(u32::MAX),
            json: encode(&category.to_json(job_id))?,
        });
    }
    Ok(())
}

/// Splits NDJSON into pieces of at most `max` bytes at line ends (a longer single line stays whole).
fn split_lines(ndjson: &[u8], max: usize) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut rest = ndjson;
    while !rest.is_empty() {
        if rest.len() <= max {
            pieces.push(rest);
            break;
        }
        let cut = match rest[..max].iter().rposition(|&b| b == b'\n') {
            Some(newline) => newline + 1,
            None => rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |n| n + 1),
        };
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ticks every second (the shortest interval the actor takes; configs cannot go below an hour,
    /// so the test sets it directly): a snapshot is written only when input arrived since the last.
    #[tokio::test]
    async fn periodic_snapshots_are_written_only_after_new_input() {
        let store = Store::temporary().unwrap();
        let body = serde_json::json!({
            "analysis_config": {"bucket_span": "1h", "detectors": [{"function": "count"}]},
            "data_description": {"time_field": "time", "time_format": "epoch"},
            "background_persist_interval": "1h"
        });
        let mut config = JobConfig::from_put_body("p", body.to_string().as_bytes(), 0).unwrap();
        assert_eq!(
            persist_interval(&config),
            std::time::Duration::from_secs(3600)
        );
        config.background_persist_interval = Some(crate::model::TimeSpan::from_millis(1));
        assert_eq!(persist_interval(&config), std::time::Duration::from_secs(1));
        let handle = spawn(
            Arc::new(config),
            store.clone(),
            crate::job::pipeline::DEFAULT_MAX_EMPTY_BUCKETS,
        )
        .await
        .unwrap();
        let tick = || async {
            tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
            // Queued behind any tick sent meanwhile, so the tick has been handled once this answers.
            handle.flush(FlushParams::default()).await.unwrap();
        };
        tick().await;
        assert!(
            store.list_snapshots("p").unwrap().is_empty(),
            "no input yet"
        );
        handle
            .post_data(Bytes::from_static(b"{\"time\":1403481600}\n"))
            .await
            .unwrap();
        tick().await;
        let snapshots = store.list_snapshots("p").unwrap();
        assert_eq!(snapshots.len(), 1);
        let doc: serde_json::Value = serde_json::from_slice(&snapshots[0].json).unwrap();
        assert!(
            doc["description"]
                .as_str()
                .unwrap()
                .starts_with("State persisted due to periodic background persist at "),
            "{doc}"
        );
        tick().await;
        tick().await;
        assert_eq!(
            store.list_snapshots("p").unwrap().len(),
            1,
            "idle: no new snapshot"
        );
        handle
            .post_data(Bytes::from_static(b"{\"time\":1403485200}\n"))
            .await
            .unwrap();
        tick().await;
        assert_eq!(store.list_snapshots("p").unwrap().len(), 2);
        handle.stop().await.unwrap();
    }

    #[test]
    fn split_lines_cuts_at_line_ends() {
        let text = b"aaa\nbb\ncccc\nd\n";
        let pieces = split_lines(text, 6);
        assert_eq!(
            pieces,
            vec![&b"aaa\n"[..], &b"bb\n"[..], &b"cccc\n"[..], &b"d\n"[..]]
        );
        assert_eq!(pieces.concat(), text.to_vec());
        let long = b"0123456789\nx\n";
        assert_eq!(
            split_lines(long, 4),
            vec![&b"0123456789\n"[..], &b"x\n"[..]]
        );
        assert!(split_lines(b"", 4).is_empty());
    }
}
