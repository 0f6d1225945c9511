//! Offline NAB driver for model development: feeds every NAB file straight into the model (same
//! job config, bucketing and causal scoring as `score.py run`, without HTTP) and writes the rows'
//! scores as JSON for `score.py rows FILE`. Usage (harness-less bench target):
//! `cargo bench --bench nab_offline -- ../shared/nab /tmp/rows.json`, then
//! `python3 ../shared/nab/score.py rows /tmp/rows.json`.
//!
//! With `NAB_PROBABILITIES=FILE` it also writes, per file, every row's value and its bucket's
//! smallest probability (the `bucket_time` influencer's) and the model's 95% bounds (model plot),
//! for studying the scores.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use auspex::ingest::time::{TimeFormat, TimeValue};
use auspex::ingest::FieldValue;
use auspex::model::{AnalysisConfig, AnomalyDetector};

/// NAB's `YYYY-MM-DD HH:MM:SS` (UTC) in epoch seconds, through the same date-pattern code `_data` uses.
fn parse_time(format: &TimeFormat, text: &str) -> Option<i64> {
    format
        .parse_value(TimeValue::from(text.trim()))
        .map(|ms| ms / 1000)
}

/// A bucket's score as `score.py` reads it: the largest `initial_record_score` of its records.
fn best_score(result: &auspex::model::BucketResult) -> f64 {
    result
        .records
        .iter()
        .map(|r| r.initial_record_score)
        .fold(0.0, f64::max)
}

/// The bucket's smallest probability over all its series (1 when nothing was scored).
fn smallest_probability(result: &auspex::model::BucketResult) -> f64 {
    result
        .bucket_influencers
        .iter()
        .find(|b| b.influencer_field_name == "bucket_time")
        .map_or(1.0, |b| b.probability)
}

fn main() {
    // `cargo bench` passes `--bench` (and criterion filters) to every bench target: skip flags.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let root = args.first().cloned().unwrap_or("../shared/nab".into());
    let out = args.get(1).cloned().unwrap_or("/tmp/nab_rows.json".into());
    let only = args.get(2).cloned();
    if !std::path::Path::new(&format!("{root}/labels/combined_windows.json")).is_file() {
        eprintln!("nab_offline: no NAB data under [{root}]; pass its path as the first argument");
        return;
    }
    let time_format = TimeFormat::parse("yyyy-MM-dd HH:mm:ss").expect("a valid pattern");
    let windows: BTreeMap<String, serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/labels/combined_windows.json")).expect("labels"),
    )
    .expect("labels json");
    let mut json = String::from("{");
    let mut first = true;
    let probability_path = std::env::var("NAB_PROBABILITIES").ok();
    let mut probabilities = serde_json::Map::new();
    for name in windows.keys() {
        if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(format!("{root}/data/{name}")) else {
            continue;
        };
        let mut times = Vec::new();
        let mut values = Vec::new();
        for line in text.lines().skip(1) {
            let Some((t, v)) = line.split_once(',') else {
                continue;
            };
            if let (Some(t), Ok(v)) = (parse_time(&time_format, t), v.trim().parse::<f64>()) {
                times.push(t);
                values.push(v);
            }
        }
        let mut steps: Vec<i64> = times
            .windows(2)
            .map(|w| w[1] - w[0])
            .filter(|s| *s > 0)
            .collect();
        steps.sort_unstable();
        let span = steps[steps.len() / 2].max(1);
        let config: AnalysisConfig = serde_json::from_value(serde_json::json!({
            "bucket_span": format!("{span}s"),
            "detectors": [{"function": "mean", "field_name": "value"}]
        }))
        .expect("config");
        let mut detector = AnomalyDetector::new(&config, &config.analysis_fields());
        if probability_path.is_some() {
            detector.set_model_plot(Some(auspex::model::model_plot::ModelPlotSpec::default()));
        }
        let mut bucket_bounds: BTreeMap<i64, (f64, f64, f64)> = BTreeMap::new();
        let span_ms = span * 1000;
        let mut bucket_scores: BTreeMap<i64, f64> = BTreeMap::new();
        let mut bucket_probabilities: BTreeMap<i64, f64> = BTreeMap::new();
        let mut next_final = (times[0] * 1000).div_euclid(span_ms) * span_ms;
        let started = std::time::Instant::now();
        let debug = std::env::var("NAB_DEBUG").is_ok_and(|d| name.contains(d.as_str()));
        for (t, v) in times.iter().zip(&values) {
            let bucket = (t * 1000).div_euclid(span_ms) * span_ms;
            while next_final < bucket {
                let result = detector.finalize_bucket(next_final);
                if debug {
                    for r in &result.records {
                        eprintln!(
                            "  {} actual {:.3} typical {:.3} p {:.3e} score {:.1}",
                            next_final / span_ms - times[0] / span,
                            r.actual[0],
                            r.typical[0],
                            r.probability,
                            r.initial_record_score
                        );
                    }
                }
                bucket_scores.insert(next_final, best_score(&result));
                bucket_probabilities.insert(next_final, smallest_probability(&result));
                if let Some(bounds) = result.model_plot.first().and_then(|r| r.bounds) {
                    bucket_bounds.insert(next_final, bounds);
                }
                next_final += span_ms;
            }
            detector.add_record(bucket, &[Some(FieldValue::Num(*v))]);
        }
        let result = detector.finalize_bucket(next_final);
        bucket_scores.insert(next_final, best_score(&result));
        bucket_probabilities.insert(next_final, smallest_probability(&result));
        let scores: Vec<f64> = times
            .iter()
            .map(|t| {
                let b = (t * 1000).div_euclid(span_ms) * span_ms;
                (bucket_scores.get(&b).copied().unwrap_or(0.0) / 100.0).min(1.0)
            })
            .collect();
        eprintln!(
            "{name}: {} rows, max {:.2}, {:?}",
            times.len(),
            scores.iter().copied().fold(0.0, f64::max),
            started.elapsed()
        );
        if probability_path.is_some() {
            let row_probabilities: Vec<f64> = times
                .iter()
                .map(|t| {
                    let b = (t * 1000).div_euclid(span_ms) * span_ms;
                    bucket_probabilities.get(&b).copied().unwrap_or(1.0)
                })
                .collect();
            let bounds: Vec<Option<(f64, f64, f64)>> = times
                .iter()
                .map(|t| {
                    bucket_bounds
                        .get(&((t * 1000).div_euclid(span_ms) * span_ms))
                        .copied()
                })
                .collect();
            probabilities.insert(
                name.clone(),
                serde_json::json!({"values": values, "probabilities": row_probabilities,
                    "bounds": bounds}),
            );
        }
        if !first {
            json.push(',');
        }
        first = false;
        let _ = write!(
            json,
            "{}:[{},{}]",
            serde_json::to_string(name).expect("name"),
            serde_json::to_string(&times).expect("times"),
            serde_json::to_string(&scores).expect("scores")
        );
    }
    json.push('}');
    std::fs::write(&out, json).expect("write rows");
    if let Some(path) = probability_path {
        let text = serde_json::Value::Object(probabilities).to_string();
        std::fs::write(path, text).expect("write probabilities");
    }
}
