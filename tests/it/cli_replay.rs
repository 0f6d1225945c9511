//! Offline commands (`run`, `replay`, `inspect`) on a real data path, the config file's
//! precedence, and the HTTP replay task. The reference is always the online path: what a job
//! posted over HTTP produces.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::{BinaryServer, Client, TestServer, TIMEOUT};

pub const SAMPLE_JOB: &str = include_str!("../../data/samples/web-latency-job.json");
pub const SAMPLE_DATA: &str = include_str!("../../data/samples/web-latency.ndjson");

fn sample_path(name: &str) -> String {
    format!("{}/data/samples/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The first `lines` lines of the sample (all when `None`).
pub fn sample_lines(lines: Option<usize>) -> String {
    let all: Vec<&str> = SAMPLE_DATA.lines().collect();
    let n = lines.unwrap_or(all.len()).min(all.len());
    all[..n].iter().map(|l| format!("{l}\n")).collect()
}

/// PUT + open + `_data` + close over HTTP: the reference path.
pub async fn load_over_http(client: &Client, job_id: &str, ndjson: String) {
    let job: Value = serde_json::from_str(SAMPLE_JOB).expect("sample job is JSON");
    let path = format!("/_ml/anomaly_detectors/{job_id}");
    assert_eq!(client.put_json(&path, &job).await.status, 200);
    assert_eq!(client.post(&format!("{path}/_open")).await.status, 200);
    let posted = client
        .post_raw(&format!("{path}/_data"), "application/x-ndjson", ndjson)
        .await;
    assert_eq!(posted.status, 202, "{}", posted.text());
    assert_eq!(client.post(&format!("{path}/_close")).await.status, 200);
}

/// Every result of one kind in time order, without `job_id` (so two jobs compare) and without
/// `processing_time_ms` (wall-clock).
pub async fn results(client: &Client, job_id: &str, kind: &str) -> Vec<Value> {
    let reply = client
        .get(&format!(
            "/_ml/anomaly_detectors/{job_id}/results/{kind}?size=10000&sort=timestamp&desc=false"
        ))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let mut docs = reply.json()[kind].as_array().cloned().unwrap_or_default();
    for doc in &mut docs {
        let map = doc.as_object_mut().expect("result document");
        map.remove("job_id");
        map.remove("processing_time_ms");
        if let Some(Value::Array(influencers)) = map.get_mut("bucket_influencers") {
            for bi in influencers {
                bi.as_object_mut().map(|m| m.remove("job_id"));
            }
        }
    }
    docs
}

/// Runs the binary to completion with `AUSPEX_*` cleared, then `envs` set.
fn auspex(args: &[&str], envs: &[(&str, &str)], cwd: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_auspex"));
    command.args(args).current_dir(cwd).stdin(Stdio::null());
    for (name, _) in std::env::vars() {
        if name.starts_with("AUSPEX_") {
            command.env_remove(name);
        }
    }
    for (name, value) in envs {
        command.env(name, value);
    }
    command.output().expect("the binary runs")
}

fn ok(output: Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "exit {:?}\nstderr: {stderr}",
        output.status
    );
    (stdout, stderr)
}

/// `7611` -> `7,611` (as the summaries print counts; the sample has fewer than a million).
fn thousands(n: usize) -> String {
    if n < 1000 {
        n.to_string()
    } else {
        format!("{},{:03}", n / 1000, n % 1000)
    }
}

fn ndjson_docs(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).expect("an NDJSON result line"))
        .collect()
}

#[tokio::test]
async fn run_offline_then_serve_equals_posting_over_http() {
    let data = tempfile::tempdir().expect("temp dir");
    let data_arg = data.path().to_str().expect("utf-8").to_string();
    let here = data.path();
    let (_, stderr) = ok(auspex(
        &[
            "run",
            "web",
            "--job",
            &sample_path("web-latency-job.json"),
            "--data",
            &data_arg,
            &sample_path("web-latency.ndjson"),
        ],
        &[],
        here,
    ));
    let records = SAMPLE_DATA.lines().count();
    let summary = format!("run: {} records", thousands(records));
    assert!(stderr.contains(&summary), "{stderr}");
    assert!(
        stderr.contains("-> job [web] (closed, model snapshot"),
        "{stderr}"
    );

    let (report, _) = ok(auspex(
        &["inspect", "--json", "--data", &data_arg],
        &[],
        here,
    ));
    let report: Value = serde_json::from_str(&report).expect("inspect --json is JSON");
    let job = &report["jobs"][0];
    assert_eq!(job["job_id"], "web");
    assert_eq!(job["state"], "closed");
    assert_eq!(job["processed_record_count"], records as u64);
    assert_eq!(job["snapshot_count"], 1);
    assert!(
        job["results"]["records"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );

    // The server sees the job and its results; they equal the online path's exactly.
    let server = BinaryServer::start_on(data, &[]);
    let offline_records = results(&server, "web", "records").await;
    let offline_buckets = results(&server, "web", "buckets").await;
    let stats = server.get("/_ml/anomaly_detectors/web/_stats").await.json();
    assert_eq!(
        stats["jobs"][0]["data_counts"]["processed_record_count"],
        records as u64
    );
    let online = TestServer::start().await;
    load_over_http(&online, "web", sample_lines(None)).await;
    assert_eq!(offline_buckets, results(&online, "web", "buckets").await);
    assert_eq!(offline_records, results(&online, "web", "records").await);
    assert!(offline_records
        .iter()
        .any(|r| r["record_score"].as_f64() > Some(75.0)));
    // And the job carries on: it opens from the snapshot `run` wrote.
    assert_eq!(
        server.post("/_ml/anomaly_detectors/web/_open").await.status,
        200
    );
    online.stop().await;
}

#[tokio::test]
async fn replay_from_the_start_or_a_snapshot_into_copies_and_stdout() {
    let data = tempfile::tempdir().expect("temp dir");
    let data_arg = data.path().to_str().expect("utf-8").to_string();
    let here = data.path();
    let lines: Vec<&str> = SAMPLE_DATA.lines().collect();
    // Split at a day's start (any point would do: close finalizes nothing).
    let half = lines
        .iter()
        .position(|l| l.contains("\"timestamp\":\"2026-03-04T"))
        .expect("the sample spans 2026-03-04");
    let part1 = here.join("part1.ndjson");
    let part2 = here.join("part2.csv");
    std::fs::write(&part1, lines[..half].join("\n") + "\n").expect("write");
    // The second half as CSV: the same records in the other input format.
    let mut csv = String::from("timestamp,service,host,status,latency_ms\n");
    for line in &lines[half..] {
        let r: Value = serde_json::from_str(line).expect("sample line");
        csv.push_str(&format!(
            "{},{},{},{},{}\n",
            r["timestamp"].as_str().unwrap_or_default(),
            r["service"].as_str().unwrap_or_default(),
            r["host"].as_str().unwrap_or_default(),
            r["status"],
            r["latency_ms"]
        ));
    }
    std::fs::write(&part2, csv).expect("write");
    let job_file = sample_path("web-latency-job.json");
    let p1 = part1.to_str().expect("utf-8");
    let p2 = part2.to_str().expect("utf-8");
    ok(auspex(
        &["run", "j", "--job", &job_file, "--data", &data_arg, p1],
        &[],
        here,
    ));
    // Appending to the existing job: it resumes from its snapshot; the summary counts this run's.
    let (_, stderr) = ok(auspex(&["run", "j", "--data", &data_arg, p2], &[], here));
    let summary = format!("run: {} records", thousands(lines.len() - half));
    assert!(stderr.contains(&summary), "{stderr}");

    let (report, _) = ok(auspex(
        &["inspect", "j", "--json", "--data", &data_arg],
        &[],
        here,
    ));
    let report: Value = serde_json::from_str(&report).expect("JSON");
    let snapshots = report["jobs"][0]["snapshots"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(snapshots.len(), 2, "{report}");
    assert_eq!(
        report["jobs"][0]["processed_record_count"],
        lines.len() as u64
    );
    let first_snapshot = snapshots[0]["snapshot_id"]
        .as_str()
        .expect("id")
        .to_string();

    // From the start to stdout, and from the first snapshot: the latter is a suffix of the former.
    let (all, stderr) = ok(auspex(
        &["replay", "j", "--stdout", "--data", &data_arg],
        &[],
        here,
    ));
    assert!(stderr.contains("replay: "), "{stderr}");
    let (tail, _) = ok(auspex(
        &[
            "replay",
            "j",
            "--stdout",
            "--snapshot",
            &first_snapshot,
            "--data",
            &data_arg,
        ],
        &[],
        here,
    ));
    let (all, tail) = (ndjson_docs(&all), ndjson_docs(&tail));
    assert!(
        !tail.is_empty() && tail.len() < all.len(),
        "{} of {}",
        tail.len(),
        all.len()
    );
    assert_eq!(all[all.len() - tail.len()..], tail[..]);

    // Into a copy with the same config (equal results) and one with a changed config.
    ok(auspex(
        &["replay", "j", "--into", "same", "--data", &data_arg],
        &[],
        here,
    ));
    let changes = here.join("changes.json");
    let mut analysis: Value = serde_json::from_str(SAMPLE_JOB).expect("JSON");
    analysis["analysis_config"]["bucket_span"] = json!("1h");
    std::fs::write(
        &changes,
        json!({"analysis_config": analysis["analysis_config"]}).to_string(),
    )
    .expect("write");
    ok(auspex(
        &[
            "replay",
            "j",
            "--into",
            "hourly",
            "--changes",
            changes.to_str().expect("utf-8"),
            "--data",
            &data_arg,
        ],
        &[],
        here,
    ));
    // A changed config cannot start from a snapshot; the copy is not created.
    let refused = auspex(
        &[
            "replay",
            "j",
            "--into",
            "bad",
            "--snapshot",
            "latest",
            "--changes",
            changes.to_str().expect("utf-8"),
            "--data",
            &data_arg,
        ],
        &[],
        here,
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cannot change analysis_config"));

    let server = BinaryServer::start_on(data, &[]);
    assert_eq!(
        results(&server, "same", "records").await,
        results(&server, "j", "records").await
    );
    let hourly = results(&server, "hourly", "buckets").await;
    // Four 15-minute buckets an hour; each job's last bucket is still open.
    let quarters = results(&server, "j", "buckets").await.len();
    assert!(
        quarters.abs_diff(hourly.len() * 4) < 4,
        "{} hours, {quarters} quarters",
        hourly.len()
    );
    assert!(hourly.iter().all(|b| b["bucket_span"] == 3600));
    assert_eq!(server.get("/_ml/anomaly_detectors/bad").await.status, 404);
}

#[tokio::test]
async fn offline_commands_refuse_a_store_a_server_is_using() {
    let server = BinaryServer::start(&[]);
    let stats = server.get("/").await;
    assert_eq!(stats.status, 200);
    let data = server.data_path();
    let output = auspex(
        &["inspect", "--data", data.to_str().expect("utf-8")],
        &[],
        &data,
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("is a server running on this data path?")
    );
}

#[test]
fn flags_beat_env_which_beats_the_config_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let here = dir.path();
    for name in ["file", "env", "flag"] {
        std::fs::create_dir_all(here.join(name).join("store")).expect("mkdir");
    }
    let config = here.join("auspex.toml");
    std::fs::write(&config, "data = \"file\"\nlog_format = \"json\"\n").expect("write");
    let store_of = |output: Output| -> String {
        let (stdout, _) = ok(output);
        let report: Value = serde_json::from_str(&stdout).expect("JSON");
        report["store"].as_str().unwrap_or_default().to_string()
    };
    // ./auspex.toml is read by default.
    assert_eq!(
        store_of(auspex(&["inspect", "--json"], &[], here)),
        "file/store"
    );
    assert_eq!(
        store_of(auspex(
            &["inspect", "--json"],
            &[("AUSPEX_DATA", "env")],
            here
        )),
        "env/store"
    );
    assert_eq!(
        store_of(auspex(
            &["inspect", "--json", "--data", "flag"],
            &[("AUSPEX_DATA", "env")],
            here
        )),
        "flag/store"
    );
    // A bad file is an error naming it.
    std::fs::write(&config, "lisen = 1\n").expect("write");
    let output = auspex(&["inspect"], &[], here);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid config file auspex.toml"));
}

#[tokio::test]
async fn http_replay_runs_as_a_task_whose_progress_can_be_polled() {
    let server = TestServer::start().await;
    load_over_http(&server, "src", sample_lines(Some(3000))).await;
    let refused = server
        .post_json("/_auspex/anomaly_detectors/nope/_replay", &json!({}))
        .await;
    assert_eq!(refused.status, 404);
    let refused = server
        .post_json(
            "/_auspex/anomaly_detectors/src/_replay",
            &json!({"snapshot_id": "123"}),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(refused.text().contains("No model snapshot with id [123]"));
    // The refused request left no job behind.
    assert_eq!(
        server.get("/_ml/anomaly_detectors/src-replay").await.status,
        404
    );

    let started = server
        .post_json(
            "/_auspex/anomaly_detectors/src/_replay",
            &json!({"new_job_id": "copy"}),
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.text());
    let task_id = started.json()["task_id"]
        .as_str()
        .expect("task id")
        .to_string();
    let deadline = Instant::now() + TIMEOUT;
    let task = loop {
        let task = server
            .get(&format!("/_auspex/tasks/{task_id}"))
            .await
            .json();
        if task["state"] != "running" {
            break task;
        }
        assert!(Instant::now() < deadline, "replay still running: {task}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(task["state"], "completed", "{task}");
    assert_eq!(task["progress"]["processed_record_count"], 3000);
    assert_eq!(task["progress"]["percent"], 100.0);
    assert_eq!(
        results(&server, "copy", "records").await,
        results(&server, "src", "records").await
    );
    let stats = server
        .get("/_ml/anomaly_detectors/copy/_stats")
        .await
        .json();
    assert_eq!(stats["jobs"][0]["state"], "closed");
    let listed = server.get("/_auspex/tasks").await.json();
    assert!(listed["tasks"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["task_id"] == task_id.as_str())));
    assert_eq!(server.get("/_auspex/tasks/replay-0").await.status, 404);

    // From the snapshot the close wrote: nothing after it to replay, but the copy starts from that
    // model state and carries on like the source would.
    let snapshot = server
        .state
        .jobs
        .store()
        .get_progress("src")
        .expect("progress")
        .and_then(|p| p.latest_snapshot_id)
        .expect("the close wrote a snapshot");
    let body = json!({"new_job_id": "from-snap", "snapshot_id": snapshot});
    let started = server
        .post_json("/_auspex/anomaly_detectors/src/_replay", &body)
        .await;
    assert_eq!(started.status, 200, "{}", started.text());
    assert_eq!(started.json()["input_entries"], 0);
    let task_id = started.json()["task_id"].as_str().expect("id").to_string();
    let deadline = Instant::now() + TIMEOUT;
    while server
        .get(&format!("/_auspex/tasks/{task_id}"))
        .await
        .json()["state"]
        == "running"
    {
        assert!(Instant::now() < deadline, "replay still running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let more = sample_lines(Some(3400))
        .lines()
        .skip(3000)
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    for job in ["src", "from-snap"] {
        let path = format!("/_ml/anomaly_detectors/{job}");
        assert_eq!(
            server.post(&format!("{path}/_open")).await.status,
            200,
            "{job}"
        );
        let posted = server
            .post_raw(
                &format!("{path}/_data"),
                "application/x-ndjson",
                more.clone(),
            )
            .await;
        assert_eq!(posted.status, 202, "{}", posted.text());
        assert_eq!(server.post(&format!("{path}/_close")).await.status, 200);
    }
    let after = |docs: Vec<Value>| -> Vec<Value> {
        docs.into_iter()
            .filter(|d| d["timestamp"].as_i64() >= Some(first_new_bucket(&more)))
            .collect()
    };
    let source_tail = after(results(&server, "src", "buckets").await);
    assert!(!source_tail.is_empty());
    assert_eq!(
        after(results(&server, "from-snap", "buckets").await),
        source_tail
    );
    server.stop().await;
}

/// Start (epoch ms) of the 15-minute bucket after the one holding the first record of `ndjson`:
/// buckets from there on hold only records both jobs received after the snapshot.
fn first_new_bucket(ndjson: &str) -> i64 {
    let first: Value = serde_json::from_str(ndjson.lines().next().expect("a line")).expect("JSON");
    let text = first["timestamp"].as_str().expect("timestamp");
    let seconds = chrono::DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339")
        .timestamp();
    (seconds / 900 + 1) * 900_000
}

/// The 15-minute bucket (epoch seconds / 900) of a sample line.
fn bucket_of(line: &str) -> i64 {
    let record: Value = serde_json::from_str(line).expect("JSON");
    let text = record["timestamp"].as_str().expect("timestamp");
    chrono::DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339")
        .timestamp()
        / 900
}

/// Close persists the open bucket, so a job's input can be cut anywhere, inside a bucket too:
/// `auspex run` over the first part and then over the rest, the same records posted over HTTP
/// with a close and reopen at the cut, and a replay of the cut job from the start, all give
/// exactly the results of one uninterrupted run.
#[tokio::test]
async fn runs_and_replays_cut_inside_a_bucket_equal_an_uninterrupted_run() {
    let data = tempfile::tempdir().expect("temp dir");
    let data_arg = data.path().to_str().expect("utf-8").to_string();
    let here = data.path();
    let lines: Vec<&str> = SAMPLE_DATA.lines().take(2500).collect();
    let boundary = (1..lines.len())
        .find(|&i| i > 1200 && bucket_of(lines[i]) != bucket_of(lines[i - 1]))
        .expect("a bucket boundary");
    let next_boundary = (boundary + 1..lines.len())
        .find(|&i| bucket_of(lines[i]) != bucket_of(lines[i - 1]))
        .expect("another boundary");
    assert!(next_boundary - boundary >= 4, "a bucket with a few records");
    let cuts = [
        boundary,
        boundary + 1,
        (boundary + next_boundary) / 2,
        next_boundary - 1,
    ];
    let job_file = sample_path("web-latency-job.json");
    let write = |name: &str, part: &[&str]| {
        let path = here.join(name);
        std::fs::write(&path, part.join("\n") + "\n").expect("write");
        path.to_str().expect("utf-8").to_string()
    };
    let all = write("all.ndjson", &lines);
    ok(auspex(
        &[
            "run", "whole", "--job", &job_file, "--data", &data_arg, &all,
        ],
        &[],
        here,
    ));
    for cut in cuts {
        let first = write(&format!("first-{cut}.ndjson"), &lines[..cut]);
        let rest = write(&format!("rest-{cut}.ndjson"), &lines[cut..]);
        let job = format!("cut-{cut}");
        ok(auspex(
            &["run", &job, "--job", &job_file, "--data", &data_arg, &first],
            &[],
            here,
        ));
        let (_, stderr) = ok(auspex(
            &["run", &job, "--data", &data_arg, &rest],
            &[],
            here,
        ));
        assert!(stderr.contains(&format!("run: {} records", thousands(lines.len() - cut))));
        assert!(
            !stderr.contains("skipped"),
            "cut {cut}: nothing out of order: {stderr}"
        );
        ok(auspex(
            &[
                "replay",
                &job,
                "--into",
                &format!("again-{cut}"),
                "--data",
                &data_arg,
            ],
            &[],
            here,
        ));
    }
    let server = BinaryServer::start_on(data, &[]);
    let online = TestServer::start().await;
    for kind in ["buckets", "records", "influencers"] {
        let whole = results(&server, "whole", kind).await;
        assert!(!whole.is_empty(), "{kind}");
        for cut in cuts {
            assert_eq!(
                results(&server, &format!("cut-{cut}"), kind).await,
                whole,
                "{kind}, cut {cut}"
            );
            assert_eq!(
                results(&server, &format!("again-{cut}"), kind).await,
                whole,
                "{kind}, replay of cut {cut}"
            );
        }
    }
    for cut in cuts {
        let path = format!("/_ml/anomaly_detectors/http-{cut}");
        let job: Value = serde_json::from_str(SAMPLE_JOB).expect("sample job is JSON");
        assert_eq!(online.put_json(&path, &job).await.status, 200);
        for part in [&lines[..cut], &lines[cut..]] {
            assert_eq!(online.post(&format!("{path}/_open")).await.status, 200);
            let body = part.join("\n") + "\n";
            let posted = online
                .post_raw(&format!("{path}/_data"), "application/x-ndjson", body)
                .await;
            assert_eq!(posted.status, 202, "{}", posted.text());
            assert_eq!(
                posted.json()["out_of_order_timestamp_count"],
                0,
                "cut {cut}"
            );
            assert_eq!(online.post(&format!("{path}/_close")).await.status, 200);
        }
        for kind in ["buckets", "records"] {
            assert_eq!(
                results(&online, &format!("http-{cut}"), kind).await,
                results(&server, "whole", kind).await,
                "over HTTP: {kind}, cut {cut}"
            );
        }
    }
    online.stop().await;
}
