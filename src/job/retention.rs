//! Retention: which model snapshots and results have expired, and `_delete_expired_data`.
//!
//! Rules (Elasticsearch's, all ages relative to the job's own data, not the wall clock):
//! - Snapshots: with `newest` the timestamp of the job's newest snapshot, a snapshot older than
//!   `newest - model_snapshot_retention_days` is deleted; one older than
//!   `newest - daily_model_snapshot_retention_after_days` is kept only if it is the first of its
//!   (UTC) day. A snapshot with `retain: true` and the job's active snapshot are never deleted
//!   (they still count as their day's kept snapshot).
//! - Results (`results_retention_days`, unset = kept forever): results whose timestamp is before
//!   `latest bucket - results_retention_days` are deleted.
//! - Forecasts past their `forecast_expiry_timestamp` (wall clock, as in Elasticsearch) are
//!   deleted (`job::forecast`, which also sweeps them hourly).
//!
//! Runs on `DELETE _ml/_delete_expired_data[/<job_id>]` (Elasticsearch also runs it nightly; auspex
//! only on request). Talks to: the store through `on_job_data` (store I1).

use serde_json::Value;

use crate::job::maintenance::Needs;
use crate::job::model_snapshots::snapshot_json;
use crate::job::{JobError, JobManager};
use crate::store::{ResultKind, Store};

const DAY_MS: i64 = 86_400_000;

/// What retention needs to know about one snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotAge {
    pub snapshot_id: String,
    pub timestamp_ms: i64,
    pub retain: bool,
}

/// The ids of the snapshots that have expired (see the module doc), oldest first.
pub fn expired_snapshots(
    snapshots: &[SnapshotAge],
    active: Option<&str>,
    retention_days: u64,
    daily_after_days: u64,
) -> Vec<String> {
    let Some(newest) = snapshots.iter().map(|s| s.timestamp_ms).max() else {
        return Vec::new();
    };
    let days = |d: u64| i64::try_from(d).unwrap_or(i64::MAX).saturating_mul(DAY_MS);
    let cutoff = newest.saturating_sub(days(retention_days));
    let daily_cutoff = newest.saturating_sub(days(daily_after_days));
    let mut ordered: Vec<&SnapshotAge> = snapshots.iter().collect();
    ordered.sort_by(|a, b| (a.timestamp_ms, &a.snapshot_id).cmp(&(b.timestamp_ms, &b.snapshot_id)));
    let mut expired = Vec::new();
    let mut kept_day = None;
    for snapshot in ordered {
        let protected = snapshot.retain || Some(snapshot.snapshot_id.as_str()) == active;
        let day = snapshot.timestamp_ms.div_euclid(DAY_MS);
        let thinned = snapshot.timestamp_ms < daily_cutoff && kept_day == Some(day);
        if !protected && (snapshot.timestamp_ms < cutoff || thinned) {
            expired.push(snapshot.snapshot_id.clone());
        } else if snapshot.timestamp_ms < daily_cutoff {
            kept_day = Some(day);
        }
    }
    expired
}

/// Applies snapshot and results retention to one job's stored data.
fn remove_expired(
    store: &Store,
    job_id: &str,
    retention_days: u64,
    daily_after_days: u64,
    results_retention_days: Option<u64>,
) -> Result<Value, JobError> {
    let mut ages = Vec::new();
    for doc in store.list_snapshots(job_id)? {
        let json = snapshot_json(&doc)?;
        ages.push(SnapshotAge {
            retain: json.get("retain").and_then(Value::as_bool) == Some(true),
            snapshot_id: doc.snapshot_id,
            timestamp_ms: doc.timestamp_ms,
        });
    }
    let active = store
        .get_progress(job_id)?
        .and_then(|p| p.latest_snapshot_id);
    let expired = expired_snapshots(&ages, active.as_deref(), retention_days, daily_after_days);
    for snapshot_id in &expired {
        store.delete_snapshot(job_id, snapshot_id)?;
    }
    let mut results_deleted = 0;
    if let Some(days) = results_retention_days {
        let latest_bucket = store
            .scan_results(job_id, ResultKind::Bucket, None, None)?
            .last()
            .and_then(|bytes| serde_json::from_slice::<Value>(bytes).ok())
            .and_then(|bucket| bucket.get("timestamp").and_then(Value::as_i64));
        if let Some(latest) = latest_bucket {
            let cutoff = latest.saturating_sub(
                i64::try_from(days)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(DAY_MS),
            );
            results_deleted = store.delete_results(job_id, None, Some(cutoff))?;
        }
    }
    let forecasts_deleted =
        crate::job::forecast::remove_expired(store, job_id, crate::clock::now_ms())?;
    Ok(serde_json::json!({
        "snapshots_deleted": expired.len(),
        "results_deleted": results_deleted,
        "forecasts_deleted": forecasts_deleted,
    }))
}

impl JobManager {
    /// `_delete_expired_data` for the jobs of `expression` (`_all` when the path names none).
    pub async fn delete_expired_data(&self, expression: &str) -> Result<(), JobError> {
        for job_id in self.expand_ids(expression, false)? {
            let config = self.slot_config(&job_id)?;
            let id = job_id.clone();
            let work = move |store: &Store| {
                remove_expired(
                    store,
                    &id,
                    config.model_snapshot_retention_days,
                    config.daily_model_snapshot_retention_after_days,
                    config.results_retention_days,
                )
            };
            match self.on_job_data(&job_id, Needs::Any, Box::new(work)).await {
                Ok(removed) => tracing::info!(%job_id, %removed, "expired data deleted"),
                // A job busy with something else (opening, closing) is left for the next run.
                Err(JobError::Conflict(reason)) => {
                    tracing::info!(%job_id, %reason, "expired data not deleted now")
                }
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn age(id: &str, day: f64, retain: bool) -> SnapshotAge {
        SnapshotAge {
            snapshot_id: id.into(),
            timestamp_ms: 1_700_006_400_000 + (day * DAY_MS as f64) as i64,
            retain,
        }
    }

    #[test]
    fn snapshots_past_retention_go_and_daily_thinning_keeps_the_first_of_a_day() {
        // Day 0 starts at midnight UTC; the newest snapshot is on day 12.
        let snapshots = vec![
            age("a", 0.1, false),  // older than 10 days: expired
            age("b", 1.1, true),   // older, but retained
            age("c", 5.1, false),  // first of day 5: kept
            age("d", 5.5, false),  // second of day 5: thinned
            age("e", 5.9, false),  // third of day 5: thinned
            age("f", 11.5, false), // within the last day: kept
            age("g", 11.6, false),
            age("h", 12.0, false),
        ];
        assert_eq!(
            expired_snapshots(&snapshots, Some("g"), 10, 1),
            vec!["a", "d", "e"]
        );
        // The active snapshot is never deleted.
        assert_eq!(
            expired_snapshots(&snapshots, Some("a"), 10, 1),
            vec!["d", "e"]
        );
        // Daily thinning switched off (same as the retention): only the old one goes.
        assert_eq!(expired_snapshots(&snapshots, None, 10, 10), vec!["a"]);
        assert!(expired_snapshots(&[], None, 1, 1).is_empty());
    }
}
