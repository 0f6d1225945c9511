//! Named crash points at commit boundaries, for the spawned-binary crash tests: built with
//! `--features failpoints` and run with `AUSPEX_FAILPOINT=<name>`, the process aborts at that point
//! (no destructors, no flush: what a power cut leaves, minus the page cache). Without the feature
//! `failpoint` is an empty inline function. The names are listed in the `store/mod.rs` doc.

/// Before a `commit` transaction (nothing of it is written).
pub const COMMIT_BEFORE: &str = "commit.before";
/// After a `commit` transaction, before the caller's flush.
pub const COMMIT_AFTER: &str = "commit.after";
/// Before a `put_snapshot` transaction.
pub const SNAPSHOT_BEFORE: &str = "snapshot.before";
/// After a `put_snapshot` transaction, before the caller's flush.
pub const SNAPSHOT_AFTER: &str = "snapshot.after";
/// After `delete_job` removed config + progress, before any of the job's data is purged.
pub const DELETE_AFTER_UNLINK: &str = "delete.after_unlink";
/// During the purge of a job's data: input is gone, results and snapshots are not.
pub const DELETE_MID_PURGE: &str = "delete.mid_purge";

pub const ALL: [&str; 6] = [
    COMMIT_BEFORE,
    COMMIT_AFTER,
    SNAPSHOT_BEFORE,
    SNAPSHOT_AFTER,
    DELETE_AFTER_UNLINK,
    DELETE_MID_PURGE,
];

/// The environment variable naming the failpoint to abort at.
pub const ENV_VAR: &str = "AUSPEX_FAILPOINT";

/// Aborts the process if failpoints are compiled in and `AUSPEX_FAILPOINT` equals `name`.
#[inline(always)]
pub fn failpoint(name: &'static str) {
    #[cfg(feature = "failpoints")]
    if std::env::var_os(ENV_VAR).is_some_and(|armed| armed == name) {
        tracing::error!(failpoint = name, "aborting at failpoint");
        std::process::abort();
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}
