//! One statistical model per series feature: what a bucket value usually looks like at a given
//! time, and how surprising a new one is.
//!
//! Owns the [`SeriesModel`] trait and today's implementation, [`AdaptiveModel`]. Knows nothing
//! about records, by/partition values or scores: the detector hands it one number per bucket with
//! the bucket's time, asks for a probability, then lets it learn. Prediction comes from
//! `predictor` (competing level and seasonal predictors), tail maths from `distribution`; periods
//! other than the fixed ones are found by `period` and managed in `series_periods`.

use serde::{Deserialize, Serialize};

use crate::model::distribution::{clamp_probability, student_t_upper_tail, CountDistribution};
use crate::model::function::Tail;
use crate::model::interval::Interval;
use crate::model::period::Periods;
use crate::model::predictor::Predictor;

/// What kind of number a feature is: counts get a count-aware variance floor and discrete tails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeatureKind {
    Count,
    Continuous,
}

/// How unusual one bucket value is under a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assessment {
    /// Tail probability on the requested side, in `[1e-308, 1]`.
    pub probability: f64,
    /// The value the model expected.
    pub typical: f64,
    /// False during warm-up: the probability is then 1 and says nothing.
    pub scored: bool,
    /// How much multi-bucket evidence (several unusual buckets in a row) rather than this bucket
    /// alone drove the probability, from -5 (single bucket) to +5 (multi-bucket), as ES reports.
    pub multi_bucket_impact: f64,
}

/// A per-series model of one bucket feature. Implementations must be deterministic and keep all
/// their state serializable (it is part of the model snapshot). Times are bucket starts in
/// seconds.
pub trait SeriesModel {
    fn new(kind: FeatureKind, bucket_span_secs: i64) -> Self;
    /// Scores `value` without learning from it.
    fn probability(&self, time: i64, value: f64, tail: Tail) -> Assessment;
    /// Learns one bucket value (`weight` 1 for an ordinary bucket).
    fn update(&mut self, time: i64, value: f64, weight: f64);
}

/// The model every series uses; changing it changes the snapshot format.
pub type ActiveModel = AdaptiveModel;

/// Buckets a series must have learnt before its probabilities mean anything.
pub const WARMUP_BUCKETS: u32 = 8;
/// A flat series still has a standard deviation of at least this fraction of its level.
const RELATIVE_SD_FLOOR: f64 = 1e-3;
/// One step of the data's resolution (e.g. 1 for integers) off a flat series is this many
/// standard deviations: a warning, not a catastrophe, yet still enough to register a level shift.
const RESOLUTION_SIGMAS: f64 = 5.0;
/// Variance floor when the level is exactly zero and nothing has ever moved.
const ABSOLUTE_VARIANCE_FLOOR: f64 = 1e-200;
/// Discrete tails are only worth computing for candidates (the continuous p decides the rest).
const DISCRETE_CHECK_BELOW: f64 = 0.05;
/// Level memories (buckets) of the plain-level predictors: one follows drift, one averages noise.
const FAST_LEVEL: f64 = 12.0;
const SLOW_LEVEL: f64 = 100.0;
/// Level memory of the trend candidate (its slope learns over about twice as long).
const TREND_LEVEL: f64 = 12.0;
/// The trend candidate is used only if its long-memory error is below this fraction of the best
/// plain level's: a slope amplifies noise and overshoots at every turn, so it must clearly pay.
const TREND_GAIN: f64 = 0.8;
/// Level memory of the seasonal predictors, in cycles: a level that moves within a cycle would
/// soak up part of the pattern and fight the profile for it.
const SEASONAL_LEVEL_CYCLES: f64 = 1.0;
/// A seasonal predictor is used only if its error is below this fraction of the best plain one.
const SEASONAL_GAIN: f64 = 0.85;
/// The active predictor is replaced only by one whose error is below this fraction of its own.
const SWITCH_GAIN: f64 = 0.9;

/// Weight of the newest bucket in the multi-bucket mean of standardized residuals.
const MULTI_BUCKET_RATE: f64 = 0.4;
/// Standardized residuals enter the multi-bucket mean clamped to this size.
const MULTI_BUCKET_CLAMP: f64 = 4.0;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;
const WEEK: i64 = 7 * DAY;

/// Competing predictors of a bucket feature (plain levels, a level with a slope, daily and weekly
/// profiles, and an hourly one on buckets shorter than the daily profile's slots), scored
/// against whichever has recently predicted best, with a Student-t residual whose degrees of
/// freedom grow with the data seen. Learning is robust: outliers are winsorized, a run of them on
/// one side is a level shift that moves every predictor at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveModel {
    kind: FeatureKind,
    updates: u32,
    predictors: Vec<Predictor>,
    /// Index of the predictor scores are computed against.
    active: usize,
    /// Smallest non-zero step seen between consecutive values: the data's granularity.
    resolution: f64,
    last_value: f64,
    /// Exponentially weighted mean of recent standardized residuals: multi-bucket evidence.
    recent: f64,
    /// The search for other periods and the found one's bookkeeping; `None` while a seasonal
    /// predictor explains the data and none was found (see `series_periods`).
    periods: Option<Box<Periods>>,
}

impl AdaptiveModel {
    /// The value the active predictor expects at `time`.
    pub fn predict(&self, time: i64) -> f64 {
        self.predictors[self.active].predict(time)
    }

    pub fn updates(&self) -> u32 {
        self.updates
    }

    pub fn approximate_bytes(&self) -> usize {
        std::mem::size_of::<AdaptiveModel>()
            + self
                .predictors
                .iter()
                .map(Predictor::approximate_bytes)
                .sum::<usize>()
            + self.periods.as_ref().map_or(0, |p| p.approximate_bytes())
    }

    /// The variance used for scoring at `time`: the active predictor's error, floored by the
    /// level, the data's resolution and (for counts) the Poisson variance.
    fn effective_variance(&self, time: i64) -> f64 {
        let floor = self.variance_floor(self.predict(time));
        self.predictors[self.active].error().max(floor)
    }

    /// The least variance a prediction of `expected` can have: the resolution of the data and
    /// the size of the value (and for counts the Poisson variance) bound how sure we can be.
    fn variance_floor(&self, expected: f64) -> f64 {
        let relative = RELATIVE_SD_FLOOR * expected.abs();
        let mut floor = (relative * relative).max(ABSOLUTE_VARIANCE_FLOOR);
        if self.resolution.is_finite() {
            let quantum = self.resolution / RESOLUTION_SIGMAS;
            floor = floor.max(quantum * quantum);
        }
        if self.kind == FeatureKind::Count {
            floor = floor.max(expected.max(0.0));
        }
        floor
    }

    fn degrees_of_freedom(&self) -> f64 {
        (self.predictors[self.active].error_weight() - 1.0).max(1.0)
    }

    fn discrete_probability(&self, time: i64, value: f64, tail: Tail) -> Option<f64> {
        let mean = self.predict(time);
        if mean > 1e4 || value > 1e7 {
            return None;
        }
        let variance = self.predictors[self.active].error();
        let counts = CountDistribution::new(mean, variance.max(mean));
        match tail {
            Tail::High => counts.upper_tail(value),
            Tail::Low => counts.lower_tail(value),
            Tail::Both => {
                let upper = counts.upper_tail(value)?;
                let lower = counts.lower_tail(value)?;
                Some((2.0 * upper.min(lower)).min(1.0))
            }
        }
    }

    /// The multi-bucket mean if the next standardized residual is `deviation` (clamped, so one
    /// huge spike does not dominate the following buckets).
    fn recent_with(&self, deviation: f64) -> f64 {
        let clamped = deviation.clamp(-MULTI_BUCKET_CLAMP, MULTI_BUCKET_CLAMP);
        (1.0 - MULTI_BUCKET_RATE) * self.recent + MULTI_BUCKET_RATE * clamped
    }

    fn is_finite(&self, time: i64) -> bool {
        self.predict(time).is_finite() && self.effective_variance(time).is_finite()
    }

    /// The least `error` among the plain levels (without a slope).
    fn best_plain(&self, error: impl Fn(&Predictor) -> f64) -> f64 {
        self.predictors
            .iter()
            .filter(|p| p.period() == 0 && !p.has_trend())
            .map(error)
            .fold(f64::INFINITY, f64::min)
    }

    /// Picks the predictor to score with: the best plain level, unless a ready seasonal or trend
    /// one predicts clearly better; the current choice stays unless beaten by a margin.
    fn choose(&mut self, time: i64) {
        let best_plain = self.best_plain(Predictor::error);
        let best_plain_selection = self.best_plain(Predictor::selection_error);
        // A seasonal profile qualifies on recent or on long-memory error: a plain level's recent
        // error can look good only because it winsorizes a regular spike as an outlier every time.
        // A trend must win on both: over the long memory (a steady drift, not a lucky stretch)
        // and now (a slope overshoots after the drift stops or the level jumps).
        let eligible = |p: &Predictor| {
            p.ready(time)
                && if p.has_trend() {
                    p.selection_weight() >= p.switch_evidence()
                        && p.selection_error() < TREND_GAIN * best_plain_selection
                        && p.error() < best_plain
                } else {
                    p.period() == 0
                        || p.error() < SEASONAL_GAIN * best_plain
                        || p.selection_error() < SEASONAL_GAIN * best_plain_selection
                }
        };
        let mut best = None;
        for (i, p) in self.predictors.iter().enumerate() {
            if eligible(p) && best.is_none_or(|b: usize| p.error() < self.predictors[b].error()) {
                best = Some(i);
            }
        }
        let Some(best) = best else {
            return;
        };
        let current = &self.predictors[self.active];
        let challenger = &self.predictors[best];
        // Plain levels switch on recent error alone (that is how the model follows a change of
        // regime). A seasonal or trend challenger must also win over the long memory: its recent
        // error may be low by luck, measured over a quiet stretch of its cycle.
        let proven = (challenger.period() == 0 && !challenger.has_trend())
            || (challenger.selection_weight() >= challenger.switch_evidence()
                && challenger.selection_error() < current.selection_error());
        if !eligible(current) || (proven && challenger.error() < SWITCH_GAIN * current.error()) {
            self.active = best;
        }
    }
}

/// Elasticsearch's -5..5 scale: the decades by which the multi-bucket view is more (positive)
/// or less (negative) surprising than the single bucket, clamped.
fn multi_bucket_impact(single: f64, multi: f64) -> f64 {
    let single = clamp_probability(single).log10();
    let multi = clamp_probability(multi).log10();
    (single - multi).clamp(-5.0, 5.0)
}

/// The tail probability of a standardized deviation under a Student-t on the requested side.
fn tail_probability(deviation: f64, nu: f64, tail: Tail) -> f64 {
    let upper = student_t_upper_tail(deviation, nu);
    let lower = student_t_upper_tail(-deviation, nu);
    match tail {
        Tail::High => upper,
        Tail::Low => lower,
        Tail::Both => 2.0 * upper.min(lower),
    }
}

impl SeriesModel for AdaptiveModel {
    fn new(kind: FeatureKind, bucket_span_secs: i64) -> AdaptiveModel {
        let span = bucket_span_secs.max(1);
        let mut predictors = vec![
            Predictor::level(FAST_LEVEL),
            Predictor::level(SLOW_LEVEL),
            Predictor::trend(TREND_LEVEL),
        ];
        // An hourly profile only where the daily one is coarser than a bucket (short spans):
        // otherwise the daily profile already holds every hourly shape at full resolution.
        let coarse_daily = Predictor::seasonal(DAY, span, 1.0).slot_secs() > span;
        for period in [HOUR, DAY, WEEK] {
            // A period needs a few buckets per cycle to have a shape at all.
            if period / span >= 4 && (period != HOUR || coarse_daily) {
                let memory = SEASONAL_LEVEL_CYCLES * (period / span) as f64;
                predictors.push(Predictor::seasonal(period, span, memory));
            }
        }
        AdaptiveModel {
            kind,
            updates: 0,
            predictors,
            active: 1,
            resolution: f64::INFINITY,
            last_value: 0.0,
            recent: 0.0,
            periods: Some(Box::new(Periods::new(span))),
        }
    }

    fn probability(&self, time: i64, value: f64, tail: Tail) -> Assessment {
        let typical = self.predict(time);
        if self.updates < WARMUP_BUCKETS
            || !self.predictors[self.active].ready(time)
            || !value.is_finite()
        {
            return Assessment {
                probability: 1.0,
                typical,
                scored: false,
                multi_bucket_impact: 0.0,
            };
        }
        let deviation = (value - typical) / self.effective_variance(time).sqrt();
        let nu = self.degrees_of_freedom();
        let single = tail_probability(deviation, nu, tail);
        // Several moderately unusual buckets in a row are evidence no single one gives: the
        // recent mean of standardized residuals, judged against its own spread under noise.
        let recent = self.recent_with(deviation);
        let spread = (MULTI_BUCKET_RATE / (2.0 - MULTI_BUCKET_RATE)).sqrt();
        let multi = tail_probability(recent / spread, nu, tail);
        // Bonferroni over the two views.
        let mut probability = (2.0 * single.min(multi)).min(single.max(multi)).min(1.0);
        // Counts are discrete and skewed: a normal-ish tail is overconfident at low rates, so
        // the exact count tail wins whenever it is less surprising.
        if self.kind == FeatureKind::Count && probability < DISCRETE_CHECK_BELOW {
            if let Some(discrete) = self.discrete_probability(time, value, tail) {
                probability = probability.max(discrete);
            }
        }
        Assessment {
            probability: clamp_probability(probability),
            typical,
            scored: true,
            multi_bucket_impact: multi_bucket_impact(single, multi),
        }
    }

    fn update(&mut self, time: i64, value: f64, weight: f64) {
        if !value.is_finite() || weight.is_nan() || weight <= 0.0 {
            return;
        }
        // Values and states below this size cannot overflow a square: no copy to roll back to
        // is needed (copying every model on every bucket was a large part of finalizing one).
        const SAFE: f64 = 1e100;
        if value.abs() < SAFE && self.predictors.iter().all(|p| p.magnitude() < SAFE) {
            self.learn(time, value);
            return;
        }
        let before = self.clone();
        self.learn(time, value);
        // Values near f64::MAX can overflow the squares; such a value is not learnt at all
        // rather than leaving an infinite or NaN state behind.
        if !self.is_finite(time) || self.predictors.iter().any(|p| !p.error().is_finite()) {
            *self = before;
        }
    }
}

impl AdaptiveModel {
    fn learn(&mut self, time: i64, value: f64) {
        let step = (value - self.last_value).abs();
        if self.updates > 0 && step > value.abs() * 1e-12 && step > 0.0 {
            self.resolution = self.resolution.min(step);
        }
        self.last_value = value;
        self.updates = self.updates.saturating_add(1);
        let expected = self.predict(time);
        if self.updates > WARMUP_BUCKETS {
            let deviation = (value - expected) / self.effective_variance(time).sqrt();
            self.recent = self.recent_with(deviation);
        }
        let floor = self.variance_floor(expected);
        for (i, p) in self.predictors.iter_mut().enumerate() {
            let shifted = p.observe(time, value, floor);
            if shifted && i == self.active {
                // The run that made the shift was the multi-bucket evidence; it is spent.
                self.recent = 0.0;
            }
        }
        self.choose(time);
        self.track_periods(time, value);
    }
}

#[path = "series_periods.rs"]
mod periods;

/// Intervals for model plot and forecasts (`model::interval` does the quantiles).
impl AdaptiveModel {
    /// The central `confidence` interval of the bucket value expected at `time`, or `None` while
    /// the model is still warming up (its probabilities are not scored then either).
    pub fn interval(&self, time: i64, confidence: f64) -> Option<Interval> {
        self.forecast_interval(time, 0, confidence)
    }

    /// The interval `steps` buckets beyond the next one: the active predictor carries its
    /// trend on (damped), and the level's and slope's own uncertainty add up with each step, as
    /// for exponential smoothing.
    pub fn forecast_interval(&self, time: i64, steps: u64, confidence: f64) -> Option<Interval> {
        let active = &self.predictors[self.active];
        if self.updates < WARMUP_BUCKETS || !active.ready(time) {
            return None;
        }
        let variance = self.effective_variance(time) * active.ahead_variance_factor(steps);
        let interval = Interval::student_t(
            active.predict_ahead(time, steps),
            variance.sqrt(),
            self.degrees_of_freedom(),
            confidence,
        );
        let interval = match self.kind {
            FeatureKind::Count => interval.floored(0.0),
            FeatureKind::Continuous => interval,
        };
        interval.is_finite().then_some(interval)
    }
}

#[cfg(test)]
#[path = "trend_tests.rs"]
mod trend_tests;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tiny seeded generator (splitmix64 + Box-Muller) so tests need no extra crates.
    pub struct TestRng(u64);

    impl TestRng {
        pub fn new(seed: u64) -> TestRng {
            TestRng(seed)
        }

        pub fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in (0, 1).
        pub fn uniform(&mut self) -> f64 {
            ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }

        pub fn gaussian(&mut self, mean: f64, sd: f64) -> f64 {
            let u1 = self.uniform();
            let u2 = self.uniform();
            mean + sd * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        }

        pub fn poisson(&mut self, rate: f64) -> u64 {
            // Knuth's method in chunks so large rates do not underflow.
            let mut remaining = rate;
            let mut count = 0;
            while remaining > 0.0 {
                let step = remaining.min(30.0);
                remaining -= step;
                let limit = (-step).exp();
                let mut product = self.uniform();
                while product > limit {
                    count += 1;
                    product *= self.uniform();
                }
            }
            count
        }
    }

    const SPAN: i64 = 300;

    /// A model with its own clock: every update is the next 5-minute bucket.
    #[derive(Debug)]
    struct Clocked {
        model: AdaptiveModel,
        next: i64,
    }

    impl Clocked {
        fn probability(&self, value: f64, tail: Tail) -> Assessment {
            self.model.probability(self.next, value, tail)
        }

        fn update(&mut self, value: f64, weight: f64) {
            self.model.update(self.next, value, weight);
            self.next += SPAN;
        }

        fn mean(&self) -> f64 {
            self.model.predict(self.next)
        }

        fn effective_variance(&self) -> f64 {
            self.model.effective_variance(self.next)
        }
    }

    fn trained(kind: FeatureKind, values: impl Iterator<Item = f64>) -> Clocked {
        let mut model = Clocked {
            model: AdaptiveModel::new(kind, SPAN),
            next: 0,
        };
        for v in values {
            model.update(v, 1.0);
        }
        model
    }

    #[test]
    fn daily_pattern_is_learnt_and_a_broken_day_is_not() {
        let mut rng = TestRng::new(21);
        let per_day = (DAY / SPAN) as usize;
        let daily = |i: usize| {
            let phase = (i % per_day) as f64 / per_day as f64;
            100.0 + 40.0 * (2.0 * std::f64::consts::PI * phase).sin()
        };
        let model = trained(
            FeatureKind::Continuous,
            (0..per_day * 5).map(|i| daily(i) + rng.gaussian(0.0, 2.0)),
        );
        let next = per_day * 5 + per_day / 4;
        let mut model = model;
        for i in per_day * 5..next {
            model.update(daily(i) + rng.gaussian(0.0, 2.0), 1.0);
        }
        // At the daily peak, the expectation follows the pattern rather than the daily mean.
        assert!((model.mean() - daily(next)).abs() < 5.0, "{}", model.mean());
        assert!(model.probability(daily(next), Tail::Both).probability > 0.2);
        // The daily mean at the peak's time is a clear anomaly, though it is a usual value.
        assert!(
            model.probability(100.0, Tail::Both).probability < 1e-8,
            "{:?} {:?}",
            model.probability(100.0, Tail::Both),
            model.model
        );
    }

    #[test]
    fn a_coarse_weekly_profile_does_not_win_on_a_quiet_stretch() {
        // A sharp daily square wave: high for 9 hours, low otherwise. The weekly profile (35-minute
        // slots at 5-minute buckets) blurs the edges; a week in, its error over the quiet hours
        // since it became ready is below the daily profile's, which has seen edges recently.
        let mut rng = TestRng::new(29);
        let per_day = (DAY / SPAN) as usize;
        let wave = |i: usize| {
            let hour = (i % per_day) * 24 / per_day;
            if (9..18).contains(&hour) {
                80.0
            } else {
                20.0
            }
        };
        let mut model = trained(
            FeatureKind::Continuous,
            (0..per_day * 2).map(|i| wave(i) + rng.gaussian(0.0, 1.0)),
        );
        let mut least = 1.0f64;
        for i in per_day * 2..per_day * 10 {
            let value = wave(i) + rng.gaussian(0.0, 1.0);
            least = least.min(model.probability(value, Tail::Both).probability);
            model.update(value, 1.0);
        }
        assert!(least > 1e-6, "clean data scored p = {least:e}");
    }

    #[test]
    fn an_hourly_pattern_on_minute_buckets_is_learnt_at_full_resolution() {
        // A job at the top of every hour on 1-minute buckets: the daily profile's 5-minute slots
        // blur it, the hourly profile holds it exactly.
        let span = 60;
        let mut rng = TestRng::new(31);
        let value = |t: i64| if t % HOUR == 0 { 100.0 } else { 10.0 };
        let mut model = AdaptiveModel::new(FeatureKind::Continuous, span);
        let mut t = 0;
        while t < DAY {
            model.update(t, value(t) + rng.gaussian(0.0, 1.0), 1.0);
            t += span;
        }
        let mut least = 1.0f64;
        while t < 2 * DAY {
            let v = value(t) + rng.gaussian(0.0, 1.0);
            let p = model.probability(t, v, Tail::Both).probability;
            least = least.min(p);
            model.update(t, v, 1.0);
            t += span;
        }
        assert!(least > 1e-6, "the usual hourly job scored p = {least:e}");
        let top = 2 * DAY;
        let missed = model.probability(top, 10.0, Tail::Both).probability;
        assert!(missed < 1e-6, "a missing hourly job scored p = {missed:e}");
    }

    #[test]
    fn warm_up_reports_nothing() {
        let mut rng = TestRng::new(1);
        let model = trained(
            FeatureKind::Continuous,
            (0..WARMUP_BUCKETS - 1).map(|_| rng.gaussian(10.0, 1.0)),
        );
        let a = model.probability(1e9, Tail::Both);
        assert_eq!(a.probability, 1.0);
        assert!(!a.scored);
    }

    #[test]
    fn spike_is_improbable_and_noise_is_not() {
        let mut rng = TestRng::new(7);
        let model = trained(
            FeatureKind::Continuous,
            (0..400).map(|_| rng.gaussian(100.0, 5.0)),
        );
        assert!((model.mean() - 100.0).abs() < 2.0);
        assert!(model.probability(150.0, Tail::Both).probability < 1e-15);
        assert!(model.probability(103.0, Tail::Both).probability > 0.3);
        // One-sided: a drop is not a high-side anomaly.
        assert!(model.probability(50.0, Tail::High).probability > 0.9);
        assert!(model.probability(50.0, Tail::Low).probability < 1e-15);
    }

    #[test]
    fn one_spike_does_not_blind_the_model() {
        let mut rng = TestRng::new(3);
        let mut model = trained(
            FeatureKind::Continuous,
            (0..300).map(|_| rng.gaussian(0.0, 1.0)),
        );
        model.update(1000.0, 1.0);
        assert!(
            model.effective_variance() < 1.5,
            "{}",
            model.effective_variance()
        );
        assert!(model.probability(8.0, Tail::Both).probability < 1e-8);
    }

    #[test]
    fn level_shift_is_learnt_quickly() {
        let mut model = trained(
            FeatureKind::Continuous,
            (0..200).map(|i| 10.0 + (i % 2) as f64),
        );
        for _ in 0..3 {
            model.update(100.0, 1.0);
        }
        assert!((model.mean() - 100.0).abs() < 1.0);
        assert!(model.probability(100.5, Tail::Both).probability > 0.5);
    }

    #[test]
    fn flat_series_with_a_tiny_step_stays_finite() {
        let mut model = trained(FeatureKind::Continuous, (0..100).map(|_| 5.0));
        let a = model.probability(5.000_001, Tail::Both);
        assert!(a.probability > 0.1, "{a:?}");
        let b = model.probability(6.0, Tail::Both);
        assert!(b.probability > 0.0 && b.probability < 1e-10);
        for _ in 0..10 {
            model.update(6.0, 1.0);
        }
        assert!(model.probability(6.0, Tail::Both).probability > 0.5);
        // Going back to a level already visited is no longer a catastrophe.
        assert!(model.probability(5.0, Tail::Both).probability > 1e-4);
    }

    #[test]
    fn flat_zero_series_gives_finite_probabilities() {
        let model = trained(FeatureKind::Continuous, (0..50).map(|_| 0.0));
        let a = model.probability(1.0, Tail::Both);
        assert!(a.probability >= 1e-308 && a.probability.is_finite());
        assert_eq!(model.probability(0.0, Tail::Both).probability, 1.0);
    }

    #[test]
    fn extreme_values_never_poison_the_state() {
        let mut rng = TestRng::new(17);
        let mut model = trained(
            FeatureKind::Continuous,
            (0..100).map(|_| rng.gaussian(1.0, 0.1)),
        );
        for v in [
            f64::MAX,
            -f64::MAX,
            1e300,
            f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
        ] {
            let a = model.probability(v, Tail::Both);
            assert!(a.probability > 0.0 && a.probability <= 1.0, "{v}: {a:?}");
            model.update(v, 1.0);
            assert!(
                model.mean().is_finite() && model.effective_variance().is_finite(),
                "{v}: {model:?}"
            );
        }
        let p = model.probability(1.0, Tail::Both).probability;
        assert!(p.is_finite() && p > 0.0);
    }

    #[test]
    fn counts_use_discrete_tails_at_low_rates() {
        let mut rng = TestRng::new(11);
        let model = trained(
            FeatureKind::Count,
            (0..500).map(|_| rng.poisson(0.5) as f64),
        );
        // P(X >= 4 | 0.5) is about 1.8e-3: a normal approximation would claim far less.
        let p = model.probability(4.0, Tail::High).probability;
        assert!(p > 3e-4 && p < 1e-2, "{p}");
    }
}
