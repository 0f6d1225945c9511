//! Probabilities -> scores: the raw score, the calibrated 0..100 mapping and the job's normalizer.
//!
//! Owns the meaning of a score. Does not compute probabilities (`series`) nor decide which series
//! are records (`detector_model`); the detector feeds every scored probability of a finalized
//! bucket into [`ScoreNormalizer::observe`] and asks it for a [`Normalization`] before scoring a
//! bucket. The normalizer's state is part of the model snapshot.
//!
//! Raw score: `-log10(p)`, 0..308. Calibrated score: a fixed monotone piecewise-linear map of the
//! raw score chosen so that a correctly calibrated model rarely crosses the ES severity bands by
//! chance (see `KNOTS`). History: what keeps happening is not anomalous. A score is lowered by a
//! factor `e^(-n / REPEAT_SCALE)`, where `n` is how many series-buckets of this job's recent
//! history (forgotten over weeks of time) were at least as anomalous, per series of the job. The rule needs no tail fit
//! and no trusted part of the histogram: the first of its kind keeps its calibrated score, and
//! every repeat costs the same factor whatever the series' noise or the job's bucket span. Only
//! finalized buckets feed the history. Measurements: `docs/model-experiments.md`.

use serde::{Deserialize, Serialize};

use crate::model::distribution::clamp_probability;

/// A series whose probability is below this becomes an anomaly record (Elasticsearch's value).
pub const RECORD_PROBABILITY_THRESHOLD: f64 = 0.035;

/// (raw score, score) knots. A calibrated model's raw score exceeds x with probability 10^-x per
/// series-bucket, so noise reaches ~7 once per ten million series-buckets (score < 20), while a
/// 10-sigma deviation (raw ~17-23 depending on how much the model has seen) is critical.
const KNOTS: [(f64, f64); 12] = [
    (0.0, 0.0),
    (1.455_931_955, 0.0), // -log10(RECORD_PROBABILITY_THRESHOLD)
    (2.0, 1.0),
    (3.0, 3.0),
    (5.0, 8.0),
    (7.0, 17.0),
    (9.0, 30.0),
    (12.0, 55.0),
    (14.0, 75.0),
    (20.0, 88.0),
    (30.0, 95.0),
    (60.0, 100.0),
];

/// `-log10(p)` for a probability clamped to `[1e-308, 1]`.
pub fn raw_score(probability: f64) -> f64 {
    // `0.0 -` rather than negation: p = 1 gives 0.0, not the -0.0 that would render as `-0.0`.
    0.0 - clamp_probability(probability).log10()
}

/// The calibrated 0..100 score of a raw score, before any history adjustment.
pub fn calibrated_score(raw: f64) -> f64 {
    if raw.is_nan() || raw <= 0.0 {
        return 0.0;
    }
    for pair in KNOTS.windows(2) {
        let (x0, y0) = pair[0];
        let (x1, y1) = pair[1];
        if raw <= x1 {
            return y0 + (y1 - y0) * (raw - x0) / (x1 - x0);
        }
    }
    100.0
}

/// Histogram bins: quarter decades up to `FINE_LIMIT`, then coarser up to the largest raw score.
const BIN_WIDTH: f64 = 0.25;
const FINE_LIMIT: f64 = 40.0;
const COARSE_WIDTH: f64 = 4.0;
const BINS: usize = 160 + 68;
/// The history forgets over this stretch of time (by a factor `e`), whatever the bucket span:
/// what makes a job's surprises ordinary (a noisy deployment, a season not yet learnt) comes and
/// goes in calendar time, like Elasticsearch's renormalization window.
const HISTORY_MEMORY_SECS: f64 = 42.0 * 86_400.0;
/// ...but over at least this many buckets, so a job with long buckets still has a history.
const MIN_HISTORY_MEMORY_BUCKETS: f64 = 1_000.0;
/// Earlier series-buckets at least this fraction of a raw score count as comparable anomalies.
const COMPARABLE: f64 = 1.0;
/// Each comparable anomaly in the history lowers a score by a factor `e^(-1 / REPEAT_SCALE)`:
/// three of them take it to a fifth.
const REPEAT_SCALE: f64 = 2.0;

fn bin_of(raw: f64) -> usize {
    let raw = raw.max(0.0);
    let bin = if raw < FINE_LIMIT {
        raw / BIN_WIDTH
    } else {
        FINE_LIMIT / BIN_WIDTH + (raw - FINE_LIMIT) / COARSE_WIDTH
    };
    (bin as usize).min(BINS - 1)
}

/// How much of the score history a finalized bucket leaves: the job's clock, set by its bucket
/// span (`HISTORY_MEMORY_SECS`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryDecay {
    per_bucket: f64,
}

impl HistoryDecay {
    pub fn for_bucket_span(bucket_span_secs: i64) -> HistoryDecay {
        let memory =
            (HISTORY_MEMORY_SECS / bucket_span_secs.max(1) as f64).max(MIN_HISTORY_MEMORY_BUCKETS);
        HistoryDecay {
            per_bucket: 1.0 - 1.0 / memory,
        }
    }

    /// What is left of an observation `buckets` buckets old.
    fn after(self, buckets: u64) -> f64 {
        self.per_bucket.powf(buckets as f64)
    }
}

/// A decayed histogram of the raw scores of finalized series-buckets: the job's score history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreNormalizer {
    counts: Vec<f64>,
    total: f64,
}

impl Default for ScoreNormalizer {
    fn default() -> Self {
        ScoreNormalizer::new()
    }
}

impl ScoreNormalizer {
    pub fn new() -> ScoreNormalizer {
        ScoreNormalizer {
            counts: vec![0.0; BINS],
            total: 0.0,
        }
    }

    /// Records the raw score of one scored series in a finalized bucket.
    pub fn observe(&mut self, raw: f64) {
        if !raw.is_finite() || self.counts.len() != BINS {
            return;
        }
        self.counts[bin_of(raw)] += 1.0;
        self.total += 1.0;
    }

    /// Takes back a raw score observed `age` buckets ago (decayed as it has been since): what
    /// the series model has since learnt to explain is not evidence of a noisy job.
    pub fn forget(&mut self, raw: f64, age: u64, decay: HistoryDecay) {
        if !raw.is_finite() || self.counts.len() != BINS {
            return;
        }
        let weight = decay.after(age);
        let bin = &mut self.counts[bin_of(raw)];
        let taken = weight.min(*bin);
        *bin -= taken;
        self.total = (self.total - taken).max(0.0);
    }

    /// Ages the history by one bucket.
    pub fn end_bucket(&mut self, decay: HistoryDecay) {
        for c in &mut self.counts {
            *c *= decay.per_bucket;
        }
        self.total *= decay.per_bucket;
    }

    /// How the next bucket's raw scores are scored, given this history, for a job of one series.
    pub fn normalization(&self) -> Normalization {
        self.normalization_per_series(1)
    }

    /// How the next bucket's raw scores are scored, given this history of `series` series: a
    /// repeat is what one series keeps doing, so the comparable history is counted per series.
    /// Three airlines spiking once each are three first spikes, not one spike and two repeats.
    pub fn normalization_per_series(&self, series: usize) -> Normalization {
        let share = 1.0 / series.max(1) as f64;
        // tail[i]: history at or above bin i, per series.
        let mut tail = vec![0.0; self.counts.len() + 1];
        for i in (0..self.counts.len()).rev() {
            tail[i] = tail[i + 1] + self.counts[i] * share;
        }
        Normalization { tail, share }
    }
}

/// How to turn one bucket's raw scores into scores, given the job's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalization {
    /// History at or above each bin, per series (empty: no history).
    tail: Vec<f64>,
    /// What one series-bucket weighs in `tail`.
    share: f64,
}

impl Normalization {
    /// No history: scores are the calibrated ones.
    pub fn identity() -> Normalization {
        Normalization {
            tail: Vec::new(),
            share: 1.0,
        }
    }

    /// How many earlier series-buckets were comparably anomalous (non-increasing in `raw`).
    fn comparable(&self, raw: f64) -> f64 {
        let floor = (COMPARABLE * raw).max(-RECORD_PROBABILITY_THRESHOLD.log10());
        self.tail.get(bin_of(floor)).copied().unwrap_or(0.0)
    }

    /// The 0..100 score of a probability.
    pub fn score(&self, probability: f64) -> f64 {
        self.score_with_repeats(probability, 0.0)
    }

    /// The score of a past result whose own raw score is already in this history (renormalization,
    /// `model::renormalize`): it is not its own repeat. Right after its bucket this is the score
    /// it was given unless the rest of the history moved, so renormalizing moves only what the
    /// history moved.
    pub fn score_in_hindsight(&self, probability: f64) -> f64 {
        self.score_with_repeats(probability, self.share)
    }

    /// The score with `own` of the comparable history discounted as the result itself.
    fn score_with_repeats(&self, probability: f64, own: f64) -> f64 {
        let raw = raw_score(probability);
        let repeats = (self.comparable(raw) - own).max(0.0);
        calibrated_score(raw) * (-repeats / REPEAT_SCALE).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certain_bucket_has_a_raw_score_of_positive_zero() {
        assert!(raw_score(1.0).is_sign_positive());
        assert_eq!(serde_json::json!(raw_score(1.0)).to_string(), "0.0");
    }
    use crate::model::series::tests::TestRng;

    #[test]
    fn calibrated_score_is_monotone_and_bounded() {
        let mut last = -1.0;
        let mut raw = 0.0;
        while raw < 400.0 {
            let s = calibrated_score(raw);
            assert!((0.0..=100.0).contains(&s));
            assert!(s >= last);
            last = s;
            raw += 0.01;
        }
        assert_eq!(calibrated_score(raw_score(1.0)), 0.0);
        assert!(calibrated_score(raw_score(RECORD_PROBABILITY_THRESHOLD)) < 1e-6);
        assert_eq!(calibrated_score(raw_score(0.0)), 100.0);
        assert!(calibrated_score(raw_score(1e-23)) >= 75.0);
        assert!(calibrated_score(raw_score(1e-6)) < 25.0);
    }

    #[test]
    fn calibrated_history_leaves_scores_alone() {
        let mut rng = TestRng::new(5);
        let mut normalizer = ScoreNormalizer::new();
        for _ in 0..200_000 {
            normalizer.observe(raw_score(rng.uniform()));
        }
        let n = normalizer.normalization();
        assert!(n.score(1e-20) > 0.95 * calibrated_score(20.0));
        assert!(n.score(1e-12) > 0.95 * calibrated_score(12.0));
    }

    #[test]
    fn every_comparable_anomaly_in_the_history_costs_the_same_factor() {
        let mut normalizer = ScoreNormalizer::new();
        let first = normalizer.normalization().score(1e-12);
        assert_eq!(first, calibrated_score(12.0));
        let mut last = first;
        for _ in 0..4 {
            normalizer.observe(12.0);
            let next = normalizer.normalization().score(1e-12);
            assert!((next / last - (-1.0 / REPEAT_SCALE).exp()).abs() < 1e-9);
            last = next;
        }
        // Smaller deviations are not comparable; one beyond anything seen keeps its score.
        normalizer.observe(5.0);
        assert_eq!(normalizer.normalization().score(1e-12), last);
        assert_eq!(
            normalizer.normalization().score(1e-30),
            calibrated_score(30.0)
        );
    }

    #[test]
    fn frequent_small_probabilities_are_discounted() {
        let mut rng = TestRng::new(6);
        let mut normalizer = ScoreNormalizer::new();
        for _ in 0..10_000 {
            // Heavy tails: p is a power of a uniform, so small p is far too common.
            let u = rng.uniform();
            normalizer.observe(raw_score(u * u * u * u));
        }
        let n = normalizer.normalization();
        assert!(n.score(1e-6) < 0.01 * calibrated_score(6.0));
        // Still monotone.
        assert!(n.score(1e-30) > n.score(1e-10));
        assert!(n.score(1e-10) > n.score(1e-5));
    }

    #[test]
    fn repeats_are_counted_per_series() {
        // Two earlier spikes as large in a job of five series: each series spiked at most once.
        let mut normalizer = ScoreNormalizer::new();
        normalizer.observe(12.0);
        normalizer.observe(12.0);
        let one_series = normalizer.normalization().score(1e-12);
        let five_series = normalizer.normalization_per_series(5).score(1e-12);
        assert!(one_series < 0.5 * calibrated_score(12.0), "{one_series}");
        assert!(five_series > 0.8 * calibrated_score(12.0), "{five_series}");
        // In hindsight, a spike is not its own repeat whatever the number of series.
        let mut alone = ScoreNormalizer::new();
        alone.observe(12.0);
        assert_eq!(
            alone.normalization_per_series(5).score_in_hindsight(1e-12),
            calibrated_score(12.0)
        );
    }

    #[test]
    fn hindsight_does_not_count_a_result_as_its_own_repeat() {
        let mut normalizer = ScoreNormalizer::new();
        let before = normalizer.normalization().score(1e-12);
        normalizer.observe(12.0);
        let after = normalizer.normalization();
        assert!(after.score(1e-12) < before);
        assert_eq!(after.score_in_hindsight(1e-12), before);
        // A second one is a repeat, even in hindsight.
        normalizer.observe(12.0);
        assert!(normalizer.normalization().score_in_hindsight(1e-12) < before);
    }

    /// Renormalization rewrites only buckets with records (`job::renormalize`): that is right
    /// only while a probability that makes no record scores 0 under every history.
    #[test]
    fn what_makes_no_record_scores_zero_under_any_history() {
        let mut rng = TestRng::new(7);
        let mut normalizer = ScoreNormalizer::new();
        for i in 0..20_000 {
            let u = rng.uniform();
            normalizer.observe(raw_score(if i % 2 == 0 { u } else { u.powi(8) }));
            normalizer.end_bucket(HistoryDecay::for_bucket_span(300));
            if i % 997 == 0 {
                let n = normalizer.normalization();
                for p in [0.0351, 0.05, 0.5, 1.0] {
                    assert_eq!(n.score(p), 0.0, "{p} after {i}");
                    assert_eq!(n.score_in_hindsight(p), 0.0, "{p} after {i}");
                }
                // At the threshold itself, the knot's rounding leaves less than a millionth.
                assert!(n.score(RECORD_PROBABILITY_THRESHOLD) < 1e-6);
            }
        }
    }

    /// The history forgets in time, not in buckets: an episode weighs the same after six weeks
    /// of five-minute or of hourly buckets, and is gone after months; a job with daily buckets
    /// keeps at least `MIN_HISTORY_MEMORY_BUCKETS` of them.
    #[test]
    fn the_history_forgets_over_weeks_whatever_the_bucket_span() {
        let aged = |span_secs: i64, days: i64| {
            let decay = HistoryDecay::for_bucket_span(span_secs);
            let mut normalizer = ScoreNormalizer::new();
            for _ in 0..1000 {
                normalizer.observe(10.0);
            }
            for _ in 0..days * 86_400 / span_secs {
                normalizer.end_bucket(decay);
            }
            normalizer
        };
        let (five_minutes, hourly) = (aged(300, 42), aged(3_600, 42));
        let left = 1000.0 / std::f64::consts::E;
        assert!(
            (five_minutes.total - left).abs() < 1.0,
            "{}",
            five_minutes.total
        );
        assert!((hourly.total - left).abs() < 1.0, "{}", hourly.total);
        let (a, b) = (five_minutes.normalization(), hourly.normalization());
        assert!(b.score(1e-10) < 1e-3 * calibrated_score(10.0));
        assert!((a.score(1e-10) - b.score(1e-10)).abs() < 1e-9);
        assert!(aged(86_400, 42).total > 950.0);
        for span in [300, 3_600] {
            let n = aged(span, 365).normalization();
            let identity = Normalization::identity().score(1e-12);
            assert!(n.score(1e-12) > 0.999 * identity, "{span}");
        }
    }
}
