//! The job's recent misfits: the large raw scores each series produced lately, kept so that when
//! a series starts predicting with a seasonal component it lacked, the misfits that component
//! explains leave the job's score history ([`ScoreNormalizer::forget`]). Only series that may
//! still learn a longer cycle note theirs (`DetectorModel::may_explain_misfits`): in a job whose
//! series all follow their weekly cycle the ledger is empty.
//!
//! Why: a series learning a weekly pattern misfits its first weekend badly (the daily profile
//! expects a weekday), and a series with a daily cycle misfits its first days. Those misfits say
//! the model was young, not that the job is noisy; left in the history they discount every later
//! anomaly of the job for as long as the history remembers them (months of hourly buckets).
//! Owns only that bookkeeping: which misfits were explained is the series model's call
//! (`SeriesModel::update`), what a raw score means is `score`'s.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::model::score::{HistoryDecay, ScoreNormalizer};

/// Raw scores below this (p > 0.1%) are too common to move the history's excess much: not kept
/// (at 2.0 the ledger of a calm 200-series job held ten times as many, for the same scores).
const MIN_RAW: f64 = 3.0;
/// At most this many misfits are kept (the oldest go first), 8 KB: a series' first weekend is
/// a few dozen, while a job with many series must not pay per series for a ledger that matters
/// less the more series share the history (a calm 200-series job notes about a thousand a week).
const CAPACITY: usize = 512;
/// Misfits older than the longest fixed period a series adopts (a week) are not kept.
const HORIZON_SECS: i64 = 7 * 86_400;

/// 16 bytes: the ledger is part of the model's memory.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Misfit {
    /// Bucket start, epoch ms.
    bucket_start: i64,
    series: u32,
    detector: u16,
    /// The raw score in hundredths (raw scores are at most 308).
    raw_hundredths: u16,
}

impl Misfit {
    fn raw(&self) -> f64 {
        f64::from(self.raw_hundredths) / 100.0
    }
}

/// Recent large raw scores in bucket order, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MisfitLedger {
    misfits: VecDeque<Misfit>,
}

impl MisfitLedger {
    /// Notes one series' raw score in the bucket starting at `bucket_start` (ms), which is the
    /// newest bucket noted so far, if it is large and `may_be_explained` says the series may yet
    /// learn what explains it (asked only then: most scores are small).
    pub fn note(
        &mut self,
        detector: usize,
        series: u32,
        bucket_start: i64,
        raw: f64,
        may_be_explained: impl FnOnce() -> bool,
    ) {
        if raw < MIN_RAW || !raw.is_finite() || !may_be_explained() {
            return;
        }
        while self
            .misfits
            .front()
            .is_some_and(|m| m.bucket_start < bucket_start - HORIZON_SECS * 1000)
            || self.misfits.len() >= CAPACITY
        {
            self.misfits.pop_front();
        }
        self.misfits.push_back(Misfit {
            bucket_start,
            series,
            detector: detector.min(usize::from(u16::MAX)) as u16,
            raw_hundredths: (raw * 100.0).round().min(f64::from(u16::MAX)) as u16,
        });
    }

    /// The series now explains its last `period_secs`: its misfits since then leave `history`,
    /// which has aged by one bucket (`bucket_span_ms`) per bucket since each was noted, up to the
    /// bucket starting at `now` (ms).
    pub fn explained(
        &mut self,
        detector: usize,
        series: u32,
        period_secs: i64,
        now: i64,
        bucket_span_ms: i64,
        history: &mut ScoreNormalizer,
    ) {
        let since = now - period_secs.min(HORIZON_SECS) * 1000;
        let decay = HistoryDecay::for_bucket_span(bucket_span_ms / 1000);
        self.misfits.retain(|m| {
            let explained = usize::from(m.detector) == detector
                && m.series == series
                && m.bucket_start >= since;
            if explained {
                let age = (now - m.bucket_start) / bucket_span_ms.max(1);
                history.forget(m.raw(), age.max(0) as u64, decay);
            }
            !explained
        });
    }

    /// A detector's series were renumbered (old id -> new id, `u32::MAX` = gone).
    pub fn remap(&mut self, detector: usize, remap: &[u32]) {
        self.misfits.retain_mut(|m| {
            if usize::from(m.detector) != detector {
                return true;
            }
            m.series = remap.get(m.series as usize).copied().unwrap_or(u32::MAX);
            m.series != u32::MAX
        });
    }

    /// The bytes the misfits hold beyond the ledger itself.
    pub fn heap_bytes(&self) -> usize {
        self.misfits.len() * std::mem::size_of::<Misfit>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::score::raw_score;

    const HOUR_MS: i64 = 3_600_000;

    /// A history of `buckets` calibrated buckets (raw 0.3) plus the ledger's misfits.
    fn history_with(ledger: &mut MisfitLedger, misfits: &[(u32, i64, f64)]) -> ScoreNormalizer {
        let mut history = ScoreNormalizer::new();
        let mut pending = misfits.iter().peekable();
        for bucket in 0..400 {
            let start = bucket * HOUR_MS;
            history.observe(0.3);
            while let Some(&&(series, at, raw)) = pending.peek() {
                if at != start {
                    break;
                }
                history.observe(raw);
                ledger.note(0, series, start, raw, || true);
                pending.next();
            }
            history.end_bucket(HistoryDecay::for_bucket_span(HOUR_MS / 1000));
        }
        history
    }

    #[test]
    fn explained_misfits_leave_the_history_and_others_stay() {
        // Series 1 misfits 20 buckets in a row (a first weekend); series 2 has two anomalies.
        let mut misfits: Vec<(u32, i64, f64)> = (300..320).map(|b| (1, b * HOUR_MS, 9.0)).collect();
        misfits.push((2, 310 * HOUR_MS, 12.0));
        misfits.push((2, 390 * HOUR_MS, 12.0));
        misfits.sort_by_key(|m| m.1);
        let mut ledger = MisfitLedger::default();
        let mut history = history_with(&mut ledger, &misfits);
        let before = history.normalization();
        assert!(before.score(1e-9) < 5.0, "{before:?}");

        ledger.explained(0, 1, 7 * 86_400, 400 * HOUR_MS, HOUR_MS, &mut history);
        let after = history.normalization();
        assert!(
            after.score(1e-9) > 2.0 * before.score(1e-9).max(1.0),
            "{after:?}"
        );
        // Series 2's anomalies are still in the history: a second explanation changes nothing.
        let kept = after.score(1e-12);
        assert!(kept < ScoreNormalizer::new().normalization().score(1e-12));
        ledger.explained(0, 1, 7 * 86_400, 400 * HOUR_MS, HOUR_MS, &mut history);
        assert_eq!(history.normalization().score(1e-12), kept);
    }

    #[test]
    fn only_misfits_within_the_period_are_explained() {
        let misfits = [(1, 300 * HOUR_MS, 9.0), (1, 390 * HOUR_MS, 9.0)];
        let mut ledger = MisfitLedger::default();
        let mut history = history_with(&mut ledger, &misfits);
        // A daily component explains the last day only.
        ledger.explained(0, 1, 86_400, 400 * HOUR_MS, HOUR_MS, &mut history);
        assert_eq!(ledger.misfits.len(), 1);
        assert_eq!(ledger.misfits[0].bucket_start, 300 * HOUR_MS);
    }

    #[test]
    fn small_scores_series_past_their_longest_cycle_old_misfits_and_overflow_are_not_kept() {
        let mut ledger = MisfitLedger::default();
        ledger.note(0, 1, 0, raw_score(0.002), || true);
        ledger.note(0, 1, 0, 5.0, || false);
        assert!(ledger.misfits.is_empty());
        ledger.note(0, 1, 0, 5.0, || true);
        ledger.note(0, 1, (HORIZON_SECS + 3600) * 1000, 5.0, || true);
        assert_eq!(ledger.misfits.len(), 1);
        for i in 0..CAPACITY as i64 + 10 {
            ledger.note(0, 2, (HORIZON_SECS + 3600) * 1000 + i, 5.0, || true);
        }
        assert_eq!(ledger.misfits.len(), CAPACITY);
        assert!(ledger.misfits.iter().all(|m| m.series == 2));
    }

    #[test]
    fn renumbering_follows_the_series_and_drops_the_gone() {
        let mut ledger = MisfitLedger::default();
        ledger.note(0, 0, 0, 5.0, || true);
        ledger.note(0, 2, 0, 5.0, || true);
        ledger.note(1, 2, 0, 5.0, || true);
        ledger.remap(0, &[u32::MAX, 0, 1]);
        let kept: Vec<(u16, u32)> = ledger
            .misfits
            .iter()
            .map(|m| (m.detector, m.series))
            .collect();
        assert_eq!(kept, [(0, 1), (1, 2)]);
    }
}
