//! Model plot of a [`Population`]: the attribute models' bounds and each member's value in a
//! bucket, as Elasticsearch plots population models.
//!
//! Elasticsearch (ml-cpp's model details view) plots every active attribute (by value) of a
//! population detector: the bounds come from the attribute's population model, and each member
//! (over value) with a value in the bucket gets its own document carrying those bounds, its
//! `over_field_value` and its `actual`; an attribute no member used in the bucket gets one
//! document with the bounds alone. Categorical features (`rare`, `freq_rare`) are not plotted.
//! auspex plots the bucket features (the Elasticsearch functions over a population); the
//! circular and spherical measures (`time_of_day`, `time_of_week`, `lat_long`) have no central
//! interval on a line and are not plotted.
//!
//! A child of `population` so it reads the population's tables directly.

use std::collections::BTreeMap;

use super::{Measure, Population};
use crate::model::accumulator::{DetectorBucket, Feature};
use crate::model::interval::CONFIDENCE;
use crate::model::series::WARMUP_BUCKETS;

/// One plotted point of a population in one bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct PopulationPlot<'a> {
    pub partition: &'a str,
    pub by: &'a str,
    /// The member and its value; `None` for an attribute no member used in the bucket.
    pub member: Option<(&'a str, f64)>,
    pub feature: Feature,
    /// `(lower, median, upper)`; `None` while the attribute's model is warming up.
    pub bounds: Option<(f64, f64, f64)>,
}

impl Population {
    /// The bucket's plot, attribute by attribute (id order), feature by feature, then member by
    /// member (pair id order); only attributes for which `plots(partition, by)` holds.
    pub fn plot(
        &self,
        bucket: Option<&DetectorBucket>,
        plots: impl Fn(&str, &str) -> bool,
    ) -> Vec<PopulationPlot<'_>> {
        let Measure::Features(features) = &self.measure else {
            return Vec::new();
        };
        let mut users: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        if let Some(bucket) = bucket {
            for (id, pair) in self.pairs.iter().enumerate() {
                if bucket.contains(id as u32) {
                    users.entry(pair.attribute).or_default().push(id as u32);
                }
            }
        }
        let warm = self.attribute_buckets.buckets() >= WARMUP_BUCKETS as f64;
        let mut out = Vec::new();
        for (a, attribute) in self.attributes.iter().enumerate() {
            if !plots(&attribute.partition, &attribute.by) {
                continue;
            }
            let pairs = users.get(&(a as u32)).map_or(&[][..], Vec::as_slice);
            for ((feature, _, _), model) in features.iter().zip(&attribute.models) {
                let bounds = model
                    .interval(CONFIDENCE)
                    .filter(|_| warm)
                    .map(|i| (i.lower, i.median, i.upper));
                let point = |member| PopulationPlot {
                    partition: &attribute.partition,
                    by: &attribute.by,
                    member,
                    feature: *feature,
                    bounds,
                };
                let before = out.len();
                for id in pairs {
                    let value = bucket
                        .and_then(|b| b.get(*id))
                        .and_then(|acc| acc.feature(*feature));
                    if let Some(value) = value {
                        let member = &self.members[self.pairs[*id as usize].member as usize];
                        out.push(point(Some((member.over.as_str(), value))));
                    }
                }
                if out.len() == before {
                    out.push(point(None));
                }
            }
        }
        out
    }
}
