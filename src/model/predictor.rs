//! One-step-ahead predictors of a bucket feature: a level, optionally plus a seasonal profile
//! (additive Holt-Winters) or a slope (a local linear trend), each tracking how well it has been
//! predicting.
//!
//! Owns the prediction maths only, including how far ahead a prediction can be trusted
//! (forecasts). `series` runs several of these side by side (fast level, slow level, trend,
//! daily, weekly) and scores against whichever has recently predicted best, so seasonality and
//! trend are detected from the data (a component that does not cut the error is never used) and
//! dropped again when the data stops following it.

use serde::{Deserialize, Serialize};

use crate::model::profile::Profile;

/// Most slots a profile keeps: finer periods share slots (piecewise-constant profile), which
/// bounds the memory of a weekly profile on short buckets.
const MAX_SLOTS: i64 = 288;
/// A slot forgets its past over about this many cycles.
const SLOT_MEMORY_CYCLES: f64 = 4.0;
/// Memory of the prediction error, in buckets (it fits the `u8` that counts them).
const ERROR_MEMORY: u8 = 200;
/// Memory of the selection error, in days of buckets (bounded below and above in buckets): long
/// enough to cover whole daily cycles, so predictors are compared over the same mix of quiet
/// stretches and transitions rather than over the last few hours. The bound above fits the `u16`
/// that counts the buckets.
const SELECTION_DAYS: i64 = 2;
const SELECTION_MEMORY_MIN: f64 = 200.0;
const SELECTION_MEMORY_MAX: f64 = 4000.0;
const SWITCH_EVIDENCE_MIN: f64 = 48.0;
/// A learnt value further than this many standard deviations out is winsorized to this distance.
const OUTLIER_SIGMAS: f64 = 4.0;
/// This many outliers in a row on the same side are a level shift, not a spike.
const SHIFT_RUN: i8 = 3;
/// After a level shift the error is at least (shift / SHIFT_SPREAD)^2, so the series is not
/// flagged again at full strength every time it moves between levels it has already visited...
const SHIFT_SPREAD: f64 = 3.0;
/// ...but at most this many times what it was: three buckets say the level moved, not that the
/// noise grew with the size of the move. Unbounded, one three-hour burst of a hundred times the
/// level left a spread of the burst's size for hundreds of buckets, and the series' next
/// anomalies went unseen.
const SHIFT_WIDENING_LIMIT: f64 = 4.0;
/// After this many cycles a profile's per-slot counts are freed even if some slot (one the
/// series never had data in) is still early in its learning.
const COUNT_CYCLES: i64 = SLOT_MEMORY_CYCLES as i64 + 2;
/// A forecast carries the slope on over about this many level memories, then flattens: a trend
/// learnt over hours says little about next week, so its effect is damped geometrically.
const TREND_REACH_MEMORIES: f64 = 8.0;

/// Field widths are chosen for memory (a series holds five of these): periods and spans fit
/// `u32`, the level memory is a small whole number, exact in `f32`, the error weights and the
/// outlier run are counts bounded by their memories, and the profile's layout (slots, slot
/// width) is derived from the period and span, not stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Predictor {
    /// Seasonal period in seconds; 0 for a plain level.
    period: u32,
    /// The bucket span in seconds.
    span: u32,
    /// The level forgets its past over about this many buckets.
    level_memory: f32,
    /// Effective number of buckets behind `error` (up to `ERROR_MEMORY`).
    error_weight: u8,
    /// Buckets behind `selection_error` (up to its memory).
    selection_weight: u16,
    updates: u32,
    /// Whether the level carries a slope (a trend candidate).
    trend: bool,
    /// Consecutive outliers (sign = side).
    outlier_run: i8,
    level: f64,
    /// Bucket time at which the first value was learnt (seconds).
    started: i64,
    /// Exponentially weighted mean squared one-step error since the predictor became ready.
    error: f64,
    /// The sum of the residuals of the current outlier run.
    run_residuals: f64,
    /// Long-memory mean squared one-step error: what predictors are compared on (`error`
    /// forgets too fast for a fair comparison across a cycle).
    selection_error: f64,
    /// Change of the level per bucket (0 unless `trend`).
    slope: f64,
    /// Allocated on the first value learnt, and only for a seasonal predictor.
    profile: Option<Box<Profile>>,
}

impl Predictor {
    /// A plain level with the given memory.
    pub fn level(level_memory: f64) -> Predictor {
        Predictor::seasonal(0, 1, level_memory)
    }

    /// A level with the given memory plus a slope: a local linear trend (Brown's double
    /// smoothing, see `learn`), which follows steady drift without lagging behind it.
    pub fn trend(level_memory: f64) -> Predictor {
        Predictor {
            trend: true,
            ..Predictor::level(level_memory)
        }
    }

    /// A level plus a profile of `period` seconds on buckets of `span` seconds.
    pub fn seasonal(period: i64, span: i64, level_memory: f64) -> Predictor {
        let clamp = |v: i64| v.clamp(0, i64::from(u32::MAX)) as u32;
        Predictor {
            period: clamp(period),
            span: clamp(span.max(1)),
            level_memory: level_memory as f32,
            error_weight: 0,
            selection_weight: 0,
            updates: 0,
            trend: false,
            outlier_run: 0,
            level: 0.0,
            started: 0,
            error: 0.0,
            run_residuals: 0.0,
            selection_error: 0.0,
            slope: 0.0,
            profile: None,
        }
    }

    pub fn period(&self) -> i64 {
        i64::from(self.period)
    }

    /// True for a plain level: no profile and no slope.
    pub fn is_plain(&self) -> bool {
        self.period == 0 && !self.trend
    }

    /// True for a trend candidate (a level with a slope).
    pub fn has_trend(&self) -> bool {
        self.trend
    }

    /// The profile's slots and the seconds of the cycle one covers (a bucket span, or several
    /// where the cycle has more buckets than a profile keeps slots); no slots without a period.
    fn layout(&self) -> (i64, i64) {
        let period = self.period();
        let span = i64::from(self.span.max(1));
        if period == 0 {
            return (0, 1);
        }
        let buckets = (period / span).max(1);
        // Whole buckets per slot, so a slot never straddles two bucket phases.
        let per_slot = (buckets + MAX_SLOTS - 1) / MAX_SLOTS;
        ((buckets / per_slot).max(1), per_slot * span)
    }

    /// The bucket span in seconds (1 for a plain level).
    pub fn span(&self) -> i64 {
        i64::from(self.span)
    }

    /// Seconds of the cycle one profile slot covers.
    pub fn slot_secs(&self) -> i64 {
        self.layout().1
    }

    fn slot(&self, time: i64) -> Option<usize> {
        let (slots, slot_secs) = self.layout();
        if slots == 0 {
            return None;
        }
        let phase = time.rem_euclid(self.period());
        Some(((phase / slot_secs) as usize).min(slots as usize - 1))
    }

    /// The profile's value at `time` (0 without a profile).
    fn seasonal_at(&self, time: i64) -> f64 {
        match (&self.profile, self.slot(time)) {
            (Some(profile), Some(slot)) => profile.get(slot),
            _ => 0.0,
        }
    }

    /// The value expected at bucket time `time` (seconds), the next bucket to learn.
    pub fn predict(&self, time: i64) -> f64 {
        self.level + self.slope + self.seasonal_at(time)
    }

    /// The value expected at `time`, `steps` buckets beyond the next one: the slope is carried
    /// on damped (see `TREND_REACH_MEMORIES`), so a forecast bends towards a level.
    pub fn predict_ahead(&self, time: i64, steps: u64) -> f64 {
        let damping = self.trend_damping();
        let carried = damping * (1.0 - damping.powf(steps as f64)) / (1.0 - damping);
        self.predict(time) + self.slope * carried
    }

    /// The factor by which the one-step error variance grows `steps` buckets further ahead: each
    /// step's own error moves the level by `rate` and the slope by `slope_rate`, which the
    /// damped slope then carries on (exponential smoothing's forecast variance, in closed form).
    pub fn ahead_variance_factor(&self, steps: u64) -> f64 {
        let n = steps as f64;
        let rate = self.level_rate();
        let slope_rate = self.slope_rate();
        if slope_rate == 0.0 {
            return 1.0 + n * rate * rate;
        }
        // Step j's error reaches the forecast through `rate + slope_rate * S_j`, where
        // S_j = d (1 - d^j) / (1 - d) is the damped slope's carry over j steps.
        let d = self.trend_damping();
        let c = d / (1.0 - d);
        let geometric = |r: f64| r * (1.0 - r.powf(n)) / (1.0 - r);
        let sum_s = c * (n - geometric(d));
        let sum_s2 = c * c * (n - 2.0 * geometric(d) + geometric(d * d));
        1.0 + n * rate * rate + 2.0 * rate * slope_rate * sum_s + slope_rate * slope_rate * sum_s2
    }

    /// The slope's damping per forecast step (only trend predictors have a slope).
    fn trend_damping(&self) -> f64 {
        1.0 - 1.0 / (TREND_REACH_MEMORIES * f64::from(self.level_memory).max(1.0))
    }

    /// True once a whole cycle has been learnt and errors have been tracked for a while.
    pub fn ready(&self, time: i64) -> bool {
        self.updates > 0 && time - self.started >= self.period() && self.error_weight >= 8
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
        f64::from(self.selection_weight)
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
        if self.error_weight < 8 || residual.abs() <= cap {
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
            // The slope learnt before the move says nothing about what follows it.
            self.slope = 0.0;
            let widest = SHIFT_WIDENING_LIMIT * variance;
            self.error = self.error.max((spread * spread).min(widest));
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
                let slots = self.layout().0 as usize;
                self.profile = Some(Box::new(Profile::new(slots, slot)));
            }
            return;
        }
        let residual = value - self.predict(time);
        if time - self.started >= period {
            self.error_weight = self.error_weight.saturating_add(1).min(ERROR_MEMORY);
            let rate = 1.0 / f64::from(self.error_weight);
            let squared = (residual * residual).min(error_cap);
            self.error += rate * (squared - self.error);
            self.selection_weight =
                (self.selection_weight.saturating_add(1)).min(self.selection_memory() as u16);
            self.selection_error += (squared - self.selection_error) / self.selection_weight();
        }
        self.updates = self.updates.saturating_add(1);
        let seasonal = self.seasonal_at(time);
        let slot = self.slot(time);
        let slot_secs = self.slot_secs();
        if let (Some(profile), Some(slot)) = (self.profile.as_deref_mut(), slot) {
            let per_cycle = (slot_secs as f64 / f64::from(self.span.max(1))).max(1.0);
            let floor = 1.0 / (SLOT_MEMORY_CYCLES * per_cycle);
            // Counts are freed once they no longer change the rate: the rate is then the floor
            // (or 1/255 where a slot spans more buckets than a u8 counts).
            let rate = match profile.count(slot) {
                Some(count) => (1.0 / f64::from(count.saturating_add(1))).max(floor),
                None => (1.0 / 255.0f64).max(floor),
            };
            let target = value - self.level - self.slope;
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
        // Error-correction form: without a slope this is plain exponential smoothing. With one,
        // it is Brown's double smoothing, whose slope rate (the square of the level's, over 4)
        // neither lags a steady trend nor overshoots it, and is unbiased on a linear one.
        let error = value - seasonal - self.level - self.slope;
        let slope_rate = self.slope_rate();
        self.level += self.slope + self.level_rate() * error;
        self.slope += slope_rate * error;
    }

    /// The weight the level gives the newest bucket (forecast intervals grow with it).
    fn level_rate(&self) -> f64 {
        (1.0 / f64::from(self.updates.max(1))).max(1.0 / f64::from(self.level_memory))
    }

    /// The weight the slope gives the newest one-step error (0 without a trend).
    fn slope_rate(&self) -> f64 {
        if self.trend {
            let rate = self.level_rate();
            rate * rate / 4.0
        } else {
            0.0
        }
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
            .max(self.slope.abs())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A trend predictor fed a ramp long enough for its rates to settle.
    fn ramp() -> Predictor {
        let mut p = Predictor::trend(12.0);
        for i in 0..200 {
            p.observe(i * 60, 3.0 * i as f64, 1e-6);
        }
        p
    }

    #[test]
    fn the_forecast_variance_is_the_closed_form_of_the_per_step_sum() {
        let p = ramp();
        let (rate, slope_rate, d) = (p.level_rate(), p.slope_rate(), p.trend_damping());
        for n in [0u64, 1, 2, 7, 100, 5000] {
            let mut explicit = 1.0;
            let mut carry = 0.0;
            for j in 1..=n {
                carry += d.powf(j as f64);
                explicit += (rate + slope_rate * carry).powi(2);
            }
            let closed = p.ahead_variance_factor(n);
            assert!(
                (closed - explicit).abs() < 1e-9 * explicit,
                "{n}: {closed} {explicit}"
            );
        }
        // Without a slope it is exponential smoothing's 1 + n rate^2.
        let level = Predictor::level(12.0);
        assert_eq!(level.ahead_variance_factor(3), 1.0 + 3.0);
    }

    #[test]
    fn a_ramp_is_followed_and_carried_on_damped() {
        let p = ramp();
        let next = p.predict(200 * 60);
        assert!((next - 3.0 * 200.0).abs() < 0.5, "{next}");
        assert!((p.slope - 3.0).abs() < 0.05, "{}", p.slope);
        let ahead = |steps: u64| p.predict_ahead((200 + steps as i64) * 60, steps) - next;
        assert!((ahead(1) - p.slope * p.trend_damping()).abs() < 1e-9);
        // Far ahead the slope has carried on over about `TREND_REACH_MEMORIES` level memories.
        let reach = p.slope * TREND_REACH_MEMORIES * 12.0;
        assert!(ahead(100_000) < reach && ahead(100_000) > 0.98 * reach);
        // A level shift forgets the slope: what follows the jump is not known yet.
        let mut shifted = p.clone();
        for i in 200..203 {
            shifted.observe(i * 60, 1e6, 1e-6);
        }
        assert_eq!(shifted.slope, 0.0);
    }
}
