//! The storage interface of the engine: everything one job's deterministic run reads and writes,
//! named after what the engine needs and not after sled's API. The sled store implements it today
//! ([`SledJob`]); a JetStream store (cluster mode, `docs/cluster.md` section 8) implements it next.
//!
//! One value serves one job. What the engine asks of it:
//!
//! | call | when | sled | must hold |
//! |------|------|------|-----------|
//! | [`progress`](JobStore::progress) | restore | `progress` tree | the last commit's or snapshot's progress |
//! | [`snapshots`](JobStore::snapshots), [`snapshot_state`](JobStore::snapshot_state) | restore, snapshot ids | `snapshots` tree | a state reads whole or fails (I5) |
//! | [`input_after`](JobStore::input_after) | restore (I4) | `input` tree | entries in sequence order |
//! | [`commit`](JobStore::commit) | every step (`engine::writer`) | one transaction (I2) | all of a [`Commit`] or none of it |
//! | [`put_snapshot`](JobStore::put_snapshot) | close, persist | one transaction (I3) | body and the progress pointing at it together |
//! | [`scan_results`](JobStore::scan_results), [`get_result`](JobStore::get_result) | renormalization, just before a commit | `results` tree | reads see every earlier commit |
//!
//! Rules an implementation keeps:
//! - The caller is the job's only writer (I1): between two calls nobody else changes the job's
//!   input, results or progress, so a read followed by a commit needs no compare-and-set. A store
//!   that can lose that ownership (a JetStream lease) refuses the write with an error, and the
//!   caller drops its in-memory state and reloads it (`job::actor` rebuilds after any failed write).
//! - Input entries, progress and snapshot states are opaque bytes (`store::encode`); the engine
//!   owns their meaning, the store their framing (CRC32).
//! - Calls are synchronous: the engine runs on the actor's own thread or the blocking pool, never
//!   on the async reactor, so an async store bridges with `Handle::block_on` there.
//! - Errors are [`StoreError`]s; `Corrupt` for a value that does not decode (I5).
//!
//! Pruning input, job configs, calendars, filters and security documents are not part of it: the
//! job registry and maintenance own those and reach the store directly.

use crate::store::{Commit, Progress, ResultDoc, ResultKind, SnapshotDoc, Store, StoreError};

/// Stored input entries `(seq, encoded entry)`, in sequence order.
pub type InputIter<'a> = Box<dyn Iterator<Item = Result<(u64, Vec<u8>), StoreError>> + 'a>;

/// What the engine reads and writes of one job (see the module doc).
pub trait JobStore {
    fn job_id(&self) -> &str;
    /// The job's progress (`None` for a job that never committed).
    fn progress(&self) -> Result<Option<Progress>, StoreError>;
    /// Metadata of every model snapshot of the job, in no particular order.
    fn snapshots(&self) -> Result<Vec<SnapshotDoc>, StoreError>;
    /// The encoded model state of one snapshot.
    fn snapshot_state(&self, snapshot_id: &str) -> Result<Vec<u8>, StoreError>;
    /// The input entries after `seq`.
    fn input_after(&self, seq: u64) -> Result<InputIter<'_>, StoreError>;
    /// Writes one step's input, results and progress atomically (I2).
    fn commit(&self, commit: &Commit) -> Result<(), StoreError>;
    /// Writes a snapshot and the progress pointing at it atomically (I3).
    fn put_snapshot(
        &self,
        doc: &SnapshotDoc,
        state: &[u8],
        progress: &Progress,
    ) -> Result<(), StoreError>;
    /// The job's results of one kind timed in `[start_ms, end_ms)`, with their keys.
    fn scan_results(
        &self,
        kind: ResultKind,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
    ) -> Result<Vec<ResultDoc>, StoreError>;
    /// One result document's JSON.
    fn get_result(
        &self,
        kind: ResultKind,
        timestamp_ms: i64,
        ordinal: u32,
    ) -> Result<Option<Vec<u8>>, StoreError>;
}

/// One job of the sled store.
#[derive(Clone)]
pub struct SledJob {
    store: Store,
    job_id: String,
}

impl SledJob {
    pub fn new(store: Store, job_id: impl Into<String>) -> SledJob {
        SledJob {
            store,
            job_id: job_id.into(),
        }
    }
}

impl JobStore for SledJob {
    fn job_id(&self) -> &str {
        &self.job_id
    }

    fn progress(&self) -> Result<Option<Progress>, StoreError> {
        self.store.get_progress(&self.job_id)
    }

    fn snapshots(&self) -> Result<Vec<SnapshotDoc>, StoreError> {
        self.store.list_snapshots(&self.job_id)
    }

    fn snapshot_state(&self, snapshot_id: &str) -> Result<Vec<u8>, StoreError> {
        self.store.get_snapshot_state(&self.job_id, snapshot_id)
    }

    fn input_after(&self, seq: u64) -> Result<InputIter<'_>, StoreError> {
        Ok(Box::new(self.store.scan_input(&self.job_id, seq)?))
    }

    fn commit(&self, commit: &Commit) -> Result<(), StoreError> {
        self.store.commit(&self.job_id, commit)
    }

    fn put_snapshot(
        &self,
        doc: &SnapshotDoc,
        state: &[u8],
        progress: &Progress,
    ) -> Result<(), StoreError> {
        self.store.put_snapshot(&self.job_id, doc, state, progress)
    }

    fn scan_results(
        &self,
        kind: ResultKind,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
    ) -> Result<Vec<ResultDoc>, StoreError> {
        self.store
            .scan_keyed_results(&self.job_id, kind, start_ms, end_ms)
    }

    fn get_result(
        &self,
        kind: ResultKind,
        timestamp_ms: i64,
        ordinal: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.store
            .get_result(&self.job_id, kind, timestamp_ms, ordinal)
    }
}
