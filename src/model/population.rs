//! Population analysis (`over_field_name`) and the functions whose bucket value is not one number
//! followed through time: `rare`, `freq_rare`, `time_of_day`, `time_of_week`, `lat_long`.
//!
//! Vocabulary (Elasticsearch's): a *member* is an over value (or the one implicit member `""` when
//! there is no over field); an *attribute* is a (partition, by) value; a *pair* is a member using an
//! attribute, and is what open-bucket accumulators are keyed by. Each attribute has one model of
//! what its members' bucket values look like ([`Mixture`] per feature; for the rare functions,
//! how often each attribute is seen, [`Sightings`]). A bucket is scored pair by pair against the
//! attribute's model *before* the bucket is learnt, so one member behaving unlike the rest stands
//! out and then becomes a (small) part of what is normal.
//!
//! Results: with an over field one record per unusual member, carrying `causes` (one per by
//! value); without one, one record per unusual pair, exactly like an ordinary series. Members and
//! attributes are kept in id order with `BTreeMap` indexes, so results and snapshots are
//! deterministic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::accumulator::{DetectorBucket, Feature, SeriesAccumulator};
use crate::model::causes::{Cause, GeoResults};
use crate::model::function::Tail;
use crate::model::geo::render_point;
use crate::model::mixture::{Mixture, Space};
use crate::model::rare::{Ranking, Sightings, RARE_WARMUP_BUCKETS};
use crate::model::score::RECORD_PROBABILITY_THRESHOLD;
use crate::model::series::{Assessment, WARMUP_BUCKETS};

/// Causes kept per member record, most unusual first.
const MAX_CAUSES: usize = 10;

/// What is modelled per attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Measure {
    /// Bucket features of the member's records (count, mean, distinct count, ...), each with the
    /// side it flags and whether it is a count.
    Features(Vec<(Feature, Tail, bool)>),
    /// The circular mean of the records' times in a cycle of this many seconds.
    Phase(f64),
    /// The mean position of the records.
    Position,
    /// `rare` (`freq: false`) or `freq_rare`.
    Rare { freq: bool },
}

/// Which frequent values `exclude_frequent` leaves out of the results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExcludeFrequent {
    pub by: bool,
    pub over: bool,
}

impl ExcludeFrequent {
    pub fn parse(value: Option<&str>) -> ExcludeFrequent {
        match value {
            Some("all") => ExcludeFrequent {
                by: true,
                over: true,
            },
            Some("by") => ExcludeFrequent {
                by: true,
                over: false,
            },
            Some("over") => ExcludeFrequent {
                by: false,
                over: true,
            },
            _ => ExcludeFrequent::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Attribute {
    partition: String,
    by: String,
    /// One per feature (one for a point measure, none for the rare functions).
    models: Vec<Mixture>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Member {
    partition: String,
    over: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pair {
    member: u32,
    attribute: u32,
    first_seen: i64,
    last_seen: i64,
}

/// One pair's verdict in one bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct PairVerdict {
    pub pair: u32,
    pub probability: f64,
    pub scored: bool,
    /// Which feature was most unusual (index into `Measure::Features`).
    pub feature: usize,
    pub actual: Vec<f64>,
    pub typical: Vec<f64>,
    /// (actual, typical) points of `lat_long`.
    pub points: Option<([f64; 2], [f64; 2])>,
}

/// The population state of one detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Population {
    measure: Measure,
    /// False for the functions that use this module without an over field.
    has_over: bool,
    exclude: ExcludeFrequent,
    attributes: Vec<Attribute>,
    attribute_index: Index,
    members: Vec<Member>,
    member_index: Index,
    pairs: Vec<Pair>,
    pair_index: BTreeMap<(u32, u32), u32>,
    /// Buckets each attribute was seen in (`rare` in time, `exclude_frequent: by`).
    attribute_buckets: Sightings,
    /// Members that use each attribute (`rare` over a population).
    attribute_members: Sightings,
    /// Records of each attribute (`freq_rare`).
    attribute_records: Sightings,
    /// Buckets each member was seen in (`exclude_frequent: over`).
    member_buckets: Sightings,
}

impl Population {
    pub fn new(measure: Measure, has_over: bool, exclude: ExcludeFrequent) -> Population {
        Population {
            measure,
            has_over,
            exclude,
            attributes: Vec::new(),
            attribute_index: BTreeMap::new(),
            members: Vec::new(),
            member_index: BTreeMap::new(),
            pairs: Vec::new(),
            pair_index: BTreeMap::new(),
            attribute_buckets: Sightings::default(),
            attribute_members: Sightings::default(),
            attribute_records: Sightings::default(),
            member_buckets: Sightings::default(),
        }
    }

    pub fn has_over(&self) -> bool {
        self.has_over
    }

    pub fn measure(&self) -> &Measure {
        &self.measure
    }

    fn spaces(&self) -> Vec<Space> {
        match &self.measure {
            Measure::Features(features) => features
                .iter()
                .map(|(_, _, count)| Space::Line { count: *count })
                .collect(),
            Measure::Phase(period) => vec![Space::Circle { period: *period }],
            Measure::Position => vec![Space::Sphere],
            Measure::Rare { .. } => Vec::new(),
        }
    }

    /// The pair's id, creating member, attribute and pair on first sight.
    pub fn find_or_insert(
        &mut self,
        partition: &str,
        by: &str,
        over: &str,
        bucket_start: i64,
    ) -> u32 {
        let spaces = self.spaces();
        let attribute = intern(
            &mut self.attribute_index,
            (partition, by),
            || Attribute {
                partition: partition.to_string(),
                by: by.to_string(),
                models: spaces.iter().map(|s| Mixture::new(*s)).collect(),
            },
            &mut self.attributes,
        );
        let member = intern(
            &mut self.member_index,
            (partition, over),
            || Member {
                partition: partition.to_string(),
                over: over.to_string(),
            },
            &mut self.members,
        );
        let next = self.pairs.len() as u32;
        let id = *self.pair_index.entry((member, attribute)).or_insert(next);
        if id == next {
            self.pairs.push(Pair {
                member,
                attribute,
                first_seen: bucket_start,
                last_seen: bucket_start,
            });
        }
        let pair = &mut self.pairs[id as usize];
        pair.last_seen = pair.last_seen.max(bucket_start);
        id
    }

    /// Scores the pairs with records in the bucket for which `keep` holds, learning nothing;
    /// pairs left out by `exclude_frequent` get no verdict. In pair id order.
    fn verdicts(
        &self,
        bucket: Option<&DetectorBucket>,
        bucket_start: i64,
        keep: impl Fn(u32, &Pair) -> bool,
    ) -> Vec<PairVerdict> {
        let Some(bucket) = bucket else {
            return Vec::new();
        };
        let mut rankings: BTreeMap<&str, (Ranking, f64)> = BTreeMap::new();
        let mut verdicts = Vec::new();
        for (id, pair) in self.pairs.iter().enumerate() {
            let Some(accumulator) = bucket.get(id as u32) else {
                continue;
            };
            if !keep(id as u32, pair)
                || (self.exclude.by && self.attribute_buckets.is_frequent(pair.attribute))
                || (self.exclude.over && self.member_buckets.is_frequent(pair.member))
            {
                continue;
            }
            if let Measure::Rare { freq } = self.measure {
                let partition = self.attributes[pair.attribute as usize].partition.as_str();
                let (ranking, members) = rankings
                    .entry(partition)
                    .or_insert_with(|| self.ranking(partition, freq));
                let rare = RareContext {
                    freq,
                    ranking,
                    members: *members,
                    bucket_start,
                };
                verdicts.push(self.rare_verdict(id as u32, pair, accumulator, &rare));
            } else if let Some(v) = self.verdict(id as u32, pair, accumulator) {
                verdicts.push(v);
            }
        }
        verdicts
    }

    /// The rare functions' view of a partition: how its attributes rank, and its member count.
    fn ranking(&self, partition: &str, freq: bool) -> (Ranking, f64) {
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

    fn empty_verdict(pair: u32) -> PairVerdict {
        PairVerdict {
            pair,
            probability: 1.0,
            scored: false,
            feature: 0,
            actual: Vec::new(),
            typical: Vec::new(),
            points: None,
        }
    }

    fn verdict(
        &self,
        id: u32,
        pair: &Pair,
        accumulator: &SeriesAccumulator,
    ) -> Option<PairVerdict> {
        let attribute = &self.attributes[pair.attribute as usize];
        let mut verdict = Population::empty_verdict(id);
        match &self.measure {
            Measure::Features(features) => {
                let mut scored = 0;
                for (f, ((feature, tail, _), model)) in
                    features.iter().zip(&attribute.models).enumerate()
                {
                    let Some(value) = accumulator.feature(*feature) else {
                        continue;
                    };
                    let a = model.probability([value, 0.0], *tail);
                    let a_scored =
                        a.scored && self.attribute_buckets.buckets() >= WARMUP_BUCKETS as f64;
                    scored += usize::from(a_scored);
                    verdict.scored |= a_scored;
                    let p = if a_scored { a.probability } else { 1.0 };
                    if verdict.actual.is_empty() || p < verdict.probability {
                        verdict.probability = p;
                        verdict.feature = f;
                        verdict.actual = vec![value];
                        verdict.typical = vec![a.typical[0]];
                    }
                }
                if verdict.actual.is_empty() {
                    return None;
                }
                verdict.probability = sidak(verdict.probability, scored.max(1));
            }
            Measure::Phase(period) => {
                let phase = accumulator.mean_phase(*period)?;
                let a = attribute.models[0].probability([phase, 0.0], Tail::Both);
                verdict.probability = a.probability;
                verdict.scored = a.scored;
                verdict.actual = vec![phase];
                verdict.typical = vec![a.typical[0]];
            }
            Measure::Position => {
                let point = accumulator.mean_position()?;
                let a = attribute.models[0].probability(point, Tail::Both);
                verdict.probability = a.probability;
                verdict.scored = a.scored;
                verdict.actual = point.to_vec();
                verdict.typical = a.typical.to_vec();
                verdict.points = Some((point, a.typical));
            }
            Measure::Rare { .. } => return None,
        }
        Some(verdict)
    }

    /// `rare`: how rare the attribute is in time (no over field) or among the members (over field).
    /// `freq_rare`: how rare among all records, sharpened by how often the member used it.
    fn rare_verdict(
        &self,
        id: u32,
        pair: &Pair,
        accumulator: &SeriesAccumulator,
        rare: &RareContext,
    ) -> PairVerdict {
        let mut verdict = Population::empty_verdict(id);
        let buckets = self.attribute_buckets.buckets();
        let sightings = self.sightings(rare.freq);
        let count = accumulator.count;
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

    /// Result units of a bucket: (unit id, assessment), where a unit is a member with an over
    /// field and a pair without one. In id order.
    pub fn score(
        &self,
        bucket: Option<&DetectorBucket>,
        bucket_start: i64,
    ) -> Vec<(u32, Assessment)> {
        let verdicts = self.verdicts(bucket, bucket_start, |_, _| true);
        if !self.has_over {
            return verdicts
                .iter()
                .map(|v| (v.pair, assessment(v.probability, v.scored, 1)))
                .collect();
        }
        let mut per_member: BTreeMap<u32, (f64, bool, usize)> = BTreeMap::new();
        for v in &verdicts {
            let member = self.pairs[v.pair as usize].member;
            let entry = per_member.entry(member).or_insert((1.0, false, 0));
            entry.0 = entry.0.min(v.probability);
            entry.1 |= v.scored;
            entry.2 += 1;
        }
        per_member
            .into_iter()
            .map(|(member, (p, scored, k))| (member, assessment(p, scored, k)))
            .collect()
    }

    /// The verdicts behind one result unit, most unusual first (at most [`MAX_CAUSES`] for a member,
    /// keeping at least the worst one).
    pub fn unit_verdicts(
        &self,
        bucket: Option<&DetectorBucket>,
        bucket_start: i64,
        unit: u32,
    ) -> Vec<PairVerdict> {
        let mut verdicts = self.verdicts(bucket, bucket_start, |id, pair| {
            if self.has_over {
                pair.member == unit
            } else {
                id == unit
            }
        });
        verdicts.sort_by(|a, b| {
            a.probability
                .total_cmp(&b.probability)
                .then(a.pair.cmp(&b.pair))
        });
        let keep = verdicts
            .iter()
            .skip(1)
            .take_while(|v| v.probability < RECORD_PROBABILITY_THRESHOLD)
            .count()
            + 1;
        verdicts.truncate(keep.min(MAX_CAUSES));
        verdicts
    }

    /// (partition, by, over) of a pair.
    pub fn pair_terms(&self, pair: u32) -> Option<(&str, &str, &str)> {
        let pair = self.pairs.get(pair as usize)?;
        let attribute = &self.attributes[pair.attribute as usize];
        let member = &self.members[pair.member as usize];
        Some((&attribute.partition, &attribute.by, &member.over))
    }

    /// (partition, over) of a member.
    pub fn member_terms(&self, member: u32) -> Option<(&str, &str)> {
        self.members
            .get(member as usize)
            .map(|m| (m.partition.as_str(), m.over.as_str()))
    }

    /// Learns the bucket (after scoring it): every pair's values into its attribute's models, and
    /// the sightings.
    pub fn learn(&mut self, bucket: Option<&DetectorBucket>, bucket_start: i64) {
        let mut seen_attributes: Vec<u32> = Vec::new();
        let mut seen_members: Vec<u32> = Vec::new();
        if let Some(bucket) = bucket {
            for id in 0..self.pairs.len() {
                let Some(accumulator) = bucket.get(id as u32) else {
                    continue;
                };
                let pair = self.pairs[id].clone();
                seen_attributes.push(pair.attribute);
                seen_members.push(pair.member);
                if pair.first_seen == bucket_start {
                    self.attribute_members.add(pair.attribute, 1.0);
                }
                self.attribute_records
                    .add(pair.attribute, accumulator.count);
                let attribute = &mut self.attributes[pair.attribute as usize];
                match &self.measure {
                    Measure::Features(features) => {
                        for ((feature, _, _), model) in features.iter().zip(&mut attribute.models) {
                            if let Some(value) = accumulator.feature(*feature) {
                                model.update([value, 0.0], 1.0);
                            }
                        }
                    }
                    Measure::Phase(period) => {
                        if let Some(phase) = accumulator.mean_phase(*period) {
                            attribute.models[0].update([phase, 0.0], 1.0);
                        }
                    }
                    Measure::Position => {
                        if let Some(point) = accumulator.mean_position() {
                            attribute.models[0].update(point, 1.0);
                        }
                    }
                    Measure::Rare { .. } => {}
                }
            }
        }
        seen_attributes.sort_unstable();
        seen_attributes.dedup();
        seen_members.sort_unstable();
        seen_members.dedup();
        for a in seen_attributes {
            self.attribute_buckets.add(a, 1.0);
        }
        for m in seen_members {
            self.member_buckets.add(m, 1.0);
        }
        // Members that use an attribute do not fade: the population's breadth is not a rate.
        self.attribute_buckets.end_bucket();
        self.attribute_records.end_bucket();
        self.member_buckets.end_bucket();
    }

    /// Forgets pairs for which `keep(pair id, last seen)` is false; returns old id -> new id
    /// (`u32::MAX` = gone). Members and attributes stay: they hold the population's memory.
    pub fn retain(&mut self, mut keep: impl FnMut(u32, i64) -> bool) -> Vec<u32> {
        let mut remap = Vec::with_capacity(self.pairs.len());
        let mut kept = Vec::with_capacity(self.pairs.len());
        for (id, pair) in std::mem::take(&mut self.pairs).into_iter().enumerate() {
            if keep(id as u32, pair.last_seen) {
                remap.push(kept.len() as u32);
                kept.push(pair);
            } else {
                remap.push(u32::MAX);
            }
        }
        self.pair_index = kept
            .iter()
            .enumerate()
            .map(|(i, p)| ((p.member, p.attribute), i as u32))
            .collect();
        self.pairs = kept;
        remap
    }

    /// Distinct (by, over, partition) values, for `model_size_stats`.
    pub fn field_counts(&self) -> (u64, u64, u64) {
        let distinct = |values: Vec<&str>| {
            let mut values = values;
            values.sort_unstable();
            values.dedup();
            values.len() as u64
        };
        (
            distinct(self.attributes.iter().map(|a| a.by.as_str()).collect()),
            distinct(self.members.iter().map(|m| m.over.as_str()).collect()),
            distinct(
                self.attributes
                    .iter()
                    .map(|a| a.partition.as_str())
                    .collect(),
            ),
        )
    }

    pub fn approximate_bytes(&self) -> u64 {
        let strings = |a: &str, b: &str| a.len() + b.len() + 2 * std::mem::size_of::<String>();
        let attributes: usize = self
            .attributes
            .iter()
            .map(|a| {
                2 * strings(&a.partition, &a.by)
                    + a.models
                        .iter()
                        .map(Mixture::approximate_bytes)
                        .sum::<usize>()
            })
            .sum();
        let members: usize = self
            .members
            .iter()
            .map(|m| 2 * strings(&m.partition, &m.over))
            .sum();
        let pairs = self.pairs.len() * (std::mem::size_of::<Pair>() + 24);
        (std::mem::size_of::<Population>()
            + attributes
            + members
            + pairs
            + 4 * 8 * self.attributes.len()) as u64
    }

    /// A cause (or the record-level values) of one verdict.
    pub fn cause(
        &self,
        verdict: &PairVerdict,
        names: &CauseNames,
        function_description: &str,
    ) -> Cause {
        let (partition, by, over) = self.pair_terms(verdict.pair).unwrap_or_default();
        Cause {
            probability: verdict.probability,
            function: names.function.clone(),
            function_description: function_description.to_string(),
            field_name: names.field.clone(),
            by_field_name: names.by.clone(),
            by_field_value: names.by.as_ref().map(|_| by.to_string()),
            over_field_name: names.over.clone(),
            over_field_value: names.over.as_ref().map(|_| over.to_string()),
            partition_field_name: names.partition.clone(),
            partition_field_value: names.partition.as_ref().map(|_| partition.to_string()),
            actual: verdict.actual.clone(),
            typical: verdict.typical.clone(),
            geo_results: verdict.points.map(|(actual, typical)| GeoResults {
                actual_point: render_point(actual),
                typical_point: render_point(typical),
            }),
        }
    }
}

/// What scoring a rare function's pair needs besides the pair.
struct RareContext<'a> {
    freq: bool,
    ranking: &'a Ranking,
    /// Members of the pair's partition.
    members: f64,
    bucket_start: i64,
}

/// The detector's names that results repeat.
pub struct CauseNames {
    pub function: String,
    pub field: Option<String>,
    pub by: Option<String>,
    pub over: Option<String>,
    pub partition: Option<String>,
}

/// Šidák: the chance that the smallest of `k` independent probabilities is at most `p`.
pub fn sidak(p: f64, k: usize) -> f64 {
    if k <= 1 {
        return p;
    }
    (-((k as f64) * (-p).ln_1p()).exp_m1()).clamp(p, 1.0)
}

fn assessment(p: f64, scored: bool, k: usize) -> Assessment {
    Assessment {
        probability: if scored { sidak(p, k) } else { 1.0 },
        typical: f64::NAN,
        scored,
        multi_bucket_impact: 0.0,
    }
}

/// Ids by (first term, second term), looked up without allocating.
type Index = BTreeMap<String, BTreeMap<String, u32>>;

/// The id of `key` in `index`, pushing `make()` onto `items` the first time.
fn intern<T>(
    index: &mut Index,
    key: (&str, &str),
    make: impl FnOnce() -> T,
    items: &mut Vec<T>,
) -> u32 {
    if let Some(id) = index.get(key.0).and_then(|inner| inner.get(key.1)) {
        return *id;
    }
    let id = items.len() as u32;
    index
        .entry(key.0.to_string())
        .or_default()
        .insert(key.1.to_string(), id);
    items.push(make());
    id
}
