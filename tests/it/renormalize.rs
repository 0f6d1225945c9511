//! Renormalization over HTTP: a later, bigger anomaly lowers the `record_score` (and bucket and
//! influencer scores) of an earlier one inside `renormalization_window_days` and leaves its
//! `initial_*` scores and everything outside the window alone; stored results do not depend on
//! how the input was split into requests, survive close/open and a killed process, and equal
//! those of a `_replay`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cli_replay::results;
use crate::scenarios::{seasonal, Noise, START};
use crate::util::{BinaryServer, Client, TestServer, TIMEOUT};

const BASE: &str = "/_ml/anomaly_detectors";
const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;
const DAYS: i64 = 18;
/// Outside the window of the renormalizations the bigger anomaly causes.
const EARLY: i64 = START + 8 * DAY + 12 * HOUR;
/// Inside it.
const EARLIER: i64 = START + 13 * DAY + 12 * HOUR;
const BIGGER: i64 = START + 15 * DAY + 12 * HOUR;

/// Hourly NDJSON lines: the daily cycle, noise of sd 3, spikes of 20 sd at `EARLY` and
/// `EARLIER` and of 100 sd at `BIGGER`.
fn lines() -> Vec<String> {
    let mut noise = Noise(0xC0FFEE);
    (0..DAYS * 24)
        .map(|h| {
            let t = START + h * HOUR;
            let spike = match t {
                EARLY | EARLIER => 60.0,
                BIGGER => 300.0,
                _ => 0.0,
            };
            let value = seasonal(t) + 3.0 * noise.normal() + spike;
            format!("{{\"time\":{t},\"value\":{value},\"host\":\"h1\"}}\n")
        })
        .collect()
}

async fn create_and_open(client: &Client, job: &str) {
    let config = json!({
        "analysis_config": {"bucket_span": "1h", "influencers": ["host"],
            "detectors": [{"function": "mean", "field_name": "value"}]},
        "data_description": {"time_field": "time", "time_format": "epoch"},
        "renormalization_window_days": 3
    });
    let put = client.put_json(&format!("{BASE}/{job}"), &config).await;
    assert_eq!(put.status, 200, "{}", put.text());
    let open = client.post(&format!("{BASE}/{job}/_open")).await;
    assert_eq!(open.status, 200, "{}", open.text());
}

/// Posts `lines` in requests of `chunk` lines, each followed by a flush up to its last hour.
async fn post(client: &Client, job: &str, lines: &[String], chunk: usize) {
    for piece in lines.chunks(chunk) {
        let body = piece.concat();
        let posted = client
            .post_raw(&format!("{BASE}/{job}/_data"), "application/x-ndjson", body)
            .await;
        assert_eq!(posted.status, 202, "{}", posted.text());
        let last: Value = serde_json::from_str(piece[piece.len() - 1].trim()).expect("JSON");
        let end = last["time"].as_i64().expect("time") + HOUR;
        let flushed = client
            .post_json(
                &format!("{BASE}/{job}/_flush"),
                &json!({"advance_time": end.to_string()}),
            )
            .await;
        assert_eq!(flushed.status, 200, "{}", flushed.text());
    }
}

/// Every bucket, record and influencer of the job.
async fn all_results(client: &Client, job: &str) -> Vec<Vec<Value>> {
    let mut all = Vec::new();
    for kind in ["buckets", "records", "influencers"] {
        all.push(results(client, job, kind).await);
    }
    all
}

/// The document of `kind` (index into [`all_results`]) at `time` (seconds).
fn at(all: &[Vec<Value>], kind: usize, time: i64) -> Value {
    all[kind]
        .iter()
        .find(|d| d["timestamp"].as_i64() == Some(time * 1000))
        .cloned()
        .unwrap_or_else(|| panic!("no result of kind {kind} at {time}"))
}

const BUCKETS: usize = 0;
const RECORDS: usize = 1;
const INFLUENCERS: usize = 2;

#[tokio::test]
async fn a_bigger_anomaly_renormalizes_earlier_results_inside_the_window_only() {
    let server = TestServer::start().await;
    let lines = lines();
    let job = "renorm-phases";
    create_and_open(&server, job).await;
    let split_at = ((BIGGER - START) / HOUR) as usize;
    post(&server, job, &lines[..split_at], split_at).await;
    let before = all_results(&server, job).await;
    post(&server, job, &lines[split_at..], lines.len()).await;
    let after = all_results(&server, job).await;

    let (was, now) = (at(&before, RECORDS, EARLIER), at(&after, RECORDS, EARLIER));
    let bigger = at(&after, RECORDS, BIGGER)["record_score"].as_f64();
    println!("earlier record {was} -> {now}; bigger record scored {bigger:?}");
    let initial = was["initial_record_score"].as_f64().expect("initial score");
    assert!(initial >= 25.0, "the earlier anomaly is found: {was}");
    assert_eq!(now["initial_record_score"], was["initial_record_score"]);
    let score = now["record_score"].as_f64().expect("score");
    assert!(
        score < was["record_score"].as_f64().expect("score") - 1.0,
        "renormalized down: {was} -> {now}"
    );
    // The bucket and its influencers move with the record; their initial scores do not.
    for (kind, field) in [
        (BUCKETS, "anomaly_score"),
        (INFLUENCERS, "influencer_score"),
    ] {
        let (was, now) = (at(&before, kind, EARLIER), at(&after, kind, EARLIER));
        let initial = format!("initial_{field}");
        assert_eq!(now[&initial], was[&initial], "{now}");
        assert_ne!(now[field], was[field], "{was} -> {now}");
    }
    let bucket = at(&after, BUCKETS, EARLIER);
    assert_eq!(bucket["anomaly_score"], now["record_score"]);
    assert_eq!(
        bucket["bucket_influencers"][0]["anomaly_score"],
        bucket["anomaly_score"]
    );
    // Outside the window nothing changed.
    for kind in [BUCKETS, RECORDS, INFLUENCERS] {
        assert_eq!(at(&before, kind, EARLY), at(&after, kind, EARLY), "{kind}");
    }

    // The same input in one request, and in many small ones, stores the same results.
    create_and_open(&server, "renorm-straight").await;
    post(&server, "renorm-straight", &lines, lines.len()).await;
    assert_eq!(all_results(&server, "renorm-straight").await, after);
    create_and_open(&server, "renorm-split").await;
    post(&server, "renorm-split", &lines, 7).await;
    assert_eq!(all_results(&server, "renorm-split").await, after);

    // Close and open change nothing.
    let path = format!("{BASE}/renorm-split");
    assert_eq!(server.post(&format!("{path}/_close")).await.status, 200);
    assert_eq!(all_results(&server, "renorm-split").await, after);
    assert_eq!(server.post(&format!("{path}/_open")).await.status, 200);
    assert_eq!(all_results(&server, "renorm-split").await, after);
    assert_eq!(server.post(&format!("{path}/_close")).await.status, 200);

    // Nor does a replay of the stored input into a new job.
    let started = server
        .post_json(
            "/_auspex/anomaly_detectors/renorm-split/_replay",
            &json!({"new_job_id": "renorm-replayed"}),
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.text());
    let task = started.json()["task_id"]
        .as_str()
        .expect("task")
        .to_string();
    let deadline = Instant::now() + TIMEOUT;
    while server.get(&format!("/_auspex/tasks/{task}")).await.json()["state"] == "running" {
        assert!(Instant::now() < deadline, "replay still running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(all_results(&server, "renorm-replayed").await, after);
    server.stop().await;
}

/// A process killed after renormalizing restarts with the same results, and goes on to store
/// what an uninterrupted job stores.
#[tokio::test]
async fn renormalized_results_survive_a_killed_process() {
    let lines = lines();
    let server = BinaryServer::start(&[]);
    create_and_open(&server.client, "renorm-kill").await;
    create_and_open(&server.client, "renorm-whole").await;
    post(&server.client, "renorm-whole", &lines, lines.len()).await;
    let whole = all_results(&server.client, "renorm-whole").await;
    let cut = lines.len() - 30;
    post(&server.client, "renorm-kill", &lines[..cut], 50).await;
    let before = all_results(&server.client, "renorm-kill").await;
    let data = server.kill();

    let server = BinaryServer::start_on(data, &[]);
    assert_eq!(all_results(&server.client, "renorm-kill").await, before);
    let path = format!("{BASE}/renorm-kill");
    let open = server.client.post(&format!("{path}/_open")).await;
    assert!(open.status == 200 || open.status == 409, "{}", open.text());
    post(&server.client, "renorm-kill", &lines[cut..], 10).await;
    assert_eq!(all_results(&server.client, "renorm-kill").await, whole);
    server.terminate();
}
