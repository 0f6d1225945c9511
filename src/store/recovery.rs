//! What `Store::open` does before anyone else touches the data (the `store/mod.rs` doc, section 6):
//! check or write the `meta` format version, then purge orphans (keys of jobs that are not in `jobs`,
//! left by a crash during `delete_job`). Owns nothing at run time.

use std::collections::HashSet;

use super::{frame, jobs::purge_range, keys, tree, Store, StoreError, FORMAT_VERSION};

/// The only key of the `meta` tree.
pub(super) const FORMAT_VERSION_KEY: &[u8] = b"format_version";

impl Store {
    /// A store without a version is accepted only if it holds nothing yet (a new data dir); then the
    /// current version is written. Anything else must match `FORMAT_VERSION` exactly.
    pub(super) fn check_format(&self) -> Result<(), StoreError> {
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
                self.meta
                    .insert(FORMAT_VERSION_KEY, frame::frame_bincode(&FORMAT_VERSION)?)?;
            }
        }
        Ok(())
    }

    /// Removes every key whose job is not in `jobs`; returns how many. Cost is one seek per job
    /// present in each tree plus the orphans themselves: a known job's data is skipped, not read.
    pub(super) fn purge_orphans(&self) -> Result<u64, StoreError> {
        let mut jobs = HashSet::new();
        for key in self.jobs.iter().keys() {
            jobs.insert(key?);
        }
        let mut purged = 0;
        for key in self.progress.iter().keys() {
            let key = key?;
            if !jobs.contains(&key) {
                self.progress.remove(&key)?;
                purged += 1;
            }
        }
        for tree in [&self.input, &self.results, &self.snapshots] {
            let mut cursor = Vec::new();
            while let Some((key, _)) = tree.range(cursor.as_slice()..).next().transpose()? {
                let (job, separated) = keys::split_job(&key);
                let end = keys::job_end(job);
                if !jobs.contains(job) {
                    purged += purge_range(tree, &keys::raw_job_prefix(job), &end)?;
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

#[cfg(test)]
mod tests {
    use crate::store::test_support::{commit_with, progress};
    use crate::store::{frame, tree, ResultKind, SnapshotDoc, Store, StoreError, FORMAT_VERSION};

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
            }
            // ...and stray keys without a separator, which no job can own.
            store.input.insert(b"zz", b"junk".to_vec()).unwrap();
            let total = store.trees().iter().map(|(_, t)| t.len()).sum::<usize>();
            sync_flush(&store);
            let per_job = (live - 1) / 4; // everything but the meta key, spread over four jobs
            (per_job * 2 + 1, total) // "a" and "b" survive, plus the meta key
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
