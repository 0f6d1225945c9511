//! A [`Population`]'s part in `model_memory_limit`: what its members, attributes and pairs cost,
//! the budget new ones spend while records are added (past the hard limit nothing new is created),
//! what `model_size_stats` counts, and what a prune forgets.
//!
//! Elasticsearch's population models refuse new people (over values) and new attributes (by
//! values) once allocations are no longer allowed; here a new member, attribute or pairing of them
//! is refused alike, so a stream of ever-new clients cannot grow the model past the limit. A prune
//! forgets quiet pairs, then the members and attributes no pair uses any more, so the one-off
//! clients of a scan leave nothing behind.
//!
//! A child of `population` so it reads and renumbers the population's tables directly.

use std::collections::BTreeMap;

use super::{Attribute, Index, Member, Pair, Population};
use crate::model::mixture::Mixture;
use crate::model::rare::Sightings;

/// Bytes one pair costs: the pair and its index entry (key, value, tree overhead).
pub(super) const PAIR_BYTES: usize = std::mem::size_of::<Pair>() + 24;

/// Bytes of two terms: the strings, stored once in the list and once in the index.
fn terms_bytes(a: &str, b: &str) -> usize {
    2 * (a.len() + b.len() + 2 * std::mem::size_of::<String>())
}

/// Bytes one attribute costs: its terms, its models and its sightings (four tables).
pub(super) fn attribute_bytes(attribute: &Attribute) -> usize {
    terms_bytes(&attribute.partition, &attribute.by)
        + attribute
            .models
            .iter()
            .map(Mixture::approximate_bytes)
            .sum::<usize>()
        + 4 * 8
}

/// Bytes one member costs.
pub(super) fn member_bytes(member: &Member) -> usize {
    terms_bytes(&member.partition, &member.over)
}

/// What new members, attributes and pairs may still cost while records are added. Set by the
/// detector before each record, so it is not part of the model's state (and never makes two
/// populations unequal).
#[derive(Debug, Clone, Default)]
pub(super) struct Allowance {
    /// `None`: no limit.
    budget: Option<u64>,
    /// Whether something new was refused since the last `take_refused`.
    refused: bool,
}

impl PartialEq for Allowance {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Allowance {
    /// Whether something new may be created now; records a refusal when not.
    pub(super) fn allows_new(&mut self) -> bool {
        if self.budget == Some(0) {
            self.refused = true;
            return false;
        }
        true
    }

    /// What the new items took. The one that crosses the limit is still created, as for series.
    pub(super) fn spend(&mut self, bytes: u64) {
        self.budget = self.budget.map(|b| b.saturating_sub(bytes));
    }
}

impl Population {
    /// Sets the bytes new members, attributes and pairs may take from now on (`None`: no limit).
    pub fn set_budget(&mut self, budget: Option<u64>) {
        self.allowance.budget = budget;
    }

    /// What is left of the budget.
    pub fn budget(&self) -> Option<u64> {
        self.allowance.budget
    }

    /// Whether something new was refused since the last call.
    pub fn take_refused(&mut self) -> bool {
        std::mem::take(&mut self.allowance.refused)
    }

    /// Distinct (by, over, partition) values, for `model_size_stats`.
    pub fn field_counts(&self) -> (u64, u64, u64) {
        let distinct = |mut values: Vec<&str>| {
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

    /// Bytes the population holds, by length (equal after a snapshot round trip).
    pub fn approximate_bytes(&self) -> u64 {
        let attributes: usize = self.attributes.iter().map(attribute_bytes).sum();
        let members: usize = self.members.iter().map(member_bytes).sum();
        (std::mem::size_of::<Population>() + attributes + members + self.pairs.len() * PAIR_BYTES)
            as u64
    }

    /// Forgets pairs for which `keep(pair id, last seen)` is false, then the members and
    /// attributes no remaining pair uses; returns old pair id -> new id (`u32::MAX` = gone).
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
        let mut used_members = vec![false; self.members.len()];
        let mut used_attributes = vec![false; self.attributes.len()];
        for pair in &kept {
            used_members[pair.member as usize] = true;
            used_attributes[pair.attribute as usize] = true;
        }
        let members = compact(
            &mut self.members,
            &used_members,
            &mut self.member_index,
            |m| (&m.partition, &m.over),
            &mut [&mut self.member_buckets],
        );
        let attributes = compact(
            &mut self.attributes,
            &used_attributes,
            &mut self.attribute_index,
            |a| (&a.partition, &a.by),
            &mut [
                &mut self.attribute_buckets,
                &mut self.attribute_members,
                &mut self.attribute_records,
            ],
        );
        for pair in &mut kept {
            pair.member = members[pair.member as usize];
            pair.attribute = attributes[pair.attribute as usize];
        }
        self.pair_index = kept
            .iter()
            .enumerate()
            .map(|(i, p)| ((p.member, p.attribute), i as u32))
            .collect();
        self.pairs = kept;
        remap
    }
}

/// Keeps the `used` items, renumbering them densely in order, and rebuilds their index and the
/// sightings kept per item; returns old id -> new id (`u32::MAX` = gone).
fn compact<T>(
    items: &mut Vec<T>,
    used: &[bool],
    index: &mut Index,
    terms: impl Fn(&T) -> (&String, &String),
    sightings: &mut [&mut Sightings],
) -> Vec<u32> {
    if used.iter().all(|u| *u) {
        return (0..items.len() as u32).collect();
    }
    let mut remap = Vec::with_capacity(items.len());
    let mut kept = Vec::with_capacity(items.len());
    for (item, used) in std::mem::take(items).into_iter().zip(used) {
        if *used {
            remap.push(kept.len() as u32);
            kept.push(item);
        } else {
            remap.push(u32::MAX);
        }
    }
    let mut rebuilt: Index = BTreeMap::new();
    for (id, item) in kept.iter().enumerate() {
        let (a, b) = terms(item);
        rebuilt
            .entry(a.clone())
            .or_default()
            .insert(b.clone(), id as u32);
    }
    *index = rebuilt;
    *items = kept;
    for s in sightings.iter_mut() {
        s.remap(&remap);
    }
    remap
}
