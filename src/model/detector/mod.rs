//! The job's model: all detectors, their open-bucket accumulators, the score normalizer, and the
//! assembly of a bucket's results.
//!
//! Owns the bucket lifecycle as the job pipeline drives it (`add_record` into any open bucket,
//! then exactly one of `finalize_bucket` / `discard_bucket`, with `interim_bucket` peeking in
//! between). Does not own time: the pipeline decides bucket boundaries, latency and ordering and
//! passes bucket starts. Per-detector semantics live in `detector_model`, statistics in `series`,
//! score mapping in `score`, JSON in `result`.
//!
//! The whole struct is the model snapshot (`bincode` via serde). Nothing in it is a hash map that
//! gets serialized or iterated for output, so equal call sequences give equal bytes and results.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ingest::FieldValue;
use crate::model::accumulator::DetectorBucket;
use crate::model::categorize::{Categorizer, Category};
use crate::model::detector_model::{DetectorModel, Observation};
use crate::model::influence::{bucket_influencer, BucketInfluences, InfluencerScoring};
use crate::model::memory::MemoryMonitor;
use crate::model::misfits::MisfitLedger;
use crate::model::model_plot::{self, ModelPlotSpec};
use crate::model::renormalize::{Renormalization, RenormalizationClock};
use crate::model::rules::JobRules;
use crate::model::score::{
    raw_score, HistoryDecay, Normalization, ScoreNormalizer, RECORD_PROBABILITY_THRESHOLD,
};
use crate::model::{AnalysisConfig, BucketResult, ModelSizeStats};

/// The accumulators of one open bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OpenBucket {
    event_count: u64,
    /// One per detector, same order as `AnomalyDetector::detectors`.
    detectors: Vec<DetectorBucket>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyDetector {
    bucket_span_secs: i64,
    detectors: Vec<DetectorModel>,
    /// The job's influencer field names, in config order.
    influencer_names: Vec<String>,
    /// Record slot of each influencer (`usize::MAX` if the caller did not pass the field).
    influencer_slots: Vec<usize>,
    summary_count_slot: Option<usize>,
    open_buckets: BTreeMap<i64, OpenBucket>,
    normalizer: ScoreNormalizer,
    /// Recent large raw scores per series, taken back out of `normalizer` when the series
    /// learns the seasonal component that explains them.
    misfits: MisfitLedger,
    /// The influencer fields' score histories.
    influencer_scoring: InfluencerScoring,
    /// Model plot comes from the job's config, not the snapshot (it can change while open).
    #[serde(skip)]
    model_plot: Option<ModelPlotSpec>,
    /// Custom rules in force (`model::rules`), set from the input log.
    rules: JobRules,
    /// With `categorization_field_name`: gives each record its `mlcategory`.
    categorizer: Option<Categorizer>,
    /// `model_memory_limit` and the counters `model_size_stats` reports.
    memory: MemoryMonitor,
    /// When past results are to be renormalized (checked per bucket, so a replay renormalizes
    /// at the same buckets).
    renormalization: RenormalizationClock,
}

/// Without a configured `model_prune_window`, soft-limit pruning starts from Elasticsearch's
/// default of 30 days.
const DEFAULT_PRUNE_WINDOW_MS: i64 = 30 * 86_400_000;

impl AnomalyDetector {
    /// `fields` are the analysis fields in slot order (`AnalysisConfig::analysis_fields()`): the
    /// `values` passed to `add_record` use the same slots.
    pub fn new(config: &AnalysisConfig, fields: &[String]) -> AnomalyDetector {
        let (categorizer, model_fields) = match Categorizer::for_job(config, fields) {
            Some((categorizer, model_fields)) => (Some(categorizer), model_fields),
            None => (None, fields.to_vec()),
        };
        let fields = &model_fields[..];
        let slot_of = |name: &str| fields.iter().position(|f| f == name).unwrap_or(usize::MAX);
        AnomalyDetector {
            bucket_span_secs: config.bucket_span.seconds(),
            detectors: config
                .detectors
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    DetectorModel::new(
                        i,
                        config.bucket_span.seconds(),
                        d,
                        fields,
                        &config.influencers,
                    )
                })
                .collect(),
            influencer_names: config.influencers.clone(),
            influencer_slots: config.influencers.iter().map(|i| slot_of(i)).collect(),
            summary_count_slot: config.summary_count_field_name.as_deref().map(slot_of),
            open_buckets: BTreeMap::new(),
            normalizer: ScoreNormalizer::new(),
            misfits: MisfitLedger::default(),
            influencer_scoring: InfluencerScoring::new(config.influencers.len()),
            model_plot: None,
            rules: JobRules::default(),
            categorizer,
            memory: {
                let mut memory = MemoryMonitor::default();
                let window = config.model_prune_window.as_ref().map(|w| w.millis);
                memory.configure(
                    None,
                    window.unwrap_or(DEFAULT_PRUNE_WINDOW_MS),
                    config.bucket_span.millis,
                );
                memory
            },
            renormalization: RenormalizationClock::default(),
        }
    }

    pub fn categorizer_mut(&mut self) -> Option<&mut Categorizer> {
        self.categorizer.as_mut()
    }

    pub fn rules(&self) -> &JobRules {
        &self.rules
    }

    /// Puts new custom rules in force from the next bucket finalized on.
    pub fn set_rules(&mut self, rules: JobRules) {
        self.rules = rules;
    }

    /// Enforces `analysis_limits.model_memory_limit` (`None`: no limit) from now on, pruning
    /// from `model_prune_window` at the soft limit. The job sets it each time it opens.
    pub fn set_memory_limit(&mut self, limit_bytes: Option<u64>, config: &AnalysisConfig) {
        let window = config.model_prune_window.as_ref().map(|w| w.millis);
        self.memory.configure(
            limit_bytes,
            window.unwrap_or(DEFAULT_PRUNE_WINDOW_MS),
            config.bucket_span.millis,
        );
    }

    /// Adds one processed record to the open bucket starting at `bucket_start`.
    ///
    /// With `summary_count_field_name`, a record whose count is missing, not a number or not
    /// positive stands for no events: it is counted in `event_count` but analysed by no detector.
    pub fn add_record(&mut self, bucket_start: i64, values: &[Option<FieldValue>]) {
        self.add_timed_record(bucket_start, bucket_start, values);
    }

    /// [`Self::add_record`] for a record at `time_ms` (what `time_of_day`/`time_of_week` read).
    pub fn add_timed_record(
        &mut self,
        bucket_start: i64,
        time_ms: i64,
        values: &[Option<FieldValue>],
    ) {
        let extended;
        let values = match self.categorizer.as_mut() {
            Some(categorizer) => {
                extended = categorizer.extend(values);
                &extended[..]
            }
            None => values,
        };
        let weight = match self.summary_count_slot {
            None => 1.0,
            Some(slot) => values
                .get(slot)
                .and_then(Option::as_ref)
                .and_then(FieldValue::as_f64)
                .unwrap_or(0.0),
        };
        let detector_count = self.detectors.len();
        let open = self
            .open_buckets
            .entry(bucket_start)
            .or_insert_with(|| OpenBucket {
                event_count: 0,
                detectors: vec![DetectorBucket::default(); detector_count],
            });
        open.event_count += 1;
        if !(weight > 0.0 && weight.is_finite()) {
            return;
        }
        // New series spend the memory budget; past it they are refused (not modelled).
        let mut budget = self.memory.new_series_budget();
        let mut refused = false;
        let mut spent = 0;
        for (detector, bucket) in self.detectors.iter_mut().zip(open.detectors.iter_mut()) {
            detector.set_budget(budget);
            detector.add_record(
                bucket_start,
                time_ms,
                values,
                weight,
                bucket,
                &self.influencer_slots,
            );
            refused |= detector.take_refused();
            if let (Some(before), Some(after)) = (budget, detector.budget()) {
                spent += before - after;
                budget = Some(after);
            }
        }
        if spent > 0 || refused {
            self.memory.spent(spent, refused, bucket_start);
        }
    }

    /// Scores the bucket against the models, then learns from it and forgets its accumulator.
    /// Called once per bucket in time order, empty buckets included.
    pub fn finalize_bucket(&mut self, bucket_start: i64) -> BucketResult {
        let open = self.open_buckets.remove(&bucket_start);
        let normalization = self.job_normalization();
        let (mut result, observations, influences) =
            self.assess(bucket_start, open.as_ref(), &normalization, false);
        if let Some(spec) = &self.model_plot {
            // Before learning: the bounds the bucket was judged against.
            let buckets = open.as_ref().map_or(&[][..], |o| &o.detectors[..]);
            result.model_plot =
                model_plot::rows(&self.detectors, &observations, buckets, bucket_start, spec);
        }
        for (d, (detector, observed)) in self.detectors.iter_mut().zip(&observations).enumerate() {
            let bucket = open.as_ref().and_then(|o| o.detectors.get(d));
            let adopted = detector.learn(bucket_start, observed, bucket);
            for o in observed.iter().filter(|o| o.assessment.scored) {
                let raw = raw_score(o.assessment.probability);
                self.normalizer.observe(raw);
                self.misfits.note(d, o.series, bucket_start, raw, || {
                    detector.may_explain_misfits(o.series)
                });
                if o.assessment.probability >= RECORD_PROBABILITY_THRESHOLD {
                    self.influencer_scoring.observe_unremarkable(raw);
                }
            }
            for (series, period) in adopted {
                self.misfits.explained(
                    d,
                    series,
                    period,
                    bucket_start,
                    self.bucket_span_secs * 1000,
                    &mut self.normalizer,
                );
            }
        }
        let decay = HistoryDecay::for_bucket_span(self.bucket_span_secs);
        self.normalizer.end_bucket(decay);
        self.influencer_scoring
            .observe_records_and_age(&influences, decay);
        result.categories = self
            .categorizer
            .as_mut()
            .map(Categorizer::take_changed)
            .unwrap_or_default();
        self.check_memory(bucket_start + self.bucket_span_secs * 1000);
        let series = self.series_count();
        let (normalizer, influencer_names, influencer_scoring) = (
            &self.normalizer,
            &self.influencer_names,
            &self.influencer_scoring,
        );
        result.renormalization = self
            .renormalization
            .renormalization_due(|| Renormalization {
                job: normalizer.normalization_per_series(series),
                fields: influencer_names
                    .iter()
                    .cloned()
                    .zip(influencer_scoring.normalizations(series))
                    .collect(),
            });
        result
    }

    /// The series the detectors model: what the score history is shared among (`model::score`).
    /// Population detectors add none: their members are judged against each other, so their
    /// outliers share the history as one series would (a job of populations alone counts as one).
    fn series_count(&self) -> usize {
        self.detectors.iter().map(|d| d.series().count()).sum()
    }

    /// How this job's next bucket is scored, given its score history.
    fn job_normalization(&self) -> Normalization {
        self.normalizer
            .normalization_per_series(self.series_count())
    }

    /// Turns model plot on (`Some`) or off for the buckets finalized from now on.
    pub fn set_model_plot(&mut self, spec: Option<ModelPlotSpec>) {
        self.model_plot = spec;
    }

    /// The detectors, for read-only work on the models (forecasts).
    pub(crate) fn detectors(&self) -> &[DetectorModel] {
        &self.detectors
    }

    /// After a bucket ending at `bucket_end` (ms): measures the model, and past the soft limit
    /// prunes series not seen within the (shrinking) window.
    fn check_memory(&mut self, bucket_end: i64) {
        self.memory.measured(self.measure_bytes());
        if let Some(before) = self.memory.prune_before(bucket_end) {
            if self.prune(before) > 0 {
                self.memory.measured(self.measure_bytes());
            }
        }
    }

    /// The bytes the model holds, from its state alone (lengths, not capacities), so the same
    /// state measures the same after a restart.
    fn measure_bytes(&self) -> u64 {
        let fixed = std::mem::size_of::<AnomalyDetector>()
            + self.detectors.len() * std::mem::size_of::<DetectorModel>();
        let series: u64 = self
            .detectors
            .iter()
            .map(|d| {
                d.series().approximate_bytes() + d.population().map_or(0, |p| p.approximate_bytes())
            })
            .sum();
        let open: u64 = self
            .open_buckets
            .values()
            .flat_map(|b| &b.detectors)
            .map(DetectorBucket::approximate_bytes)
            .sum();
        let categorizer = self
            .categorizer
            .as_ref()
            .map_or(0, Categorizer::approximate_bytes);
        fixed as u64 + series + open + categorizer + self.misfits.heap_bytes() as u64
    }

    /// Scores the open bucket as it stands, without learning anything (`calc_interim`).
    pub fn interim_bucket(&self, bucket_start: i64) -> BucketResult {
        let open = self.open_buckets.get(&bucket_start);
        self.assess(bucket_start, open, &self.job_normalization(), true)
            .0
    }

    /// Drops the open bucket without scoring or learning (`skip_time`).
    pub fn discard_bucket(&mut self, bucket_start: i64) {
        self.open_buckets.remove(&bucket_start);
    }

    /// Forgets series not seen since `before` (epoch ms): `model_prune_window`. Series with
    /// records in a still-open bucket are kept. Returns how many series were forgotten.
    pub fn prune(&mut self, before: i64) -> usize {
        let mut removed = 0;
        for (d, detector) in self.detectors.iter_mut().enumerate() {
            let open = &self.open_buckets;
            let remap = detector.retain_series(|id, last_seen| {
                last_seen >= before
                    || open
                        .values()
                        .any(|b| b.detectors.get(d).is_some_and(|db| db.contains(id)))
            });
            let gone = remap.iter().filter(|r| **r == u32::MAX).count();
            if gone > 0 {
                self.misfits.remap(d, &remap);
                for bucket in self.open_buckets.values_mut() {
                    if let Some(db) = bucket.detectors.get_mut(d) {
                        db.remap(&remap);
                    }
                }
            }
            removed += gone;
        }
        removed
    }

    pub fn model_size_stats(&self) -> ModelSizeStats {
        let mut stats = ModelSizeStats::default();
        for detector in &self.detectors {
            if let Some(population) = detector.population() {
                let (by, over, partition) = population.field_counts();
                stats.total_by_field_count += if detector.has_by_field() { by } else { 0 };
                stats.total_over_field_count += if population.has_over() { over } else { 0 };
                stats.total_partition_field_count += if detector.has_partition_field() {
                    partition
                } else {
                    0
                };
                continue;
            }
            let entries = detector.series().entries();
            if detector.has_by_field() {
                let mut values: Vec<&str> = entries.iter().map(|e| e.by.as_str()).collect();
                values.sort_unstable();
                values.dedup();
                stats.total_by_field_count += values.len() as u64;
            }
            if detector.has_partition_field() {
                let mut values: Vec<&str> = entries.iter().map(|e| e.partition.as_str()).collect();
                values.sort_unstable();
                values.dedup();
                stats.total_partition_field_count += values.len() as u64;
            }
        }
        stats.model_bytes = self.measure_bytes();
        stats.peak_model_bytes = self.memory.peak().max(stats.model_bytes);
        stats.model_bytes_exceeded = self.memory.exceeded();
        stats.bucket_allocation_failures_count = self.memory.allocation_failures();
        stats.memory_status = self.memory.status().as_str().to_string();
        stats.assignment_memory_basis = if self.memory.established() {
            "current_model_bytes"
        } else {
            "model_memory_limit"
        }
        .to_string();
        if let Some(categorizer) = &self.categorizer {
            stats.categorization = categorizer.stats();
        }
        stats
    }

    /// Scores one bucket: the result plus, per detector, the observations to learn from, and
    /// what its records say about the influencers.
    fn assess(
        &self,
        bucket_start: i64,
        open: Option<&OpenBucket>,
        normalization: &Normalization,
        is_interim: bool,
    ) -> (BucketResult, Vec<Vec<Observation>>, BucketInfluences) {
        let mut records = Vec::new();
        let mut influences = BucketInfluences::default();
        let mut all_observations = Vec::with_capacity(self.detectors.len());
        let mut min_probability: Option<f64> = None;
        for (d, detector) in self.detectors.iter().enumerate() {
            let bucket = open.and_then(|o| o.detectors.get(d));
            let (observations, learnt) = self.rules.screen(
                d,
                detector,
                detector.score(bucket, bucket_start),
                bucket_start,
            );
            for o in &observations {
                let p = o.assessment.probability;
                min_probability = Some(min_probability.map_or(p, |m: f64| m.min(p)));
                if o.assessment.scored && p < RECORD_PROBABILITY_THRESHOLD {
                    let score = normalization.score(p);
                    let influence = detector.influences(o, bucket, bucket_start);
                    influences.add_record(p, &influence);
                    records.push(detector.record(
                        o,
                        bucket,
                        &influence,
                        &self.influencer_names,
                        score,
                    ));
                }
            }
            all_observations.push(learnt);
        }
        records.sort_by(|a, b| {
            b.record_score
                .total_cmp(&a.record_score)
                .then(a.probability.total_cmp(&b.probability))
                .then(a.detector_index.cmp(&b.detector_index))
                .then_with(|| a.partition_field_value.cmp(&b.partition_field_value))
                .then_with(|| a.by_field_value.cmp(&b.by_field_value))
        });

        let mut bucket_influencers = Vec::new();
        let mut anomaly_score = 0.0;
        let (field_influencers, influencer_results) = influences.results(
            &self.influencer_names,
            &self.influencer_scoring.normalizations(self.series_count()),
            normalization,
        );
        if let Some(p) = min_probability {
            anomaly_score = normalization.score(p);
            bucket_influencers.push(bucket_influencer("bucket_time", p, normalization));
            bucket_influencers.extend(field_influencers);
        }
        let result = BucketResult {
            timestamp: bucket_start,
            bucket_span_secs: self.bucket_span_secs,
            anomaly_score,
            initial_anomaly_score: anomaly_score,
            event_count: open.map_or(0, |o| o.event_count),
            is_interim,
            bucket_influencers,
            records,
            influencers: influencer_results,
            model_plot: Vec::new(),
            categories: Vec::<Category>::new(),
            renormalization: None,
        };
        (result, all_observations, influences)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod semantics_tests;

#[cfg(test)]
mod function_tests;

#[cfg(test)]
mod memory_tests;

#[cfg(test)]
mod population_tests;
