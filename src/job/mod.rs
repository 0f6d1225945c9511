//! Job: configs, lifecycle, and one actor per open job that owns its model and serializes its work.

pub mod config;
mod error;

pub use config::JobConfig;
pub use error::JobError;

use std::sync::Arc;

use bytes::Bytes;

use crate::store::Store;

/// `_flush` parameters after date parsing (all times epoch ms), before validation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlushParams {
    pub calc_interim: bool,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub advance_time: Option<i64>,
    pub skip_time: Option<i64>,
}

/// Registry of jobs and their actors.
pub struct JobManager {
    store: Store,
}

impl JobManager {
    /// Opens the registry on a store; reopens the jobs that were open when the process stopped.
    pub async fn start(store: Store) -> Result<Arc<JobManager>, JobError> {
        Ok(Arc::new(JobManager { store }))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// `PUT _ml/anomaly_detectors/<job_id>`: returns the created job document.
    pub async fn put_job(&self, job_id: &str, body: &[u8]) -> Result<serde_json::Value, JobError> {
        let _ = (job_id, body);
        todo!()
    }

    /// Expands an id expression (id, group, comma list, wildcards, `_all`, empty = all) to sorted ids.
    /// With `allow_no_match = false` an expression part that matches nothing is a 404.
    pub fn expand_ids(
        &self,
        expression: &str,
        allow_no_match: bool,
    ) -> Result<Vec<String>, JobError> {
        let _ = (expression, allow_no_match);
        todo!()
    }

    /// `GET _ml/anomaly_detectors/<expr>`: the job documents.
    pub fn get_jobs(
        &self,
        expression: &str,
        allow_no_match: bool,
    ) -> Result<Vec<serde_json::Value>, JobError> {
        let _ = (expression, allow_no_match);
        todo!()
    }

    /// `GET _ml/anomaly_detectors/<expr>/_stats`: one stats document per job.
    pub async fn job_stats(
        &self,
        expression: &str,
        allow_no_match: bool,
    ) -> Result<Vec<serde_json::Value>, JobError> {
        let _ = (expression, allow_no_match);
        todo!()
    }

    pub async fn delete_job(&self, job_id: &str, force: bool) -> Result<(), JobError> {
        let _ = (job_id, force);
        todo!()
    }

    pub async fn open_job(&self, job_id: &str) -> Result<(), JobError> {
        let _ = job_id;
        todo!()
    }

    pub async fn close_jobs(
        &self,
        expression: &str,
        force: bool,
        allow_no_match: bool,
    ) -> Result<(), JobError> {
        let _ = (expression, force, allow_no_match);
        todo!()
    }

    /// `_data`: returns the job's data counts after the body (ES shape, with `job_id`).
    pub async fn post_data(
        &self,
        job_id: &str,
        body: Bytes,
    ) -> Result<serde_json::Value, JobError> {
        let _ = (job_id, body);
        todo!()
    }

    /// `_flush`: returns `last_finalized_bucket_end` (None before any data).
    pub async fn flush(&self, job_id: &str, params: FlushParams) -> Result<Option<i64>, JobError> {
        let _ = (job_id, params);
        todo!()
    }

    /// 404 unless the job exists (results and snapshot reads check this first).
    pub fn require_job(&self, job_id: &str) -> Result<JobConfig, JobError> {
        let _ = job_id;
        todo!()
    }

    /// Persists every open job (as `_close` would, but they stay `opened` on disk so a restart reopens them).
    pub async fn shutdown(&self) {}
}
