//! What `Store::open` does before anyone else touches the data (the `store/mod.rs` doc, section 6):
//! refuse a `db` file that is missing or empty where the store held data, check or write the `meta`
//! format version, then purge orphans (keys of jobs that have no config, no progress and no tally,
//! left by a crash during `delete_job`). Owns nothing at run time.

use std::collections::HashSet;
use std::path::Path;

use super::{durable::Mark, frame, keys, tally, tree, Store, StoreError, FORMAT_VERSION};

/// The only key of the `meta` tree.
pub(super) const FORMAT_VERSION_KEY: &[u8] = b"format_version";

impl Store {
    /// A store without a version is accepted only if it holds nothing yet (a new data dir); then the
    /// current version is written. Anything else must match `FORMAT_VERSION` exactly.
    /// `held_data`: the durable mark says this store was written to, so an empty one is damage.
    pub(super) fn check_format(&self, held_data: bool) -> Result<(), StoreError> {
        match self.meta.get(FORMAT_VERSION_KEY)? {
            Some(value) => {
                let found: u32 = frame::unframe_bincode(tree::META, FORMAT_VERSION_KEY, &value)?;
                if found != FORMAT_VERSION {
                    return Err(StoreError::UnknownFormat { found });
                }
            }
            None => {
                if self.trees().iter().any(|(_, tree)| !tree.is_empty()) {
                    return Err(StoreError::UnknownFormat { found: 0 });
                }
                if held_data {
                    return Err(StoreError::corrupt(
                        tree::META,
                        FORMAT_VERSION_KEY,
                        "sled opened an empty database, but the durable mark (auspex.mark) says                          this store held data: its database file was emptied or replaced",
                    ));
                }
                self.meta
                    .insert(FORMAT_VERSION_KEY, frame::frame_bincode(&FORMAT_VERSION)?)?;
            }
        }
        Ok(())
    }

    /// Removes every key of a job that has no config, no progress and no tally (`delete_job`
    /// unlinks all three in one transaction first, so that is what an interrupted delete leaves);
    /// returns how many. A job with only some of the three lost the others to damage: its data is
    /// kept for `check` to report and `auspex jobs delete` to remove. Cost is one seek per job
    /// present in each tree plus the orphans themselves: a known job's data is skipped, not read.
    pub(super) fn purge_orphans(&self) -> Result<u64, StoreError> {
        let mut jobs = HashSet::new();
        for key in self.jobs.iter().keys().chain(self.progress.iter().keys()) {
            jobs.insert(key?.to_vec());
        }
        for key in self.meta.scan_prefix(tally::TALLY_PREFIX).keys() {
            jobs.insert(key?[tally::TALLY_PREFIX.len()..].to_vec());
        }
        let mut purged = 0;
        for (name, tree) in [
            (tree::INPUT, &self.input),
            (tree::RESULTS, &self.results),
            (tree::SNAPSHOTS, &self.snapshots),
        ] {
            let mut cursor = Vec::new();
            while let Some((key, _)) = tree.range(cursor.as_slice()..).next().transpose()? {
                let (job, separated) = keys::split_job(&key);
                let end = keys::job_end(job);
                if !jobs.contains(job) {
                    purged +=
                        self.purge_job_range(name, tree, job, &keys::raw_job_prefix(job), &end)?;
                    if separated.is_none() {
                        // A key with no separator at all cannot belong to any job.
                        tree.remove(&key)?;
                        purged += 1;
                    }
                }
                cursor = end;
            }
        }
        Ok(purged)
    }
}

/// sled opens a missing or empty `db` file as a new, empty database. Next to a durable mark that
/// says the store held data, or next to sled's own snapshot files, that is a destroyed store, not a
/// new one: refuse it before sled writes a fresh one over the evidence.
pub(super) fn check_files(dir: &Path, mark: Option<&Mark>) -> Result<(), StoreError> {
    if !dir.is_dir() {
        return Ok(());
    }
    let db = dir.join("db");
    if std::fs::metadata(&db).is_ok_and(|meta| meta.len() > 0) {
        return Ok(());
    }
    let witness = if mark.is_some_and(|mark| mark.epoch > 0) {
        "the durable mark (auspex.mark) says it held data"
    } else if std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|entry| entry.file_name().to_string_lossy().starts_with("snap."))
    }) {
        "sled's snapshot files (snap.*) say it held data"
    } else {
        return Ok(());
    };
    Err(StoreError::Corrupt {
        tree: "sled",
        key: "db".into(),
        reason: format!(
            "the database file {} is missing or empty, but {witness}: the store was destroyed; \
             restore it from a backup (or move the directory away to start afresh)",
            db.display()
        ),
    })
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::{commit_with, progress};
    use crate::store::{
        frame, tally, tree, ResultKind, SnapshotDoc, Store, StoreError, FORMAT_VERSION,
    };

    use super::FORMAT_VERSION_KEY;

    fn populate(store: &Store, job: &str) {
        store.create_job(job, b"{}", &progress(0)).unwrap();
        store
            .commit(
                job,
                &commit_with(
                    vec![(1, b"x".to_vec()), (2, b"y".to_vec())],
                    &[(ResultKind::Bucket, 0), (ResultKind::Influencer, 0)],
                    2,
                ),
            )
            .unwrap();
        let doc = SnapshotDoc {
            snapshot_id: "s".into(),
            timestamp_ms: 0,
            last_seq: 2,
            json: b"{}".to_vec(),
        };
        store
            .put_snapshot(job, &doc, b"state", &progress(2))
            .unwrap();
    }

    #[test]
    fn orphans_are_purged_on_reopen_and_live_jobs_are_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let (live_keys, total_before) = {
            let store = Store::open(dir.path()).unwrap();
            for job in ["a", "ab", "b", "c"] {
                populate(&store, job);
            }
            let live = store.trees().iter().map(|(_, t)| t.len()).sum::<usize>();
            // A crash right after delete_job's unlink transaction, for "ab" and "c"...
            for job in ["ab", "c"] {
                store.jobs.remove(job).unwrap();
                store.progress.remove(job).unwrap();
                store.meta.remove(tally::tally_key(job.as_bytes())).unwrap();
            }
            // ...and stray keys without a separator, which no job can own.
            store.input.insert(b"zz", b"junk".to_vec()).unwrap();
            let total = store.trees().iter().map(|(_, t)| t.len()).sum::<usize>();
            sync_flush(&store);
            // Everything but the two store-wide meta keys (format version, tally marker), spread
            // over four jobs.
            let per_job = (live - 2) / 4;
            (per_job * 2 + 2, total) // "a" and "b" survive, plus those two
        };
        let store = Store::open(dir.path()).unwrap();
        let total_after = store.trees().iter().map(|(_, t)| t.len()).sum::<usize>();
        assert_eq!(total_after, live_keys, "before: {total_before}");
        assert_eq!(store.last_input_seq("ab").unwrap(), 0);
        assert_eq!(store.last_input_seq("a").unwrap(), 2);
        assert_eq!(store.get_snapshot_state("b", "s").unwrap(), b"state");
        assert!(store.check_integrity().unwrap().is_clean());
    }

    #[test]
    fn format_version_is_written_then_checked() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let value = store.meta.get(FORMAT_VERSION_KEY).unwrap().unwrap();
            assert_eq!(
                frame::unframe_bincode::<u32>(tree::META, FORMAT_VERSION_KEY, &value).unwrap(),
                FORMAT_VERSION
            );
            store
                .meta
                .insert(
                    FORMAT_VERSION_KEY,
                    frame::frame_bincode(&(FORMAT_VERSION + 1)).unwrap(),
                )
                .unwrap();
            sync_flush(&store);
        }
        match Store::open(dir.path()) {
            Err(StoreError::UnknownFormat { found }) => assert_eq!(found, FORMAT_VERSION + 1),
            other => panic!("expected UnknownFormat, got {:?}", other.err()),
        }
    }

    #[test]
    fn data_without_a_format_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            populate(&store, "a");
            store.meta.clear().unwrap();
            sync_flush(&store);
        }
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::UnknownFormat { found: 0 })
        ));
    }

    /// Flushes without a runtime: these tests drop the store right after.
    fn sync_flush(store: &Store) {
        store.db.flush().unwrap();
    }
}
