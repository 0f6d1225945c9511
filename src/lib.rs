//! auspex: an anomaly-detection job engine that speaks the Elasticsearch ML anomaly-detection REST API.
//!
//! # Layout
//! Data flows one way, top to bottom; a module only calls the modules below it.
//!
//! | module   | owns |
//! |----------|------|
//! | [`cli`]    | the commands: `serve`, and the offline `run`, `replay`, `inspect` (progress bars, summaries) |
//! | [`config`] | flags, environment variables, the config file, layered into one `Config` |
//! | [`server`] | accept loop, hyper connections, graceful shutdown |
//! | [`api`]    | routing, request parsing, the Elasticsearch error envelope, replies |
//! | [`job`]    | the job registry and lifecycle; one actor (an OS thread) per open job that owns its engine and serializes its work |
//! | [`engine`] | the deterministic run of one job: config, pipeline, snapshots, status, renormalization, result documents, one commit path, and the storage interface it needs |
//! | [`ingest`] | `_data` bodies -> records: formats, time parsing, per-record field counts |
//! | [`model`]  | detector functions, per-series models, probabilities and scores |
//! | [`store`]  | the sled layout, value framing (CRC32), snapshots, crash invariants |
//! | [`replay`] | the engine run outside an actor: over files or a job's stored input (offline and HTTP tasks) |
//! | [`clock`]  | the one reading of the wall clock (the engine takes times from its callers) |
//! | [`security`] | users, roles, API keys, password hashing, Elasticsearch cluster privileges (`api::auth` asks it who a request is and what it may do) |
//! | [`alloc`]  | the process allocator (jemalloc), and returning freed memory to the OS when a job closes |
//! | [`metrics`] | the process's Prometheus metrics registry (counters, gauges, histograms) |
//!
//! # Ownership rules
//! - Only a job's actor writes that job's input, results, snapshots and progress (store invariant I1).
//! - Handlers hold no state: they parse, call `job`, and render.
//! - CPU-heavy work (parsing large bodies, finalizing buckets over many series, snapshots) runs on the
//!   blocking pool, never on a reactor thread.

pub mod alloc;
pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod engine;
pub mod ingest;
pub mod job;
pub mod metrics;
pub mod model;
pub mod replay;
pub mod security;
pub mod server;
pub mod store;
