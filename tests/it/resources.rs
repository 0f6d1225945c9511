//! Running out of disk: the real binary with a file size limit (`ulimit -f`), fed until a write
//! fails. The failing request gets a clear 500, the process stays up, nothing acknowledged is lost
//! and the store stays consistent (`auspex verify`); restarted without the limit, the job carries
//! on from its last good state.

use serde_json::json;

use crate::util::{verify_store, BinaryServer};
use crate::workload::job_path;

const RECORDS: u64 = 2000;

fn body(post: u64) -> String {
    (0..RECORDS)
        .map(|k| {
            let t = 1_700_000_000_000 + (post * RECORDS + k) as i64 * 1000;
            format!("{{\"t\":{t},\"host\":\"h{}\",\"value\":{k}}}\n", k % 50)
        })
        .collect()
}

#[tokio::test]
async fn a_full_disk_is_a_500_and_loses_nothing_acknowledged() {
    let data = tempfile::tempdir().expect("data path");
    // 10 MB per file: sled's data file fills after about a hundred posts.
    let server = BinaryServer::start_with_file_limit(data, 20_000);
    let path = job_path("disk");
    let config = json!({
        "analysis_config": {"bucket_span": "10m", "detectors": [
            {"function": "mean", "field_name": "value", "by_field_name": "host"}]},
        "data_description": {"time_field": "t", "time_format": "epoch_ms"}
    });
    assert_eq!(server.put_json(&path, &config).await.status, 200);
    assert_eq!(server.post(&format!("{path}/_open")).await.status, 200);
    let mut acknowledged = 0;
    let mut failed = None;
    for post in 0..1000 {
        let reply = server
            .post_raw(&format!("{path}/_data"), "application/x-ndjson", body(post))
            .await;
        match reply.status {
            202 => acknowledged += RECORDS,
            _ => {
                failed = Some(reply);
                break;
            }
        }
    }
    let failed = failed.expect("the file size limit is reached");
    assert_eq!(failed.status, 500, "{}", failed.text());
    assert_eq!(failed.es_error().0, "exception");
    assert!(acknowledged > 0);
    // The process is up and still answers.
    assert_eq!(server.get("/").await.status, 200);
    let stats = server.get(&format!("{path}/_stats")).await.json();
    assert_ne!(stats["jobs"][0]["state"], "failed");
    let data = server.kill();

    let (code, report) = verify_store(data.path());
    assert_eq!(code, Some(0), "{report}");
    let server = BinaryServer::start_on(data, &[]);
    let job = server.get(&format!("{path}/_stats")).await.json()["jobs"][0].clone();
    assert_eq!(job["state"], "opened");
    // The failed post got no success: it may or may not be there, but whole if it is.
    let count = job["data_counts"]["input_record_count"]
        .as_u64()
        .expect("count");
    assert!(
        count == acknowledged || count == acknowledged + RECORDS,
        "{count} records after restart, {acknowledged} acknowledged"
    );
    let reply = server
        .post_raw(&format!("{path}/_data"), "application/x-ndjson", body(5000))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text());
}
