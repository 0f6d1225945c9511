//! The string features of a bucket: `distinct_count` (how many different values a field took) and
//! `info_content` (how much information those values carry).
//!
//! Owns the per-bucket set of distinct values (sorted, so snapshots and results never depend on
//! arrival order or hashing) and the information estimate. Elasticsearch measures information
//! content as the zlib-compressed size of the bucket's distinct values; auspex has no zlib, so it
//! estimates the same quantity as the order-0 entropy coding size of their concatenation, in
//! bytes, plus one byte per value for its boundary. Random-looking values (tunnelled data, generated
//! names) score high on both; repetitive ones low.

use serde::{Deserialize, Serialize};

/// Distinct values kept per series per bucket; beyond this the count keeps growing but new values
/// are no longer stored (a hostile stream cannot make one bucket hold unbounded text).
const MAX_STORED_VALUES: usize = 10_000;

/// The distinct values one series saw in one open bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DistinctValues {
    /// Sorted, unique.
    values: Vec<String>,
    /// Distinct values that arrived after `values` was full (counted, not stored).
    overflow: u64,
}

impl DistinctValues {
    pub fn insert(&mut self, value: &str) {
        match self.values.binary_search_by(|v| v.as_str().cmp(value)) {
            Ok(_) => {}
            Err(_) if self.values.len() >= MAX_STORED_VALUES => self.overflow += 1,
            Err(at) => self.values.insert(at, value.to_string()),
        }
    }

    pub fn count(&self) -> f64 {
        (self.values.len() as u64 + self.overflow) as f64
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.overflow == 0
    }

    /// Estimated compressed size in bytes of the distinct values (see the module comment).
    pub fn info_content(&self) -> f64 {
        let mut histogram = [0u64; 256];
        let mut total = 0u64;
        for value in &self.values {
            for b in value.bytes() {
                histogram[b as usize] += 1;
                total += 1;
            }
        }
        if total == 0 {
            return 0.0;
        }
        let n = total as f64;
        let bits: f64 = histogram
            .iter()
            .filter(|c| **c > 0)
            .map(|&c| {
                let c = c as f64;
                -c * (c / n).log2()
            })
            .sum();
        (bits / 8.0).ceil() + self.values.len() as f64
    }

    pub fn approximate_bytes(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<String>()
            + self.values.iter().map(String::capacity).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_distinct_values_in_any_order() {
        let mut a = DistinctValues::default();
        let mut b = DistinctValues::default();
        for v in ["x", "y", "x", "z"] {
            a.insert(v);
        }
        for v in ["z", "x", "y"] {
            b.insert(v);
        }
        assert_eq!(a.count(), 3.0);
        assert_eq!(a, b);
    }

    #[test]
    fn random_text_has_more_information_than_repetitive_text() {
        let mut plain = DistinctValues::default();
        plain.insert("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        let mut random = DistinctValues::default();
        random.insert("q8Zr1x0VbP3kLm9TcY7sWn2GfHd5JeUa");
        assert!(random.info_content() > 4.0 * plain.info_content());
        assert_eq!(DistinctValues::default().info_content(), 0.0);
    }
}
