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
use crate::model::function::Tail;
use crate::model::mixture::{Mixture, Space};
use crate::model::rare::Sightings;
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
    /// What new members, attributes and pairs may still cost (`model_memory_limit`).
    #[serde(skip)]
    allowance: memory::Allowance,
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
            allowance: memory::Allowance::default(),
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

    /// The pair's id, creating member, attribute and pair on first sight and marking it seen in
    /// the bucket starting at `bucket_start`. `None` when something would be new and the memory
    /// budget is spent: the record is then not modelled, as a new series would not be.
    pub fn find_or_insert(
        &mut self,
        partition: &str,
        by: &str,
        over: &str,
        bucket_start: i64,
    ) -> Option<u32> {
        let known = |index: &Index, a: &str, b: &str| index.get(a).and_then(|i| i.get(b)).copied();
        let attribute = known(&self.attribute_index, partition, by);
        let member = known(&self.member_index, partition, over);
        let pair = attribute
            .zip(member)
            .and_then(|(a, m)| self.pair_index.get(&(m, a)).copied());
        let id = match pair {
            Some(id) => id,
            None => {
                if !self.allowance.allows_new() {
                    return None;
                }
                let id = self.insert(partition, by, over, bucket_start);
                let pair = &self.pairs[id as usize];
                let mut bytes = memory::PAIR_BYTES;
                if attribute.is_none() {
                    bytes += memory::attribute_bytes(&self.attributes[pair.attribute as usize]);
                }
                if member.is_none() {
                    bytes += memory::member_bytes(&self.members[pair.member as usize]);
                }
                self.allowance.spend(bytes as u64);
                id
            }
        };
        let pair = &mut self.pairs[id as usize];
        pair.last_seen = pair.last_seen.max(bucket_start);
        Some(id)
    }

    fn insert(&mut self, partition: &str, by: &str, over: &str, bucket_start: i64) -> u32 {
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
        let id = self.pairs.len() as u32;
        self.pair_index.insert((member, attribute), id);
        self.pairs.push(Pair {
            member,
            attribute,
            first_seen: bucket_start,
            last_seen: bucket_start,
        });
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
        let mut rankings: BTreeMap<&str, (crate::model::rare::Ranking, f64)> = BTreeMap::new();
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
                let rare = rare::RareContext {
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

    pub(super) fn empty_verdict(pair: u32) -> PairVerdict {
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

    /// The bucket feature and side of feature `feature`; `None` for the measures that are not
    /// bucket features (the rare functions, times of day or week, positions).
    pub fn feature_of(&self, feature: usize) -> Option<(Feature, Tail)> {
        match &self.measure {
            Measure::Features(features) => features.get(feature).map(|(f, t, _)| (*f, *t)),
            _ => None,
        }
    }

    /// How unusual `value` of feature `feature` is for the pair's attribute, on side `tail`,
    /// learning nothing.
    pub fn feature_probability(&self, pair: u32, feature: usize, value: f64, tail: Tail) -> f64 {
        self.pairs
            .get(pair as usize)
            .and_then(|p| self.attributes[p.attribute as usize].models.get(feature))
            .map_or(1.0, |m| m.probability([value, 0.0], tail).probability)
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

mod rare;

mod learn;

mod memory;

mod plot;
