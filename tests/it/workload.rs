//! A seeded, deterministic workload for the crash and concurrency harnesses: a script of steps (each
//! a set of operations on distinct jobs, run concurrently), the expected state after every
//! acknowledged operation ([`Ledger`]), and the final results of a job (buckets, records and data
//! counts, minus wall-clock fields) to compare runs with.

#![allow(dead_code)] // kill.rs and concurrency.rs use different parts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::Client;

/// splitmix64: a tiny seeded generator, so a failing seed reproduces the same script.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

pub fn job_path(job: &str) -> String {
    format!("/_ml/anomaly_detectors/{job}")
}

/// One HTTP operation of the workload.
#[derive(Debug, Clone)]
pub enum Op {
    Put {
        job: String,
        config: Value,
    },
    Open {
        job: String,
    },
    Data {
        job: String,
        body: String,
        records: u64,
    },
    /// `_flush` with this query string (`advance_time=..`, `calc_interim=true`, or empty).
    Flush {
        job: String,
        query: String,
    },
    Close {
        job: String,
    },
    /// `DELETE ?force=true` (the job may be open).
    Delete {
        job: String,
    },
    /// Deletes the job's oldest model snapshot if it has two or more (the newest is the active
    /// one); which snapshots exist depends on timing, never on the results.
    DeleteSnapshot {
        job: String,
    },
    /// `DELETE _ml/_delete_expired_data/<job>` (the configs keep no old snapshot, and one job kind
    /// keeps results of the latest bucket only).
    DeleteExpired {
        job: String,
    },
}

impl Op {
    pub fn job(&self) -> &str {
        match self {
            Op::Put { job, .. }
            | Op::Open { job }
            | Op::Data { job, .. }
            | Op::Flush { job, .. }
            | Op::Close { job }
            | Op::Delete { job }
            | Op::DeleteSnapshot { job }
            | Op::DeleteExpired { job } => job,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Op::Put { .. } => "put",
            Op::Open { .. } => "open",
            Op::Data { .. } => "data",
            Op::Flush { .. } => "flush",
            Op::Close { .. } => "close",
            Op::Delete { .. } => "delete",
            Op::DeleteSnapshot { .. } => "delete_snapshot",
            Op::DeleteExpired { .. } => "delete_expired",
        }
    }

    /// Sends the operation. `Err` when no answer came (the server died); an answer other than
    /// success fails the test, since every operation of a script is valid where it stands.
    pub async fn run(&self, client: &Client) -> Result<(), String> {
        let path = job_path(self.job());
        let (method, url, body, ok) = match self {
            Op::DeleteSnapshot { .. } => match oldest_snapshot(client, &path).await? {
                Some(id) => (
                    reqwest::Method::DELETE,
                    format!("{path}/model_snapshots/{id}"),
                    None,
                    200,
                ),
                None => return Ok(()),
            },
            Op::DeleteExpired { job } => (
                reqwest::Method::DELETE,
                format!("/_ml/_delete_expired_data/{job}"),
                None,
                200,
            ),
            Op::Put { config, .. } => (reqwest::Method::PUT, path, Some(config.to_string()), 200),
            Op::Open { .. } => (reqwest::Method::POST, format!("{path}/_open"), None, 200),
            Op::Data { body, .. } => (
                reqwest::Method::POST,
                format!("{path}/_data"),
                Some(body.clone()),
                202,
            ),
            Op::Flush { query, .. } => (
                reqwest::Method::POST,
                format!("{path}/_flush?{query}"),
                None,
                200,
            ),
            Op::Close { .. } => (reqwest::Method::POST, format!("{path}/_close"), None, 200),
            Op::Delete { .. } => (
                reqwest::Method::DELETE,
                format!("{path}?force=true"),
                None,
                200,
            ),
        };
        let mut builder = client.request(method, &url);
        if let Some(body) = body {
            builder = builder
                .header("content-type", "application/json")
                .body(body);
        }
        let response = builder.send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| e.to_string())?;
        assert_eq!(status, ok, "{} {}: {text}", self.kind(), self.job());
        Ok(())
    }
}

/// The oldest of the job's snapshots other than its active one, if any.
pub async fn oldest_snapshot(client: &Client, path: &str) -> Result<Option<String>, String> {
    let get = |url: String| async move {
        let response = client.request(reqwest::Method::GET, &url).send().await;
        response
            .map_err(|e| e.to_string())?
            .json::<Value>()
            .await
            .map_err(|e| e.to_string())
    };
    let job = get(path.to_string()).await?;
    let active = job["jobs"][0]["model_snapshot_id"].clone();
    let list = get(format!("{path}/model_snapshots")).await?;
    Ok(list["model_snapshots"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|snapshot| snapshot["snapshot_id"] != active)
        .min_by_key(|snapshot| snapshot["timestamp"].as_i64())
        .and_then(|snapshot| snapshot["snapshot_id"].as_str().map(str::to_string)))
}

/// A script: steps run one after another; the operations of a step run concurrently.
pub type Script = Vec<Vec<Op>>;

/// What the acknowledged operations so far say each job must look like.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobModel {
    pub opened: bool,
    /// `input_record_count` after every acknowledged `_data`.
    pub records: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub jobs: BTreeMap<String, JobModel>,
}

impl Ledger {
    pub fn apply(&mut self, op: &Op) {
        let job = op.job().to_string();
        match op {
            Op::Put { .. } => {
                self.jobs.insert(job, JobModel::default());
            }
            Op::Delete { .. } => {
                self.jobs.remove(&job);
            }
            Op::Open { .. } => self.model(&job).opened = true,
            Op::Close { .. } => self.model(&job).opened = false,
            Op::Data { records, .. } => self.model(&job).records += records,
            Op::Flush { .. } | Op::DeleteSnapshot { .. } | Op::DeleteExpired { .. } => {}
        }
    }

    fn model(&mut self, job: &str) -> &mut JobModel {
        self.jobs
            .get_mut(job)
            .unwrap_or_else(|| panic!("script uses job {job} before creating it"))
    }
}

fn job_config(kind: u64) -> Value {
    let (span, detectors, results_retention_days) = match kind % 3 {
        0 => (
            "5m",
            json!([{"function": "mean", "field_name": "value", "by_field_name": "host"}]),
            None,
        ),
        1 => (
            "10m",
            json!([{"function": "count"}, {"function": "max", "field_name": "value"}]),
            None,
        ),
        _ => (
            "15m",
            json!([{"function": "sum", "field_name": "value", "partition_field_name": "host"}]),
            Some(0),
        ),
    };
    json!({
        "analysis_config": {"bucket_span": span, "detectors": detectors, "influencers": ["host"]},
        "data_description": {"time_field": "@timestamp", "time_format": "epoch_ms"},
        "model_snapshot_retention_days": 0,
        "daily_model_snapshot_retention_after_days": 0,
        "results_retention_days": results_retention_days
    })
}

const START_MS: i64 = 1_700_000_000_000;
const MINUTE_MS: i64 = 60_000;

/// A job's data source: the next minute to send and its hosts.
struct Feed {
    job: String,
    minute: i64,
    hosts: u64,
}

impl Feed {
    /// The next `minutes` minutes of records (1-4 per host and minute, now and then an outlier).
    fn batch(&mut self, rng: &mut Rng, minutes: i64) -> Op {
        let mut body = String::new();
        let mut records = 0;
        for minute in self.minute..self.minute + minutes {
            for host in 0..self.hosts {
                for k in 0..1 + rng.below(4) as i64 {
                    let t = START_MS + minute * MINUTE_MS + k * 7_000;
                    let mut value = 20.0 + host as f64 * 3.0 + rng.unit() * 4.0;
                    if rng.chance(0.005) {
                        value *= 8.0;
                    }
                    body.push_str(&format!(
                        "{{\"@timestamp\":{t},\"host\":\"h{host}\",\"value\":{value:.3}}}\n"
                    ));
                    records += 1;
                }
            }
        }
        self.minute += minutes;
        Op::Data {
            job: self.job.clone(),
            body,
            records,
        }
    }

    fn now_ms(&self) -> i64 {
        START_MS + self.minute * MINUTE_MS
    }
}

/// The script of one seed: `jobs` long-lived jobs fed in `rounds` rounds (parallel posts, flushes,
/// close + reopen), a short-lived job created, fed and deleted (twice under the same id), and a
/// final close of everything. Ends with every long-lived job closed and the short-lived one gone.
pub fn script(seed: u64, prefix: &str, jobs: usize, rounds: usize) -> Script {
    let mut rng = Rng::new(seed);
    let mut feeds: Vec<Feed> = (0..jobs)
        .map(|i| Feed {
            job: format!("{prefix}-{i}"),
            minute: 0,
            hosts: 2 + rng.below(6),
        })
        .collect();
    let mut steps: Script = Vec::new();
    for (i, feed) in feeds.iter().enumerate() {
        steps.push(vec![Op::Put {
            job: feed.job.clone(),
            config: job_config(seed.wrapping_add(i as u64)),
        }]);
    }
    steps.push(
        feeds
            .iter()
            .map(|f| Op::Open { job: f.job.clone() })
            .collect(),
    );
    let temp = format!("{prefix}-temp");
    let mut temp_feed = Feed {
        job: temp.clone(),
        minute: 0,
        hosts: 3,
    };
    for round in 0..rounds {
        // Parallel posts to a random subset of the jobs.
        let mut step = Vec::new();
        for feed in feeds.iter_mut() {
            if step.is_empty() || rng.chance(0.5) {
                let minutes = 5 + rng.below(40) as i64;
                step.push(feed.batch(&mut rng, minutes));
            }
        }
        steps.push(step);
        let feed = &feeds[rng.below(feeds.len() as u64) as usize];
        match rng.below(6) {
            0 => steps.push(vec![Op::Flush {
                job: feed.job.clone(),
                query: format!("advance_time={}", feed.now_ms()),
            }]),
            1 => steps.push(vec![Op::Flush {
                job: feed.job.clone(),
                query: "calc_interim=true".to_string(),
            }]),
            2 => {
                steps.push(vec![Op::Close {
                    job: feed.job.clone(),
                }]);
                steps.push(vec![Op::Open {
                    job: feed.job.clone(),
                }]);
            }
            _ => {}
        }
        // The short-lived job: created at 1/4 and 1/2 of the rounds, deleted (open) shortly after.
        if round == rounds / 4 || round == rounds / 2 {
            steps.push(vec![Op::Put {
                job: temp.clone(),
                config: job_config(seed),
            }]);
            steps.push(vec![Op::Open { job: temp.clone() }]);
            temp_feed.minute = 0;
            steps.push(vec![temp_feed.batch(&mut rng, 60)]);
        }
        if round == rounds / 4 + 2 || round == rounds / 2 + 2 {
            steps.push(vec![Op::Delete { job: temp.clone() }]);
        }
        if round % 4 == 3 {
            let feed = &feeds[rng.below(feeds.len() as u64) as usize];
            steps.push(vec![Op::DeleteSnapshot {
                job: feed.job.clone(),
            }]);
        }
        if round == rounds / 2 + 1 || round == rounds * 3 / 4 {
            steps.push(
                feeds
                    .iter()
                    .map(|f| Op::DeleteExpired { job: f.job.clone() })
                    .collect(),
            );
        }
    }
    steps.push(
        feeds
            .iter()
            .map(|f| Op::Close { job: f.job.clone() })
            .collect(),
    );
    steps
}

/// One job's whole life, for running many jobs side by side: create, open, `batches` posts with a
/// flush (advancing time, or interim results) after each, close.
pub fn job_ops(seed: u64, job: &str, batches: usize) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    let mut feed = Feed {
        job: job.to_string(),
        minute: 0,
        hosts: 1 + rng.below(4),
    };
    let mut ops = vec![
        Op::Put {
            job: job.to_string(),
            config: job_config(seed),
        },
        Op::Open {
            job: job.to_string(),
        },
    ];
    for _ in 0..batches {
        let minutes = 10 + rng.below(30) as i64;
        ops.push(feed.batch(&mut rng, minutes));
        let query = if rng.chance(0.5) {
            format!("advance_time={}", feed.now_ms())
        } else {
            "calc_interim=true".to_string()
        };
        ops.push(Op::Flush {
            job: job.to_string(),
            query,
        });
    }
    ops.push(Op::Close {
        job: job.to_string(),
    });
    ops
}

/// Runs every step in order; returns how long each took.
pub async fn run_script(client: &Client, script: &Script, ledger: &mut Ledger) -> Vec<Duration> {
    let mut durations = Vec::with_capacity(script.len());
    for step in script {
        let started = Instant::now();
        run_step(client, step).await;
        durations.push(started.elapsed());
        for op in step {
            ledger.apply(op);
        }
    }
    durations
}

/// Runs a step's operations concurrently; every one must succeed.
pub async fn run_step(client: &Client, step: &[Op]) {
    let tasks: Vec<_> = step
        .iter()
        .cloned()
        .map(|op| {
            let client = client.clone();
            tokio::spawn(async move { op.run(&client).await })
        })
        .collect();
    for task in tasks {
        task.await
            .expect("operation task")
            .expect("the server answers");
    }
}

/// Everything a finished job produced that must not depend on crashes, restarts or timing: its
/// buckets and records (without `processing_time_ms`) and its data counts (without wall-clock times).
pub async fn final_results(client: &Client, job: &str) -> Value {
    let path = job_path(job);
    let mut buckets = client
        .get(&format!("{path}/results/buckets?size=10000"))
        .await
        .json();
    assert!(
        buckets["count"].as_u64().unwrap_or(0) < 10_000,
        "page too small"
    );
    for bucket in buckets["buckets"].as_array_mut().into_iter().flatten() {
        bucket
            .as_object_mut()
            .expect("bucket object")
            .remove("processing_time_ms");
    }
    let records = client
        .get(&format!("{path}/results/records?size=10000"))
        .await
        .json();
    let mut counts =
        client.get(&format!("{path}/_stats")).await.json()["jobs"][0]["data_counts"].clone();
    let counts_map = counts.as_object_mut().expect("data_counts object");
    counts_map.remove("last_data_time");
    counts_map.remove("log_time");
    json!({"buckets": buckets, "records": records, "data_counts": counts})
}

/// The final results of every job in `ledger`.
pub async fn all_results(client: &Client, ledger: &Ledger) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for job in ledger.jobs.keys() {
        out.insert(job.clone(), final_results(client, job).await);
    }
    out
}

/// `(state, input_record_count)` of every job the server knows.
pub async fn server_jobs(client: &Client) -> BTreeMap<String, (String, u64)> {
    let stats = client.get("/_ml/anomaly_detectors/_stats").await;
    assert_eq!(stats.status, 200, "{}", stats.text());
    stats.json()["jobs"]
        .as_array()
        .expect("jobs array")
        .iter()
        .map(|job| {
            (
                job["job_id"].as_str().expect("job_id").to_string(),
                (
                    job["state"].as_str().expect("state").to_string(),
                    job["data_counts"]["input_record_count"]
                        .as_u64()
                        .expect("input_record_count"),
                ),
            )
        })
        .collect()
}
