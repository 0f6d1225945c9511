//! Population detectors through the whole model: influencer results for an unusual member, model
//! plot rows per member, and the memory limit against a stream of ever-new over values.

use serde_json::json;

use super::tests::{config, new_detector, num, record, text};
use super::*;
use crate::model::model_plot::ModelPlotSpec;
use crate::model::series::tests::TestRng;

const SPAN: i64 = 300_000;
const URIS: [&str; 5] = ["/u0", "/u1", "/u2", "/u3", "/u4"];

fn bytes_over_clients() -> AnalysisConfig {
    config(json!({
        "bucket_span": "5m",
        "detectors": [{"function": "sum", "field_name": "bytes", "over_field_name": "clientip"}],
        "influencers": ["clientip", "uri"]
    }))
}

/// One bucket of `clients` clients, six requests each spread over the uris; `heavy` sends six more
/// through `/u3` of 50 KB each.
fn traffic(
    detector: &mut AnomalyDetector,
    cfg: &AnalysisConfig,
    b: i64,
    clients: std::ops::Range<usize>,
    heavy: Option<usize>,
    rng: &mut TestRng,
) -> BucketResult {
    for c in clients {
        let client = format!("c{c}");
        for i in 0..6 {
            let rec = record(
                cfg,
                &[
                    ("clientip", text(&client)),
                    ("uri", text(URIS[(c + i) % URIS.len()])),
                    ("bytes", num(rng.gaussian(1000.0, 100.0))),
                ],
            );
            detector.add_record(b * SPAN, &rec);
        }
        if heavy == Some(c) {
            for _ in 0..6 {
                let rec = record(
                    cfg,
                    &[
                        ("clientip", text(&client)),
                        ("uri", text("/u3")),
                        ("bytes", num(50_000.0)),
                    ],
                );
                detector.add_record(b * SPAN, &rec);
            }
        }
    }
    detector.finalize_bucket(b * SPAN)
}

#[test]
fn unusual_member_and_the_value_that_carried_it_are_the_influencers() {
    let cfg = bytes_over_clients();
    let mut detector = new_detector(&cfg);
    let mut rng = TestRng::new(21);
    for b in 0..150 {
        let result = traffic(&mut detector, &cfg, b, 0..40, None, &mut rng);
        assert!(
            result.influencers.iter().all(|i| i.influencer_score < 25.0),
            "bucket {b}: {:?}",
            result.influencers
        );
    }
    let result = traffic(&mut detector, &cfg, 150, 0..40, Some(7), &mut rng);
    let record = result.records.first().expect("c7 is flagged");
    assert_eq!(record.over_field_value.as_deref(), Some("c7"));
    assert_eq!(
        record.influencers,
        vec![
            ("clientip".to_string(), vec!["c7".to_string()]),
            ("uri".to_string(), vec!["/u3".to_string()]),
        ]
    );
    let named: Vec<(&str, &str)> = result
        .influencers
        .iter()
        .map(|i| {
            (
                i.influencer_field_name.as_str(),
                i.influencer_field_value.as_str(),
            )
        })
        .collect();
    assert_eq!(
        named[..2],
        [("clientip", "c7"), ("uri", "/u3")],
        "{named:?}"
    );
    for i in &result.influencers[..2] {
        assert!(i.influencer_score > 50.0, "{i:?}");
        assert_eq!(i.initial_influencer_score, i.influencer_score);
        assert!(i.probability < 1e-3, "{i:?}");
    }
    // The rest is the ordinary noise of forty clients (a member at p < 0.05 is a record, as in
    // Elasticsearch): the heavy client's other uris are not among them.
    assert!(result.influencers[2..]
        .iter()
        .all(|i| i.influencer_score < 1.0 && i.influencer_field_value != "c7"));
    let uris_of_c7 = result.records[0]
        .influencers
        .iter()
        .find(|(f, _)| f == "uri");
    assert_eq!(uris_of_c7.map(|(_, v)| v.len()), Some(1));
    let fields: Vec<&str> = result
        .bucket_influencers
        .iter()
        .map(|b| b.influencer_field_name.as_str())
        .collect();
    assert_eq!(fields, vec!["bucket_time", "clientip", "uri"]);
}

#[test]
fn by_value_of_the_unusual_cause_is_an_influencer_and_the_quiet_one_is_not() {
    let cfg = config(json!({
        "bucket_span": "5m",
        "detectors": [{"function": "sum", "field_name": "bytes", "by_field_name": "uri",
                       "over_field_name": "clientip"}],
        "influencers": ["uri"]
    }));
    let mut detector = new_detector(&cfg);
    let mut rng = TestRng::new(22);
    for b in 0..150 {
        traffic(&mut detector, &cfg, b, 0..40, None, &mut rng);
    }
    let result = traffic(&mut detector, &cfg, 150, 0..40, Some(7), &mut rng);
    let record = result.records.first().expect("c7 is flagged");
    assert_eq!(record.causes[0].by_field_value.as_deref(), Some("/u3"));
    assert_eq!(
        record.influencers,
        vec![("uri".to_string(), vec!["/u3".to_string()])]
    );
    assert_eq!(result.influencers[0].influencer_field_value, "/u3");
    assert!(result.influencers[0].influencer_score > 50.0);
    assert!(
        result.influencers[1..]
            .iter()
            .all(|i| i.influencer_score < 1.0),
        "{:?}",
        result.influencers
    );
}

#[test]
fn model_plot_has_a_row_per_member_with_the_attribute_bounds() {
    let cfg = config(json!({
        "bucket_span": "5m",
        "detectors": [{"function": "mean", "field_name": "latency", "over_field_name": "host"}]
    }));
    let mut detector = new_detector(&cfg);
    detector.set_model_plot(Some(ModelPlotSpec::default()));
    let mut rng = TestRng::new(23);
    let mut last = None;
    let (mut inside, mut plotted) = (0, 0);
    for b in 0..100 {
        for h in 0..20 {
            let level = if b == 99 && h == 4 { 400.0 } else { 100.0 };
            let rec = record(
                &cfg,
                &[
                    ("host", text(&format!("h{h}"))),
                    ("latency", num(rng.gaussian(level, 5.0))),
                ],
            );
            detector.add_record(b * SPAN, &rec);
        }
        let result = detector.finalize_bucket(b * SPAN);
        if (50..99).contains(&b) {
            for row in &result.model_plot {
                let (lower, _, upper) = row.bounds.expect("warmed up");
                plotted += 1;
                inside += usize::from(row.actual.is_some_and(|a| (lower..=upper).contains(&a)));
            }
        }
        last = Some(result);
    }
    let share = inside as f64 / plotted as f64;
    assert!(
        (0.9..=0.995).contains(&share),
        "{share} of {plotted} inside"
    );
    let rows = last.expect("ran").model_plot;
    assert_eq!(rows.len(), 20);
    let mut outside = Vec::new();
    let mut hosts = Vec::new();
    for row in &rows {
        assert_eq!(row.model_feature, "'mean value by person and attribute'");
        assert_eq!(row.series.over_field_name.as_deref(), Some("host"));
        let (lower, _, upper) = row.bounds.expect("warmed up");
        let actual = row.actual.expect("each member has its value");
        hosts.push(row.series.over_field_value.clone().unwrap_or_default());
        if !(lower..=upper).contains(&actual) {
            outside.push(row.series.over_field_value.clone().unwrap_or_default());
        }
    }
    assert!(
        outside.contains(&"h4".to_string()) && outside.len() <= 3,
        "{outside:?}"
    );
    assert_eq!(hosts[..3], ["h0", "h1", "h2"], "member order");
    let doc = rows[4].to_json("j", 99 * SPAN, 300);
    assert_eq!(doc["over_field_name"], "host");
    assert_eq!(doc["over_field_value"], "h4");
    assert!(doc.get("by_field_name").is_none());
    assert!(doc["model_upper"].as_f64().is_some());
}

#[test]
fn rare_over_a_population_is_not_plotted() {
    let cfg = config(json!({
        "bucket_span": "5m",
        "detectors": [{"function": "rare", "by_field_name": "process", "over_field_name": "host"}]
    }));
    let mut detector = new_detector(&cfg);
    detector.set_model_plot(Some(ModelPlotSpec::default()));
    for b in 0..5 {
        let rec = record(&cfg, &[("host", text("h")), ("process", text("sshd"))]);
        detector.add_record(b * SPAN, &rec);
        assert!(detector.finalize_bucket(b * SPAN).model_plot.is_empty());
    }
}

#[test]
fn ever_new_members_stay_within_the_limit_and_known_ones_are_still_scored() {
    let cfg = bytes_over_clients();
    let mut detector = new_detector(&cfg);
    let mut rng = TestRng::new(24);
    for b in 0..30 {
        traffic(&mut detector, &cfg, b, 0..20, None, &mut rng);
    }
    let warmed = detector.model_size_stats().model_bytes;
    let limit = warmed + warmed / 5;
    detector.set_memory_limit(Some(limit), &cfg);
    let mut hard = false;
    let mut largest = 0;
    for b in 30..130 {
        // A scan of fifty clients never seen before, and the twenty regular ones.
        let scan = 1000 + b as usize * 50;
        for c in scan..scan + 50 {
            let rec = record(
                &cfg,
                &[("clientip", text(&format!("c{c}"))), ("bytes", num(900.0))],
            );
            detector.add_record(b * SPAN, &rec);
        }
        traffic(&mut detector, &cfg, b, 0..20, None, &mut rng);
        let stats = detector.model_size_stats();
        hard |= stats.memory_status == "hard_limit";
        largest = largest.max(stats.total_over_field_count);
        assert!(
            stats.model_bytes < limit + limit / 5,
            "bucket {b}: {} bytes against {limit}",
            stats.model_bytes
        );
    }
    let stats = detector.model_size_stats();
    assert!(hard, "{stats:?}");
    assert!(stats.bucket_allocation_failures_count > 0, "{stats:?}");
    assert!(
        largest < 20 + 500,
        "{largest} over values: the scan was not refused"
    );
    assert!(stats.total_over_field_count >= 20);
    let result = traffic(&mut detector, &cfg, 130, 0..20, Some(3), &mut rng);
    assert!(
        result
            .records
            .iter()
            .any(|r| r.over_field_value.as_deref() == Some("c3")),
        "{:?}",
        result.records
    );
    // The scan stops: soft-limit pruning forgets the one-off clients, memory falls and a new
    // client is modelled again.
    let mut b = 131;
    while detector.model_size_stats().memory_status == "hard_limit" {
        traffic(&mut detector, &cfg, b, 0..20, None, &mut rng);
        b += 1;
        assert!(b < 1000, "memory never recovered");
    }
    assert_eq!(detector.model_size_stats().total_over_field_count, 20);
    traffic(&mut detector, &cfg, b, 0..21, None, &mut rng);
    assert_eq!(detector.model_size_stats().total_over_field_count, 21);
}

#[test]
fn pruning_forgets_quiet_members_and_replays_identically_after_a_round_trip() {
    let cfg = bytes_over_clients();
    let mut detector = new_detector(&cfg);
    let mut rng = TestRng::new(25);
    for b in 0..10 {
        let clients = if b < 5 { 0..30 } else { 0..10 };
        traffic(&mut detector, &cfg, b, clients, None, &mut rng);
    }
    assert_eq!(detector.model_size_stats().total_over_field_count, 30);
    let before = detector.model_size_stats().model_bytes;
    assert_eq!(detector.prune(5 * SPAN), 20);
    let stats = detector.model_size_stats();
    assert_eq!(stats.total_over_field_count, 10);
    assert!(stats.model_bytes < before);
    let encode = |d: &AnomalyDetector| {
        bincode::serde::encode_to_vec(d, bincode::config::standard()).expect("encodes")
    };
    let (mut copy, _): (AnomalyDetector, usize) =
        bincode::serde::decode_from_slice(&encode(&detector), bincode::config::standard())
            .expect("decodes");
    let mut a = TestRng::new(26);
    let mut b = TestRng::new(26);
    for bucket in 10..20 {
        // Forgotten clients come back as new members.
        let x = traffic(&mut detector, &cfg, bucket, 0..30, None, &mut a);
        let y = traffic(&mut copy, &cfg, bucket, 0..30, None, &mut b);
        assert_eq!(x, y);
    }
    assert_eq!(encode(&detector), encode(&copy));
    assert_eq!(detector.model_size_stats().total_over_field_count, 30);
}

#[test]
fn model_plot_terms_pick_population_attributes_by_their_by_value() {
    let cfg = config(json!({
        "bucket_span": "5m",
        "detectors": [{"function": "sum", "field_name": "bytes", "by_field_name": "uri",
                       "over_field_name": "clientip"}]
    }));
    let mut detector = new_detector(&cfg);
    detector.set_model_plot(Some(ModelPlotSpec {
        terms: vec!["/u3".to_string()],
    }));
    let mut rng = TestRng::new(27);
    let result = (0..20)
        .map(|b| traffic(&mut detector, &cfg, b, 0..10, None, &mut rng))
        .last()
        .expect("ran");
    // Every client's six requests go round the five uris, so each fetched /u3.
    assert_eq!(result.model_plot.len(), 10);
    let stats = detector.model_size_stats();
    assert_eq!(
        (stats.total_by_field_count, stats.total_over_field_count),
        (5, 10)
    );
    for row in &result.model_plot {
        assert_eq!(row.series.by_field_value.as_deref(), Some("/u3"));
        assert_eq!(row.series.by_field_name.as_deref(), Some("uri"));
        assert!(row.actual.is_some() && row.bounds.is_some(), "{row:?}");
    }
    let doc = result.model_plot[0].to_json("j", 19 * SPAN, 300);
    assert_eq!(doc["by_field_value"], "/u3");
    assert_eq!(doc["over_field_name"], "clientip");
    // A bucket in which nobody fetched /u3: its bounds alone, as Elasticsearch writes them.
    let rec = record(
        &cfg,
        &[
            ("clientip", text("c0")),
            ("uri", text("/u0")),
            ("bytes", num(1000.0)),
        ],
    );
    detector.add_record(20 * SPAN, &rec);
    let rows = detector.finalize_bucket(20 * SPAN).model_plot;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].bounds.is_some() && rows[0].actual.is_none());
    let doc = rows[0].to_json("j", 20 * SPAN, 300);
    assert!(doc.get("over_field_name").is_none() && doc.get("actual").is_none());
    assert_eq!(doc["by_field_value"], "/u3");
}

#[test]
fn rare_over_a_population_names_the_member_and_the_rare_value() {
    let cfg = config(json!({
        "bucket_span": "5m",
        "detectors": [{"function": "rare", "by_field_name": "process", "over_field_name": "host"}],
        "influencers": ["host", "process", "user"]
    }));
    let mut detector = new_detector(&cfg);
    let mut last = None;
    for b in 0..200 {
        for host in 0..40 {
            for process in ["sshd", "cron"] {
                let rec = record(
                    &cfg,
                    &[
                        ("process", text(process)),
                        ("host", text(&format!("h{host}"))),
                        ("user", text("root")),
                    ],
                );
                detector.add_record(b * SPAN, &rec);
            }
        }
        if b == 199 {
            let rec = record(
                &cfg,
                &[
                    ("process", text("xmrig")),
                    ("host", text("h13")),
                    ("user", text("mallory")),
                ],
            );
            detector.add_record(b * SPAN, &rec);
        }
        last = Some(detector.finalize_bucket(b * SPAN));
    }
    let result = last.expect("ran");
    let record = result.records.first().expect("h13 is flagged");
    assert_eq!(record.over_field_value.as_deref(), Some("h13"));
    let named = |values: &[&str]| values.iter().map(|v| v.to_string()).collect::<Vec<_>>();
    assert_eq!(
        record.influencers,
        vec![
            ("host".to_string(), named(&["h13"])),
            ("process".to_string(), named(&["xmrig"])),
            ("user".to_string(), named(&["mallory"])),
        ]
    );
    let mut values: Vec<&str> = result
        .influencers
        .iter()
        .map(|i| i.influencer_field_value.as_str())
        .collect();
    values.sort();
    assert_eq!(values, ["h13", "mallory", "xmrig"]);
}
