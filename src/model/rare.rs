//! Rarity of categories: how unusual it is to see a value (a by value, or a by value used by a
//! member of a population) given how often each value has been seen. Also the "frequent value"
//! test behind `exclude_frequent`.
//!
//! Owns the arithmetic only: the caller (`population`) says what a category is and what counts as
//! one sighting (a bucket in which the value appeared; a member that used it). Everything is kept
//! in vectors indexed by the caller's dense ids, so iteration order is id order.

use serde::{Deserialize, Serialize};

use crate::model::distribution::clamp_probability;

/// Weight kept per bucket: sightings fade with a memory of about two thousand buckets.
const DECAY: f64 = 0.9995;
/// Elasticsearch: "a learning period of at least 20 buckets is required".
pub const RARE_WARMUP_BUCKETS: f64 = 20.0;
/// A value seen in more than this fraction of buckets is frequent (`exclude_frequent`), as in
/// Elasticsearch's engine.
const FREQUENT_FRACTION: f64 = 0.1;
/// Buckets before anything can be called frequent.
const FREQUENT_WARMUP_BUCKETS: f64 = 10.0;

/// Decayed sightings per category, plus the decayed number of buckets they were counted over.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sightings {
    counts: Vec<f64>,
    buckets: f64,
}

impl Sightings {
    pub fn buckets(&self) -> f64 {
        self.buckets
    }

    pub fn count(&self, category: u32) -> f64 {
        self.counts.get(category as usize).copied().unwrap_or(0.0)
    }

    /// Ages every count by one bucket.
    pub fn end_bucket(&mut self) {
        for c in &mut self.counts {
            *c *= DECAY;
        }
        self.buckets = self.buckets * DECAY + 1.0;
    }

    pub fn add(&mut self, category: u32, amount: f64) {
        let index = category as usize;
        if self.counts.len() <= index {
            self.counts.resize(index + 1, 0.0);
        }
        self.counts[index] += amount;
    }

    /// Renumbers categories after a prune (`remap[old] = new`, `u32::MAX` = gone).
    pub fn remap(&mut self, remap: &[u32]) {
        let mut counts = vec![0.0; remap.iter().filter(|r| **r != u32::MAX).count()];
        for (old, new) in remap.iter().enumerate() {
            if let (Some(slot), Some(count)) = (counts.get_mut(*new as usize), self.counts.get(old))
            {
                *slot = *count;
            }
        }
        self.counts = counts;
    }

    /// Seen in more than a tenth of the buckets, once there is enough history to say so.
    pub fn is_frequent(&self, category: u32) -> bool {
        self.buckets >= FREQUENT_WARMUP_BUCKETS
            && self.count(category) > FREQUENT_FRACTION * self.buckets
    }

    /// The fraction of buckets in which `category` was seen, before this one.
    pub fn rate(&self, category: u32) -> f64 {
        if self.buckets <= 0.0 {
            return 0.0;
        }
        (self.count(category) / self.buckets).min(1.0)
    }

    /// The counts of the categories `among` (ids sharing a partition), sorted, for [`Self::rarity`]:
    /// built once per bucket so scoring a value costs a binary search, not a pass over all values.
    pub fn ranking(&self, among: impl Iterator<Item = u32>) -> Ranking {
        let mut sorted: Vec<f64> = among.map(|c| self.count(c)).collect();
        sorted.sort_by(f64::total_cmp);
        let mut prefix = Vec::with_capacity(sorted.len() + 1);
        prefix.push(0.0);
        for c in &sorted {
            prefix.push(prefix[prefix.len() - 1] + c);
        }
        Ranking { sorted, prefix }
    }

    /// How rare `category` (one of the ranking's categories) is, seen `now` more times in the
    /// bucket being scored, given `base`, the number of chances it had to be seen (buckets, or
    /// members of a population):
    ///
    /// - among the values: the share of all sightings that belong to values seen at most as often
    ///   as this one (the "less likely categories" mass of a multinomial);
    /// - in time (or across members): the chance, under a Beta-Bernoulli with a Jeffreys prior,
    ///   that it shows up at one more chance, given the chances it was and was not seen at.
    ///
    /// Both must be small for a value to be rare, so the product is reported: a value used by
    /// nobody else but every bucket is not rare, nor is one of many equally occasional values.
    pub fn rarity(&self, category: u32, now: f64, ranking: &Ranking, base: f64) -> f64 {
        let before = self.count(category);
        let own = before + now;
        // The ranking holds `before` for this category; it counts as `own` now.
        let total = ranking.total() - before + own;
        let rarer = ranking.at_most(own) - before + own;
        let among_values = if total > 0.0 {
            (rarer / total).min(1.0)
        } else {
            1.0
        };
        let in_time = (before + 0.5) / (base.max(0.0) + 1.0);
        clamp_probability(among_values * in_time.min(1.0))
    }
}

/// Sorted counts of a partition's categories with their running sums.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ranking {
    sorted: Vec<f64>,
    prefix: Vec<f64>,
}

impl Ranking {
    fn total(&self) -> f64 {
        self.prefix.last().copied().unwrap_or(0.0)
    }

    /// The sum of the counts that are at most `count`.
    fn at_most(&self, count: f64) -> f64 {
        let n = self.sorted.partition_point(|c| *c <= count);
        self.prefix[n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(buckets: usize, categories: &[u32]) -> Sightings {
        let mut s = Sightings::default();
        for _ in 0..buckets {
            for c in categories {
                s.add(*c, 1.0);
            }
            s.end_bucket();
        }
        s
    }

    #[test]
    fn a_new_value_is_rare_and_a_daily_one_is_not() {
        let s = history(500, &[0, 1, 2, 3]);
        let all = s.ranking(0..5u32);
        let new = s.rarity(4, 1.0, &all, s.buckets());
        let usual = s.rarity(0, 1.0, &all, s.buckets());
        assert!(new < 1e-5, "{new}");
        assert!(usual > 0.5, "{usual}");
    }

    #[test]
    fn an_occasional_value_is_less_rare_than_a_new_one() {
        let mut s = history(300, &[0, 1]);
        for _ in 0..5 {
            s.add(2, 1.0);
            s.end_bucket();
        }
        let occasional = s.rarity(2, 1.0, &s.ranking(0..4), s.buckets());
        let new = s.rarity(3, 1.0, &s.ranking(0..4), s.buckets());
        assert!(new < occasional, "{new} {occasional}");
        assert!(occasional < 0.01, "{occasional}");
    }

    #[test]
    fn many_equally_occasional_values_are_not_rare() {
        // Every bucket brings a value seen once before: a long tail is the norm here.
        let mut s = Sightings::default();
        for b in 0..200u32 {
            s.add(b, 1.0);
            s.end_bucket();
        }
        let p = s.rarity(200, 1.0, &s.ranking(0..201), s.buckets());
        assert!(p > 1e-4, "{p}");
    }

    #[test]
    fn remap_keeps_counts_with_their_values() {
        let mut s = history(3, &[0, 2]);
        s.remap(&[u32::MAX, 0, 1]);
        assert_eq!(s.count(0), 0.0);
        assert!(s.count(1) > 2.9);
    }

    #[test]
    fn frequent_needs_history_and_a_tenth_of_the_buckets() {
        let mut s = history(5, &[0]);
        assert!(!s.is_frequent(0));
        s = history(50, &[0]);
        assert!(s.is_frequent(0));
        assert!(!s.is_frequent(1));
    }
}
