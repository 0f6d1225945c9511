//! JobStatus: what `_stats` reports about a job, persisted with every commit (store `progress.status`)
//! so stats read straight from the store, open or closed, without asking the job's actor.

use serde::{Deserialize, Serialize};

use crate::engine::pipeline::PipelineState;
use crate::engine::JobError;
use crate::ingest::DataCounts;
use crate::model::ModelSizeStats;
use crate::store::{self, Progress};

/// Persisted with bincode (positional): add fields only with a store format version bump.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    pub counts: DataCounts,
    /// End of the last finalized bucket (the `last_finalized_bucket_end` of `_flush`).
    pub finalized_end: Option<i64>,
    /// `[start, end)` of interim results currently stored; cleared when they are replaced.
    pub interim_range: Option<(i64, i64)>,
    pub model_size_stats: ModelSizeStats,
    pub timing: TimingStats,
    pub latest_record_time: Option<i64>,
    pub latest_result_time: Option<i64>,
    /// Wall-clock ms of the last model-size measurement (`model_size_stats.log_time`).
    pub model_log_time: Option<i64>,
}

/// `timing_stats`: how long finalizing buckets takes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimingStats {
    pub bucket_count: u64,
    pub total_bucket_processing_time_ms: f64,
    pub minimum_bucket_processing_time_ms: Option<f64>,
    pub maximum_bucket_processing_time_ms: Option<f64>,
    pub exponential_average_bucket_processing_time_ms: Option<f64>,
}

impl TimingStats {
    /// Records `buckets` buckets finalized together in `elapsed_ms` (split evenly between them).
    pub fn record(&mut self, buckets: usize, elapsed_ms: f64) {
        if buckets == 0 {
            return;
        }
        let each = elapsed_ms / buckets as f64;
        self.bucket_count += buckets as u64;
        self.total_bucket_processing_time_ms += elapsed_ms;
        self.minimum_bucket_processing_time_ms = Some(
            self.minimum_bucket_processing_time_ms
                .map_or(each, |m| m.min(each)),
        );
        self.maximum_bucket_processing_time_ms = Some(
            self.maximum_bucket_processing_time_ms
                .map_or(each, |m| m.max(each)),
        );
        // ES smooths by 0.01 per bucket; n buckets of equal time at once keep 0.99^n of the old average.
        let kept = 0.99f64.powi(buckets.min(10_000) as i32);
        self.exponential_average_bucket_processing_time_ms = Some(
            self.exponential_average_bucket_processing_time_ms
                .map_or(each, |avg| avg * kept + each * (1.0 - kept)),
        );
    }

    pub fn to_json(&self, job_id: &str) -> serde_json::Value {
        let mut out = serde_json::json!({
            "job_id": job_id,
            "bucket_count": self.bucket_count,
            "total_bucket_processing_time_ms": self.total_bucket_processing_time_ms,
        });
        let map = out.as_object_mut().expect("object literal");
        let average = (self.bucket_count > 0)
            .then(|| self.total_bucket_processing_time_ms / self.bucket_count as f64);
        let optional = [
            (
                "minimum_bucket_processing_time_ms",
                self.minimum_bucket_processing_time_ms,
            ),
            (
                "maximum_bucket_processing_time_ms",
                self.maximum_bucket_processing_time_ms,
            ),
            ("average_bucket_processing_time_ms", average),
            (
                "exponential_average_bucket_processing_time_ms",
                self.exponential_average_bucket_processing_time_ms,
            ),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                map.insert(name.to_string(), v.into());
            }
        }
        out
    }
}

impl JobStatus {
    /// The status stored in a progress record (the default for a job that never committed).
    pub fn from_progress(progress: &Progress) -> Result<JobStatus, JobError> {
        if progress.status.is_empty() {
            return Ok(JobStatus::default());
        }
        Ok(store::decode(&progress.status)?)
    }

    /// Brings the status up to the pipeline's state after `finalized` buckets were finalized in
    /// `elapsed_ms` (the job actor and offline replay commit through this).
    pub fn advance(
        &mut self,
        state: &PipelineState,
        finalized: usize,
        elapsed_ms: f64,
        now_ms: i64,
    ) {
        self.counts = state.counts.clone();
        self.finalized_end = state.finalized_end;
        self.latest_record_time = state.latest_record_time;
        self.latest_result_time = state.latest_result_time;
        self.timing.record(finalized, elapsed_ms);
        if finalized > 0 {
            self.model_size_stats = state.detector.model_size_stats();
            self.model_log_time = Some(now_ms);
        }
    }

    /// `model_size_stats` in the Elasticsearch shape.
    pub fn model_size_stats_json(
        &self,
        job_id: &str,
        memory_limit_bytes: u64,
    ) -> serde_json::Value {
        let stats = &self.model_size_stats;
        // A job that never finalized a bucket has measured nothing yet.
        fn or<'a>(value: &'a str, default: &'a str) -> &'a str {
            if value.is_empty() {
                default
            } else {
                value
            }
        }
        let mut out = serde_json::json!({
            "job_id": job_id,
            "result_type": "model_size_stats",
            "model_bytes": stats.model_bytes,
            "peak_model_bytes": stats.peak_model_bytes.max(stats.model_bytes),
            "model_bytes_exceeded": stats.model_bytes_exceeded,
            "model_bytes_memory_limit": memory_limit_bytes,
            "total_by_field_count": stats.total_by_field_count,
            "total_over_field_count": stats.total_over_field_count,
            "total_partition_field_count": stats.total_partition_field_count,
            "bucket_allocation_failures_count": stats.bucket_allocation_failures_count,
            "memory_status": or(&stats.memory_status, "ok"),
            "assignment_memory_basis": or(&stats.assignment_memory_basis, "model_memory_limit"),
            "categorized_doc_count": stats.categorization.categorized_doc_count,
            "total_category_count": stats.categorization.total_category_count,
            "frequent_category_count": stats.categorization.frequent_category_count,
            "rare_category_count": stats.categorization.rare_category_count,
            "dead_category_count": stats.categorization.dead_category_count,
            "failed_category_count": stats.categorization.failed_category_count,
            "categorization_status": if stats.categorization.warn { "warn" } else { "ok" },
        });
        let map = out.as_object_mut().expect("object literal");
        if let Some(t) = self.model_log_time {
            map.insert("log_time".into(), t.into());
        }
        if let Some(t) = self.latest_result_time {
            map.insert("timestamp".into(), t.into());
        }
        out
    }
}
