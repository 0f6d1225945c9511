//! The series of one detector: one entry per (partition value, by value), found without
//! allocating on the hot path.
//!
//! Owns series identity (dense `u32` ids in creation order), first/last-seen times for pruning,
//! and the per-feature models. Does not know what a feature or a record is (`detector_model`).
//! Lookup hashes the borrowed term strings with a fixed hash (no per-process random keys, so
//! nothing here depends on run-to-run state); the index is rebuilt on deserialization and never
//! iterated, so output order is always id order.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::series::{ActiveModel, FeatureKind, SeriesModel};

/// One series of one detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesEntry {
    /// `""` when the detector has no partition field (or `use_null` and the field was missing).
    pub partition: String,
    pub by: String,
    /// Start of the first bucket the series had a record in: it gets no zero-count buckets before.
    pub first_seen: i64,
    /// Start of the latest bucket the series had a record in (`model_prune_window`).
    pub last_seen: i64,
    /// One model per feature of the detector's function (three for `metric`).
    pub models: Vec<ActiveModel>,
}

/// Passes a precomputed 64-bit hash through unchanged.
#[derive(Default)]
struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type PrehashedMap = HashMap<u64, u32, BuildHasherDefault<PrehashedHasher>>;

/// A word-at-a-time multiplicative hash over `partition 0xFF by`, then a final avalanche.
/// `0xFF` never occurs in UTF-8, so the two terms cannot run into each other.
fn series_hash(partition: &str, by: &str) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h: u64 = 0;
    let mut feed = |bytes: &[u8]| {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            // The length goes in too, so trailing zero bytes are not lost.
            h = (h.rotate_left(5) ^ u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59))
                .wrapping_mul(K);
        }
    };
    feed(partition.as_bytes());
    feed(&[0xFF]);
    feed(by.as_bytes());
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// All series of one detector. Serialized as the list of entries alone.
#[derive(Debug, Clone, Default)]
pub struct SeriesTable {
    entries: Vec<SeriesEntry>,
    index: PrehashedMap,
    /// Ids whose hash was already taken by another series when they were created (in practice
    /// never; a linear scan keeps the map one `u32` per key).
    collided: Vec<u32>,
    /// Bytes new series may still take (`model_memory_limit`); `None`: no limit. Set by the
    /// detector before each record, so it is not part of the state.
    budget: Option<u64>,
    /// Whether a new series was refused since the last `take_refused`.
    refused: bool,
}

/// Bytes one entry of the index costs: key, value, and the hash table's control byte and spare
/// room at its 7/8 load factor.
const INDEX_BYTES_PER_ENTRY: usize = (8 + 4 + 1) * 8 / 7;

impl PartialEq for SeriesTable {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl SeriesTable {
    fn from_entries(entries: Vec<SeriesEntry>) -> SeriesTable {
        let mut table = SeriesTable {
            entries: Vec::with_capacity(entries.len()),
            index: PrehashedMap::default(),
            collided: Vec::new(),
            budget: None,
            refused: false,
        };
        for entry in entries {
            let id = table.entries.len() as u32;
            table.link(&entry.partition, &entry.by, id);
            table.entries.push(entry);
        }
        table
    }

    fn link(&mut self, partition: &str, by: &str, id: u32) {
        let hash = series_hash(partition, by);
        match self.index.entry(hash) {
            std::collections::hash_map::Entry::Occupied(_) => self.collided.push(id),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(id);
            }
        }
    }

    pub fn count(&self) -> usize {
        self.entries.len()
    }

    pub fn entries(&self) -> &[SeriesEntry] {
        &self.entries
    }

    pub fn get(&self, id: u32) -> Option<&SeriesEntry> {
        self.entries.get(id as usize)
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut SeriesEntry> {
        self.entries.get_mut(id as usize)
    }

    pub fn find(&self, partition: &str, by: &str) -> Option<u32> {
        let matches = |id: u32| {
            self.entries
                .get(id as usize)
                .is_some_and(|e| e.partition == partition && e.by == by)
        };
        let id = *self.index.get(&series_hash(partition, by))?;
        if matches(id) {
            return Some(id);
        }
        self.collided.iter().copied().find(|&id| matches(id))
    }

    /// The series' id, creating it (with fresh models of the given kinds) on first sight, and
    /// marks it seen in the bucket starting at `bucket_start`. `None` when the series is new and
    /// the memory budget is spent: its records are not modelled.
    pub fn find_or_insert(
        &mut self,
        partition: &str,
        by: &str,
        bucket_start: i64,
        kinds: &[FeatureKind],
        bucket_span_secs: i64,
    ) -> Option<u32> {
        if let Some(id) = self.find(partition, by) {
            self.touch(id, bucket_start);
            return Some(id);
        }
        if self.budget == Some(0) {
            self.refused = true;
            return None;
        }
        let id = self.entries.len() as u32;
        self.link(partition, by, id);
        let entry = SeriesEntry {
            partition: partition.to_string(),
            by: by.to_string(),
            first_seen: bucket_start,
            last_seen: bucket_start,
            models: kinds
                .iter()
                .map(|k| ActiveModel::new(*k, bucket_span_secs))
                .collect(),
        };
        // The series that crosses the limit is still created, as Elasticsearch does: the limit
        // is checked before an allocation, not by predicting its size.
        self.budget = self
            .budget
            .map(|b| b.saturating_sub(entry_bytes(&entry) as u64));
        self.entries.push(entry);
        Some(id)
    }

    /// Sets the bytes new series may take from now on (`None`: no limit).
    pub fn set_budget(&mut self, budget: Option<u64>) {
        self.budget = budget;
    }

    /// What is left of the budget.
    pub fn budget(&self) -> Option<u64> {
        self.budget
    }

    /// Whether a new series was refused since the last call.
    pub fn take_refused(&mut self) -> bool {
        std::mem::take(&mut self.refused)
    }

    /// Marks a known series seen in the bucket starting at `bucket_start`.
    pub fn touch(&mut self, id: u32, bucket_start: i64) {
        if let Some(entry) = self.entries.get_mut(id as usize) {
            entry.last_seen = entry.last_seen.max(bucket_start);
            entry.first_seen = entry.first_seen.min(bucket_start);
        }
    }

    /// Drops the series for which `keep(id, entry)` is false; returns old id -> new id
    /// (`u32::MAX` for dropped series).
    pub fn retain(&mut self, mut keep: impl FnMut(u32, &SeriesEntry) -> bool) -> Vec<u32> {
        let mut remap = Vec::with_capacity(self.entries.len());
        let mut kept = Vec::with_capacity(self.entries.len());
        for (id, entry) in std::mem::take(&mut self.entries).into_iter().enumerate() {
            if keep(id as u32, &entry) {
                remap.push(kept.len() as u32);
                kept.push(entry);
            } else {
                remap.push(u32::MAX);
            }
        }
        *self = SeriesTable::from_entries(kept);
        remap
    }

    /// Bytes the table holds: every entry with its strings, models and index slot, counted by
    /// length rather than capacity so the figure is a function of the series alone (equal after a
    /// snapshot round trip, which the memory limit's decisions rely on).
    pub fn approximate_bytes(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| entry_bytes(e) as u64)
            .sum::<u64>()
            + (self.collided.len() * std::mem::size_of::<u32>()) as u64
    }
}

/// Bytes one series costs in the table.
fn entry_bytes(entry: &SeriesEntry) -> usize {
    std::mem::size_of::<SeriesEntry>()
        + INDEX_BYTES_PER_ENTRY
        + entry.partition.len()
        + entry.by.len()
        + entry
            .models
            .iter()
            .map(ActiveModel::approximate_bytes)
            .sum::<usize>()
}

impl Serialize for SeriesTable {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.entries.serialize(s)
    }
}

impl<'de> Deserialize<'de> for SeriesTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<SeriesEntry>::deserialize(d).map(SeriesTable::from_entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_it_inserted_and_keeps_ids_dense() {
        let mut table = SeriesTable::default();
        let kinds = [FeatureKind::Continuous];
        let a = table.find_or_insert("", "AAL", 0, &kinds, 300);
        let b = table.find_or_insert("", "JZA", 10, &kinds, 300);
        assert_eq!((a, b), (Some(0), Some(1)));
        assert_eq!(table.find_or_insert("", "AAL", 20, &kinds, 300), Some(0));
        assert_eq!(table.get(0).unwrap().last_seen, 20);
        // The separator keeps ("a", "bc") and ("ab", "c") apart.
        let c = table.find_or_insert("a", "bc", 0, &kinds, 300);
        let d = table.find_or_insert("ab", "c", 0, &kinds, 300);
        assert_ne!(c, d);
        assert_eq!(table.find("x", "y"), None);
    }

    #[test]
    fn colliding_hashes_are_still_told_apart() {
        let mut table = SeriesTable::default();
        let kinds = [FeatureKind::Count];
        table.find_or_insert("", "first", 0, &kinds, 300);
        // Force a collision by linking a second key under the first key's hash.
        table.entries.push(SeriesEntry {
            partition: String::new(),
            by: "second".into(),
            first_seen: 0,
            last_seen: 0,
            models: vec![],
        });
        table.collided.push(1);
        table.index.insert(series_hash("", "second"), 0);
        assert_eq!(table.find("", "second"), Some(1));
        assert_eq!(table.find("", "first"), Some(0));
    }

    #[test]
    fn retain_renumbers_and_reindexes() {
        let mut table = SeriesTable::default();
        let kinds = [FeatureKind::Count];
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            table.find_or_insert("", name, i as i64, &kinds, 300);
        }
        let remap = table.retain(|_, e| e.by != "b");
        assert_eq!(remap, vec![0, u32::MAX, 1]);
        assert_eq!(table.find("", "c"), Some(1));
        assert_eq!(table.find("", "b"), None);
    }

    #[test]
    fn bincode_round_trip_rebuilds_the_index() {
        let mut table = SeriesTable::default();
        table.find_or_insert("p", "x", 0, &[FeatureKind::Continuous], 300);
        let bytes = bincode::serde::encode_to_vec(&table, bincode::config::standard()).unwrap();
        let (back, _): (SeriesTable, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        assert_eq!(back, table);
        assert_eq!(back.find("p", "x"), Some(0));
        assert_eq!(back.approximate_bytes(), table.approximate_bytes());
    }

    #[test]
    fn a_spent_budget_refuses_new_series_but_not_known_ones() {
        let mut table = SeriesTable::default();
        let kinds = [FeatureKind::Continuous];
        table.set_budget(Some(1));
        assert_eq!(table.find_or_insert("", "a", 0, &kinds, 300), Some(0));
        assert_eq!(
            table.budget(),
            Some(0),
            "the series that crossed the budget spent it"
        );
        assert!(!table.take_refused());
        assert_eq!(table.find_or_insert("", "b", 0, &kinds, 300), None);
        assert_eq!(table.find_or_insert("", "a", 300, &kinds, 300), Some(0));
        assert!(table.take_refused());
        assert!(!table.take_refused());
        assert_eq!(table.count(), 1);
        assert!(table.approximate_bytes() > 0);
    }
}
