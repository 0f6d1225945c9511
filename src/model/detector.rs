//! The job's model: all detectors, their open-bucket accumulators and their series models.

use serde::{Deserialize, Serialize};

use crate::ingest::FieldValue;
use crate::model::{AnalysisConfig, BucketResult, ModelSizeStats};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnomalyDetector {
    _todo: (),
}

impl AnomalyDetector {
    /// `fields` are the analysis fields in slot order (`AnalysisConfig::analysis_fields()`): the
    /// `values` passed to `add_record` use the same slots.
    pub fn new(config: &AnalysisConfig, fields: &[String]) -> AnomalyDetector {
        let _ = (config, fields);
        todo!("model helper")
    }

    /// Adds one processed record to the open bucket starting at `bucket_start`.
    pub fn add_record(&mut self, bucket_start: i64, values: &[Option<FieldValue>]) {
        let _ = (bucket_start, values);
        todo!("model helper")
    }

    /// Scores the bucket against the models, then learns from it and forgets its accumulator.
    /// Called once per bucket in time order, empty buckets included.
    pub fn finalize_bucket(&mut self, bucket_start: i64) -> BucketResult {
        let _ = bucket_start;
        todo!("model helper")
    }

    /// Scores the open bucket as it stands, without learning anything (`calc_interim`).
    pub fn interim_bucket(&self, bucket_start: i64) -> BucketResult {
        let _ = bucket_start;
        todo!("model helper")
    }

    /// Drops the open bucket without scoring or learning (`skip_time`).
    pub fn discard_bucket(&mut self, bucket_start: i64) {
        let _ = bucket_start;
        todo!("model helper")
    }

    /// Forgets series not seen since `before` (epoch ms): `model_prune_window`.
    pub fn prune(&mut self, before: i64) -> usize {
        let _ = before;
        todo!("model helper")
    }

    pub fn model_size_stats(&self) -> ModelSizeStats {
        todo!("model helper")
    }
}
