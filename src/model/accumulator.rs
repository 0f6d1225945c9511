//! Open-bucket accumulators: what one series' records add up to while its bucket is open, and
//! the bucket features (count, mean, median, min, max, sum) read from them.
//!
//! Owns per-bucket arithmetic only. Does not decide which series a record belongs to, nor what a
//! detector does with an empty bucket (`detector_model`); knows nothing about time (the
//! detector keys open buckets by start). Accumulators are part of the snapshot, because a
//! snapshot can be taken while buckets are still open.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A bucket feature of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Feature {
    Count,
    Mean,
    Median,
    Min,
    Max,
    Sum,
}

impl Feature {
    /// The name Elasticsearch reports in `function_description` for this feature.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Count => "count",
            Feature::Mean => "mean",
            Feature::Median => "median",
            Feature::Min => "min",
            Feature::Max => "max",
            Feature::Sum => "sum",
        }
    }
}

/// One series' records in one open bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesAccumulator {
    pub series: u32,
    /// Records, each weighted by its summary count (1 without `summary_count_field_name`).
    pub count: f64,
    /// Weight of the records that carried a metric value.
    value_weight: f64,
    weighted_sum: f64,
    /// Plain sum of the metric values: pre-summarised sums are already sums.
    sum: f64,
    min: f64,
    max: f64,
    /// (value, weight), kept only when the detector needs a median.
    values: Vec<(f64, f64)>,
    /// (influencer index in the job's influencer list, value), deduplicated.
    pub influencers: Vec<(u32, String)>,
}

impl SeriesAccumulator {
    fn new(series: u32) -> SeriesAccumulator {
        SeriesAccumulator {
            series,
            count: 0.0,
            value_weight: 0.0,
            weighted_sum: 0.0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            values: Vec::new(),
            influencers: Vec::new(),
        }
    }

    pub fn add_count(&mut self, weight: f64) {
        self.count += weight;
    }

    pub fn add_value(&mut self, value: f64, weight: f64, keep_values: bool) {
        self.value_weight += weight;
        self.weighted_sum += weight * value;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        if keep_values {
            self.values.push((value, weight));
        }
    }

    pub fn add_influencer(&mut self, influencer: u32, value: &str) {
        if !self
            .influencers
            .iter()
            .any(|(i, v)| *i == influencer && v == value)
        {
            self.influencers.push((influencer, value.to_string()));
        }
    }

    fn has_values(&self) -> bool {
        self.min <= self.max
    }

    /// The feature's value, or `None` when the records carried nothing to compute it from.
    pub fn feature(&self, feature: Feature) -> Option<f64> {
        match feature {
            Feature::Count => Some(self.count),
            _ if !self.has_values() => None,
            // Records of summary count 0 carry no mass, so they give no mean.
            Feature::Mean => {
                (self.value_weight > 0.0).then(|| self.weighted_sum / self.value_weight)
            }
            Feature::Median => Some(weighted_median(&self.values)),
            Feature::Min => Some(self.min),
            Feature::Max => Some(self.max),
            Feature::Sum => Some(self.sum),
        }
    }
}

/// The weighted median: the smallest value whose cumulative weight reaches half the total; the
/// midpoint of the two middle values when the halves are exactly equal (the usual even-n median).
fn weighted_median(values: &[(f64, f64)]) -> f64 {
    let mut sorted: Vec<(f64, f64)> = values.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = sorted.iter().map(|(_, w)| w.max(0.0)).sum();
    if sorted.is_empty() {
        return f64::NAN;
    }
    if total <= 0.0 {
        return sorted[sorted.len() / 2].0;
    }
    let half = total / 2.0;
    let mut cumulative = 0.0;
    for (i, (value, weight)) in sorted.iter().enumerate() {
        cumulative += weight.max(0.0);
        if (cumulative - half).abs() <= total * 1e-12 {
            let next = sorted.get(i + 1).map_or(*value, |n| n.0);
            return (value + next) / 2.0;
        }
        if cumulative > half {
            return *value;
        }
    }
    sorted[sorted.len() - 1].0
}

/// One detector's accumulators in one open bucket, findable by series id in O(1).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetectorBucket {
    entries: Vec<SeriesAccumulator>,
    /// series id -> index in `entries` + 1 (0 = none); rebuilt on deserialization.
    slots: Vec<u32>,
}

impl DetectorBucket {
    fn from_entries(entries: Vec<SeriesAccumulator>) -> DetectorBucket {
        let mut bucket = DetectorBucket {
            entries,
            slots: Vec::new(),
        };
        for (i, e) in bucket.entries.iter().enumerate() {
            let id = e.series as usize;
            if bucket.slots.len() <= id {
                bucket.slots.resize(id + 1, 0);
            }
            bucket.slots[id] = i as u32 + 1;
        }
        bucket
    }

    pub fn get(&self, series: u32) -> Option<&SeriesAccumulator> {
        let slot = *self.slots.get(series as usize)?;
        if slot == 0 {
            return None;
        }
        self.entries.get(slot as usize - 1)
    }

    pub fn entry(&mut self, series: u32) -> &mut SeriesAccumulator {
        let id = series as usize;
        if self.slots.len() <= id {
            self.slots.resize(id + 1, 0);
        }
        if self.slots[id] == 0 {
            self.entries.push(SeriesAccumulator::new(series));
            self.slots[id] = self.entries.len() as u32;
        }
        let index = self.slots[id] as usize - 1;
        &mut self.entries[index]
    }

    pub fn contains(&self, series: u32) -> bool {
        self.get(series).is_some()
    }

    /// Renumbers series after a prune (`remap[old] = new`, `u32::MAX` = gone).
    pub fn remap(&mut self, remap: &[u32]) {
        let entries = std::mem::take(&mut self.entries)
            .into_iter()
            .filter_map(|mut e| {
                let new = *remap.get(e.series as usize)?;
                (new != u32::MAX).then(|| {
                    e.series = new;
                    e
                })
            })
            .collect();
        *self = DetectorBucket::from_entries(entries);
    }

    /// Bytes held, by length (not capacity): a function of the bucket's contents alone, equal
    /// after a snapshot round trip, as the memory limit needs.
    pub fn approximate_bytes(&self) -> u64 {
        let heap: usize = self
            .entries
            .iter()
            .map(|e| {
                e.values.len() * std::mem::size_of::<(f64, f64)>()
                    + e.influencers
                        .iter()
                        .map(|(_, v)| std::mem::size_of::<(u32, String)>() + v.len())
                        .sum::<usize>()
            })
            .sum();
        (self.entries.len() * std::mem::size_of::<SeriesAccumulator>()
            + self.slots.len() * std::mem::size_of::<u32>()
            + heap) as u64
    }
}

impl Serialize for DetectorBucket {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.entries.serialize(s)
    }
}

impl<'de> Deserialize<'de> for DetectorBucket {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<SeriesAccumulator>::deserialize(d).map(DetectorBucket::from_entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_of_weighted_records() {
        let mut bucket = DetectorBucket::default();
        let acc = bucket.entry(3);
        acc.add_count(2.0);
        acc.add_value(10.0, 2.0, true);
        acc.add_count(1.0);
        acc.add_value(40.0, 1.0, true);
        let acc = bucket.get(3).unwrap();
        assert_eq!(acc.feature(Feature::Count), Some(3.0));
        assert_eq!(acc.feature(Feature::Mean), Some(20.0));
        assert_eq!(acc.feature(Feature::Median), Some(10.0));
        assert_eq!(acc.feature(Feature::Min), Some(10.0));
        assert_eq!(acc.feature(Feature::Max), Some(40.0));
        assert_eq!(acc.feature(Feature::Sum), Some(50.0));
        assert!(bucket.get(2).is_none());
        assert!(bucket.get(99).is_none());
    }

    #[test]
    fn records_without_values_have_no_metric_features() {
        let mut acc = SeriesAccumulator::new(0);
        acc.add_count(1.0);
        assert_eq!(acc.feature(Feature::Count), Some(1.0));
        assert_eq!(acc.feature(Feature::Mean), None);
        assert_eq!(acc.feature(Feature::Sum), None);
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(weighted_median(&[(1.0, 1.0), (3.0, 1.0), (2.0, 1.0)]), 2.0);
        assert_eq!(
            weighted_median(&[(1.0, 1.0), (4.0, 1.0), (2.0, 1.0), (3.0, 1.0)]),
            2.5
        );
        assert_eq!(weighted_median(&[(1.0, 5.0), (100.0, 1.0)]), 1.0);
    }

    #[test]
    fn influencers_are_deduplicated() {
        let mut acc = SeriesAccumulator::new(0);
        acc.add_influencer(0, "a");
        acc.add_influencer(0, "a");
        acc.add_influencer(1, "a");
        assert_eq!(acc.influencers.len(), 2);
    }

    #[test]
    fn remap_and_round_trip_keep_lookups_working() {
        let mut bucket = DetectorBucket::default();
        bucket.entry(0).add_count(1.0);
        bucket.entry(2).add_count(5.0);
        bucket.remap(&[u32::MAX, 0, 1]);
        assert_eq!(bucket.get(1).unwrap().count, 5.0);
        assert!(bucket.get(0).is_none());
        let bytes = bincode::serde::encode_to_vec(&bucket, bincode::config::standard()).unwrap();
        let (back, _): (DetectorBucket, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        assert_eq!(back, bucket);
        assert_eq!(back.get(1).unwrap().count, 5.0);
    }
}
