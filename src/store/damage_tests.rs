//! Damage to sled's own file (`db`), not to a value inside it: a flipped bit at a seeded offset,
//! or the file truncated at a seeded length, as a bad disk or a botched copy would leave it.
//! Whatever sled then does (refuse to open, panic, or open an older or partial database), the
//! store must never serve a job's data silently short: either opening fails with an error (never
//! a panic), or the job's cheap check (`check_job`) and `check_integrity` name a problem, or the
//! job's data is exactly what was written.

use std::collections::BTreeMap;
use std::path::Path;

use super::test_support::commit_with;
use super::{PersistedState, Progress, ResultKind, SnapshotDoc, Store};

const JOBS: [&str; 3] = ["alpha", "beta", "gamma"];
const COMMITS: u64 = 40;

/// Everything the store should hold of one job.
#[derive(Debug, PartialEq)]
struct JobData {
    progress: Option<Progress>,
    input: Vec<(u64, Vec<u8>)>,
    buckets: Vec<Vec<u8>>,
    records: Vec<Vec<u8>>,
    snapshot: Option<Vec<u8>>,
}

/// Three jobs with input, results and a snapshot each, flushed after every commit (so the durable
/// mark's epoch moves with the data, as in a server).
async fn write_pristine(dir: &Path) -> BTreeMap<&'static str, JobData> {
    let store = Store::open(dir).unwrap();
    for job in JOBS {
        let config = format!("{{\"job_id\":\"{job}\"}}");
        store
            .create_job(job, config.as_bytes(), &super::test_support::progress(0))
            .unwrap();
        store.flush().await.unwrap();
    }
    for seq in 1..=COMMITS {
        for job in JOBS {
            let mut commit = commit_with(
                vec![(
                    seq,
                    format!("{job} entry {seq} {}", "x".repeat(300)).into_bytes(),
                )],
                &[
                    (ResultKind::Bucket, seq as i64 * 1000),
                    (ResultKind::Record, seq as i64 * 1000),
                ],
                seq,
            );
            for doc in &mut commit.results {
                doc.json = format!(
                    "{{\"job\":\"{job}\",\"t\":{},\"pad\":\"{}\"}}",
                    doc.timestamp_ms,
                    "y".repeat(200)
                )
                .into_bytes();
            }
            store.commit(job, &commit).unwrap();
            if seq == COMMITS / 2 {
                let doc = SnapshotDoc {
                    snapshot_id: "s1".into(),
                    timestamp_ms: 1,
                    last_seq: seq,
                    json: b"{}".to_vec(),
                };
                let mut progress = super::test_support::progress(seq);
                progress.latest_snapshot_id = Some("s1".into());
                store
                    .put_snapshot(job, &doc, &vec![seq as u8; 70_000], &progress)
                    .unwrap();
            }
            store.flush().await.unwrap();
        }
    }
    for job in JOBS {
        let mut progress = store.get_progress(job).unwrap().unwrap();
        progress.state = PersistedState::Closed;
        store.put_progress(job, &progress).unwrap();
    }
    store.flush().await.unwrap();
    JOBS.iter()
        .map(|job| (*job, read(&store, job).unwrap()))
        .collect()
}

/// What the store serves of a job; `Err` when reading fails (or sled panics: that is not silent).
fn read(store: &Store, job: &str) -> Result<JobData, String> {
    super::contain("reading a job", || {
        Ok(JobData {
            progress: store.get_progress(job)?,
            input: store.scan_input(job, 0)?.collect::<Result<_, _>>()?,
            buckets: store.scan_results(job, ResultKind::Bucket, None, None)?,
            records: store.scan_results(job, ResultKind::Record, None, None)?,
            snapshot: match store.get_snapshot(job, "s1")? {
                Some(_) => Some(store.get_snapshot_state(job, "s1")?),
                None => None,
            },
        })
    })
    .map_err(|e| e.to_string())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// splitmix64: a seeded, well-spread sequence without a dependency.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Applies damage number `seed` to `db`; returns what it did.
fn damage(db: &Path, seed: u64) -> String {
    let mut bytes = std::fs::read(db).unwrap();
    let len = bytes.len() as u64;
    let r = mix(seed);
    if seed % 4 == 3 {
        // Truncation to between 0% and 99% of the file.
        let keep = (r % 100) * len / 100;
        bytes.truncate(keep as usize);
        std::fs::write(db, bytes).unwrap();
        format!("truncated to {keep} of {len} bytes")
    } else {
        let at = (r % len) as usize;
        let bit = (r >> 32) % 8;
        bytes[at] ^= 1 << bit;
        std::fs::write(db, bytes).unwrap();
        format!("bit {bit} flipped at byte {at} of {len}")
    }
}

#[tokio::test]
async fn damage_to_the_sled_file_is_found_or_harmless_never_silent() {
    let pristine = tempfile::tempdir().unwrap();
    let expected = write_pristine(pristine.path()).await;
    let seeds: u64 = std::env::var("AUSPEX_DAMAGE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(48);
    let (mut refused, mut found, mut harmless) = (0, 0, 0);
    for seed in 0..seeds {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), dir.path());
        let what = damage(&dir.path().join("db"), seed);
        let store = match Store::open(dir.path()) {
            Ok(store) => store,
            Err(_) => {
                refused += 1;
                continue;
            }
        };
        let report = store.check_integrity();
        let mut damaged_jobs = 0;
        for job in JOBS {
            let problems = store.check_job(job);
            let served = read(&store, job);
            if served.as_ref().ok() != expected.get(job) {
                damaged_jobs += 1;
                let jobs_listed = store
                    .scan_job_configs()
                    .map(|jobs| jobs.iter().any(|(id, _)| id == job))
                    .unwrap_or(false);
                let orphaned = store
                    .jobs_without_config()
                    .map(|ids| ids.iter().any(|id| id == job))
                    .unwrap_or(false);
                // A job the server lists must fail its check; one it cannot list must be
                // reported as lost or as data without a config.
                assert!(
                    if jobs_listed { !problems.is_empty() } else { orphaned || store.lost().contains_key(job) },
                    "seed {seed} ({what}): job [{job}] is served short without a problem: {served:?}"
                );
                assert!(
                    report.as_ref().map_or(true, |report| !report.is_clean()),
                    "seed {seed} ({what}): check_integrity calls the store clean"
                );
            }
        }
        if damaged_jobs > 0 {
            found += 1;
        } else {
            harmless += 1;
        }
    }
    eprintln!(
        "{seeds} damaged files: {refused} refused, {found} found damaged, {harmless} harmless"
    );
    assert!(
        refused + found > 0,
        "no seed damaged anything: the test is not testing"
    );
}
