//! One statistical model per series feature: what a bucket value usually looks like, and how
//! surprising a new one is.
//!
//! Owns the [`SeriesModel`] trait (the seam a later, fuller model plugs into) and today's
//! implementation, [`BaselineModel`]. Knows nothing about records, buckets, by/partition values or
//! scores: the detector hands it one number per bucket, asks for a probability, then lets it learn.
//! Tail maths comes from `distribution`.

use serde::{Deserialize, Serialize};

use crate::model::distribution::{clamp_probability, student_t_upper_tail, CountDistribution};
use crate::model::function::Tail;

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
}

/// A per-series model of one bucket feature. Implementations must be deterministic and keep all
/// their state serializable (it is part of the model snapshot).
pub trait SeriesModel {
    fn new(kind: FeatureKind) -> Self;
    /// Scores `value` without learning from it.
    fn probability(&self, value: f64, tail: Tail) -> Assessment;
    /// Learns one bucket value (`weight` 1 for an ordinary bucket).
    fn update(&mut self, value: f64, weight: f64);
}

/// The model every series uses today; a fuller model replaces it by implementing [`SeriesModel`]
/// and changing this alias (the snapshot format changes with it).
pub type ActiveModel = BaselineModel;

/// Buckets a series must have learnt before its probabilities mean anything.
pub const WARMUP_BUCKETS: u32 = 8;
/// Memory of the variance estimate, in buckets (exponential forgetting once reached).
const VARIANCE_MEMORY: f64 = 500.0;
/// Memory of the level, in buckets: shorter than the variance's, so slow drift is followed.
const MEAN_MEMORY: f64 = 100.0;
/// A learnt value further than this many standard deviations out is winsorized to this distance.
const OUTLIER_SIGMAS: f64 = 4.0;
/// This many outliers in a row on the same side are a level shift, not a spike.
const SHIFT_RUN: i32 = 3;
/// After a level shift the variance is at least (shift / SHIFT_SPREAD)^2, so the series is not
/// flagged again at full strength every time it moves between levels it has already visited.
const SHIFT_SPREAD: f64 = 3.0;
/// A flat series still has a standard deviation of at least this fraction of its level.
const RELATIVE_SD_FLOOR: f64 = 1e-3;
/// One step of the data's resolution (e.g. 1 for integers) off a flat series is this many
/// standard deviations: a warning, not a catastrophe, yet still enough to register a level shift.
const RESOLUTION_SIGMAS: f64 = 5.0;
/// Variance floor when the level is exactly zero and nothing has ever moved.
const ABSOLUTE_VARIANCE_FLOOR: f64 = 1e-200;
/// Discrete tails are only worth computing for candidates (the continuous p decides the rest).
const DISCRETE_CHECK_BELOW: f64 = 0.05;

/// Exponentially forgetting mean and variance of a bucket feature, robust while learning
/// (winsorized outliers, level-shift detection), with variance floors for flat series and counts,
/// scored with a Student-t whose degrees of freedom grow with the data seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineModel {
    kind: FeatureKind,
    updates: u32,
    /// Effective number of buckets behind the variance (grows to VARIANCE_MEMORY).
    weight: f64,
    mean: f64,
    variance: f64,
    /// Smallest non-zero step seen between consecutive values: the data's granularity.
    resolution: f64,
    last_value: f64,
    /// Consecutive learnt outliers; the sign says which side.
    outlier_run: i32,
    outlier_run_sum: f64,
}

impl BaselineModel {
    pub fn mean(&self) -> f64 {
        self.mean
    }

    pub fn updates(&self) -> u32 {
        self.updates
    }

    /// The variance used for scoring: the estimate, floored by the level, the data's resolution
    /// and (for counts) the Poisson variance.
    fn effective_variance(&self) -> f64 {
        let relative = RELATIVE_SD_FLOOR * self.mean.abs();
        let mut floor = (relative * relative).max(ABSOLUTE_VARIANCE_FLOOR);
        if self.resolution.is_finite() {
            let quantum = self.resolution / RESOLUTION_SIGMAS;
            floor = floor.max(quantum * quantum);
        }
        if self.kind == FeatureKind::Count {
            floor = floor.max(self.mean.max(0.0));
        }
        self.variance.max(floor)
    }

    fn degrees_of_freedom(&self) -> f64 {
        (self.weight - 1.0).max(1.0)
    }

    fn discrete_probability(&self, value: f64, tail: Tail) -> Option<f64> {
        if self.mean > 1e4 || value > 1e7 {
            return None;
        }
        let counts = CountDistribution::new(self.mean, self.variance.max(self.mean));
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
}

impl SeriesModel for BaselineModel {
    fn new(kind: FeatureKind) -> BaselineModel {
        BaselineModel {
            kind,
            updates: 0,
            weight: 0.0,
            mean: 0.0,
            variance: 0.0,
            resolution: f64::INFINITY,
            last_value: 0.0,
            outlier_run: 0,
            outlier_run_sum: 0.0,
        }
    }

    fn probability(&self, value: f64, tail: Tail) -> Assessment {
        if self.updates < WARMUP_BUCKETS || !value.is_finite() {
            return Assessment {
                probability: 1.0,
                typical: self.mean,
                scored: false,
            };
        }
        let deviation = (value - self.mean) / self.effective_variance().sqrt();
        let nu = self.degrees_of_freedom();
        let upper = student_t_upper_tail(deviation, nu);
        let lower = student_t_upper_tail(-deviation, nu);
        let mut probability = match tail {
            Tail::High => upper,
            Tail::Low => lower,
            Tail::Both => 2.0 * upper.min(lower),
        };
        // Counts are discrete and skewed: a normal-ish tail is overconfident at low rates, so
        // the exact count tail wins whenever it is less surprising.
        if self.kind == FeatureKind::Count && probability < DISCRETE_CHECK_BELOW {
            if let Some(discrete) = self.discrete_probability(value, tail) {
                probability = probability.max(discrete);
            }
        }
        Assessment {
            probability: clamp_probability(probability),
            typical: self.mean,
            scored: true,
        }
    }

    fn update(&mut self, value: f64, weight: f64) {
        if !value.is_finite() || weight.is_nan() || weight <= 0.0 {
            return;
        }
        let before = self.clone();
        self.learn(value, weight);
        // Values near f64::MAX can overflow the squares; such a value is not learnt at all
        // rather than leaving an infinite or NaN state behind.
        if !(self.mean.is_finite()
            && self.variance.is_finite()
            && self.effective_variance().is_finite())
        {
            *self = before;
        }
    }
}

impl BaselineModel {
    fn learn(&mut self, value: f64, weight: f64) {
        if self.updates == 0 {
            self.updates = 1;
            self.weight = weight;
            self.mean = value;
            self.variance = 0.0;
            self.last_value = value;
            return;
        }
        // Judged against the model as it was scored: the step this value makes must not
        // lower the bar for itself through the resolution floor.
        let sd = self.effective_variance().sqrt();
        let deviation = (value - self.mean) / sd;
        let step = (value - self.last_value).abs();
        if step > value.abs() * 1e-12 && step > 0.0 {
            self.resolution = self.resolution.min(step);
        }
        self.last_value = value;
        self.updates = self.updates.saturating_add(1);
        let mut learnt = value;
        if self.updates > WARMUP_BUCKETS && deviation.abs() > OUTLIER_SIGMAS {
            let side = if deviation > 0.0 { 1 } else { -1 };
            if self.outlier_run.signum() == side {
                self.outlier_run += side;
            } else {
                self.outlier_run = side;
                self.outlier_run_sum = 0.0;
            }
            self.outlier_run_sum += value;
            if self.outlier_run.abs() >= SHIFT_RUN {
                // The series has moved: jump to the new level instead of crawling towards it,
                // and remember that it moves by this much.
                let new_level = self.outlier_run_sum / self.outlier_run.abs() as f64;
                let shift = (new_level - self.mean) / SHIFT_SPREAD;
                self.variance = self.variance.max(shift * shift);
                self.mean = new_level;
                self.outlier_run = 0;
                self.outlier_run_sum = 0.0;
                return;
            }
            learnt = self.mean + side as f64 * OUTLIER_SIGMAS * sd;
        } else {
            self.outlier_run = 0;
            self.outlier_run_sum = 0.0;
        }

        self.weight = (self.weight + weight).min(VARIANCE_MEMORY);
        let variance_rate = (weight / self.weight).min(1.0);
        let mean_rate = variance_rate.max(1.0 / MEAN_MEMORY);
        let residual = learnt - self.mean;
        // The residual is measured against the level *before* this update, so the variance is
        // the one-step-ahead prediction variance and already includes the level's uncertainty.
        self.variance = (1.0 - variance_rate) * self.variance + variance_rate * residual * residual;
        self.mean += mean_rate * residual;
    }
}

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

    fn trained(kind: FeatureKind, values: impl Iterator<Item = f64>) -> BaselineModel {
        let mut model = BaselineModel::new(kind);
        for v in values {
            model.update(v, 1.0);
        }
        model
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
        for _ in 0..SHIFT_RUN {
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
