//! `analysis_limits.model_memory_limit` over HTTP: a job with a tiny limit and many by values
//! reaches `hard_limit`, counts `bucket_allocation_failures_count`, keeps modelling the series it
//! knows, and its `model_size_stats` survive close and open.

use serde_json::{json, Value};

use crate::util::TestServer;

const BASE: &str = "/_ml/anomaly_detectors";
const HOUR_MS: i64 = 3_600_000;
const START_MS: i64 = 1_700_000_000_000 / HOUR_MS * HOUR_MS;

/// One hour of records: `busy` known hosts (value 100, or `spike` for busy-1) and `new` hosts
/// never seen before, numbered from `first_new`.
fn hour(h: i64, busy: usize, first_new: usize, new: usize, spike: Option<f64>) -> String {
    let time = START_MS + h * HOUR_MS + 60_000;
    let mut body = String::new();
    for i in 0..busy {
        let value = match spike {
            Some(v) if i == 1 => v,
            _ => 100.0 + (i as i64 + h) as f64 % 3.0,
        };
        body.push_str(&format!(
            "{{\"time\":{time},\"host\":\"busy-{i}\",\"value\":{value}}}\n"
        ));
    }
    for i in first_new..first_new + new {
        body.push_str(&format!(
            "{{\"time\":{time},\"host\":\"new-{i}\",\"value\":5}}\n"
        ));
    }
    body
}

async fn post_hour(server: &TestServer, job: &str, h: i64, body: String) {
    let reply = server
        .post_raw(&format!("{BASE}/{job}/_data"), "application/x-ndjson", body)
        .await;
    assert!(
        reply.status == 202 || reply.status == 200,
        "{}",
        reply.text()
    );
    let advance = (START_MS + (h + 1) * HOUR_MS).to_string();
    let reply = server
        .post_json(
            &format!("{BASE}/{job}/_flush"),
            &json!({"advance_time": advance}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

async fn model_size_stats(server: &TestServer, job: &str) -> Value {
    let stats = server.get(&format!("{BASE}/{job}/_stats")).await.json();
    stats["jobs"][0]["model_size_stats"].clone()
}

#[tokio::test]
async fn a_tiny_limit_reaches_hard_limit_and_keeps_modelling_known_series() {
    let server = TestServer::start().await;
    let job = "tiny-limit";
    let config = json!({
        "analysis_config": {"bucket_span": "1h", "detectors": [
            {"function": "mean", "field_name": "value", "by_field_name": "host"}]},
        "analysis_limits": {"model_memory_limit": "1mb"},
        "data_description": {"time_field": "time", "time_format": "epoch_ms"}
    });
    let reply = server.put_json(&format!("{BASE}/{job}"), &config).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        server.post(&format!("{BASE}/{job}/_open")).await.status,
        200
    );
    for h in 0..24 {
        post_hour(&server, job, h, hour(h, 20, 0, 0, None)).await;
    }
    let calm = model_size_stats(&server, job).await;
    assert_eq!(calm["memory_status"], "ok", "{calm}");
    assert_eq!(calm["assignment_memory_basis"], "current_model_bytes");
    assert_eq!(calm["model_bytes_memory_limit"], 1 << 20);

    // Thousands of new hosts an hour: far more than a megabyte of models.
    post_hour(&server, job, 24, hour(24, 20, 0, 3000, None)).await;
    post_hour(&server, job, 25, hour(25, 20, 3000, 3000, None)).await;
    let full = model_size_stats(&server, job).await;
    assert_eq!(full["memory_status"], "hard_limit", "{full}");
    assert_eq!(full["bucket_allocation_failures_count"], 2, "{full}");
    assert!(full["model_bytes_exceeded"].as_u64() > Some(0), "{full}");
    assert!(full["peak_model_bytes"].as_u64() >= full["model_bytes"].as_u64());
    let modelled = full["total_by_field_count"].as_u64().unwrap_or(0);
    assert!(modelled > 20 && modelled < 3000, "{full}");

    // A known host's spike is still found.
    post_hour(&server, job, 26, hour(26, 20, 0, 0, Some(10_000.0))).await;
    let records = server
        .get(&format!(
            "{BASE}/{job}/results/records?start={}",
            START_MS + 26 * HOUR_MS
        ))
        .await
        .json();
    let hosts: Vec<&str> = records["records"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|r| r["by_field_value"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(hosts.contains(&"busy-1"), "{records}");

    // Close (snapshot) and open again: the memory figures are kept.
    let before = model_size_stats(&server, job).await;
    assert_eq!(
        server.post(&format!("{BASE}/{job}/_close")).await.status,
        200
    );
    assert_eq!(
        server.post(&format!("{BASE}/{job}/_open")).await.status,
        200
    );
    let after = model_size_stats(&server, job).await;
    for key in [
        "memory_status",
        "bucket_allocation_failures_count",
        "peak_model_bytes",
        "model_bytes_exceeded",
        "total_by_field_count",
    ] {
        assert_eq!(after[key], before[key], "{key}: {before} -> {after}");
    }
    server.stop().await;
}
