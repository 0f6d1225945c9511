//! What finalizing (or interim-scoring) a bucket produces, and its Elasticsearch JSON shape.

use serde::{Deserialize, Serialize};

/// One anomalous series in one bucket (`result_type: "record"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyRecord {
    pub detector_index: usize,
    pub probability: f64,
    pub multi_bucket_impact: f64,
    pub record_score: f64,
    pub initial_record_score: f64,
    pub function: String,
    pub function_description: String,
    pub field_name: Option<String>,
    pub by_field_name: Option<String>,
    pub by_field_value: Option<String>,
    pub over_field_name: Option<String>,
    pub over_field_value: Option<String>,
    pub partition_field_name: Option<String>,
    pub partition_field_value: Option<String>,
    pub actual: Vec<f64>,
    pub typical: Vec<f64>,
    /// (influencer field name, values seen in this bucket for the series), sorted by name.
    pub influencers: Vec<(String, Vec<String>)>,
}

/// `bucket_influencers[]` of a bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketInfluencer {
    pub influencer_field_name: String,
    pub initial_anomaly_score: f64,
    pub anomaly_score: f64,
    pub raw_anomaly_score: f64,
    pub probability: f64,
}

/// The result of one bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketResult {
    /// Bucket start, epoch ms.
    pub timestamp: i64,
    pub bucket_span_secs: i64,
    pub anomaly_score: f64,
    pub initial_anomaly_score: f64,
    pub event_count: u64,
    pub is_interim: bool,
    pub bucket_influencers: Vec<BucketInfluencer>,
    /// Records sorted by descending `record_score`, then detector index and series names.
    pub records: Vec<AnomalyRecord>,
}

impl BucketResult {
    /// The bucket document as ES returns it from `results/buckets` (without `records`).
    pub fn bucket_json(&self, job_id: &str, processing_time_ms: u64) -> serde_json::Value {
        let _ = (job_id, processing_time_ms);
        todo!("model helper")
    }

    /// The record documents as ES returns them from `results/records`, same order as `records`.
    pub fn records_json(&self, job_id: &str) -> Vec<serde_json::Value> {
        let _ = job_id;
        todo!("model helper")
    }
}

/// `model_size_stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelSizeStats {
    pub model_bytes: u64,
    pub total_by_field_count: u64,
    pub total_over_field_count: u64,
    pub total_partition_field_count: u64,
    pub bucket_allocation_failures_count: u64,
}
