//! Model snapshots and job management over HTTP: revert semantics (the model continues from the
//! snapshot and the reverted-away input is not replayed), update rules, reset, retention, `_cat`.

use serde_json::{json, Value};

use crate::util::{Client, TestServer};

const BASE: &str = "/_ml/anomaly_detectors";
const START: i64 = 1_403_481_600;
const HOUR: i64 = 3600;

fn job_config() -> Value {
    json!({
        "analysis_config": {"bucket_span": "1h", "detectors": [
            {"function": "mean", "field_name": "responsetime", "by_field_name": "airline"}]},
        "data_description": {"time_field": "time", "time_format": "epoch"}
    })
}

/// NDJSON for `hours`, 6 records an hour for 3 airlines; `spike` multiplies JZA's values.
fn hours(range: std::ops::Range<i64>, spike: f64) -> String {
    let mut out = String::new();
    for hour in range {
        for k in 0..6 {
            for (a, airline) in ["AAL", "JZA", "KLM"].iter().enumerate() {
                let t = START + hour * HOUR + k * 600 + a as i64;
                let mut value = 100.0 + ((hour * 31 + k * 7 + a as i64 * 13) % 17) as f64;
                if *airline == "JZA" {
                    value *= spike;
                }
                out.push_str(&format!(
                    "{{\"time\":{t},\"airline\":\"{airline}\",\"responsetime\":{value}}}\n"
                ));
            }
        }
    }
    out
}

async fn ok(reply: crate::util::Reply) -> Value {
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

async fn put_job(client: &Client, job_id: &str, config: &Value) {
    ok(client.put_json(&format!("{BASE}/{job_id}"), config).await).await;
}

/// Opens, posts, closes.
async fn run(client: &Client, job_id: &str, ndjson: String) {
    ok(client.post(&format!("{BASE}/{job_id}/_open")).await).await;
    let posted = client
        .post_raw(
            &format!("{BASE}/{job_id}/_data"),
            "application/x-ndjson",
            ndjson,
        )
        .await;
    assert_eq!(posted.status, 202, "{}", posted.text());
    ok(client.post(&format!("{BASE}/{job_id}/_close")).await).await;
}

/// Buckets and records without the fields that name the job or depend on the wall clock.
async fn results(client: &Client, job_id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for (kind, key) in [("buckets", "buckets"), ("records", "records")] {
        let reply = client
            .get(&format!(
                "{BASE}/{job_id}/results/{kind}?size=10000&sort=timestamp&desc=false"
            ))
            .await;
        for mut doc in ok(reply).await[key].as_array().cloned().unwrap_or_default() {
            let map = doc.as_object_mut().unwrap();
            map.remove("job_id");
            map.remove("processing_time_ms");
            if let Some(Value::Array(influencers)) = map.get_mut("bucket_influencers") {
                for influencer in influencers {
                    influencer.as_object_mut().unwrap().remove("job_id");
                }
            }
            out.push(doc);
        }
    }
    out
}

async fn snapshot_ids(client: &Client, job_id: &str) -> Vec<String> {
    let listed = ok(client
        .get(&format!("{BASE}/{job_id}/model_snapshots"))
        .await)
    .await;
    listed["model_snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["snapshot_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn after_a_revert_the_job_continues_from_the_snapshot_as_if_the_rest_never_happened() {
    let server = TestServer::start().await;
    let client = &server.client;
    put_job(client, "reverted", &job_config()).await;
    put_job(client, "straight", &job_config()).await;

    run(client, "reverted", hours(0..30, 1.0)).await;
    let first = snapshot_ids(client, "reverted").await;
    assert_eq!(first.len(), 1);
    // Data the revert will throw away: a big spike that would change the model.
    run(client, "reverted", hours(30..40, 8.0)).await;
    assert_eq!(snapshot_ids(client, "reverted").await.len(), 2);

    let reply = client
        .post(&format!(
            "{BASE}/reverted/model_snapshots/{}/_revert?delete_intervening_results=true",
            first[0]
        ))
        .await;
    let reverted = ok(reply).await;
    assert_eq!(reverted["model"]["snapshot_id"], first[0].as_str());
    let stats = ok(client.get(&format!("{BASE}/reverted/_stats")).await).await;
    assert_eq!(
        stats["jobs"][0]["data_counts"]["processed_record_count"],
        30 * 18
    );
    let job = ok(client.get(&format!("{BASE}/reverted")).await).await;
    assert_eq!(job["jobs"][0]["model_snapshot_id"], first[0].as_str());

    // The reverted job gets different data for the same hours; then it is closed and reopened
    // (a second replay) to check the superseded input stays skipped.
    run(client, "reverted", hours(30..40, 1.0)).await;
    run(client, "reverted", hours(40..44, 1.5)).await;
    run(client, "straight", hours(0..30, 1.0)).await;
    run(client, "straight", hours(30..40, 1.0)).await;
    run(client, "straight", hours(40..44, 1.5)).await;
    // Snapshot ids keep increasing after a revert: no new snapshot replaced an old one.
    let mut ids = snapshot_ids(client, "reverted").await;
    assert_eq!(ids.len(), 4, "{ids:?}");
    ids.dedup();
    assert_eq!(ids.len(), 4, "{ids:?}");
    let got = results(client, "reverted").await;
    assert!(got.len() > 44, "{} results", got.len());
    assert_eq!(got, results(client, "straight").await);
    server.stop().await;
}

#[tokio::test]
async fn without_deleting_intervening_results_the_old_results_stay_until_replaced() {
    let server = TestServer::start().await;
    let client = &server.client;
    put_job(client, "keep", &job_config()).await;
    run(client, "keep", hours(0..10, 1.0)).await;
    let first = snapshot_ids(client, "keep").await.remove(0);
    run(client, "keep", hours(10..20, 1.0)).await;
    ok(client
        .post_json(
            &format!("{BASE}/keep/model_snapshots/{first}/_revert"),
            &json!({}),
        )
        .await)
    .await;
    let buckets = ok(client.get(&format!("{BASE}/keep/results/buckets")).await).await;
    // Hours 0..19 (hour 19's bucket is still open).
    assert_eq!(buckets["count"], 19);
    server.stop().await;
}

#[tokio::test]
async fn snapshot_rules_and_messages() {
    let server = TestServer::start().await;
    let client = &server.client;
    put_job(client, "s", &job_config()).await;
    let missing = client.get(&format!("{BASE}/s/model_snapshots/123")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.es_error().1,
        "No model snapshot with id [123] exists for job [s]"
    );
    run(client, "s", hours(0..5, 1.0)).await;
    let id = snapshot_ids(client, "s").await.remove(0);
    let active = client
        .delete(&format!("{BASE}/s/model_snapshots/{id}"))
        .await;
    assert_eq!(active.status, 400);
    assert_eq!(
        active.es_error().1,
        format!("Model snapshot '{id}' is the active snapshot for job 's', so cannot be deleted")
    );
    ok(client.post(&format!("{BASE}/s/_open")).await).await;
    let open = client
        .post(&format!("{BASE}/s/model_snapshots/{id}/_revert"))
        .await;
    assert_eq!(open.status, 409);
    assert_eq!(
        open.es_error().1,
        "Can only revert to a model snapshot when the job is closed."
    );
    // Snapshot edits work on an open job (through its actor).
    let updated = client
        .post_json(
            &format!("{BASE}/s/model_snapshots/{id}/_update"),
            &json!({"description": "first", "retain": true}),
        )
        .await;
    let updated = ok(updated).await;
    assert_eq!(updated["model"]["retain"], true);
    let listed = ok(client
        .get(&format!(
            "{BASE}/s/model_snapshots?start=0&end=now&from=0&size=1"
        ))
        .await)
    .await;
    assert_eq!(listed["count"], 1);
    assert_eq!(listed["model_snapshots"][0]["description"], "first");
    ok(client.post(&format!("{BASE}/s/_close")).await).await;
    let upgraded = ok(client
        .post(&format!(
            "{BASE}/s/model_snapshots/{id}/_upgrade?wait_for_completion=true"
        ))
        .await)
    .await;
    assert_eq!(upgraded["completed"], true);
    ok(client.post(&format!("{BASE}/s/_open")).await).await;
    let none = ok(client
        .get(&format!("{BASE}/s/model_snapshots?end=1000"))
        .await)
    .await;
    assert_eq!(none["count"], 0);
    // The close above wrote a newer snapshot: that one is active now.
    let job = ok(client.get(&format!("{BASE}/s")).await).await;
    let active = job["jobs"][0]["model_snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(active, id);
    let upgrade = client
        .post(&format!("{BASE}/s/model_snapshots/{active}/_upgrade"))
        .await;
    assert_eq!(upgrade.status, 400, "the active snapshot of an open job");
    let stats = ok(client
        .get(&format!("{BASE}/s/model_snapshots/{id}/_upgrade/_stats"))
        .await)
    .await;
    assert_eq!(stats, json!({"count": 0, "model_snapshot_upgrades": []}));
    let reset = client.post(&format!("{BASE}/s/_reset")).await;
    assert_eq!(reset.status, 409);
    assert_eq!(
        reset.es_error().1,
        "Can only reset a job when it is closed."
    );
    server.stop().await;
}

#[tokio::test]
async fn update_job_rules() {
    let server = TestServer::start().await;
    let client = &server.client;
    put_job(client, "u", &job_config()).await;
    let updated = ok(client
        .post_json(
            &format!("{BASE}/u/_update"),
            &json!({"description": "d", "analysis_limits": {"model_memory_limit": "2gb"},
                    "background_persist_interval": "2h", "custom_settings": {"a": 1},
                    "detectors": [{"detector_index": 0, "description": "mean rt"}]}),
        )
        .await)
    .await;
    assert_eq!(updated["analysis_limits"]["model_memory_limit"], "2048mb");
    assert_eq!(updated["background_persist_interval"], "2h");
    assert_eq!(
        updated["analysis_config"]["detectors"][0]["detector_description"],
        "mean rt"
    );
    assert_eq!(
        ok(client.get(&format!("{BASE}/u")).await).await["jobs"][0],
        updated
    );

    let unknown = client
        .post_json(&format!("{BASE}/u/_update"), &json!({"bucket_span": "2h"}))
        .await;
    assert_eq!(unknown.status, 400);
    assert_eq!(
        unknown.es_error(),
        (
            "x_content_parse_exception".to_string(),
            "[job_update] unknown field [bucket_span]".to_string()
        )
    );
    let daily = client
        .post_json(
            &format!("{BASE}/u/_update"),
            &json!({"model_snapshot_retention_days": 3, "daily_model_snapshot_retention_after_days": 4}),
        )
        .await;
    assert_eq!(daily.es_error().1, "The value of daily_model_snapshot_retention_after_days [4] cannot be greater than model_snapshot_retention_days [3]");
    ok(client.post(&format!("{BASE}/u/_open")).await).await;
    let limits = client
        .post_json(
            &format!("{BASE}/u/_update"),
            &json!({"analysis_limits": {"model_memory_limit": "100mb"}}),
        )
        .await;
    assert_eq!(limits.status, 409);
    assert_eq!(
        limits.es_error().1,
        "Cannot update analysis_limits while the job is open"
    );
    // Other fields may change while open.
    let open_update = client
        .post_json(&format!("{BASE}/u/_update"), &json!({"groups": ["g1"]}))
        .await;
    assert_eq!(ok(open_update).await["groups"], json!(["g1"]));
    assert_eq!(
        ok(client.get(&format!("{BASE}/g1")).await).await["count"],
        1
    );
    server.stop().await;
}

#[tokio::test]
async fn results_retention_and_reset() {
    let server = TestServer::start().await;
    let client = &server.client;
    let mut config = job_config();
    config["results_retention_days"] = json!(1);
    put_job(client, "r", &config).await;
    run(client, "r", hours(0..72, 1.0)).await;
    let before = ok(client
        .get(&format!("{BASE}/r/results/buckets?size=1000"))
        .await)
    .await;
    // Close finalizes nothing: the bucket of hour 71 is still open.
    assert_eq!(before["count"], 71);
    let deleted = ok(client.delete("/_ml/_delete_expired_data/r").await).await;
    assert_eq!(deleted, json!({"deleted": true}));
    let after = ok(client
        .get(&format!("{BASE}/r/results/buckets?size=1000"))
        .await)
    .await;
    // The latest bucket starts at hour 70; a day before that is hour 46.
    assert_eq!(after["count"], 25);
    assert_eq!(after["buckets"][0]["timestamp"], (START + 46 * HOUR) * 1000);
    ok(client.post(&format!("{BASE}/r/_reset")).await).await;
    let empty = ok(client.get(&format!("{BASE}/r/results/buckets")).await).await;
    assert_eq!(empty["count"], 0);
    assert!(snapshot_ids(client, "r").await.is_empty());
    let stats = ok(client.get(&format!("{BASE}/r/_stats")).await).await;
    assert_eq!(stats["jobs"][0]["data_counts"]["processed_record_count"], 0);
    // A reset job starts over: the same data gives the same first results.
    run(client, "r", hours(0..3, 1.0)).await;
    let again = ok(client.get(&format!("{BASE}/r/results/buckets")).await).await;
    assert_eq!(again["count"], 2);
    server.stop().await;
}

#[tokio::test]
async fn cat_table_text_and_json() {
    let server = TestServer::start().await;
    let client = &server.client;
    put_job(client, "cat-b", &job_config()).await;
    put_job(client, "cat-a", &job_config()).await;
    run(client, "cat-b", hours(0..2, 1.0)).await;
    let text = client
        .get("/_cat/ml/anomaly_detectors?v&h=id,state,dpr&s=dpr:desc")
        .await;
    assert_eq!(text.status, 200);
    assert!(text
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/plain")));
    assert_eq!(
        text.text(),
        "id    state  data.processed_records\ncat-b closed                     36\ncat-a closed                      0\n"
    );
    let json = ok(client
        .get("/_cat/ml/anomaly_detectors/cat-a?format=json&bytes=b")
        .await)
    .await;
    assert_eq!(
        json,
        json!([{"id": "cat-a", "state": "closed", "data.processed_records": "0",
                "model.bytes": "0", "model.memory_status": "ok", "forecasts.total": "0",
                "buckets.count": "0"}])
    );
    let bad = client.get("/_cat/ml/anomaly_detectors?h=nope").await;
    assert_eq!(bad.status, 400);
    server.stop().await;
}

#[tokio::test]
async fn scheduled_events_suppress_the_results_of_the_buckets_they_cover() {
    let server = TestServer::start().await;
    let client = &server.client;
    let mut config = job_config();
    config["groups"] = json!(["planned"]);
    put_job(client, "ev", &config).await;
    ok(client
        .put_json("/_ml/calendars/outages", &json!({"job_ids": ["planned"]}))
        .await)
    .await;
    let events = json!({"events": [
        {"description": "maintenance", "start_time": (START + 10 * HOUR) * 1000,
         "end_time": (START + 12 * HOUR) * 1000},
        {"description": "scored, not learnt", "start_time": (START + 15 * HOUR) * 1000,
         "end_time": (START + 16 * HOUR) * 1000, "skip_result": false}
    ]});
    let posted = ok(client
        .post_json("/_ml/calendars/outages/events", &events)
        .await)
    .await;
    assert_eq!(posted["events"][1]["skip_model_update"], true);
    run(client, "ev", hours(0..20, 1.0)).await;
    let buckets = ok(client
        .get(&format!("{BASE}/ev/results/buckets?size=100"))
        .await)
    .await;
    let stamps: Vec<i64> = buckets["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["timestamp"].as_i64().unwrap() / 1000 - START) / HOUR)
        .collect();
    // Hour 19's bucket is still open: close finalizes nothing.
    let expected: Vec<i64> = (0..19).filter(|h| *h != 10 && *h != 11).collect();
    assert_eq!(stamps, expected);
    // Reopening replays nothing new and keeps the events in force: same results.
    ok(client.post(&format!("{BASE}/ev/_open")).await).await;
    ok(client.post(&format!("{BASE}/ev/_close")).await).await;
    let again = ok(client
        .get(&format!("{BASE}/ev/results/buckets?size=100"))
        .await)
    .await;
    assert_eq!(again["count"], buckets["count"]);
    server.stop().await;
}
