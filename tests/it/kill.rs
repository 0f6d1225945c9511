//! The kill harness: the real binary, SIGKILLed at seeded random moments of a seeded workload
//! (`workload::script`: parallel `_data`, flushes, close + reopen with snapshot writes, a job
//! created, fed and force-deleted, model snapshot deletes and `_delete_expired_data`), restarted on
//! the same data path after every kill. The binary runs with periodic persistence every
//! [`PERSIST_INTERVAL`] (the hidden `AUSPEX_BACKGROUND_PERSIST_INTERVAL`), so open jobs write
//! periodic snapshots throughout and a restart restores from them.
//!
//! Each kill lands inside one step of the script, chosen three ways:
//! - timed: the step's requests are sent, and the process is killed after a random delay drawn
//!   from 0 to 1.3 times what that step took in an uninterrupted reference run, so kills fall
//!   before, during and just after the step's store writes and flushes;
//! - during a delete (a share of the timed kills is drawn from the delete steps);
//! - during a periodic persist: after a `_data` step is acknowledged, the harness watches the
//!   binary's log for the next `periodic persist started` of one of the step's jobs and kills a
//!   random fraction of a persist's duration later. The log then tells whether the snapshot was
//!   still being written (`persist`) or had just finished (`persist_after`).
//!
//! After each kill:
//! - `auspex verify` checks the whole store offline (exit code 0);
//! - the restarted server has every acknowledged job in its acknowledged state (never `failed`)
//!   with exactly the acknowledged `input_record_count`;
//! - a request that got no answer was applied entirely or not at all: a `_data` shows up as all of
//!   its records or none of them. What was not applied is sent again (a client's retry).
//!
//! At the end the results (buckets, records, data counts) equal those of the reference run, which
//! never stopped. CI runs [`CI_KILLS`] kills; the soak runs more with the same harness:
//! `AUSPEX_SOAK_KILLS=1000 cargo test --release --test it kill:: -- --nocapture`
//! (`AUSPEX_SOAK_SEED` picks the first seed; each run of [`KILLS_PER_RUN`] kills uses the next).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::util::{verify_store, BinaryServer, Client, TestServer};
use crate::workload::{self, all_results, run_script, run_step, server_jobs, Ledger, Op, Rng};

/// Periodic persistence of every open job in the killed binary.
const PERSIST_INTERVAL: &str = "100ms";
/// Shares of the kill points aimed at a periodic persist and at a delete step.
const PERSIST_SHARE: f64 = 0.3;
const DELETE_SHARE: f64 = 0.2;

/// Kill points in a `cargo test` run.
const CI_KILLS: usize = 60;
/// Kills in one script run (a new script, data path and reference run per run).
const KILLS_PER_RUN: usize = 10;
/// Long-lived jobs and data rounds per script.
const JOBS: usize = 3;
const ROUNDS: usize = 16;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What a run saw, summed over runs and printed at the end (README quotes the soak's).
#[derive(Debug, Default)]
struct Figures {
    runs: usize,
    kills: usize,
    /// Kills by the kind of operation in flight.
    kills_during: BTreeMap<&'static str, usize>,
    /// Requests in flight at a kill that got no answer, and how many of those had been applied.
    unanswered: usize,
    unanswered_applied: usize,
    records_acknowledged: u64,
    /// Periodic snapshots the killed binaries finished writing, and the longest one (µs).
    persists_done: usize,
    persist_max_us: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_loses_nothing_acknowledged() {
    let kills = env_number("AUSPEX_SOAK_KILLS", CI_KILLS as u64) as usize;
    let first_seed = env_number("AUSPEX_SOAK_SEED", 1);
    let started = Instant::now();
    let mut figures = Figures::default();
    let mut left = kills;
    let mut seed = first_seed;
    while left > 0 {
        let now = left.min(KILLS_PER_RUN);
        one_run(seed, now, &mut figures).await;
        left -= now;
        seed += 1;
    }
    println!(
        "kill harness: seeds {first_seed}..{seed}, {} runs, {} kills ({:?}), {} unanswered requests \
         of which {} had been applied, {} records acknowledged, {} periodic snapshots written \
         (longest {} µs), {:.1}s",
        figures.runs,
        figures.kills,
        figures.kills_during,
        figures.unanswered,
        figures.unanswered_applied,
        figures.records_acknowledged,
        figures.persists_done,
        figures.persist_max_us,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(figures.kills, kills);
}

/// How a planned kill is timed.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// This long after the step's requests are sent.
    Timed(Duration),
    /// After the step is acknowledged, this fraction of the longest persist seen so far after the
    /// next periodic persist of one of the step's jobs starts.
    DuringPersist(f64),
}

/// Distinct steps to kill in, each with its timing (see the module doc).
fn plan(
    seed: u64,
    script: &workload::Script,
    durations: &[Duration],
    kills: usize,
) -> BTreeMap<usize, Kill> {
    let steps_of = |kinds: &[&str]| -> Vec<usize> {
        (0..script.len())
            .filter(|&i| kinds.contains(&script[i][0].kind()))
            .collect()
    };
    let data_steps = steps_of(&["data"]);
    let delete_steps = steps_of(&["delete", "delete_snapshot", "delete_expired"]);
    let mut rng = Rng::new(seed.wrapping_mul(31) ^ 0x6b696c6c);
    let mut plan = BTreeMap::new();
    assert!(kills <= script.len(), "script too short for {kills} kills");
    while plan.len() < kills {
        let draw = rng.unit();
        let pick = |rng: &mut Rng, steps: &[usize]| steps[rng.below(steps.len() as u64) as usize];
        let (step, kill) = if draw < PERSIST_SHARE && !data_steps.is_empty() {
            (pick(&mut rng, &data_steps), Kill::DuringPersist(rng.unit()))
        } else {
            let step = if draw < PERSIST_SHARE + DELETE_SHARE && !delete_steps.is_empty() {
                pick(&mut rng, &delete_steps)
            } else {
                rng.below(script.len() as u64) as usize
            };
            (step, Kill::Timed(durations[step].mul_f64(1.3 * rng.unit())))
        };
        plan.entry(step).or_insert(kill);
    }
    plan
}

async fn one_run(seed: u64, kills: usize, figures: &mut Figures) {
    let script = workload::script(seed, &format!("k{seed}"), JOBS, ROUNDS);

    let reference = TestServer::start().await;
    let mut ledger = Ledger::default();
    let durations = run_script(&reference.client, &script, &mut ledger).await;
    let expected = all_results(&reference.client, &ledger).await;
    reference.stop().await;
    let plan = plan(seed, &script, &durations, kills);

    let logs = tempfile::tempdir().expect("log directory");
    let log = PersistLog::new(logs.path().join("auspex.log"));
    let mut server = quiet(tempfile::tempdir().expect("data path"), &log.path);
    let mut ledger = Ledger::default();
    for (index, step) in script.iter().enumerate() {
        let Some(&kill) = plan.get(&index) else {
            run_step(&server, step).await;
            step.iter().for_each(|op| ledger.apply(op));
            continue;
        };
        let ops: Vec<String> = step
            .iter()
            .map(|op| format!("{} {}", op.kind(), op.job()))
            .collect();
        let context = format!("seed {seed}, step {index} {ops:?}, {kill:?}");
        let log_start = log.len();
        let mut tasks: Vec<_> = step
            .iter()
            .cloned()
            .map(|op| {
                let client = server.client.clone();
                tokio::spawn(async move { op.run(&client).await })
            })
            .collect();
        let mut answers = Vec::new();
        // The log is watched on a blocking thread: the async timer's millisecond steps would
        // be longer than a periodic snapshot of these jobs takes.
        let persist_wait = match kill {
            Kill::Timed(delay) => (None, delay),
            Kill::DuringPersist(fraction) => {
                for task in tasks.drain(..) {
                    answers.push(task.await.expect("operation task"));
                }
                let jobs: Vec<String> = step.iter().map(|op| op.job().to_string()).collect();
                let delay = Duration::from_micros((fraction * log.typical_us() as f64) as u64);
                (Some((log.path.clone(), jobs)), delay)
            }
        };
        let data = tokio::task::spawn_blocking(move || {
            let (wait, delay) = persist_wait;
            if let Some((path, jobs)) = wait {
                PersistLog { path }.wait_for_start(log_start, &jobs);
            }
            std::thread::sleep(delay);
            server.kill()
        })
        .await
        .expect("kill task");
        for task in tasks {
            answers.push(task.await.expect("operation task"));
        }
        let kind = match kill {
            Kill::DuringPersist(_) if log.interrupted(log_start) => "persist",
            Kill::DuringPersist(_) => "persist_after",
            Kill::Timed(_) => step[0].kind(),
        };
        *figures.kills_during.entry(kind).or_default() += 1;
        let mut unanswered = Vec::new();
        for (op, answer) in step.iter().zip(answers) {
            match answer {
                Ok(()) => ledger.apply(op),
                Err(_) => unanswered.push(op.clone()),
            }
        }
        figures.kills += 1;
        figures.unanswered += unanswered.len();

        let (code, report) = verify_store(data.path());
        assert_eq!(code, Some(0), "{context}: verify after the kill: {report}");
        server = quiet(data, &log.path);
        figures.unanswered_applied +=
            check_and_resume(&server, &mut ledger, &unanswered, &context).await;
    }
    let actual = all_results(&server, &ledger).await;
    for (job, expected) in &expected {
        assert!(
            actual.get(job) == Some(expected),
            "seed {seed}: results of {job} differ from the uninterrupted run\n\
             expected: {expected}\nactual: {:?}",
            actual.get(job)
        );
    }
    assert_eq!(
        actual.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    let jobs = server_jobs(&server).await;
    assert_eq!(
        jobs.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "seed {seed}: the deleted job is gone"
    );
    figures.records_acknowledged += ledger.jobs.values().map(|j| j.records).sum::<u64>();
    figures.persists_done += log.count_done();
    figures.persist_max_us = figures
        .persist_max_us
        .max(log.durations_us().last().copied().unwrap_or(0));
    figures.runs += 1;
}

/// The binary, logging only warnings and the periodic persists (to `log`; a run restarts it tens
/// of times), with every job persisting every [`PERSIST_INTERVAL`].
fn quiet(data: tempfile::TempDir, log: &Path) -> BinaryServer {
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg("exec \"$0\" \"$@\" 2>>\"$AUSPEX_KILL_LOG\"")
        .arg(env!("CARGO_BIN_EXE_auspex"))
        .env("AUSPEX_KILL_LOG", log)
        .env("AUSPEX_LOG", "warn,auspex::persist=debug")
        .env("AUSPEX_BACKGROUND_PERSIST_INTERVAL", PERSIST_INTERVAL);
    BinaryServer::spawn(command, data)
}

/// The killed binaries' stderr: the periodic persist lines (and any warning).
struct PersistLog {
    path: PathBuf,
}

impl PersistLog {
    fn new(path: PathBuf) -> PersistLog {
        std::fs::write(&path, b"").expect("log file");
        PersistLog { path }
    }

    fn len(&self) -> usize {
        std::fs::metadata(&self.path).map_or(0, |m| m.len() as usize)
    }

    /// The lines written after byte `from`.
    fn lines_from(&self, from: usize) -> Vec<String> {
        use std::io::{Read, Seek, SeekFrom};
        let mut bytes = Vec::new();
        if let Ok(mut file) = std::fs::File::open(&self.path) {
            let _ = file.seek(SeekFrom::Start(from as u64));
            let _ = file.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits until a periodic persist of one of `jobs` starts after byte `from` (blocking).
    fn wait_for_start(&self, from: usize, jobs: &[String]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let started = self.lines_from(from).iter().any(|line| {
                line.contains("periodic persist started")
                    && jobs.iter().any(|job| line.contains(&format!("\"{job}\"")))
            });
            if started {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no periodic persist of {jobs:?} started"
            );
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// Whether a periodic persist that started after byte `from` never logged its end.
    fn interrupted(&self, from: usize) -> bool {
        let mut open = BTreeSet::new();
        for line in self.lines_from(from) {
            let Some(job) = line
                .split("job_id=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
            else {
                continue;
            };
            if line.contains("periodic persist started") {
                open.insert(job.to_string());
            } else if line.contains("periodic persist done") {
                open.remove(job);
            }
        }
        !open.is_empty()
    }

    fn count_done(&self) -> usize {
        self.lines_from(0)
            .iter()
            .filter(|line| line.contains("periodic persist done"))
            .count()
    }

    /// The durations of the periodic persists logged so far, in µs, shortest first.
    fn durations_us(&self) -> Vec<u64> {
        let mut durations: Vec<u64> = self
            .lines_from(0)
            .iter()
            .filter_map(|line| line.split("took_us=").nth(1))
            .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
            .collect();
        durations.sort_unstable();
        durations
    }

    /// The median periodic persist so far (1 ms before the first).
    fn typical_us(&self) -> u64 {
        let durations = self.durations_us();
        durations.get(durations.len() / 2).copied().unwrap_or(1000)
    }
}

/// After a restart: every job the kill did not touch is exactly as acknowledged; each unanswered
/// operation was applied entirely or not at all (the ones not applied are sent again). Returns how
/// many unanswered operations had been applied.
async fn check_and_resume(
    client: &Client,
    ledger: &mut Ledger,
    unanswered: &[Op],
    context: &str,
) -> usize {
    let on_server = server_jobs(client).await;
    let touched: BTreeSet<&str> = unanswered.iter().map(Op::job).collect();
    for (job, model) in &ledger.jobs {
        let state = if model.opened { "opened" } else { "closed" };
        match on_server.get(job) {
            Some(found) if touched.contains(job.as_str()) => {
                assert_ne!(found.0, "failed", "{context}: {job} failed after restart");
            }
            Some(found) => assert_eq!(
                found,
                &(state.to_string(), model.records),
                "{context}: {job} after restart"
            ),
            None => assert!(
                touched.contains(job.as_str()),
                "{context}: acknowledged job {job} is missing"
            ),
        }
    }
    for job in on_server.keys() {
        assert!(
            ledger.jobs.contains_key(job) || touched.contains(job.as_str()),
            "{context}: job {job} exists but was never acknowledged"
        );
    }
    for job in on_server.keys() {
        check_buckets_whole(client, job, context).await;
    }
    let mut applied_count = 0;
    for op in unanswered {
        let found = on_server.get(op.job());
        let model = ledger.jobs.get(op.job());
        let applied = match op {
            Op::Put { .. } => found.is_some(),
            Op::Delete { .. } => found.is_none(),
            Op::Open { .. } => found.is_some_and(|(state, _)| state == "opened"),
            Op::Close { .. } => found.is_some_and(|(state, _)| state == "closed"),
            // Re-sending a flush is harmless: advancing to the same time again finalizes nothing.
            // Deletes of expired data and of the oldest snapshot are as harmless to repeat.
            Op::Flush { .. } | Op::DeleteSnapshot { .. } | Op::DeleteExpired { .. } => false,
            Op::Data { records, .. } => {
                let before = model.map_or(0, |m| m.records);
                let now = found.map_or(0, |(_, n)| *n);
                assert!(
                    now == before || now == before + records,
                    "{context}: {} had {before} records acknowledged and {records} in flight, \
                     but holds {now} after restart",
                    op.job()
                );
                now == before + records
            }
        };
        if applied {
            applied_count += 1;
        } else {
            op.run(client)
                .await
                .unwrap_or_else(|e| panic!("{context}: retry of {}: {e}", op.kind()));
        }
        ledger.apply(op);
    }
    applied_count
}

/// Results retention removes whole buckets: every record left has its bucket.
async fn check_buckets_whole(client: &Client, job: &str, context: &str) {
    let timestamps = |kind: &'static str| async move {
        let path = format!("{}/results/{kind}?size=10000", workload::job_path(job));
        let reply = client.get(&path).await;
        assert_eq!(reply.status, 200, "{context}: {path}: {}", reply.text());
        reply.json()[kind]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|doc| doc["timestamp"].as_i64())
            .collect::<BTreeSet<i64>>()
    };
    let buckets = timestamps("buckets").await;
    let records = timestamps("records").await;
    assert!(
        records.is_subset(&buckets),
        "{context}: {job} has records without their bucket: {:?}",
        records.difference(&buckets).collect::<Vec<_>>()
    );
}
