//! `POST _ml/set_upgrade_mode`: open jobs are parked (snapshot written, still `opened`, no node),
//! writes are refused with Elasticsearch's 429, reads keep working, the setting survives a restart,
//! and switching it off resumes the jobs where they stopped.

use serde_json::{json, Value};

use crate::util::BinaryServer;

const JOB: &str = "/_ml/anomaly_detectors/parked";

fn records(from_minute: i64, minutes: i64) -> String {
    (from_minute..from_minute + minutes)
        .map(|m| {
            let t = 1_700_000_000_000 + m * 60_000;
            format!("{{\"@timestamp\":{t},\"value\":{}}}\n", 5 + m % 4)
        })
        .collect()
}

async fn stats(server: &BinaryServer) -> Value {
    server.get(&format!("{JOB}/_stats")).await.json()["jobs"][0].clone()
}

async fn snapshot_count(server: &BinaryServer) -> u64 {
    let reply = server.get(&format!("{JOB}/model_snapshots")).await;
    reply.json()["count"].as_u64().expect("count")
}

#[tokio::test]
async fn upgrade_mode_parks_open_jobs_refuses_writes_and_resumes_them() {
    let server = BinaryServer::start(&[]);
    let config = json!({
        "analysis_config": {"bucket_span": "10m", "detectors": [{"function": "mean", "field_name": "value"}]},
        "data_description": {"time_field": "@timestamp"}
    });
    assert_eq!(server.put_json(JOB, &config).await.status, 200);
    assert_eq!(server.post(&format!("{JOB}/_open")).await.status, 200);
    let posted = server
        .post_raw(
            &format!("{JOB}/_data"),
            "application/x-ndjson",
            records(0, 60),
        )
        .await;
    assert_eq!(posted.status, 202, "{}", posted.text());
    let snapshots_before = snapshot_count(&server).await;

    let enabled = server.post("/_ml/set_upgrade_mode?enabled=true").await;
    assert_eq!(enabled.status, 200, "{}", enabled.text());
    assert_eq!(enabled.json(), json!({"acknowledged": true}));
    assert_eq!(server.get("/_ml/info").await.json()["upgrade_mode"], true);
    let parked = stats(&server).await;
    assert_eq!(parked["state"], "opened");
    assert!(parked.get("node").is_none(), "{parked}");
    assert_eq!(
        parked["assignment_explanation"],
        "persistent task cannot be assigned while upgrade mode is enabled."
    );
    assert_eq!(snapshot_count(&server).await, snapshots_before + 1);

    let refused = server
        .post_raw(
            &format!("{JOB}/_data"),
            "application/x-ndjson",
            records(60, 10),
        )
        .await;
    assert_eq!(refused.status, 429);
    assert_eq!(
        refused.es_error(),
        (
            "status_exception".to_string(),
            "Cannot perform cluster:admin/xpack/ml/job/data/post action while upgrade mode is enabled"
                .to_string()
        )
    );
    for (path, action) in [
        (format!("{JOB}/_close"), "job/close"),
        (format!("{JOB}/_flush"), "job/flush"),
        (
            "/_ml/anomaly_detectors/another/_open".to_string(),
            "job/open",
        ),
    ] {
        let reply = server.post(&path).await;
        assert_eq!(reply.status, 429, "{path}");
        assert!(reply.es_error().1.contains(action), "{}", reply.text());
    }
    assert_eq!(
        server.get(&format!("{JOB}/results/buckets")).await.status,
        200
    );
    // Enabling twice is acknowledged and changes nothing.
    assert_eq!(
        server
            .post("/_ml/set_upgrade_mode?enabled=true")
            .await
            .status,
        200
    );

    // The setting and the parked job survive a restart.
    let (_, data) = server.terminate();
    let server = BinaryServer::start_on(data, &[]);
    assert_eq!(server.get("/_ml/info").await.json()["upgrade_mode"], true);
    let parked = stats(&server).await;
    assert_eq!(parked["state"], "opened");
    assert!(parked.get("node").is_none(), "{parked}");

    let disabled = server.post("/_ml/set_upgrade_mode?enabled=false").await;
    assert_eq!(disabled.status, 200, "{}", disabled.text());
    assert_eq!(server.get("/_ml/info").await.json()["upgrade_mode"], false);
    let resumed = stats(&server).await;
    assert_eq!(resumed["state"], "opened");
    assert!(resumed["node"]["id"].is_string(), "{resumed}");
    let posted = server
        .post_raw(
            &format!("{JOB}/_data"),
            "application/x-ndjson",
            records(60, 10),
        )
        .await;
    assert_eq!(posted.status, 202, "{}", posted.text());
    assert_eq!(posted.json()["processed_record_count"], 10);
    assert_eq!(
        stats(&server).await["data_counts"]["processed_record_count"],
        70
    );
    server.terminate();
}

#[tokio::test]
async fn set_upgrade_mode_rejects_bad_parameters() {
    let server = BinaryServer::start(&[]);
    let reply = server.post("/_ml/set_upgrade_mode?enabled=maybe").await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    let reply = server.post("/_ml/set_upgrade_mode?size=1").await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.es_error().1.contains("unrecognized parameter"),
        "{}",
        reply.text()
    );
    server.terminate();
}
