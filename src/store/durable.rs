//! The durable mark: a small file beside sled's own (`auspex.mark`) that witnesses, after every
//! flush, how far the store was durable. sled recovers from a damaged log by keeping what comes
//! before the damage and dropping the rest, and opens a truncated or emptied `db` file as an older
//! (or a new) database: without an outside witness, a store that lost acknowledged writes opens as
//! a consistent older one and nothing notices.
//!
//! Each flush first raises the `meta` key `flush_epoch` to a new epoch, then flushes sled, then
//! records the epoch in the mark, with, per scope (a job id, or the `security` / `resources` trees),
//! the epoch of the flush that made its last write durable. The mark is written after sled's
//! flush, so it never runs ahead of what sled holds; it is replaced by rename and checked by its
//! frame's CRC, and an unreadable mark only switches the check off (a power cut may tear it), never
//! raises a false alarm. On open, sled's `flush_epoch` below the mark's epoch means sled lost
//! flushed writes: every scope written after sled's epoch may have lost data and is reported
//! (`Store::lost`), and stays reported (in the mark) until its job is deleted or the loss is
//! accepted (`auspex verify --accept-loss`).
//!
//! Owns the file and the epoch bookkeeping; `Store::flush` drives it, the write methods name their
//! scope (`Store::touched`), `check` and the job layer read `lost`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{frame, StoreError};

/// The mark's file name, in the store directory.
pub(super) const MARK_FILE: &str = "auspex.mark";
/// The `meta` key holding the epoch of the last flush sled made durable.
pub(super) const FLUSH_EPOCH_KEY: &[u8] = b"flush_epoch";
/// The scope of the `security` tree (no job id holds a NUL byte, so no job has this name).
pub const SECURITY_SCOPE: &str = "\0security";
/// The scope of the `resources` tree.
pub const RESOURCES_SCOPE: &str = "\0resources";
/// Deleted jobs whose last epoch the mark keeps (a lost delete brings the job back, and the
/// mark must still know it was written later); the oldest are forgotten beyond this.
const MAX_TOMBSTONES: usize = 10_000;

/// What the file holds (framed bincode).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Mark {
    /// The highest epoch known durable in sled.
    pub epoch: u64,
    /// The store keeps tallies (`tally.rs`): a missing tally marker is damage, not an old store.
    pub tallied: bool,
    /// Per scope, the epoch of the flush that made its last write durable.
    pub scopes: BTreeMap<String, u64>,
    /// Deleted jobs, with the epoch of their delete, oldest first by epoch.
    pub tombstones: BTreeMap<String, u64>,
    /// Scopes found to have lost writes, with the reason; kept until deleted or accepted.
    pub lost: BTreeMap<String, String>,
}

/// One flush in progress: its epoch and the scopes written before it began.
pub(super) struct Begun {
    epoch: u64,
    scopes: BTreeSet<String>,
    deleted: BTreeSet<String>,
}

/// The mark of an open store.
pub(super) struct Durable {
    path: PathBuf,
    mark: Mutex<Mark>,
    next_epoch: AtomicU64,
    /// Scopes written since the last flush began; `deleted` holds jobs deleted meanwhile.
    dirty: Mutex<(BTreeSet<String>, BTreeSet<String>)>,
}

/// Reads the mark in `dir`; `None` when there is none or it is unreadable (warned about).
pub(super) fn read_mark(dir: &Path) -> Option<Mark> {
    let path = dir.join(MARK_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot read the durable mark; the lost-write check is off for this start");
            return None;
        }
    };
    match frame::unframe_bincode::<Mark>("mark", MARK_FILE.as_bytes(), &bytes) {
        Ok(mark) => Some(mark),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "the durable mark is unreadable; the lost-write check is off for this start");
            None
        }
    }
}

impl Durable {
    /// The mark of a store in `dir` whose sled holds `sled_epoch`: compares them (recording what
    /// was lost) and writes the result back, so the loss stays known across restarts.
    pub(super) fn open(
        dir: &Path,
        previous: Option<Mark>,
        sled_epoch: u64,
    ) -> Result<Durable, StoreError> {
        let mut mark = previous.unwrap_or_default();
        if sled_epoch < mark.epoch {
            let reason = format!(
                "the store lost flushed writes: sled holds flush epoch {sled_epoch}, but epoch {} \
                 was durable (the database file was damaged, truncated or replaced); data written \
                 after epoch {sled_epoch} may be missing",
                mark.epoch
            );
            let written_later: Vec<String> = mark
                .scopes
                .iter()
                .chain(mark.tombstones.iter())
                .filter(|(_, epoch)| **epoch > sled_epoch)
                .map(|(scope, _)| scope.clone())
                .collect();
            for scope in written_later {
                mark.lost.entry(scope).or_insert_with(|| reason.clone());
            }
            // Whatever the tombstones say, a job that is back is the job layer's to judge.
            mark.tombstones.retain(|_, epoch| *epoch <= sled_epoch);
        }
        let durable = Durable {
            path: dir.join(MARK_FILE),
            next_epoch: AtomicU64::new(mark.epoch.max(sled_epoch) + 1),
            mark: Mutex::new(Mark {
                epoch: mark.epoch.max(sled_epoch),
                ..mark
            }),
            dirty: Mutex::new(Default::default()),
        };
        durable.write()?;
        Ok(durable)
    }

    fn lock_mark(&self) -> std::sync::MutexGuard<'_, Mark> {
        // Every change is applied whole under the lock; a panic elsewhere cannot leave half of one.
        self.mark.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_dirty(&self) -> std::sync::MutexGuard<'_, (BTreeSet<String>, BTreeSet<String>)> {
        self.dirty.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A write to `scope` is about to happen (or happened): the next flush covers it.
    pub(super) fn touched(&self, scope: &str) {
        let mut dirty = self.lock_dirty();
        if !dirty.0.contains(scope) {
            dirty.0.insert(scope.to_owned());
        }
    }

    /// `job` was deleted: once durable it leaves the mark's scopes (and any loss with it).
    pub(super) fn deleted(&self, job: &str) {
        let mut dirty = self.lock_dirty();
        dirty.0.remove(job);
        dirty.1.insert(job.to_owned());
    }

    /// Starts a flush: takes the scopes written so far and a new epoch (raised in `meta` by the
    /// caller before sled's flush).
    pub(super) fn begin(&self) -> Begun {
        let (scopes, deleted) = std::mem::take(&mut *self.lock_dirty());
        Begun {
            epoch: self.next_epoch.fetch_add(1, Ordering::SeqCst),
            scopes,
            deleted,
        }
    }

    pub(super) fn epoch_of(begun: &Begun) -> u64 {
        begun.epoch
    }

    /// sled's flush returned: records the epoch and the scopes it covered.
    pub(super) fn complete(&self, begun: Begun) {
        {
            let mut mark = self.lock_mark();
            mark.epoch = mark.epoch.max(begun.epoch);
            for scope in begun.scopes {
                let epoch = mark.scopes.entry(scope).or_default();
                *epoch = (*epoch).max(begun.epoch);
            }
            for job in begun.deleted {
                mark.scopes.remove(&job);
                mark.lost.remove(&job);
                mark.tombstones.insert(job, begun.epoch);
            }
            while mark.tombstones.len() > MAX_TOMBSTONES {
                let oldest = mark
                    .tombstones
                    .iter()
                    .min_by_key(|(_, epoch)| **epoch)
                    .map(|(job, _)| job.clone());
                match oldest {
                    Some(job) => mark.tombstones.remove(&job),
                    None => break,
                };
            }
        }
        if let Err(error) = self.write() {
            // sled holds the data; only the witness is behind, which can raise no false alarm.
            tracing::warn!(%error, "cannot update the durable mark");
        }
    }

    /// Records that the store holds tallies (`tally.rs`).
    pub(super) fn set_tallied(&self) -> Result<(), StoreError> {
        self.lock_mark().tallied = true;
        self.write()
    }

    pub(super) fn tallied(&self) -> bool {
        self.lock_mark().tallied
    }

    /// Scopes that lost writes, with the reason.
    pub(super) fn lost(&self) -> BTreeMap<String, String> {
        self.lock_mark().lost.clone()
    }

    /// The operator accepts the store as it is: forgets every recorded loss.
    pub(super) fn accept_loss(&self) -> Result<(), StoreError> {
        self.lock_mark().lost.clear();
        self.write()
    }

    /// Replaces the file (write a sibling, then rename: a reader sees the old mark or the new).
    fn write(&self) -> Result<(), StoreError> {
        // The lock is held across the write so two writers cannot swap an older mark in last.
        let mark = self.lock_mark();
        let bytes = frame::frame_bincode(&*mark)?;
        let temporary = self.path.with_extension("mark.tmp");
        let io = |error: std::io::Error| {
            StoreError::Sled(sled::Error::Io(std::io::Error::new(
                error.kind(),
                format!("writing {}: {error}", self.path.display()),
            )))
        };
        std::fs::write(&temporary, &bytes).map_err(io)?;
        std::fs::rename(&temporary, &self.path).map_err(io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sled_epoch_behind_the_mark_names_the_scopes_written_later() {
        let dir = tempfile::tempdir().unwrap();
        let durable = Durable::open(dir.path(), None, 0).unwrap();
        for (scope, flushes) in [("early", 1), ("late", 3)] {
            durable.touched(scope);
            for _ in 0..flushes {
                let begun = durable.begin();
                durable.complete(begun);
            }
        }
        durable.touched("late");
        let begun = durable.begin();
        assert_eq!(Durable::epoch_of(&begun), 5);
        durable.complete(begun);
        let mark = read_mark(dir.path()).unwrap();
        assert_eq!(mark.epoch, 5);
        assert_eq!(mark.scopes["early"], 1);
        assert_eq!(mark.scopes["late"], 5);

        // sled at epoch 5 (or beyond): nothing lost.
        let same = Durable::open(dir.path(), Some(mark.clone()), 5).unwrap();
        assert!(same.lost().is_empty());
        // sled back at epoch 2: only "late" was written after it.
        let behind = Durable::open(dir.path(), Some(mark), 2).unwrap();
        let lost = behind.lost();
        assert_eq!(lost.keys().collect::<Vec<_>>(), ["late"]);
        assert!(lost["late"].contains("sled holds flush epoch 2, but epoch 5"));
        // The loss is remembered by the file, and new epochs continue above the mark's.
        let reread = read_mark(dir.path()).unwrap();
        assert_eq!(reread.lost, lost);
        assert_eq!(Durable::epoch_of(&behind.begin()), 6);
        behind.accept_loss().unwrap();
        assert!(read_mark(dir.path()).unwrap().lost.is_empty());
    }

    #[test]
    fn a_deleted_job_leaves_a_tombstone_and_forgets_its_loss() {
        let dir = tempfile::tempdir().unwrap();
        let durable = Durable::open(dir.path(), None, 0).unwrap();
        durable.touched("gone");
        durable.complete(durable.begin());
        durable.deleted("gone");
        durable.complete(durable.begin());
        let mark = read_mark(dir.path()).unwrap();
        assert!(!mark.scopes.contains_key("gone"));
        assert_eq!(mark.tombstones["gone"], 2);
        // The delete itself was lost: the job is back in sled and is reported.
        let behind = Durable::open(dir.path(), Some(mark), 1).unwrap();
        assert!(behind.lost().contains_key("gone"));
    }

    #[test]
    fn a_torn_or_foreign_mark_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_mark(dir.path()).is_none());
        std::fs::write(dir.path().join(MARK_FILE), b"").unwrap();
        assert!(read_mark(dir.path()).is_none());
        let mut framed = frame::frame_bincode(&Mark::default()).unwrap();
        framed[9] ^= 1;
        std::fs::write(dir.path().join(MARK_FILE), framed).unwrap();
        assert!(read_mark(dir.path()).is_none());
    }
}
