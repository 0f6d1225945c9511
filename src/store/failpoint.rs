//! Named failpoints at the store's write sites, for the spawned-binary crash and write-error tests.
//! Always compiled in; armed at runtime by `AUSPEX_FAILPOINT=<spec>` (read once, at the first write)
//! or by [`arm`] (in-process tests). Unarmed, a failpoint costs one atomic load: nothing next to the
//! disk write it guards. The names are listed in the `store/mod.rs` doc (section 5).
//!
//! `<spec>` is `<name>` or `<name>:abort` (the process aborts there: no destructors, no flush, what
//! a power cut leaves minus the page cache), `<name>:error` (every write through that point fails
//! with an injected I/O error, like a full disk), `<name>:error:<n>` (only the next `n` do), or
//! `<name>:panic` (a panic there, as sled panics when it cannot allocate an I/O buffer mid-write).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, Once};

use super::StoreError;

/// Before a `commit` transaction (nothing of it is written).
pub const COMMIT_BEFORE: &str = "commit.before";
/// Inside the `commit` transaction, its input and results applied, its progress not yet.
pub const COMMIT_MID: &str = "commit.mid";
/// After a `commit` transaction, before the caller's flush.
pub const COMMIT_AFTER: &str = "commit.after";
/// Before a `put_snapshot` transaction (close, shutdown and periodic snapshots).
pub const SNAPSHOT_BEFORE: &str = "snapshot.before";
/// After a `put_snapshot` transaction, before the caller's flush.
pub const SNAPSHOT_AFTER: &str = "snapshot.after";
/// Before `delete_job` unlinks config + progress.
pub const DELETE_BEFORE: &str = "delete.before";
/// After `delete_job` removed config + progress, before any of the job's data is purged.
pub const DELETE_AFTER_UNLINK: &str = "delete.after_unlink";
/// During the purge of a job's data: input is gone, results and snapshots are not.
pub const DELETE_MID_PURGE: &str = "delete.mid_purge";
/// Before `create_job` writes config + progress.
pub const CREATE_JOB_BEFORE: &str = "create_job.before";
/// Before `put_job_config` replaces a config.
pub const JOB_CONFIG_BEFORE: &str = "job_config.before";
/// Before progress is written alone (`put_progress`, the end of `reset_job`).
pub const PROGRESS_BEFORE: &str = "progress.before";
/// Before `delete_snapshot` removes a snapshot's metadata and chunks.
pub const SNAPSHOT_DELETE_BEFORE: &str = "snapshot_delete.before";
/// Before `put_snapshot_json` rewrites a snapshot's document (`_update`).
pub const SNAPSHOT_EDIT_BEFORE: &str = "snapshot_edit.before";
/// Before each batch of a range purge (job delete and reset, results retention, input pruning).
pub const PURGE_BATCH: &str = "purge.batch";
/// Before a filter, calendar or event is written or deleted.
pub const RESOURCE_BEFORE: &str = "resource.before";

/// Every failpoint.
pub const ALL: [&str; 15] = [
    COMMIT_BEFORE,
    COMMIT_MID,
    COMMIT_AFTER,
    SNAPSHOT_BEFORE,
    SNAPSHOT_AFTER,
    DELETE_BEFORE,
    DELETE_AFTER_UNLINK,
    DELETE_MID_PURGE,
    CREATE_JOB_BEFORE,
    JOB_CONFIG_BEFORE,
    PROGRESS_BEFORE,
    SNAPSHOT_DELETE_BEFORE,
    SNAPSHOT_EDIT_BEFORE,
    PURGE_BATCH,
    RESOURCE_BEFORE,
];

/// The points at commit boundaries the crash tests abort at (the rest guard single writes, which
/// sled applies whole or not at all).
pub const CRASH_POINTS: [&str; 7] = [
    COMMIT_BEFORE,
    COMMIT_MID,
    COMMIT_AFTER,
    SNAPSHOT_BEFORE,
    SNAPSHOT_AFTER,
    DELETE_AFTER_UNLINK,
    DELETE_MID_PURGE,
];

/// The environment variable holding the spec.
pub const ENV_VAR: &str = "AUSPEX_FAILPOINT";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Abort,
    Error,
    Panic,
}

#[derive(Debug)]
struct Armed {
    name: String,
    action: Action,
    /// Errors left to inject; `u64::MAX` is every time.
    left: AtomicU64,
}

static FROM_ENV: Once = Once::new();
/// The fast path: false while nothing is armed.
static ACTIVE: AtomicBool = AtomicBool::new(false);
static ARMED: Mutex<Option<Armed>> = Mutex::new(None);

/// Arms the failpoint `spec` describes (replacing any armed one); `Err` names what is wrong.
pub fn arm(spec: &str) -> Result<(), String> {
    let armed = parse(spec)?;
    *ARMED.lock().unwrap_or_else(|p| p.into_inner()) = Some(armed);
    ACTIVE.store(true, Ordering::Release);
    Ok(())
}

fn parse(spec: &str) -> Result<Armed, String> {
    let mut parts = spec.split(':');
    let name = parts.next().unwrap_or_default();
    if !ALL.contains(&name) {
        return Err(format!(
            "unknown failpoint [{name}]; known: {}",
            ALL.join(", ")
        ));
    }
    let (action, left) = match (parts.next(), parts.next(), parts.next()) {
        (None | Some("abort"), None, None) => (Action::Abort, u64::MAX),
        (Some("error"), None, None) => (Action::Error, u64::MAX),
        (Some("panic"), None, None) => (Action::Panic, u64::MAX),
        (Some("error"), Some(times), None) => (
            Action::Error,
            times
                .parse()
                .map_err(|_| format!("failpoint [{spec}]: [{times}] is not a count"))?,
        ),
        _ => {
            return Err(format!(
                "failpoint [{spec}]: expected <name>[:abort|:panic|:error[:<count>]]"
            ))
        }
    };
    Ok(Armed {
        name: name.to_string(),
        action,
        left: AtomicU64::new(left),
    })
}

/// Passes, aborts the process, panics, or fails with an injected I/O error, as the armed spec says.
#[inline]
pub fn failpoint(name: &'static str) -> Result<(), StoreError> {
    FROM_ENV.call_once(|| {
        if let Some(spec) = std::env::var_os(ENV_VAR) {
            if let Err(error) = arm(&spec.to_string_lossy()) {
                tracing::error!(%error, "{ENV_VAR} ignored");
            }
        }
    });
    if !ACTIVE.load(Ordering::Acquire) {
        return Ok(());
    }
    hit(name)
}

#[cold]
fn hit(name: &'static str) -> Result<(), StoreError> {
    let armed = ARMED.lock().unwrap_or_else(|p| p.into_inner());
    let Some(armed) = armed.as_ref().filter(|armed| armed.name == name) else {
        return Ok(());
    };
    match armed.action {
        Action::Abort => {
            tracing::error!(failpoint = name, "aborting at failpoint");
            std::process::abort();
        }
        // The lock is poisoned by this panic; every reader takes it over (`into_inner`).
        Action::Panic => {
            panic!("injected panic at failpoint [{name}]");
        }
        Action::Error => {
            let left = armed.left.load(Ordering::Acquire);
            if left == 0 {
                return Ok(());
            }
            if left != u64::MAX {
                armed.left.store(left - 1, Ordering::Release);
            }
            tracing::warn!(failpoint = name, "injecting a write error at failpoint");
            Err(StoreError::Sled(sled::Error::Io(std::io::Error::other(
                format!("injected write error at failpoint [{name}]"),
            ))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_or_are_refused() {
        assert_eq!(parse("commit.before").unwrap().action, Action::Abort);
        assert_eq!(parse("commit.after:abort").unwrap().action, Action::Abort);
        let every = parse("purge.batch:error").unwrap();
        assert_eq!(
            (every.action, every.left.into_inner()),
            (Action::Error, u64::MAX)
        );
        assert_eq!(
            parse("progress.before:error:2").unwrap().left.into_inner(),
            2
        );
        assert!(parse("nope")
            .unwrap_err()
            .contains("unknown failpoint [nope]"));
        assert!(parse("commit.before:error:x").is_err());
        assert!(parse("commit.before:explode").is_err());
        assert!(parse("commit.before:abort:1").is_err());
        assert_eq!(parse("commit.mid:panic").unwrap().action, Action::Panic);
    }
}
