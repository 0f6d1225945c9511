//! The binary crashed at each named store failpoint (`store::failpoints`), i.e. exactly at a commit
//! boundary rather than at a random moment: before and after a `_data` commit, before and after the
//! snapshot of a `_close`, and in the middle of a forced delete. Built only with the `failpoints`
//! feature: `cargo test --release --features failpoints --test it failpoints::`.
//! After each crash `auspex verify` is clean and the restarted job holds all of the interrupted
//! operation or none of it, and takes the operation again.

use std::process::Command;

use auspex::store::failpoints;
use serde_json::json;

use crate::util::{verify_store, BinaryServer, Client};
use crate::workload::job_path;

const RECORDS: u64 = 300;

fn batch() -> String {
    (0..RECORDS)
        .map(|k| {
            let t = 1_700_000_000_000 + k as i64 * 10_000;
            format!("{{\"t\":{t},\"host\":\"h{}\",\"value\":{k}}}\n", k % 4)
        })
        .collect()
}

async fn job(client: &Client) -> Option<(String, u64)> {
    let reply = client.get(&format!("{}/_stats", job_path("fp"))).await;
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

#[tokio::test]
async fn a_crash_at_every_failpoint_keeps_the_job_whole() {
    let path = job_path("fp");
    let config = json!({
        "analysis_config": {"bucket_span": "10m", "detectors": [{"function": "count"}]},
        "data_description": {"time_field": "t", "time_format": "epoch_ms"}
    });
    for point in failpoints::ALL {
        let mut command = Command::new(env!("CARGO_BIN_EXE_auspex"));
        command.env(failpoints::ENV_VAR, point);
        let data = tempfile::tempdir().expect("data path");
        let server = BinaryServer::spawn(command, data);
        assert_eq!(server.put_json(&path, &config).await.status, 200);
        assert_eq!(server.post(&format!("{path}/_open")).await.status, 200);
        let crashing = server.request(reqwest::Method::POST, &format!("{path}/_data"));
        let crashing = if point.starts_with("commit.") {
            crashing.body(batch())
        } else {
            let reply = server
                .post_raw(&format!("{path}/_data"), "application/x-ndjson", batch())
                .await;
            assert_eq!(reply.status, 202, "{point}");
            if point.starts_with("snapshot.") {
                server.request(reqwest::Method::POST, &format!("{path}/_close"))
            } else {
                server.request(reqwest::Method::DELETE, &format!("{path}?force=true"))
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
        let found = job(&server).await;
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
                assert_eq!(job(&server).await.expect("job").0, "closed");
            }
            _ => {
                if found.is_some() {
                    assert_eq!(
                        server.delete(&format!("{path}?force=true")).await.status,
                        200
                    );
                }
                assert_eq!(job(&server).await, None, "{point}");
            }
        }
    }
}
