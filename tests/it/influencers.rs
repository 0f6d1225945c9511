//! Influencer results over HTTP: `mean(responsetime)` over five airlines with `airline` as an
//! influencer, one airline spiking at a time. The spiking airline's influencer result scores high,
//! the others do not; `results/influencers` pages, sorts and filters like Elasticsearch; interim
//! influencers are replaced by final ones; every results deletion path removes influencers too.

use serde_json::{json, Value};

use crate::util::{Client, TestServer};

const BASE: &str = "/_ml/anomaly_detectors";
const START: i64 = 1_403_481_600;
const HOUR: i64 = 3600;
const AIRLINES: [&str; 5] = ["AAL", "UAL", "DAL", "JBU", "SWA"];
/// (hour, airline) spikes of the standard data set.
const SPIKES: [(i64, &str); 3] = [(60, "UAL"), (70, "DAL"), (80, "AAL")];

fn job_config() -> Value {
    json!({
        "analysis_config": {"bucket_span": "1h",
            "detectors": [{"function": "mean", "field_name": "responsetime"}],
            "influencers": ["airline"]},
        "data_description": {"time_field": "time", "time_format": "epoch"}
    })
}

/// NDJSON for `hours`: 6 records an hour per airline around 100 ms; a spiking airline answers in
/// 1000 ms for its whole hour.
fn flights(hours: std::ops::Range<i64>, spikes: &[(i64, &str)]) -> String {
    let mut out = String::new();
    for hour in hours {
        for k in 0..6 {
            for (a, airline) in AIRLINES.iter().enumerate() {
                let t = START + hour * HOUR + k * 600 + a as i64;
                let spiking = spikes.iter().any(|(h, s)| *h == hour && s == airline);
                let value = if spiking {
                    1000.0
                } else {
                    95.0 + ((hour * 31 + k * 7 + a as i64 * 13) % 11) as f64
                };
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

async fn open_with(client: &Client, job_id: &str, ndjson: String) {
    ok(client.post(&format!("{BASE}/{job_id}/_open")).await).await;
    let posted = client
        .post_raw(
            &format!("{BASE}/{job_id}/_data"),
            "application/x-ndjson",
            ndjson,
        )
        .await;
    assert_eq!(posted.status, 202, "{}", posted.text());
}

/// Creates the job and runs `hours` of the standard data set through it (closing at the end).
async fn job_with(client: &Client, job_id: &str, hours: std::ops::Range<i64>) {
    ok(client
        .put_json(&format!("{BASE}/{job_id}"), &job_config())
        .await)
    .await;
    open_with(client, job_id, flights(hours, &SPIKES)).await;
    ok(client.post(&format!("{BASE}/{job_id}/_close")).await).await;
}

async fn influencers(client: &Client, job_id: &str, query: &str) -> Value {
    ok(client
        .get(&format!("{BASE}/{job_id}/results/influencers{query}"))
        .await)
    .await
}

fn list(page: &Value) -> Vec<Value> {
    page["influencers"].as_array().cloned().unwrap_or_default()
}

fn values_and_times(page: &Value) -> Vec<(String, i64)> {
    list(page)
        .iter()
        .map(|i| {
            (
                i["influencer_field_value"].as_str().unwrap().to_string(),
                (i["timestamp"].as_i64().unwrap() / 1000 - START) / HOUR,
            )
        })
        .collect()
}

#[tokio::test]
async fn the_spiking_airline_scores_high_and_the_others_low() {
    let server = TestServer::start().await;
    let client = &server.client;
    job_with(client, "flights", 0..100).await;

    let all = influencers(client, "flights", "?size=1000").await;
    let found = values_and_times(&all);
    // Most influential first (the default sort): each spike's airline at its hour.
    let mut top: Vec<(String, i64)> = found[..3].to_vec();
    top.sort_by_key(|(_, hour)| *hour);
    let expected: Vec<(String, i64)> = SPIKES.iter().map(|(h, a)| (a.to_string(), *h)).collect();
    assert_eq!(top, expected, "{all}");
    // Each spike was the first of its size when it came: major at least. The job models one
    // series (the mean over all airlines), so renormalized, a spike is a repeat of that series'
    // larger ones after it (the model has learnt more by then, so the same 1000 ms is less
    // probable), each costing it a factor e^(-1/2) (`model::score`): the last stays at the top,
    // all three stay worth a warning. Split by airline, they are not repeats: see below.
    for doc in &list(&all)[..3] {
        assert!(
            doc["initial_influencer_score"].as_f64().unwrap() >= 50.0,
            "{doc}"
        );
        assert!(doc["influencer_score"].as_f64().unwrap() >= 25.0, "{doc}");
    }
    let latest = list(&all)[..3]
        .iter()
        .max_by_key(|doc| doc["timestamp"].as_i64().unwrap())
        .cloned()
        .unwrap();
    assert!(
        latest["influencer_score"].as_f64().unwrap() >= 75.0,
        "{latest}"
    );
    // Nobody else was behind anything worth a warning.
    for doc in &list(&all)[3..] {
        assert!(doc["influencer_score"].as_f64().unwrap() < 25.0, "{doc}");
    }
    // In a spike's hour the four airlines that answered as usual did not influence the anomaly:
    // they are not influencers of it at all.
    for (hour, airline) in SPIKES {
        let that_hour = influencers(
            client,
            "flights",
            &format!(
                "?start={}&end={}",
                START + hour * HOUR,
                START + (hour + 1) * HOUR
            ),
        )
        .await;
        assert_eq!(
            values_and_times(&that_hour),
            vec![(airline.to_string(), hour)],
            "{that_hour}"
        );
    }

    let aal = list(&all)
        .into_iter()
        .find(|i| i["influencer_field_value"] == "AAL")
        .unwrap();
    assert_eq!(aal["job_id"], "flights");
    assert_eq!(aal["result_type"], "influencer");
    assert_eq!(aal["influencer_field_name"], "airline");
    assert_eq!(aal["airline"], "AAL");
    assert_eq!(aal["bucket_span"], 3600);
    assert_eq!(aal["is_interim"], false);
    assert_eq!(aal["timestamp"], (START + 80 * HOUR) * 1000);
    assert_eq!(aal["influencer_score"], aal["initial_influencer_score"]);
    assert!(aal["probability"].as_f64().unwrap() < 1e-6);

    // The spike's bucket and record name the airline as their influencer.
    let bucket = ok(client
        .get(&format!(
            "{BASE}/flights/results/buckets/{}?expand=true",
            (START + 80 * HOUR) * 1000
        ))
        .await)
    .await;
    let bucket = &bucket["buckets"][0];
    let fields: Vec<&str> = bucket["bucket_influencers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["influencer_field_name"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["bucket_time", "airline"]);
    assert_eq!(
        bucket["records"][0]["influencers"],
        json!([{"influencer_field_name": "airline", "influencer_field_values": ["AAL"]}])
    );
    server.stop().await;
}

/// Split `by` airline, each airline is its own series, and one spike per airline is a first for
/// that series: renormalization leaves all three major, not discounted as repeats of each other.
#[tokio::test]
async fn a_spike_in_each_of_three_series_is_not_a_repeat() {
    let server = TestServer::start().await;
    let client = &server.client;
    let mut config = job_config();
    config["analysis_config"]["detectors"][0]["by_field_name"] = json!("airline");
    ok(client
        .put_json(&format!("{BASE}/by_airline"), &config)
        .await)
    .await;
    open_with(client, "by_airline", flights(0..100, &SPIKES)).await;
    ok(client.post(&format!("{BASE}/by_airline/_close")).await).await;
    let page = ok(client
        .get(&format!(
            "{BASE}/by_airline/results/records?sort=record_score&desc=true&size=3"
        ))
        .await)
    .await;
    let records = page["records"].as_array().unwrap();
    let mut spikes: Vec<(String, i64)> = records
        .iter()
        .map(|r| {
            (
                r["by_field_value"].as_str().unwrap().to_string(),
                (r["timestamp"].as_i64().unwrap() / 1000 - START) / HOUR,
            )
        })
        .collect();
    spikes.sort_by_key(|(_, hour)| *hour);
    let expected: Vec<(String, i64)> = SPIKES.iter().map(|(h, a)| (a.to_string(), *h)).collect();
    assert_eq!(spikes, expected, "{page}");
    for record in records {
        assert!(record["record_score"].as_f64().unwrap() >= 50.0, "{record}");
    }
    server.stop().await;
}

#[tokio::test]
async fn close_and_reopen_midway_gives_the_influencers_of_an_uninterrupted_run() {
    let server = TestServer::start().await;
    let client = &server.client;
    job_with(client, "straight", 0..100).await;
    job_with(client, "split", 0..50).await;
    open_with(client, "split", flights(50..100, &SPIKES)).await;
    ok(client.post(&format!("{BASE}/split/_close")).await).await;
    let mut runs = Vec::new();
    for job in ["straight", "split"] {
        let page = influencers(client, job, "?size=1000&sort=timestamp&desc=false").await;
        let mut docs = list(&page);
        for doc in &mut docs {
            doc.as_object_mut().unwrap().remove("job_id");
        }
        runs.push(docs);
    }
    assert!(runs[0].len() >= 3);
    assert_eq!(runs[0], runs[1]);
    server.stop().await;
}

#[tokio::test]
async fn paging_sorting_filters_and_errors() {
    let server = TestServer::start().await;
    let client = &server.client;
    job_with(client, "p", 0..100).await;
    let total = influencers(client, "p", "").await["count"]
        .as_u64()
        .unwrap();
    assert!(total >= 3);

    let strong = influencers(client, "p", "?influencer_score=25").await;
    assert_eq!(strong["count"], 3, "{strong}");

    // Body parameters (8.x clients POST them), time order, a page of one.
    let page = ok(client
        .post_json(
            &format!("{BASE}/p/results/influencers"),
            &json!({"influencer_score": 25, "sort": "timestamp", "desc": false,
                    "page": {"from": 1, "size": 1}}),
        )
        .await)
    .await;
    assert_eq!(page["count"], 3);
    assert_eq!(values_and_times(&page), vec![("DAL".to_string(), 70)]);

    // `start` inclusive, `end` exclusive.
    let window = influencers(
        client,
        "p",
        &format!(
            "?influencer_score=25&start={}&end={}",
            START + 70 * HOUR,
            START + 80 * HOUR
        ),
    )
    .await;
    assert_eq!(values_and_times(&window), vec![("DAL".to_string(), 70)]);
    let ascending = influencers(client, "p", "?influencer_score=25&desc=false").await;
    let scores: Vec<f64> = list(&ascending)
        .iter()
        .map(|i| i["influencer_score"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] <= w[1]), "{scores:?}");
    let by_value = influencers(
        client,
        "p",
        "?influencer_score=25&sort=influencer_field_value&desc=false",
    )
    .await;
    let names: Vec<String> = values_and_times(&by_value)
        .into_iter()
        .map(|v| v.0)
        .collect();
    assert_eq!(names, vec!["AAL", "DAL", "UAL"]);
    let empty = influencers(client, "p", "?from=5000&size=10").await;
    assert_eq!(empty["count"], total);
    assert!(list(&empty).is_empty());

    let cases = [
        ("GET", "/missing/results/influencers", json!(null), 404, "resource_not_found_exception", "No known job with id 'missing'".to_string()),
        ("GET", "/p/results/influencers?from=-1", json!(null), 400, "illegal_argument_exception", "Parameter [from] cannot be < 0".to_string()),
        ("GET", "/p/results/influencers?size=10001", json!(null), 400, "illegal_argument_exception", "The sum of parameters [from] and [size] cannot be higher than 10000.".to_string()),
        ("POST", "/p/results/influencers", json!({"bogus": 1}), 400, "x_content_parse_exception", "[cluster:monitor/xpack/ml/job/results/influencers/get] unknown field [bogus]".to_string()),
        ("GET", "/p/results/influencers?start=yesterday", json!(null), 400, "parse_exception", "Query param [start] with value [yesterday] cannot be parsed as a date or converted to a number (epoch).".to_string()),
    ];
    for (method, path, body, status, kind, reason) in cases {
        let reply = if method == "GET" {
            client.get(&format!("{BASE}{path}")).await
        } else {
            client.post_json(&format!("{BASE}{path}"), &body).await
        };
        assert_eq!(reply.status, status, "{path}: {}", reply.text());
        assert_eq!(reply.es_error(), (kind.to_string(), reason), "{path}");
    }
    let unknown = client
        .get(&format!("{BASE}/p/results/influencers?influencer_scor=3"))
        .await;
    assert_eq!(unknown.status, 400);
    assert!(
        unknown
            .es_error()
            .1
            .contains("did you mean [influencer_score]?"),
        "{}",
        unknown.text()
    );
    server.stop().await;
}

#[tokio::test]
async fn interim_influencers_are_replaced_by_final_ones() {
    let server = TestServer::start().await;
    let client = &server.client;
    ok(client.put_json(&format!("{BASE}/i"), &job_config()).await).await;
    // Hour 100 is still open when JBU spikes in it.
    open_with(client, "i", flights(0..101, &[(100, "JBU")])).await;
    let flushed = ok(client
        .post_json(&format!("{BASE}/i/_flush"), &json!({"calc_interim": true}))
        .await)
    .await;
    assert_eq!(
        flushed["last_finalized_bucket_end"],
        (START + 100 * HOUR) * 1000
    );
    let interim = influencers(client, "i", "?influencer_score=25").await;
    assert_eq!(values_and_times(&interim), vec![("JBU".to_string(), 100)]);
    assert_eq!(list(&interim)[0]["is_interim"], true);
    let without = influencers(client, "i", "?influencer_score=25&exclude_interim=true").await;
    assert_eq!(without["count"], 0, "{without}");

    ok(client
        .post_json(
            &format!("{BASE}/i/_flush"),
            &json!({"advance_time": (START + 101 * HOUR).to_string()}),
        )
        .await)
    .await;
    let hour_100 = format!("?start={}&end={}", START + 100 * HOUR, START + 101 * HOUR);
    let last = influencers(client, "i", &hour_100).await;
    assert_eq!(
        values_and_times(&last),
        vec![("JBU".to_string(), 100)],
        "{last}"
    );
    assert_eq!(list(&last)[0]["is_interim"], false);
    ok(client.post(&format!("{BASE}/i/_close")).await).await;
    server.stop().await;
}

#[tokio::test]
async fn reset_revert_retention_and_delete_remove_influencers() {
    let server = TestServer::start().await;
    let client = &server.client;
    let count = |job: &'static str| async move {
        influencers(client, job, "").await["count"]
            .as_u64()
            .unwrap()
    };

    // Reset.
    job_with(client, "reset", 0..100).await;
    assert!(count("reset").await >= 3);
    ok(client.post(&format!("{BASE}/reset/_reset")).await).await;
    assert_eq!(count("reset").await, 0);

    // Revert to a snapshot from before the spikes, deleting the results after it.
    job_with(client, "revert", 0..50).await;
    let snapshots = ok(client.get(&format!("{BASE}/revert/model_snapshots")).await).await;
    let first = snapshots["model_snapshots"][0]["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    open_with(client, "revert", flights(50..100, &SPIKES)).await;
    ok(client.post(&format!("{BASE}/revert/_close")).await).await;
    let before = count("revert").await;
    assert!(before >= 3);
    ok(client
        .post_json(
            &format!("{BASE}/revert/model_snapshots/{first}/_revert"),
            &json!({"delete_intervening_results": true}),
        )
        .await)
    .await;
    let after = influencers(client, "revert", "?size=1000").await;
    assert!(
        values_and_times(&after).iter().all(|(_, hour)| *hour < 50),
        "{after}"
    );

    // Results retention keeps the last day before the latest bucket (hour 99): hours 75.. .
    let mut config = job_config();
    config["results_retention_days"] = json!(1);
    ok(client.put_json(&format!("{BASE}/kept"), &config).await).await;
    open_with(client, "kept", flights(0..100, &SPIKES)).await;
    ok(client.post(&format!("{BASE}/kept/_close")).await).await;
    ok(client.delete("/_ml/_delete_expired_data/kept").await).await;
    let kept = influencers(client, "kept", "?size=1000&influencer_score=50").await;
    assert_eq!(values_and_times(&kept), vec![("AAL".to_string(), 80)]);

    // Delete, then a new job with the same id starts with no influencers.
    ok(client.delete(&format!("{BASE}/kept")).await).await;
    ok(client.put_json(&format!("{BASE}/kept"), &config).await).await;
    assert_eq!(count("kept").await, 0);
    server.stop().await;
}
