//! Crash tests at every commit-boundary failpoint: the test binary runs
//! itself as a child that aborts at the named failpoint (a real process crash: no destructors, no
//! flush), then the parent reopens the store and checks that recovery leaves it consistent
//! (`check_integrity` clean) with every flushed write intact and the interrupted one all-or-nothing.
//! The job layer's restart tests cover the same points through the HTTP API.

use std::path::Path;
use std::process::{Command, Stdio};

use super::test_support::{commit_with, progress};
use super::{failpoints, ResultKind, SnapshotDoc, Store};

/// Where the child writes; unset when the child test runs on its own (it then does nothing).
const DIR_VAR: &str = "AUSPEX_CRASH_TEST_DIR";
/// The failpoint to arm, passed under another name: arming it from the start would fire it in the
/// setup writes, before the operation under test.
const POINT_VAR: &str = "AUSPEX_CRASH_TEST_POINT";

fn snapshot(id: &str, last_seq: u64) -> SnapshotDoc {
    SnapshotDoc {
        snapshot_id: id.into(),
        timestamp_ms: 0,
        last_seq,
        json: b"{}".to_vec(),
    }
}

fn with_snapshot(last_seq: u64, id: &str) -> super::Progress {
    let mut p = progress(last_seq);
    p.latest_snapshot_id = Some(id.into());
    p
}

/// The child: acknowledged (flushed) writes, then the operation that hits the failpoint.
#[test]
#[ignore = "run by crash_at_every_failpoint_recovers_consistently as a child process"]
fn crash_child() {
    let (Some(dir), Some(point)) = (std::env::var_os(DIR_VAR), std::env::var_os(POINT_VAR)) else {
        return;
    };
    let store = Store::open(Path::new(&dir)).unwrap();
    store.create_job("a", b"{}", &progress(0)).unwrap();
    store.create_job("b", b"{}", &progress(0)).unwrap();
    store
        .commit(
            "a",
            &commit_with(vec![(1, vec![1; 3000])], &[(ResultKind::Bucket, 1)], 1),
        )
        .unwrap();
    store
        .put_snapshot(
            "a",
            &snapshot("s1", 1),
            &vec![5; 3 << 20],
            &with_snapshot(1, "s1"),
        )
        .unwrap();
    store
        .commit(
            "b",
            &commit_with(vec![(1, vec![2; 3000])], &[(ResultKind::Record, 1)], 1),
        )
        .unwrap();
    store.db.flush().unwrap();

    let point = point.to_string_lossy();
    failpoints::arm(&point).unwrap();
    if point.starts_with("commit.") {
        let mut commit = commit_with(
            vec![(2, vec![3; 3000])],
            &[(ResultKind::Bucket, 1), (ResultKind::Bucket, 2)],
            2,
        );
        commit.clear_results = Some((1, 2));
        commit.results[0].json = b"\"replaced\"".to_vec();
        store.commit("a", &commit).unwrap();
    } else if point.starts_with("snapshot.") {
        store
            .put_snapshot(
                "a",
                &snapshot("s2", 1),
                &vec![6; 3 << 20],
                &with_snapshot(1, "s2"),
            )
            .unwrap();
    } else if point.starts_with("delete.") {
        store.delete_job("b").unwrap();
    }
    store.db.flush().unwrap();
    // Reaching this line means the failpoint did not fire.
    std::process::exit(3);
}

#[test]
fn crash_at_every_failpoint_recovers_consistently() {
    let exe = std::env::current_exe().unwrap();
    for point in failpoints::CRASH_POINTS {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new(&exe)
            .args([
                "--exact",
                "store::crash_tests::crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_VAR, dir.path())
            .env(POINT_VAR, point)
            .env_remove(failpoints::ENV_VAR)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(
            !status.success() && status.code() != Some(3),
            "{point}: child did not crash ({status})"
        );

        let store = Store::open(dir.path()).unwrap();
        let report = store.check_integrity().unwrap();
        assert!(report.is_clean(), "{point}: {:?}", report.problems);
        // Everything flushed before the crash is intact.
        assert_eq!(
            store.scan_input("a", 0).unwrap().next().unwrap().unwrap(),
            (1, vec![1; 3000])
        );
        assert_eq!(
            store.get_snapshot_state("a", "s1").unwrap(),
            vec![5; 3 << 20]
        );

        let progress_a = store.get_progress("a").unwrap().unwrap();
        let buckets = store
            .scan_results("a", ResultKind::Bucket, None, None)
            .unwrap();
        match point {
            failpoints::COMMIT_BEFORE | failpoints::COMMIT_AFTER => {
                // All of the interrupted commit or none of it (after the transaction but before a
                // flush, either is possible).
                if progress_a.last_seq == 2 {
                    assert_eq!(store.last_input_seq("a").unwrap(), 2, "{point}");
                    assert_eq!(
                        buckets,
                        [b"\"replaced\"".to_vec(), b"\"Bucket@2#0\"".to_vec()],
                        "{point}"
                    );
                } else {
                    assert_eq!(progress_a.last_seq, 1, "{point}");
                    assert_eq!(store.last_input_seq("a").unwrap(), 1, "{point}");
                    assert_eq!(buckets, [b"\"Bucket@1#0\"".to_vec()], "{point}");
                }
                if point == failpoints::COMMIT_BEFORE {
                    assert_eq!(progress_a.last_seq, 1);
                }
            }
            failpoints::SNAPSHOT_BEFORE | failpoints::SNAPSHOT_AFTER => {
                let latest = progress_a.latest_snapshot_id.clone().unwrap();
                if latest == "s2" {
                    assert_eq!(
                        store.get_snapshot_state("a", "s2").unwrap(),
                        vec![6; 3 << 20],
                        "{point}"
                    );
                } else {
                    assert_eq!(latest, "s1", "{point}");
                    assert_eq!(store.get_snapshot("a", "s2").unwrap(), None, "{point}");
                }
                if point == failpoints::SNAPSHOT_BEFORE {
                    assert_eq!(latest, "s1");
                }
            }
            _ => {
                // The unlink was one transaction: the job is gone entirely (its leftovers purged by
                // open), or, if the unlink was not yet durable, still whole.
                match store.get_job_config("b").unwrap() {
                    None => {
                        assert_eq!(store.get_progress("b").unwrap(), None, "{point}");
                        assert_eq!(store.last_input_seq("b").unwrap(), 0, "{point}");
                        assert!(
                            store
                                .scan_results("b", ResultKind::Record, None, None)
                                .unwrap()
                                .is_empty(),
                            "{point}"
                        );
                    }
                    Some(_) => {
                        assert_eq!(store.last_input_seq("b").unwrap(), 1, "{point}");
                        assert_eq!(
                            store
                                .scan_results("b", ResultKind::Record, None, None)
                                .unwrap()
                                .len(),
                            1,
                            "{point}"
                        );
                    }
                }
                assert_eq!(progress_a.last_seq, 1);
            }
        }
    }
}
