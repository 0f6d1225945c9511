//! One statistical model per series feature: what a bucket value usually looks like at a given
//! time, and how surprising a new one is.
//!
//! Owns the [`SeriesModel`] trait and today's implementation, [`AdaptiveModel`]. Knows nothing
//! about records, by/partition values or scores: the detector hands it one number per bucket with
//! the bucket's time, asks for a probability, then lets it learn. Prediction comes from
//! `predictor` (competing level and seasonal predictors), tail maths from `distribution`, the
//! time-of-day widening of the spread from `noise`; periods other than the fixed ones are found by
//! `period` and managed in `series::periods`.
//!
//! What was measured and left out, with the figures: `docs/model-experiments.md`.

use serde::{Deserialize, Serialize};

use crate::model::distribution::{clamp_probability, student_t_upper_tail, CountDistribution};
use crate::model::function::Tail;
use crate::model::interval::Interval;
use crate::model::noise::DailyNoise;
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
    /// Learns one bucket value (`weight` 1 for an ordinary bucket). Returns the period (seconds)
    /// of a cycle the model has just started predicting with in place of a shorter one, longer
    /// than any it used before: its recent misfits were the model's ignorance (`model::misfits`).
    fn update(&mut self, time: i64, value: f64, weight: f64) -> Option<i64>;
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
    /// The longest period (seconds) the series has predicted with: when a longer one takes over,
    /// the series reports it (`SeriesModel::update`).
    longest_period: u32,
    predictors: Vec<Predictor>,
    /// Index of the predictor scores are computed against (`active`).
    active_index: u8,
    /// Smallest non-zero step seen between consecutive values: the data's granularity.
    resolution: f64,
    last_value: f64,
    /// Exponentially weighted mean of recent standardized residuals: multi-bucket evidence.
    recent: f64,
    /// How much noisier than the recent error each part of the day usually is.
    daily_noise: DailyNoise,
    /// No value learnt so far was negative: predictions and intervals stay at or above 0.
    never_negative: bool,
    /// The search for other periods and the found one's bookkeeping; `None` while a seasonal
    /// predictor explains the data and none was found (see `periods`).
    periods: Option<Box<Periods>>,
}

impl AdaptiveModel {
    /// The predictor scores are computed against.
    fn active(&self) -> &Predictor {
        &self.predictors[usize::from(self.active_index)]
    }

    /// The value the active predictor expects at `time`.
    pub fn predict(&self, time: i64) -> f64 {
        let predicted = self.active().predict(time);
        self.lower_bound()
            .map_or(predicted, |bound| predicted.max(bound))
    }

    /// The least value the series can take, if it has one: 0 for counts and for a series that
    /// has never been negative. Predictions and intervals stay above it: an additive profile
    /// whose level dropped (a holiday's level shift) would otherwise expect negative taxi rides
    /// at night, and report that as `typical`.
    fn lower_bound(&self) -> Option<f64> {
        (self.kind == FeatureKind::Count || self.never_negative).then_some(0.0)
    }

    /// Whether a longer cycle may yet take over from the one the model predicts with and explain
    /// its misfits (`SeriesModel::update` reports that): a seasonal model short of a week, or a
    /// plain level with a found period that has yet to prove itself.
    pub fn may_learn_longer_cycle(&self) -> bool {
        if self.longest_period == 0 {
            self.found_period().is_some()
        } else {
            i64::from(self.longest_period) < WEEK
        }
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

    /// The variance used for scoring at `time`: the active predictor's error, widened where
    /// that part of the day is usually noisier, floored by the level, the data's resolution and
    /// (for counts) the Poisson variance.
    fn effective_variance(&self, time: i64) -> f64 {
        self.variance_around(self.predict(time), self.daily_noise.widening(time))
    }

    /// The active predictor's error times `widening`, floored for a prediction of `expected`.
    fn variance_around(&self, expected: f64, widening: f64) -> f64 {
        (self.active().error() * widening).max(self.variance_floor(expected))
    }

    /// The bucket span, as the seasonal predictors know it (the plain ones do not need it).
    fn bucket_span(&self) -> i64 {
        self.predictors
            .iter()
            .map(Predictor::span)
            .max()
            .unwrap_or(1)
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
        (self.active().error_weight() - 1.0).max(1.0)
    }

    fn discrete_probability(&self, time: i64, value: f64, tail: Tail) -> Option<f64> {
        let mean = self.predict(time);
        if mean > 1e4 || value > 1e7 {
            return None;
        }
        let variance = self.active().error();
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
            .filter(|p| p.is_plain())
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
        let current = self.active();
        let challenger = &self.predictors[best];
        // Plain levels switch on recent error alone (that is how the model follows a change of
        // regime). A seasonal or trend challenger must also win over the long memory: its recent
        // error may be low by luck, measured over a quiet stretch of its cycle.
        let proven = challenger.is_plain()
            || (challenger.selection_weight() >= challenger.switch_evidence()
                && challenger.selection_error() < current.selection_error());
        if !eligible(current) || (proven && challenger.error() < SWITCH_GAIN * current.error()) {
            // A series has at most seven predictors.
            self.active_index = best as u8;
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
            longest_period: 0,
            predictors,
            active_index: 1,
            resolution: f64::INFINITY,
            last_value: 0.0,
            recent: 0.0,
            daily_noise: DailyNoise::default(),
            never_negative: true,
            periods: Some(Box::new(Periods::new(span))),
        }
    }

    fn probability(&self, time: i64, value: f64, tail: Tail) -> Assessment {
        let typical = self.predict(time);
        if self.updates < WARMUP_BUCKETS || !self.active().ready(time) || !value.is_finite() {
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

    fn update(&mut self, time: i64, value: f64, weight: f64) -> Option<i64> {
        if !value.is_finite() || weight.is_nan() || weight <= 0.0 {
            return None;
        }
        // Values and states below this size cannot overflow a square: no copy to roll back to
        // is needed (copying every model on every bucket was a large part of finalizing one).
        const SAFE: f64 = 1e100;
        if value.abs() < SAFE && self.predictors.iter().all(|p| p.magnitude() < SAFE) {
            return self.learn(time, value);
        }
        let before = self.clone();
        let adopted = self.learn(time, value);
        // Values near f64::MAX can overflow the squares; such a value is not learnt at all
        // rather than leaving an infinite or NaN state behind.
        if !self.is_finite(time) || self.predictors.iter().any(|p| !p.error().is_finite()) {
            *self = before;
            return None;
        }
        adopted
    }
}

impl AdaptiveModel {
    fn learn(&mut self, time: i64, value: f64) -> Option<i64> {
        let step = (value - self.last_value).abs();
        if self.updates > 0 && step > value.abs() * 1e-12 && step > 0.0 {
            self.resolution = self.resolution.min(step);
        }
        self.last_value = value;
        self.never_negative &= value >= 0.0;
        self.updates = self.updates.saturating_add(1);
        let expected = self.predict(time);
        if self.updates > WARMUP_BUCKETS {
            let residual = value - expected;
            let widening = self.daily_noise.widening(time);
            let deviation = residual / self.variance_around(expected, widening).sqrt();
            self.recent = self.recent_with(deviation);
            // The slots learn against the recent error alone, or a widened slot would see its
            // own noise shrink and narrow itself back.
            let standardized = residual / self.variance_around(expected, 1.0).sqrt();
            self.daily_noise
                .learn(time, standardized, self.bucket_span());
        }
        let floor = self.variance_floor(expected);
        for (i, p) in self.predictors.iter_mut().enumerate() {
            let shifted = p.observe(time, value, floor);
            if shifted && i == usize::from(self.active_index) {
                // The run that made the shift was the multi-bucket evidence; it is spent.
                self.recent = 0.0;
            }
        }
        self.choose(time);
        self.track_periods(time, value);
        // Only a period longer than any used before: a series that flips between its daily and
        // weekly profiles is not young each time, it is noisy. And over a plain level only a
        // period found in the data: a plain level's misfits could be noise as well as a fixed
        // cycle, while a found period was found in those very misfits.
        let period = self.active().period();
        let before = i64::from(self.longest_period);
        if period <= before {
            return None;
        }
        self.longest_period = period.clamp(0, i64::from(u32::MAX)) as u32;
        if before == 0 && self.found_period() != Some(period) {
            return None;
        }
        // The shorter cycle's misfits made parts of the day look noisy; the longer one explains
        // them, so what the day's slots learnt from them is forgotten too.
        self.daily_noise = DailyNoise::default();
        Some(period)
    }
}

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
        let active = self.active();
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
        let interval = match self.lower_bound() {
            Some(bound) => interval.floored(bound),
            None => interval,
        };
        interval.is_finite().then_some(interval)
    }
}

#[cfg(test)]
mod trend_tests;

#[cfg(test)]
pub(crate) mod tests;
