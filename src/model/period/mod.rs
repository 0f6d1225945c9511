//! Seasonal periods found in the data: a compact, ever-coarser history of one series and the
//! periodicity test run on it now and then.
//!
//! Owns detection only; `series` decides what to do with a period (add a seasonal predictor that
//! then competes with the others, drop it again when it stops helping).
//!
//! - **History.** A window of at most [`CAPACITY`] entries, each the mean of `per_entry` buckets.
//!   When it fills, neighbouring entries are averaged in pairs and `per_entry` doubles, so the
//!   window always spans the whole history seen, at a resolution that coarsens as it grows. A
//!   period of P buckets is tested at the resolution where it spans 1/6 to 1/3 of the window:
//!   between 3 and 6 cycles of evidence. Missing buckets are NaN entries, not zeros.
//! - **Test.** After removing a linear trend, the variogram `g(h)` (half the mean squared
//!   difference of entries `h` apart) dips at a period and its multiples, and only there: noise
//!   keeps it flat, a trend or a random walk makes it grow with `h`. A lag `L` is a period when
//!   `g(L)` is a small fraction of the mean of `g(1..L)` (the variance a profile folded at `L`
//!   would explain), with a significance test Bonferroni-corrected for the number of lags tried.
//!   Folding the window at fractional periods near `L` then locates the period below one entry,
//!   and it is rounded (to weeks, days, hours, quarter hours) only where the fold at the round
//!   period leaves about as little variance: a sharp profile tells 8 h 20 min from 8 h 15 min.
//! - **Cheap.** The test (quadratic in the window, ~16k multiply-adds) runs once every
//!   [`TEST_EVERY`] entries, not on every bucket.

use serde::{Deserialize, Serialize};

use crate::model::distribution::normal_upper_tail;
use crate::model::profile::{self, MANTISSA_MAX};

/// Most entries the window holds.
pub const CAPACITY: usize = 128;
/// The test runs each time this many entries have been added (and not before [`MIN_TESTED`]).
pub const TEST_EVERY: usize = 16;
const MIN_TESTED: usize = 48;
/// Cycles the window must hold of a period before it may be reported.
const MIN_CYCLES: usize = 3;
/// A period must explain at least this fraction of the variance at its lag...
const MIN_EXPLAINED: f64 = 0.5;
/// ...and be significant at this level after the Bonferroni correction for the lags tried.
const SIGNIFICANCE: f64 = 1e-3;
/// A period's multiples explain as much as the period itself (up to noise): the period is the
/// shortest lag the best one is a multiple of that explains this fraction of what the best does.
const HARMONIC_TOLERANCE: f64 = 0.7;
/// A round period is preferred to the estimate while its fold leaves at most this much more
/// variance (noise moves the fold of a smooth profile by a few percent; a spike folded a bucket
/// off per cycle leaves several times the variance).
const FOLD_TOLERANCE: f64 = 0.25;
/// Windows with more missing entries than this are not tested.
const MAX_MISSING: f64 = 0.25;
/// Shortest period in buckets: a seasonal profile needs a few buckets per cycle to have a shape.
pub const MIN_PERIOD_BUCKETS: i64 = 4;
/// The mantissa marking a missing entry (below the range `profile::quantize` produces).
const MISSING: i16 = i16::MIN;
/// Found periods snap to the roundest of these (seconds) within their uncertainty: cycles people
/// and machines make are whole weeks, days, hours or minutes, and a period that is off by a little
/// drifts through the profile every cycle.
const ROUND_UNITS: [i64; 6] = [7 * 86_400, 86_400, 3_600, 900, 300, 60];

/// The history of one series and the periodicity test on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodSearch {
    /// Bucket span in seconds.
    span: u32,
    /// Buckets averaged into one entry (a power of two).
    per_entry: u32,
    /// Time of the first bucket of entry 0.
    start: i64,
    /// Values are stored relative to the first one (`None` before it), so entries keep the
    /// detail of a large level.
    offset: Option<f64>,
    /// An entry is `mantissa * scale` (relative to `offset`); the scale follows the largest
    /// entry, so precision is about 1/26,000 of the window's range (plenty for a variance test).
    scale: f32,
    /// Sum and number of the buckets of the entry being filled.
    partial_sum: f64,
    partial_count: u32,
    /// Closed entries as mantissas ([`MISSING`] where no bucket was seen). Reserved whole when
    /// the first one is stored, and counted whole.
    entries: Vec<i16>,
}

/// A period found in the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Found {
    /// Seconds, a multiple of the bucket span.
    pub period: i64,
    /// Fraction of the variance at the period's lag it explains.
    pub explained: f64,
}

impl PeriodSearch {
    pub fn new(span_secs: i64) -> PeriodSearch {
        PeriodSearch {
            span: span_secs.clamp(1, i64::from(u32::MAX)) as u32,
            per_entry: 1,
            start: 0,
            offset: None,
            scale: 0.0,
            partial_sum: 0.0,
            partial_count: 0,
            entries: Vec::new(),
        }
    }

    pub fn span(&self) -> i64 {
        i64::from(self.span)
    }

    /// Forgets the history (and its memory) but keeps the bucket span: the search starts over.
    pub fn clear(&mut self) {
        *self = PeriodSearch::new(self.span());
    }

    /// Seconds one entry covers.
    fn entry_secs(&self) -> i64 {
        i64::from(self.per_entry) * self.span()
    }

    /// Learns one bucket value; returns a period when this bucket closed an entry, a test was due
    /// and it found one. Out-of-order buckets (before the entry being filled) and non-finite
    /// values are ignored.
    pub fn observe(&mut self, time: i64, value: f64) -> Option<Found> {
        if !value.is_finite() {
            return None;
        }
        let offset = match self.offset {
            Some(offset) => offset,
            None => {
                self.start = time;
                *self.offset.insert(value)
            }
        };
        let mut tested = None;
        loop {
            let index = time
                .checked_sub(self.start)
                .filter(|d| *d >= 0)
                .map(|d| d / self.entry_secs())?;
            let index = usize::try_from(index).unwrap_or(usize::MAX);
            let len = self.entries.len();
            if index < len {
                return None;
            }
            if index == len {
                self.partial_sum += value - offset;
                self.partial_count += 1;
                return tested;
            }
            if index - len > 2 * CAPACITY {
                // A gap longer than the whole window: nothing before it lines up any more.
                self.clear();
                return self.observe(time, value);
            }
            tested = self.close_entry().or(tested);
        }
    }

    /// Closes the entry being filled (NaN if it saw no bucket), compacting a full window, and runs
    /// the test when one is due.
    fn close_entry(&mut self) -> Option<Found> {
        let mean = if self.partial_count > 0 {
            self.partial_sum / f64::from(self.partial_count)
        } else {
            f64::NAN
        };
        self.push(mean);
        self.partial_sum = 0.0;
        self.partial_count = 0;
        if self.entries.len() >= CAPACITY {
            self.compact();
        }
        let len = self.entries.len();
        if len < MIN_TESTED || len % TEST_EVERY != 0 {
            return None;
        }
        let values: Vec<f64> = (0..len).map(|i| self.decode(i)).collect();
        let estimate = find_period(&values, self.min_lag())?;
        let entry_secs = self.entry_secs() as f64;
        let period = snap(
            estimate.lag * entry_secs,
            (estimate.uncertainty * entry_secs).max(f64::from(self.span)),
            self.span(),
            |period| estimate.folds_as_well(period / entry_secs),
        )?;
        Some(Found {
            period,
            explained: estimate.explained,
        })
    }

    /// The shortest lag (entries) that is a period of at least `MIN_PERIOD_BUCKETS` buckets.
    fn min_lag(&self) -> usize {
        (MIN_PERIOD_BUCKETS as usize)
            .div_ceil(self.per_entry as usize)
            .max(2)
    }

    /// The entry at `index` relative to `offset` (NaN if missing).
    fn decode(&self, index: usize) -> f64 {
        match self.entries.get(index) {
            Some(m) if *m != MISSING => f64::from(*m) * f64::from(self.scale),
            _ => f64::NAN,
        }
    }

    /// Stores `mean` (NaN: missing) as the next entry, rescaling the window if it does not fit.
    fn push(&mut self, mean: f64) {
        if self.entries.capacity() < CAPACITY {
            self.entries.reserve_exact(CAPACITY - self.entries.len());
        }
        if mean.is_finite() && mean.abs() > MANTISSA_MAX * f64::from(self.scale) {
            let values: Vec<f64> = (0..self.entries.len()).map(|i| self.decode(i)).collect();
            // With headroom for growth, as a profile block does.
            let scale = profile::scale_for(mean.abs());
            if !scale.is_finite() {
                self.clear();
                return;
            }
            self.scale = scale;
            for (m, v) in self.entries.iter_mut().zip(values) {
                *m = quantize(v, scale);
            }
        }
        self.entries.push(quantize(mean, self.scale));
    }

    /// Averages neighbouring entries in pairs: half the entries, each twice as long (in place, so
    /// the reservation stays).
    fn compact(&mut self) {
        let Some(per_entry) = self.per_entry.checked_mul(2) else {
            self.clear();
            return;
        };
        if i64::from(per_entry).checked_mul(self.span()).is_none() {
            self.clear();
            return;
        }
        let half = self.entries.len() / 2;
        for i in 0..half {
            let pair = [self.decode(2 * i), self.decode(2 * i + 1)];
            let seen: Vec<f64> = pair.into_iter().filter(|v| v.is_finite()).collect();
            let mean = if seen.is_empty() {
                f64::NAN
            } else {
                seen.iter().sum::<f64>() / seen.len() as f64
            };
            self.entries[i] = quantize(mean, self.scale);
        }
        self.entries.truncate(half);
        self.per_entry = per_entry;
    }

    /// Bytes held: the struct, and the whole window once it holds anything (it is reserved whole,
    /// so memory does not creep up as it fills).
    pub fn approximate_bytes(&self) -> usize {
        let window = if self.offset.is_some() {
            CAPACITY * std::mem::size_of::<i16>()
        } else {
            0
        };
        std::mem::size_of::<PeriodSearch>() + window
    }
}

/// The nearest mantissa of `value` at `scale` ([`MISSING`] for NaN).
fn quantize(value: f64, scale: f32) -> i16 {
    if value.is_nan() {
        MISSING
    } else {
        profile::quantize(value, f64::from(scale))
    }
}
/// What a series keeps about found periods: the search (its window held only while the series
/// is searching) and whether its last predictor is a found period's, with how long that one has
/// gone without being competitive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Periods {
    pub search: PeriodSearch,
    /// True when the series' last predictor models a found period.
    pub found: bool,
    /// Buckets the found period's predictor has been ready yet not competitive, in a row.
    pub idle: u32,
}

impl Periods {
    pub fn new(span_secs: i64) -> Periods {
        Periods {
            search: PeriodSearch::new(span_secs),
            found: false,
            idle: 0,
        }
    }

    pub fn approximate_bytes(&self) -> usize {
        std::mem::size_of::<Periods>() - std::mem::size_of::<PeriodSearch>()
            + self.search.approximate_bytes()
    }
}

/// `x` with its least-squares line removed (NaNs stay NaN).
fn detrended(entries: &[f64]) -> Vec<f64> {
    let points = entries
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, v)| (i as f64, *v));
    let (mut n, mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (x, y) in points {
        n += 1.0;
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    let denominator = n * sxx - sx * sx;
    let slope = if denominator > 0.0 {
        (n * sxy - sx * sy) / denominator
    } else {
        0.0
    };
    let intercept = if n > 0.0 { (sy - slope * sx) / n } else { 0.0 };
    entries
        .iter()
        .enumerate()
        .map(|(i, v)| v - intercept - slope * i as f64)
        .collect()
}

/// The variogram `g(h)` for `h` in `0..max_lag` (index 0 unused) and the pairs behind each.
fn variogram(x: &[f64], max_lag: usize) -> (Vec<f64>, Vec<usize>) {
    let mut gamma = vec![f64::NAN; max_lag];
    let mut pairs = vec![0; max_lag];
    for h in 1..max_lag.min(x.len()) {
        let mut sum = 0.0;
        let mut count = 0;
        for i in h..x.len() {
            let d = x[i] - x[i - h];
            if d.is_finite() {
                sum += d * d;
                count += 1;
            }
        }
        if count > 0 {
            gamma[h] = sum / (2.0 * count as f64);
        }
        pairs[h] = count;
    }
    (gamma, pairs)
}

/// A period found in a window of entries, before it is rounded to seconds.
pub struct Estimate {
    /// Entries, fractional.
    pub lag: f64,
    /// Entries.
    pub uncertainty: f64,
    /// Fraction of the variance at the lag the period explains.
    pub explained: f64,
    /// The window, detrended, and what is left of it folded at `lag` (`fold_dispersion`).
    detrended: Vec<f64>,
    dispersion: f64,
}

impl Estimate {
    /// Whether folding the window at `lag` entries leaves about as little variance as the
    /// estimate does: a rounder period within the uncertainty that smears a sharp profile (a
    /// spike every 100 buckets folded at 99) does not.
    fn folds_as_well(&self, lag: f64) -> bool {
        let dispersion = fold_dispersion(&self.detrended, lag);
        dispersion <= self.dispersion * (1.0 + FOLD_TOLERANCE) + f64::EPSILON
    }
}

/// The period in `entries`, if there is one of at least `min_lag` entries with [`MIN_CYCLES`]
/// cycles in the window.
pub fn find_period(entries: &[f64], min_lag: usize) -> Option<Estimate> {
    let n = entries.len();
    let seen = entries.iter().filter(|v| v.is_finite()).count();
    if n < MIN_CYCLES * min_lag.max(2) || (seen as f64) < (1.0 - MAX_MISSING) * n as f64 {
        return None;
    }
    let x = detrended(entries);
    let (gamma, pairs) = variogram(&x, n / MIN_CYCLES + 2);
    let max_lag = n / MIN_CYCLES;
    let tried = (max_lag + 1).saturating_sub(min_lag).max(1) as f64;
    // Explained fraction at each lag that passes the significance test.
    let mut reference = 0.0;
    let mut explained = vec![f64::NAN; max_lag + 1];
    for lag in 2..=max_lag {
        // The lags within one cycle, short of the dip itself: what a lag that is no period gives.
        reference += gamma[lag - 1];
        let mean = reference / (lag - 1) as f64;
        if lag < min_lag || mean.is_nan() || mean <= 0.0 || pairs[lag] == 0 {
            continue;
        }
        let ratio = gamma[lag] / mean;
        let local_minimum = gamma[lag] <= gamma[lag - 1] && gamma[lag] <= gamma[lag + 1];
        // Under noise, ln g(L) has a variance of about 3 / pairs (neighbouring differences
        // share a value); the reference averages many lags and adds little.
        let sd = (3.0 / pairs[lag] as f64 + 3.0 / n as f64).sqrt();
        let p = normal_upper_tail(-ratio.max(1e-300).ln() / sd) * tried;
        if local_minimum && 1.0 - ratio >= MIN_EXPLAINED && p <= SIGNIFICANCE {
            explained[lag] = 1.0 - ratio;
        }
    }
    let best = (min_lag..=max_lag)
        .filter(|l| explained[*l].is_finite())
        .max_by(|a, b| explained[*a].total_cmp(&explained[*b]))?;
    // The shortest lag the best one is a multiple of (within an entry) that explains nearly as
    // much: the period rather than one of its multiples.
    let lag = (min_lag..=best)
        .find(|l| {
            let off = best % l;
            explained[*l] >= HARMONIC_TOLERANCE * explained[best] && off.min(l - off) <= 1
        })
        .unwrap_or(best);
    let (period, uncertainty, dispersion) = refine(&x, lag);
    Some(Estimate {
        lag: period,
        uncertainty,
        explained: explained[lag],
        detrended: x,
        dispersion,
    })
}

/// The period near `lag` (fractional entries), its uncertainty and its fold's dispersion: the
/// one whose fold leaves the least variance within phase bins of one entry (phase dispersion
/// minimization), tried in steps of a fraction of an entry within an entry of `lag`. Every cycle
/// in the window contributes, so a period is located to about two entries spread over the cycles
/// the window holds (noise moves the least dispersion by more than one).
fn refine(x: &[f64], lag: usize) -> (f64, f64, f64) {
    let cycles = (x.len() as f64 / lag as f64).max(1.0);
    let step = 1.0 / (4.0 * cycles);
    let steps = (1.0 / step).ceil() as i32;
    let tried: Vec<(f64, f64)> = (-steps..=steps)
        .map(|j| lag as f64 + f64::from(j) * step)
        .filter(|period| *period >= 2.0)
        .map(|period| (period, fold_dispersion(x, period)))
        .collect();
    let least = tried.iter().map(|t| t.1).fold(f64::INFINITY, f64::min);
    // The dispersion is flat while the drift over the window stays within a bin: the middle of
    // the flat stretch is the estimate, not its edge.
    let ties = tried.iter().filter(|t| t.1 <= least * (1.0 + 1e-9));
    let (low, high) = ties.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), t| {
        (l.min(t.0), h.max(t.0))
    });
    let best = if low <= high {
        (low + high) / 2.0
    } else {
        lag as f64
    };
    (best, 2.0 / cycles, least)
}

/// The sum of squares of `x` about the means of its phase bins when folded at `period` entries
/// (bins one entry wide; NaN entries skipped).
fn fold_dispersion(x: &[f64], period: f64) -> f64 {
    let bins = (period.round() as usize).max(1);
    let mut sums = vec![(0.0, 0.0, 0.0); bins];
    for (i, v) in x.iter().enumerate().filter(|(_, v)| v.is_finite()) {
        // Bins centred on whole entries, so a period a little short or long smears alike.
        let phase = (i as f64 % period) / period;
        let bin = &mut sums[((phase * bins as f64).round() as usize) % bins];
        *bin = (bin.0 + 1.0, bin.1 + v, bin.2 + v * v);
    }
    sums.iter()
        .filter(|(n, _, _)| *n > 0.0)
        .map(|(n, sum, squares)| squares - sum * sum / n)
        .sum()
}

/// The roundest multiple of the bucket span within `uncertainty` of `period` (seconds) that `fits`
/// the data, if it is at least [`MIN_PERIOD_BUCKETS`] buckets long.
fn snap(period: f64, uncertainty: f64, span: i64, fits: impl Fn(f64) -> bool) -> Option<i64> {
    if !period.is_finite() || period > i64::from(u32::MAX) as f64 {
        return None;
    }
    let units = ROUND_UNITS
        .iter()
        .copied()
        .filter(|u| *u > span && u % span == 0)
        .chain([span]);
    let mut snapped = None;
    for unit in units {
        let multiple = (period / unit as f64).round() as i64 * unit;
        if multiple > 0 && (multiple as f64 - period).abs() <= uncertainty && fits(multiple as f64)
        {
            snapped = Some(multiple);
            break;
        }
    }
    let snapped = snapped.unwrap_or(((period / span as f64).round() as i64).max(1) * span);
    (snapped >= MIN_PERIOD_BUCKETS * span).then_some(snapped)
}

#[cfg(test)]
mod tests;
