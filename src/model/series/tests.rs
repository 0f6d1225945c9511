//! Tests of the series model, and the seeded `TestRng` the other model tests share.

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

#[test]
fn a_longer_cycle_over_a_shorter_one_is_reported_once() {
    // Hourly buckets, a daily cycle that is weaker at weekends: the model predicts with a plain
    // level, then the daily profile (not reported: a plain level's misfits say nothing about a
    // cycle), then the weekly one, reported once, when it takes over from the daily one.
    let mut rng = TestRng::new(34);
    let mut model = AdaptiveModel::new(FeatureKind::Continuous, HOUR);
    let mut reports = Vec::new();
    // Hours at which misfits were worth keeping (`may_learn_longer_cycle`).
    let mut keeping = Vec::new();
    for hour in 0..4 * WEEK / HOUR {
        if model.may_learn_longer_cycle() {
            keeping.push(hour);
        }
        let time = hour * HOUR;
        let phase = (time % DAY) as f64 / DAY as f64;
        let amplitude = if time % WEEK >= 5 * DAY { 10.0 } else { 40.0 };
        let value =
            100.0 + amplitude * (2.0 * std::f64::consts::PI * phase).sin() + rng.gaussian(0.0, 3.0);
        if let Some(period) = model.update(time, value, 1.0) {
            reports.push((hour, period));
        }
    }
    assert_eq!(model.active().period(), WEEK, "{model:?}");
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].1, WEEK);
    assert!(reports[0].0 > WEEK / HOUR, "{reports:?}");
    // Kept from the daily profile's takeover to the weekly one's, not before nor after.
    let (first, last) = (keeping[0], *keeping.last().unwrap());
    assert!(
        first > 24 && last == reports[0].0,
        "{first}..{last}: {reports:?}"
    );
    assert_eq!(keeping.len() as i64, last - first + 1);
}

/// Five days of a daily pattern between 2 and 198, then a day at 40% of it (a holiday) and a
/// normal day, checking that the model never expects less than 0. Returns the lowest prediction
/// its active predictor made over those two days, before the floor.
fn holiday() -> f64 {
    let mut rng = TestRng::new(33);
    let per_day = (DAY / SPAN) as usize;
    let daily = |i: usize| {
        let phase = (i % per_day) as f64 / per_day as f64;
        100.0 + 98.0 * (2.0 * std::f64::consts::PI * phase).sin()
    };
    let mut model = trained(
        FeatureKind::Continuous,
        (0..per_day * 5).map(|i| daily(i) + rng.gaussian(0.0, 1.0)),
    );
    let mut lowest = f64::INFINITY;
    for i in per_day * 5..per_day * 7 {
        let value = if i < per_day * 6 {
            0.4 * daily(i)
        } else {
            daily(i)
        };
        lowest = lowest.min(model.model.active().predict(model.next));
        assert!(model.mean() >= 0.0, "{}", model.mean());
        if let Some(interval) = model.model.interval(model.next, 0.95) {
            assert!(interval.lower >= 0.0, "{interval:?}");
        }
        model.update((value + rng.gaussian(0.0, 1.0)).max(0.0), 1.0);
    }
    lowest
}

#[test]
fn a_series_never_negative_is_never_expected_negative() {
    // The holiday moves the additive profile down with the level: at night it would expect
    // fewer than zero (which `typical` would report); the expectation stays at 0 instead.
    let lowest = holiday();
    assert!(
        lowest < 0.0,
        "the scenario no longer provokes a negative expectation: {lowest}"
    );
    // A series that has been negative may be expected negative.
    let mut rng = TestRng::new(34);
    let model = trained(
        FeatureKind::Continuous,
        (0..500).map(|_| rng.gaussian(-50.0, 2.0)),
    );
    assert!((model.mean() + 50.0).abs() < 2.0, "{}", model.mean());
}

/// Twenty days at 100 +- 1, except for 14:00-16:00 every day, when the noise is five times as
/// large; then the model at `hour:minute` of day 21.
fn noisy_afternoons_until(hour: i64, minute: i64) -> Clocked {
    let mut rng = TestRng::new(55);
    let end = (20 * DAY + hour * 3_600 + minute * 60) / SPAN;
    let sd_at = |bucket: i64| {
        let hour = (bucket * SPAN) % DAY / 3_600;
        if (14..16).contains(&hour) {
            5.0
        } else {
            1.0
        }
    };
    trained(
        FeatureKind::Continuous,
        (0..end).map(|bucket| 100.0 + rng.gaussian(0.0, sd_at(bucket))),
    )
}

#[test]
fn an_hour_of_the_day_that_is_always_noisy_is_given_its_spread() {
    // At 14:05 the recent error still remembers the quiet morning; the afternoon's ordinary
    // noise (12 is 2.4 of its sd) must not score as it would in the morning (p ~ 1e-14).
    let afternoon = noisy_afternoons_until(14, 5);
    let p = afternoon.probability(112.0, Tail::Both).probability;
    assert!(p > 1e-5, "afternoon noise scored p = {p:e}");
    // The quiet hours are not widened: the same value at 03:00 is still a clear anomaly.
    let night = noisy_afternoons_until(3, 0);
    let p = night.probability(112.0, Tail::Both).probability;
    assert!(p < 1e-8, "a 12 sd deviation at night scored p = {p:e}");
}

/// A cycle found in the data takes over from a plain level: the series reports it (so the misfits
/// it explains leave the job's score history, `model::misfits`) and its spikes stop being news.
#[test]
fn a_found_period_that_takes_over_a_plain_level_is_reported() {
    let (span, period) = (300, 30_000);
    let spike = |t: i64| if t.rem_euclid(period) == 0 { 20.0 } else { 0.0 };
    let mut model = AdaptiveModel::new(FeatureKind::Continuous, span);
    let mut reported = Vec::new();
    let mut noting_before = false;
    for b in 0..40 * period / span {
        let t = b * span;
        if let Some(adopted) = model.update(t, spike(t), 1.0) {
            reported.push((b, adopted));
        }
        if reported.is_empty() && model.may_learn_longer_cycle() {
            noting_before = true;
        }
    }
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert_eq!(reported[0].1, period);
    // While the found period proved itself, the series kept its misfits for the ledger.
    assert!(noting_before);
    let next = 40 * period;
    assert!(model.probability(next, 20.0, Tail::Both).probability > 0.5);
    assert!(
        model
            .probability(next + 6 * span, 20.0, Tail::Both)
            .probability
            < 1e-4
    );
}
