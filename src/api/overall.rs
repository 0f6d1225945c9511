//! `GET/POST _ml/anomaly_detectors/<jobs>/results/overall_buckets`: how anomalous a set of jobs
//! is, bucket by bucket.
//!
//! Owns the parameters (query string or body), their checks, and the computation (a pure function
//! of the jobs' stored buckets): an overall bucket spans `bucket_span` (default: the largest bucket
//! span of the jobs; a smaller one is refused); each job contributes the highest `anomaly_score` of
//! its buckets inside it; `overall_score` is the mean of the `top_n` highest job scores (fewer when
//! fewer jobs have buckets there); `overall_score` as a parameter keeps buckets scoring at least
//! that; an overall bucket is interim when any of its buckets is. Talks to: `job` (ids, configs),
//! `store` (bucket scans).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::error::ApiError;
use super::params::ParamSpec;
use super::reply::Reply;
use super::request::ApiRequest;
use super::results::time_range;
use super::AppState;
use crate::model::TimeSpan;
use crate::store::ResultKind;

const PARAMS: &[&str] = &[
    "top_n",
    "bucket_span",
    "overall_score",
    "exclude_interim",
    "start",
    "end",
    "allow_no_match",
];

const OVERALL_BUCKETS: ParamSpec = ParamSpec {
    api: "get_overall_buckets",
    query: PARAMS,
    body: Some(PARAMS),
};

pub async fn get(
    state: &AppState,
    expression: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params(&OVERALL_BUCKETS)?;
    let top_n = params.int("top_n")?.unwrap_or(1);
    if top_n <= 0 {
        return Err(ApiError::illegal_argument(format!(
            "[top_n] parameter must be positive, found [{top_n}]"
        )));
    }
    let min_score = params.double("overall_score")?.unwrap_or(0.0);
    let exclude_interim = params.bool_or("exclude_interim", false)?;
    let allow_no_match = params.bool_or("allow_no_match", true)?;
    let requested_span = match params.string("bucket_span")? {
        Some(text) => Some(TimeSpan::parse(&text).map_err(ApiError::illegal_argument)?),
        None => None,
    };
    let (start, end) = time_range(&params)?;
    let ids = state.jobs.expand_ids(expression, allow_no_match)?;
    let mut spans = Vec::new();
    for id in &ids {
        spans.push(state.jobs.require_job(id)?.analysis_config.bucket_span);
    }
    let Some(max_span) = spans.into_iter().max_by_key(|s| s.millis) else {
        return Ok(Reply::ok(json!({"count": 0, "overall_buckets": []})));
    };
    let span = match requested_span {
        Some(span) if span.millis < max_span.millis => {
            return Err(ApiError::illegal_argument(format!(
                "Param [bucket_span] must be greater or equal to the max bucket_span [{}]",
                max_span.text
            )))
        }
        Some(span) => span.millis,
        None => max_span.millis,
    }
    .max(1);
    // Whole overall buckets: the range is widened to overall bucket boundaries.
    let start = start.map(|s| s.div_euclid(span) * span);
    let store = state.jobs.store().clone();
    let per_job = tokio::task::spawn_blocking(move || {
        ids.into_iter()
            .map(|id| {
                let docs = store.scan_results(&id, ResultKind::Bucket, start, end)?;
                let buckets: Vec<Value> = docs
                    .iter()
                    .filter_map(|d| serde_json::from_slice(d).ok())
                    .collect();
                Ok((id, buckets))
            })
            .collect::<Result<Vec<_>, crate::store::StoreError>>()
    })
    .await
    .map_err(|e| ApiError::internal(&format!("overall buckets task failed: {e}")))??;
    let buckets: Vec<Value> = overall_buckets(&per_job, span, top_n as usize, exclude_interim)
        .into_iter()
        .filter(|b| b["overall_score"].as_f64().unwrap_or(0.0) >= min_score)
        .collect();
    Ok(Reply::ok(
        json!({"count": buckets.len(), "overall_buckets": buckets}),
    ))
}

/// Overall buckets of `span` ms from each job's buckets, in time order (see the module doc).
pub fn overall_buckets(
    per_job: &[(String, Vec<Value>)],
    span: i64,
    top_n: usize,
    exclude_interim: bool,
) -> Vec<Value> {
    // overall bucket start -> (job -> max score), interim
    let mut slots: BTreeMap<i64, (BTreeMap<&str, f64>, bool)> = BTreeMap::new();
    for (job_id, buckets) in per_job {
        for bucket in buckets {
            let interim = bucket["is_interim"].as_bool() == Some(true);
            if exclude_interim && interim {
                continue;
            }
            let Some(timestamp) = bucket["timestamp"].as_i64() else {
                continue;
            };
            let score = bucket["anomaly_score"].as_f64().unwrap_or(0.0);
            let slot = slots.entry(timestamp.div_euclid(span) * span).or_default();
            let max = slot.0.entry(job_id.as_str()).or_insert(score);
            *max = max.max(score);
            slot.1 |= interim;
        }
    }
    slots
        .into_iter()
        .map(|(timestamp, (jobs, interim))| {
            let mut scores: Vec<f64> = jobs.values().copied().collect();
            scores.sort_by(|a, b| b.total_cmp(a));
            let top = &scores[..top_n.min(scores.len())];
            let overall = top.iter().sum::<f64>() / top.len().max(1) as f64;
            let jobs: Vec<Value> = jobs
                .iter()
                .map(|(job_id, score)| json!({"job_id": job_id, "max_anomaly_score": score}))
                .collect();
            json!({
                "timestamp": timestamp,
                "bucket_span": span / 1000,
                "overall_score": overall,
                "jobs": jobs,
                "is_interim": interim,
                "result_type": "overall_bucket",
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(timestamp: i64, score: f64, interim: bool) -> Value {
        json!({"timestamp": timestamp, "anomaly_score": score, "is_interim": interim})
    }

    #[test]
    fn top_n_averages_the_highest_job_maxima() {
        let per_job = vec![
            (
                "a".to_string(),
                vec![bucket(0, 10.0, false), bucket(3_600_000, 80.0, false)],
            ),
            (
                "b".to_string(),
                vec![
                    bucket(0, 30.0, false),
                    bucket(1_800_000, 50.0, false),
                    bucket(3_600_000, 0.0, true),
                ],
            ),
            ("c".to_string(), vec![bucket(0, 20.0, false)]),
        ];
        let top1 = overall_buckets(&per_job, 3_600_000, 1, false);
        let scores: Vec<f64> = top1
            .iter()
            .map(|b| b["overall_score"].as_f64().unwrap())
            .collect();
        assert_eq!(scores, vec![50.0, 80.0]);
        assert_eq!(top1[0]["jobs"].as_array().unwrap().len(), 3);
        assert_eq!(
            top1[0]["jobs"][1],
            json!({"job_id": "b", "max_anomaly_score": 50.0})
        );
        assert_eq!(top1[1]["is_interim"], true);
        assert_eq!(top1[0]["bucket_span"], 3600);
        let top2 = overall_buckets(&per_job, 3_600_000, 2, false);
        assert_eq!(top2[0]["overall_score"], 35.0);
        // Fewer jobs than top_n: the mean of those there are.
        assert_eq!(top2[1]["overall_score"], 40.0);
        let final_only = overall_buckets(&per_job, 3_600_000, 2, true);
        assert_eq!(final_only[1]["overall_score"], 80.0);
        assert_eq!(final_only[1]["is_interim"], false);
    }
}
