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

fn bucket_times_and_counts(buckets: &Value) -> Vec<(i64, u64)> {
    buckets["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["timestamp"].as_i64().unwrap(),
                b["event_count"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Elasticsearch's own REST test "Test flush with skip_time" (post_data.yml), then what a close
/// must keep: the bucket of the last records is still open at close, it is not finalized, and
/// after the next open the flush answers what it did before, the open bucket takes late records,
/// and interim results cover it.
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
    let dropped = post_ndjson(
        &server,
        "skipper",
        airline_records(&[1403488600, 1403488700]),
    )
    .await;
    assert_eq!(dropped["out_of_order_timestamp_count"], 2);
    assert_eq!(dropped["processed_record_count"], 0);
    post_ndjson(
        &server,
        "skipper",
        airline_records(&[1403488900, 1403492400]),
    )
    .await;
    let before_close = flush(&server, "skipper", json!({})).await;
    assert_eq!(before_close["last_finalized_bucket_end"], 1403492400000i64);
    let closed = server.post(&format!("{BASE}/skipper/_close")).await;
    assert_eq!(closed.json(), json!({"closed": true}));
    let buckets = server
        .get(&format!("{BASE}/skipper/results/buckets"))
        .await
        .json();
    assert_eq!(buckets["count"], 2, "{buckets}");
    assert_eq!(
        bucket_times_and_counts(&buckets),
        vec![(1403481600000, 1), (1403488800000, 1)]
    );
    assert_eq!(buckets["buckets"][0]["bucket_span"], 3600);
    assert_eq!(buckets["buckets"][0]["result_type"], "bucket");
    let snapshot = &server
        .get(&format!("{BASE}/skipper/model_snapshots"))
        .await
        .json()["model_snapshots"][0];
    assert_eq!(snapshot["latest_record_time_stamp"], 1403492400000i64);
    assert_eq!(snapshot["latest_result_time_stamp"], 1403488800000i64);
    assert_eq!(snapshot["model_size_stats"]["timestamp"], 1403488800000i64);

    server.post(&format!("{BASE}/skipper/_open")).await;
    assert_eq!(flush(&server, "skipper", json!({})).await, before_close);
    let late = post_ndjson(&server, "skipper", airline_records(&[1403492500])).await;
    assert_eq!(late["processed_record_count"], 1, "{late}");
    assert_eq!(late["out_of_order_timestamp_count"], 0);
    flush(&server, "skipper", json!({"calc_interim": true})).await;
    let interim = server
        .get(&format!(
            "{BASE}/skipper/results/buckets?start=1403492400000"
        ))
        .await
        .json();
    assert_eq!(interim["count"], 1, "{interim}");
    assert_eq!(interim["buckets"][0]["is_interim"], true);
    assert_eq!(
        interim["buckets"][0]["event_count"], 2,
        "both records of the open bucket"
    );
    // Finalized, the open bucket holds its records from before and after the close.
    flush(&server, "skipper", json!({"advance_time": "1403496000"})).await;
    let all = server
        .get(&format!("{BASE}/skipper/results/buckets"))
        .await
        .json();
    assert_eq!(
        bucket_times_and_counts(&all),
        vec![(1403481600000, 1), (1403488800000, 1), (1403492400000, 2)]
    );
    assert_eq!(all["buckets"][2]["is_interim"], false);
}

/// Each `_data` answer holds the counts of that request alone (ES's `incrementalStats()`);
/// `_stats` holds the running totals.
#[tokio::test]
async fn data_answers_the_counts_of_its_own_request() {
    let server = TestServer::start().await;
    create_and_open(&server, "counted", &airline_job()).await;
    let six = |from: i64| airline_records(&(0..6).map(|i| from + i * 60).collect::<Vec<_>>());
    let first_body = six(1403481600);
    let first = post_ndjson(&server, "counted", first_body.clone()).await;
    assert_eq!(first["processed_record_count"], 6);
    assert_eq!(first["input_bytes"], first_body.len());
    assert_eq!(first["earliest_record_timestamp"], 1403481600000i64);
    assert!(first.get("log_time").is_none(), "{first}");
    let second_body = six(1403485200);
    let second = post_ndjson(&server, "counted", second_body.clone()).await;
    assert_eq!(second["processed_record_count"], 6, "{second}");
    assert_eq!(second["input_record_count"], 6);
    assert_eq!(second["input_bytes"], second_body.len());
    assert_eq!(second["processed_field_count"], 12);
    assert_eq!(
        second["latest_record_timestamp"],
        (1403485200i64 + 300) * 1000
    );
    assert!(
        second.get("earliest_record_timestamp").is_none(),
        "{second}"
    );
    assert!(second.get("log_time").is_none());
    // The first record's bucket is counted once the second request moved past it.
    assert_eq!(second["bucket_count"], 1);
    let empty = post_ndjson(&server, "counted", String::new()).await;
    for counter in [
        "processed_record_count",
        "input_bytes",
        "input_record_count",
        "input_field_count",
        "bucket_count",
        "invalid_date_count",
        "missing_field_count",
    ] {
        assert_eq!(empty[counter], 0, "{counter}: {empty}");
    }
    assert!(empty.get("latest_record_timestamp").is_none());
    // A record without the time field misses an input field and has no valid date.
    let timeless = post_ndjson(
        &server,
        "counted",
        "{\"airline\":\"AAL\",\"responsetime\":1}\n".to_string(),
    )
    .await;
    assert_eq!(
        (
            timeless["invalid_date_count"].as_u64(),
            timeless["missing_field_count"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let stats = server.get(&format!("{BASE}/counted/_stats")).await.json();
    let totals = &stats["jobs"][0]["data_counts"];
    assert_eq!(totals["processed_record_count"], 12);
    assert_eq!(totals["input_record_count"], 13);
    assert_eq!(totals["earliest_record_timestamp"], 1403481600000i64);
    assert_eq!(
        totals["input_bytes"],
        first_body.len() + second_body.len() + "{\"airline\":\"AAL\",\"responsetime\":1}\n".len()
    );
    assert!(totals["log_time"].is_i64(), "{totals}");
}

/// Bucket diagnostics come from record times: lead buckets before the first record and an
/// `advance_time` over time without records add none; a gap between records adds empty ones.
#[tokio::test]
async fn bucket_counts_follow_record_times() {
    let server = TestServer::start().await;
    let mut config = airline_job();
    config["analysis_config"]["latency"] = json!("2h");
    create_and_open(&server, "diag", &config).await;
    post_ndjson(&server, "diag", airline_records(&[1403481600])).await;
    flush(&server, "diag", json!({"advance_time": "1403510400"})).await;
    let stats = server.get(&format!("{BASE}/diag/_stats")).await.json();
    let counts = &stats["jobs"][0]["data_counts"];
    assert_eq!(counts["bucket_count"], 0, "{counts}");
    assert_eq!(counts["empty_bucket_count"], 0);
    let later = post_ndjson(
        &server,
        "diag",
        airline_records(&[1403510400 + 60, 1403510400 + 3600 * 3]),
    )
    .await;
    // Counted: the first record's bucket, 7 empty ones, 1403510400 (1 record) and the 2 empty
    // ones after it; the bucket of the latest record stays open.
    assert_eq!(later["bucket_count"], 11, "{later}");
    assert_eq!(later["empty_bucket_count"], 9);
    assert_eq!(later["latest_bucket_timestamp"], 1403510400000i64);
    assert_eq!(
        later["latest_empty_bucket_timestamp"],
        (1403510400i64 + 2 * 3600) * 1000
    );
}

/// Elasticsearch reads the flush parameters from the body when there is one: the same names in
/// the query string then are unrecognized.
#[tokio::test]
async fn flush_parameters_in_the_query_are_refused_when_a_body_is_given() {
    let server = TestServer::start().await;
    create_and_open(&server, "both", &airline_job()).await;
    let reply = server
        .post_json(
            &format!("{BASE}/both/_flush?advance_time=1403481600"),
            &json!({"calc_interim": true}),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.es_error(),
        (
            "illegal_argument_exception".to_string(),
            "request [/_ml/anomaly_detectors/both/_flush] contains unrecognized parameter: [advance_time]"
                .to_string()
        )
    );
    // Either style alone is served.
    let query = server
        .post(&format!("{BASE}/both/_flush?advance_time=1403481600"))
        .await;
    assert_eq!(query.status, 200, "{}", query.text());
    assert_eq!(
        flush(&server, "both", json!({"advance_time": "1403485200"})).await["flushed"],
        true
    );
    // start/end are parsed and ordered before the calc_interim check, as in Elasticsearch.
    let bad = server
        .post_json(&format!("{BASE}/both/_flush"), &json!({"start": "soon"}))
        .await;
    assert_eq!(bad.es_error().0, "parse_exception");
    // `_flush` and `_data` on a job that does not exist, or on a wildcard: 409 "not open".
    for id in ["nope", "bo*"] {
        let flushed = server.post(&format!("{BASE}/{id}/_flush")).await;
        assert_eq!(flushed.status, 409, "{}", flushed.text());
        assert_eq!(
            flushed.es_error(),
            (
                "status_exception".to_string(),
                format!("Cannot perform requested action because job [{id}] is not open")
            )
        );
        let posted = server
            .post_raw(
                &format!("{BASE}/{id}/_data"),
                "application/x-ndjson",
                "{}\n",
            )
            .await;
        assert_eq!(posted.status, 409);
    }
}

/// A first `advance_time` honours latency as a first record does: the records of the latency
/// window before it are in order.
#[tokio::test]
async fn a_first_advance_time_leaves_the_latency_window_open() {
    let server = TestServer::start().await;
    let mut config = airline_job();
    config["analysis_config"]["latency"] = json!("2h");
    create_and_open(&server, "early", &config).await;
    let flushed = flush(&server, "early", json!({"advance_time": "1403488800"})).await;
    assert_eq!(
        flushed["last_finalized_bucket_end"],
        (1403488800i64 - 7200) * 1000
    );
    let counts = post_ndjson(&server, "early", airline_records(&[1403481600 + 60])).await;
    assert_eq!(counts["processed_record_count"], 1, "{counts}");
    assert_eq!(counts["out_of_order_timestamp_count"], 0);
}

/// Records from the latest record's bucket minus latency on are accepted (a superset of
/// Elasticsearch's `latest - latency`); older ones are out of order, never processed.
#[tokio::test]
async fn out_of_order_accepts_the_latest_bucket_minus_latency() {
    let server = TestServer::start().await;
    let mut config = airline_job();
    config["analysis_config"]["latency"] = json!("1h");
    create_and_open(&server, "late", &config).await;
    let t = 1403492400;
    post_ndjson(&server, "late", airline_records(&[t + 1800])).await;
    // Within the latest record's bucket, and within latency before it: accepted.
    let counts = post_ndjson(&server, "late", airline_records(&[t + 10, t - 3600 + 5])).await;
    assert_eq!(counts["processed_record_count"], 2, "{counts}");
    // Three buckets on, the watermark is at t + 2h (ES's own rule would stop at t + 2h30m).
    post_ndjson(&server, "late", airline_records(&[t + 3 * 3600 + 1800])).await;
    let counts = post_ndjson(
        &server,
        "late",
        airline_records(&[t + 2 * 3600 + 1, t + 3599]),
    )
    .await;
    assert_eq!(counts["processed_record_count"], 1, "{counts}");
    assert_eq!(counts["out_of_order_timestamp_count"], 1);
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
    assert_eq!(counts["processed_record_count"], 2);
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
    // Counted from record times (ES's bucket diagnostics): the latest record's bucket is not yet.
    assert_eq!(counts["bucket_count"], 71);
}
