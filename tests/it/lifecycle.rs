//! The job workflow over HTTP: create, open, post, flush, read results, close, reopen, delete, and
//! the worked examples of the Elasticsearch docs (`shared/es-api/NOTES.md`).

use serde_json::{json, Value};

use crate::util::{Client, TestServer};

const BASE: &str = "/_ml/anomaly_detectors";

fn airline_job() -> Value {
    json!({
        "analysis_config": {"bucket_span": "1h", "detectors": [
            {"function": "metric", "field_name": "responsetime", "by_field_name": "airline"}]},
        "data_description": {"time_field": "time", "time_format": "epoch"}
    })
}

async fn create_and_open(client: &Client, job_id: &str, config: &Value) {
    let put = client.put_json(&format!("{BASE}/{job_id}"), config).await;
    assert_eq!(put.status, 200, "{}", put.text());
    let open = client.post(&format!("{BASE}/{job_id}/_open")).await;
    assert_eq!(open.status, 200, "{}", open.text());
    assert_eq!(open.json()["opened"], true);
}

fn airline_records(times: &[i64]) -> String {
    times
        .iter()
        .map(|t| format!("{{\"time\":{t},\"airline\":\"AAL\",\"responsetime\":132.2}}\n"))
        .collect()
}

async fn post_ndjson(client: &Client, job_id: &str, body: String) -> Value {
    let reply = client
        .post_raw(
            &format!("{BASE}/{job_id}/_data"),
            "application/x-ndjson",
            body,
        )
        .await;
    assert!(
        reply.status == 202 || reply.status == 200,
        "{}",
        reply.text()
    );
    reply.json()
}

async fn flush(client: &Client, job_id: &str, body: Value) -> Value {
    let reply = client
        .post_json(&format!("{BASE}/{job_id}/_flush"), &body)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

#[tokio::test]
async fn worked_example_data_counts_and_flush() {
    let server = TestServer::start().await;
    create_and_open(&server, "it-ops-1", &airline_job()).await;
    // The body of Elasticsearch's own example: four fields a record, the time as a string.
    let body = concat!(
        r#"{"airline":"AAL","responsetime":"132.2046","sourcetype":"farequote","time":"1403481600"}"#,
        "\n",
        r#"{"airline":"JZA","responsetime":"990.4628","sourcetype":"farequote","time":"1403481700"}"#,
    );
    let counts = post_ndjson(&server, "it-ops-1", body.to_string()).await;
    assert_eq!(counts["job_id"], "it-ops-1");
    assert_eq!(counts["processed_record_count"], 2);
    assert_eq!(counts["processed_field_count"], 4);
    assert_eq!(counts["input_field_count"], 6);
    let bytes = counts["input_bytes"].as_u64().unwrap();
    assert!((140..=180).contains(&bytes), "input_bytes {bytes}");
    assert_eq!(counts["earliest_record_timestamp"], 1403481600000i64);
    assert_eq!(counts["latest_record_timestamp"], 1403481700000i64);
    assert_eq!(
        flush(&server, "it-ops-1", json!({})).await,
        json!({"flushed": true, "last_finalized_bucket_end": 1403481600000i64})
    );
}

#[tokio::test]
async fn worked_example_skip_time_and_close() {
    let server = TestServer::start().await;
    create_and_open(&server, "skipper", &airline_job()).await;
    post_ndjson(
        &server,
        "skipper",
        airline_records(&[1403481600, 1403485200]),
    )
    .await;
    let flushed = flush(&server, "skipper", json!({"skip_time": "1403488700"})).await;
    assert_eq!(flushed["last_finalized_bucket_end"], 1403488800000i64);
    post_ndjson(&server, "skipper", airline_records(&[1403488800])).await;
    let closed = server.post(&format!("{BASE}/skipper/_close")).await;
    assert_eq!(closed.json(), json!({"closed": true}));
    let buckets = server
        .get(&format!("{BASE}/skipper/results/buckets"))
        .await
        .json();
    assert_eq!(buckets["count"], 2);
    let got: Vec<(i64, u64)> = buckets["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["timestamp"].as_i64().unwrap(),
                b["event_count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, vec![(1403481600000, 1), (1403488800000, 1)]);
    assert_eq!(buckets["buckets"][0]["bucket_span"], 3600);
    assert_eq!(buckets["buckets"][0]["result_type"], "bucket");
}

#[tokio::test]
async fn seed_example_advance_time_in_seconds() {
    let server = TestServer::start().await;
    let config = json!({
        "analysis_config": {"bucket_span": "1h", "detectors": [{"function": "count"}]},
        "data_description": {"time_field": "timestamp", "time_format": "epoch_ms"}
    });
    create_and_open(&server, "total-requests", &config).await;
    let flushed = flush(&server, "total-requests", json!({})).await;
    assert_eq!(
        flushed,
        json!({"flushed": true}),
        "no data yet: no watermark"
    );
    let body = "{\"timestamp\":1514790000000}\n{\"timestamp\":1514793600000}\n";
    post_ndjson(&server, "total-requests", body.to_string()).await;
    let flushed = flush(
        &server,
        "total-requests",
        json!({"advance_time": "1514804400"}),
    )
    .await;
    assert_eq!(
        flushed,
        json!({"flushed": true, "last_finalized_bucket_end": 1514804400000i64})
    );
    // The 7.x clients send the same in the query string.
    let reply = server
        .post(&format!(
            "{BASE}/total-requests/_flush?advance_time=1514808000"
        ))
        .await;
    assert_eq!(reply.json()["last_finalized_bucket_end"], 1514808000000i64);
}

#[tokio::test]
async fn json_array_and_concatenated_bodies() {
    let server = TestServer::start().await;
    create_and_open(&server, "shapes", &airline_job()).await;
    let array = json!([
        {"time": 1403481600, "airline": "AAL", "responsetime": 10.0},
        {"time": 1403481660, "airline": "AAL", "responsetime": 11.0}
    ]);
    let counts = server
        .post_json(&format!("{BASE}/shapes/_data"), &array)
        .await
        .json();
    assert_eq!(counts["processed_record_count"], 2);
    let concatenated = "{\"time\":1403481700,\"airline\":\"AAL\",\"responsetime\":1}{\"time\":1403481701,\"airline\":\"AAL\",\"responsetime\":2}";
    let counts = server
        .post_raw(
            &format!("{BASE}/shapes/_data"),
            "application/json",
            concatenated,
        )
        .await
        .json();
    assert_eq!(counts["processed_record_count"], 4);
}

#[tokio::test]
async fn malformed_body_is_rejected_whole_and_says_which_line() {
    let server = TestServer::start().await;
    create_and_open(&server, "strict", &airline_job()).await;
    let body = "{\"time\":1403481600,\"airline\":\"AAL\",\"responsetime\":1}\n{\"time\":1403481601,\"airline\":\"AAL\",\"responsetime\":2}\n{\"time\": oops}\n";
    let reply = server
        .post_raw(
            &format!("{BASE}/strict/_data"),
            "application/x-ndjson",
            body,
        )
        .await;
    assert_eq!(reply.status, 400);
    let (_, reason) = reply.es_error();
    assert!(reason.contains("line [3]"), "{reason}");
    let stats = server.get(&format!("{BASE}/strict/_stats")).await.json();
    assert_eq!(stats["jobs"][0]["data_counts"]["input_record_count"], 0);
}

#[tokio::test]
async fn lifecycle_and_its_errors() {
    let server = TestServer::start().await;
    let put = server
        .put_json(&format!("{BASE}/life"), &airline_job())
        .await
        .json();
    assert_eq!(put["job_id"], "life");
    assert_eq!(put["analysis_config"]["detectors"][0]["detector_index"], 0);
    assert_eq!(
        put["analysis_config"]["detectors"][0]["detector_description"],
        "metric(responsetime) by airline"
    );
    let again = server
        .put_json(&format!("{BASE}/life"), &airline_job())
        .await;
    assert_eq!(
        again.es_error(),
        (
            "resource_already_exists_exception".to_string(),
            "The job cannot be created with the Id 'life'. The Id is already used.".to_string()
        )
    );
    let missing = server.get(&format!("{BASE}/nope")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.es_error().1, "No known job with id 'nope'");
    let not_open = server
        .post_raw(
            &format!("{BASE}/life/_data"),
            "application/x-ndjson",
            airline_records(&[1]),
        )
        .await;
    assert_eq!(not_open.status, 409);
    assert_eq!(
        not_open.es_error(),
        (
            "status_exception".to_string(),
            "Cannot perform requested action because job [life] is not open".to_string()
        )
    );
    server.post(&format!("{BASE}/life/_open")).await;
    let stats = server.get(&format!("{BASE}/life/_stats")).await.json();
    assert_eq!(stats["count"], 1);
    let job = &stats["jobs"][0];
    assert_eq!(job["state"], "opened");
    assert!(job["open_time"].as_str().unwrap().ends_with('s'));
    assert!(job["node"]["id"].is_string());
    assert_eq!(job["timing_stats"]["job_id"], "life");
    let delete = server.delete(&format!("{BASE}/life")).await;
    assert_eq!(delete.status, 409);
    assert_eq!(
        delete.es_error().1,
        "Cannot delete job [life] because the job is opened"
    );
    let closed = server.post(&format!("{BASE}/life/_close")).await.json();
    assert_eq!(closed, json!({"closed": true}));
    let closed_again = server.post(&format!("{BASE}/life/_close")).await.json();
    assert_eq!(closed_again, json!({"closed": true}));
    let stats = server.get(&format!("{BASE}/life/_stats")).await.json();
    assert_eq!(stats["jobs"][0]["state"], "closed");
    let job = server.get(&format!("{BASE}/life")).await.json();
    assert!(
        job["jobs"][0]["model_snapshot_id"].is_string(),
        "close wrote the active snapshot: {job}"
    );
    let deleted = server.delete(&format!("{BASE}/life")).await.json();
    assert_eq!(deleted, json!({"acknowledged": true}));
    assert_eq!(server.get(&format!("{BASE}/life")).await.status, 404);
}

#[tokio::test]
async fn get_jobs_by_wildcard_group_and_all() {
    let server = TestServer::start().await;
    for (id, group) in [
        ("web-a", "frontend"),
        ("web-b", "frontend"),
        ("db-a", "backend"),
    ] {
        let mut config = airline_job();
        config["groups"] = json!([group]);
        assert_eq!(
            server
                .put_json(&format!("{BASE}/{id}"), &config)
                .await
                .status,
            200
        );
    }
    let ids = |v: Value| -> Vec<String> {
        v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["job_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        ids(server.get(&format!("{BASE}/web-*")).await.json()),
        ["web-a", "web-b"]
    );
    assert_eq!(
        ids(server.get(&format!("{BASE}/frontend")).await.json()),
        ["web-a", "web-b"]
    );
    assert_eq!(
        ids(server.get(&format!("{BASE}/_all")).await.json()),
        ["db-a", "web-a", "web-b"]
    );
    assert_eq!(
        ids(server.get(BASE).await.json()),
        ["db-a", "web-a", "web-b"]
    );
    assert_eq!(
        ids(server.get(&format!("{BASE}/db-a,web-b")).await.json()),
        ["db-a", "web-b"]
    );
    assert_eq!(server.get(&format!("{BASE}/zzz*")).await.json()["count"], 0);
    let strict = server
        .get(&format!("{BASE}/zzz*?allow_no_match=false"))
        .await;
    assert_eq!(strict.status, 404);
    // Close by wildcard, including jobs that are already closed.
    server.post(&format!("{BASE}/web-a/_open")).await;
    let closed = server.post(&format!("{BASE}/web-*/_close")).await.json();
    assert_eq!(closed, json!({"closed": true}));
}

/// Hourly data for three airlines with one clear spike, as NDJSON lines.
fn day_of_flights(hours: std::ops::Range<i64>, spike_hour: i64) -> Vec<String> {
    let mut lines = Vec::new();
    for hour in hours {
        for k in 0..4i64 {
            for (a, airline) in ["AAL", "JZA", "KLM"].iter().enumerate() {
                let t = 1403481600 + hour * 3600 + k * 900 + a as i64;
                let noise = ((hour * 17 + k * 5 + a as i64 * 3) % 11) as f64;
                let value = if hour == spike_hour && *airline == "KLM" {
                    2000.0
                } else {
                    100.0 + noise
                };
                lines.push(format!(
                    "{{\"time\":{t},\"airline\":\"{airline}\",\"responsetime\":{value}}}"
                ));
            }
        }
    }
    lines
}

#[tokio::test]
async fn results_find_the_spike_and_survive_close_and_reopen() {
    let server = TestServer::start().await;
    let config = json!({
        "analysis_config": {"bucket_span": "1h", "detectors": [
            {"function": "mean", "field_name": "responsetime", "by_field_name": "airline"}],
            "influencers": ["airline"]},
        "data_description": {"time_field": "time", "time_format": "epoch"}
    });
    create_and_open(&server, "flights", &config).await;
    let lines = day_of_flights(0..72, 60);
    let (first, second) = lines.split_at(lines.len() / 2);
    post_ndjson(&server, "flights", first.join("\n")).await;
    server.post(&format!("{BASE}/flights/_close")).await;
    server.post(&format!("{BASE}/flights/_open")).await;
    post_ndjson(&server, "flights", second.join("\n")).await;
    flush(
        &server,
        "flights",
        json!({"advance_time": (1403481600i64 + 72 * 3600).to_string()}),
    )
    .await;

    let records = server
        .post_json(
            &format!("{BASE}/flights/results/records"),
            &json!({"record_score": 50, "sort": "record_score", "desc": true}),
        )
        .await
        .json();
    let top = &records["records"][0];
    assert_eq!(top["by_field_value"], "KLM", "{records}");
    assert_eq!(top["airline"], json!(["KLM"]));
    assert_eq!(top["function"], "mean");
    assert_eq!(top["timestamp"], (1403481600i64 + 60 * 3600) * 1000);
    assert_eq!(top["actual"][0].as_f64().unwrap(), 2000.0);
    assert!(top["typical"][0].as_f64().unwrap() < 200.0);
    assert_eq!(top["record_score"], top["initial_record_score"]);

    let buckets = server
        .get(&format!(
            "{BASE}/flights/results/buckets?anomaly_score=50&expand=true"
        ))
        .await
        .json();
    assert_eq!(buckets["count"], 1, "{buckets}");
    assert_eq!(buckets["buckets"][0]["records"][0]["by_field_value"], "KLM");
    let page = server
        .get(&format!(
            "{BASE}/flights/results/buckets?from=10&size=5&desc=true"
        ))
        .await
        .json();
    assert_eq!(page["count"], 72);
    assert_eq!(page["buckets"].as_array().unwrap().len(), 5);
    assert_eq!(
        page["buckets"][0]["timestamp"],
        (1403481600i64 + 61 * 3600) * 1000
    );
    let one = server
        .get(&format!(
            "{BASE}/flights/results/buckets/{}",
            (1403481600i64 + 60 * 3600) * 1000
        ))
        .await
        .json();
    assert_eq!(one["count"], 1);
    let stats = server.get(&format!("{BASE}/flights/_stats")).await.json();
    let counts = &stats["jobs"][0]["data_counts"];
    assert_eq!(counts["processed_record_count"], lines.len());
    assert_eq!(counts["bucket_count"], 72);
}
