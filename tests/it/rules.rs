//! Custom rules over HTTP: `skip_result` scoped with a filter, rule validation errors, and rule
//! and filter changes reaching an open job in input order (a replay of its stored input gives the
//! same records).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::util::{Client, TestServer, TIMEOUT};

const BASE: &str = "/_ml/anomaly_detectors";
const SPAN: i64 = 300;
const START: i64 = 1_704_067_200;

/// `n` buckets of `mean(value) by airline` data for AAL and UAL around 100 (seeded noise), with
/// the spikes `(bucket, airline)` at 1000; bucket numbers start at `first`.
fn ndjson(first: i64, n: i64, spikes: &[(i64, &str)]) -> String {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ first as u64;
    let mut out = String::new();
    for b in first..first + n {
        for airline in ["AAL", "UAL"] {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut value = 100.0 + (state % 1000) as f64 / 100.0;
            if spikes.contains(&(b, airline)) {
                value = 1000.0;
            }
            let time = START + b * SPAN + 10;
            out += &format!("{{\"time\":{time},\"airline\":\"{airline}\",\"value\":{value}}}\n");
        }
    }
    out
}

fn job(rules: Value) -> Value {
    json!({
        "analysis_config": {"bucket_span": "5m", "detectors": [
            {"function": "mean", "field_name": "value", "by_field_name": "airline", "custom_rules": rules}]},
        "data_description": {"time_field": "time", "time_format": "epoch"}
    })
}

async fn post(client: &Client, job_id: &str, body: String) {
    let reply = client
        .post_raw(
            &format!("{BASE}/{job_id}/_data"),
            "application/x-ndjson",
            body,
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text());
}

/// (bucket number, airline) of every record with a `record_score` above 1.
async fn anomalies(client: &Client, job_id: &str) -> Vec<(i64, String)> {
    let records = client
        .get(&format!("{BASE}/{job_id}/results/records?size=10000"))
        .await
        .json();
    let mut found: Vec<(i64, String)> = records["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["record_score"].as_f64().unwrap_or(0.0) > 1.0)
        .map(|r| {
            let bucket = (r["timestamp"].as_i64().unwrap() / 1000 - START) / SPAN;
            (bucket, r["by_field_value"].as_str().unwrap().to_string())
        })
        .collect();
    found.sort();
    found
}

fn pairs(list: &[(i64, &str)]) -> Vec<(i64, String)> {
    list.iter().map(|(b, a)| (*b, a.to_string())).collect()
}

#[tokio::test]
async fn skip_result_scoped_by_a_filter_suppresses_its_records() {
    let server = TestServer::start().await;
    let filter = json!({"items": ["AAL"]});
    assert_eq!(
        server.put_json("/_ml/filters/safe", &filter).await.status,
        200
    );
    let rules = json!([{"actions": ["skip_result"], "scope": {"airline": {"filter_id": "safe"}}}]);
    let created = server
        .put_json(&format!("{BASE}/scoped"), &job(rules))
        .await;
    assert_eq!(created.status, 200, "{}", created.text());
    assert_eq!(
        created.json()["analysis_config"]["detectors"][0]["custom_rules"],
        json!([{"actions": ["skip_result"], "scope": {"airline": {"filter_id": "safe", "filter_type": "include"}}}])
    );
    assert_eq!(
        server.post(&format!("{BASE}/scoped/_open")).await.status,
        200
    );
    post(
        &server,
        "scoped",
        ndjson(0, 300, &[(250, "AAL"), (260, "UAL")]),
    )
    .await;
    assert_eq!(
        server.post(&format!("{BASE}/scoped/_close")).await.status,
        200
    );
    assert_eq!(anomalies(&server, "scoped").await, pairs(&[(260, "UAL")]));
    // The filter is in use: it cannot be deleted.
    assert_eq!(server.delete("/_ml/filters/safe").await.status, 409);
    server.stop().await;
}

#[tokio::test]
async fn invalid_rules_are_refused_with_elasticsearch_messages() {
    let server = TestServer::start().await;
    let missing = json!([{"scope": {"airline": {"filter_id": "nope"}}}]);
    let reply = server.put_json(&format!("{BASE}/bad"), &job(missing)).await;
    assert_eq!(reply.status, 404, "{}", reply.text());
    assert_eq!(reply.es_error().1, "No filter with id [nope] exists");
    let wrong_field = json!([{"scope": {"host": {"filter_id": "nope"}}}]);
    let reply = server
        .put_json(&format!("{BASE}/bad"), &job(wrong_field))
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.es_error().1,
        "Invalid detector rule: scope field 'host' is invalid; select from [airline]"
    );
    let empty = json!([{"actions": ["skip_result"]}]);
    let reply = server.put_json(&format!("{BASE}/bad"), &job(empty)).await;
    assert_eq!(
        reply.es_error().1,
        "Invalid detector rule: at least scope or a condition is required"
    );
    server.stop().await;
}

async fn replay_into(client: &Client, job_id: &str, new_job_id: &str) {
    let started = client
        .post_json(
            &format!("/_auspex/anomaly_detectors/{job_id}/_replay"),
            &json!({"new_job_id": new_job_id}),
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.text());
    let task_id = started.json()["task_id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let task = client
            .get(&format!("/_auspex/tasks/{task_id}"))
            .await
            .json();
        if task["state"] != "running" {
            assert_eq!(task["state"], "completed", "{task}");
            return;
        }
        assert!(Instant::now() < deadline, "replay still running: {task}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn rule_and_filter_updates_reach_an_open_job_in_input_order() {
    let server = TestServer::start().await;
    let filter = json!({"items": []});
    assert_eq!(
        server.put_json("/_ml/filters/quiet", &filter).await.status,
        200
    );
    let rules = json!([{"scope": {"airline": {"filter_id": "quiet"}}}]);
    assert_eq!(
        server
            .put_json(&format!("{BASE}/live"), &job(rules))
            .await
            .status,
        200
    );
    assert_eq!(server.post(&format!("{BASE}/live/_open")).await.status, 200);

    // Empty filter: nothing is skipped.
    post(&server, "live", ndjson(0, 250, &[(240, "AAL")])).await;
    // AAL joins the filter while the job is open: its next spike is skipped.
    let update = json!({"add_items": ["AAL"]});
    let reply = server
        .post_json("/_ml/filters/quiet/_update", &update)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    post(
        &server,
        "live",
        ndjson(250, 20, &[(260, "AAL"), (262, "UAL")]),
    )
    .await;
    // The rule itself changes on the open job: now it skips UAL (exclude AAL) instead.
    let update = json!({"detectors": [{"detector_index": 0, "custom_rules":
        [{"scope": {"airline": {"filter_id": "quiet", "filter_type": "exclude"}}}]}]});
    let reply = server
        .post_json(&format!("{BASE}/live/_update"), &update)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    post(
        &server,
        "live",
        ndjson(270, 30, &[(280, "AAL"), (290, "UAL")]),
    )
    .await;
    assert_eq!(
        server.post(&format!("{BASE}/live/_close")).await.status,
        200
    );

    let expected = pairs(&[(240, "AAL"), (262, "UAL"), (280, "AAL")]);
    assert_eq!(anomalies(&server, "live").await, expected);
    // The stored input holds the rule changes where they happened: a replay gives the same.
    replay_into(&server, "live", "live-copy").await;
    assert_eq!(anomalies(&server, "live-copy").await, expected);
    server.stop().await;
}
