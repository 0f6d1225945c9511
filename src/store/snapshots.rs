//! The `snapshots` tree: model snapshot metadata (framed bincode) and model state split into framed
//! chunks, so a flipped byte is caught per chunk and a whole-state CRC catches a missing or stale
//! chunk. Owns writing a snapshot together with the progress that points at it (I3), reading,
//! listing (metadata only) and deleting. The model state bytes are opaque here.

use serde::{Deserialize, Serialize};
use sled::{transaction::ConflictableTransactionError, Batch, IVec, Transactional};

use super::{failpoint, frame, keys, tree, tx_error, Progress, Store, StoreError};

/// State bytes per chunk: large enough that a 100 MB state is ~100 values, small enough that one
/// value never dominates sled's page cache or a transaction.
pub const SNAPSHOT_CHUNK_LEN: usize = 1 << 20;

/// Model snapshot metadata as the store sees it: JSON for the API plus what ordering needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotDoc {
    pub snapshot_id: String,
    /// Epoch ms the snapshot was taken.
    pub timestamp_ms: i64,
    /// Input sequence number the model state covers.
    pub last_seq: u64,
    /// The ES snapshot document (`snapshot_id`, `timestamp`, `description`, ...), as JSON.
    pub json: Vec<u8>,
}

/// The metadata value (the snapshot id is the key). bincode is positional: a new field is a new
/// store format version.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SnapshotMeta {
    pub timestamp_ms: i64,
    pub last_seq: u64,
    pub json: Vec<u8>,
    pub state_len: u64,
    pub chunk_count: u32,
    pub state_crc: u32,
}

impl Store {
    /// Writes metadata, every state chunk and `progress` in one transaction (I3). Snapshots with
    /// other ids are kept; one with the same id is replaced entirely (stale chunks removed).
    pub fn put_snapshot(
        &self,
        job_id: &str,
        doc: &SnapshotDoc,
        state: &[u8],
        progress: &Progress,
    ) -> Result<(), StoreError> {
        self.put_snapshot_chunked(job_id, doc, state, progress, SNAPSHOT_CHUNK_LEN)
    }

    fn put_snapshot_chunked(
        &self,
        job_id: &str,
        doc: &SnapshotDoc,
        state: &[u8],
        progress: &Progress,
        chunk_len: usize,
    ) -> Result<(), StoreError> {
        let job_key = keys::job_key(job_id)?;
        let prefix = keys::job_prefix(job_id)?;
        keys::check_snapshot_id(&doc.snapshot_id)?;
        let chunk_prefix = keys::snapshot_chunk_prefix(&prefix, &doc.snapshot_id);
        let chunk_count = u32::try_from(state.len().div_ceil(chunk_len)).map_err(|_| {
            StoreError::Encode(format!(
                "snapshot state of {} bytes has too many chunks",
                state.len()
            ))
        })?;
        let mut batch = Batch::default();
        // Only when an id is reused are there old chunks; I1 keeps the scan valid until the commit.
        for entry in self.snapshots.scan_prefix(&chunk_prefix) {
            batch.remove(entry?.0);
        }
        for (index, chunk) in (0u32..).zip(state.chunks(chunk_len)) {
            batch.insert(
                keys::snapshot_chunk_key(&chunk_prefix, index),
                frame::frame(chunk)?,
            );
        }
        let meta = SnapshotMeta {
            timestamp_ms: doc.timestamp_ms,
            last_seq: doc.last_seq,
            json: doc.json.clone(),
            state_len: state.len() as u64,
            chunk_count,
            state_crc: crc32fast::hash(state),
        };
        batch.insert(
            keys::snapshot_meta_key(&prefix, &doc.snapshot_id),
            frame::frame_bincode(&meta)?,
        );
        let progress = IVec::from(frame::frame_bincode(progress)?);
        failpoint::failpoint(failpoint::SNAPSHOT_BEFORE)?;
        self.touched(job_id);
        super::whole_or_abort("snapshot", || {
            let _exclusive = super::gate::exclusive();
            (&self.snapshots, &self.progress)
                .transaction(|(snapshots, progress_tree)| -> Result<(), ConflictableTransactionError<StoreError>> {
                    snapshots.apply_batch(&batch)?;
                    progress_tree.insert(job_key, progress.clone())?;
                    Ok(())
                })
                .map_err(tx_error)
        })?;
        failpoint::failpoint(failpoint::SNAPSHOT_AFTER)?;
        Ok(())
    }

    /// The snapshot's metadata, `None` if it does not exist.
    pub fn get_snapshot(
        &self,
        job_id: &str,
        snapshot_id: &str,
    ) -> Result<Option<SnapshotDoc>, StoreError> {
        let prefix = keys::job_prefix(job_id)?;
        keys::check_snapshot_id(snapshot_id)?;
        let key = keys::snapshot_meta_key(&prefix, snapshot_id);
        let Some(value) = self.snapshots.get(&key)? else {
            return Ok(None);
        };
        let meta: SnapshotMeta = frame::unframe_bincode(tree::SNAPSHOTS, &key, &value)?;
        Ok(Some(to_doc(snapshot_id.to_owned(), meta)))
    }

    /// Reassembles and verifies the model state. Meant for snapshots known to exist (progress
    /// points at it, or `get_snapshot` found it): missing metadata is reported as `Corrupt`, as are
    /// a missing, extra, truncated or altered chunk.
    pub fn get_snapshot_state(
        &self,
        job_id: &str,
        snapshot_id: &str,
    ) -> Result<Vec<u8>, StoreError> {
        let prefix = keys::job_prefix(job_id)?;
        keys::check_snapshot_id(snapshot_id)?;
        let meta_key = keys::snapshot_meta_key(&prefix, snapshot_id);
        let value = self.snapshots.get(&meta_key)?.ok_or_else(|| {
            StoreError::corrupt(tree::SNAPSHOTS, &meta_key, "snapshot metadata missing")
        })?;
        let meta: SnapshotMeta = frame::unframe_bincode(tree::SNAPSHOTS, &meta_key, &value)?;
        let corrupt = |reason: String| StoreError::corrupt(tree::SNAPSHOTS, &meta_key, reason);
        let mut state = Vec::new();
        usize::try_from(meta.state_len)
            .ok()
            .and_then(|len| state.try_reserve_exact(len).ok())
            .ok_or_else(|| corrupt(format!("cannot hold a state of {} bytes", meta.state_len)))?;
        let chunk_prefix = keys::snapshot_chunk_prefix(&prefix, snapshot_id);
        let mut next_index = 0u32;
        for entry in self.snapshots.scan_prefix(&chunk_prefix) {
            let (key, value) = entry?;
            let index = <[u8; 4]>::try_from(&key[chunk_prefix.len()..])
                .map(u32::from_be_bytes)
                .map_err(|_| StoreError::corrupt(tree::SNAPSHOTS, &key, "malformed chunk key"))?;
            if index != next_index {
                return Err(corrupt(format!(
                    "chunk {next_index} missing (found chunk {index})"
                )));
            }
            state.extend_from_slice(frame::unframe(tree::SNAPSHOTS, &key, &value)?);
            next_index += 1;
        }
        if next_index != meta.chunk_count {
            return Err(corrupt(format!(
                "{next_index} chunks present, metadata says {}",
                meta.chunk_count
            )));
        }
        if state.len() as u64 != meta.state_len {
            return Err(corrupt(format!(
                "state is {} bytes, metadata says {}",
                state.len(),
                meta.state_len
            )));
        }
        let crc = crc32fast::hash(&state);
        if crc != meta.state_crc {
            return Err(corrupt(format!(
                "state crc32 {crc:08x} differs from metadata {:08x}",
                meta.state_crc
            )));
        }
        Ok(state)
    }

    /// Metadata of every snapshot of the job (chunks are not read), newest first: by
    /// `timestamp_ms` descending, ties by `snapshot_id` descending.
    pub fn list_snapshots(&self, job_id: &str) -> Result<Vec<SnapshotDoc>, StoreError> {
        let space = keys::snapshot_meta_space(&keys::job_prefix(job_id)?);
        let mut docs = Vec::new();
        for entry in self.snapshots.scan_prefix(&space) {
            let (key, value) = entry?;
            let snapshot_id = std::str::from_utf8(&key[space.len()..])
                .map_err(|_| {
                    StoreError::corrupt(tree::SNAPSHOTS, &key, "snapshot id is not UTF-8")
                })?
                .to_owned();
            docs.push(to_doc(
                snapshot_id,
                frame::unframe_bincode(tree::SNAPSHOTS, &key, &value)?,
            ));
        }
        docs.sort_by(|a, b| {
            (b.timestamp_ms, &b.snapshot_id).cmp(&(a.timestamp_ms, &a.snapshot_id))
        });
        Ok(docs)
    }

    /// Removes metadata and chunks atomically; returns whether the metadata existed. Refusing to
    /// delete the active snapshot (ES rule) is the job layer's check: this does not read progress.
    pub fn delete_snapshot(&self, job_id: &str, snapshot_id: &str) -> Result<bool, StoreError> {
        let prefix = keys::job_prefix(job_id)?;
        keys::check_snapshot_id(snapshot_id)?;
        let meta_key = keys::snapshot_meta_key(&prefix, snapshot_id);
        let existed = self.snapshots.contains_key(&meta_key)?;
        let mut batch = Batch::default();
        batch.remove(meta_key);
        for entry in self
            .snapshots
            .scan_prefix(keys::snapshot_chunk_prefix(&prefix, snapshot_id))
        {
            batch.remove(entry?.0);
        }
        failpoint::failpoint(failpoint::SNAPSHOT_DELETE_BEFORE)?;
        self.touched(job_id);
        let _exclusive = super::gate::exclusive();
        self.snapshots.apply_batch(batch)?;
        Ok(existed)
    }
}

fn to_doc(snapshot_id: String, meta: SnapshotMeta) -> SnapshotDoc {
    SnapshotDoc {
        snapshot_id,
        timestamp_ms: meta.timestamp_ms,
        last_seq: meta.last_seq,
        json: meta.json,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::progress;

    fn doc(id: &str, timestamp_ms: i64) -> SnapshotDoc {
        SnapshotDoc {
            snapshot_id: id.into(),
            timestamp_ms,
            last_seq: 3,
            json: format!("{{\"snapshot_id\":\"{id}\"}}").into_bytes(),
        }
    }

    /// Deterministic, non-repeating bytes so a misplaced chunk changes the result.
    fn state(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
    }

    fn chunk_key(job: &str, id: &str, index: u32) -> Vec<u8> {
        keys::snapshot_chunk_key(
            &keys::snapshot_chunk_prefix(&keys::job_prefix(job).unwrap(), id),
            index,
        )
    }

    fn expect_corrupt(result: Result<Vec<u8>, StoreError>, needle: &str) {
        match result {
            Err(StoreError::Corrupt {
                tree: "snapshots",
                reason,
                ..
            }) => assert!(reason.contains(needle), "{reason}"),
            other => panic!(
                "expected Corrupt containing {needle:?}, got {:?}",
                other.map(|s| s.len())
            ),
        }
    }

    #[test]
    fn multi_chunk_state_round_trips_with_the_real_chunk_size() {
        let store = Store::temporary().unwrap();
        let big = state(SNAPSHOT_CHUNK_LEN * 2 + 12345);
        let mut p = progress(3);
        p.latest_snapshot_id = Some("s1".into());
        store.put_snapshot("a", &doc("s1", 10), &big, &p).unwrap();
        assert_eq!(
            store
                .snapshots
                .scan_prefix(keys::snapshot_chunk_prefix(
                    &keys::job_prefix("a").unwrap(),
                    "s1"
                ))
                .count(),
            3
        );
        assert_eq!(store.get_snapshot_state("a", "s1").unwrap(), big);
        assert_eq!(store.get_progress("a").unwrap(), Some(p));
        assert_eq!(store.get_snapshot("a", "s1").unwrap(), Some(doc("s1", 10)));
    }

    #[test]
    fn empty_and_exact_multiple_states_round_trip() {
        let store = Store::temporary().unwrap();
        for (id, len) in [("e", 0), ("x", 3000), ("y", 2999), ("z", 1)] {
            store
                .put_snapshot_chunked("a", &doc(id, 1), &state(len), &progress(0), 1000)
                .unwrap();
            assert_eq!(
                store.get_snapshot_state("a", id).unwrap(),
                state(len),
                "{id}"
            );
        }
    }

    #[test]
    fn a_flipped_byte_in_a_chunk_is_detected() {
        let store = Store::temporary().unwrap();
        store
            .put_snapshot_chunked("a", &doc("s", 1), &state(5000), &progress(0), 1000)
            .unwrap();
        let key = chunk_key("a", "s", 2);
        let mut raw = store.snapshots.get(&key).unwrap().unwrap().to_vec();
        raw[500] ^= 0x01;
        store.snapshots.insert(&key, raw).unwrap();
        expect_corrupt(store.get_snapshot_state("a", "s"), "crc32 mismatch");
    }

    #[test]
    fn missing_truncated_extra_and_swapped_chunks_are_detected() {
        let store = Store::temporary().unwrap();
        let put = |store: &Store| {
            store
                .put_snapshot_chunked("a", &doc("s", 1), &state(5000), &progress(0), 1000)
                .unwrap()
        };

        put(&store);
        store.snapshots.remove(chunk_key("a", "s", 1)).unwrap();
        expect_corrupt(store.get_snapshot_state("a", "s"), "chunk 1 missing");

        put(&store);
        store.snapshots.remove(chunk_key("a", "s", 4)).unwrap();
        expect_corrupt(
            store.get_snapshot_state("a", "s"),
            "4 chunks present, metadata says 5",
        );

        put(&store);
        store
            .snapshots
            .insert(chunk_key("a", "s", 5), frame::frame(b"extra").unwrap())
            .unwrap();
        expect_corrupt(store.get_snapshot_state("a", "s"), "6 chunks present");

        // Well-framed chunks in the wrong order pass every per-chunk check; the state CRC catches it.
        put(&store);
        let first = store
            .snapshots
            .get(chunk_key("a", "s", 0))
            .unwrap()
            .unwrap();
        let second = store
            .snapshots
            .get(chunk_key("a", "s", 1))
            .unwrap()
            .unwrap();
        store
            .snapshots
            .insert(chunk_key("a", "s", 0), second)
            .unwrap();
        store
            .snapshots
            .insert(chunk_key("a", "s", 1), first)
            .unwrap();
        expect_corrupt(store.get_snapshot_state("a", "s"), "state crc32");

        put(&store);
        let key = chunk_key("a", "s", 3);
        let raw = store.snapshots.get(&key).unwrap().unwrap();
        store
            .snapshots
            .insert(&key, &raw[..raw.len() - 10])
            .unwrap();
        expect_corrupt(
            store.get_snapshot_state("a", "s"),
            "frame says 1000 payload bytes",
        );

        expect_corrupt(store.get_snapshot_state("a", "nope"), "metadata missing");
    }

    #[test]
    fn rewriting_a_snapshot_id_with_a_smaller_state_drops_old_chunks() {
        let store = Store::temporary().unwrap();
        store
            .put_snapshot_chunked("a", &doc("s", 1), &state(5000), &progress(0), 1000)
            .unwrap();
        store
            .put_snapshot_chunked("a", &doc("s", 2), &state(1500), &progress(0), 1000)
            .unwrap();
        assert_eq!(store.get_snapshot_state("a", "s").unwrap(), state(1500));
        assert_eq!(store.snapshots.len(), 3);
    }

    #[test]
    fn list_is_newest_first_metadata_only_and_per_job() {
        let store = Store::temporary().unwrap();
        for (id, ts) in [("1", 100), ("3", 300), ("2", 200), ("2b", 200)] {
            store
                .put_snapshot_chunked("a", &doc(id, ts), &state(2500), &progress(0), 1000)
                .unwrap();
        }
        store
            .put_snapshot("ab", &doc("9", 900), b"s", &progress(0))
            .unwrap();
        // Metadata must be listable even when every chunk is unreadable.
        let chunk_keys: Vec<_> = store
            .snapshots
            .iter()
            .keys()
            .map(|k| k.unwrap())
            .filter(|k| k.len() > 4 && k[2] == keys::SNAPSHOT_CHUNK_TAG)
            .collect();
        for key in chunk_keys {
            store.snapshots.insert(key, b"garbage".to_vec()).unwrap();
        }
        let ids: Vec<_> = store
            .list_snapshots("a")
            .unwrap()
            .into_iter()
            .map(|d| d.snapshot_id)
            .collect();
        assert_eq!(ids, ["3", "2b", "2", "1"]);
        assert_eq!(store.list_snapshots("ab").unwrap(), vec![doc("9", 900)]);
        assert!(store.list_snapshots("b").unwrap().is_empty());
    }

    #[test]
    fn delete_snapshot_removes_metadata_and_chunks_and_keeps_the_others() {
        let store = Store::temporary().unwrap();
        store
            .put_snapshot_chunked("a", &doc("1", 1), &state(2500), &progress(0), 1000)
            .unwrap();
        store
            .put_snapshot_chunked("a", &doc("12", 2), &state(2500), &progress(0), 1000)
            .unwrap();
        assert!(store.delete_snapshot("a", "1").unwrap());
        assert!(!store.delete_snapshot("a", "1").unwrap());
        assert_eq!(store.get_snapshot("a", "1").unwrap(), None);
        assert_eq!(store.snapshots.len(), 4);
        assert_eq!(store.get_snapshot_state("a", "12").unwrap(), state(2500));
    }

    #[test]
    fn ids_with_a_separator_byte_are_refused() {
        let store = Store::temporary().unwrap();
        assert!(matches!(
            store.put_snapshot("a", &doc("x\0y", 1), b"", &progress(0)),
            Err(StoreError::Encode(_))
        ));
        assert!(store.snapshots.is_empty());
    }
}
