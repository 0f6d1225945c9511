//! One-step-ahead predictors of a bucket feature: a level, optionally plus a seasonal profile
//! (additive Holt-Winters without trend), each tracking how well it has been predicting.
//!
//! Owns the prediction maths only. `series` runs several of these side by side (fast level, slow
//! level, daily, weekly) and scores against whichever has recently predicted best, so seasonality
//! is detected from the data (a profile that does not cut the error is never used) and dropped
//! again when the data stops following it.

use serde::{Deserialize, Serialize};

use crate::model::profile::Profile;

/// Most slots a profile keeps: finer periods share slots (piecewise-constant profile), which
/// bounds the memory of a weekly profile on short buckets.
const MAX_SLOTS: i64 = 288;
/// A slot forgets its past over about this many cycles.
const SLOT_MEMORY_CYCLES: f64 = 4.0;
/// Memory of the prediction error, in buckets.
const ERROR_MEMORY: f64 = 200.0;
/// Memory of the selection error, in days of buckets (bounded below and above in buckets): long
/// enough to cover whole daily cycles, so predictors are compared over the same mix of quiet
/// stretches and transitions rather than over the last few hours.
const SELECTION_DAYS: i64 = 2;
const SELECTION_MEMORY_MIN: f64 = 200.0;
const SELECTION_MEMORY_MAX: f64 = 4000.0;
const SWITCH_EVIDENCE_MIN: f64 = 48.0;
/// A learnt value further than this many standard deviations out is winsorized to this distance.
const OUTLIER_SIGMAS: f64 = 4.0;
/// This many outliers in a row on the same side are a level shift, not a spike.
const SHIFT_RUN: i32 = 3;
/// After a level shift the error is at least (shift / SHIFT_SPREAD)^2, so the series is not
/// flagged again at full strength every time it moves between levels it has already visited.
const SHIFT_SPREAD: f64 = 3.0;
/// After this many cycles a profile's per-slot counts are freed even if some slot (one the
/// series never had data in) is still early in its learning.
const COUNT_CYCLES: i64 = SLOT_MEMORY_CYCLES as i64 + 2;

/// Field widths are chosen for memory (a series holds four of these): periods and spans fit
/// `u32`, and the level memory and error weight are small whole numbers, exact in `f32`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Predictor {
    /// Seasonal period in seconds; 0 for a plain level.
    period: u32,
    /// Seconds of data a slot covers, and the bucket span.
    slot_secs: u32,
    span: u32,
    /// Slots of the profile (0 for a plain level).
    slots: u32,
    /// The level forgets its past over about this many buckets.
    level_memory: f32,
    /// Effective number of buckets behind `error` (a whole number up to `ERROR_MEMORY`).
    error_weight: f32,
    updates: u32,
    /// Consecutive outliers (sign = side).
    outlier_run: i32,
    level: f64,
    /// Bucket time at which the first value was learnt (seconds).
    started: i64,
    /// Exponentially weighted mean squared one-step error since the predictor became ready.
    error: f64,
    /// The sum of the residuals of the current outlier run.
    run_residuals: f64,
    /// Long-memory mean squared one-step error, and the buckets behind it: what predictors are
    /// compared on (`error` forgets too fast for a fair comparison across a cycle).
    selection_error: f64,
    selection_weight: f64,
    /// Allocated on the first value learnt, and only for a seasonal predictor.
    profile: Option<Box<Profile>>,
}

impl Predictor {
    /// A plain level with the given memory.
    pub fn level(level_memory: f64) -> Predictor {
        Predictor::seasonal(0, 1, level_memory)
    }

    /// A level plus a profile of `period` seconds on buckets of `span` seconds.
    pub fn seasonal(period: i64, span: i64, level_memory: f64) -> Predictor {
        let clamp = |v: i64| v.clamp(0, i64::from(u32::MAX)) as u32;
        let span = span.max(1);
        let (slots, slot_secs) = if period > 0 {
            let buckets = (period / span).max(1);
            // Whole buckets per slot, so a slot never straddles two bucket phases.
            let per_slot = (buckets + MAX_SLOTS - 1) / MAX_SLOTS;
            let slots = (buckets / per_slot).max(1);
            (slots, (per_slot * span).max(1))
        } else {
            (0, 1)
        };
        Predictor {
            period: clamp(period),
            slot_secs: clamp(slot_secs),
            span: clamp(span),
            slots: clamp(slots),
            level_memory: level_memory as f32,
            error_weight: 0.0,
            updates: 0,
            outlier_run: 0,
            level: 0.0,
            started: 0,
            error: 0.0,
            run_residuals: 0.0,
            selection_error: 0.0,
            selection_weight: 0.0,
            profile: None,
        }
    }

    pub fn period(&self) -> i64 {
        i64::from(self.period)
    }

    /// The bucket span in seconds (1 for a plain level).
    pub fn span(&self) -> i64 {
        i64::from(self.span)
    }

    /// Seconds of the cycle one profile slot covers (a bucket span, or several where the cycle
    /// has more buckets than a profile keeps slots).
    pub fn slot_secs(&self) -> i64 {
        i64::from(self.slot_secs)
    }

    fn slot(&self, time: i64) -> Option<usize> {
        if self.slots == 0 {
            return None;
        }
        let phase = time.rem_euclid(self.period());
        Some(((phase / i64::from(self.slot_secs)) as usize).min(self.slots as usize - 1))
    }

    /// The profile's value at `time` (0 without a profile).
    fn seasonal_at(&self, time: i64) -> f64 {
        match (&self.profile, self.slot(time)) {
            (Some(profile), Some(slot)) => profile.get(slot),
            _ => 0.0,
        }
    }

    /// The value expected at bucket time `time` (seconds).
    pub fn predict(&self, time: i64) -> f64 {
        self.level + self.seasonal_at(time)
    }

    /// True once a whole cycle has been learnt and errors have been tracked for a while.
    pub fn ready(&self, time: i64) -> bool {
        self.updates > 0 && time - self.started >= self.period() && self.error_weight >= 8.0
    }

    /// The recent mean squared one-step error.
    pub fn error(&self) -> f64 {
        self.error
    }

    /// Effective number of buckets behind `error`.
    pub fn error_weight(&self) -> f64 {
        f64::from(self.error_weight)
    }

    /// The long-memory mean squared error predictors are compared on.
    pub fn selection_error(&self) -> f64 {
        self.selection_error
    }

    /// Buckets behind `selection_error` (up to its memory).
    pub fn selection_weight(&self) -> f64 {
        self.selection_weight
    }

    fn buckets_per_day(&self) -> f64 {
        (86_400 / i64::from(self.span.max(1))).max(1) as f64
    }

    fn selection_memory(&self) -> f64 {
        (SELECTION_DAYS as f64 * self.buckets_per_day())
            .clamp(SELECTION_MEMORY_MIN, SELECTION_MEMORY_MAX)
    }

    /// Buckets this predictor's selection error must cover before it may replace the active
    /// one, since an error measured over a quiet stretch of the day is low by luck: a day of them,
    /// or two of its own cycles if that is shorter (an hourly profile proves itself in hours).
    pub fn switch_evidence(&self) -> f64 {
        let own_cycles = 2.0 * (self.period() / i64::from(self.span.max(1))) as f64;
        self.buckets_per_day()
            .min(own_cycles.max(SWITCH_EVIDENCE_MIN))
            .clamp(SWITCH_EVIDENCE_MIN, self.selection_memory())
    }

    /// Learns one bucket value robustly: judged against this predictor's own expectation (the
    /// error floored by `variance_floor`), an outlier is winsorized, and a run of them on one
    /// side is a level shift the level jumps to. True when it was.
    pub fn observe(&mut self, time: i64, value: f64, variance_floor: f64) -> bool {
        let variance = self.error.max(variance_floor);
        let sd = variance.sqrt();
        let expected = self.predict(time);
        let residual = value - expected;
        let cap = OUTLIER_SIGMAS * sd;
        if self.error_weight < 8.0 || residual.abs() <= cap {
            self.outlier_run = 0;
            self.run_residuals = 0.0;
            self.learn(time, value, cap * cap);
            return false;
        }
        let side = if residual > 0.0 { 1 } else { -1 };
        if self.outlier_run.signum() != side {
            self.outlier_run = 0;
            self.run_residuals = 0.0;
        }
        self.outlier_run += side;
        self.run_residuals += residual;
        if self.outlier_run.abs() >= SHIFT_RUN {
            // The series has moved: jump to the new level instead of crawling towards it,
            // and remember that it moves by this much.
            let shift = self.run_residuals / self.outlier_run.abs() as f64;
            let spread = shift / SHIFT_SPREAD;
            self.level += shift;
            self.error = self.error.max(spread * spread);
            self.outlier_run = 0;
            self.run_residuals = 0.0;
            return true;
        }
        self.learn(time, expected + side as f64 * cap, cap * cap);
        false
    }

    /// Learns `value`; `error_cap` bounds the squared error one bucket can add, so a spike does
    /// not ruin the error estimate.
    fn learn(&mut self, time: i64, value: f64, error_cap: f64) {
        let period = self.period();
        if self.updates == 0 {
            self.level = value;
            self.started = time;
            self.updates = 1;
            if let Some(slot) = self.slot(time) {
                // The first value is the level (its slot's offset stays 0, not yet counted as
                // learnt): storage starts from this slot.
                self.profile = Some(Box::new(Profile::new(self.slots as usize, slot)));
            }
            return;
        }
        let residual = value - self.predict(time);
        if time - self.started >= period {
            self.error_weight = (self.error_weight + 1.0).min(ERROR_MEMORY as f32);
            let rate = 1.0 / f64::from(self.error_weight);
            let squared = (residual * residual).min(error_cap);
            self.error += rate * (squared - self.error);
            self.selection_weight = (self.selection_weight + 1.0).min(self.selection_memory());
            self.selection_error += (squared - self.selection_error) / self.selection_weight;
        }
        self.updates = self.updates.saturating_add(1);
        let seasonal = self.seasonal_at(time);
        let slot = self.slot(time);
        if let (Some(profile), Some(slot)) = (self.profile.as_deref_mut(), slot) {
            let per_cycle = (f64::from(self.slot_secs) / f64::from(self.span)).max(1.0);
            let floor = 1.0 / (SLOT_MEMORY_CYCLES * per_cycle);
            // Counts are freed once they no longer change the rate: the rate is then the floor
            // (or 1/255 where a slot spans more buckets than a u8 counts).
            let rate = match profile.count(slot) {
                Some(count) => (1.0 / f64::from(count.saturating_add(1))).max(floor),
                None => (1.0 / 255.0f64).max(floor),
            };
            let target = value - self.level;
            profile.set(slot, seasonal + rate * (target - seasonal));
            let saturated = (SLOT_MEMORY_CYCLES * per_cycle).ceil().min(255.0) as u8 - 1;
            profile.release_counts(
                slot,
                saturated,
                time - self.started >= COUNT_CYCLES * period,
            );
        }
        if time - self.started < period {
            // First cycle: the level stays at the first value, so the profile records the
            // pattern's shape exactly instead of its difference from a drifting running mean.
            return;
        }
        let level_rate = (1.0 / f64::from(self.updates)).max(1.0 / f64::from(self.level_memory));
        self.level += level_rate * (value - seasonal - self.level);
    }

    /// The weight the level gives the newest bucket (forecast intervals grow with it).
    pub fn level_rate(&self) -> f64 {
        (1.0 / f64::from(self.updates.max(1))).max(1.0 / f64::from(self.level_memory))
    }

    /// The largest magnitude in the state (level, error, current run, profile): while it and
    /// the values learnt stay far below `f64::MAX`'s square root, learning cannot overflow.
    pub fn magnitude(&self) -> f64 {
        let profile = self.profile.as_ref().map_or(0.0, |p| p.max_abs());
        self.level
            .abs()
            .max(self.error.sqrt())
            .max(self.run_residuals.abs())
            .max(self.selection_error.sqrt())
            .max(profile)
    }

    /// Bytes held: the struct (it lives in the series' vector) plus its profile on the heap,
    /// measured by length so the figure depends on the state alone.
    pub fn approximate_bytes(&self) -> usize {
        std::mem::size_of::<Predictor>()
            + self
                .profile
                .as_ref()
                .map_or(0, |p| std::mem::size_of::<Profile>() + p.heap_bytes())
    }
}
