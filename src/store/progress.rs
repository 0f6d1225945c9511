//! The `progress` tree: one `Progress` per job (framed bincode). Owns the type and its plain
//! accessors; `commit`, `put_snapshot`, `create_job` and `delete_job` also write it inside their
//! transactions (I2, I3). The job actor is its only writer (I1).

use serde::{Deserialize, Serialize};

use super::{failpoint, frame, keys, tree, Store, StoreError};

/// Lifecycle state as persisted (ES `state` minus the transient `opening`/`closing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PersistedState {
    Closed,
    Opened,
    Failed,
}

/// Per-job progress: written in the same transaction as the input entries and results it describes.
/// bincode is positional: adding a field is a new store format version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub state: PersistedState,
    /// Sequence number of the last input entry this progress covers (0 = none yet).
    pub last_seq: u64,
    /// The active model snapshot (the one an open restores), if any.
    pub latest_snapshot_id: Option<String>,
    /// Opaque to the store: the job layer's bincode-encoded status (data counts, watermark, ...).
    pub status: Vec<u8>,
}

impl Store {
    pub fn get_progress(&self, job_id: &str) -> Result<Option<Progress>, StoreError> {
        let key = keys::job_key(job_id)?;
        match self.progress.get(key)? {
            Some(value) => Ok(Some(frame::unframe_bincode(tree::PROGRESS, key, &value)?)),
            None => Ok(None),
        }
    }

    /// Writes progress alone (state changes such as open/close/failed). Progress that goes with
    /// input or results must go through `commit` (I2).
    pub fn put_progress(&self, job_id: &str, progress: &Progress) -> Result<(), StoreError> {
        let key = keys::job_key(job_id)?;
        failpoint::failpoint(failpoint::PROGRESS_BEFORE)?;
        self.touched(job_id);
        self.progress.insert(key, frame::frame_bincode(progress)?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{test_support::progress, Store, StoreError};

    #[test]
    fn put_get_round_trip_and_missing_job() {
        let store = Store::temporary().unwrap();
        assert_eq!(store.get_progress("j").unwrap(), None);
        let mut p = progress(7);
        p.latest_snapshot_id = Some("s1".into());
        store.put_progress("j", &p).unwrap();
        assert_eq!(store.get_progress("j").unwrap(), Some(p));
        assert!(matches!(store.get_progress(""), Err(StoreError::Encode(_))));
    }

    #[test]
    fn a_corrupt_progress_value_is_reported_with_tree_and_key() {
        let store = Store::temporary().unwrap();
        store.put_progress("j", &progress(1)).unwrap();
        let mut raw = store.progress.get(b"j").unwrap().unwrap().to_vec();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        store.progress.insert(b"j", raw).unwrap();
        match store.get_progress("j") {
            Err(StoreError::Corrupt { tree, key, .. }) => {
                assert_eq!((tree, key.as_str()), ("progress", "j"))
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
}
