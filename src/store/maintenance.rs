//! Maintenance writes on a job's existing data: rewriting a snapshot's metadata document
//! (`_update` of a model snapshot) and resetting a job to the state it had when created (`_reset`).
//! Owns nothing new on disk: both rewrite keys of the `snapshots` and `progress` trees in their
//! documented layout. Callers follow I1 (the job's actor while it is open, the manager otherwise).

use super::snapshots::SnapshotMeta;
use super::{failpoint, frame, keys, tree, Progress, Store, StoreError};

impl Store {
    /// Replaces the ES document of an existing snapshot, leaving its state chunks, sequence number
    /// and timestamp untouched; `false` (nothing written) when the snapshot does not exist.
    pub fn put_snapshot_json(
        &self,
        job_id: &str,
        snapshot_id: &str,
        json: &[u8],
    ) -> Result<bool, StoreError> {
        let prefix = keys::job_prefix(job_id)?;
        keys::check_snapshot_id(snapshot_id)?;
        let key = keys::snapshot_meta_key(&prefix, snapshot_id);
        let Some(value) = self.snapshots.get(&key)? else {
            return Ok(false);
        };
        let mut meta: SnapshotMeta = frame::unframe_bincode(tree::SNAPSHOTS, &key, &value)?;
        meta.json = json.to_vec();
        failpoint::failpoint(failpoint::SNAPSHOT_EDIT_BEFORE)?;
        self.touched(job_id);
        // Compare-and-swap: a concurrent delete makes this a no-op instead of resurrecting metadata
        // without chunks.
        let swapped = self.snapshots.compare_and_swap(
            &key,
            Some(value),
            Some(frame::frame_bincode(&meta)?),
        )?;
        Ok(swapped.is_ok())
    }

    /// Removes every input entry, result and snapshot of the job and writes `progress` (a fresh
    /// one): the job is as if just created, its config untouched. The purge is batched; the progress
    /// is written last, so a crash midway leaves the old progress pointing at a snapshot that may be
    /// gone, which open handles like a corrupt snapshot (falls back to a fresh model) and a second
    /// reset finishes.
    pub fn reset_job(&self, job_id: &str, progress: &Progress) -> Result<(), StoreError> {
        let key = keys::job_key(job_id)?;
        self.touched(job_id);
        self.purge_job_data(key)?;
        failpoint::failpoint(failpoint::PROGRESS_BEFORE)?;
        self.touched(job_id);
        self.progress.insert(key, frame::frame_bincode(progress)?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::{commit_with, progress};
    use crate::store::{ResultKind, SnapshotDoc, Store};

    fn snapshot(id: &str) -> SnapshotDoc {
        SnapshotDoc {
            snapshot_id: id.into(),
            timestamp_ms: 7,
            last_seq: 1,
            json: b"{\"retain\":false}".to_vec(),
        }
    }

    #[test]
    fn snapshot_json_is_replaced_and_state_kept() {
        let store = Store::temporary().unwrap();
        store.create_job("a", b"{}", &progress(0)).unwrap();
        store
            .put_snapshot("a", &snapshot("s"), &[9; 50], &progress(1))
            .unwrap();
        assert!(store
            .put_snapshot_json("a", "s", b"{\"retain\":true}")
            .unwrap());
        let doc = store.get_snapshot("a", "s").unwrap().unwrap();
        assert_eq!(doc.json, b"{\"retain\":true}");
        assert_eq!((doc.timestamp_ms, doc.last_seq), (7, 1));
        assert_eq!(store.get_snapshot_state("a", "s").unwrap(), vec![9; 50]);
        assert!(!store.put_snapshot_json("a", "nope", b"{}").unwrap());
        assert!(store.get_snapshot("a", "nope").unwrap().is_none());
        assert!(store.check_integrity().unwrap().is_clean());
    }

    #[test]
    fn reset_leaves_only_config_and_fresh_progress() {
        let store = Store::temporary().unwrap();
        store.create_job("a", b"{}", &progress(0)).unwrap();
        store.create_job("b", b"{}", &progress(0)).unwrap();
        for job in ["a", "b"] {
            store
                .commit(
                    job,
                    &commit_with(vec![(1, b"x".to_vec())], &[(ResultKind::Bucket, 5)], 1),
                )
                .unwrap();
            store
                .put_snapshot(job, &snapshot("s"), &[1; 10], &progress(1))
                .unwrap();
        }
        store.reset_job("a", &progress(0)).unwrap();
        assert_eq!(store.get_progress("a").unwrap(), Some(progress(0)));
        assert_eq!(store.last_input_seq("a").unwrap(), 0);
        assert!(store.list_snapshots("a").unwrap().is_empty());
        assert!(store
            .scan_results("a", ResultKind::Bucket, None, None)
            .unwrap()
            .is_empty());
        assert_eq!(store.get_job_config("a").unwrap().unwrap(), b"{}");
        // The other job is untouched.
        assert_eq!(store.last_input_seq("b").unwrap(), 1);
        assert_eq!(store.list_snapshots("b").unwrap().len(), 1);
        assert!(store.check_integrity().unwrap().is_clean());
    }
}
