//! `analysis_limits.model_memory_limit`: the model's memory against its limit, the way
//! Elasticsearch's resource monitor keeps a job inside it.
//!
//! Owns the decisions and the counters `model_size_stats` reports; the detector measures its bytes
//! and carries the decisions out (pruning series, refusing new ones). The thresholds are
//! Elasticsearch's: above 3/5 of the limit the job prunes series it has not seen for a while
//! (`soft_limit`), with a window that starts at `model_prune_window` and shrinks at each prune
//! while memory stays high (a quarter each time, faster than Elasticsearch's 1%, so a job pressed
//! for memory sheds quiet series within hours of data rather than weeks); past the limit it
//! creates no new series (`hard_limit`: their records are not modelled and each bucket where that
//! happened counts in `bucket_allocation_failures_count`) until memory falls below 49/50 of it.
//! Unlike Elasticsearch, which reports `hard_limit` for good once it was reached, the status
//! recovers with the memory.
//!
//! Everything here is a function of data time and of bytes measured from the model's state (never
//! wall clock or allocator capacity), and lives in the snapshot, so a replay after a restart makes
//! the same decisions.

use serde::{Deserialize, Serialize};

/// Pruning is considered at most once per this much data time (ms), as Elasticsearch does.
const PRUNE_EVERY_MS: i64 = 3_600_000;
/// Each prune while memory stays above the soft threshold shrinks the window to this fraction.
const PRUNE_SHRINK: f64 = 0.75;
/// The window never shrinks below this many buckets, nor below an hour.
const MIN_PRUNE_BUCKETS: i64 = 4;
/// Buckets after which the model's own size, not the configured limit, is the basis for
/// assigning the job (`assignment_memory_basis`).
const ESTABLISHED_BUCKETS: u64 = 20;

/// `memory_status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemoryStatus {
    #[default]
    Ok,
    SoftLimit,
    HardLimit,
}

impl MemoryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemoryStatus::Ok => "ok",
            MemoryStatus::SoftLimit => "soft_limit",
            MemoryStatus::HardLimit => "hard_limit",
        }
    }
}

/// The memory state of one job's model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryMonitor {
    /// `model_memory_limit` in bytes; `None` until configured (no limit).
    limit: Option<u64>,
    /// `model_prune_window` in ms: where soft-limit pruning starts.
    max_prune_window: i64,
    bucket_span: i64,
    status: MemoryStatus,
    /// False while past the hard limit: no new series.
    refusing: bool,
    /// Bytes at the last measurement, and what new series added since.
    bytes: u64,
    added: u64,
    peak: u64,
    /// Bytes over the limit when it was last crossed.
    exceeded: u64,
    allocation_failures: u64,
    last_failure_bucket: Option<i64>,
    /// Soft-limit pruning: the current window (ms) while it is under way.
    prune_window: Option<i64>,
    last_prune: Option<i64>,
    buckets: u64,
}

impl MemoryMonitor {
    /// Sets the limit and the pruning window (from the job's `analysis_limits` and
    /// `model_prune_window`); a job opened again after its limit changed uses the new one.
    pub fn configure(&mut self, limit: Option<u64>, max_prune_window_ms: i64, bucket_span_ms: i64) {
        self.limit = limit;
        self.max_prune_window = max_prune_window_ms.max(1);
        self.bucket_span = bucket_span_ms.max(1);
        if let Some(window) = self.prune_window {
            self.prune_window = Some(window.min(self.max_prune_window));
        }
    }

    pub fn status(&self) -> MemoryStatus {
        self.status
    }

    pub fn peak(&self) -> u64 {
        self.peak
    }

    pub fn exceeded(&self) -> u64 {
        self.exceeded
    }

    pub fn allocation_failures(&self) -> u64 {
        self.allocation_failures
    }

    /// True once the model has run long enough for its own size to be the assignment basis.
    pub fn established(&self) -> bool {
        self.buckets >= ESTABLISHED_BUCKETS
    }

    /// Bytes new series may still take before the hard limit; `None` without a limit.
    pub fn new_series_budget(&self) -> Option<u64> {
        let limit = self.limit?;
        if self.refusing {
            return Some(0);
        }
        Some(limit.saturating_sub(self.bytes + self.added))
    }

    /// New series took `bytes`; `refused` says whether some were refused in the bucket starting
    /// at `bucket_start`. Crossing the limit here stops further new series at once.
    pub fn spent(&mut self, bytes: u64, refused: bool, bucket_start: i64) {
        self.added += bytes;
        if refused && self.last_failure_bucket != Some(bucket_start) {
            self.last_failure_bucket = Some(bucket_start);
            self.allocation_failures += 1;
        }
        if refused || self.new_series_budget() == Some(0) {
            self.measured(self.bytes + self.added);
        }
    }

    /// Records a measurement of the whole model and updates the allowance with hysteresis.
    pub fn measured(&mut self, bytes: u64) {
        self.bytes = bytes;
        self.added = 0;
        self.peak = self.peak.max(bytes);
        let Some(limit) = self.limit else {
            self.refusing = false;
            return;
        };
        if !self.refusing && bytes > limit {
            self.refusing = true;
            self.exceeded = bytes - limit;
            self.status = MemoryStatus::HardLimit;
        } else if self.refusing && bytes < limit / 50 * 49 {
            self.refusing = false;
            self.status = if self.prune_window.is_some() {
                MemoryStatus::SoftLimit
            } else {
                MemoryStatus::Ok
            };
        }
    }

    /// Called once a bucket ending at `bucket_end` (ms) is finalized and measured: the start of
    /// the oldest `last_seen` to keep, when series must be pruned now.
    pub fn prune_before(&mut self, bucket_end: i64) -> Option<i64> {
        self.buckets += 1;
        let limit = self.limit?;
        let above = self.bytes > limit / 5 * 3;
        if self.prune_window.is_none() && !above {
            return None;
        }
        if self
            .last_prune
            .is_some_and(|last| bucket_end < last + PRUNE_EVERY_MS)
        {
            return None;
        }
        let elapsed = self.last_prune.map_or(0, |last| bucket_end - last);
        self.last_prune = Some(bucket_end);
        let window = match self.prune_window {
            Some(window) => window,
            None => {
                if self.status == MemoryStatus::Ok {
                    self.status = MemoryStatus::SoftLimit;
                }
                self.max_prune_window
            }
        };
        if !above {
            // Memory is back under the threshold: relax the window; at its widest, stop.
            let wider = window.saturating_add(elapsed);
            if wider >= self.max_prune_window {
                self.prune_window = None;
                if self.status == MemoryStatus::SoftLimit {
                    self.status = MemoryStatus::Ok;
                }
            } else {
                self.prune_window = Some(wider);
            }
            return None;
        }
        let floor = (MIN_PRUNE_BUCKETS * self.bucket_span).max(PRUNE_EVERY_MS);
        let next = ((window as f64 * PRUNE_SHRINK) as i64).max(floor.min(self.max_prune_window));
        self.prune_window = Some(next);
        Some(bucket_end - window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn monitor(limit: u64) -> MemoryMonitor {
        let mut m = MemoryMonitor::default();
        m.configure(Some(limit), 30 * 24 * HOUR, HOUR);
        m
    }

    #[test]
    fn no_limit_means_no_decisions() {
        let mut m = MemoryMonitor::default();
        m.measured(u64::MAX / 2);
        assert_eq!(m.new_series_budget(), None);
        assert_eq!(m.prune_before(HOUR), None);
        assert_eq!(m.status(), MemoryStatus::Ok);
        assert_eq!(m.peak(), u64::MAX / 2);
    }

    #[test]
    fn hard_limit_refuses_then_recovers_below_the_low_limit() {
        let mut m = monitor(1000);
        m.measured(900);
        assert_eq!(m.new_series_budget(), Some(100));
        m.spent(150, false, 0);
        assert_eq!(m.status(), MemoryStatus::HardLimit);
        assert_eq!(m.exceeded(), 50);
        assert_eq!(m.new_series_budget(), Some(0));
        m.spent(0, true, 0);
        m.spent(0, true, 0);
        m.spent(0, true, HOUR);
        assert_eq!(m.allocation_failures(), 2, "one per bucket");
        // 990 is not below 49/50 of the limit: still refusing.
        m.measured(990);
        assert_eq!(m.new_series_budget(), Some(0));
        m.measured(970);
        assert_eq!(m.new_series_budget(), Some(30));
        assert_eq!(m.status(), MemoryStatus::Ok);
        assert_eq!(m.peak(), 1050);
    }

    #[test]
    fn soft_limit_prunes_with_a_shrinking_window_and_ends_when_memory_falls() {
        let mut m = monitor(1000);
        m.measured(500);
        assert_eq!(m.prune_before(HOUR), None, "below 3/5: no pruning");
        m.measured(700);
        let first = m.prune_before(2 * HOUR).unwrap();
        assert_eq!(first, 2 * HOUR - 30 * 24 * HOUR);
        assert_eq!(m.status(), MemoryStatus::SoftLimit);
        assert_eq!(m.prune_before(2 * HOUR + 1), None, "at most once an hour");
        let second = m.prune_before(3 * HOUR).unwrap();
        assert!(
            second > first + HOUR,
            "the window shrank: {second} vs {first}"
        );
        let mut last = second;
        for hour in 4..60 {
            if let Some(before) = m.prune_before(hour * HOUR) {
                assert!(hour * HOUR - before >= 4 * HOUR, "never below the floor");
                last = before;
            }
        }
        assert_eq!(
            59 * HOUR - last,
            4 * HOUR,
            "window down to its floor of 4 buckets"
        );
        // Memory falls: the window widens back and pruning ends.
        m.measured(100);
        let mut hour = 60;
        while m.status() == MemoryStatus::SoftLimit {
            hour += 1;
            assert_eq!(m.prune_before(hour * HOUR), None);
            assert!(hour < 2000, "pruning never ended");
        }
        assert_eq!(m.status(), MemoryStatus::Ok);
    }

    #[test]
    fn established_after_twenty_buckets() {
        let mut m = MemoryMonitor::default();
        for i in 0..ESTABLISHED_BUCKETS {
            assert!(!m.established());
            m.prune_before(i as i64 * HOUR);
        }
        assert!(m.established());
    }
}
