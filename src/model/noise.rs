//! How noisy each part of the day usually is, relative to a series' recent prediction error.
//!
//! Owns the time-of-day widening of a series' spread. Real series are often noisier at some
//! hours than others (busy afternoons, nightly batch jobs), day after day. The series model's
//! error forgets over a few hundred buckets, so at the start of a noisy stretch it still
//! remembers the quiet one before it, and the stretch's ordinary noise scores as anomalous every
//! day. Each two-hour slot of the day keeps a long-memory mean of the squared standardized
//! residuals seen in it; where that mean is above 1, the slot's residuals have regularly been
//! larger than the recent error claimed, and the spread is widened by that factor.
//!
//! Only widened, never narrowed: a quiet hour's occasional burst is normal in real series far
//! more often than a narrowed spread allows. Only on buckets shorter than a slot, so every slot
//! sees each day's data. The series model starts the slots afresh when a longer cycle takes
//! over: a first weekend misfit by the daily profile is not noise of the hours it fell in.
//! Measurements: `docs/model-experiments.md`.
//!
//! Stored as twelve `u16` fixed-point values (24 bytes): the model of every series carries one.

use serde::{Deserialize, Serialize};

const DAY: i64 = 86_400;
/// Seconds of the day one slot covers.
const SLOT_SECS: i64 = 2 * 3_600;
const SLOTS: usize = (DAY / SLOT_SECS) as usize;
/// A slot's mean remembers about this many days of its buckets.
const MEMORY_DAYS: f64 = 10.0;
/// ...but never fewer updates than this, so one update is never below the fixed-point step.
const MIN_RATE: f64 = 1.0 / 512.0;
/// ...nor more than this many, so a slot's mean is steady enough to widen by.
const MAX_RATE: f64 = 1.0 / 100.0;
/// Standardized residuals enter the means winsorized at this size: one spike is not a noisy hour.
const CLAMP_SIGMAS: f64 = 6.0;
/// Fixed-point steps per unit of variance ratio (the largest stored ratio, 36, fits a `u16`).
const UNIT: f64 = 1024.0;
/// The widening never exceeds this factor of variance.
const MAX_WIDENING: f64 = 36.0;

/// Per slot of the day, the mean squared standardized residual, in units of `1 / UNIT`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyNoise {
    slots: [u16; SLOTS],
}

impl Default for DailyNoise {
    fn default() -> Self {
        DailyNoise {
            slots: [UNIT as u16; SLOTS],
        }
    }
}

impl DailyNoise {
    /// Whether buckets of `span_secs` are short enough for slots of the day to mean anything.
    fn applies_to(span_secs: i64) -> bool {
        span_secs > 0 && span_secs < SLOT_SECS
    }

    fn slot(time: i64) -> usize {
        (time.rem_euclid(DAY) / SLOT_SECS) as usize
    }

    /// The factor (at least 1) by which the recent error's variance is widened at `time`.
    pub fn widening(&self, time: i64) -> f64 {
        (f64::from(self.slots[Self::slot(time)]) / UNIT).clamp(1.0, MAX_WIDENING)
    }

    /// Learns the residual of a bucket at `time`, standardized by the recent error alone (not
    /// widened), on buckets of `span_secs`.
    pub fn learn(&mut self, time: i64, standardized: f64, span_secs: i64) {
        if !Self::applies_to(span_secs) || !standardized.is_finite() {
            return;
        }
        let per_day = (SLOT_SECS / span_secs) as f64;
        let rate = (1.0 / (MEMORY_DAYS * per_day)).clamp(MIN_RATE, MAX_RATE);
        let clamped = standardized.clamp(-CLAMP_SIGMAS, CLAMP_SIGMAS);
        let slot = &mut self.slots[Self::slot(time)];
        let mean = f64::from(*slot) / UNIT;
        let next = mean + rate * (clamped * clamped - mean);
        *slot = (next * UNIT).round().clamp(0.0, f64::from(u16::MAX)) as u16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPAN: i64 = 300;
    const HOUR: i64 = 3_600;

    /// Learns `days` days where the residual at each bucket is `residual(hour)`.
    fn learnt(days: i64, residual: impl Fn(i64) -> f64) -> DailyNoise {
        let mut noise = DailyNoise::default();
        for bucket in 0..days * DAY / SPAN {
            let time = bucket * SPAN;
            noise.learn(time, residual(time % DAY / HOUR), SPAN);
        }
        noise
    }

    #[test]
    fn hours_regularly_noisier_than_the_recent_error_are_widened() {
        // Residuals of 3 recent-error units every afternoon (14:00-16:00), 1 otherwise.
        let noise = learnt(30, |hour| if (14..16).contains(&hour) { 3.0 } else { 1.0 });
        let afternoon = noise.widening(15 * HOUR);
        assert!((afternoon - 9.0).abs() < 0.5, "afternoon {afternoon}");
        assert!((noise.widening(3 * HOUR) - 1.0).abs() < 0.05);
    }

    #[test]
    fn quiet_hours_are_never_narrowed_and_spikes_are_winsorized() {
        let quiet = learnt(30, |_| 0.1);
        assert_eq!(quiet.widening(HOUR), 1.0);
        // One enormous residual a day is a spike, not a noisy hour.
        let mut noise = DailyNoise::default();
        for day in 0..30 {
            noise.learn(day * DAY + 10 * HOUR, 1e9, SPAN);
        }
        assert!(noise.widening(10 * HOUR) <= MAX_WIDENING);
        assert!(noise.widening(10 * HOUR) > 1.0);
    }

    #[test]
    fn long_buckets_and_non_finite_residuals_learn_nothing() {
        let mut noise = DailyNoise::default();
        noise.learn(0, 5.0, 2 * HOUR);
        noise.learn(0, f64::NAN, SPAN);
        noise.learn(0, f64::INFINITY, SPAN);
        assert_eq!(noise, DailyNoise::default());
        assert!(!DailyNoise::applies_to(HOUR * 2));
        assert!(DailyNoise::applies_to(HOUR));
    }
}
