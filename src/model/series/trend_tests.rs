//! The trend candidate: chosen on steadily drifting data (unbiased predictions, quick detection of
//! a slope change, forecasts that carry the trend on) and never on noise or spikes.

use super::tests::TestRng;
use super::*;

const SPAN: i64 = 300;

/// A fresh model fed `values` on consecutive 5-minute buckets; returns it and the next time.
fn fed(values: impl Iterator<Item = f64>) -> (AdaptiveModel, i64) {
    let mut model = AdaptiveModel::new(FeatureKind::Continuous, SPAN);
    let mut t = 0;
    for v in values {
        model.update(t, v, 1.0);
        t += SPAN;
    }
    (model, t)
}

fn trend_active(model: &AdaptiveModel) -> bool {
    model.active().has_trend()
}

/// A slope of a fifth of the noise per bucket: a plain level with a 12-bucket memory lags it by
/// more than two standard deviations.
const SLOPE: f64 = 0.2;

fn drifting(slope: f64, i: usize, rng: &mut TestRng) -> f64 {
    50.0 + slope * i as f64 + rng.gaussian(0.0, 1.0)
}

#[test]
fn a_steady_trend_is_predicted_without_bias_and_scores_quietly() {
    let mut rng = TestRng::new(41);
    let (mut model, mut t) = fed((0..1000).map(|i| drifting(SLOPE, i, &mut rng)));
    assert!(trend_active(&model), "{model:?}");
    let (mut bias, mut least) = (0.0, 1.0f64);
    let n = 1000;
    for i in 1000..1000 + n {
        let value = drifting(SLOPE, i, &mut rng);
        bias += (model.predict(t) - value) / n as f64;
        least = least.min(model.probability(t, value, Tail::Both).probability);
        model.update(t, value, 1.0);
        t += SPAN;
    }
    assert!(bias.abs() < 0.1, "mean error {bias}");
    assert!(least > 1e-6, "clean drift scored p = {least:e}");
}

#[test]
fn a_slope_that_flips_is_found_within_a_few_buckets() {
    // Half the noise per bucket: after the flip the error grows by a standard deviation a bucket.
    let slope = 0.5;
    let mut rng = TestRng::new(43);
    let (mut model, mut t) = fed((0..1000).map(|i| drifting(slope, i, &mut rng)));
    assert!(trend_active(&model), "{model:?}");
    let peak = 50.0 + slope * 1000.0;
    let mut found = None;
    for k in 1..=30 {
        let value = peak - slope * k as f64 + rng.gaussian(0.0, 1.0);
        let p = model.probability(t, value, Tail::Both).probability;
        if p < 1e-6 {
            found = Some(k);
            break;
        }
        model.update(t, value, 1.0);
        t += SPAN;
    }
    assert!(
        found.is_some_and(|k| k <= 6),
        "found after {found:?} buckets"
    );
}

#[test]
fn white_noise_and_spikes_never_select_the_trend() {
    let mut rng = TestRng::new(47);
    let noise = |rng: &mut TestRng, _: usize| 100.0 + rng.gaussian(0.0, 5.0);
    let spiky = |rng: &mut TestRng, i: usize| {
        let spike = if i % 37 == 0 { 60.0 } else { 0.0 };
        100.0 + rng.gaussian(0.0, 5.0) + spike
    };
    for (name, series) in [
        ("noise", &noise as &dyn Fn(&mut TestRng, usize) -> f64),
        ("spiky", &spiky),
    ] {
        let mut model = AdaptiveModel::new(FeatureKind::Continuous, SPAN);
        for i in 0..4000 {
            model.update(i as i64 * SPAN, series(&mut rng, i), 1.0);
            assert!(!trend_active(&model), "{name}: trend chosen at bucket {i}");
        }
    }
}

#[test]
fn forecasts_of_a_trending_series_follow_the_trend() {
    let mut rng = TestRng::new(53);
    let (model, t) = fed((0..1000).map(|i| drifting(SLOPE, i, &mut rng)));
    let mut last = f64::NEG_INFINITY;
    let mut width = 0.0;
    for steps in 0..24u64 {
        let time = t + steps as i64 * SPAN;
        let interval = model.forecast_interval(time, steps, 0.95).expect("ready");
        let truth = 50.0 + SLOPE * (1000 + steps) as f64;
        assert!(interval.median > last, "{steps}: {interval:?}");
        assert!(
            (interval.median - truth).abs() < 1.0,
            "{steps}: {interval:?}"
        );
        assert!(interval.lower < truth && truth < interval.upper, "{steps}");
        assert!(interval.upper - interval.lower > width, "{steps}: narrower");
        last = interval.median;
        width = interval.upper - interval.lower;
    }
    // Damped: far ahead the forecast bends below the straight line, but keeps rising.
    let far = |steps: u64| {
        let time = t + steps as i64 * SPAN;
        model
            .forecast_interval(time, steps, 0.95)
            .expect("ready")
            .median
    };
    assert!(far(2000) > far(500) && far(2000) < 50.0 + SLOPE * 3000.0 - 50.0);
}
