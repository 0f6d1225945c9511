//! Tallies: per job, how many input entries, bucket results and record results the store holds,
//! in the `meta` tree (`tally 0x00 job_id`, framed bincode [`Tally`]). Every write that adds or
//! removes such keys changes the tally in the same transaction (I6), so a tally that differs from
//! what the trees hold means sled lost (or resurrected) keys: `check` compares them.
//!
//! Owns the key, the value, counting the difference a batch makes ([`TallyDelta`]), the one-time
//! count of a store written before tallies existed, and the range purge that keeps them exact.

use serde::{Deserialize, Serialize};
use sled::{transaction::ConflictableTransactionError, IVec, Transactional, Tree};

use super::{failpoint, frame, keys, tree, tx_error, ResultKind, Store, StoreError};

/// The `meta` key saying every job has a tally (absent: a store from before tallies, counted once).
pub(super) const TALLIED_KEY: &[u8] = b"tallied";
/// Start of every tally key in `meta`.
pub(super) const TALLY_PREFIX: &[u8] = b"tally\x00";
/// Keys removed per batch by a range purge: bounds memory and the time the tree's write lock is
/// held, while keeping the number of batches small.
const PURGE_BATCH: usize = 4096;

/// What the store holds of one job. bincode is positional: a new field is a new format version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub input: u64,
    pub buckets: u64,
    pub records: u64,
}

/// How a batch changes a tally.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct TallyDelta {
    pub input: i64,
    pub buckets: i64,
    pub records: i64,
}

impl TallyDelta {
    /// Counts a result of `kind` appearing (`+1`) or going (`-1`).
    pub fn result(&mut self, kind: ResultKind, sign: i64) {
        match kind {
            ResultKind::Bucket => self.buckets += sign,
            ResultKind::Record => self.records += sign,
            _ => {}
        }
    }

    /// Counts a key of tree `tree` (the job prefix of `prefix_len` bytes first) going away.
    fn removed_key(&mut self, tree: &'static str, key: &[u8], prefix_len: usize) {
        if tree == tree::INPUT {
            self.input -= 1;
        } else if tree == tree::RESULTS {
            if let Some((kind, _, _)) = keys::parse_result_suffix(&key[prefix_len..]) {
                self.result(kind, -1);
            }
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == TallyDelta::default()
    }

    /// The tally after this change (never below zero: a tally already short is damage `check`
    /// reports, not something to wrap around).
    pub fn applied_to(&self, tally: Tally) -> Tally {
        let add = |n: u64, d: i64| n.saturating_add_signed(d);
        Tally {
            input: add(tally.input, self.input),
            buckets: add(tally.buckets, self.buckets),
            records: add(tally.records, self.records),
        }
    }
}

/// Whether results of `kind` are tallied.
pub(super) fn counted(kind: ResultKind) -> bool {
    matches!(kind, ResultKind::Bucket | ResultKind::Record)
}

pub(super) fn tally_key(job: &[u8]) -> Vec<u8> {
    let mut key = TALLY_PREFIX.to_vec();
    key.extend_from_slice(job);
    key
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

impl Store {
    /// The job's tally; `None` if it has none.
    pub fn get_tally(&self, job_id: &str) -> Result<Option<Tally>, StoreError> {
        self.raw_tally(keys::job_key(job_id)?)
    }

    pub(super) fn raw_tally(&self, job: &[u8]) -> Result<Option<Tally>, StoreError> {
        let key = tally_key(job);
        match self.meta.get(&key)? {
            Some(value) => Ok(Some(frame::unframe_bincode(tree::META, &key, &value)?)),
            None => Ok(None),
        }
    }

    /// The framed tally a commit of `delta` leaves (a job without one starts from zero).
    pub(super) fn next_tally(&self, job: &[u8], delta: &TallyDelta) -> Result<IVec, StoreError> {
        let tally = self.raw_tally(job)?.unwrap_or_default();
        Ok(IVec::from(frame::frame_bincode(&delta.applied_to(tally))?))
    }

    /// What the trees hold of the job, counted key by key (values are not decoded).
    pub(super) fn count_job(&self, job: &[u8]) -> Result<Tally, StoreError> {
        let start = keys::raw_job_prefix(job);
        let end = keys::job_end(job);
        let mut input = 0;
        for key in self.input.range(start.as_slice()..end.as_slice()).keys() {
            key?;
            input += 1;
        }
        Ok(Tally {
            input,
            ..self.count_results(job)?
        })
    }

    /// The job's bucket and record keys (`input` is 0).
    pub(super) fn count_results(&self, job: &[u8]) -> Result<Tally, StoreError> {
        let prefix = keys::raw_job_prefix(job);
        let count = |kind: ResultKind| -> Result<u64, StoreError> {
            let mut n = 0;
            for key in self
                .results
                .range(
                    keys::result_kind_bound(&prefix, kind as u8)
                        ..keys::result_kind_bound(&prefix, kind as u8 + 1),
                )
                .keys()
            {
                key?;
                n += 1;
            }
            Ok(n)
        };
        Ok(Tally {
            input: 0,
            buckets: count(ResultKind::Bucket)?,
            records: count(ResultKind::Record)?,
        })
    }

    /// A store written before tallies existed gets them counted once, at its first open by a
    /// build that keeps them. Returns whether it had to.
    pub(super) fn ensure_tallies(&self) -> Result<bool, StoreError> {
        if self.meta.contains_key(TALLIED_KEY)? {
            return Ok(false);
        }
        if self.durable.as_ref().is_some_and(|d| d.tallied()) {
            return Err(StoreError::corrupt(
                tree::META,
                TALLIED_KEY,
                "the tally marker is gone although the durable mark says this store keeps \
                 tallies: sled lost part of the meta tree",
            ));
        }
        let mut batch = sled::Batch::default();
        for job in self.jobs.iter().keys() {
            let job = job?;
            let tally = self.count_job(&job)?;
            batch.insert(tally_key(&job), frame::frame_bincode(&tally)?);
        }
        batch.insert(TALLIED_KEY, frame::frame_bincode(&1u32)?);
        {
            let _exclusive = super::gate::exclusive();
            self.meta.apply_batch(batch)?;
        }
        if let Some(durable) = &self.durable {
            durable.set_tallied()?;
        }
        Ok(true)
    }

    /// Removes every key of `job` in `[start, end)` of `tree` (`input`, `results` or `snapshots`)
    /// in batches, each one transaction with the job's tally when it has one (I6). sled has no
    /// range delete, so this pages in the values too: deleting is proportional to the data.
    pub(super) fn purge_job_range(
        &self,
        name: &'static str,
        tree: &Tree,
        job: &[u8],
        start: &[u8],
        end: &[u8],
    ) -> Result<u64, StoreError> {
        let prefix_len = job.len() + 1;
        let mut removed = 0;
        loop {
            let mut batch = sled::Batch::default();
            let mut delta = TallyDelta::default();
            let mut in_batch = 0;
            for entry in tree.range(start..end).take(PURGE_BATCH) {
                let (key, _) = entry?;
                delta.removed_key(name, &key, prefix_len);
                batch.remove(key);
                in_batch += 1;
            }
            if in_batch == 0 {
                return Ok(removed);
            }
            failpoint::failpoint(failpoint::PURGE_BATCH)?;
            self.apply_counted(tree, job, batch, &delta)?;
            removed += in_batch as u64;
        }
    }

    /// Applies a batch of `tree` that changes `job`'s tally by `delta`: one transaction with the
    /// tally (I6), or a plain batch when nothing tallied changes or the job has no tally (an
    /// orphan, a deleted job's data).
    pub(super) fn apply_counted(
        &self,
        tree: &Tree,
        job: &[u8],
        batch: sled::Batch,
        delta: &TallyDelta,
    ) -> Result<(), StoreError> {
        let tally = match delta.is_zero() {
            true => None,
            false => self.raw_tally(job)?.map(|tally| delta.applied_to(tally)),
        };
        let _exclusive = super::gate::exclusive();
        let Some(tally) = tally else {
            tree.apply_batch(batch)?;
            return Ok(());
        };
        let (key, tally) = (tally_key(job), IVec::from(frame::frame_bincode(&tally)?));
        (tree, &self.meta)
            .transaction(|(tree, meta)| -> TxResult<()> {
                tree.apply_batch(&batch)?;
                meta.insert(key.as_slice(), tally.clone())?;
                Ok(())
            })
            .map_err(tx_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{commit_with, progress};

    #[test]
    fn every_write_keeps_the_tally_equal_to_the_keys() {
        let store = Store::temporary().unwrap();
        store.create_job("a", b"{}", &progress(0)).unwrap();
        let exact = |store: &Store| {
            let tally = store.get_tally("a").unwrap().unwrap();
            assert_eq!(tally, store.count_job(b"a").unwrap());
            tally
        };
        assert_eq!(exact(&store), Tally::default());
        let results = [
            (ResultKind::Bucket, 0),
            (ResultKind::Record, 0),
            (ResultKind::Record, 10),
            (ResultKind::Influencer, 0),
            (ResultKind::Bucket, 10),
        ];
        store
            .commit(
                "a",
                &commit_with(vec![(1, b"x".to_vec()), (2, b"y".to_vec())], &results, 2),
            )
            .unwrap();
        assert_eq!(
            exact(&store),
            Tally {
                input: 2,
                buckets: 2,
                records: 2
            }
        );
        // Rewriting a stored bucket in place, clearing [10, 20) and adding a new bucket there.
        let mut next = commit_with(
            vec![(3, b"z".to_vec())],
            &[(ResultKind::Bucket, 0), (ResultKind::Bucket, 15)],
            3,
        );
        next.clear_results = Some((10, 20));
        store.commit("a", &next).unwrap();
        assert_eq!(
            exact(&store),
            Tally {
                input: 3,
                buckets: 2,
                records: 1
            }
        );
        store.delete_results("a", None, Some(5)).unwrap();
        assert_eq!(exact(&store).buckets, 1);
        store.delete_input_through("a", 2).unwrap();
        assert_eq!(exact(&store).input, 1);
        store.reset_job("a", &progress(0)).unwrap();
        assert_eq!(exact(&store), Tally::default());
        store.delete_job("a").unwrap();
        assert_eq!(store.get_tally("a").unwrap(), None);
    }

    #[test]
    fn a_store_without_tallies_is_counted_once() {
        let store = Store::temporary().unwrap();
        store.create_job("a", b"{}", &progress(0)).unwrap();
        store
            .commit(
                "a",
                &commit_with(vec![(1, b"x".to_vec())], &[(ResultKind::Bucket, 0)], 1),
            )
            .unwrap();
        // As a build before tallies left it.
        store.meta.remove(TALLIED_KEY).unwrap();
        store.meta.remove(tally_key(b"a")).unwrap();
        assert!(store.ensure_tallies().unwrap());
        assert!(!store.ensure_tallies().unwrap());
        assert_eq!(
            store.get_tally("a").unwrap(),
            Some(Tally {
                input: 1,
                buckets: 1,
                records: 0
            })
        );
    }
}
