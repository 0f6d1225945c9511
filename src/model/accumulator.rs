//! Open-bucket accumulators: what one series' records add up to while its bucket is open, and
//! the bucket features (count, mean, median, min, max, sum, varp, distinct count, information
//! content) read from them, plus the raw material of the point features (when in the day or week
//! records arrived, where they came from) that `population` models.
//!
//! Owns per-bucket arithmetic only. Does not decide which series a record belongs to, nor what a
//! detector does with an empty bucket (`detector_model`); knows nothing about time (the
//! detector keys open buckets by start). Accumulators are part of the snapshot, because a
//! snapshot can be taken while buckets are still open.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::distinct::DistinctValues;

/// A bucket feature of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Feature {
    Count,
    Mean,
    Median,
    Min,
    Max,
    Sum,
    /// Population variance of the values (`varp`).
    Varp,
    DistinctCount,
    InfoContent,
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
            Feature::Varp => "varp",
            Feature::DistinctCount => "distinct_count",
            Feature::InfoContent => "info_content",
        }
    }
}

/// Weighted statistics of a set of records of one series in one bucket: all of them, or those
/// carrying one influencer value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    /// Records, each weighted by its summary count (1 without `summary_count_field_name`).
    pub count: f64,
    /// Number of records that carried a metric value (unweighted).
    value_count: f64,
    /// Weight of the records that carried a metric value.
    value_weight: f64,
    weighted_sum: f64,
    /// Plain sum of the metric values: pre-summarised sums are already sums.
    sum: f64,
    min: f64,
    max: f64,
}

impl Default for Moments {
    fn default() -> Moments {
        Moments {
            count: 0.0,
            value_count: 0.0,
            value_weight: 0.0,
            weighted_sum: 0.0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Moments {
    fn add_count(&mut self, weight: f64) {
        self.count += weight;
    }

    fn add_value(&mut self, value: f64, weight: f64) {
        self.value_count += 1.0;
        self.value_weight += weight;
        self.weighted_sum += weight * value;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// The statistics of the records not in `part` (a subset of these records). Extremes cannot
    /// be subtracted: the rest has no min or max.
    pub fn without(&self, part: &Moments) -> Moments {
        Moments {
            count: (self.count - part.count).max(0.0),
            value_count: (self.value_count - part.value_count).max(0.0),
            value_weight: (self.value_weight - part.value_weight).max(0.0),
            weighted_sum: self.weighted_sum - part.weighted_sum,
            sum: self.sum - part.sum,
            min: f64::NAN,
            max: f64::NAN,
        }
    }

    /// The feature's value, or `None` when the records carried nothing to compute it from.
    /// A median needs the values themselves: here it is `None` (see [`SeriesAccumulator`]).
    pub fn feature(&self, feature: Feature) -> Option<f64> {
        match feature {
            Feature::Count => Some(self.count),
            _ if self.value_count <= 0.0 => None,
            // Records of summary count 0 carry no mass, so they give no mean.
            Feature::Mean => {
                (self.value_weight > 0.0).then(|| self.weighted_sum / self.value_weight)
            }
            Feature::Median => None,
            Feature::Min => Some(self.min).filter(|v| !v.is_nan()),
            Feature::Max => Some(self.max).filter(|v| !v.is_nan()),
            Feature::Sum => Some(self.sum),
            // These need the series' terms or squares (`SeriesAccumulator`), not kept per
            // influencer value.
            Feature::Varp | Feature::DistinctCount | Feature::InfoContent => None,
        }
    }
}

/// The records of one series in one bucket that carried one value of one influencer field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InfluencerMoments {
    /// Index of the field in the job's influencer list.
    pub influencer: u32,
    pub value: String,
    pub moments: Moments,
}

/// One series' records in one open bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesAccumulator {
    pub series: u32,
    totals: Moments,
    /// (value, weight), kept only when the detector needs a median.
    values: Vec<(f64, f64)>,
    /// One entry per (influencer field, value) seen, in order of appearance.
    pub influencers: Vec<InfluencerMoments>,
    /// What only some functions need; `None` for the plain metric and count functions, so they
    /// pay one pointer for it.
    extra: Option<Box<Extra>>,
}

/// Accumulators of the less common features.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Extra {
    /// Weighted sum of squared values, and how many values (`varp`).
    weighted_squares: f64,
    squared_values: f64,
    /// Distinct terms (`distinct_count`, `info_content`).
    terms: DistinctValues,
    /// Sums of (cos, sin) of the records' phase in the day or week: their circular mean.
    phase: [f64; 2],
    /// Sum of the records' unit vectors on the globe: their mean position.
    position: [f64; 3],
    /// Records that gave a position.
    positions: f64,
}

impl SeriesAccumulator {
    fn new(series: u32) -> SeriesAccumulator {
        SeriesAccumulator {
            series,
            totals: Moments::default(),
            values: Vec::new(),
            influencers: Vec::new(),
            extra: None,
        }
    }

    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Keeps the squares too, for `varp`.
    pub fn add_square(&mut self, value: f64, weight: f64) {
        let extra = self.extra();
        extra.weighted_squares += weight * value * value;
        extra.squared_values += 1.0;
    }

    pub fn add_term(&mut self, term: &str) {
        self.extra().terms.insert(term);
    }

    /// A record at `phase` seconds into a cycle of `period` seconds (`time_of_day`/`_week`).
    pub fn add_phase(&mut self, phase: f64, period: f64) {
        let angle = std::f64::consts::TAU * phase / period;
        let extra = self.extra();
        extra.phase[0] += angle.cos();
        extra.phase[1] += angle.sin();
    }

    /// The circular mean of the records' phases, in seconds into the cycle.
    pub fn mean_phase(&self, period: f64) -> Option<f64> {
        let [x, y] = self.extra.as_ref()?.phase;
        if x == 0.0 && y == 0.0 {
            return None;
        }
        Some((y.atan2(x) / std::f64::consts::TAU * period).rem_euclid(period))
    }

    /// A record at (`lat`, `lon`) degrees.
    pub fn add_position(&mut self, lat: f64, lon: f64) {
        let (lat, lon) = (lat.to_radians(), lon.to_radians());
        let extra = self.extra();
        extra.position[0] += lat.cos() * lon.cos();
        extra.position[1] += lat.cos() * lon.sin();
        extra.position[2] += lat.sin();
        extra.positions += 1.0;
    }

    /// The mean position of the records, (lat, lon) in degrees: the centre of their unit vectors,
    /// which stays right across the antimeridian.
    pub fn mean_position(&self) -> Option<[f64; 2]> {
        let extra = self.extra.as_ref()?;
        if extra.positions <= 0.0 {
            return None;
        }
        let [x, y, z] = extra.position;
        let horizontal = x.hypot(y);
        if horizontal == 0.0 && z == 0.0 {
            return None;
        }
        Some([z.atan2(horizontal).to_degrees(), y.atan2(x).to_degrees()])
    }

    /// Adds one record of summary-count `weight`, with its metric value if it has one.
    pub fn add_record(&mut self, weight: f64, value: Option<f64>, keep_values: bool) {
        self.totals.add_count(weight);
        if let Some(value) = value {
            self.totals.add_value(value, weight);
            if keep_values {
                self.values.push((value, weight));
            }
        }
    }

    /// Files the record just added under one of its influencer values.
    pub fn add_influencer(&mut self, influencer: u32, term: &str, weight: f64, value: Option<f64>) {
        let index = match self
            .influencers
            .iter()
            .position(|e| e.influencer == influencer && e.value == term)
        {
            Some(index) => index,
            None => {
                self.influencers.push(InfluencerMoments {
                    influencer,
                    value: term.to_string(),
                    moments: Moments::default(),
                });
                self.influencers.len() - 1
            }
        };
        let moments = &mut self.influencers[index].moments;
        moments.add_count(weight);
        if let Some(value) = value {
            moments.add_value(value, weight);
        }
    }

    #[cfg(test)]
    pub fn count(&self) -> f64 {
        self.totals.count
    }

    pub fn totals(&self) -> &Moments {
        &self.totals
    }

    fn terms(&self) -> Option<&DistinctValues> {
        self.extra
            .as_ref()
            .map(|e| &e.terms)
            .filter(|t| !t.is_empty())
    }

    /// The feature's value, or `None` when the records carried nothing to compute it from.
    pub fn feature(&self, feature: Feature) -> Option<f64> {
        match feature {
            Feature::Median if self.totals.value_count > 0.0 => Some(weighted_median(&self.values)),
            Feature::DistinctCount => self.terms().map(DistinctValues::count),
            Feature::InfoContent => self.terms().map(DistinctValues::info_content),
            // The population variance needs two values to be more than a constant 0.
            Feature::Varp => {
                let extra = self.extra.as_ref()?;
                let totals = &self.totals;
                (totals.value_weight > 0.0 && extra.squared_values >= 2.0).then(|| {
                    let mean = totals.weighted_sum / totals.value_weight;
                    (extra.weighted_squares / totals.value_weight - mean * mean).max(0.0)
                })
            }
            _ => self.totals.feature(feature),
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
                        .map(|i| std::mem::size_of::<InfluencerMoments>() + i.value.len())
                        .sum::<usize>()
                    + e.extra.as_ref().map_or(0, |x| {
                        std::mem::size_of::<Extra>() + x.terms.approximate_bytes()
                    })
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
        acc.add_record(2.0, Some(10.0), true);
        acc.add_record(1.0, Some(40.0), true);
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
        acc.add_record(1.0, None, false);
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
    fn influencer_values_keep_their_own_statistics() {
        let mut acc = SeriesAccumulator::new(0);
        for (term, value) in [("a", 1.0), ("a", 3.0), ("b", 100.0)] {
            acc.add_record(1.0, Some(value), false);
            acc.add_influencer(0, term, 1.0, Some(value));
        }
        acc.add_influencer(1, "a", 1.0, None);
        assert_eq!(acc.influencers.len(), 3);
        let a = &acc.influencers[0].moments;
        assert_eq!(a.feature(Feature::Count), Some(2.0));
        assert_eq!(a.feature(Feature::Mean), Some(2.0));
        assert_eq!(a.feature(Feature::Max), Some(3.0));
        let rest = acc.totals().without(a);
        assert_eq!(rest.feature(Feature::Count), Some(1.0));
        assert_eq!(rest.feature(Feature::Mean), Some(100.0));
        assert_eq!(rest.feature(Feature::Sum), Some(100.0));
        assert_eq!(rest.feature(Feature::Max), None);
        let nothing = acc.totals().without(acc.totals());
        assert_eq!(nothing.feature(Feature::Mean), None);
    }

    #[test]
    fn remap_and_round_trip_keep_lookups_working() {
        let mut bucket = DetectorBucket::default();
        bucket.entry(0).add_record(1.0, None, false);
        bucket.entry(2).add_record(5.0, None, false);
        bucket.remap(&[u32::MAX, 0, 1]);
        assert_eq!(bucket.get(1).unwrap().count(), 5.0);
        assert!(bucket.get(0).is_none());
        let bytes = bincode::serde::encode_to_vec(&bucket, bincode::config::standard()).unwrap();
        let (back, _): (DetectorBucket, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        assert_eq!(back, bucket);
        assert_eq!(back.get(1).unwrap().count(), 5.0);
    }
}
