//! The kill harness: the real binary, SIGKILLed at seeded random moments of a seeded workload
//! (`workload::script`: parallel `_data`, flushes, close + reopen with snapshot writes, a job
//! created, fed and force-deleted), restarted on the same data path after every kill.
//!
//! Each kill lands inside one step of the script: the step's requests are sent, and the process is
//! killed after a random delay drawn from 0 to 1.3 times what that step took in an uninterrupted
//! reference run, so kills fall before, during and just after the step's store writes and flushes.
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
use std::time::Instant;

use crate::util::{verify_store, BinaryServer, Client, TestServer};
use crate::workload::{self, all_results, run_script, run_step, server_jobs, Ledger, Op, Rng};

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
         of which {} had been applied, {} records acknowledged, {:.1}s",
        figures.runs,
        figures.kills,
        figures.kills_during,
        figures.unanswered,
        figures.unanswered_applied,
        figures.records_acknowledged,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(figures.kills, kills);
}

async fn one_run(seed: u64, kills: usize, figures: &mut Figures) {
    let script = workload::script(seed, &format!("k{seed}"), JOBS, ROUNDS);

    let reference = TestServer::start().await;
    let mut ledger = Ledger::default();
    let durations = run_script(&reference.client, &script, &mut ledger).await;
    let expected = all_results(&reference.client, &ledger).await;
    reference.stop().await;

    // Distinct steps to kill in, each with a delay into the step.
    let mut rng = Rng::new(seed.wrapping_mul(31) ^ 0x6b696c6c);
    let mut plan = BTreeMap::new();
    assert!(kills <= script.len(), "script too short for {kills} kills");
    while plan.len() < kills {
        let step = rng.below(script.len() as u64) as usize;
        let delay = durations[step].mul_f64(1.3 * rng.unit());
        plan.insert(step, delay);
    }

    let mut server = quiet(tempfile::tempdir().expect("data path"));
    let mut ledger = Ledger::default();
    for (index, step) in script.iter().enumerate() {
        let Some(&delay) = plan.get(&index) else {
            run_step(&server, step).await;
            step.iter().for_each(|op| ledger.apply(op));
            continue;
        };
        let ops: Vec<String> = step
            .iter()
            .map(|op| format!("{} {}", op.kind(), op.job()))
            .collect();
        let context = format!("seed {seed}, step {index} {ops:?}, delay {delay:?}");
        *figures.kills_during.entry(step[0].kind()).or_default() += 1;
        let tasks: Vec<_> = step
            .iter()
            .cloned()
            .map(|op| {
                let client = server.client.clone();
                tokio::spawn(async move { op.run(&client).await })
            })
            .collect();
        let data = tokio::task::spawn_blocking(move || {
            std::thread::sleep(delay);
            server.kill()
        })
        .await
        .expect("kill task");
        let mut unanswered = Vec::new();
        for (op, task) in step.iter().zip(tasks) {
            match task.await.expect("operation task") {
                Ok(()) => ledger.apply(op),
                Err(_) => unanswered.push(op.clone()),
            }
        }
        figures.kills += 1;
        figures.unanswered += unanswered.len();

        let (code, report) = verify_store(data.path());
        assert_eq!(code, Some(0), "{context}: verify after the kill: {report}");
        server = quiet(data);
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
    figures.runs += 1;
}

/// The binary, logging only warnings (a run restarts it hundreds of times).
fn quiet(data: tempfile::TempDir) -> BinaryServer {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_auspex"));
    command.env("AUSPEX_LOG", "warn");
    BinaryServer::spawn(command, data)
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
            Op::Flush { .. } => false,
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
