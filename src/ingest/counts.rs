//! `data_counts`: what a job has been sent and what it did with it.
//!
//! The rules, as Elasticsearch applies them:
//! - every record read counts in `input_record_count`, its fields in `input_field_count`, and the
//!   request body in `input_bytes`;
//! - a record whose time is missing or unparseable counts in `invalid_date_count` and goes no further;
//! - a record older than the last finalized bucket end counts in `out_of_order_timestamp_count` and goes
//!   no further;
//! - every other record is processed: `processed_record_count`, plus each analysis field it carries in
//!   `processed_field_count` and each one it lacks in `missing_field_count`.
//!
//! Bucket counters (`bucket_count`, `empty_bucket_count`, `sparse_bucket_count` and their latest
//! timestamps) are kept by the job pipeline as buckets are finalized.

use serde::{Deserialize, Serialize};

/// Counters are plain (no `Option` skipping) so the struct round-trips through bincode, which is
/// positional; [`DataCounts::to_json`] renders the Elasticsearch shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataCounts {
    pub processed_record_count: u64,
    pub processed_field_count: u64,
    pub input_bytes: u64,
    pub input_field_count: u64,
    pub invalid_date_count: u64,
    pub missing_field_count: u64,
    pub out_of_order_timestamp_count: u64,
    pub empty_bucket_count: u64,
    pub sparse_bucket_count: u64,
    pub bucket_count: u64,
    pub input_record_count: u64,
    pub earliest_record_timestamp: Option<i64>,
    pub latest_record_timestamp: Option<i64>,
    /// Wall-clock time (ms) of the last `_data` that carried records.
    pub last_data_time: Option<i64>,
    pub latest_empty_bucket_timestamp: Option<i64>,
    pub latest_sparse_bucket_timestamp: Option<i64>,
    pub latest_bucket_timestamp: Option<i64>,
    /// Wall-clock time (ms) these counts were last changed.
    pub log_time: Option<i64>,
}

impl DataCounts {
    /// The Elasticsearch JSON shape; absent timestamps are left out, as ES does.
    pub fn to_json(&self, job_id: &str) -> serde_json::Value {
        let mut out = serde_json::json!({
            "job_id": job_id,
            "processed_record_count": self.processed_record_count,
            "processed_field_count": self.processed_field_count,
            "input_bytes": self.input_bytes,
            "input_field_count": self.input_field_count,
            "invalid_date_count": self.invalid_date_count,
            "missing_field_count": self.missing_field_count,
            "out_of_order_timestamp_count": self.out_of_order_timestamp_count,
            "empty_bucket_count": self.empty_bucket_count,
            "sparse_bucket_count": self.sparse_bucket_count,
            "bucket_count": self.bucket_count,
        });
        let map = out
            .as_object_mut()
            .expect("json! of an object literal is an object");
        let optional = [
            ("earliest_record_timestamp", self.earliest_record_timestamp),
            ("latest_record_timestamp", self.latest_record_timestamp),
            ("last_data_time", self.last_data_time),
            (
                "latest_empty_bucket_timestamp",
                self.latest_empty_bucket_timestamp,
            ),
            (
                "latest_sparse_bucket_timestamp",
                self.latest_sparse_bucket_timestamp,
            ),
            ("latest_bucket_timestamp", self.latest_bucket_timestamp),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                map.insert(name.to_string(), v.into());
            }
        }
        map.insert(
            "input_record_count".to_string(),
            self.input_record_count.into(),
        );
        if let Some(v) = self.log_time {
            map.insert("log_time".to_string(), v.into());
        }
        out
    }
}
