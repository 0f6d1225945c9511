//! The compact storage of one seasonal profile: a value per slot of a cycle, plus how many times
//! each slot has learnt while that still matters.
//!
//! Owns representation only (`predictor` owns the maths). Three things keep a profile small, and
//! its snapshot bytes with it:
//! - **Allocated as it is covered.** Storage starts at the slot the series was first seen in and
//!   grows a block at a time as the first cycle unfolds, so a series seen for an hour holds an
//!   hour of slots, not a whole day or week.
//! - **Block floating point.** Values are `i16` mantissas sharing one `f32` scale per block of
//!   [`BLOCK`] slots (2 bytes a slot instead of 4 for `f32`). The scale follows the block's
//!   largest value, so precision is relative to the pattern's amplitude nearby (about 1/26,000 of
//!   it) and one spike coarsens only its own block.
//! - **Counts only while learning.** Early averages are plain means, which needs per-slot update
//!   counts; once every slot has reached the steady learning rate (or the profile has run for a
//!   few cycles) the counts are freed.
//!
//! Storage is measured by length, not capacity, so the size is a function of the state alone and
//! identical after a snapshot round trip (memory limits are enforced on it). Boxed slices rather
//! than vectors: storage only grows during the first cycle, and a slice's handle is a third
//! smaller (the profile lives in every seasonal predictor of every series).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Slots sharing one scale, and the unit storage grows by.
pub const BLOCK: usize = 16;
/// Largest mantissa.
pub(crate) const MANTISSA_MAX: f64 = i16::MAX as f64;
/// After a rescale the block's largest value sits at this fraction of the mantissa range, so a
/// slowly growing value does not rescale on every update.
const HEADROOM: f64 = 0.8;
/// A block whose largest value falls below this fraction of the range is rescaled down, so a
/// decayed spike does not leave its neighbours coarse for ever.
const RESCALE_DOWN_BELOW: f64 = 0.25;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Slots in a whole cycle.
    slots: u32,
    /// The slot stored first (where the series was first seen): storage index `i` holds slot
    /// `(origin + i) % slots`.
    origin: u32,
    /// Mantissas, in storage order; shorter than `slots` until the first cycle is covered.
    #[serde(with = "i16_bytes")]
    mantissas: Box<[i16]>,
    /// One scale per block of `BLOCK` stored slots.
    scales: Box<[f32]>,
    /// Updates per stored slot (saturating); empty once no slot needs its count any more.
    counts: Box<[u8]>,
}

impl Profile {
    /// An empty profile of `slots` slots whose first stored slot is `origin`.
    pub fn new(slots: usize, origin: usize) -> Profile {
        let slots = slots.clamp(1, u32::MAX as usize);
        Profile {
            slots: slots as u32,
            origin: (origin % slots) as u32,
            mantissas: Box::default(),
            scales: Box::default(),
            counts: Box::default(),
        }
    }

    fn index(&self, slot: usize) -> usize {
        let slots = self.slots as usize;
        (slot % slots + slots - self.origin as usize) % slots
    }

    fn decode(&self, index: usize) -> f64 {
        match (self.mantissas.get(index), self.scales.get(index / BLOCK)) {
            (Some(m), Some(s)) => f64::from(*m) * f64::from(*s),
            _ => 0.0,
        }
    }

    /// The value of `slot` (0 for a slot never learnt).
    pub fn get(&self, slot: usize) -> f64 {
        self.decode(self.index(slot))
    }

    /// A bound on the largest stored magnitude (the largest block scale's range).
    pub fn max_abs(&self) -> f64 {
        let scale = self.scales.iter().fold(0.0f32, |m, s| m.max(*s));
        f64::from(scale) * MANTISSA_MAX
    }

    /// Updates the slot has had, saturating at 255; `None` once counts are no longer kept.
    pub fn count(&self, slot: usize) -> Option<u8> {
        if self.counts.is_empty() && !self.mantissas.is_empty() {
            return None;
        }
        Some(self.counts.get(self.index(slot)).copied().unwrap_or(0))
    }

    /// Stores `value` in `slot` and counts one more update of it.
    pub fn set(&mut self, slot: usize, value: f64) {
        let index = self.index(slot);
        self.grow_to(index);
        if let Some(c) = self.counts.get_mut(index) {
            *c = c.saturating_add(1);
        }
        let block = index / BLOCK;
        let start = block * BLOCK;
        let end = (start + BLOCK).min(self.mantissas.len());
        let mut largest = value.abs();
        for i in (start..end).filter(|i| *i != index) {
            largest = largest.max(self.decode(i).abs());
        }
        let scale = f64::from(self.scales[block]);
        let fits = largest <= MANTISSA_MAX * scale;
        let too_coarse = largest < RESCALE_DOWN_BELOW * MANTISSA_MAX * scale;
        if largest.is_finite() && largest > 0.0 && (!fits || too_coarse) {
            self.rescale(block, largest, index, value);
        } else {
            self.mantissas[index] = quantize(value, scale);
        }
    }

    /// Gives the block a new scale for its largest value `largest`, re-encoding its slots
    /// (`index` takes `value`).
    fn rescale(&mut self, block: usize, largest: f64, index: usize, value: f64) {
        let start = block * BLOCK;
        let end = (start + BLOCK).min(self.mantissas.len());
        let decoded: Vec<f64> = (start..end)
            .map(|i| if i == index { value } else { self.decode(i) })
            .collect();
        let scale = scale_for(largest);
        self.scales[block] = scale;
        for (i, v) in (start..end).zip(decoded) {
            self.mantissas[i] = quantize(v, f64::from(scale));
        }
    }

    /// Extends storage by whole blocks so `index` is stored (new slots hold 0, never updated).
    fn grow_to(&mut self, index: usize) {
        if index < self.mantissas.len() {
            return;
        }
        let slots = self.slots as usize;
        let len = ((index / BLOCK + 1) * BLOCK).min(slots);
        let keep_counts = !self.counts.is_empty() || self.mantissas.is_empty();
        resize(&mut self.mantissas, len, 0);
        resize(&mut self.scales, len.div_ceil(BLOCK), 0.0);
        if keep_counts {
            resize(&mut self.counts, len, 0);
        }
    }

    /// Frees the counts once every slot of the cycle has at least `saturated` updates, or
    /// unconditionally with `force` (the profile has run long enough for the counts not to matter).
    /// Called after each update of `slot`: the full check runs only when that slot has just
    /// reached `saturated`, since the last slot to get there is the one that completes the set.
    pub fn release_counts(&mut self, slot: usize, saturated: u8, force: bool) {
        if self.counts.is_empty() || (!force && self.count(slot) != Some(saturated)) {
            return;
        }
        let whole = self.counts.len() == self.slots as usize;
        if force || (whole && self.counts.iter().all(|c| *c >= saturated)) {
            self.counts = Box::default();
        }
    }

    /// Heap bytes held, by length (see the module doc).
    pub fn heap_bytes(&self) -> usize {
        self.mantissas.len() * std::mem::size_of::<i16>()
            + self.scales.len() * std::mem::size_of::<f32>()
            + self.counts.len()
    }
}

/// Resizes a boxed slice to `len`, filling new elements with `fill`.
fn resize<T: Copy>(slice: &mut Box<[T]>, len: usize, fill: T) {
    let mut values = std::mem::take(slice).into_vec();
    values.resize(len, fill);
    *slice = values.into_boxed_slice();
}

/// The nearest mantissa of `value` at `scale` (0 when the scale is 0; saturating).
/// The scale that puts `largest` at `HEADROOM` of the mantissa range, rounded up in `f32` so it
/// still fits (infinite if `largest` is beyond what an `f32` scale can hold).
pub(crate) fn scale_for(largest: f64) -> f32 {
    let mut scale = (largest / (HEADROOM * MANTISSA_MAX)) as f32;
    if f64::from(scale) * MANTISSA_MAX < largest {
        scale = f32::from_bits(scale.to_bits() + 1);
    }
    scale
}

/// The nearest mantissa of `value` at `scale` (saturating; 0 while the scale is 0).
pub(crate) fn quantize(value: f64, scale: f64) -> i16 {
    if scale > 0.0 {
        (value / scale).round().clamp(-MANTISSA_MAX, MANTISSA_MAX) as i16
    } else {
        0
    }
}

/// `[i16]` as one little-endian byte string: bincode would otherwise write each `i16` as a
/// varint of up to 3 bytes.
mod i16_bytes {
    use super::*;

    pub fn serialize<S: Serializer>(values: &[i16], s: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        s.serialize_bytes(&bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Box<[i16]>, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Box<[i16]>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an even number of bytes")
            }

            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Box<[i16]>, E> {
                if bytes.len() % 2 != 0 {
                    return Err(E::invalid_length(bytes.len(), &self));
                }
                Ok(bytes
                    .chunks_exact(2)
                    .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
                    .collect())
            }

            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Box<[i16]>, E> {
                self.visit_bytes(&bytes)
            }
        }
        d.deserialize_bytes(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(profile: &Profile) -> Profile {
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(profile, config).unwrap();
        bincode::serde::decode_from_slice(&bytes, config).unwrap().0
    }

    #[test]
    fn storage_grows_from_the_origin_as_the_cycle_is_covered() {
        let mut profile = Profile::new(288, 280);
        assert_eq!(profile.heap_bytes(), 0);
        assert_eq!(profile.get(5), 0.0);
        profile.set(280, 1.5);
        // One block: 16 mantissas, one scale, 16 counts.
        assert_eq!(profile.heap_bytes(), 16 * 2 + 4 + 16);
        profile.set(3, -2.0); // wraps round: storage index 11, still the first block
        assert_eq!(profile.heap_bytes(), 16 * 2 + 4 + 16);
        profile.set(100, 7.0);
        assert_eq!(profile.mantissas.len(), 112);
        assert!((profile.get(280) - 1.5).abs() < 1e-4);
        assert!((profile.get(3) + 2.0).abs() < 1e-4);
        assert!((profile.get(100) - 7.0).abs() < 1e-3);
        assert_eq!(profile.get(50), 0.0);
        assert_eq!(profile.count(280), Some(1));
        assert_eq!(profile.count(50), Some(0));
    }

    #[test]
    fn precision_is_relative_to_the_block_and_a_spike_stays_in_its_block() {
        let mut profile = Profile::new(64, 0);
        for slot in 0..64 {
            profile.set(slot, 10.0 + slot as f64 * 0.001);
        }
        profile.set(3, 1e9);
        for slot in 16..64 {
            let expected = 10.0 + slot as f64 * 0.001;
            assert!((profile.get(slot) - expected).abs() < 1e-3, "{slot}");
        }
        assert!((profile.get(3) - 1e9).abs() < 1e5);
        // Once the spike has decayed, its block regains precision for what it learns next.
        profile.set(3, 10.003);
        profile.set(4, 10.004);
        assert!((profile.get(4) - 10.004).abs() < 1e-3);
        assert!((profile.get(3) - 10.003).abs() < 1e-3);
    }

    #[test]
    fn counts_are_freed_once_saturated_or_forced() {
        let mut profile = Profile::new(BLOCK * 2, 0);
        for _ in 0..3 {
            for slot in 0..BLOCK * 2 - 1 {
                profile.set(slot, 1.0);
            }
        }
        profile.release_counts(0, 3, false);
        assert_eq!(profile.count(0), Some(3), "one slot is still learning");
        profile.set(BLOCK * 2 - 1, 1.0);
        profile.release_counts(BLOCK * 2 - 1, 1, false);
        assert_eq!(profile.count(0), None);
        let before = profile.heap_bytes();
        profile.set(0, 2.0);
        assert_eq!(profile.heap_bytes(), before);

        let mut forced = Profile::new(BLOCK, 0);
        forced.set(0, 1.0);
        forced.release_counts(0, 200, true);
        assert_eq!(forced.count(0), None);
    }

    #[test]
    fn bincode_keeps_everything_in_two_bytes_a_slot() {
        let mut profile = Profile::new(288, 7);
        for slot in 0..288 {
            profile.set(slot, (slot as f64).sin() * 1000.0);
        }
        profile.release_counts(0, 1, false);
        let back = round_trip(&profile);
        assert_eq!(back, profile);
        let bytes = bincode::serde::encode_to_vec(&profile, bincode::config::standard()).unwrap();
        assert!(bytes.len() < 288 * 2 + 18 * 4 + 16, "{}", bytes.len());
    }

    #[test]
    fn odd_byte_strings_are_an_error_not_a_panic() {
        let config = bincode::config::standard();
        let mut bytes = bincode::serde::encode_to_vec(Profile::new(4, 0), config).unwrap();
        // slots, origin, then the mantissa byte string: give it one byte.
        bytes[2] = 1;
        bytes.insert(3, 0xAB);
        assert!(bincode::serde::decode_from_slice::<Profile, _>(&bytes, config).is_err());
    }

    #[test]
    fn non_finite_values_never_panic() {
        let mut profile = Profile::new(BLOCK, 0);
        profile.set(0, 1.0);
        for v in [f64::INFINITY, f64::NAN, -f64::MAX, f64::MIN_POSITIVE] {
            profile.set(1, v);
            let _ = profile.get(1);
        }
    }
}
