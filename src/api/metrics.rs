//! auspex extension: `GET /_prometheus/metrics`, the Prometheus text format (0.0.4).
//!
//! Per job, read from the store at scrape time (the same numbers `_stats` reports, so the two never
//! disagree): records processed and other data counts, buckets finalized, model bytes, memory
//! status, state. Then the process registry (`crate::metrics`): flush and persist latencies per
//! job, HTTP request counts and latencies per endpoint.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use serde_json::Value;

use super::explorer::raw_response;
use super::AppState;
use crate::metrics::{registry, write_family, Labels};

/// `(metric, help, kind, path in the _stats document)` for the per-job numbers.
const JOB_NUMBERS: &[(&str, &str, &str, &[&str])] = &[
    (
        "auspex_job_processed_records_total",
        "Records analysed (data_counts.processed_record_count).",
        "counter",
        &["data_counts", "processed_record_count"],
    ),
    (
        "auspex_job_input_records_total",
        "Records received (data_counts.input_record_count).",
        "counter",
        &["data_counts", "input_record_count"],
    ),
    (
        "auspex_job_input_bytes_total",
        "Bytes of input received (data_counts.input_bytes).",
        "counter",
        &["data_counts", "input_bytes"],
    ),
    (
        "auspex_job_out_of_order_records_total",
        "Records dropped as out of order.",
        "counter",
        &["data_counts", "out_of_order_timestamp_count"],
    ),
    (
        "auspex_job_invalid_date_records_total",
        "Records without a readable timestamp.",
        "counter",
        &["data_counts", "invalid_date_count"],
    ),
    (
        "auspex_job_buckets_finalized_total",
        "Buckets finalized (timing_stats.bucket_count).",
        "counter",
        &["timing_stats", "bucket_count"],
    ),
    (
        "auspex_job_model_bytes",
        "Model size in bytes (model_size_stats.model_bytes).",
        "gauge",
        &["model_size_stats", "model_bytes"],
    ),
    (
        "auspex_job_model_bytes_memory_limit",
        "Model memory limit in bytes.",
        "gauge",
        &["model_size_stats", "model_bytes_memory_limit"],
    ),
];

pub async fn serve(state: &AppState) -> Response<Full<Bytes>> {
    let mut out = String::new();
    match state.jobs.job_stats("_all", true).await {
        Ok(stats) => job_families(&mut out, &stats),
        Err(error) => tracing::warn!(%error, "metrics: job stats unavailable"),
    }
    registry().render(&mut out);
    raw_response(
        200,
        "text/plain; version=0.0.4; charset=utf-8",
        Bytes::from(out),
    )
}

fn job_families(out: &mut String, stats: &[Value]) {
    let job = |doc: &Value| -> Labels {
        vec![(
            "job_id",
            doc["job_id"].as_str().unwrap_or_default().to_string(),
        )]
    };
    for (name, help, kind, path) in JOB_NUMBERS {
        let rows: Vec<(Labels, f64)> = stats
            .iter()
            .filter_map(|doc| {
                let value = path.iter().fold(doc, |v, key| &v[*key]).as_f64()?;
                Some((job(doc), value))
            })
            .collect();
        write_family(out, name, help, kind, &rows);
    }
    let labelled = |key: &'static str, value: &Value, doc: &Value| -> (Labels, f64) {
        let mut labels = job(doc);
        labels.push((key, value.as_str().unwrap_or("unknown").to_string()));
        (labels, 1.0)
    };
    let memory: Vec<(Labels, f64)> = stats
        .iter()
        .map(|doc| {
            labelled(
                "memory_status",
                &doc["model_size_stats"]["memory_status"],
                doc,
            )
        })
        .collect();
    write_family(
        out,
        "auspex_job_memory_status",
        "Model memory status (ok, soft_limit, hard_limit): 1 for the current one.",
        "gauge",
        &memory,
    );
    let states: Vec<(Labels, f64)> = stats
        .iter()
        .map(|doc| labelled("state", &doc["state"], doc))
        .collect();
    write_family(
        out,
        "auspex_job_state",
        "Job state (opened, closed, ...): 1 for the current one.",
        "gauge",
        &states,
    );
}
