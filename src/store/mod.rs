//! Store: the sled database under the data path. This doc IS the on-disk format; code cites its
//! invariants (`// I2`) and never repeats its tables. A test checks that every tree name, the format
//! version and every failpoint name below match the code. Changing the format means: bump
//! `FORMAT_VERSION`, add a row to section 8, add a migration to `recovery.rs`.
//!
//! Owns the sled layout, value framing, snapshots and the crash invariants. Does not know what
//! job configs, result documents, input entries or model state mean: they are bytes here. Called
//! by the `job` layer only (the manager and each job's actor); calls nothing above it.
//!
//! All methods but `flush` are synchronous and may do disk I/O: the job layer runs the large ones
//! (commits of big batches, `put_snapshot`, `get_snapshot_state`, replays, `delete_job`) on the
//! blocking pool.
//!
//! # 1. Trees
//!
//! | tree | key | value | writer | readers |
//! |------|-----|-------|--------|---------|
//! | `meta` | `format_version` (ASCII) | frame(bincode `u32`) | `Store::open` | `Store::open`, check |
//! | | `flush_epoch` (ASCII) | frame(bincode `u64`): the epoch of the last flush (`durable.rs`) | `Store::flush` | `Store::open`, check |
//! | | `tallied` (ASCII) | frame(bincode `u32` 1): every job has a tally | `Store::open` (once) | `Store::open`, check |
//! | | `tally 0x00 job_id` | frame(bincode `Tally`: input, buckets, records held) | every writer of `input` or bucket/record results, in its transaction (I6); `create_job`, `delete_job` | check, `check_job` |
//! | `jobs` | `job_id` | frame(job config JSON) | job manager: `create_job`, `put_job_config`, `delete_job` | job layer |
//! | `progress` | `job_id` | frame(bincode `Progress`) | job actor: `commit`, `put_snapshot`, `put_progress`; manager: `create_job`, `delete_job` | job layer |
//! | `input` | `job_id 0x00 seq` | frame(input entry, opaque) | job actor: `commit`, `delete_input_through` | reopen replay, offline replay (`scan_input`) |
//! | `results` | `job_id 0x00 kind time ordinal` | frame(result JSON) | job actor: `commit` | results API (`scan_results`), renormalization (`scan_keyed_results`, `get_result`) |
//! | `snapshots` | `job_id 0x00 0x01 snapshot_id` | frame(bincode snapshot metadata) | job actor: `put_snapshot`, `delete_snapshot`, `put_snapshot_json`; manager (job closed): `delete_snapshot`, `put_snapshot_json` | open/revert, snapshots API |
//! | | `job_id 0x00 0x02 snapshot_id 0x00 chunk` | frame(one chunk of model state) | same | `get_snapshot_state` |
//! | `resources` | `kind 0x00 id [0x00 event_id]` | frame(filter, calendar, event or setting JSON) | job manager: `put_resource`, `delete_resource` | filters and calendars API, job manager (settings) |
//! | `security` | `kind 0x00 name` | frame(user, role or API key JSON) | `security::Security` (server) or the `users`/`roles` commands (offline): `write_security` | `security` (authentication, `_security` API) |
//!
//! `delete_job` and the orphan purge remove keys of every tree but `meta`, `resources` and
//! `security` (which belong to no job; `delete_job` removes the job's tally from `meta`); `reset_job`
//! removes the job's `input`, `results` and `snapshots` keys and rewrites its progress.
//!
//! Beside sled's files the store directory holds `auspex.mark` (`durable.rs`): frame(bincode
//! `Mark`), rewritten by rename after every flush: the highest flush epoch known durable, per
//! scope (job id, `security`, `resources`) the epoch of the flush that made its last write
//! durable, deleted jobs' epochs, and the scopes found to have lost writes.
//!
//! # 2. Keys
//!
//! - **Job ids** follow the ES rules (`[a-z0-9_-]`, checked by the job layer); the store itself
//!   refuses an empty id or one containing `0x00` (`StoreError::Encode`). So `job_id 0x00` is a
//!   prefix of exactly that job's keys: job `a`'s prefix `a 0x00` differs from every key of job
//!   `ab` at byte 1. All keys of a job lie in `[job_id 0x00, job_id 0x01)`, and no other job's key
//!   sorts inside that range.
//! - **seq**: u64 big-endian, so byte order is sequence order.
//! - **time**: epoch ms as i64, stored as u64 big-endian after flipping the sign bit
//!   (`i64::MIN` -> `00..00`, `-1` -> `7f ff..ff`, `0` -> `80 00..00`, `i64::MAX` -> `ff..ff`),
//!   so byte order is time order and a range scan runs in time order.
//! - **kind**: u8, bucket `1`, record `2`, influencer `3`, model plot `10` (all four keyed by
//!   bucket time); category definition `4`, keyed by time `0` and ordinal = its category id, and
//!   overwritten when the category changes; forecast row `11` and forecast request stats `12`,
//!   keyed by the forecast's create time (unique per job), so one forecast is one range.
//!   **ordinal**: u32 big-endian, the document's position within its bucket (or forecast). Results
//!   of a job sort by kind, time, ordinal. The time-range removals (interim results, retention,
//!   revert's `delete_intervening_results`) cover the bucket-timed kinds (1-3, 10) only; deleting
//!   and resetting the job remove every kind with the job's other keys.
//! - **Resources**: `kind` is one ASCII byte, `f` filter, `c` calendar, `e` scheduled event, `s`
//!   node setting (id `upgrade_mode`, value `{"enabled":bool}`); the ids follow the ES id rules
//!   (no `0x00`). An event's key is its calendar's id, `0x00`, then the
//!   event id, so a calendar's events are one prefix scan.
//! - **Security**: `kind` is one ASCII byte, `u` user (by username), `r` custom role (by name),
//!   `k` API key (by id); names are non-empty and hold no `0x00`. A user's document holds an
//!   argon2 PHC hash of its password, an API key's a BLAKE2b-256 digest of its secret; no secret
//!   is ever stored. Related documents (a user and the API keys it owns when it is deleted) are
//!   written in one `apply_batch`, so a crash leaves all of them or none.
//! - **Snapshots**: tag `0x01` holds metadata, `0x02` holds chunks, so all of a job's metadata sorts
//!   before its chunks and listing snapshots never reads a chunk. Snapshot ids are non-empty and
//!   contain no `0x00` (ES ids are numeric strings); the `0x00` after the id in a chunk key keeps
//!   the chunks of snapshot `1` apart from those of `12`. **chunk**: u32 big-endian index from 0.
//!
//! # 3. Value frame
//!
//! Every value of every tree is one frame. All integers in the header are little-endian.
//!
//! | offset | size | field |
//! |--------|------|-------|
//! | 0 | 1 | frame format, `1` |
//! | 1 | 4 | payload length, u32 LE |
//! | 5 | 4 | crc32 (IEEE, `crc32fast`) of the payload, u32 LE |
//! | 9 | length | payload |
//!
//! Decoding checks, in order: header present, known frame format, length equals the bytes after the
//! header (catches truncation), crc32, then the payload: bincode for `meta`, `progress` and snapshot
//! metadata; JSON and input payloads are returned as bytes (their well-formedness is checked by
//! `check_integrity`; the readers parse them anyway). Every failure is
//! `StoreError::Corrupt { tree, key, reason }`; nothing panics (I5).
//!
//! bincode is `bincode::config::standard()` (varint integers, little-endian) through
//! `bincode::serde`, pinned in one function (`frame::config`, used by `encode`/`decode`). Decoding
//! refuses trailing bytes and caps allocations at a limit no smaller than the input, so a damaged
//! length prefix is an error, not an abort. bincode is positional: adding, removing or reordering a
//! field of `Progress` or the snapshot metadata is a new format version plus a migration.
//!
//! Snapshot metadata, in field order: `timestamp_ms` i64, `last_seq` u64, `json` (the ES snapshot
//! document) bytes, `state_len` u64, `chunk_count` u32, `state_crc` u32 (crc32 of the whole state).
//! Model state is cut into chunks of `SNAPSHOT_CHUNK_LEN` = 1 MiB (the last one shorter; an empty
//! state has no chunks), each in its own frame, so a flipped byte is found per chunk and a missing,
//! extra or reordered chunk by the count, length and whole-state crc.
//!
//! # 4. Invariants
//!
//! - **I1 Single writer.** Only a job's actor writes that job's keys in `input`, `results`,
//!   `snapshots` and `progress`; only the job manager writes `jobs` (and creates/deletes a job's
//!   progress). While a job is closed, the manager stands in for its actor (revert, reset, snapshot
//!   edits, retention), holding the job busy so no actor starts meanwhile. Jobs never lock each
//!   other, and a read-then-write across a transaction boundary (the key scans in `commit`,
//!   `put_snapshot`, `create_job`) cannot race a writer.
//! - **I2 One unit of work, one transaction.** `commit` writes a `Commit`'s input entries, result
//!   removals (`clear_results`) and writes, and progress in ONE sled transaction over `input`,
//!   `results` and `progress`. sled transactions cannot range-scan, so the result keys to clear are
//!   collected just before the transaction (safe by I1). Past results a commit's buckets
//!   renormalize (`job::renormalize`) are rewritten in that same commit, read just before it (I1
//!   again). A reader sees all of a commit or none of it;
//!   each store call is one view, two calls are two views.
//! - **I3 Snapshots are whole.** `put_snapshot` writes the metadata, every state chunk and the
//!   progress that points at it (`latest_snapshot_id`) in one transaction over `snapshots` and
//!   `progress`. Earlier snapshots are kept until `delete_snapshot` (the job layer never deletes the
//!   active one), so a damaged latest snapshot leaves an older one to fall back to.
//! - **I4 Input is kept.** Each input entry has a sequence number, strictly increasing per job
//!   (`commit` refuses anything else); progress records the last one it covers and a snapshot the
//!   last one its state covers. Reopen = `get_snapshot_state` + `scan_input(job, snapshot.last_seq)`.
//!   Pruning (`delete_input_through`) never removes input a restorable snapshot still needs (the
//!   caller's rule). No stored seq exceeds `progress.last_seq`.
//! - **I5 Every value decodes or yields `Corrupt`.** Decoding never panics and never trusts a
//!   length it has not checked. A panic inside sled (some damage to its own files makes sled 0.34
//!   panic) is caught at the store's entry points (`open`, `flush`, `check_integrity`, `check_job`)
//!   and becomes `Corrupt { tree: "sled" }`.
//! - **I6 Tallies are exact.** A job's tally counts its `input` keys and its bucket and record
//!   result keys, and changes in the same transaction as the keys it counts (`commit`, the batched
//!   purges of `delete_results`, `delete_kind`, `delete_input_through`, `reset_job`), so any
//!   difference between tally and keys is keys sled lost or brought back.
//! - **I7 The mark never runs ahead.** `flush` raises `meta.flush_epoch`, flushes sled, then
//!   records the epoch in `auspex.mark`. A sled that opens with a lower epoch than the mark lost
//!   flushed writes; every scope written after its epoch is reported (`Store::lost`).
//! - **I8 A write is whole or the process stops.** No path writes results, input or snapshots
//!   outside a transaction that also writes the progress covering them (`commit`, `put_snapshot`).
//!   A transaction that fails with an error has written nothing; one that panics (sled does when
//!   an allocation fails midway) aborts the process before anything else is written or flushed,
//!   so the torn batch is never followed by a durable write and recovery drops it. The size of
//!   one commit is bounded by the request it serves (the job layer's gap bound,
//!   `job::pipeline`), so no commit needs memory out of proportion to its input.
//!
//! # 5. Durability points
//!
//! Data is durable only once `Store::flush` (sled `Db::flush` on the blocking pool, all trees) returns. Every call that
//! acknowledges something awaits it before replying: `_data` (concurrent requests may share one
//! flush: group commit), `_flush`, `_close`, snapshot writes, `PUT`/`DELETE` job. sled's background
//! flush is never relied on.
//!
//! Failpoints (`failpoint.rs`; always built, armed by `AUSPEX_FAILPOINT=<name>[:abort|:panic|:error[:n]]`):
//! at commit boundaries `commit.before`, `commit.mid` (inside the transaction, between its
//! results and its progress), `commit.after`, `snapshot.before`, `snapshot.after`,
//! `delete.after_unlink`, `delete.mid_purge`; before single writes `delete.before`,
//! `create_job.before`, `job_config.before`, `progress.before`, `snapshot_delete.before`,
//! `snapshot_edit.before`, `purge.batch`, `resource.before`. A crash at any of them must leave a
//! store that opens and passes `check_integrity`, with every flushed acknowledgement intact
//! (`store/crash_tests.rs` crashes a child process at each commit boundary and checks exactly
//! that); an injected write error at any of them must leave the last good state, and an injected
//! panic (`:panic`) inside a commit must stop the process with the last good state on disk (I8).
//!
//! # 6. Recovery on open
//!
//! 1. Read `auspex.mark`. A `db` file that is missing or empty while the mark (epoch above 0) or
//!    sled's `snap.*` files say the store held data -> `Corrupt` (sled would open it as new).
//! 2. Open sled and the trees.
//! 3. Format: `meta` missing and every tree empty -> new store, write the version, unless the mark
//!    says the store held data (`Corrupt`). Missing with data present -> `UnknownFormat { found:
//!    0 }`. Another version -> `UnknownFormat { found }`. Unreadable -> `Corrupt`.
//! 4. Compare `meta.flush_epoch` with the mark (I7); record and log the scopes that lost writes.
//! 5. Tallies: a store without the `tallied` marker (written before tallies) has them counted once;
//!    the marker missing where the mark says the store had it -> `Corrupt`.
//! 6. Purge orphans: `input`/`results`/`snapshots` keys of a job that has no config, no progress and
//!    no tally (a crash during `delete_job`, which unlinks all three first), and keys with no job
//!    prefix at all. A job with only some of the three lost the rest to damage: it is kept, for
//!    `check` to report and `delete_job` to remove. Costs one seek per job per tree; a live job's
//!    data is skipped, not read.
//! 7. `check_integrity` is not run here (it reads everything); `auspex verify` runs it. The job
//!    layer runs `check_job` (the cheap form) on every job at start and before every open, and
//!    serves no job that fails it; reopening the jobs recorded as opened (snapshot + replay,
//!    falling back to an older snapshot if the latest is corrupt, else `failed`) is the job layer's.
//!
//! # 7. Assumptions about sled (0.34.7, pinned in `Cargo.toml`)
//!
//! - A transaction over a tuple of trees is atomic across crashes (its writes are one sealed batch in
//!   the log) and runs under a database-wide write lock, so every read sees it whole or not at all.
//!   The closure may be rerun: ours only apply prebuilt batches, and never call other store methods
//!   (they take the same lock). Everything expensive (framing, CRCs, key scans) happens before.
//! - `Tree::apply_batch` is atomic within one tree.
//! - Nothing is durable before a flush; `Db::flush` covers all trees.
//! - There is no range delete and iteration reads values too: deleting is proportional to the data.
//! - sled 1.0 alphas use another on-disk format: moving to one is a store format change.
//! - A flush running while a transaction or `apply_batch` waits can deadlock (sled's global
//!   concurrency lock is fair and the flush holds it while waiting on the log flusher); every
//!   such writer and every flush go through `gate.rs`, which keeps them apart.
//!
//! # 8. Version history
//!
//! | version | change |
//! |---------|--------|
//! | 1 | initial layout (auspex 0.1.0); `resources` and `security` added later in version 1 (older stores have them empty: nothing to migrate; a store without users gets the bootstrap `elastic` user at the first secured start) |
//! | 2 | the bincode model state (influencers, populations, compact seasonal profiles, memory monitor, rules, categorizer) and `Progress.status` (`ModelSizeStats` memory and categorization fields) changed shape; result kinds 4, 10-12 and resource kind `s` added. Version 1 stores are refused with `UnknownFormat` (no migration: their snapshots cannot be decoded into the new model) |
//! | 3 | each series predictor keeps a long-memory selection error and each detector a renormalization clock (the bincode model state changed shape); results are renormalized in place. Older stores are refused with `UnknownFormat` |
//! | 4 | series models hold a fifth predictor (level + slope: the trend candidate), narrower predictor fields, no stored slot geometry, and the search for other periods (its window and a found period's predictor) (the bincode model state changed shape). Older stores are refused with `UnknownFormat` |
//! | 5 | each job's model keeps a ledger of its series' recent large raw scores and each series model the longest period it has predicted with, in one byte less for its active predictor's index (the bincode model state changed shape). Older stores are refused with `UnknownFormat` |
//! | 6 | each series model remembers whether it has ever learnt a negative value (predictions of a never-negative series stay at or above 0) (the bincode model state changed shape). Older stores are refused with `UnknownFormat` |
//! | 7 | each series model keeps how noisy each two-hour slot of the day usually is (`model::noise`) (the bincode model state changed shape). Older stores are refused with `UnknownFormat`. Later in version 7: the `meta` keys `flush_epoch`, `tallied` and the tallies, and `auspex.mark` (a version 7 store without them gets them at its first open: tallies counted, epoch 0) |
//! | 8 | close no longer finalizes the open bucket (a stored `Close` entry now replays as a prune only), and the pipeline state keeps ES's bucket diagnostics window in place of the sparse-bucket window (the bincode snapshot state changed shape). Older stores are refused with `UnknownFormat` |

mod check;
mod commit;
#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod damage_tests;
mod durable;
mod error;
mod failpoint;
mod frame;
mod gate;
mod input;
mod jobs;
mod keys;
mod maintenance;
mod progress;
mod recovery;
mod resources;
mod results;
mod security;
mod snapshots;
mod tally;
pub mod tree;

pub use check::{IntegrityProblem, IntegrityReport};
pub use commit::Commit;
pub use durable::{RESOURCES_SCOPE, SECURITY_SCOPE};
pub use error::StoreError;
pub use failpoint::failpoint;
pub use frame::{decode, encode};
pub use input::InputEntries;
pub use progress::{PersistedState, Progress};
pub use resources::ResourceKind;
pub use results::{ResultDoc, ResultKind};
pub use security::{SecurityKind, SecurityWrite};
pub use snapshots::{SnapshotDoc, SNAPSHOT_CHUNK_LEN};
pub use tally::Tally;

/// Failpoint names, for the crash tests.
pub mod failpoints {
    pub use super::failpoint::*;
}

use std::sync::Arc;

use sled::{transaction::TransactionError, Tree};

/// The store format this build reads and writes (section 8).
pub const FORMAT_VERSION: u32 = 8;

/// Handles to the database and its trees; cheap to clone (sled handles are reference-counted).
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    meta: Tree,
    jobs: Tree,
    progress: Tree,
    input: Tree,
    results: Tree,
    snapshots: Tree,
    resources: Tree,
    security: Tree,
    /// The durable mark (`durable.rs`); `None` for a temporary store.
    durable: Option<Arc<durable::Durable>>,
}

/// How long opening waits for the directory's file lock to be released.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens sled, waiting a little if another handle still holds the directory's lock: a store
/// dropped in this process releases it only when sled's background flusher has stopped, which
/// can lag the drop (a restart in the same process, e.g. a test, would otherwise fail by chance).
/// A second process on the same directory still fails, after `LOCK_WAIT`.
fn open_waiting_for_lock(config: &sled::Config) -> Result<sled::Db, sled::Error> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match config.open() {
            Err(sled::Error::Io(error))
                if error.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

impl Store {
    /// Opens (or creates) the store in `path`, then runs recovery (section 6). A panic in sled
    /// (which some damage to its files causes) is an error here, not an abort.
    pub fn open(path: &std::path::Path) -> Result<Store, StoreError> {
        contain("opening the store", || {
            let mark = durable::read_mark(path);
            recovery::check_files(path, mark.as_ref())?;
            Store::from_config(sled::Config::new().path(path), Some((path, mark)))
        })
    }

    /// A store that lives until the last handle drops; for tests.
    pub fn temporary() -> Result<Store, StoreError> {
        Store::from_config(sled::Config::new().temporary(true), None)
    }

    fn from_config(
        config: sled::Config,
        durable: Option<(&std::path::Path, Option<durable::Mark>)>,
    ) -> Result<Store, StoreError> {
        let db = open_waiting_for_lock(&config)?;
        let mut store = Store {
            meta: db.open_tree(tree::META)?,
            jobs: db.open_tree(tree::JOBS)?,
            progress: db.open_tree(tree::PROGRESS)?,
            input: db.open_tree(tree::INPUT)?,
            results: db.open_tree(tree::RESULTS)?,
            snapshots: db.open_tree(tree::SNAPSHOTS)?,
            resources: db.open_tree(tree::RESOURCES)?,
            security: db.open_tree(tree::SECURITY)?,
            db,
            durable: None,
        };
        let held_data = durable
            .as_ref()
            .and_then(|(_, mark)| mark.as_ref())
            .is_some_and(|mark| mark.epoch > 0);
        store.check_format(held_data)?;
        if let Some((path, mark)) = durable {
            let sled_epoch = store.flush_epoch()?;
            store.durable = Some(Arc::new(durable::Durable::open(path, mark, sled_epoch)?));
        }
        for (scope, reason) in store.lost() {
            tracing::error!(scope = %scope.trim_start_matches('\0'), %reason, "stored data may be lost");
        }
        if store.ensure_tallies()? {
            tracing::info!(
                "counted the stored input and results of every job (a store from before tallies)"
            );
        }
        let purged = store.purge_orphans()?;
        if purged > 0 {
            tracing::warn!(
                purged,
                "removed keys of deleted jobs left by an interrupted delete"
            );
        }
        Ok(store)
    }

    /// Makes everything written so far durable; every acknowledgement awaits this. Concurrent
    /// callers share the disk write (group commit). Runs on the blocking pool under the shared
    /// write gate (`gate.rs`: sled's flush and its transactions can deadlock otherwise).
    /// With a durable mark, the flush first raises `meta.flush_epoch` and afterwards records the
    /// epoch in the mark (`durable.rs`).
    pub async fn flush(&self) -> Result<(), StoreError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            contain("flushing the store", || {
                let begun = match &store.durable {
                    Some(durable) => {
                        let begun = durable.begin();
                        store.raise_flush_epoch(durable::Durable::epoch_of(&begun))?;
                        Some(begun)
                    }
                    None => None,
                };
                {
                    let _shared = gate::shared();
                    store.db.flush()?;
                }
                if let (Some(durable), Some(begun)) = (&store.durable, begun) {
                    durable.complete(begun);
                }
                Ok(())
            })
        })
        .await
        .map_err(|e| StoreError::Sled(sled::Error::Io(std::io::Error::other(e.to_string()))))??;
        Ok(())
    }

    /// The epoch of the last flush sled holds (0: none yet).
    fn flush_epoch(&self) -> Result<u64, StoreError> {
        match self.meta.get(durable::FLUSH_EPOCH_KEY)? {
            Some(value) => frame::unframe_bincode(tree::META, durable::FLUSH_EPOCH_KEY, &value),
            None => Ok(0),
        }
    }

    /// Sets `meta.flush_epoch` to `epoch` unless it is higher already (concurrent flushes).
    fn raise_flush_epoch(&self, epoch: u64) -> Result<(), StoreError> {
        let framed = frame::frame_bincode(&epoch)?;
        self.meta
            .fetch_and_update(durable::FLUSH_EPOCH_KEY, |old| {
                let old: u64 = old
                    .and_then(|v| frame::unframe_bincode(tree::META, b"", v).ok())
                    .unwrap_or(0);
                Some(if old > epoch {
                    frame::frame_bincode(&old).unwrap_or_else(|_| framed.clone())
                } else {
                    framed.clone()
                })
            })?;
        Ok(())
    }

    /// A write to `scope` (a job id, or a `durable` scope) is about to be made.
    fn touched(&self, scope: &str) {
        if let Some(durable) = &self.durable {
            durable.touched(scope);
        }
    }

    /// Scopes (job ids, or [`SECURITY_SCOPE`] / [`RESOURCES_SCOPE`]) that may have lost flushed
    /// writes (`durable.rs`), with the reason.
    pub fn lost(&self) -> std::collections::BTreeMap<String, String> {
        self.durable
            .as_ref()
            .map(|durable| durable.lost())
            .unwrap_or_default()
    }

    /// Forgets every recorded loss: the operator accepts the store as it now is
    /// (`auspex verify --accept-loss`).
    pub fn accept_loss(&self) -> Result<(), StoreError> {
        match &self.durable {
            Some(durable) => durable.accept_loss(),
            None => Ok(()),
        }
    }

    /// Every tree with its name, in `tree::ALL` order.
    fn trees(&self) -> [(&'static str, &Tree); 8] {
        [
            (tree::META, &self.meta),
            (tree::JOBS, &self.jobs),
            (tree::PROGRESS, &self.progress),
            (tree::INPUT, &self.input),
            (tree::RESULTS, &self.results),
            (tree::SNAPSHOTS, &self.snapshots),
            (tree::RESOURCES, &self.resources),
            (tree::SECURITY, &self.security),
        ]
    }
}

/// Runs a sled call with its panics caught: sled 0.34 panics on some damage to its own files
/// (`tried to serialize Uninitialized`, ...), and a damaged store must be an error, never an abort.
/// sled's state after such a panic is not trusted further by the caller: the error is final for
/// that store handle's user (a failed job, `verify`'s exit 2).
pub(crate) fn contain<T>(
    what: &str,
    call: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)) {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(StoreError::Corrupt {
                tree: "sled",
                key: String::new(),
                reason: format!("sled failed while {what} ({message}): its files are damaged"),
            })
        }
    }
}

/// Runs a progress-advancing transaction (I2, I3); a panic inside it ends the process (I8). sled
/// panics midway through applying a transaction when it cannot allocate an I/O buffer: the part it
/// applied is in its log, and any later write that is flushed would make that torn part durable
/// (results without the progress that covers them). Aborting at once, before anything else is
/// written or flushed, leaves the log ending inside the torn batch, which recovery discards.
fn whole_or_abort<T>(what: &str, write: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(write)) {
        Ok(done) => done,
        Err(_) => {
            tracing::error!(
                "a store {what} panicked midway; stopping the process so that nothing of it is \
                 kept (a restart recovers the last whole commit)"
            );
            std::process::abort();
        }
    }
}

/// A transaction either aborted with our error or failed in sled.
fn tx_error(error: TransactionError<StoreError>) -> StoreError {
    match error {
        TransactionError::Abort(error) => error,
        TransactionError::Storage(error) => StoreError::Sled(error),
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::{Commit, PersistedState, Progress, ResultDoc, ResultKind};

    pub fn progress(last_seq: u64) -> Progress {
        Progress {
            state: PersistedState::Opened,
            last_seq,
            latest_snapshot_id: None,
            status: vec![1, 2],
        }
    }

    /// A commit of the given input and results; each result's JSON is `"<Kind>@<time>#0"`.
    pub fn commit_with(
        input: Vec<(u64, Vec<u8>)>,
        results: &[(ResultKind, i64)],
        last_seq: u64,
    ) -> Commit {
        let results = results
            .iter()
            .map(|&(kind, timestamp_ms)| ResultDoc {
                kind,
                timestamp_ms,
                ordinal: 0,
                json: format!("\"{kind:?}@{timestamp_ms}#0\"").into_bytes(),
            })
            .collect();
        Commit {
            input,
            results,
            clear_results: None,
            progress: progress(last_seq),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{commit_with, progress};
    use super::*;

    const DOC: &str = include_str!("mod.rs");

    /// The doc is the format: it must name what the code uses.
    #[test]
    fn the_format_doc_matches_the_code() {
        for name in tree::ALL {
            assert!(
                DOC.contains(&format!("//! | `{name}` |")),
                "tree {name} has no row in the Trees table"
            );
        }
        assert!(
            DOC.contains(&format!("//! | {FORMAT_VERSION} |")),
            "FORMAT_VERSION has no row in the version history"
        );
        for name in failpoints::ALL {
            assert!(
                DOC.contains(&format!("`{name}`")),
                "failpoint {name} is not documented"
            );
        }
        assert!(DOC.contains(&format!(
            "| 0 | 1 | frame format, `{}` |",
            frame::FRAME_FORMAT
        )));
        assert!(DOC.contains(&format!("| {} | length | payload |", frame::HEADER_LEN)));
        assert_eq!(SNAPSHOT_CHUNK_LEN, 1 << 20, "the doc says 1 MiB");
        assert!(DOC.contains(&format!(
            "`{}` (ASCII)",
            std::str::from_utf8(recovery::FORMAT_VERSION_KEY).unwrap()
        )));
    }

    #[tokio::test]
    async fn flushed_data_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let doc = SnapshotDoc {
            snapshot_id: "1".into(),
            timestamp_ms: 5,
            last_seq: 2,
            json: b"{}".to_vec(),
        };
        let state: Vec<u8> = (0..(SNAPSHOT_CHUNK_LEN + 10)).map(|i| i as u8).collect();
        {
            let store = Store::open(dir.path()).unwrap();
            assert!(store
                .create_job("a", b"{\"job_id\":\"a\"}", &progress(0))
                .unwrap());
            store
                .commit(
                    "a",
                    &commit_with(
                        vec![(1, b"x".to_vec()), (2, vec![7; 100_000])],
                        &[(ResultKind::Bucket, -5)],
                        2,
                    ),
                )
                .unwrap();
            let mut p = progress(2);
            p.latest_snapshot_id = Some("1".into());
            store.put_snapshot("a", &doc, &state, &p).unwrap();
            store.flush().await.unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.get_job_config("a").unwrap().unwrap(),
            b"{\"job_id\":\"a\"}"
        );
        assert_eq!(
            store
                .get_progress("a")
                .unwrap()
                .unwrap()
                .latest_snapshot_id
                .as_deref(),
            Some("1")
        );
        let input: Vec<_> = store
            .scan_input("a", 0)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(input, vec![(1, b"x".to_vec()), (2, vec![7; 100_000])]);
        assert_eq!(
            store
                .scan_results("a", ResultKind::Bucket, None, None)
                .unwrap(),
            vec![b"\"Bucket@-5#0\"".to_vec()]
        );
        assert_eq!(store.get_snapshot_state("a", "1").unwrap(), state);
        assert_eq!(store.list_snapshots("a").unwrap(), vec![doc]);
        assert!(store.check_integrity().unwrap().is_clean());
    }
}
