//! One record, in one pass: pulls the wanted fields out of a JSON object while serde_json parses
//! it, skipping everything else without building values.
//!
//! Owns the per-value rules (Elasticsearch's flattening reader): a string is `Text`, a number
//! `Num`, a boolean `Text("true"/"false")`, `null` absent, and so is a string that spells a number
//! that is not finite (`"NaN"`, `"Infinity"`, `"-inf"`, `"1e999"`): no analysis can use it, and
//! counting it in `missing_field_count` shows the drop (Elasticsearch passes it on and its
//! analysis discards it unseen); an object is walked for its leaves and is
//! itself no value; an array of scalars is their text joined with `,` (objects and arrays inside it
//! are skipped), and an array with no scalars is absent. `input_fields` counts leaves the way ES
//! does: every non-object value (an array counts once) inside nested objects.
//!
//! Values no wanted field needs are skipped without being built, but through serde_json's
//! recursive reader ([`Skip`]), so its 128-level nesting limit holds for them as for the rest:
//! serde_json's own skipping (`IgnoredAny`) walks any depth.
//!
//! When the same field is reachable twice (`{"a.b":1,"a":{"b":2}}`), the way with fewer keys wins,
//! so a literal dotted key beats a nested path; between equals the later one wins.
//!
//! Does not own body framing (`reader.rs`) nor the field lookup (`paths.rs`).

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::ingest::paths::{Entry, FieldPaths};
use crate::ingest::time::{TimeFormat, TimeValue};
use crate::ingest::FieldValue;

/// Limits on one record; breaking one rejects the whole request (400), like any malformed
/// document. They bound what a single record can make the model hold: a series per distinct
/// by/over/partition value, so huge names or values would be kept in memory and in snapshots.
pub(crate) const MAX_FIELDS_PER_RECORD: u32 = 10_000;
/// Longest field name, in bytes.
pub(crate) const MAX_FIELD_NAME_BYTES: usize = 4096;
/// Longest string value of an analysed field, in bytes (Lucene's longest term).
pub(crate) const MAX_VALUE_BYTES: usize = 32_766;

/// What a reader knows while extracting: where fields are, and how to read the time.
pub(crate) struct Wanted<'a> {
    pub paths: &'a FieldPaths,
    pub time_format: &'a TimeFormat,
    /// The slot number of the time field; analysis fields are slots `0..time_slot`.
    pub time_slot: usize,
}

/// What one record yielded. `found_at` is scratch reused across records.
pub(crate) struct Extracted {
    pub values: Vec<Option<FieldValue>>,
    pub time_ms: Option<i64>,
    pub leaves: u32,
    /// Per slot (time included): 0 = not seen, else how many keys deep it was found.
    found_at: Vec<u32>,
}

impl Extracted {
    pub fn new(slots: usize) -> Extracted {
        Extracted {
            values: Vec::new(),
            time_ms: None,
            leaves: 0,
            found_at: vec![0; slots],
        }
    }

    /// Whether the record had the field of `slot` (as a value, null included).
    pub fn found(&self, slot: usize) -> bool {
        self.found_at.get(slot).is_some_and(|&depth| depth != 0)
    }

    /// Ready for the next record; `fields` analysis slots.
    pub fn reset(&mut self, fields: usize) {
        self.values = vec![None; fields];
        self.time_ms = None;
        self.leaves = 0;
        self.found_at.iter_mut().for_each(|d| *d = 0);
    }
}

/// A JSON scalar borrowed from the input.
#[derive(Clone, Copy)]
enum Scalar<'v> {
    Str(&'v str),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    Null,
}

/// Deserializes one top-level object into `out`.
pub(crate) struct RecordSeed<'w, 'o> {
    pub wanted: &'w Wanted<'w>,
    pub out: &'o mut Extracted,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(ObjectVisitor {
            wanted: self.wanted,
            out: self.out,
            node: FieldPaths::ROOT,
            depth: 1,
        })
    }
}

struct ObjectVisitor<'w, 'o> {
    wanted: &'w Wanted<'w>,
    out: &'o mut Extracted,
    node: usize,
    /// How many keys deep the keys of this object are (top level = 1).
    depth: u32,
}

impl<'de> Visitor<'de> for ObjectVisitor<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let node = self.wanted.paths.node(self.node);
        while let Some(found) = map.next_key_seed(KeySeed { node })? {
            match found {
                Some(entry) => map.next_value_seed(EntrySeed {
                    wanted: self.wanted,
                    out: self.out,
                    entry,
                    depth: self.depth,
                })?,
                None => {
                    let leaves = map.next_value_seed(LeafCount)?;
                    self.out.leaves = self.out.leaves.saturating_add(leaves);
                }
            }
            if self.out.leaves > MAX_FIELDS_PER_RECORD {
                return Err(serde::de::Error::custom(format!(
                    "a record has more than {MAX_FIELDS_PER_RECORD} fields"
                )));
            }
        }
        Ok(())
    }
}

/// Reads a key and looks it up without allocating.
struct KeySeed<'p> {
    node: &'p crate::ingest::paths::Node,
}

impl<'de, 'p> DeserializeSeed<'de> for KeySeed<'p> {
    type Value = Option<&'p Entry>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, 'p> Visitor<'de> for KeySeed<'p> {
    type Value = Option<&'p Entry>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Self::Value, E> {
        if key.len() > MAX_FIELD_NAME_BYTES {
            return Err(E::custom(format!(
                "a field name is longer than {MAX_FIELD_NAME_BYTES} bytes"
            )));
        }
        Ok(self.node.find(key))
    }
}

/// The value of a key that matters: a wanted field, a way into a nested object, or both.
struct EntrySeed<'w, 'o, 'p> {
    wanted: &'w Wanted<'w>,
    out: &'o mut Extracted,
    entry: &'p Entry,
    depth: u32,
}

impl EntrySeed<'_, '_, '_> {
    fn leaf(self, value: Scalar<'_>) {
        self.out.leaves = self.out.leaves.saturating_add(1);
        for &slot in &self.entry.slots {
            let seen = self.out.found_at[slot];
            if seen != 0 && seen < self.depth {
                continue;
            }
            self.out.found_at[slot] = self.depth;
            if slot == self.wanted.time_slot {
                self.out.time_ms = time_of(self.wanted.time_format, value);
            } else {
                self.out.values[slot] = field_value(value);
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for EntrySeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed<'_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        if v.len() > MAX_VALUE_BYTES {
            return Err(E::custom(format!(
                "a value of an analysed field is longer than {MAX_VALUE_BYTES} bytes"
            )));
        }
        self.leaf(Scalar::Str(v));
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.leaf(Scalar::I64(v));
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.leaf(Scalar::U64(v));
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.leaf(Scalar::F64(v));
        Ok(())
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.leaf(Scalar::Bool(v));
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.leaf(Scalar::Null);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.entry.slots.is_empty() {
            while seq.next_element_seed(Skip)?.is_some() {}
            self.out.leaves = self.out.leaves.saturating_add(1);
            return Ok(());
        }
        let mut joined = String::new();
        let mut any = false;
        while let Some(item) = seq.next_element_seed(ArrayItem {
            joined: &mut joined,
            any,
        })? {
            any |= item;
        }
        let value = if any {
            Scalar::Str(&joined)
        } else {
            Scalar::Null
        };
        self.leaf(value);
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        match self.entry.child {
            Some(node) => ObjectVisitor {
                wanted: self.wanted,
                out: self.out,
                node,
                depth: self.depth + 1,
            }
            .visit_map(map),
            None => {
                while map.next_key::<IgnoredAny>()?.is_some() {
                    let leaves = map.next_value_seed(LeafCount)?;
                    self.out.leaves = self.out.leaves.saturating_add(leaves);
                }
                Ok(())
            }
        }
    }
}

fn field_value(value: Scalar<'_>) -> Option<FieldValue> {
    match value {
        Scalar::Str(s) if s.trim().parse::<f64>().is_ok_and(|n| !n.is_finite()) => None,
        Scalar::Str(s) => Some(FieldValue::Text(s.to_string())),
        Scalar::I64(n) => Some(FieldValue::Num(n as f64)),
        Scalar::U64(n) => Some(FieldValue::Num(n as f64)),
        Scalar::F64(n) => Some(FieldValue::Num(n)),
        Scalar::Bool(b) => Some(FieldValue::Text(
            if b { "true" } else { "false" }.to_string(),
        )),
        Scalar::Null => None,
    }
}

fn time_of(format: &TimeFormat, value: Scalar<'_>) -> Option<i64> {
    match value {
        Scalar::Str(s) => format.parse_value(TimeValue::Text(s)),
        Scalar::I64(n) => format.parse_value(TimeValue::Int(n)),
        Scalar::U64(n) => format.parse_value(TimeValue::UInt(n)),
        Scalar::F64(n) => format.parse_value(TimeValue::Float(n)),
        Scalar::Bool(_) | Scalar::Null => None,
    }
}

/// One array element: scalars are appended to `joined` (comma-separated); returns whether it was one.
struct ArrayItem<'j> {
    joined: &'j mut String,
    /// Whether an earlier element was a scalar (so a comma is due).
    any: bool,
}

impl ArrayItem<'_> {
    fn push(self, text: &str) -> bool {
        if self.any {
            self.joined.push(',');
        }
        self.joined.push_str(text);
        true
    }
}

impl<'de> DeserializeSeed<'de> for ArrayItem<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ArrayItem<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_str<E>(self, v: &str) -> Result<bool, E> {
        Ok(self.push(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<bool, E> {
        Ok(self.push(&v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<bool, E> {
        Ok(self.push(&v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<bool, E> {
        Ok(self.push(&v.to_string()))
    }
    fn visit_bool<E>(self, v: bool) -> Result<bool, E> {
        Ok(self.push(if v { "true" } else { "false" }))
    }
    /// ES writes a null element as an empty string between the commas.
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(self.push(""))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(false)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(false)
    }
}

/// Skips a value (nothing is built), within serde_json's nesting limit.
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
}

/// Skips a value that matters to no wanted field, counting its leaves.
struct LeafCount;

impl<'de> DeserializeSeed<'de> for LeafCount {
    type Value = u32;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<u32, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LeafCount {
    type Value = u32;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_str<E>(self, _: &str) -> Result<u32, E> {
        Ok(1)
    }
    fn visit_i64<E>(self, _: i64) -> Result<u32, E> {
        Ok(1)
    }
    fn visit_u64<E>(self, _: u64) -> Result<u32, E> {
        Ok(1)
    }
    fn visit_f64<E>(self, _: f64) -> Result<u32, E> {
        Ok(1)
    }
    fn visit_bool<E>(self, _: bool) -> Result<u32, E> {
        Ok(1)
    }
    fn visit_unit<E>(self) -> Result<u32, E> {
        Ok(1)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u32, A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(1)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u32, A::Error> {
        let mut leaves = 0u32;
        while map.next_key::<IgnoredAny>()?.is_some() {
            leaves = leaves.saturating_add(map.next_value_seed(LeafCount)?);
        }
        Ok(leaves)
    }
}
