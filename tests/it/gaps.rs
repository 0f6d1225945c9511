//! Far-future times (issue: one record must not exhaust memory). A request that would finalize more
//! empty buckets than `limits.max_empty_buckets` after the latest record is refused whole with a
//! 400 that points at `skip_time`, before anything is stored; dates after 9999 or before 1970 are
//! invalid dates; `skip_time` still jumps a gap of any length.

use serde_json::{json, Value};

use crate::util::{verify_store, BinaryServer, Client, TestServer};

const JOB: &str = "/_ml/anomaly_detectors/far";

fn config() -> Value {
    json!({
        "analysis_config": {"bucket_span": "15m", "detectors": [
            {"function": "mean", "field_name": "v", "by_field_name": "host"}]},
        "data_description": {"time_field": "time", "time_format": "epoch"}
    })
}

fn record(time: i64) -> String {
    format!("{{\"time\":{time},\"host\":\"a\",\"v\":1}}\n")
}

async fn post(client: &Client, body: String) -> crate::util::Reply {
    client
        .post_raw(&format!("{JOB}/_data"), "application/x-ndjson", body)
        .await
}

async fn counts(client: &Client) -> Value {
    client.get(&format!("{JOB}/_stats")).await.json()["jobs"][0]["data_counts"].clone()
}

#[tokio::test]
async fn a_gap_of_ten_years_is_refused_whole_and_leaves_nothing_behind() {
    let server = BinaryServer::start(&[]);
    assert_eq!(server.put_json(JOB, &config()).await.status, 200);
    assert_eq!(server.post(&format!("{JOB}/_open")).await.status, 200);
    assert_eq!(post(&server, record(1_600_000_000)).await.status, 202);
    // Ten years of 15-minute buckets in one commit: refused before anything is applied.
    let body = record(1_600_000_100) + &record(1_915_360_000);
    let refused = post(&server, body).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    let (kind, reason) = refused.es_error();
    assert_eq!(kind, "illegal_argument_exception");
    assert!(
        reason.contains("skip_time") && reason.contains("10080"),
        "{reason}"
    );
    let advance = server
        .post_json(
            &format!("{JOB}/_flush"),
            &json!({"advance_time": "1915360000"}),
        )
        .await;
    assert_eq!(advance.status, 400, "{}", advance.text());
    let after = counts(&server).await;
    assert_eq!(after["input_record_count"], 1, "{after}");
    assert_eq!(
        server.get(&format!("{JOB}/results/buckets")).await.json()["count"],
        0
    );
    // An epoch-seconds time past the year 9999 is an invalid date, not a gap.
    let invalid = post(&server, record(9_223_372_036_854_775)).await;
    assert_eq!(invalid.status, 202);
    assert_eq!(invalid.json()["invalid_date_count"], 1);
    // skip_time jumps the gap; the job carries on after it.
    let skipped = server
        .post_json(
            &format!("{JOB}/_flush"),
            &json!({"skip_time": "1915360000"}),
        )
        .await;
    assert_eq!(
        skipped.json()["last_finalized_bucket_end"],
        1_915_360_200_000i64
    );
    let resumed = post(&server, record(1_915_360_300)).await;
    assert_eq!(resumed.json()["processed_record_count"], 1);
    let (code, report) = verify_store(server.kill().path());
    assert_eq!(code, Some(0), "{report}");
}

#[tokio::test]
async fn the_bound_is_configured() {
    let server = TestServer::start_with(|config| config.max_empty_buckets = 10).await;
    assert_eq!(server.put_json(JOB, &config()).await.status, 200);
    assert_eq!(server.post(&format!("{JOB}/_open")).await.status, 200);
    let start = 1_600_000_200; // a bucket boundary
    assert_eq!(post(&server, record(start)).await.status, 202);
    // 11 empty buckets: refused; 10: fine.
    assert_eq!(post(&server, record(start + 12 * 900)).await.status, 400);
    assert_eq!(post(&server, record(start + 11 * 900)).await.status, 202);
    // Records inside the gap make its buckets non-empty: 30 buckets, 10 of them empty.
    let mut body = String::new();
    for k in 1..=20 {
        body.push_str(&record(start + (11 + k) * 900));
    }
    body.push_str(&record(start + 42 * 900));
    assert_eq!(post(&server, body).await.status, 202);
    server.stop().await;
}
