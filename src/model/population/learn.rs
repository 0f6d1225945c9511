//! What a [`Population`] learns from a finalized bucket (each pair's values into its attribute's
//! model, the sightings behind `rare` and `exclude_frequent`).
//!
//! A child of `population` so it updates the population's tables directly.

use super::{Measure, Population};
use crate::model::accumulator::DetectorBucket;

impl Population {
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
                    .add(pair.attribute, accumulator.totals().count);
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
}
