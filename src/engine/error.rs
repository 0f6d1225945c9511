//! JobError: everything the job layer can refuse or fail with. The api layer maps each variant to an
//! Elasticsearch error type and status (one exhaustive match in `api::error`).

use crate::ingest::IngestError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// 404 `resource_not_found_exception`.
    #[error("No known job with id '{job_id}'")]
    NotFound { job_id: String },
    /// 404 `resource_not_found_exception` for anything but a job (snapshot, filter, calendar); the
    /// message is the full ES reason.
    #[error("{0}")]
    Missing(String),
    /// 400 `resource_already_exists_exception` for anything but a job; the full ES reason.
    #[error("{0}")]
    Exists(String),
    /// 400 `resource_already_exists_exception`.
    #[error("The job cannot be created with the Id '{job_id}'. The Id is already used.")]
    AlreadyExists { job_id: String },
    /// 400 `illegal_argument_exception`; the message is the full ES reason.
    #[error("{0}")]
    InvalidArgument(String),
    /// 400 `x_content_parse_exception`: the body is not the JSON shape expected.
    #[error("{0}")]
    Parse(String),
    /// 400 `parse_exception`: a date parameter that cannot be read.
    #[error("Query param [{param}] with value [{value}] cannot be parsed as a date or converted to a number (epoch).")]
    BadDate { param: String, value: String },
    /// 409 `status_exception`: the job is not open for `_data` / `_flush`.
    #[error("Cannot perform requested action because job [{job_id}] is not open")]
    NotOpen { job_id: String },
    /// 409 `status_exception` with the ES reason for the lifecycle conflict.
    #[error("{0}")]
    Conflict(String),
    /// 429 `es_rejected_execution_exception`: the job's queue is full.
    #[error("rejected execution: the queue of job [{job_id}] is full")]
    Overloaded { job_id: String },
    /// 400: the `_data` body is unusable.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// 500: storage failed; the job keeps its last durable state.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// 500: the job's stored state is damaged beyond what a fallback to an older snapshot can
    /// repair (e.g. input the replay needs fails its CRC); the job cannot be opened.
    #[error("job [{job_id}] cannot be restored: its stored state is damaged: {reason}")]
    Damaged { job_id: String, reason: String },
    /// 500: the job's actor stopped (it panicked or its state could not be rebuilt).
    #[error("the processing task of job [{job_id}] stopped unexpectedly")]
    ActorGone { job_id: String },
    /// 400 `status_exception` (Elasticsearch's `badRequestException`); the full ES reason.
    #[error("{0}")]
    BadRequest(String),
}
