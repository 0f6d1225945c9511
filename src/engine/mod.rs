//! Engine: the deterministic run of one job. No threads, no queues, no HTTP and no clock: every
//! time it needs (arrival of input, `log_time`s, snapshot timestamps) is handed in by its caller.
//!
//! The job actor (`job`), offline replay and `auspex run` (`replay`), and the benches drive it
//! through the same calls. It talks down only: to `model` (detectors, scores), `ingest` (records,
//! counts) and `store` (what a step produced, written in one commit).
//!
//! | file | owns |
//! |------|------|
//! | `config.rs`, `config/` | [`JobConfig`]: the validated job document, built from a PUT body |
//! | `error.rs` | [`JobError`]: everything running or configuring a job can refuse or fail with |
//! | `pipeline.rs` | [`Pipeline`]: input entries -> finalized buckets, the time rules |
//! | `snapshot.rs` | snapshot encode (metadata document) and restore (snapshot + input replay, I4) |
//! | `status.rs` | [`JobStatus`]: `data_counts`, timing and model size, persisted with each commit |
//! | `renormalize.rs` | which stored results a commit rescores, and how |
//! | `result.rs` | a bucket's result documents |
//! | `storage.rs` | [`JobStore`](storage::JobStore): the storage interface the engine needs, and its sled implementation |
//! | `writer.rs` | [`Writer`](writer::Writer): the one commit path (store I2) |

pub mod config;
mod error;
pub mod pipeline;
pub mod renormalize;
pub mod result;
pub mod snapshot;
mod status;
pub mod storage;
pub mod writer;

pub use config::JobConfig;
pub use error::JobError;
pub use pipeline::{InputEntry, Pipeline, PipelineState};
pub use result::result_docs;
pub use status::JobStatus;
