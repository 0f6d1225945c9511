//! The `results` tree: result documents (framed JSON, opaque to the store) keyed by job prefix +
//! kind + sign-flipped time + ordinal, so a range scan returns one kind in time order. Owns the
//! result types, range bounds, reads and bulk deletes; writes go through `commit` (I2).

use super::{failpoint, frame, keys, tally, tree, Store, StoreError};

/// Bucket timestamps whose documents `delete_results` removes per batch.
const DELETE_BUCKETS_PER_BATCH: usize = 1024;

/// Kinds of result documents; the discriminant is part of the result key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResultKind {
    Bucket = 1,
    Record = 2,
    Influencer = 3,
    /// `model_plot` documents, keyed by bucket time like the above.
    ModelPlot = 10,
    /// `model_forecast` rows, keyed by their forecast's create time (not the row's own time), so
    /// one forecast's rows are one range.
    ModelForecast = 11,
    /// `model_forecast_request_stats`, one per forecast at ordinal 0, keyed by its create time.
    ForecastRequestStats = 12,
    /// Category definitions: time 0, ordinal = category id. Not in [`ResultKind::BUCKET_TIMED`],
    /// so the time-range removals (interim results, retention, revert) leave them alone.
    Category = 4,
}

impl ResultKind {
    pub const ALL: [ResultKind; 7] = [
        ResultKind::Bucket,
        ResultKind::Record,
        ResultKind::Influencer,
        ResultKind::Category,
        ResultKind::ModelPlot,
        ResultKind::ModelForecast,
        ResultKind::ForecastRequestStats,
    ];

    /// The kinds keyed by bucket time: what interim clearing, a revert's
    /// `delete_intervening_results` and `results_retention_days` remove by time. Forecasts live
    /// until they are deleted or expire.
    pub const BUCKET_TIMED: [ResultKind; 4] = [
        ResultKind::Bucket,
        ResultKind::Record,
        ResultKind::Influencer,
        ResultKind::ModelPlot,
    ];

    pub(super) fn from_u8(tag: u8) -> Option<ResultKind> {
        ResultKind::ALL.into_iter().find(|kind| *kind as u8 == tag)
    }
}

/// One result document to write: its JSON bytes, keyed by (kind, timestamp, ordinal within the bucket).
#[derive(Debug, Clone)]
pub struct ResultDoc {
    pub kind: ResultKind,
    pub timestamp_ms: i64,
    pub ordinal: u32,
    pub json: Vec<u8>,
}

/// `[start, end)` keys of one kind with time in `[start_ms, end_ms)` (open ends = unbounded);
/// `None` when the interval is empty.
pub(super) fn kind_range(
    prefix: &[u8],
    kind: ResultKind,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
) -> Option<(Vec<u8>, Vec<u8>)> {
    let start = match start_ms {
        Some(t) => keys::result_time_bound(prefix, kind, t),
        None => keys::result_kind_bound(prefix, kind as u8),
    };
    let end = match end_ms {
        Some(t) => keys::result_time_bound(prefix, kind, t),
        None => keys::result_kind_bound(prefix, kind as u8 + 1),
    };
    (start < end).then_some((start, end))
}

impl Store {
    /// JSON payloads (CRC-checked, not parsed) of one kind with timestamp in `[start_ms, end_ms)`,
    /// in key order: time, then ordinal.
    pub fn scan_results(
        &self,
        job_id: &str,
        kind: ResultKind,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let docs = self.scan_keyed_results(job_id, kind, start_ms, end_ms)?;
        Ok(docs.into_iter().map(|doc| doc.json).collect())
    }

    /// [`Store::scan_results`] with each document's key: what a caller rewriting documents
    /// (renormalization) needs to write them back in place.
    pub fn scan_keyed_results(
        &self,
        job_id: &str,
        kind: ResultKind,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
    ) -> Result<Vec<ResultDoc>, StoreError> {
        let prefix = keys::job_prefix(job_id)?;
        let Some((start, end)) = kind_range(&prefix, kind, start_ms, end_ms) else {
            return Ok(Vec::new());
        };
        let mut docs = Vec::new();
        for entry in self.results.range(start..end) {
            let (key, value) = entry?;
            let (_, timestamp_ms, ordinal) = keys::parse_result_suffix(&key[prefix.len()..])
                .ok_or_else(|| StoreError::corrupt(tree::RESULTS, &key, "malformed result key"))?;
            docs.push(ResultDoc {
                kind,
                timestamp_ms,
                ordinal,
                json: frame::unframe(tree::RESULTS, &key, &value)?.to_vec(),
            });
        }
        Ok(docs)
    }

    /// The JSON payload of one result document, if stored.
    pub fn get_result(
        &self,
        job_id: &str,
        kind: ResultKind,
        timestamp_ms: i64,
        ordinal: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let key = keys::result_key(&keys::job_prefix(job_id)?, kind, timestamp_ms, ordinal);
        match self.results.get(&key)? {
            Some(value) => Ok(Some(frame::unframe(tree::RESULTS, &key, &value)?.to_vec())),
            None => Ok(None),
        }
    }

    /// Removes the job's results of every bucket-timed kind with timestamp in `[start_ms, end_ms)`; returns how
    /// many. Batched oldest first, each batch every kind's documents of a run of bucket timestamps
    /// (atomic within the tree): a crash midway leaves fewer buckets, never a bucket without its
    /// records. To replace results atomically together with progress, use `Commit::clear_results`.
    pub fn delete_results(
        &self,
        job_id: &str,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
    ) -> Result<u64, StoreError> {
        let prefix = keys::job_prefix(job_id)?;
        let mut removed = 0;
        let mut from = start_ms;
        loop {
            // The window ends at the bucket after the next DELETE_BUCKETS_PER_BATCH, else at `end_ms`.
            let mut until = end_ms;
            if let Some((start, end)) = kind_range(&prefix, ResultKind::Bucket, from, end_ms) {
                let bucket_time = |key: &[u8]| {
                    keys::parse_result_suffix(&key[prefix.len()..]).map(|(_, time, _)| time)
                };
                if let Some(entry) = self
                    .results
                    .range(start..end)
                    .keys()
                    .nth(DELETE_BUCKETS_PER_BATCH)
                {
                    let key = entry?;
                    until = Some(bucket_time(&key).ok_or_else(|| {
                        StoreError::corrupt(tree::RESULTS, &key, "malformed result key")
                    })?);
                }
            }
            let mut batch = sled::Batch::default();
            let mut in_batch = 0u64;
            let mut delta = tally::TallyDelta::default();
            for kind in ResultKind::BUCKET_TIMED {
                if let Some((start, end)) = kind_range(&prefix, kind, from, until) {
                    for key in self.results.range(start..end).keys() {
                        batch.remove(key?);
                        delta.result(kind, -1);
                        in_batch += 1;
                    }
                }
            }
            if in_batch > 0 {
                failpoint::failpoint(failpoint::PURGE_BATCH)?;
                self.touched(job_id);
                self.apply_counted(&self.results, job_id.as_bytes(), batch, &delta)?;
                removed += in_batch;
            }
            if until == end_ms {
                return Ok(removed);
            }
            from = until;
        }
    }

    /// Removes the job's results of one kind with timestamp in `[start_ms, end_ms)`; returns how
    /// many (batched like `delete_results`).
    pub fn delete_kind(
        &self,
        job_id: &str,
        kind: ResultKind,
        start_ms: Option<i64>,
        end_ms: Option<i64>,
    ) -> Result<u64, StoreError> {
        let prefix = keys::job_prefix(job_id)?;
        match kind_range(&prefix, kind, start_ms, end_ms) {
            Some((start, end)) => {
                self.touched(job_id);
                self.purge_job_range(
                    tree::RESULTS,
                    &self.results,
                    job_id.as_bytes(),
                    &start,
                    &end,
                )
            }
            None => Ok(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::commit_with;
    use crate::store::{ResultKind, Store, StoreError};

    /// Result JSON in the tests is `"<kind>@<time>#<ordinal>"`, so the order is visible.
    fn times(
        store: &Store,
        job: &str,
        kind: ResultKind,
        start: Option<i64>,
        end: Option<i64>,
    ) -> Vec<String> {
        store
            .scan_results(job, kind, start, end)
            .unwrap()
            .into_iter()
            .map(|doc| String::from_utf8(doc).unwrap())
            .collect()
    }

    fn store_with(job: &str, results: &[(ResultKind, i64)]) -> Store {
        let store = Store::temporary().unwrap();
        store
            .commit(job, &commit_with(Vec::new(), results, 0))
            .unwrap();
        store
    }

    #[test]
    fn scan_is_in_time_order_across_negative_and_extreme_times() {
        let store = store_with(
            "a",
            &[
                (ResultKind::Bucket, 5),
                (ResultKind::Bucket, i64::MAX),
                (ResultKind::Bucket, -3),
                (ResultKind::Bucket, i64::MIN),
                (ResultKind::Bucket, 0),
                (ResultKind::Record, 1),
            ],
        );
        let expected: Vec<String> = [i64::MIN, -3, 0, 5, i64::MAX]
            .iter()
            .map(|t| format!("\"Bucket@{t}#0\""))
            .collect();
        assert_eq!(times(&store, "a", ResultKind::Bucket, None, None), expected);
        assert_eq!(
            times(&store, "a", ResultKind::Record, None, None),
            ["\"Record@1#0\""]
        );
        assert!(times(&store, "a", ResultKind::Influencer, None, None).is_empty());
    }

    #[test]
    fn scan_bounds_are_start_inclusive_end_exclusive() {
        let store = store_with(
            "a",
            &[
                (ResultKind::Bucket, -10),
                (ResultKind::Bucket, 0),
                (ResultKind::Bucket, 10),
                (ResultKind::Bucket, 20),
            ],
        );
        assert_eq!(
            times(&store, "a", ResultKind::Bucket, Some(0), Some(20)),
            ["\"Bucket@0#0\"", "\"Bucket@10#0\""]
        );
        assert_eq!(
            times(&store, "a", ResultKind::Bucket, Some(-10), Some(-9)),
            ["\"Bucket@-10#0\""]
        );
        assert_eq!(
            times(&store, "a", ResultKind::Bucket, Some(11), None),
            ["\"Bucket@20#0\""]
        );
        assert!(times(&store, "a", ResultKind::Bucket, Some(20), Some(0)).is_empty());
    }

    #[test]
    fn ordinals_order_documents_within_a_timestamp_and_jobs_stay_apart() {
        let store = Store::temporary().unwrap();
        let mut commit = commit_with(Vec::new(), &[], 0);
        for ordinal in [2u32, 0, 1, 256] {
            commit.results.push(crate::store::ResultDoc {
                kind: ResultKind::Record,
                timestamp_ms: 7,
                ordinal,
                json: format!("{ordinal}").into_bytes(),
            });
        }
        store.commit("a", &commit).unwrap();
        store
            .commit(
                "ab",
                &commit_with(Vec::new(), &[(ResultKind::Record, 7)], 0),
            )
            .unwrap();
        assert_eq!(
            times(&store, "a", ResultKind::Record, None, None),
            ["0", "1", "2", "256"]
        );
        assert_eq!(times(&store, "ab", ResultKind::Record, None, None).len(), 1);
    }

    #[test]
    fn delete_results_removes_every_kind_in_the_interval_only() {
        let store = store_with(
            "a",
            &[
                (ResultKind::Bucket, 0),
                (ResultKind::Bucket, 10),
                (ResultKind::Record, 10),
                (ResultKind::Influencer, 10),
                (ResultKind::Influencer, 20),
            ],
        );
        assert_eq!(store.delete_results("a", Some(10), Some(20)).unwrap(), 3);
        assert_eq!(
            times(&store, "a", ResultKind::Bucket, None, None),
            ["\"Bucket@0#0\""]
        );
        assert!(times(&store, "a", ResultKind::Record, None, None).is_empty());
        assert_eq!(
            times(&store, "a", ResultKind::Influencer, None, None),
            ["\"Influencer@20#0\""]
        );
        assert_eq!(store.delete_results("a", None, None).unwrap(), 2);
    }

    /// More buckets than one batch takes: every batch is whole buckets, and all of them go.
    #[test]
    fn delete_results_spans_batches_of_whole_buckets() {
        let n = super::DELETE_BUCKETS_PER_BATCH as i64 * 2 + 7;
        let results: Vec<_> = (0..n)
            .flat_map(|t| [(ResultKind::Bucket, t), (ResultKind::Record, t)])
            .collect();
        let store = store_with("a", &results);
        let cutoff = n - 5;
        assert_eq!(
            store.delete_results("a", None, Some(cutoff)).unwrap(),
            2 * cutoff as u64
        );
        for kind in [ResultKind::Bucket, ResultKind::Record] {
            let left = times(&store, "a", kind, None, None);
            assert_eq!(left.len(), 5, "{kind:?}");
            assert_eq!(left[0], format!("\"{kind:?}@{cutoff}#0\""));
        }
    }

    #[test]
    fn time_deletes_leave_forecasts_to_their_own_deletes() {
        let store = store_with(
            "a",
            &[
                (ResultKind::ModelPlot, 10),
                (ResultKind::ModelForecast, 10),
                (ResultKind::ForecastRequestStats, 10),
            ],
        );
        assert_eq!(store.delete_results("a", None, None).unwrap(), 1);
        let forecast = |kind| times(&store, "a", kind, None, None).len();
        assert_eq!(forecast(ResultKind::ModelForecast), 1);
        assert_eq!(
            store
                .delete_kind("a", ResultKind::ModelForecast, Some(10), Some(11))
                .unwrap(),
            1
        );
        assert_eq!(forecast(ResultKind::ModelForecast), 0);
        assert_eq!(forecast(ResultKind::ForecastRequestStats), 1);
    }

    #[test]
    fn keyed_scans_and_point_reads_return_documents_with_their_keys() {
        let store = store_with(
            "a",
            &[
                (ResultKind::Record, -5),
                (ResultKind::Record, 7),
                (ResultKind::Bucket, 7),
            ],
        );
        let docs = store
            .scan_keyed_results("a", ResultKind::Record, Some(-5), Some(8))
            .unwrap();
        let keys: Vec<_> = docs
            .iter()
            .map(|d| (d.kind, d.timestamp_ms, d.ordinal))
            .collect();
        assert_eq!(
            keys,
            [(ResultKind::Record, -5, 0), (ResultKind::Record, 7, 0)]
        );
        assert_eq!(docs[1].json, b"\"Record@7#0\"");
        let bucket = store.get_result("a", ResultKind::Bucket, 7, 0).unwrap();
        assert_eq!(bucket.as_deref(), Some(&b"\"Bucket@7#0\""[..]));
        assert_eq!(
            store.get_result("a", ResultKind::Bucket, 7, 1).unwrap(),
            None
        );
        assert_eq!(
            store.get_result("b", ResultKind::Bucket, 7, 0).unwrap(),
            None
        );
    }

    #[test]
    fn a_corrupt_result_fails_the_scan() {
        let store = store_with("a", &[(ResultKind::Bucket, 0)]);
        let (key, value) = store.results.first().unwrap().unwrap();
        store
            .results
            .insert(key, &value[..value.len() - 1])
            .unwrap();
        assert!(matches!(
            store.scan_results("a", ResultKind::Bucket, None, None),
            Err(StoreError::Corrupt {
                tree: "results",
                ..
            })
        ));
    }
}
