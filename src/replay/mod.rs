//! Replay: runs a job's deterministic [`Pipeline`](crate::engine::pipeline::Pipeline) outside a job
//! actor, over records from files or over the input a job has stored, and sends what it finalizes
//! to the store (as a job's input, results, progress and closing snapshot) or to NDJSON.
//!
//! Used by the offline commands (`auspex run`, `auspex replay`, through `cli`) and by the HTTP
//! replay task (`api::replay`). Talks to `job` (configs, pipeline, status, snapshots, result
//! documents) and `store` (reads of a source job, commits of the target job).
//!
//! Ownership (store I1): a replay writes only a job that no actor runs: a new job it created in a
//! store no server has open (offline), or a job the manager holds reserved (`put_job_reserved`)
//! until the replay ends. It reads a source job's input only up to the `last_seq` its progress had
//! when the replay started, so a source that is still open and growing is read consistently.
//!
//! | file | owns |
//! |------|------|
//! | `engine.rs` | [`Replayer`] (pipeline + sink), [`StoreSink`], [`NdjsonSink`], [`Counters`] |
//! | `files.rs` | NDJSON and CSV files read in chunks as `_data` bodies |
//! | `stored.rs` | preparing a replay of a stored job (copy config, snapshot, input range) |
//! | `tasks.rs` | background replay tasks with pollable progress (for the HTTP API) |

mod engine;
pub mod files;
pub mod stored;
pub mod tasks;

pub use engine::{Counters, CountersSnapshot, NdjsonSink, Replayer, Sink, StoreSink};
