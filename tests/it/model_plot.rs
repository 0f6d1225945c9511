//! Model plot over HTTP: `model_plot_config` at creation and through `_update` on an open job,
//! `terms`, the bounds around a stable series, and the `results/model_plot` extension's filters,
//! paging and errors.

use serde_json::{json, Value};

use crate::util::TestServer;

const HOUR: i64 = 3600;
const T0: i64 = 1_700_000_000 - 1_700_000_000 % 86_400;

fn job(model_plot: Value) -> Value {
    json!({
        "analysis_config": {"bucket_span": "1h", "detectors": [
            {"function": "mean", "field_name": "value", "by_field_name": "host"}]},
        "data_description": {"time_field": "time", "time_format": "epoch"},
        "model_plot_config": model_plot
    })
}

/// One record per host per hour for `hours` hours from hour `from`: a steady value with a small
/// deterministic wobble.
fn hours(from: i64, hours: i64, hosts: &[&str]) -> String {
    let mut body = String::new();
    for h in from..from + hours {
        for (i, host) in hosts.iter().enumerate() {
            let value = 100.0 + 10.0 * i as f64 + ((h * 37 + i as i64 * 11) % 7) as f64 - 3.0;
            body.push_str(&format!(
                "{{\"time\":{},\"host\":\"{host}\",\"value\":{value}}}\n",
                T0 + h * HOUR + 60
            ));
        }
    }
    body
}

async fn feed(server: &TestServer, job_id: &str, body: String, through_hour: i64) {
    let path = format!("/_ml/anomaly_detectors/{job_id}");
    let posted = server
        .post_raw(&format!("{path}/_data"), "application/x-ndjson", body)
        .await;
    assert_eq!(posted.status, 202, "{}", posted.text());
    let advance = json!({"advance_time": (T0 + through_hour * HOUR).to_string()});
    let flushed = server.post_json(&format!("{path}/_flush"), &advance).await;
    assert_eq!(flushed.status, 200, "{}", flushed.text());
}

async fn plot(server: &TestServer, job_id: &str, query: &str) -> (usize, Vec<Value>) {
    let reply = server
        .get(&format!(
            "/_ml/anomaly_detectors/{job_id}/results/model_plot?{query}"
        ))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    let rows = body["model_plot"].as_array().cloned().unwrap_or_default();
    (body["count"].as_u64().unwrap() as usize, rows)
}

async fn create_open(server: &TestServer, job_id: &str, model_plot: Value) {
    let path = format!("/_ml/anomaly_detectors/{job_id}");
    let put = server.put_json(&path, &job(model_plot)).await;
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(server.post(&format!("{path}/_open")).await.status, 200);
}

#[tokio::test]
async fn finalized_buckets_carry_model_bounds_for_the_chosen_terms() {
    let server = TestServer::start().await;
    create_open(&server, "plot", json!({"enabled": true, "terms": "a"})).await;
    feed(&server, "plot", hours(0, 72, &["a", "b"]), 72).await;

    let (count, rows) = plot(&server, "plot", "size=1000").await;
    assert_eq!(count, 72, "one row per finalized bucket for host a only");
    assert!(rows.iter().all(|r| r["by_field_value"] == "a"));
    let first = &rows[0];
    assert_eq!(first["result_type"], "model_plot");
    assert_eq!(first["job_id"], "plot");
    assert_eq!(first["bucket_span"], 3600);
    assert_eq!(first["detector_index"], 0);
    assert_eq!(first["by_field_name"], "host");
    assert_eq!(first["model_feature"], "'arithmetic mean value by person'");
    assert_eq!(first["timestamp"], T0 * 1000);
    assert!(first.get("model_lower").is_none(), "warming up: {first}");
    let settled: Vec<&Value> = rows[24..].iter().collect();
    let inside = settled
        .iter()
        .filter(|r| {
            let actual = r["actual"].as_f64().unwrap();
            r["model_lower"].as_f64().unwrap() <= actual
                && actual <= r["model_upper"].as_f64().unwrap()
        })
        .count();
    assert!(
        inside * 10 >= settled.len() * 9,
        "{inside} of {} inside",
        settled.len()
    );
    for r in &settled {
        let (lower, median, upper) = (
            r["model_lower"].as_f64().unwrap(),
            r["model_median"].as_f64().unwrap(),
            r["model_upper"].as_f64().unwrap(),
        );
        assert!(
            lower < median && median < upper && (median - 100.0).abs() < 4.0,
            "{r}"
        );
        assert!(upper - lower < 30.0, "{r}");
    }

    // Filters, time range, sort and paging, in the query string or the body.
    let day2 = (T0 + 24 * HOUR) * 1000;
    let (count, rows) = plot(
        &server,
        "plot",
        &format!(
            "start={day2}&end={}&desc=true&size=5",
            day2 + 10 * HOUR * 1000
        ),
    )
    .await;
    assert_eq!(count, 10);
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["timestamp"], day2 + 9 * HOUR * 1000);
    assert_eq!(plot(&server, "plot", "by_field_value=b").await.0, 0);
    assert_eq!(plot(&server, "plot", "detector_index=1").await.0, 0);
    let posted = server
        .post_json(
            "/_ml/anomaly_detectors/plot/results/model_plot",
            &json!({"page": {"from": 70, "size": 10}, "by_field_value": "a"}),
        )
        .await
        .json();
    assert_eq!(posted["count"], 72);
    assert_eq!(posted["model_plot"].as_array().unwrap().len(), 2);

    let unknown = server
        .get("/_ml/anomaly_detectors/nope/results/model_plot")
        .await;
    assert_eq!(unknown.status, 404);
    let bad = server
        .get("/_ml/anomaly_detectors/plot/results/model_plot?colour=red")
        .await;
    assert_eq!(bad.status, 400);
    server.stop().await;
}

#[tokio::test]
async fn update_switches_model_plot_on_an_open_job_and_it_survives_reopening() {
    let server = TestServer::start().await;
    create_open(&server, "switch", json!({"enabled": false})).await;
    feed(&server, "switch", hours(0, 10, &["a", "b"]), 10).await;
    assert_eq!(plot(&server, "switch", "").await.0, 0, "off: no rows");

    let update = server
        .post_json(
            "/_ml/anomaly_detectors/switch/_update",
            &json!({"model_plot_config": {"enabled": true, "terms": "b"}}),
        )
        .await;
    assert_eq!(update.status, 200, "{}", update.text());
    feed(&server, "switch", hours(10, 5, &["a", "b"]), 15).await;
    let (count, rows) = plot(&server, "switch", "").await;
    assert_eq!(count, 5);
    assert!(rows.iter().all(|r| r["by_field_value"] == "b"));
    assert_eq!(rows[0]["timestamp"], (T0 + 10 * HOUR) * 1000);

    // Closed and opened again: the rows are kept and the job keeps plotting.
    let path = "/_ml/anomaly_detectors/switch";
    assert_eq!(server.post(&format!("{path}/_close")).await.status, 200);
    assert_eq!(server.post(&format!("{path}/_open")).await.status, 200);
    feed(&server, "switch", hours(16, 4, &["a", "b"]), 20).await;
    assert_eq!(
        plot(&server, "switch", "").await.0,
        9,
        "5 + 4 (the empty hour has none)"
    );

    let update = server
        .post_json(
            &format!("{path}/_update"),
            &json!({"model_plot_config": null}),
        )
        .await;
    assert_eq!(update.status, 200, "{}", update.text());
    feed(&server, "switch", hours(20, 4, &["a", "b"]), 24).await;
    assert_eq!(plot(&server, "switch", "").await.0, 9, "unset: off again");
    server.stop().await;
}
