//! The `input` tree: opaque input entries (framed), keyed by job prefix + sequence number (I4).
//! Owns reading (an iterator, so replaying gigabytes never holds them in memory), the last stored
//! sequence number, and pruning. Entries are written only through `commit` (I2), by the job actor.

use super::{frame, keys, tree, Store, StoreError};

/// Stored input entries of one job with sequence numbers above a bound, in sequence order.
/// Yields `(seq, entry bytes)`; stops after the first error.
pub struct InputEntries {
    entries: sled::Iter,
    prefix_len: usize,
    failed: bool,
}

impl Iterator for InputEntries {
    type Item = Result<(u64, Vec<u8>), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = self
            .entries
            .next()?
            .map_err(StoreError::from)
            .and_then(|(key, value)| {
                let seq = keys::input_seq(&key[self.prefix_len..])
                    .ok_or_else(|| StoreError::corrupt(tree::INPUT, &key, "malformed input key"))?;
                Ok((seq, frame::unframe(tree::INPUT, &key, &value)?.to_vec()))
            });
        self.failed = item.is_err();
        Some(item)
    }
}

impl Store {
    /// Entries with `seq > after_seq`, in order (reopen = snapshot + this replay, I4).
    pub fn scan_input(&self, job_id: &str, after_seq: u64) -> Result<InputEntries, StoreError> {
        let prefix = keys::job_prefix(job_id)?;
        let end = keys::job_end(job_id.as_bytes());
        let start = match after_seq.checked_add(1) {
            Some(first) => keys::input_key(&prefix, first),
            None => end.clone(),
        };
        Ok(InputEntries {
            entries: self.input.range(start..end),
            prefix_len: prefix.len(),
            failed: false,
        })
    }

    /// Highest stored sequence number of the job, 0 if it has none. After pruning this can be
    /// lower than `Progress::last_seq`, which is what numbers new entries.
    pub fn last_input_seq(&self, job_id: &str) -> Result<u64, StoreError> {
        let prefix = keys::job_prefix(job_id)?;
        match self.input.get_lt(keys::job_end(job_id.as_bytes()))? {
            Some((key, _)) if key.starts_with(&prefix) => keys::input_seq(&key[prefix.len()..])
                .ok_or_else(|| StoreError::corrupt(tree::INPUT, &key, "malformed input key")),
            _ => Ok(0),
        }
    }

    /// Prunes the job's entries with `seq <= through_seq` (`u64::MAX` = all); returns how many.
    /// Never prune input a live snapshot still needs (I4): that is the caller's rule to keep.
    pub fn delete_input_through(&self, job_id: &str, through_seq: u64) -> Result<u64, StoreError> {
        let prefix = keys::job_prefix(job_id)?;
        let end = match through_seq.checked_add(1) {
            Some(next) => keys::input_key(&prefix, next),
            None => keys::job_end(job_id.as_bytes()),
        };
        self.touched(job_id);
        self.purge_job_range(tree::INPUT, &self.input, job_id.as_bytes(), &prefix, &end)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::commit_with;
    use crate::store::{Store, StoreError};

    fn store_with_input(job: &str, seqs: &[u64]) -> Store {
        let store = Store::temporary().unwrap();
        for &seq in seqs {
            store
                .commit(
                    job,
                    &commit_with(vec![(seq, format!("{job}-{seq}").into_bytes())], &[], seq),
                )
                .unwrap();
        }
        store
    }

    fn seqs(store: &Store, job: &str, after: u64) -> Vec<u64> {
        store
            .scan_input(job, after)
            .unwrap()
            .map(|entry| entry.unwrap().0)
            .collect()
    }

    #[test]
    fn scan_returns_entries_after_the_bound_in_order() {
        let store = store_with_input("a", &[1, 2, 3, 255, 256, 70_000]);
        assert_eq!(seqs(&store, "a", 0), [1, 2, 3, 255, 256, 70_000]);
        assert_eq!(seqs(&store, "a", 3), [255, 256, 70_000]);
        assert_eq!(seqs(&store, "a", 70_000), Vec::<u64>::new());
        assert_eq!(seqs(&store, "a", u64::MAX), Vec::<u64>::new());
        let (seq, entry) = store.scan_input("a", 255).unwrap().next().unwrap().unwrap();
        assert_eq!((seq, entry.as_slice()), (256, &b"a-256"[..]));
    }

    #[test]
    fn jobs_sharing_a_name_prefix_do_not_see_each_other() {
        let store = store_with_input("a", &[1, 2]);
        store
            .commit("ab", &commit_with(vec![(1, b"x".to_vec())], &[], 1))
            .unwrap();
        store
            .commit("a-", &commit_with(vec![(9, b"x".to_vec())], &[], 9))
            .unwrap();
        assert_eq!(seqs(&store, "a", 0), [1, 2]);
        assert_eq!(store.last_input_seq("a").unwrap(), 2);
        assert_eq!(store.last_input_seq("ab").unwrap(), 1);
        assert_eq!(store.last_input_seq("b").unwrap(), 0);
    }

    #[test]
    fn prune_removes_a_prefix_of_the_sequence() {
        let store = store_with_input("a", &[1, 2, 3, 4]);
        store
            .commit("ab", &commit_with(vec![(1, b"x".to_vec())], &[], 1))
            .unwrap();
        assert_eq!(store.delete_input_through("a", 2).unwrap(), 2);
        assert_eq!(seqs(&store, "a", 0), [3, 4]);
        assert_eq!(store.delete_input_through("a", u64::MAX).unwrap(), 2);
        assert_eq!(store.last_input_seq("a").unwrap(), 0);
        assert_eq!(seqs(&store, "ab", 0), [1]);
    }

    #[test]
    fn a_corrupt_entry_is_reported_and_ends_the_scan() {
        let store = store_with_input("a", &[1, 2, 3]);
        let key = crate::store::keys::input_key(&crate::store::keys::job_prefix("a").unwrap(), 2);
        let mut raw = store.input.get(&key).unwrap().unwrap().to_vec();
        raw[10] ^= 0xff;
        store.input.insert(&key, raw).unwrap();
        let mut entries = store.scan_input("a", 0).unwrap();
        assert_eq!(entries.next().unwrap().unwrap().0, 1);
        assert!(matches!(
            entries.next(),
            Some(Err(StoreError::Corrupt { tree: "input", .. }))
        ));
        assert!(entries.next().is_none());
    }
}
