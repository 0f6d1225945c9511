//! Per-function behaviour of the whole model for the functions beyond count and the plain metrics:
//! an injected anomaly of the function's own kind is flagged, clean data is not, and each
//! function's empty-bucket and missing-field rules hold. Seeded, no clock.

use serde_json::json;

use super::tests::{config, max_record_score, new_detector, num, record, text};
use super::*;
use crate::ingest::FieldValue;
use crate::model::series::tests::TestRng;

const HOUR: i64 = 3_600_000;

/// One bucket's records: (time, fields).
type Records = Vec<(i64, Vec<(&'static str, FieldValue)>)>;

/// Runs `buckets` buckets of `span` ms, the records of bucket `b` coming from `make(b, start)`.
fn run(
    cfg: &AnalysisConfig,
    span: i64,
    buckets: usize,
    mut make: impl FnMut(usize, i64) -> Records,
) -> (AnomalyDetector, Vec<BucketResult>) {
    let mut detector = new_detector(cfg);
    let mut results = Vec::with_capacity(buckets);
    for b in 0..buckets {
        let start = b as i64 * span;
        for (time, fields) in make(b, start) {
            detector.add_timed_record(start, time, &record(cfg, &fields));
        }
        results.push(detector.finalize_bucket(start));
    }
    (detector, results)
}

/// The highest record score over `range` of the results.
fn worst(results: &[BucketResult], range: std::ops::Range<usize>) -> f64 {
    results[range]
        .iter()
        .map(max_record_score)
        .fold(0.0, f64::max)
}

fn detector(value: serde_json::Value, span: &str) -> AnalysisConfig {
    config(json!({"bucket_span": span, "detectors": [value]}))
}

#[test]
fn distinct_count_flags_a_jump_and_skips_buckets_without_values() {
    let cfg = detector(
        json!({"function": "distinct_count", "field_name": "user"}),
        "5m",
    );
    let mut rng = TestRng::new(4);
    let (_, results) = run(&cfg, 300_000, 400, |b, start| {
        let users = match b {
            200 => 0, // an empty bucket: no distinct count at all, so nothing to score
            399 => 80,
            _ => 5 + (rng.uniform() * 3.0) as usize,
        };
        (0..users * 3)
            .map(|i| {
                (
                    start,
                    vec![("user", text(&format!("u{}", i % users.max(1))))],
                )
            })
            .collect()
    });
    assert!(results[200].records.is_empty());
    let last = &results[399];
    assert_eq!(last.records.len(), 1, "{last:?}");
    assert_eq!(last.records[0].actual, vec![80.0]);
    assert_eq!(last.records[0].function, "distinct_count");
    assert!(last.records[0].record_score > 50.0, "{:?}", last.records[0]);
    assert!(worst(&results, 20..399) < 25.0);
}

#[test]
fn high_distinct_count_ignores_a_drop() {
    let cfg = detector(json!({"function": "high_dc", "field_name": "user"}), "5m");
    let (_, results) = run(&cfg, 300_000, 300, |b, start| {
        let users = if b == 299 { 1 } else { 10 };
        (0..users)
            .map(|i| (start, vec![("user", text(&format!("u{i}")))]))
            .collect()
    });
    assert!(
        results[299].records.is_empty(),
        "{:?}",
        results[299].records
    );
}

#[test]
fn varp_flags_a_change_in_spread_with_the_same_mean() {
    let cfg = detector(json!({"function": "varp", "field_name": "x"}), "5m");
    let mut rng = TestRng::new(7);
    let (_, results) = run(&cfg, 300_000, 300, |b, start| {
        let sd = if b == 299 { 60.0 } else { 5.0 };
        let n = if b == 150 { 1 } else { 20 };
        (0..n)
            .map(|_| (start, vec![("x", num(rng.gaussian(100.0, sd)))]))
            .collect()
    });
    // One value has no population variance: the bucket is skipped, not scored as 0.
    assert!(results[150].records.is_empty());
    let last = &results[299];
    assert_eq!(last.records.len(), 1);
    assert_eq!(last.records[0].function, "varp");
    assert!(last.records[0].actual[0] > 1000.0);
    assert!(last.records[0].record_score > 50.0, "{:?}", last.records[0]);
    assert!(worst(&results, 20..299) < 25.0);
}

#[test]
fn info_content_flags_random_looking_values() {
    let cfg = detector(
        json!({"function": "high_info_content", "field_name": "query", "by_field_name": "host"}),
        "5m",
    );
    let mut rng = TestRng::new(11);
    let (_, results) = run(&cfg, 300_000, 300, |b, start| {
        (0..10)
            .map(|i| {
                let query = if b == 299 {
                    (0..40)
                        .map(|_| char::from(b'a' + (rng.uniform() * 26.0) as u8))
                        .collect::<String>()
                } else {
                    ["www.example.com", "mail.example.com", "api.example.com"][i % 3].to_string()
                };
                (start, vec![("query", text(&query)), ("host", text("h1"))])
            })
            .collect()
    });
    let last = &results[299];
    assert_eq!(last.records.len(), 1);
    assert_eq!(last.records[0].function, "high_info_content");
    assert_eq!(last.records[0].function_description, "info_content");
    assert_eq!(last.records[0].by_field_value.as_deref(), Some("h1"));
    assert!(last.records[0].record_score > 50.0, "{:?}", last.records[0]);
    assert!(worst(&results, 20..299) < 25.0);
}

const DAYS: usize = 60;

/// A daily job that starts around 09:10 (± a few minutes) and on the last day at `last_time`.
fn daily_run(function: &str, last_time: i64) -> Vec<BucketResult> {
    let cfg = detector(json!({"function": function, "by_field_name": "job"}), "1h");
    let mut rng = TestRng::new(5);
    let days = DAYS;
    let (_, results) = run(&cfg, HOUR, days * 24, |b, start| {
        let (day, hour) = (b / 24, b % 24);
        let at = if day == days - 1 { last_time } else { 9 * HOUR };
        if hour as i64 != at / HOUR {
            return Vec::new();
        }
        let jitter = (rng.gaussian(10.0, 3.0) * 60_000.0) as i64;
        vec![(
            start + at % HOUR + jitter.max(0),
            vec![("job", text("backup"))],
        )]
    });
    results
}

#[test]
fn time_of_day_flags_an_unusual_hour() {
    let mut results = daily_run("time_of_day", 3 * HOUR);
    let flagged = results.remove((DAYS - 1) * 24 + 3);
    let rest = &results;
    let record = flagged.records.first().expect("the 03:00 run is flagged");
    assert_eq!(record.function, "time_of_day");
    assert_eq!(record.by_field_value.as_deref(), Some("backup"));
    assert!(
        (record.actual[0] - 3.0 * 3600.0).abs() < 1800.0,
        "{record:?}"
    );
    assert!(
        (record.typical[0] - 9.0 * 3600.0).abs() < 1800.0,
        "{record:?}"
    );
    assert!(record.record_score > 75.0, "{record:?}");
    assert!(worst(rest, 0..rest.len()) < 25.0);
    // The usual hour on the last day is not an anomaly.
    let usual = daily_run("time_of_day", 9 * HOUR);
    assert!(worst(&usual, 0..usual.len()) < 25.0);
}

#[test]
fn time_of_week_flags_a_weekend_run_of_a_weekday_job() {
    let cfg = detector(json!({"function": "time_of_week"}), "1h");
    // 1970-01-05 was a Monday.
    let monday = 4 * 24;
    let weeks = 12;
    let (_, results) = run(&cfg, HOUR, monday + weeks * 7 * 24, |b, start| {
        if b < monday {
            return Vec::new();
        }
        let (day, hour) = (((b - monday) / 24) % 7, b % 24);
        let last_week = (b - monday) / (7 * 24) == weeks - 1;
        let runs = hour == 10 && (day < 5 || (last_week && day == 6));
        if !runs || (last_week && day < 5) {
            return Vec::new();
        }
        vec![(start + 60_000, vec![])]
    });
    let flagged: Vec<(usize, f64)> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| max_record_score(r) > 0.0)
        .map(|(i, r)| (i, max_record_score(r)))
        .collect();
    let sunday = results.len() - 14;
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert_eq!(flagged[0].0, sunday);
    assert!(flagged[0].1 > 75.0, "{flagged:?}");
}

#[test]
fn lat_long_flags_a_far_away_point_and_reports_points() {
    let cfg = detector(
        json!({"function": "lat_long", "field_name": "loc", "by_field_name": "user"}),
        "5m",
    );
    let mut rng = TestRng::new(2);
    let (_, results) = run(&cfg, 300_000, 200, |b, start| {
        let (lat, lon) = if b == 199 {
            (-33.87, 151.21)
        } else {
            (rng.gaussian(48.85, 0.03), rng.gaussian(2.35, 0.03))
        };
        // Both forms Elasticsearch accepts: a "lat,lon" string and a geo_point object.
        let fields = if b % 2 == 0 {
            vec![
                ("loc", text(&format!("{lat},{lon}"))),
                ("user", text("ann")),
            ]
        } else {
            vec![
                ("loc.lat", num(lat)),
                ("loc.lon", num(lon)),
                ("user", text("ann")),
            ]
        };
        vec![
            (start, fields),
            (
                start,
                vec![("loc", text("not a point")), ("user", text("ann"))],
            ),
        ]
    });
    let record = results[199].records.first().expect("Sydney is flagged");
    assert_eq!(record.function, "lat_long");
    assert!((record.actual[0] + 33.87).abs() < 1e-6, "{record:?}");
    assert!((record.typical[0] - 48.85).abs() < 0.1, "{record:?}");
    let geo = record.geo_results.as_ref().expect("geo_results");
    assert_eq!(geo.actual_point, "-33.87,151.21");
    assert!(geo.typical_point.starts_with("48.8"), "{geo:?}");
    assert!(record.record_score > 75.0, "{record:?}");
    assert!(worst(&results, 0..199) < 25.0);
    let doc = &results[199].records_json("j")[0];
    assert_eq!(doc["geo_results"]["actual_point"], "-33.87,151.21");
}

#[test]
fn rare_flags_a_new_value_and_not_the_usual_ones() {
    let cfg = detector(
        json!({"function": "rare", "by_field_name": "process"}),
        "5m",
    );
    let usual = ["sshd", "cron", "nginx", "postgres"];
    let (_, results) = run(&cfg, 300_000, 600, |b, start| {
        let mut records: Records = usual
            .iter()
            .filter(|_| b % 50 != 7) // an empty bucket now and then changes nothing
            .map(|p| (start, vec![("process", text(p))]))
            .collect();
        if b == 599 {
            records.push((start, vec![("process", text("nc"))]));
        }
        records
    });
    let last = &results[599];
    assert_eq!(last.records.len(), 1, "{:?}", last.records);
    let record = &last.records[0];
    assert_eq!(record.function, "rare");
    assert_eq!(record.function_description, "rare");
    assert_eq!(record.by_field_value.as_deref(), Some("nc"));
    assert_eq!(record.actual, vec![1.0]);
    // A probability, not a relative rank: a first sighting after 600 buckets is a warning.
    assert!(record.record_score > 10.0, "{record:?}");
    assert!(worst(&results, 0..599) < 1.0);
    // Fewer than 20 buckets of history: nothing is rare yet.
    assert!(results[..20].iter().all(|r| r.records.is_empty()));
}

#[test]
fn freq_rare_flags_a_member_hammering_a_rare_value() {
    let cfg = detector(
        json!({"function": "freq_rare", "by_field_name": "uri", "over_field_name": "ip"}),
        "5m",
    );
    let (_, results) = run(&cfg, 300_000, 300, |b, start| {
        let mut records: Records = Vec::new();
        for ip in 0..20 {
            for uri in ["/", "/home", "/cart"] {
                records.push((
                    start,
                    vec![("uri", text(uri)), ("ip", text(&format!("10.0.0.{ip}")))],
                ));
            }
        }
        if b == 299 {
            for _ in 0..40 {
                records.push((
                    start,
                    vec![("uri", text("/admin.php")), ("ip", text("10.9.9.9"))],
                ));
            }
        }
        records
    });
    let record = results[299].records.first().expect("flagged");
    assert_eq!(record.over_field_value.as_deref(), Some("10.9.9.9"));
    assert_eq!(
        record.causes[0].by_field_value.as_deref(),
        Some("/admin.php")
    );
    assert_eq!(record.causes[0].actual, vec![40.0]);
    assert!(record.record_score > 50.0, "{record:?}");
    assert!(worst(&results, 0..299) < 5.0);
}

/// Fifty clients with Poisson-ish request counts per bucket; on the last bucket one sends `last`.
fn population_counts(extra: serde_json::Value, last: usize) -> Vec<BucketResult> {
    let mut value = json!({"function": "count", "over_field_name": "clientip"});
    value
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let cfg =
        config(json!({"bucket_span": "5m", "detectors": [value], "influencers": ["clientip"]}));
    let mut rng = TestRng::new(8);
    let (detector, results) = run(&cfg, 300_000, 200, |b, start| {
        let mut records: Records = Vec::new();
        for c in 0..50 {
            let n = if b == 199 && c == 7 {
                last
            } else {
                8 + (rng.uniform() * 6.0) as usize
            };
            for i in 0..n {
                let uri = if i % 2 == 0 { "/a" } else { "/b" };
                records.push((
                    start,
                    vec![("clientip", text(&format!("c{c}"))), ("uri", text(uri))],
                ));
            }
        }
        records
    });
    assert_eq!(detector.model_size_stats().total_over_field_count, 50);
    results
}

#[test]
fn population_outlier_is_the_one_member_unlike_the_rest() {
    let results = population_counts(json!({}), 300);
    let last = &results[199];
    assert_eq!(last.records.len(), 1, "{:?}", last.records);
    let record = &last.records[0];
    assert_eq!(record.over_field_name.as_deref(), Some("clientip"));
    assert_eq!(record.over_field_value.as_deref(), Some("c7"));
    assert!(
        record.actual.is_empty(),
        "population records carry their values in causes"
    );
    assert_eq!(record.causes.len(), 1);
    assert_eq!(record.causes[0].actual, vec![300.0]);
    assert!(record.causes[0].typical[0] > 8.0 && record.causes[0].typical[0] < 14.0);
    assert_eq!(
        record.influencers,
        vec![("clientip".to_string(), vec!["c7".to_string()])]
    );
    assert!(record.record_score > 75.0, "{record:?}");
    assert!(worst(&results, 0..199) < 25.0);
    let doc = &last.records_json("j")[0];
    assert_eq!(doc["causes"][0]["over_field_value"], "c7");
    assert!(doc.get("actual").is_none());
}

#[test]
fn population_by_field_causes_name_the_by_value() {
    let results = population_counts(json!({"by_field_name": "uri"}), 300);
    let record = results[199].records.first().expect("flagged");
    assert_eq!(record.over_field_value.as_deref(), Some("c7"));
    let by: Vec<_> = record
        .causes
        .iter()
        .map(|c| c.by_field_value.clone().unwrap())
        .collect();
    assert_eq!(by, vec!["/a", "/b"]);
    assert!(record.causes.iter().all(|c| c.actual == vec![150.0]));
}

#[test]
fn exclude_frequent_over_hides_members_seen_in_most_buckets() {
    // c7 appears in every bucket, so it is frequent and left out of the results.
    let results = population_counts(json!({"exclude_frequent": "over"}), 300);
    assert!(
        results[199].records.is_empty(),
        "{:?}",
        results[199].records
    );
    let results = population_counts(json!({"exclude_frequent": "by"}), 300);
    assert_eq!(results[199].records.len(), 1);
}

#[test]
fn exclude_frequent_by_hides_by_values_seen_in_most_buckets() {
    // "busy" has records in every bucket, "quiet" in one bucket of twenty: both spike at the end.
    let run_with = |exclude: &str| {
        let cfg = detector(
            json!({"function": "count", "by_field_name": "host", "exclude_frequent": exclude}),
            "5m",
        );
        let mut rng = TestRng::new(12);
        let (_, results) = run(&cfg, 300_000, 400, |b, start| {
            let mut records: Records = Vec::new();
            let busy = if b == 399 {
                200
            } else {
                10 + (rng.uniform() * 4.0) as usize
            };
            records.extend((0..busy).map(|_| (start, vec![("host", text("busy"))])));
            if b % 20 == 0 || b == 399 {
                let quiet = if b == 399 { 200 } else { 10 };
                records.extend((0..quiet).map(|_| (start, vec![("host", text("quiet"))])));
            }
            records
        });
        let mut hosts: Vec<String> = results[399]
            .records
            .iter()
            .filter_map(|r| r.by_field_value.clone())
            .collect();
        hosts.sort();
        hosts
    };
    assert_eq!(run_with("none"), vec!["busy", "quiet"]);
    assert_eq!(run_with("by"), vec!["quiet"]);
}

#[test]
fn population_mean_over_a_field_flags_the_odd_member() {
    let cfg = detector(
        json!({"function": "mean", "field_name": "latency", "over_field_name": "host"}),
        "5m",
    );
    let mut rng = TestRng::new(3);
    let (_, results) = run(&cfg, 300_000, 150, |b, start| {
        (0..30)
            .map(|h| {
                let level = if b == 149 && h == 3 { 900.0 } else { 100.0 };
                (
                    start,
                    vec![
                        ("latency", num(rng.gaussian(level, 10.0))),
                        ("host", text(&format!("h{h}"))),
                    ],
                )
            })
            .collect()
    });
    let record = results[149].records.first().expect("flagged");
    assert_eq!(record.over_field_value.as_deref(), Some("h3"));
    assert_eq!(record.function_description, "mean");
    assert!(record.record_score > 75.0);
    assert!(worst(&results, 0..149) < 25.0);
}

#[test]
fn population_state_round_trips_and_replays_identically() {
    let cfg = detector(
        json!({"function": "count", "by_field_name": "uri", "over_field_name": "ip"}),
        "5m",
    );
    let feed = |detector: &mut AnomalyDetector, from: usize, to: usize| -> Vec<BucketResult> {
        let mut rng = TestRng::new(from as u64);
        (from..to)
            .map(|b| {
                let start = b as i64 * 300_000;
                for i in 0..40 {
                    let ip = format!("ip{}", (rng.uniform() * 10.0) as u32);
                    let uri = ["/x", "/y", "/z"][i % 3];
                    detector.add_record(
                        start,
                        &record(&cfg, &[("ip", text(&ip)), ("uri", text(uri))]),
                    );
                }
                detector.finalize_bucket(start)
            })
            .collect()
    };
    let mut a = new_detector(&cfg);
    feed(&mut a, 0, 50);
    let bytes = bincode::serde::encode_to_vec(&a, bincode::config::standard()).unwrap();
    let (mut b, _): (AnomalyDetector, usize) =
        bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
    assert_eq!(a, b);
    assert_eq!(feed(&mut a, 50, 80), feed(&mut b, 50, 80));
    let again = bincode::serde::encode_to_vec(&b, bincode::config::standard()).unwrap();
    assert_eq!(
        bincode::serde::encode_to_vec(&a, bincode::config::standard()).unwrap(),
        again
    );
}

#[test]
fn rare_over_a_population_flags_the_member_using_a_value_nobody_else_uses() {
    let cfg = detector(
        json!({"function": "rare", "by_field_name": "process", "over_field_name": "host"}),
        "5m",
    );
    let (_, results) = run(&cfg, 300_000, 200, |b, start| {
        let mut records: Records = Vec::new();
        for host in 0..40 {
            for process in ["sshd", "cron"] {
                records.push((
                    start,
                    vec![
                        ("process", text(process)),
                        ("host", text(&format!("h{host}"))),
                    ],
                ));
            }
        }
        if b == 199 {
            records.push((
                start,
                vec![("process", text("xmrig")), ("host", text("h13"))],
            ));
        }
        records
    });
    let record = results[199].records.first().expect("flagged");
    assert_eq!(record.over_field_value.as_deref(), Some("h13"));
    assert_eq!(record.causes.len(), 1);
    assert_eq!(record.causes[0].by_field_value.as_deref(), Some("xmrig"));
    assert_eq!(record.causes[0].function, "rare");
    assert!(record.record_score > 3.0, "{record:?}");
    assert!(worst(&results, 0..199) < 1.0);
}
