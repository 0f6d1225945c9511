//! Forecasts over HTTP: a daily pattern carried forward, the forecast's documents and stats, the
//! errors Elasticsearch gives, deletes, expiry, and forecasts surviving close/open and restarts
//! while leaving the model (and so every later result) untouched.

use serde_json::{json, Value};

use crate::util::{BinaryServer, Client, TestServer};

const HOUR: i64 = 3600;
const DAYS: i64 = 14;
const T0: i64 = 1_700_000_000 - 1_700_000_000 % 86_400;

fn job() -> Value {
    json!({
        "analysis_config": {"bucket_span": "1h", "detectors": [{"function": "mean", "field_name": "value"}]},
        "data_description": {"time_field": "time", "time_format": "epoch"}
    })
}

fn daily(h: i64) -> f64 {
    let phase = (h % 24) as f64 / 24.0;
    100.0 + 30.0 * (2.0 * std::f64::consts::PI * phase).sin()
}

/// Hourly values of a daily pattern plus a small deterministic wobble.
fn data(from: i64, hours: i64) -> String {
    (from..from + hours)
        .map(|h| {
            let value = daily(h) + ((h * 37) % 5) as f64 - 2.0;
            format!("{{\"time\":{},\"value\":{value}}}\n", T0 + h * HOUR + 60)
        })
        .collect()
}

fn path(job_id: &str) -> String {
    format!("/_ml/anomaly_detectors/{job_id}")
}

/// Creates and opens the job and feeds it `hours` hours, all finalized.
async fn trained(client: &Client, job_id: &str, hours: i64) {
    assert_eq!(client.put_json(&path(job_id), &job()).await.status, 200);
    assert_eq!(
        client.post(&format!("{}/_open", path(job_id))).await.status,
        200
    );
    feed(client, job_id, 0, hours).await;
}

async fn feed(client: &Client, job_id: &str, from: i64, hours: i64) {
    let posted = client
        .post_raw(
            &format!("{}/_data", path(job_id)),
            "application/x-ndjson",
            data(from, hours),
        )
        .await;
    assert_eq!(posted.status, 202, "{}", posted.text());
    let advance = json!({"advance_time": (T0 + (from + hours) * HOUR).to_string()});
    assert_eq!(
        client
            .post_json(&format!("{}/_flush", path(job_id)), &advance)
            .await
            .status,
        200
    );
}

async fn forecast(client: &Client, job_id: &str, body: Value) -> String {
    let reply = client
        .post_json(&format!("{}/_forecast", path(job_id)), &body)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let answer = reply.json();
    assert_eq!(answer["acknowledged"], true);
    answer["forecast_id"]
        .as_str()
        .expect("forecast_id")
        .to_string()
}

async fn rows(client: &Client, job_id: &str, forecast_id: &str, query: &str) -> Value {
    let reply = client
        .get(&format!(
            "{}/results/forecasts/{forecast_id}?{query}",
            path(job_id)
        ))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

async fn listed(client: &Client, job_id: &str) -> Vec<Value> {
    let reply = client
        .get(&format!("{}/results/forecasts", path(job_id)))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["forecasts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn forecasts_stats(client: &Client, job_id: &str) -> Value {
    client.get(&format!("{}/_stats", path(job_id))).await.json()["jobs"][0]["forecasts_stats"]
        .clone()
}

async fn error(
    client: &Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> (u16, String, String) {
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let reply = client.send(request).await;
    let (kind, reason) = reply.es_error();
    (reply.status, kind, reason)
}

#[tokio::test]
async fn a_daily_pattern_is_forecast_without_touching_the_model() {
    let server = TestServer::start().await;
    trained(&server, "daily", DAYS * 24).await;
    trained(&server, "control", DAYS * 24).await;
    let id = forecast(&server, "daily", json!({"duration": "2d"})).await;

    let body = rows(&server, "daily", &id, "size=100").await;
    assert_eq!(body["count"], 48);
    let forecast_rows = body["model_forecast"].as_array().unwrap();
    let start = (T0 + DAYS * 24 * HOUR) * 1000;
    for (k, row) in forecast_rows.iter().enumerate() {
        let h = DAYS * 24 + k as i64;
        assert_eq!(row["timestamp"], start + k as i64 * HOUR * 1000);
        assert_eq!(row["result_type"], "model_forecast");
        assert_eq!(row["forecast_id"], id.as_str());
        assert_eq!(row["bucket_span"], 3600);
        assert_eq!(row["model_feature"], "'arithmetic mean value by person'");
        let prediction = row["forecast_prediction"].as_f64().unwrap();
        assert!((prediction - daily(h)).abs() < 8.0, "{k}: {row}");
        assert!(row["forecast_lower"].as_f64().unwrap() < daily(h));
        assert!(row["forecast_upper"].as_f64().unwrap() > daily(h));
    }
    // Filters and paging work like the other results.
    let late = rows(
        &server,
        "daily",
        &id,
        &format!("start={}&desc=true&size=3", start + 40 * HOUR * 1000),
    )
    .await;
    assert_eq!(late["count"], 8);
    assert_eq!(
        late["model_forecast"][0]["timestamp"],
        start + 47 * HOUR * 1000
    );

    let stats = listed(&server, "daily").await;
    assert_eq!(stats.len(), 1);
    let s = &stats[0];
    assert_eq!(s["result_type"], "model_forecast_request_stats");
    assert_eq!(s["forecast_status"], "finished");
    assert_eq!(s["processed_record_count"], 48);
    assert_eq!(s["forecast_progress"], 1.0);
    assert_eq!(s["forecast_start_timestamp"], start);
    assert_eq!(s["forecast_end_timestamp"], start + 48 * HOUR * 1000);
    let created = s["forecast_create_timestamp"].as_i64().unwrap();
    assert_eq!(s["forecast_expiry_timestamp"], created + 14 * 86_400_000);
    assert!(s["forecast_memory_bytes"].as_u64().unwrap() > 0);
    assert!(s["forecast_messages"].as_array().unwrap().is_empty());

    let second = forecast(
        &server,
        "daily",
        json!({"duration": "6h", "expires_in": "0"}),
    )
    .await;
    assert_ne!(second, id);
    let totals = forecasts_stats(&server, "daily").await;
    assert_eq!(totals["total"], 2);
    assert_eq!(totals["forecasted_jobs"], 1);
    assert_eq!(totals["records"]["total"], 54.0);
    assert_eq!(totals["records"]["max"], 48.0);
    assert_eq!(totals["status"]["finished"], 2);
    assert_eq!(
        forecasts_stats(&server, "control").await,
        json!({"total": 0, "forecasted_jobs": 0})
    );

    // The forecasts changed nothing: the next day scores exactly as in the job without them.
    for job_id in ["daily", "control"] {
        feed(&server, job_id, DAYS * 24, 24).await;
    }
    let results = |job_id: &'static str| {
        let client = server.client.clone();
        async move {
            let buckets = client
                .get(&format!("{}/results/buckets?size=1000", path(job_id)))
                .await
                .json();
            let mut docs = buckets["buckets"].as_array().cloned().unwrap();
            for d in &mut docs {
                let map = d.as_object_mut().unwrap();
                map.remove("job_id");
                map.remove("processing_time_ms");
                map.remove("bucket_influencers");
            }
            docs
        }
    };
    assert_eq!(results("daily").await, results("control").await);
    server.stop().await;
}

#[tokio::test]
async fn errors_follow_elasticsearch() {
    let server = TestServer::start().await;
    let post = reqwest::Method::POST;
    let (status, kind, reason) = error(
        &server,
        post.clone(),
        &format!("{}/_forecast", path("nope")),
        None,
    )
    .await;
    assert_eq!(
        (status, kind.as_str(), reason.as_str()),
        (
            404,
            "resource_not_found_exception",
            "No known job with id 'nope'"
        )
    );

    assert_eq!(server.put_json(&path("f"), &job()).await.status, 200);
    let (status, kind, reason) = error(
        &server,
        post.clone(),
        &format!("{}/_forecast", path("f")),
        None,
    )
    .await;
    assert_eq!(
        (status, kind.as_str(), reason.as_str()),
        (
            409,
            "status_exception",
            "Cannot perform requested action because job [f] is not open"
        )
    );
    assert_eq!(
        server.post(&format!("{}/_open", path("f"))).await.status,
        200
    );
    let (status, kind, reason) = error(
        &server,
        post.clone(),
        &format!("{}/_forecast", path("f")),
        None,
    )
    .await;
    assert_eq!(
        (status, kind.as_str(), reason.as_str()),
        (400, "status_exception", "Cannot run forecast: Forecast cannot be executed as job requires data to have been processed and modeled")
    );
    feed(&server, "f", 0, 4).await;
    // Four hours are too few to forecast, which is not an error: the forecast says so.
    let id = forecast(&server, "f", json!({})).await;
    let stats = listed(&server, "f").await;
    assert_eq!(stats[0]["forecast_id"], id.as_str());
    assert_eq!(
        stats[0]["forecast_messages"],
        json!(["Insufficient history to forecast for all models"])
    );
    assert_eq!(stats[0]["processed_record_count"], 0);

    let cases = [
        (
            json!({"duration": "10m"}),
            400,
            "status_exception",
            "[duration] must be greater or equal to the bucket span: [10m/1h]",
        ),
        (
            json!({"duration": "0s"}),
            400,
            "illegal_argument_exception",
            "[duration] must be positive: [0s]",
        ),
        (
            json!({"duration": "3651d"}),
            400,
            "illegal_argument_exception",
            "[duration] must be 3650d or less: [3651d]",
        ),
        (
            json!({"expires_in": "-1"}),
            400,
            "illegal_argument_exception",
            "[expires_in] must be non-negative: [-1]",
        ),
        (
            json!({"max_model_memory": "100kb"}),
            400,
            "illegal_argument_exception",
            "[max_model_memory] must be at least 1mb.",
        ),
        (
            json!({"max_model_memory": "600mb"}),
            400,
            "status_exception",
            "[max_model_memory] must be less than 500mb",
        ),
    ];
    for (body, status, kind, reason) in cases {
        let got = error(
            &server,
            post.clone(),
            &format!("{}/_forecast", path("f")),
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            got,
            (status, kind.to_string(), reason.to_string()),
            "{body}"
        );
    }
    // The same parameters in the query string.
    let got = error(
        &server,
        post,
        &format!("{}/_forecast?duration=10m", path("f")),
        None,
    )
    .await;
    assert_eq!(got.0, 400);

    let missing = server
        .get(&format!("{}/results/forecasts/nope", path("f")))
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.es_error().1,
        "No forecast(s) [nope] exists for job [f]"
    );
    server.stop().await;
}

#[tokio::test]
async fn deletes_by_id_list_and_all_on_open_and_closed_jobs() {
    let server = TestServer::start().await;
    trained(&server, "d", 3 * 24).await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(forecast(&server, "d", json!({"duration": "3h"})).await);
    }
    let delete = reqwest::Method::DELETE;
    let url = |tail: &str| format!("{}/_forecast{tail}", path("d"));
    let reply = server.delete(&url(&format!("/{}", ids[0]))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), json!({"acknowledged": true}));
    assert_eq!(listed(&server, "d").await.len(), 3);
    let gone = server
        .get(&format!("{}/results/forecasts/{}", path("d"), ids[0]))
        .await;
    assert_eq!(gone.status, 404);
    assert_eq!(rows(&server, "d", &ids[1], "").await["count"], 3);

    let (status, kind, reason) =
        error(&server, delete.clone(), &url(&format!("/{}", ids[0])), None).await;
    assert_eq!(
        (status, kind.as_str()),
        (404, "resource_not_found_exception")
    );
    assert_eq!(
        reason,
        format!("No forecast(s) [{}] exists for job [d]", ids[0])
    );

    assert_eq!(
        server
            .delete(&url(&format!("/{},{}", ids[1], ids[2])))
            .await
            .status,
        200
    );
    assert_eq!(listed(&server, "d").await.len(), 1);

    // Closed: still deletable. `_all` then finds nothing, which is fine unless disallowed.
    assert_eq!(
        server.post(&format!("{}/_close", path("d"))).await.status,
        200
    );
    assert_eq!(server.delete(&url("/_all")).await.status, 200);
    assert!(listed(&server, "d").await.is_empty());
    assert_eq!(forecasts_stats(&server, "d").await["total"], 0);
    assert_eq!(server.delete(&url("")).await.status, 200);
    let (status, _, reason) = error(&server, delete, &url("?allow_no_forecasts=false"), None).await;
    assert_eq!(
        (status, reason.as_str()),
        (404, "No forecast(s) [_all] exists for job [d]")
    );
    server.stop().await;
}

#[tokio::test]
async fn expired_forecasts_are_deleted_and_forecasts_survive_close_and_open() {
    let server = TestServer::start().await;
    trained(&server, "e", 3 * 24).await;
    let short = forecast(&server, "e", json!({"duration": "2h", "expires_in": "1s"})).await;
    let forever = forecast(&server, "e", json!({"duration": "2h", "expires_in": "0"})).await;
    let kept = forecast(&server, "e", json!({"duration": "2h"})).await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let reply = server.delete("/_ml/_delete_expired_data/e").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let ids: Vec<String> = listed(&server, "e")
        .await
        .iter()
        .map(|s| s["forecast_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec![forever.clone(), kept.clone()], "{short} expired");
    assert_eq!(
        server
            .get(&format!("{}/results/forecasts/{short}", path("e")))
            .await
            .status,
        404
    );

    assert_eq!(
        server.post(&format!("{}/_close", path("e"))).await.status,
        200
    );
    assert_eq!(listed(&server, "e").await.len(), 2);
    assert_eq!(
        server.post(&format!("{}/_open", path("e"))).await.status,
        200
    );
    assert_eq!(rows(&server, "e", &kept, "").await["count"], 2);
    forecast(&server, "e", json!({"duration": "2h"})).await;
    assert_eq!(forecasts_stats(&server, "e").await["total"], 3);
    server.stop().await;
}

#[tokio::test]
async fn forecasts_survive_a_restart_and_a_kill() {
    let server = BinaryServer::start(&[]);
    trained(&server, "r", 3 * 24).await;
    let first = forecast(&server, "r", json!({"duration": "5h"})).await;
    let (status, data) = server.terminate();
    assert!(status.success());

    let server = BinaryServer::start_on(data, &[]);
    assert_eq!(rows(&server, "r", &first, "").await["count"], 5);
    let second = forecast(&server, "r", json!({"duration": "4h"})).await;
    let data = server.kill();

    let server = BinaryServer::start_on(data, &[]);
    assert_eq!(rows(&server, "r", &second, "").await["count"], 4);
    assert_eq!(forecasts_stats(&server, "r").await["total"], 2);
    let (status, data) = server.terminate();
    assert!(status.success());
    let (code, report) = crate::util::verify_store(data.path());
    assert_eq!(code, Some(0), "{report}");
}
