//! The rare functions' scoring in a [`Population`]: how a partition's attributes rank by their
//! sightings, and a pair's rarity from that ranking (`rare.rs` has the arithmetic).
//!
//! A child of `population` so it reads the population's tables directly.

use super::{Pair, PairVerdict, Population};
use crate::model::accumulator::SeriesAccumulator;
use crate::model::rare::{Ranking, Sightings, RARE_WARMUP_BUCKETS};

/// What scoring a rare function's pair needs besides the pair.
pub(super) struct RareContext<'a> {
    pub freq: bool,
    pub ranking: &'a Ranking,
    /// Members of the pair's partition.
    pub members: f64,
    pub bucket_start: i64,
}

impl Population {
    /// The rare functions' view of a partition: how its attributes rank, and its member count.
    pub(super) fn ranking(&self, partition: &str, freq: bool) -> (Ranking, f64) {
        let ids = self
            .attributes
            .iter()
            .enumerate()
            .filter(|(_, a)| a.partition == partition)
            .map(|(i, _)| i as u32);
        let members = self
            .members
            .iter()
            .filter(|m| m.partition == partition)
            .count() as f64;
        (self.sightings(freq).ranking(ids), members)
    }

    /// Which sightings make an attribute common for the rare functions.
    fn sightings(&self, freq: bool) -> &Sightings {
        if freq {
            &self.attribute_records
        } else if self.has_over {
            &self.attribute_members
        } else {
            &self.attribute_buckets
        }
    }

    /// `rare`: how rare the attribute is in time (no over field) or among the members (over field).
    /// `freq_rare`: how rare among all records, sharpened by how often the member used it.
    pub(super) fn rare_verdict(
        &self,
        id: u32,
        pair: &Pair,
        accumulator: &SeriesAccumulator,
        rare: &RareContext,
    ) -> PairVerdict {
        let mut verdict = Population::empty_verdict(id);
        let buckets = self.attribute_buckets.buckets();
        let sightings = self.sightings(rare.freq);
        let count = accumulator.totals().count;
        let members = rare.members.max(1.0);
        let (probability, typical) = if rare.freq {
            let p = sightings.rarity(pair.attribute, count, rare.ranking, buckets);
            // Each further use of a rare value by the same member is further evidence.
            let typical = sightings.count(pair.attribute) / members;
            (p.powf((1.0 + count).log2().max(1.0)), typical)
        } else if self.has_over {
            let new = f64::from(u8::from(pair.first_seen == rare.bucket_start));
            let p = sightings.rarity(pair.attribute, new, rare.ranking, rare.members);
            (p, sightings.count(pair.attribute) / members)
        } else {
            let p = sightings.rarity(pair.attribute, 1.0, rare.ranking, buckets);
            (p, sightings.rate(pair.attribute))
        };
        verdict.scored = buckets >= RARE_WARMUP_BUCKETS;
        verdict.probability = if verdict.scored { probability } else { 1.0 };
        verdict.actual = vec![if rare.freq { count } else { 1.0 }];
        verdict.typical = vec![typical];
        verdict
    }
}
