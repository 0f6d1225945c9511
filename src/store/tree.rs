//! Tree names: the exact strings of the `Trees` table in the `store/mod.rs` doc (a test there keeps
//! the two in step). Owns nothing else; every other store file names trees through these consts.

/// Store format version (one key).
pub const META: &str = "meta";
/// Job configs; written only by the job manager (I1).
pub const JOBS: &str = "jobs";
/// One `Progress` per job.
pub const PROGRESS: &str = "progress";
/// Stored input entries, per job, by sequence number (I4).
pub const INPUT: &str = "input";
/// Result documents, per job, by kind, time and ordinal.
pub const RESULTS: &str = "results";
/// Model snapshot metadata and state chunks (I3).
pub const SNAPSHOTS: &str = "snapshots";

/// Filters, calendars and scheduled events: not per job; written only by the job manager.
pub const RESOURCES: &str = "resources";

/// Users, custom roles and API keys (`security`); written only through `security::Security`.
pub const SECURITY: &str = "security";

/// Every tree auspex opens, in the order the doc lists them.
pub const ALL: [&str; 8] = [
    META, JOBS, PROGRESS, INPUT, RESULTS, SNAPSHOTS, RESOURCES, SECURITY,
];
