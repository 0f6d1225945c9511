//! `Commit`: everything one unit of job work changes (input entries, results, progress), written in
//! ONE sled transaction over `input`, `results` and `progress` (I2). Owns building the batches and the
//! transaction; the key layouts come from `keys`, the frames from `frame`. Called by the job actor only.

use sled::{
    transaction::{abort, ConflictableTransactionError},
    Batch, IVec, Transactional,
};

use super::{
    failpoint, frame, keys, results::kind_range, tally, tx_error, Progress, ResultDoc, ResultKind,
    Store, StoreError,
};

/// Everything one unit of job work changes, committed atomically (I2).
#[derive(Debug, Clone)]
pub struct Commit {
    /// New input entries: strictly increasing sequence numbers, above every stored one.
    pub input: Vec<(u64, Vec<u8>)>,
    /// Results to write (finalized or interim).
    pub results: Vec<ResultDoc>,
    /// Remove every bucket-timed result (`ResultKind::BUCKET_TIMED`) with timestamp in `[start, end)` before writing `results`:
    /// stale interim results are replaced this way.
    pub clear_results: Option<(i64, i64)>,
    pub progress: Progress,
}

/// A commit encoded and ready for the transaction.
struct Prepared {
    input: Batch,
    results: Batch,
    progress: IVec,
    /// The job's tally after the commit (I6).
    tally: IVec,
}

impl Store {
    /// Writes the commit atomically: a reader sees all of it or none of it (each store read is one
    /// consistent view; two reads are two views).
    pub fn commit(&self, job_id: &str, commit: &Commit) -> Result<(), StoreError> {
        let prepared = self.prepare(job_id, commit)?;
        failpoint::failpoint(failpoint::COMMIT_BEFORE)?;
        self.touched(job_id);
        let key = keys::job_key(job_id)?;
        super::whole_or_abort("commit", || self.apply(key, &prepared, false))?;
        failpoint::failpoint(failpoint::COMMIT_AFTER)?;
        Ok(())
    }

    /// Everything that can be done outside the transaction is: sled runs the transaction closure
    /// under a database-wide write lock, so framing, CRCs and key building must not happen there.
    fn prepare(&self, job_id: &str, commit: &Commit) -> Result<Prepared, StoreError> {
        let prefix = keys::job_prefix(job_id)?;
        let mut input = Batch::default();
        let mut delta = tally::TallyDelta {
            input: commit.input.len() as i64,
            ..Default::default()
        };
        if !commit.input.is_empty() {
            let mut previous = self.last_input_seq(job_id)?;
            for (seq, entry) in &commit.input {
                if *seq <= previous {
                    return Err(StoreError::Encode(format!(
                        "input sequence number {seq} of job [{job_id}] does not follow {previous}"
                    )));
                }
                previous = *seq;
                input.insert(keys::input_key(&prefix, *seq), frame::frame(entry)?);
            }
        }
        let mut results = Batch::default();
        // Tallied keys this commit removes; one it writes again is rewritten, not removed.
        let mut cleared = std::collections::HashSet::new();
        if let Some((start, end)) = commit.clear_results {
            // sled transactions cannot range-scan, so the keys to clear are collected here. No other
            // writer can add a key of this job between this scan and the transaction: the job actor
            // calling us is the job's only writer (I1).
            for kind in ResultKind::BUCKET_TIMED {
                if let Some((from, to)) = kind_range(&prefix, kind, Some(start), Some(end)) {
                    for entry in self.results.range(from..to) {
                        let key = entry?.0;
                        if tally::counted(kind) {
                            cleared.insert(key.to_vec());
                        }
                        results.remove(key);
                    }
                }
            }
        }
        // The batch is a map, so a result written here replaces a removal of the same key above.
        let mut written = std::collections::HashSet::new();
        for doc in &commit.results {
            let key = keys::result_key(&prefix, doc.kind, doc.timestamp_ms, doc.ordinal);
            // A key new to the store adds to the tally; a stored one (renormalized) does not.
            if tally::counted(doc.kind)
                && written.insert(key.clone())
                && !cleared.remove(&key)
                && !self.results.contains_key(&key)?
            {
                delta.result(doc.kind, 1);
            }
            results.insert(key, frame::frame(&doc.json)?);
        }
        for key in &cleared {
            if let Some((kind, _, _)) = keys::parse_result_suffix(&key[prefix.len()..]) {
                delta.result(kind, -1);
            }
        }
        Ok(Prepared {
            input,
            results,
            progress: IVec::from(frame::frame_bincode(&commit.progress)?),
            tally: self.next_tally(keys::job_key(job_id)?, &delta)?,
        })
    }

    /// The transaction itself (I2). `abort_before_progress` exists for the atomicity test.
    fn apply(
        &self,
        job_key: &[u8],
        prepared: &Prepared,
        abort_before_progress: bool,
    ) -> Result<(), StoreError> {
        let _exclusive = super::gate::exclusive();
        let tally_key = tally::tally_key(job_key);
        (&self.input, &self.results, &self.progress, &self.meta)
            .transaction(|(input, results, progress, meta)| -> Result<(), ConflictableTransactionError<StoreError>> {
                input.apply_batch(&prepared.input)?;
                results.apply_batch(&prepared.results)?;
                failpoint::failpoint(failpoint::COMMIT_MID).map_err(ConflictableTransactionError::Abort)?;
                if abort_before_progress {
                    return abort(StoreError::Encode("aborted by test".into()));
                }
                progress.insert(job_key, prepared.progress.clone())?;
                meta.insert(tally_key.as_slice(), prepared.tally.clone())?;
                Ok(())
            })
            .map_err(tx_error)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::{commit_with, progress};
    use crate::store::{ResultKind, Store, StoreError};

    fn bucket_times(store: &Store, job: &str) -> Vec<String> {
        let docs = store
            .scan_results(job, ResultKind::Bucket, None, None)
            .unwrap();
        docs.into_iter()
            .map(|d| String::from_utf8(d).unwrap())
            .collect()
    }

    #[test]
    fn an_aborted_transaction_writes_nothing() {
        let store = Store::temporary().unwrap();
        store
            .commit(
                "a",
                &commit_with(vec![(1, b"one".to_vec())], &[(ResultKind::Bucket, 0)], 1),
            )
            .unwrap();
        let mut second = commit_with(vec![(2, b"two".to_vec())], &[(ResultKind::Bucket, 10)], 2);
        second.clear_results = Some((0, 1));
        let prepared = store.prepare("a", &second).unwrap();
        assert!(matches!(
            store.apply(b"a", &prepared, true),
            Err(StoreError::Encode(_))
        ));
        assert_eq!(store.last_input_seq("a").unwrap(), 1);
        assert_eq!(bucket_times(&store, "a"), ["\"Bucket@0#0\""]);
        assert_eq!(store.get_progress("a").unwrap().unwrap().last_seq, 1);
        // The same prepared commit applies fine without the injected abort.
        store.apply(b"a", &prepared, false).unwrap();
        assert_eq!(bucket_times(&store, "a"), ["\"Bucket@10#0\""]);
        assert_eq!(store.get_progress("a").unwrap().unwrap().last_seq, 2);
    }

    #[test]
    fn out_of_order_input_is_refused_before_anything_is_written() {
        let store = Store::temporary().unwrap();
        store
            .commit("a", &commit_with(vec![(5, b"x".to_vec())], &[], 5))
            .unwrap();
        for bad in [
            vec![(5, b"y".to_vec())],
            vec![(6, b"y".to_vec()), (6, b"z".to_vec())],
            vec![(7, b"y".to_vec()), (3, b"z".to_vec())],
        ] {
            let err = store
                .commit("a", &commit_with(bad, &[(ResultKind::Bucket, 1)], 9))
                .unwrap_err();
            assert!(matches!(err, StoreError::Encode(m) if m.contains("does not follow")));
        }
        assert_eq!(store.last_input_seq("a").unwrap(), 5);
        assert!(bucket_times(&store, "a").is_empty());
        assert_eq!(store.get_progress("a").unwrap().unwrap().last_seq, 5);
    }

    #[test]
    fn clear_results_replaces_every_kind_in_the_interval_only() {
        let store = Store::temporary().unwrap();
        let all = [
            (ResultKind::Bucket, -1),
            (ResultKind::Bucket, 0),
            (ResultKind::Record, 5),
            (ResultKind::Influencer, 9),
            (ResultKind::Bucket, 10),
        ];
        store
            .commit("a", &commit_with(Vec::new(), &all, 0))
            .unwrap();
        store
            .commit("ab", &commit_with(Vec::new(), &all, 0))
            .unwrap();
        let mut replace = commit_with(Vec::new(), &[(ResultKind::Bucket, 0)], 0);
        replace.results[0].json = b"\"new\"".to_vec();
        replace.clear_results = Some((0, 10));
        store.commit("a", &replace).unwrap();
        assert_eq!(
            bucket_times(&store, "a"),
            ["\"Bucket@-1#0\"", "\"new\"", "\"Bucket@10#0\""]
        );
        assert!(store
            .scan_results("a", ResultKind::Record, None, None)
            .unwrap()
            .is_empty());
        assert!(store
            .scan_results("a", ResultKind::Influencer, None, None)
            .unwrap()
            .is_empty());
        assert_eq!(
            store
                .scan_results("ab", ResultKind::Record, None, None)
                .unwrap()
                .len(),
            1
        );
    }

    /// A reader that reads results then progress never sees results ahead of progress, and one that
    /// reads progress then results never sees progress ahead of results: each commit is visible as
    /// a whole. A commit split into separate writes fails one of the two orders.
    #[test]
    fn concurrent_readers_see_whole_commits() {
        let store = Store::temporary().unwrap();
        store.put_progress("a", &progress(0)).unwrap();
        const COMMITS: u64 = 300;
        std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let mut checks = 0;
                loop {
                    let results_first = store
                        .scan_results("a", ResultKind::Bucket, None, None)
                        .unwrap()
                        .len() as u64;
                    let progress_after = store.get_progress("a").unwrap().unwrap().last_seq;
                    assert!(
                        progress_after >= results_first,
                        "results {results_first} ahead of progress {progress_after}"
                    );
                    let progress_first = store.get_progress("a").unwrap().unwrap().last_seq;
                    let results_after = store
                        .scan_results("a", ResultKind::Bucket, None, None)
                        .unwrap()
                        .len() as u64;
                    assert!(
                        results_after >= progress_first,
                        "progress {progress_first} ahead of results {results_after}"
                    );
                    checks += 1;
                    if progress_first == COMMITS {
                        return checks;
                    }
                }
            });
            for seq in 1..=COMMITS {
                store
                    .commit(
                        "a",
                        &commit_with(
                            vec![(seq, vec![0; 64])],
                            &[(ResultKind::Bucket, seq as i64)],
                            seq,
                        ),
                    )
                    .unwrap();
            }
            assert!(reader.join().unwrap() > 0);
        });
    }
}
