//! Renormalization of stored results: which documents a commit rewrites when finalized buckets
//! carry a [`Renormalization`] (the model decides when, `model::renormalize`).
//!
//! Called by `engine::writer` just before it commits: the rewritten
//! documents join the commit's own, so they are written in the same transaction as the buckets
//! that caused them (I2) and a crash leaves both or neither.
//!
//! A renormalization after bucket `t` covers the finalized documents timed in `[t - window, t]`.
//! The renormalizations of one commit are applied once: each document takes the last one that
//! covers it, which is what applying them one by one would leave. So a document's stored scores
//! depend on the input only, never on how it was split into requests or commits.
//!
//! Only documents whose scores can change are read: records and influencers (sparse) by a range
//! scan of the window, and the buckets that have records by point reads. A bucket without records
//! keeps its scores: its probability is at or above the record threshold, which scores 0 under
//! every normalization (a test in `model::score` holds the maths to this).

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use crate::engine::storage::JobStore;
use crate::engine::JobError;
use crate::model::renormalize::{rescore_document, Renormalization};
use crate::store::{ResultDoc, ResultKind, StoreError};

const DAY_MS: i64 = 86_400_000;
/// Elasticsearch's default window: the longer of 30 days and 100 buckets.
const DEFAULT_WINDOW_DAYS: i64 = 30;
const DEFAULT_WINDOW_BUCKETS: i64 = 100;

/// The window in ms for a job's `renormalization_window_days` and bucket span.
pub fn window_ms(renormalization_window_days: Option<u64>, bucket_span_ms: i64) -> i64 {
    match renormalization_window_days {
        Some(days) => i64::try_from(days)
            .unwrap_or(i64::MAX)
            .saturating_mul(DAY_MS),
        None => (DEFAULT_WINDOW_DAYS * DAY_MS)
            .max(DEFAULT_WINDOW_BUCKETS.saturating_mul(bucket_span_ms)),
    }
}

/// The renormalizations the finalized buckets carry, oldest first: (bucket start, renormalization).
pub fn take_renormalizations(
    finalized: &mut [crate::model::BucketResult],
) -> Vec<(i64, Renormalization)> {
    finalized
        .iter_mut()
        .filter_map(|b| b.renormalization.take().map(|r| (b.timestamp, r)))
        .collect()
}

/// Applies `renormalizations` (oldest first) to the job's finalized documents: `fresh` (this
/// commit's, rescored in place) and the stored ones, of which those whose scores change are
/// appended to `fresh`. Returns how many documents changed.
pub fn rescore(
    store: &impl JobStore,
    window_ms: i64,
    renormalizations: &[(i64, Renormalization)],
    fresh: &mut Vec<ResultDoc>,
) -> Result<usize, JobError> {
    let (Some(first), Some(last)) = (renormalizations.first(), renormalizations.last()) else {
        return Ok(0);
    };
    // The last renormalization covering `time`: the latest one at or before `time + window`,
    // if it is not before `time`.
    let cover = |time: i64| {
        let after = renormalizations.partition_point(|(t, _)| *t <= time.saturating_add(window_ms));
        let (t, r) = renormalizations.get(after.checked_sub(1)?)?;
        (*t >= time).then_some(r)
    };
    let mut changed = 0;
    let mut fresh_keys = HashSet::new();
    let mut with_records = BTreeSet::new();
    for doc in fresh.iter() {
        fresh_keys.insert((doc.kind, doc.timestamp_ms, doc.ordinal));
        if doc.kind == ResultKind::Record {
            with_records.insert(doc.timestamp_ms);
        }
    }
    let stored_start = Some(first.0.saturating_sub(window_ms));
    let stored_end = Some(last.0.saturating_add(1));
    let mut rewritten = Vec::new();
    for kind in [ResultKind::Record, ResultKind::Influencer] {
        for mut doc in store.scan_results(kind, stored_start, stored_end)? {
            if kind == ResultKind::Record {
                with_records.insert(doc.timestamp_ms);
            }
            if fresh_keys.contains(&(doc.kind, doc.timestamp_ms, doc.ordinal)) {
                continue;
            }
            let renormalization = cover(doc.timestamp_ms);
            if rescore_bytes(&mut doc, renormalization)? {
                rewritten.push(doc);
            }
        }
    }
    for doc in fresh.iter_mut() {
        let rescored = match doc.kind {
            ResultKind::Record | ResultKind::Influencer => true,
            ResultKind::Bucket => with_records.contains(&doc.timestamp_ms),
            _ => false,
        };
        let renormalization = cover(doc.timestamp_ms);
        if rescored && rescore_bytes(doc, renormalization)? {
            changed += 1;
        }
    }
    for time in with_records {
        let Some(renormalization) = cover(time) else {
            continue;
        };
        if fresh_keys.contains(&(ResultKind::Bucket, time, 0)) {
            continue;
        }
        let Some(json) = store.get_result(ResultKind::Bucket, time, 0)? else {
            continue;
        };
        let mut doc = ResultDoc {
            kind: ResultKind::Bucket,
            timestamp_ms: time,
            ordinal: 0,
            json,
        };
        if rescore_bytes(&mut doc, Some(renormalization))? {
            rewritten.push(doc);
        }
    }
    changed += rewritten.len();
    fresh.extend(rewritten);
    Ok(changed)
}

/// Rescores one document's JSON in place; true if it changed. A document that is not JSON
/// (only a damaged store holds one; `auspex verify` reports it) is left as it is.
fn rescore_bytes(
    doc: &mut ResultDoc,
    renormalization: Option<&Renormalization>,
) -> Result<bool, JobError> {
    let Some(renormalization) = renormalization else {
        return Ok(false);
    };
    let Ok(mut json) = serde_json::from_slice::<Value>(&doc.json) else {
        tracing::warn!(
            timestamp = doc.timestamp_ms,
            ordinal = doc.ordinal,
            "a stored result is not JSON; not renormalized"
        );
        return Ok(false);
    };
    if !rescore_document(&mut json, renormalization) {
        return Ok(false);
    }
    doc.json = serde_json::to_vec(&json)
        .map_err(|e| JobError::Store(StoreError::Encode(e.to_string())))?;
    Ok(true)
}

#[cfg(test)]
#[path = "renormalize_tests.rs"]
mod tests;
