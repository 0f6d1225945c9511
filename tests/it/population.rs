//! Population analysis (`over_field_name`) over HTTP: influencer results for the unusual member and
//! the value that carried its anomaly (and none worth a score for the others), model plot rows per
//! member with `over_field_value`, no forecast for a population-only job (as Elasticsearch), and
//! `model_memory_limit` against a stream of ever-new clients.

use serde_json::{json, Value};

use crate::util::TestServer;

const BASE: &str = "/_ml/anomaly_detectors";
const HOUR_MS: i64 = 3_600_000;
const START_MS: i64 = 1_700_000_000_000 / HOUR_MS * HOUR_MS;
const URIS: [&str; 5] = ["/u0", "/u1", "/u2", "/u3", "/u4"];
const CLIENTS: usize = 40;
/// The hour in which c7 downloads far more than anyone through `/u3`.
const HEAVY_HOUR: i64 = 30;

/// One hour of web traffic: six requests per client over the uris, about a kilobyte each
/// (deterministic noise); in `HEAVY_HOUR` c7 also fetches six 50 KB responses from `/u3`.
fn hour(h: i64, clients: std::ops::Range<usize>) -> String {
    let mut body = String::new();
    let mut line = |t: i64, client: &str, uri: &str, bytes: i64| {
        body.push_str(&format!(
            "{{\"time\":{t},\"clientip\":\"{client}\",\"uri\":\"{uri}\",\"bytes\":{bytes}}}\n"
        ));
    };
    for c in clients {
        let client = format!("c{c}");
        for i in 0..6 {
            let t = START_MS + h * HOUR_MS + i as i64 * 600_000 + c as i64;
            let noise = (h * 31 + c as i64 * 7 + i as i64 * 13) % 11;
            line(t, &client, URIS[(c + i) % URIS.len()], 900 + 20 * noise);
            if h == HEAVY_HOUR && c == 7 {
                line(t + 1, &client, "/u3", 50_000);
            }
        }
    }
    body
}

async fn ok(reply: crate::util::Reply) -> Value {
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

async fn create_open(server: &TestServer, job: &str, config: Value) {
    ok(server.put_json(&format!("{BASE}/{job}"), &config).await).await;
    ok(server.post(&format!("{BASE}/{job}/_open")).await).await;
}

/// Posts `body` and flushes through the end of hour `h`.
async fn post_hour(server: &TestServer, job: &str, h: i64, body: String) {
    let reply = server
        .post_raw(&format!("{BASE}/{job}/_data"), "application/x-ndjson", body)
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    let advance = json!({"advance_time": (START_MS + (h + 1) * HOUR_MS).to_string()});
    ok(server
        .post_json(&format!("{BASE}/{job}/_flush"), &advance)
        .await)
    .await;
}

fn bytes_job(influencers: Value) -> Value {
    json!({
        "analysis_config": {"bucket_span": "1h",
            "detectors": [{"function": "sum", "field_name": "bytes", "over_field_name": "clientip"}],
            "influencers": influencers},
        "model_plot_config": {"enabled": true},
        "data_description": {"time_field": "time", "time_format": "epoch_ms"}
    })
}

#[tokio::test]
async fn the_heavy_client_and_its_uri_are_the_influencers() {
    let server = TestServer::start().await;
    let job = "pop-influencers";
    create_open(&server, job, bytes_job(json!(["clientip", "uri"]))).await;
    for h in 0..=HEAVY_HOUR {
        post_hour(&server, job, h, hour(h, 0..CLIENTS)).await;
    }
    let heavy = START_MS + HEAVY_HOUR * HOUR_MS;

    let records = ok(server
        .get(&format!("{BASE}/{job}/results/records?start={heavy}"))
        .await)
    .await;
    let top = &records["records"][0];
    assert_eq!(top["over_field_value"], "c7", "{records}");
    assert!(top["record_score"].as_f64() > Some(50.0), "{top}");
    assert_eq!(
        top["influencers"],
        json!([
            {"influencer_field_name": "clientip", "influencer_field_values": ["c7"]},
            {"influencer_field_name": "uri", "influencer_field_values": ["/u3"]}
        ]),
        "{top}"
    );

    // Only the client and the uri that carried the anomaly are worth a score in that hour.
    let influencers = ok(server
        .get(&format!(
            "{BASE}/{job}/results/influencers?start={heavy}&influencer_score=1&sort=influencer_score&desc=true"
        ))
        .await)
    .await;
    let named: Vec<(String, String, f64)> = influencers["influencers"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|i| {
                    (
                        i["influencer_field_name"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                        i["influencer_field_value"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                        i["influencer_score"].as_f64().unwrap_or(0.0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(named.len(), 2, "{influencers}");
    let mut values: Vec<&str> = named.iter().map(|n| n.1.as_str()).collect();
    values.sort();
    assert_eq!(values, ["/u3", "c7"]);
    assert!(named.iter().all(|n| n.2 > 50.0), "{named:?}");
    let first = &influencers["influencers"][0];
    assert_eq!(first["result_type"], "influencer");
    assert_eq!(first["initial_influencer_score"], first["influencer_score"]);
    assert!(first["probability"].as_f64() < Some(1e-3));

    // Before the heavy hour nobody stood out.
    let calm = ok(server
        .get(&format!(
            "{BASE}/{job}/results/influencers?end={heavy}&influencer_score=25"
        ))
        .await)
    .await;
    assert_eq!(calm["count"], 0, "{calm}");

    let buckets = ok(server
        .get(&format!("{BASE}/{job}/results/buckets?start={heavy}"))
        .await)
    .await;
    let fields: Vec<&str> = buckets["buckets"][0]["bucket_influencers"]
        .as_array()
        .map(|b| {
            b.iter()
                .filter_map(|i| i["influencer_field_name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(fields, ["bucket_time", "clientip", "uri"]);

    // Model plot: one row per client per hour, the population's bounds next to each client's sum.
    let plot = ok(server
        .get(&format!(
            "{BASE}/{job}/results/model_plot?start={heavy}&size=100"
        ))
        .await)
    .await;
    assert_eq!(plot["count"], CLIENTS, "{plot}");
    let rows = ok(server
        .get(&format!(
            "{BASE}/{job}/results/model_plot?over_field_value=c7&size=100"
        ))
        .await)
    .await;
    assert_eq!(rows["count"], HEAVY_HOUR + 1, "one row an hour for c7");
    let last = &rows["model_plot"][HEAVY_HOUR as usize];
    assert_eq!(last["over_field_name"], "clientip");
    assert_eq!(
        last["model_feature"],
        "'bucket sum by person and attribute'"
    );
    assert_eq!(last["actual"], 6.0 * 50_000.0 + sum_of(HEAVY_HOUR, 7));
    assert!(last["model_upper"].as_f64() < Some(20_000.0), "{last}");
    assert!(last.get("by_field_name").is_none());

    // Elasticsearch does not forecast population models.
    let forecast = server
        .post_json(
            &format!("{BASE}/{job}/_forecast"),
            &json!({"duration": "1h"}),
        )
        .await;
    assert_eq!(forecast.status, 400, "{}", forecast.text());
    assert!(
        forecast
            .text()
            .contains("Forecast is not supported for population analysis"),
        "{}",
        forecast.text()
    );
    server.stop().await;
}

/// A client's ordinary bytes in an hour.
fn sum_of(h: i64, c: usize) -> f64 {
    (0..6)
        .map(|i| 900 + 20 * ((h * 31 + c as i64 * 7 + i * 13) % 11))
        .sum::<i64>() as f64
}

#[tokio::test]
async fn ever_new_clients_stay_within_the_memory_limit() {
    let server = TestServer::start().await;
    let job = "pop-memory";
    let mut config = bytes_job(json!(["clientip"]));
    config["analysis_limits"] = json!({"model_memory_limit": "1mb"});
    config["model_plot_config"] = json!({"enabled": false});
    create_open(&server, job, config).await;
    for h in 0..24 {
        post_hour(&server, job, h, hour(h, 0..20)).await;
    }
    let stats = |server: &TestServer| {
        let path = format!("{BASE}/{job}/_stats");
        let client = server.client.clone();
        async move { ok(client.get(&path).await).await["jobs"][0]["model_size_stats"].clone() }
    };
    let calm = stats(&server).await;
    assert_eq!(calm["memory_status"], "ok", "{calm}");
    assert_eq!(calm["total_over_field_count"], 20, "{calm}");

    // A scan: thousands of clients never seen before, every hour.
    for h in 24..28 {
        let first = 1000 + (h as usize - 24) * 4000;
        let mut body = hour(h, 0..20);
        body.push_str(&hour(h, first..first + 4000));
        post_hour(&server, job, h, body).await;
    }
    let full = stats(&server).await;
    assert_eq!(full["memory_status"], "hard_limit", "{full}");
    assert!(
        full["bucket_allocation_failures_count"].as_u64() >= Some(1),
        "{full}"
    );
    let over = full["total_over_field_count"].as_u64().unwrap_or(0);
    assert!(over > 20 && over < 16_000, "{full}");
    let bytes = full["model_bytes"].as_u64().unwrap_or(u64::MAX);
    assert!(bytes < (1 << 20) + (1 << 18), "{full}");
    assert_eq!(full["total_by_field_count"], 0);

    // A known client still stands out.
    let mut body = hour(28, 0..20);
    let t = START_MS + 28 * HOUR_MS + 1;
    for i in 0..6 {
        body.push_str(&format!(
            "{{\"time\":{},\"clientip\":\"c3\",\"uri\":\"/u1\",\"bytes\":50000}}\n",
            t + i
        ));
    }
    post_hour(&server, job, 28, body).await;
    let records = ok(server
        .get(&format!(
            "{BASE}/{job}/results/records?start={}",
            START_MS + 28 * HOUR_MS
        ))
        .await)
    .await;
    assert_eq!(records["records"][0]["over_field_value"], "c3", "{records}");
    server.stop().await;
}
