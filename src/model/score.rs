//! Probabilities -> scores: the raw score, the calibrated 0..100 mapping and the job's normalizer.
//!
//! Owns the meaning of a score. Does not compute probabilities (`series`) nor decide which series
//! are records (`detector_model`); the detector feeds every scored probability of a finalized
//! bucket into [`ScoreNormalizer::observe`] and asks it for a [`Normalization`] before scoring a
//! bucket. The normalizer's state is part of the model snapshot.
//!
//! Raw score: `-log10(p)`, 0..308. Calibrated score: a fixed monotone piecewise-linear map of the
//! raw score chosen so that a correctly calibrated model rarely crosses the ES severity bands by
//! chance (see `KNOTS`). History adjustment: if this job has produced small probabilities *more
//! often than they claim* (`P(p <= 10^-x)` should be `10^-x`), the excess, in decades, is
//! subtracted from raw scores above the best-supported part of the histogram (proportionally
//! below it), so a noisy, heavy-tailed job is not a wall of critical anomalies while a well-behaved
//! one keeps its calibrated scores. Only finalized buckets feed the history.
//!
//! The history counts buckets, not events: collapsing a series' run of consecutive surprising
//! buckets to its peak (so a six-hour holiday is one anomaly, not twelve) found two more NAB
//! windows but doubled the false positives of noisy jobs, NAB -3.4 to -6.2 for runs above raw
//! 1.5 to 5. Counting events for the repeats alone (the excess still counting buckets): NAB
//! 68.6-68.9 with 1-5 repeats to halve, too little for a second histogram and per-series state.
//! Nor is the excess extrapolated from the slope of the history's tail (a line through the log
//! frequency of raw scores above 1.5-2.5, so a heavy tail is compressed in proportion): NAB
//! 57.8-63.8. Real anomalies sit on the tail of a noisy job's history, and a fitted slope bends
//! with them.

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
/// The history's excess is taken out in full up to this multiple of the best-supported raw score
/// (or the history's largest, if lower), then fades (see `Normalization::adjusted_raw`). Below
/// 2 NAB loses points (1.5: -0.35; 1.25 lost 1.9 more) as a noisy job's rarer usual deviations go
/// undiscounted; above it nothing changes (3.0). 1.5 was kept while a first weekend's misfits
/// stayed in the history (a dip as deep as its worst scored 9 at 2.0); they are taken back now
/// (`model::misfits`).
const EXCESS_REACH: f64 = 2.0;
/// Decades beyond the reach over which the excess correction fades by a factor `e`.
const EXCESS_FADE: f64 = 1.0;
/// The history forgets over this stretch of time (by a factor `e`), whatever the bucket span.
/// What makes a job's probabilities over-confident (a season the model has not learnt, a noisy
/// deployment, a change of traffic) comes and goes in calendar time, like Elasticsearch's
/// renormalization window: counted in buckets (10,000 before), an hourly job remembered a noisy
/// episode for fourteen months and kept discounting every later anomaly by it. NAB 68.4 -> 70.9
/// (both halves up); 4-9 weeks all score 70.4-70.9, two weeks 69.0, four months 68.9.
const HISTORY_MEMORY_SECS: f64 = 42.0 * 86_400.0;
/// ...but over at least this many buckets, so a job with long buckets still gathers the
/// history a tail needs (`MIN_TOTAL`, `MIN_TAIL`).
const MIN_HISTORY_MEMORY_BUCKETS: f64 = 1_000.0;
/// A tail of the histogram is trusted once it holds this many observations (NAB: 5 -0.1, 15
/// -2.5; with the older bucket-counted memory 20 -4.5, 40 -7.5: the excess must come from the top
/// of the history)...
const MIN_TAIL: f64 = 10.0;
/// ...and the histogram this many in all.
const MIN_TOTAL: f64 = 200.0;
/// Earlier series-buckets at least this fraction of a raw score count as comparable anomalies.
const COMPARABLE: f64 = 1.0;
/// With this many comparable anomalies in the history, a score is halved: what keeps happening
/// is less anomalous each time, so a spiky series does not flood the top scores.
const REPEATS_TO_HALVE: f64 = 3.0;

fn bin_of(raw: f64) -> usize {
    let raw = raw.max(0.0);
    let bin = if raw < FINE_LIMIT {
        raw / BIN_WIDTH
    } else {
        FINE_LIMIT / BIN_WIDTH + (raw - FINE_LIMIT) / COARSE_WIDTH
    };
    (bin as usize).min(BINS - 1)
}

fn bin_edge(bin: usize) -> f64 {
    let fine = (FINE_LIMIT / BIN_WIDTH) as usize;
    if bin <= fine {
        bin as f64 * BIN_WIDTH
    } else {
        FINE_LIMIT + (bin - fine) as f64 * COARSE_WIDTH
    }
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

    /// The adjustment to apply to the next bucket's raw scores.
    pub fn normalization(&self) -> Normalization {
        let mut excess: f64 = 0.0;
        let mut pivot: f64 = 0.0;
        // tail[i]: history at or above bin i.
        let mut tail = vec![0.0; self.counts.len() + 1];
        for i in (0..self.counts.len()).rev() {
            tail[i] = tail[i + 1] + self.counts[i];
        }
        if self.total >= MIN_TOTAL {
            for i in (1..self.counts.len()).rev() {
                if tail[i] < MIN_TAIL {
                    continue;
                }
                let edge = bin_edge(i);
                if pivot == 0.0 {
                    pivot = edge;
                }
                excess = excess.max(edge + (tail[i] / self.total).log10());
            }
        }
        // The upper edge of the largest raw score the history holds (a decayed half count or
        // more): beyond it the history has never shown anything comparable.
        let top = (0..self.counts.len())
            .rev()
            .find(|&i| self.counts[i] >= 0.5)
            .map_or(0.0, |i| bin_edge(i + 1));
        Normalization {
            excess: excess.clamp(0.0, pivot),
            pivot,
            top,
            tail,
        }
    }
}

/// How to turn one bucket's raw scores into scores, given the job's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalization {
    /// Decades by which this job's history is more anomalous than its probabilities claim.
    excess: f64,
    /// The largest raw score the history supports with enough observations.
    pivot: f64,
    /// The largest raw score the history has shown (upper edge of its bin).
    top: f64,
    /// History at or above each bin (empty: no history).
    tail: Vec<f64>,
}

impl Normalization {
    /// No history: scores are the calibrated ones.
    pub fn identity() -> Normalization {
        Normalization {
            excess: 0.0,
            pivot: 0.0,
            top: 0.0,
            tail: Vec::new(),
        }
    }

    /// The raw score with the history's excess taken out; monotone and never negative.
    ///
    /// The excess is measured where the history has support (up to `pivot`): taken out
    /// proportionally below the pivot and in full up to the reach: `EXCESS_REACH` times the pivot,
    /// or the largest raw score the history holds if that is lower. Beyond the reach the history
    /// has never shown anything comparable, so its excess says nothing about such a score and the
    /// correction fades by `e` every `EXCESS_FADE` decades: a noisy job's usual deviations stay
    /// discounted, while the largest it has ever shown keeps most of its score. Monotone: the
    /// correction only shrinks as the raw score grows.
    pub fn adjusted_raw(&self, raw: f64) -> f64 {
        if self.excess <= 0.0 || self.pivot <= 0.0 {
            return raw;
        }
        let reach = (EXCESS_REACH * self.pivot).min(self.top).max(self.pivot);
        let fraction = if raw <= self.pivot {
            raw / self.pivot
        } else if raw <= reach {
            1.0
        } else {
            (-(raw - reach) / EXCESS_FADE).exp()
        };
        raw - self.excess * fraction
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
        self.score_with_repeats(probability, 1.0)
    }

    /// The score with `own` of the comparable history discounted as the result itself.
    fn score_with_repeats(&self, probability: f64, own: f64) -> f64 {
        let raw = raw_score(probability);
        let repeats = (self.comparable(raw) - own).max(0.0);
        calibrated_score(self.adjusted_raw(raw)) / (1.0 + repeats / REPEATS_TO_HALVE)
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
        assert!(n.excess < 0.4, "{n:?}");
        assert!(n.score(1e-20) > 0.95 * calibrated_score(20.0));
    }

    #[test]
    fn the_excess_correction_fades_beyond_the_largest_score_in_the_history() {
        let mut rng = TestRng::new(8);
        let mut normalizer = ScoreNormalizer::new();
        // 500 buckets of calibrated noise plus one episode of 16 large deviations (raw 5..10), as
        // a series shows while its weekly cycle is still unknown.
        for _ in 0..500 {
            normalizer.observe(raw_score(rng.uniform()));
        }
        for i in 0..16 {
            normalizer.observe(5.0 + 5.0 * f64::from(i) / 15.0);
        }
        let n = normalizer.normalization();
        assert!(n.excess > 3.0, "{n:?}");
        // Inside the history the job's deviations are discounted in full...
        assert!(n.adjusted_raw(8.0) < 8.0 - 0.99 * n.excess);
        // ...while one well beyond anything it has shown keeps most of its score.
        let beyond = n.top + 2.0;
        assert!(n.adjusted_raw(beyond) > beyond - 0.15 * n.excess, "{n:?}");
        assert!(n.score(10f64.powf(-beyond)) > 2.0 * n.score(1e-8));
        // Monotone throughout.
        let mut last = 0.0;
        let mut raw = 0.0;
        while raw < 60.0 {
            let adjusted = n.adjusted_raw(raw);
            assert!(adjusted >= last, "{raw}: {adjusted} < {last}");
            last = adjusted;
            raw += 0.01;
        }
    }

    #[test]
    fn frequent_small_probabilities_are_discounted() {
        let mut rng = TestRng::new(6);
        let mut normalizer = ScoreNormalizer::new();
        for _ in 0..10_000 {
            // Heavy tails: p is the square of a uniform, so small p is far too common.
            let u = rng.uniform();
            normalizer.observe(raw_score(u * u * u * u));
        }
        let n = normalizer.normalization();
        assert!(n.excess > 1.0, "{n:?}");
        assert!(n.score(1e-6) < calibrated_score(6.0));
        // Still monotone.
        assert!(n.score(1e-30) > n.score(1e-10));
        assert!(n.score(1e-10) > n.score(1e-5));
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
        assert_eq!((a.excess, a.pivot, a.top), (b.excess, b.pivot, b.top));
        assert!(b.excess > 9.0);
        assert!((a.score(1e-10) - b.score(1e-10)).abs() < 1e-3);
        assert!(aged(86_400, 42).total > 950.0);
        for span in [300, 3_600] {
            let n = aged(span, 365).normalization();
            assert_eq!((n.excess, n.pivot), (0.0, 0.0));
            assert_eq!(n.score(1e-12), Normalization::identity().score(1e-12));
        }
    }
}
