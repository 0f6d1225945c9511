use super::*;
use crate::model::series::tests::TestRng;

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// Feeds `buckets` values of `value(t)` on buckets of `span` and returns every period reported.
fn periods_found(span: i64, buckets: i64, mut value: impl FnMut(i64) -> f64) -> Vec<i64> {
    let mut search = PeriodSearch::new(span);
    (0..buckets)
        .filter_map(|b| search.observe(b * span, value(b * span)))
        .map(|found| found.period)
        .collect()
}

fn sine(period: i64, amplitude: f64) -> impl Fn(i64) -> f64 {
    move |t| {
        let phase = t.rem_euclid(period) as f64 / period as f64;
        100.0 + amplitude * (std::f64::consts::TAU * phase).sin()
    }
}

#[test]
fn finds_non_standard_periods_on_short_and_long_buckets() {
    for (period, span) in [
        (5 * HOUR, 300),
        (5 * HOUR, HOUR),
        (36 * HOUR, 300),
        (36 * HOUR, HOUR),
        (3 * DAY, 300),
        (3 * DAY, HOUR),
    ] {
        let mut rng = TestRng::new(period as u64 ^ span as u64);
        let clean = sine(period, 10.0);
        // Eight cycles (and enough buckets for a test): the window holds three cycles of the
        // period at some resolution by then.
        let buckets = (8 * period / span).max(CAPACITY as i64 - 1);
        let found = periods_found(span, buckets, |t| clean(t) + rng.gaussian(0.0, 5.0));
        // Three cycles of noisy data place a period to a few percent; more cycles to the bucket.
        assert_eq!(
            found.last(),
            Some(&period),
            "{period} s on {span} s buckets: {found:?}"
        );
        assert!(
            found.iter().all(|p| (p - period).abs() * 20 <= period),
            "{period} s on {span} s buckets: {found:?}"
        );
    }
}

#[test]
fn finds_a_sharp_pulse_then_at_most_its_multiples() {
    // A job that runs for 20 minutes every 7 hours on a level with noise. Once the window is so
    // coarse that the period is a whole number of entries only every other cycle (10.5 entries of
    // 40 minutes), the pulse lines up only at twice the period: a multiple, which `series` ignores
    // once the period is held.
    let period = 7 * HOUR;
    let mut rng = TestRng::new(5);
    let found = periods_found(300, 10 * period / 300, |t| {
        let busy = t.rem_euclid(period) < 1_200;
        let level = if busy { 60.0 } else { 20.0 };
        level + rng.gaussian(0.0, 3.0)
    });
    assert_eq!(found.first(), Some(&period), "{found:?}");
    assert!(found.iter().all(|p| p % period == 0), "{found:?}");
}

#[test]
fn a_sharp_profile_keeps_its_exact_period_over_a_rounder_one_nearby() {
    // A one-bucket spike every 8 h 20 min on 5-minute buckets. When the window first holds enough
    // cycles (entries of 4 buckets) the estimate is good to a bucket or so, and 8 h 15 min (a
    // whole number of quarter hours) lies within that; but folded at it the spike drifts an entry
    // every four cycles, so the data rejects it. (Much coarser windows, which a series no longer
    // searches once the period's profile predicts, smear the spike either way.)
    let period = 30_000;
    let found = periods_found(300, 12 * period / 300, |t| {
        if t.rem_euclid(period) == 0 {
            20.0
        } else {
            0.0
        }
    });
    assert!(found.len() >= 3, "{found:?}");
    assert_eq!(found[..3], [period; 3], "{found:?}");
}

#[test]
fn finds_a_period_under_a_trend() {
    let period = 5 * HOUR;
    let mut rng = TestRng::new(9);
    let clean = sine(period, 10.0);
    let found = periods_found(300, 8 * period / 300, |t| {
        clean(t) + t as f64 / 600.0 + rng.gaussian(0.0, 3.0)
    });
    assert!(found.contains(&period), "{found:?}");
}

#[test]
fn finds_nothing_in_noise_random_walks_or_trends() {
    let buckets = 60 * DAY / 300;
    for seed in 0..8 {
        let mut rng = TestRng::new(seed);
        let noise = periods_found(300, buckets, |_| rng.gaussian(50.0, 5.0));
        assert!(noise.is_empty(), "white noise {seed}: {noise:?}");

        let mut rng = TestRng::new(100 + seed);
        let mut walk = 0.0;
        let walked = periods_found(300, buckets, |_| {
            walk += rng.gaussian(0.0, 1.0);
            walk
        });
        assert!(walked.is_empty(), "random walk {seed}: {walked:?}");

        let mut rng = TestRng::new(200 + seed);
        let trend = periods_found(300, buckets, |t| {
            let days = t as f64 / DAY as f64;
            days * days + rng.gaussian(0.0, 5.0)
        });
        assert!(trend.is_empty(), "trend {seed}: {trend:?}");

        // Slowly wandering noise (AR(1), phi 0.95): smooth like many real metrics, not periodic.
        let mut rng = TestRng::new(300 + seed);
        let mut level = 0.0;
        let wandering = periods_found(300, buckets, |_| {
            level = 0.95 * level + rng.gaussian(0.0, 1.0);
            level
        });
        assert!(wandering.is_empty(), "AR(1) {seed}: {wandering:?}");
    }
}

#[test]
fn the_window_stays_bounded_and_coarsens() {
    let mut search = PeriodSearch::new(300);
    for b in 0..100_000 {
        search.observe(b * 300, (b % 17) as f64);
    }
    assert!(search.entries.len() < CAPACITY);
    assert!(search.per_entry >= 1024, "{}", search.per_entry);
    assert!(search.approximate_bytes() <= std::mem::size_of::<PeriodSearch>() + CAPACITY * 4);
}

#[test]
fn gaps_and_hostile_input_never_panic_or_poison_the_search() {
    let period = 5 * HOUR;
    let clean = sine(period, 10.0);
    let mut rng = TestRng::new(13);
    let mut search = PeriodSearch::new(300);
    for v in [f64::NAN, f64::INFINITY, -f64::MAX, f64::MAX] {
        search.observe(0, v);
    }
    search.observe(i64::MAX, 1.0);
    search.observe(i64::MIN, 1.0);
    search.clear();
    let mut found = Vec::new();
    for b in 0..8 * period / 300 {
        let t = b * 300;
        // A tenth of the buckets missing, and some delivered twice or late.
        if b % 10 == 3 {
            continue;
        }
        found.extend(search.observe(t, clean(t) + rng.gaussian(0.0, 3.0)));
        search.observe(t - 600, f64::NAN);
        search.observe(t - 3_000, 1e6);
    }
    assert!(found.iter().any(|f| f.period == period), "{found:?}");
    // A gap longer than the window starts it again.
    search.observe(1_000 * DAY, 1.0);
    assert!(search.entries.is_empty());
}

#[test]
fn snapping_prefers_round_periods_within_the_uncertainty() {
    assert_eq!(
        snap(5.0 * 3_600.0 + 500.0, 900.0, 300, |_| true),
        Some(5 * HOUR)
    );
    assert_eq!(
        snap(5.0 * 3_600.0 + 500.0, 300.0, 300, |_| true),
        Some(5 * HOUR + 600)
    );
    assert_eq!(snap(1_250.0, 100.0, 300, |_| true), Some(1_200));
    assert_eq!(
        snap(600.0, 10.0, 300, |_| true),
        None,
        "two buckets is no shape"
    );
    assert_eq!(snap(f64::NAN, 1.0, 300, |_| true), None);
}
