//! JobConfig: the job document (`PUT _ml/anomaly_detectors/<id>`): parsing, validation, defaults.

use serde::{Deserialize, Serialize};

use crate::ingest::DataDescription;
use crate::job::JobError;
use crate::model::{AnalysisConfig, AnalysisLimits};

/// A validated job config with every default filled in; serializes to the `GET` job shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobConfig {
    pub job_id: String,
    pub job_type: String,
    pub job_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub create_time: i64,
    pub analysis_config: AnalysisConfig,
    pub analysis_limits: AnalysisLimits,
    pub data_description: DataDescription,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_plot_config: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renormalization_window_days: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_persist_interval: Option<crate::model::TimeSpan>,
    pub model_snapshot_retention_days: u64,
    pub daily_model_snapshot_retention_after_days: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_retention_days: Option<u64>,
    pub results_index_name: String,
    pub allow_lazy_open: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_settings: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_snapshot_id: Option<String>,
}

impl JobConfig {
    /// Builds a job from a `PUT` body: validates the id (and that a body `job_id` matches it),
    /// parses, checks every rule Elasticsearch checks, and fills in defaults.
    pub fn from_put_body(job_id: &str, body: &[u8], now_ms: i64) -> Result<JobConfig, JobError> {
        let _ = (job_id, body, now_ms);
        todo!("config helper")
    }
}

/// Elasticsearch's id rule: lowercase alphanumerics, `-` and `_`, starting and ending alphanumeric,
/// at most 64 characters.
pub fn validate_job_id(job_id: &str) -> Result<(), JobError> {
    let _ = job_id;
    todo!("config helper")
}
