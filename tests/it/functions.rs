//! Detector functions beyond `mean`, through the HTTP API: seeded synthetic data with one injected
//! anomaly of the function's own kind (a rare category, a new by value, a population outlier, a
//! distinct-count jump, a far-away location, a run at an unusual hour). Each checks that the
//! anomaly is found in its bucket with a score above a stated floor, that nothing after warm-up
//! scores above a stated ceiling elsewhere, and the record's Elasticsearch shape (`causes`,
//! `over_field_value`, `geo_results`, ...). Figures: `cargo test --release --test it functions
//! -- --nocapture`, recorded in README.

use serde_json::{json, Value};

use crate::util::{run_hourly_job, TestServer};

const BASE: &str = "/_ml/anomaly_detectors";
const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;
const WEEK: i64 = 7 * DAY;
/// 2024-01-01T00:00:00Z, a Monday.
const START: i64 = 1_704_067_200;
/// Every scenario's anomaly: three weeks in, at 14:00 on a Monday... except where said.
const ANOMALY_AT: i64 = START + 3 * WEEK + 14 * HOUR;
/// Clean data is judged from here on.
const WARM_UP_END: i64 = START + WEEK;

/// splitmix64: small and seeded.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An integer in `[low, low + spread)`.
    fn between(&mut self, low: i64, spread: i64) -> i64 {
        low + (self.uniform() * spread as f64) as i64
    }
}

/// The anomaly's record (the best one in its bucket) and the best score anywhere else after warm-up.
fn outcome(name: &str, records: &[Value], at: i64) -> (Value, f64) {
    let time = |r: &Value| r["timestamp"].as_i64().unwrap_or(0) / 1000;
    let score = |r: &Value| r["record_score"].as_f64().unwrap_or(0.0);
    let bucket = at / HOUR * HOUR;
    let found = records
        .iter()
        .filter(|r| time(r) == bucket)
        .max_by(|a, b| score(a).total_cmp(&score(b)))
        .cloned()
        .unwrap_or_else(|| panic!("{name}: nothing found at {bucket}"));
    let clean = records
        .iter()
        .filter(|r| time(r) != bucket && time(r) >= WARM_UP_END)
        .map(score)
        .fold(0.0, f64::max);
    println!(
        "scenario {name:<18} found {:>5.1} clean max {clean:>5.1}",
        score(&found)
    );
    (found, clean)
}

fn assert_found(name: &str, (found, clean): &(Value, f64), at_least: f64, clean_at_most: f64) {
    let score = found["record_score"].as_f64().unwrap_or(0.0);
    assert!(
        score >= at_least,
        "{name}: scored {score:.1}, expected >= {at_least}: {found}"
    );
    assert!(
        *clean <= clean_at_most,
        "{name}: clean data scored {clean:.1}"
    );
    assert!(
        score > 2.0 * clean,
        "{name}: {score:.1} does not stand out from {clean:.1}"
    );
}

/// Hourly: a few everyday processes each hour, plus `extra` (time, process) sightings.
fn processes(extra: &[(i64, &str)]) -> Vec<Value> {
    let mut docs = Vec::new();
    for h in 0..4 * WEEK / HOUR {
        let t = START + h * HOUR;
        for (i, p) in ["sshd", "cron", "nginx", "postgres", "systemd"]
            .iter()
            .enumerate()
        {
            docs.push(json!({"time": t + 60 * i as i64, "process": p}));
        }
        for (at, p) in extra {
            if (t..t + HOUR).contains(at) {
                docs.push(json!({"time": at, "process": p}));
            }
        }
    }
    docs
}

#[tokio::test]
async fn rare_category_and_new_by_value_are_found() {
    let server = TestServer::start().await;
    let c = &server.client;
    let detector = json!({"function": "rare", "by_field_name": "process"});

    // Seen once in the first days, then again three weeks later.
    let occasional = processes(&[
        (START + 2 * DAY + 300, "backup-agent"),
        (ANOMALY_AT + 300, "backup-agent"),
    ]);
    let records = run_hourly_job(c, "rare-category", detector.clone(), &occasional).await;
    let rare = outcome("rare-category", &records, ANOMALY_AT);
    assert_eq!(rare.0["by_field_value"], "backup-agent");
    assert_eq!(rare.0["function"], "rare");
    assert_found("rare category", &rare, 5.0, 1.0);

    // Never seen before.
    let new = processes(&[(ANOMALY_AT + 300, "nc")]);
    let records = run_hourly_job(c, "new-by-value-rare", detector, &new).await;
    let found = outcome("new-by-value", &records, ANOMALY_AT);
    assert_eq!(found.0["by_field_value"], "nc");
    assert_found("new by value", &found, 10.0, 1.0);
    // The new value is rarer than the one seen once before.
    assert!(found.0["record_score"].as_f64() > rare.0["record_score"].as_f64());
    server.stop().await;
}

#[tokio::test]
async fn population_outlier_is_the_member_unlike_the_rest() {
    let server = TestServer::start().await;
    let mut rng = Rng(0xC0FFEE);
    let mut docs = Vec::new();
    for h in 0..4 * WEEK / HOUR {
        let t = START + h * HOUR;
        for client in 0..30 {
            let n = if t == ANOMALY_AT && client == 17 {
                250
            } else {
                rng.between(5, 10)
            };
            for i in 0..n {
                let uri = ["/", "/search", "/cart"][(i % 3) as usize];
                docs.push(
                    json!({"time": t + i, "clientip": format!("10.0.0.{client}"), "uri": uri}),
                );
            }
        }
    }
    let detector = json!({"function": "count", "over_field_name": "clientip"});
    let records = run_hourly_job(&server.client, "population-outlier", detector, &docs).await;
    let found = outcome("population-outlier", &records, ANOMALY_AT);
    assert_eq!(found.0["over_field_name"], "clientip");
    assert_eq!(found.0["over_field_value"], "10.0.0.17");
    assert_eq!(found.0["causes"][0]["actual"], json!([250.0]));
    assert!(found.0.get("actual").is_none(), "{}", found.0);
    assert_eq!(found.0["clientip"], json!(["10.0.0.17"]));
    assert_found("population outlier", &found, 75.0, 25.0);

    let stats = server
        .client
        .get(&format!("{BASE}/population-outlier/_stats"))
        .await;
    assert_eq!(
        stats.json()["jobs"][0]["model_size_stats"]["total_over_field_count"],
        30
    );
    server.stop().await;
}

#[tokio::test]
async fn distinct_count_jump_is_found() {
    let server = TestServer::start().await;
    let mut rng = Rng(0xD15);
    let mut docs = Vec::new();
    for h in 0..4 * WEEK / HOUR {
        let t = START + h * HOUR;
        let users = if t == ANOMALY_AT {
            150
        } else {
            rng.between(15, 8)
        };
        for i in 0..users * 2 {
            docs.push(json!({"time": t + i, "user": format!("user{}", i % users), "host": "db-1"}));
        }
    }
    let detector =
        json!({"function": "high_distinct_count", "field_name": "user", "by_field_name": "host"});
    let records = run_hourly_job(&server.client, "distinct-jump", detector, &docs).await;
    let found = outcome("distinct-count", &records, ANOMALY_AT);
    assert_eq!(found.0["actual"], json!([150.0]));
    assert_eq!(found.0["function_description"], "distinct_count");
    assert_found("distinct count jump", &found, 75.0, 25.0);
    server.stop().await;
}

#[tokio::test]
async fn far_away_login_is_found() {
    let server = TestServer::start().await;
    let mut rng = Rng(0x6E0);
    let mut docs = Vec::new();
    for h in 0..4 * WEEK / HOUR {
        let t = START + h * HOUR;
        for (user, (lat, lon)) in [("ann", (48.85, 2.35)), ("bob", (40.71, -74.0))] {
            let (lat, lon) = if t == ANOMALY_AT && user == "ann" {
                (-33.87, 151.21)
            } else {
                (
                    lat + 0.05 * (rng.uniform() - 0.5),
                    lon + 0.05 * (rng.uniform() - 0.5),
                )
            };
            // Both forms Elasticsearch takes: a "lat,lon" string and a geo_point object.
            let location = if h % 2 == 0 {
                json!(format!("{lat},{lon}"))
            } else {
                json!({"lat": lat, "lon": lon})
            };
            docs.push(json!({"time": t + 60, "user": user, "location": location}));
        }
    }
    let detector =
        json!({"function": "lat_long", "field_name": "location", "by_field_name": "user"});
    let records = run_hourly_job(&server.client, "far-away", detector, &docs).await;
    let found = outcome("lat-long", &records, ANOMALY_AT);
    assert_eq!(found.0["by_field_value"], "ann");
    assert_eq!(found.0["geo_results"]["actual_point"], "-33.87,151.21");
    assert!(found.0["geo_results"]["typical_point"]
        .as_str()
        .unwrap_or("")
        .starts_with("48.8"));
    assert_found("lat_long far away", &found, 75.0, 25.0);
    server.stop().await;
}

#[tokio::test]
async fn run_at_an_unusual_hour_is_found() {
    let server = TestServer::start().await;
    let mut rng = Rng(0x7117);
    // A nightly report that runs at about 09:10 every day; three weeks in, once at 03:10.
    let unusual = START + 3 * WEEK + 3 * HOUR + 600;
    let mut docs = Vec::new();
    for day in 0..28 {
        let t = if day == 21 {
            unusual
        } else {
            START + day * DAY + 9 * HOUR + rng.between(300, 600)
        };
        docs.push(json!({"time": t, "job": "report"}));
    }
    let detector = json!({"function": "time_of_day", "by_field_name": "job"});
    let records = run_hourly_job(&server.client, "unusual-hour", detector, &docs).await;
    let found = outcome("time-of-day", &records, unusual);
    assert_eq!(found.0["function"], "time_of_day");
    let actual = found.0["actual"][0].as_f64().unwrap_or(0.0);
    assert!((actual - 11_400.0).abs() < 1.0, "{}", found.0);
    assert_found("time_of_day", &found, 75.0, 25.0);
    server.stop().await;
}
