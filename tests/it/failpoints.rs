//! The real binary at the store's named failpoints (`store::failpoints`, armed by
//! `AUSPEX_FAILPOINT`; always compiled in, so `cargo test` runs all of this).
//!
//! - Crashes exactly at a commit boundary rather than at a random moment: before and after a
//!   `_data` commit, before and after the snapshot of a `_close` and of a periodic persist, and in
//!   the middle of a forced delete. After each crash `auspex verify` is clean and the restarted job
//!   holds all of the interrupted operation or none of it, and takes the operation again.
//! - An injected write error at each store write site: the request gets a 500, the process stays
//!   up, the job keeps its last good state (what the request would have changed is not there), and
//!   the same request sent again succeeds. After a restart every acknowledged change is there and
//!   `auspex verify` is clean.

use std::process::Command;
use std::time::{Duration, Instant};

use auspex::store::failpoints;
use reqwest::Method;
use serde_json::{json, Value};

use crate::util::{verify_store, BinaryServer, Client, Reply};
use crate::workload::job_path;

const RECORDS: u64 = 300;
const PERSIST_INTERVAL_VAR: &str = "AUSPEX_BACKGROUND_PERSIST_INTERVAL";

fn batch(first: u64) -> String {
    (first..first + RECORDS)
        .map(|k| {
            let t = 1_700_000_000_000 + k as i64 * 10_000;
            format!("{{\"t\":{t},\"host\":\"h{}\",\"value\":{k}}}\n", k % 4)
        })
        .collect()
}

fn config() -> Value {
    json!({
        "analysis_config": {"bucket_span": "10m", "detectors": [{"function": "count"}]},
        "data_description": {"time_field": "t", "time_format": "epoch_ms"}
    })
}

/// The binary with `AUSPEX_FAILPOINT=spec` (and any other variables) on a new data path.
fn armed(spec: &str, env: &[(&str, &str)]) -> BinaryServer {
    let mut command = Command::new(env!("CARGO_BIN_EXE_auspex"));
    command
        .env(failpoints::ENV_VAR, spec)
        .env("AUSPEX_LOG", "error");
    for (name, value) in env {
        command.env(name, value);
    }
    BinaryServer::spawn(command, tempfile::tempdir().expect("data path"))
}

/// `(state, input_record_count)`, `None` if the job does not exist.
async fn job(client: &Client, id: &str) -> Option<(String, u64)> {
    let reply = client.get(&format!("{}/_stats", job_path(id))).await;
    (reply.status == 200).then(|| {
        let job = reply.json()["jobs"][0].clone();
        (
            job["state"].as_str().unwrap_or_default().to_string(),
            job["data_counts"]["input_record_count"]
                .as_u64()
                .unwrap_or(0),
        )
    })
}

async fn post_data(client: &Client, id: &str, first: u64) -> Reply {
    let path = format!("{}/_data", job_path(id));
    client
        .post_raw(&path, "application/x-ndjson", batch(first))
        .await
}

async fn create_open_feed(client: &Client, id: &str) {
    let path = job_path(id);
    assert_eq!(client.put_json(&path, &config()).await.status, 200);
    assert_eq!(client.post(&format!("{path}/_open")).await.status, 200);
    assert_eq!(post_data(client, id, 0).await.status, 202);
}

/// Polls until the process stops answering (it aborted at its failpoint).
async fn wait_for_abort(client: &Client, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .request(Method::GET, "/")
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .is_ok()
    {
        assert!(
            Instant::now() < deadline,
            "{what}: the process did not abort"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_crash_at_every_commit_boundary_keeps_the_job_whole() {
    let path = job_path("fp");
    for point in failpoints::CRASH_POINTS {
        let server = armed(point, &[]);
        assert_eq!(server.put_json(&path, &config()).await.status, 200);
        assert_eq!(server.post(&format!("{path}/_open")).await.status, 200);
        let crashing = server.request(Method::POST, &format!("{path}/_data"));
        let crashing = if point.starts_with("commit.") {
            crashing.body(batch(0))
        } else {
            assert_eq!(post_data(&server, "fp", 0).await.status, 202, "{point}");
            if point.starts_with("snapshot.") {
                server.request(Method::POST, &format!("{path}/_close"))
            } else {
                server.request(Method::DELETE, &format!("{path}?force=true"))
            }
        };
        assert!(
            crashing.send().await.is_err(),
            "{point}: the process aborts"
        );
        let data = server.kill();
        let (code, report) = verify_store(data.path());
        assert_eq!(code, Some(0), "{point}: {report}");

        let server = BinaryServer::start_on(data, &[]);
        let found = job(&server, "fp").await;
        match point {
            p if p.starts_with("commit.") => {
                let (state, count) = found.expect("the job exists");
                assert_eq!(state, "opened", "{point}");
                assert!(count == 0 || count == RECORDS, "{point}: {count}");
            }
            p if p.starts_with("snapshot.") => {
                let (state, count) = found.expect("the job exists");
                assert_eq!(count, RECORDS, "{point}");
                assert!(state == "opened" || state == "closed", "{point}: {state}");
                assert_eq!(server.post(&format!("{path}/_close")).await.status, 200);
                assert_eq!(job(&server, "fp").await.expect("job").0, "closed");
            }
            _ => {
                if found.is_some() {
                    assert_eq!(
                        server.delete(&format!("{path}?force=true")).await.status,
                        200
                    );
                }
                assert_eq!(job(&server, "fp").await, None, "{point}");
            }
        }
    }
}

/// A commit that panics midway (as sled does when it cannot allocate an I/O buffer) stops the
/// process instead of carrying on: nothing of it is kept, and the job is not left `failed` for
/// good (which it was when the panic was caught and the failed state written and flushed after
/// the torn commit). After a restart it holds exactly its acknowledged records and takes the
/// request again.
#[tokio::test]
async fn a_commit_that_panics_midway_leaves_nothing_of_itself() {
    let path = job_path("torn");
    {
        let point = failpoints::COMMIT_MID;
        let server = armed(&format!("{point}:panic"), &[]);
        assert_eq!(server.put_json(&path, &config()).await.status, 200);
        assert_eq!(server.post(&format!("{path}/_open")).await.status, 200);
        let torn = server
            .request(Method::POST, &format!("{path}/_data"))
            .body(batch(0))
            .send()
            .await;
        assert!(
            torn.is_err() || torn.is_ok_and(|r| !r.status().is_success()),
            "{point}: never acknowledged"
        );
        wait_for_abort(&server, point).await;
        let data = server.kill();
        let (code, report) = verify_store(data.path());
        assert_eq!(code, Some(0), "{point}: {report}");
        let server = BinaryServer::start_on(data, &[]);
        assert_eq!(
            job(&server, "torn").await,
            Some(("opened".to_string(), 0)),
            "{point}: the last whole commit"
        );
        let results = server.get(&format!("{path}/results/buckets")).await.json();
        assert_eq!(
            results["count"], 0,
            "{point}: no results of the torn commit"
        );
        assert_eq!(post_data(&server, "torn", 0).await.status, 202, "{point}");
        assert_eq!(
            job(&server, "torn").await,
            Some(("opened".to_string(), RECORDS))
        );
    }
}

/// The periodic persist (its interval shortened by the hidden testing setting) crashes before and
/// after its snapshot transaction: the job reopens with every acknowledged record, from the
/// periodic snapshot or from the input log, and ends with the results of a run that never crashed.
#[tokio::test]
async fn a_crash_during_a_periodic_persist_loses_nothing() {
    let reference = BinaryServer::start(&[]);
    create_open_feed(&reference, "pp").await;
    assert_eq!(post_data(&reference, "pp", RECORDS).await.status, 202);
    let path = job_path("pp");
    assert_eq!(reference.post(&format!("{path}/_close")).await.status, 200);
    let expected = crate::workload::final_results(&reference, "pp").await;

    for point in [failpoints::SNAPSHOT_BEFORE, failpoints::SNAPSHOT_AFTER] {
        let server = armed(point, &[(PERSIST_INTERVAL_VAR, "50ms")]);
        assert_eq!(server.put_json(&path, &config()).await.status, 200);
        assert_eq!(server.post(&format!("{path}/_open")).await.status, 200);
        // The persist may abort the process before the post's answer (a slow flush): then the post
        // is there whole or not at all, and is sent again.
        let answered = server
            .request(Method::POST, &format!("{path}/_data"))
            .body(batch(0))
            .send()
            .await
            .is_ok_and(|response| response.status() == 202);
        wait_for_abort(&server, point).await;
        let data = server.kill();
        let (code, report) = verify_store(data.path());
        assert_eq!(code, Some(0), "{point}: {report}");

        let server = BinaryServer::start_on(data, &[]);
        let (state, count) = job(&server, "pp").await.expect("the job exists");
        assert_eq!(state, "opened", "{point}");
        match count {
            RECORDS => {}
            0 if !answered => assert_eq!(post_data(&server, "pp", 0).await.status, 202),
            other => panic!("{point}: {other} records after restart (answered: {answered})"),
        }
        assert_eq!(post_data(&server, "pp", RECORDS).await.status, 202);
        assert_eq!(server.post(&format!("{path}/_close")).await.status, 200);
        assert_eq!(
            crate::workload::final_results(&server, "pp").await,
            expected,
            "{point}"
        );
    }
}

/// One write site: what sets it up, the request that hits it, and what must hold afterwards.
struct Site {
    point: &'static str,
    /// Sent before the failing request (all must succeed); `{snapshot}` is the job's older snapshot.
    setup: &'static [(&'static str, &'static str, Option<&'static str>)],
    request: (&'static str, &'static str, Option<&'static str>),
    /// A GET whose answer must be the same before the failed request and after it.
    unchanged: &'static str,
}

const JOB: &str = "/_ml/anomaly_detectors/we";

/// Every store write site, reached through the API.
fn sites() -> Vec<Site> {
    let job_setup: &'static [(&str, &str, Option<&str>)] = &[
        ("PUT", JOB, Some("config")),
        ("POST", "/_ml/anomaly_detectors/we/_open", None),
        ("POST", "/_ml/anomaly_detectors/we/_data", Some("data")),
    ];
    let two_snapshots: &'static [(&str, &str, Option<&str>)] = &[
        ("PUT", JOB, Some("config")),
        ("POST", "/_ml/anomaly_detectors/we/_open", None),
        ("POST", "/_ml/anomaly_detectors/we/_data", Some("data")),
        ("POST", "/_ml/anomaly_detectors/we/_close", None),
        ("POST", "/_ml/anomaly_detectors/we/_open", None),
        ("POST", "/_ml/anomaly_detectors/we/_data", Some("more")),
        ("POST", "/_ml/anomaly_detectors/we/_close", None),
    ];
    let stats = "/_ml/anomaly_detectors/we/_stats";
    let snapshots = "/_ml/anomaly_detectors/we/model_snapshots";
    vec![
        Site {
            point: failpoints::CREATE_JOB_BEFORE,
            setup: &[],
            request: ("PUT", JOB, Some("config")),
            unchanged: "/_ml/anomaly_detectors/_stats",
        },
        Site {
            point: failpoints::PROGRESS_BEFORE,
            setup: &[("PUT", JOB, Some("config"))],
            request: ("POST", "/_ml/anomaly_detectors/we/_open", None),
            unchanged: stats,
        },
        Site {
            point: failpoints::COMMIT_BEFORE,
            setup: &job_setup[..2],
            request: ("POST", "/_ml/anomaly_detectors/we/_data", Some("data")),
            unchanged: stats,
        },
        Site {
            point: failpoints::COMMIT_MID,
            setup: &job_setup[..2],
            request: ("POST", "/_ml/anomaly_detectors/we/_data", Some("data")),
            unchanged: stats,
        },
        Site {
            point: failpoints::SNAPSHOT_BEFORE,
            setup: job_setup,
            // The close's first commit (finalizing the last bucket) stands; its snapshot does not.
            request: ("POST", "/_ml/anomaly_detectors/we/_close", None),
            unchanged: snapshots,
        },
        Site {
            point: failpoints::JOB_CONFIG_BEFORE,
            setup: &job_setup[..1],
            request: (
                "POST",
                "/_ml/anomaly_detectors/we/_update",
                Some(r#"{"description":"changed"}"#),
            ),
            unchanged: JOB,
        },
        Site {
            point: failpoints::SNAPSHOT_EDIT_BEFORE,
            setup: two_snapshots,
            request: (
                "POST",
                "/_ml/anomaly_detectors/we/model_snapshots/{snapshot}/_update",
                Some(r#"{"description":"changed"}"#),
            ),
            unchanged: snapshots,
        },
        Site {
            point: failpoints::SNAPSHOT_DELETE_BEFORE,
            setup: two_snapshots,
            request: (
                "DELETE",
                "/_ml/anomaly_detectors/we/model_snapshots/{snapshot}",
                None,
            ),
            unchanged: snapshots,
        },
        Site {
            point: failpoints::PURGE_BATCH,
            setup: two_snapshots,
            request: ("POST", "/_ml/anomaly_detectors/we/_reset", None),
            unchanged: stats,
        },
        Site {
            point: failpoints::DELETE_BEFORE,
            setup: two_snapshots,
            request: ("DELETE", JOB, None),
            unchanged: stats,
        },
        Site {
            point: failpoints::RESOURCE_BEFORE,
            setup: &[],
            request: ("PUT", "/_ml/filters/safe", Some(r#"{"items":["a","b"]}"#)),
            unchanged: "/_ml/filters",
        },
    ]
}

/// Sends one `(method, path, body)`, with `{snapshot}` and the body placeholders filled in.
async fn send(
    client: &Client,
    (method, path, body): (&str, &str, Option<&str>),
    snapshot: &str,
) -> Reply {
    let path = path.replace("{snapshot}", snapshot);
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let mut builder = client.request(method, &path);
    builder = match body {
        Some("config") => builder.json(&config()),
        Some("data") => builder.body(batch(0)),
        Some("more") => builder.body(batch(RECORDS)),
        Some(json) => builder
            .header("content-type", "application/json")
            .body(json.to_string()),
        None => builder,
    };
    client.send(builder).await
}

/// The job's oldest snapshot but the active one, or `-` when there is none.
async fn older_snapshot(client: &Client) -> String {
    crate::workload::oldest_snapshot(client, JOB)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| "-".to_string())
}

/// The GET's answer with the fields that move by themselves (timestamps, timings) removed.
async fn observed(client: &Client, path: &str) -> Value {
    let mut value = client.get(path).await.json();
    strip_moving(&mut value);
    value
}

fn strip_moving(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for moving in [
                "log_time",
                "open_time",
                "assignment_explanation",
                "timing_stats",
                "node",
            ] {
                map.remove(moving);
            }
            map.values_mut().for_each(strip_moving);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_moving),
        _ => {}
    }
}

#[tokio::test]
async fn an_injected_write_error_at_every_site_is_a_500_and_keeps_the_last_good_state() {
    for site in sites() {
        let point = site.point;
        let server = armed(&format!("{point}:error:1"), &[]);
        for step in site.setup {
            let reply = send(&server, *step, "-").await;
            assert!(
                reply.status < 300,
                "{point}: setup {step:?}: {}",
                reply.text()
            );
        }
        let snapshot = older_snapshot(&server).await;
        let before = observed(&server, site.unchanged).await;

        let failed = send(&server, site.request, &snapshot).await;
        assert_eq!(failed.status, 500, "{point}: {}", failed.text());
        let (kind, reason) = failed.es_error();
        assert_eq!(kind, "exception", "{point}");
        // The details (the injected I/O error) go to the log under the id the reason quotes.
        assert!(reason.starts_with("internal error ["), "{point}: {reason}");
        assert_eq!(
            server.get("/").await.status,
            200,
            "{point}: the process is up"
        );
        assert_eq!(
            observed(&server, site.unchanged).await,
            before,
            "{point}: the last good state"
        );
        let retried = send(&server, site.request, &snapshot).await;
        assert!(retried.status < 300, "{point}: retry: {}", retried.text());
        let after = observed(&server, site.unchanged).await;
        assert_ne!(
            after, before,
            "{point}: the retry changes what the failure did not"
        );

        // Restarted without the failpoint: the acknowledged retry is there, the store is clean.
        let data = server.kill();
        let server = BinaryServer::start_on(data, &[]);
        let mut restarted = observed(&server, site.unchanged).await;
        let mut expected = after;
        for value in [&mut restarted, &mut expected] {
            // An open job is reopened by the restart: only its state is compared.
            for job in value["jobs"].as_array_mut().into_iter().flatten() {
                job.as_object_mut().map(|job| job.remove("data_counts"));
            }
        }
        assert_eq!(restarted, expected, "{point}: after a restart");
        let data = server.kill();
        let (code, report) = verify_store(data.path());
        assert_eq!(code, Some(0), "{point}: {report}");
    }
}
