//! The `jobs` tree (job id -> framed config JSON) and whole-job lifecycle: create (config + progress
//! in one transaction), update config, delete (unlink, then purge the job's other trees). The job
//! manager is the only caller of the writers here (I1); the config JSON is opaque to the store.

use sled::{transaction::ConflictableTransactionError, IVec, Transactional};

use super::{failpoint, frame, keys, tally, tree, tx_error, Progress, Store, StoreError};

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

impl Store {
    /// Inserts config + progress in one transaction if the job does not exist; `false` if it does
    /// (nothing written). Data left by an interrupted delete of the same id is purged first, so a new
    /// job never inherits old input or results.
    pub fn create_job(
        &self,
        job_id: &str,
        config_json: &[u8],
        progress: &Progress,
    ) -> Result<bool, StoreError> {
        let key = keys::job_key(job_id)?;
        if self.jobs.contains_key(key)? {
            return Ok(false);
        }
        // Safe outside the transaction: only the manager creates or deletes jobs (I1), and a job
        // that does not exist has no actor writing its keys.
        self.purge_job_data(key)?;
        let config = IVec::from(frame::frame(config_json)?);
        let progress = IVec::from(frame::frame_bincode(progress)?);
        let (tally_key, tally) = (
            tally::tally_key(key),
            IVec::from(frame::frame_bincode(&tally::Tally::default())?),
        );
        failpoint::failpoint(failpoint::CREATE_JOB_BEFORE)?;
        self.touched(job_id);
        let _exclusive = super::gate::exclusive();
        (&self.jobs, &self.progress, &self.meta)
            .transaction(|(jobs, progress_tree, meta)| -> TxResult<bool> {
                if jobs.get(key)?.is_some() {
                    return Ok(false);
                }
                jobs.insert(key, config.clone())?;
                progress_tree.insert(key, progress.clone())?;
                meta.insert(tally_key.as_slice(), tally.clone())?;
                Ok(true)
            })
            .map_err(tx_error)
    }

    /// Replaces the config of an existing job; `false` (nothing written) if the job does not exist,
    /// so a config can never appear without its progress.
    pub fn put_job_config(&self, job_id: &str, config_json: &[u8]) -> Result<bool, StoreError> {
        let key = keys::job_key(job_id)?;
        let config = IVec::from(frame::frame(config_json)?);
        failpoint::failpoint(failpoint::JOB_CONFIG_BEFORE)?;
        self.touched(job_id);
        let _exclusive = super::gate::exclusive();
        self.jobs
            .transaction(|jobs| -> TxResult<bool> {
                if jobs.get(key)?.is_none() {
                    return Ok(false);
                }
                jobs.insert(key, config.clone())?;
                Ok(true)
            })
            .map_err(tx_error)
    }

    /// The config JSON bytes (CRC-checked, not parsed).
    pub fn get_job_config(&self, job_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = keys::job_key(job_id)?;
        match self.jobs.get(key)? {
            Some(value) => Ok(Some(frame::unframe(tree::JOBS, key, &value)?.to_vec())),
            None => Ok(None),
        }
    }

    /// Every job as (job id, config JSON), in job id order; a damaged config is that job's error,
    /// so one bad value does not hide the other jobs. `Err` only when the tree cannot be read.
    #[allow(clippy::type_complexity)]
    pub fn scan_job_configs(
        &self,
    ) -> Result<Vec<(String, Result<Vec<u8>, StoreError>)>, StoreError> {
        let mut jobs = Vec::new();
        for entry in self.jobs.iter() {
            let (key, value) = entry?;
            let job_id = String::from_utf8_lossy(&key).into_owned();
            let config = match std::str::from_utf8(&key) {
                Ok(_) => frame::unframe(tree::JOBS, &key, &value).map(<[u8]>::to_vec),
                Err(_) => Err(StoreError::corrupt(tree::JOBS, &key, "job id is not UTF-8")),
            };
            jobs.push((job_id, config));
        }
        Ok(jobs)
    }

    /// Ids of jobs that have a progress record or a tally but no config: their config was lost to
    /// damage (`delete_job` removes all three at once). They are kept for `check` to report and
    /// `delete_job` to remove.
    pub fn jobs_without_config(&self) -> Result<Vec<String>, StoreError> {
        let mut ids = std::collections::BTreeSet::new();
        for key in self.progress.iter().keys() {
            ids.insert(key?.to_vec());
        }
        for key in self.meta.scan_prefix(tally::TALLY_PREFIX).keys() {
            ids.insert(key?[tally::TALLY_PREFIX.len()..].to_vec());
        }
        let mut lost = Vec::new();
        for id in ids {
            if !self.jobs.contains_key(&id)? {
                lost.push(String::from_utf8_lossy(&id).into_owned());
            }
        }
        Ok(lost)
    }

    /// Removes config + progress in one transaction (the job stops existing at once), then purges
    /// its input, results and snapshots in batches. A crash during the purge leaves only orphans,
    /// which `open` removes. Returns whether the job existed.
    pub fn delete_job(&self, job_id: &str) -> Result<bool, StoreError> {
        let key = keys::job_key(job_id)?;
        let tally_key = tally::tally_key(key);
        failpoint::failpoint(failpoint::DELETE_BEFORE)?;
        if let Some(durable) = &self.durable {
            durable.deleted(job_id);
        }
        let exclusive = super::gate::exclusive();
        let existed = (&self.jobs, &self.progress, &self.meta)
            .transaction(|(jobs, progress, meta)| -> TxResult<bool> {
                let had_progress = progress.remove(key)?.is_some();
                let had_tally = meta.remove(tally_key.as_slice())?.is_some();
                Ok(jobs.remove(key)?.is_some() || had_progress || had_tally)
            })
            .map_err(tx_error)?;
        drop(exclusive);
        failpoint::failpoint(failpoint::DELETE_AFTER_UNLINK)?;
        self.purge_job_data_at(key, Some(failpoint::DELETE_MID_PURGE))?;
        Ok(existed)
    }

    /// Removes every key of the job from `input`, `results` and `snapshots` (in that order; the
    /// failpoint between the first two is armed only by `delete_job`).
    fn purge_job_data_at(
        &self,
        job: &[u8],
        failpoint_name: Option<&'static str>,
    ) -> Result<u64, StoreError> {
        let start = keys::raw_job_prefix(job);
        let end = keys::job_end(job);
        let mut removed = self.purge_job_range(tree::INPUT, &self.input, job, &start, &end)?;
        if let Some(name) = failpoint_name {
            failpoint::failpoint(name)?;
        }
        removed += self.purge_job_range(tree::RESULTS, &self.results, job, &start, &end)?;
        removed += self.purge_job_range(tree::SNAPSHOTS, &self.snapshots, job, &start, &end)?;
        Ok(removed)
    }

    pub(super) fn purge_job_data(&self, job: &[u8]) -> Result<u64, StoreError> {
        self.purge_job_data_at(job, None)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::{commit_with, progress};
    use crate::store::{tree, ResultKind, SnapshotDoc, Store};

    fn snapshot(id: &str) -> SnapshotDoc {
        SnapshotDoc {
            snapshot_id: id.into(),
            timestamp_ms: 1,
            last_seq: 1,
            json: b"{}".to_vec(),
        }
    }

    /// Writes a bit of everything for `job_id`.
    fn populate(store: &Store, job_id: &str) {
        assert!(store
            .create_job(job_id, br#"{"job_id":"x"}"#, &progress(0))
            .unwrap());
        store
            .commit(
                job_id,
                &commit_with(
                    vec![(1, b"in".to_vec())],
                    &[(ResultKind::Bucket, 0), (ResultKind::Record, 0)],
                    1,
                ),
            )
            .unwrap();
        store
            .put_snapshot(job_id, &snapshot("s1"), &[7; 100], &progress(1))
            .unwrap();
    }

    fn count_keys_of(store: &Store, job: &str) -> usize {
        let prefix = crate::store::keys::job_prefix(job).unwrap();
        let mut n = 0;
        for (name, t) in store.trees() {
            for entry in t.iter() {
                let (key, _) = entry.unwrap();
                let exact = name == tree::JOBS || name == tree::PROGRESS;
                if (exact && key.as_ref() == job.as_bytes()) || (!exact && key.starts_with(&prefix))
                {
                    n += 1;
                }
            }
        }
        n
    }

    #[test]
    fn create_refuses_an_existing_job_and_writes_nothing() {
        let store = Store::temporary().unwrap();
        assert!(store.create_job("a", b"{\"v\":1}", &progress(0)).unwrap());
        assert!(!store.create_job("a", b"{\"v\":2}", &progress(5)).unwrap());
        assert_eq!(store.get_job_config("a").unwrap().unwrap(), b"{\"v\":1}");
        assert_eq!(store.get_progress("a").unwrap().unwrap().last_seq, 0);
    }

    #[test]
    fn put_job_config_updates_only_existing_jobs() {
        let store = Store::temporary().unwrap();
        assert!(!store.put_job_config("a", b"{}").unwrap());
        assert_eq!(store.get_job_config("a").unwrap(), None);
        store.create_job("a", b"{\"v\":1}", &progress(0)).unwrap();
        assert!(store.put_job_config("a", b"{\"v\":2}").unwrap());
        assert_eq!(store.get_job_config("a").unwrap().unwrap(), b"{\"v\":2}");
    }

    #[test]
    fn scan_job_configs_lists_jobs_in_id_order() {
        let store = Store::temporary().unwrap();
        for id in ["b", "a", "ab"] {
            store.create_job(id, id.as_bytes(), &progress(0)).unwrap();
        }
        let ids: Vec<_> = store
            .scan_job_configs()
            .unwrap()
            .into_iter()
            .map(|(id, config)| {
                assert_eq!(id.as_bytes(), config.unwrap().as_slice());
                id
            })
            .collect();
        assert_eq!(ids, ["a", "ab", "b"]);
    }

    #[test]
    fn delete_job_leaves_nothing_of_the_job_and_spares_the_others() {
        let store = Store::temporary().unwrap();
        for job in ["a", "ab", "b"] {
            populate(&store, job);
        }
        let before_ab = count_keys_of(&store, "ab");
        assert!(before_ab >= 6, "populate wrote {before_ab} keys");
        assert!(store.delete_job("a").unwrap());
        assert_eq!(count_keys_of(&store, "a"), 0);
        assert_eq!(count_keys_of(&store, "ab"), before_ab);
        assert_eq!(store.get_snapshot_state("ab", "s1").unwrap(), vec![7; 100]);
        assert!(!store.delete_job("a").unwrap());
        assert!(store.check_integrity().unwrap().is_clean());
    }

    #[test]
    fn recreating_a_job_does_not_inherit_leftover_data() {
        let store = Store::temporary().unwrap();
        populate(&store, "a");
        // What a crash right after the unlink transaction leaves behind.
        store.jobs.remove(b"a").unwrap();
        store.progress.remove(b"a").unwrap();
        assert!(store.create_job("a", b"{}", &progress(0)).unwrap());
        assert_eq!(store.last_input_seq("a").unwrap(), 0);
        assert!(store.list_snapshots("a").unwrap().is_empty());
        assert!(store
            .scan_results("a", ResultKind::Bucket, None, None)
            .unwrap()
            .is_empty());
    }
}
