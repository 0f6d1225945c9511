//! Forecasts from the job's side: `_forecast` through the job's actor, the stored documents
//! (`model_forecast` rows and one `model_forecast_request_stats` per forecast), `DELETE
//! _forecast`, `forecasts_stats`, and expiry.
//!
//! A forecast runs on the actor between two of its commands, so it sees the model exactly as the
//! job's earlier work left it; it only reads the model (`model::forecast`), so it is not an input
//! entry and a replay never repeats it. Its documents are one commit (store I2), keyed by the
//! forecast's create time, unique per job (store section 2). Deletes and expiry change the job's
//! results, so they go through `on_job_data` (the actor of an open job, store I1). Expired
//! forecasts go on `_delete_expired_data` and in an hourly sweep over all jobs.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::clock::now_ms;
use crate::engine::pipeline::Pipeline;
use crate::job::maintenance::Needs;
use crate::job::{wildcard_match, JobError, JobManager};
use crate::model::forecast::{self, ForecastError, ForecastRow, ForecastWindow};
use crate::store::{self, Commit, Progress, ResultDoc, ResultKind, Store};

/// How often the server looks for expired forecasts (Elasticsearch's nightly maintenance
/// removes them; an hour is close enough and costs one small scan per job).
const EXPIRY_SWEEP: Duration = Duration::from_secs(3600);
/// The first sweep after start, so a restart does not postpone expiry by a whole period.
const FIRST_SWEEP: Duration = Duration::from_secs(60);

/// A `_forecast` request, validated by the api layer (all times in ms).
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastRequest {
    pub job_id: String,
    pub duration_ms: i64,
    /// 0: the forecast never expires.
    pub expires_in_ms: i64,
    pub max_model_memory: u64,
}

fn cannot_run(error: ForecastError) -> JobError {
    JobError::BadRequest(format!("Cannot run forecast: {error}"))
}

/// Runs the forecast on the actor's pipeline and commits its documents; returns its id.
pub(super) fn run(
    store: &Store,
    pipeline: &Pipeline,
    progress: &Progress,
    request: &ForecastRequest,
) -> Result<String, JobError> {
    let started = Instant::now();
    let state = &pipeline.state;
    let start_ms = match (state.finalized_end, state.latest_result_time) {
        (Some(end), Some(_)) => end,
        _ => return Err(cannot_run(ForecastError::NoDataProcessed)),
    };
    let window = ForecastWindow {
        start_ms,
        end_ms: start_ms.saturating_add(request.duration_ms),
        bucket_span_ms: pipeline.bucket_span(),
    };
    let detector = &state.detector;
    let plan = forecast::plan(detector, window, request.max_model_memory).map_err(cannot_run)?;
    let rows = forecast::run(detector, window);
    let job_id = request.job_id.as_str();
    let create_ms = next_create_time(store, job_id, now_ms())?;
    let forecast_id = new_forecast_id();
    let mut docs = Vec::with_capacity(rows.len() + 1);
    let encode = |value: &Value| {
        serde_json::to_vec(value).map_err(|e| store::StoreError::Encode(e.to_string()))
    };
    let bucket_span_secs = window.bucket_span_ms / 1000;
    for (ordinal, row) in rows.iter().enumerate() {
        let doc = row_json(job_id, &forecast_id, create_ms, bucket_span_secs, row);
        docs.push(ResultDoc {
            kind: ResultKind::ModelForecast,
            timestamp_ms: create_ms,
            ordinal: ordinal as u32,
            json: encode(&doc)?,
        });
    }
    let messages: Vec<&str> = if plan.forecastable == 0 {
        vec![forecast::INSUFFICIENT_HISTORY]
    } else {
        Vec::new()
    };
    let stats = json!({
        "job_id": job_id,
        "result_type": "model_forecast_request_stats",
        "forecast_id": forecast_id,
        "processed_record_count": rows.len(),
        "forecast_messages": messages,
        "timestamp": window.start_ms,
        "forecast_start_timestamp": window.start_ms,
        "forecast_end_timestamp": window.end_ms,
        "forecast_create_timestamp": create_ms,
        // ml-cpp's convention: expiry = create time means it never expires.
        "forecast_expiry_timestamp": create_ms.saturating_add(request.expires_in_ms),
        "forecast_progress": 1.0,
        "processing_time_ms": started.elapsed().as_millis() as u64,
        "forecast_memory_bytes": plan.memory_bytes,
        "forecast_status": "finished",
    });
    docs.push(ResultDoc {
        kind: ResultKind::ForecastRequestStats,
        timestamp_ms: create_ms,
        ordinal: 0,
        json: encode(&stats)?,
    });
    // Results only: the progress record is written back unchanged.
    store.commit(
        job_id,
        &Commit {
            input: Vec::new(),
            results: docs,
            clear_results: None,
            progress: progress.clone(),
        },
    )?;
    Ok(forecast_id)
}

fn row_json(
    job_id: &str,
    forecast_id: &str,
    create_ms: i64,
    bucket_span_secs: i64,
    row: &ForecastRow,
) -> Value {
    let mut doc = Map::new();
    doc.insert("job_id".into(), json!(job_id));
    doc.insert("forecast_id".into(), json!(forecast_id));
    doc.insert("result_type".into(), json!("model_forecast"));
    doc.insert("bucket_span".into(), json!(bucket_span_secs));
    doc.insert("detector_index".into(), json!(row.detector_index));
    doc.insert("forecast_create_timestamp".into(), json!(create_ms));
    doc.insert("timestamp".into(), json!(row.timestamp));
    doc.insert("model_feature".into(), json!(row.model_feature));
    row.series.put(&mut doc);
    doc.insert("forecast_lower".into(), json!(row.lower));
    doc.insert("forecast_upper".into(), json!(row.upper));
    doc.insert("forecast_prediction".into(), json!(row.prediction));
    Value::Object(doc)
}

/// Elasticsearch's forecast ids are 20-character URL-safe strings; these are random too.
fn new_forecast_id() -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    hex[..20].to_string()
}

/// `now`, or one past the newest forecast's create time: the key of each forecast is unique.
fn next_create_time(store: &Store, job_id: &str, now: i64) -> Result<i64, JobError> {
    let newest = request_stats(store, job_id)?
        .iter()
        .filter_map(create_time)
        .max();
    Ok(newest.map_or(now, |t| now.max(t.saturating_add(1))))
}

fn create_time(stats: &Value) -> Option<i64> {
    stats.get("forecast_create_timestamp")?.as_i64()
}

fn forecast_id(stats: &Value) -> Option<&str> {
    stats.get("forecast_id")?.as_str()
}

fn decode(job_id: &str, bytes: &[u8]) -> Result<Value, JobError> {
    serde_json::from_slice(bytes).map_err(|e| {
        JobError::Store(store::StoreError::Encode(format!(
            "a stored forecast document of job [{job_id}] is not JSON: {e}"
        )))
    })
}

/// The job's `model_forecast_request_stats` documents, oldest first.
pub fn request_stats(store: &Store, job_id: &str) -> Result<Vec<Value>, JobError> {
    store
        .scan_results(job_id, ResultKind::ForecastRequestStats, None, None)?
        .iter()
        .map(|bytes| decode(job_id, bytes))
        .collect()
}

/// The rows of one forecast in time order (then detector and series), or `None` when the job
/// has no such forecast.
pub fn forecast_rows(
    store: &Store,
    job_id: &str,
    forecast_id_wanted: &str,
) -> Result<Option<Vec<Value>>, JobError> {
    let Some(created) = request_stats(store, job_id)?
        .iter()
        .find(|s| forecast_id(s) == Some(forecast_id_wanted))
        .and_then(create_time)
    else {
        return Ok(None);
    };
    let mut rows = store
        .scan_results(
            job_id,
            ResultKind::ModelForecast,
            Some(created),
            Some(created.saturating_add(1)),
        )?
        .iter()
        .map(|bytes| decode(job_id, bytes))
        .collect::<Result<Vec<Value>, JobError>>()?;
    // Stored series by series; readers want time order (a stable sort keeps series order).
    rows.sort_by_key(|row| row.get("timestamp").and_then(Value::as_i64));
    Ok(Some(rows))
}

/// Removes the forecasts created at `created` (rows and stats); returns how many documents.
fn remove(store: &Store, job_id: &str, created: &[i64]) -> Result<u64, JobError> {
    let mut removed = 0;
    for &t in created {
        let range = (Some(t), Some(t.saturating_add(1)));
        for kind in [ResultKind::ModelForecast, ResultKind::ForecastRequestStats] {
            removed += store.delete_kind(job_id, kind, range.0, range.1)?;
        }
    }
    Ok(removed)
}

/// The create times of the forecasts expired at `now` (a forecast whose expiry equals its create
/// time never expires).
fn expired(stats: &[Value], now: i64) -> Vec<i64> {
    stats
        .iter()
        .filter_map(|s| {
            let created = create_time(s)?;
            let expiry = s.get("forecast_expiry_timestamp")?.as_i64()?;
            (expiry != created && expiry <= now).then_some(created)
        })
        .collect()
}

/// Removes the job's expired forecasts; returns how many forecasts.
pub fn remove_expired(store: &Store, job_id: &str, now: i64) -> Result<usize, JobError> {
    let gone = expired(&request_stats(store, job_id)?, now);
    remove(store, job_id, &gone)?;
    Ok(gone.len())
}

/// `forecasts_stats` of the job's `_stats`, from its stored request stats.
pub fn forecasts_stats(stats: &[Value]) -> Value {
    if stats.is_empty() {
        return json!({"total": 0, "forecasted_jobs": 0});
    }
    let summary = |field: &str| {
        let values: Vec<f64> = stats
            .iter()
            .map(|s| s.get(field).and_then(Value::as_f64).unwrap_or(0.0))
            .collect();
        let total: f64 = values.iter().sum();
        json!({
            "total": total,
            "min": values.iter().copied().fold(f64::INFINITY, f64::min),
            "max": values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            "avg": total / values.len() as f64,
        })
    };
    let mut status = Map::new();
    for s in stats {
        let name = s
            .get("forecast_status")
            .and_then(Value::as_str)
            .unwrap_or("finished");
        let count = status.get(name).and_then(Value::as_u64).unwrap_or(0);
        status.insert(name.to_string(), json!(count + 1));
    }
    json!({
        "total": stats.len(),
        "forecasted_jobs": 1,
        "memory_bytes": summary("forecast_memory_bytes"),
        "records": summary("processed_record_count"),
        "processing_time_ms": summary("processing_time_ms"),
        "status": status,
    })
}

/// Whether `id` is named by a `DELETE _forecast` expression (`_all`, `*`, ids, wildcards).
fn named(expression: &str, id: &str) -> bool {
    is_all(expression)
        || expression
            .split(',')
            .map(str::trim)
            .any(|part| wildcard_match(part, id))
}

fn is_all(expression: &str) -> bool {
    matches!(expression.trim(), "" | "_all" | "*")
}

impl JobManager {
    /// `_forecast`: the job must be open; the forecast runs in the job's order of work.
    pub async fn forecast(&self, request: ForecastRequest) -> Result<String, JobError> {
        let config = self.require_job(&request.job_id)?;
        let handle = self.open_handle(&request.job_id)?;
        let span = &config.analysis_config.bucket_span;
        if request.duration_ms < span.millis {
            return Err(JobError::BadRequest(format!(
                "[duration] must be greater or equal to the bucket span: [{}/{}]",
                crate::model::TimeSpan::from_millis(request.duration_ms).text,
                span.text
            )));
        }
        // Elasticsearch keeps a forecast under 40% of the job's model memory limit.
        let job_limit = config.model_memory_limit_bytes();
        let request = ForecastRequest {
            max_model_memory: request
                .max_model_memory
                .min(((job_limit as f64 * 0.4) as u64).saturating_sub(1)),
            ..request
        };
        let id = handle.forecast(request).await?;
        self.store.flush().await?;
        Ok(id)
    }

    /// `DELETE _forecast[/<ids>]`.
    pub async fn delete_forecasts(
        &self,
        job_id: &str,
        expression: &str,
        allow_no_forecasts: bool,
    ) -> Result<(), JobError> {
        self.require_job(job_id)?;
        let (id, expr) = (job_id.to_string(), expression.to_string());
        let work = move |store: &Store| {
            let stats = request_stats(store, &id)?;
            let matched: Vec<i64> = stats
                .iter()
                .filter(|s| forecast_id(s).is_some_and(|f| named(&expr, f)))
                .filter_map(create_time)
                .collect();
            if matched.is_empty() && !(is_all(&expr) && allow_no_forecasts) {
                return Err(JobError::Missing(format!(
                    "No forecast(s) [{expr}] exists for job [{id}]"
                )));
            }
            remove(store, &id, &matched)?;
            Ok(Value::Null)
        };
        self.on_job_data(job_id, Needs::Any, Box::new(work)).await?;
        Ok(())
    }

    /// `forecasts_stats` of a job (zero counts if its documents cannot be read).
    pub(super) fn forecasts_stats_json(&self, job_id: &str) -> Value {
        match request_stats(&self.store, job_id) {
            Ok(stats) => forecasts_stats(&stats),
            Err(error) => {
                tracing::warn!(%job_id, %error, "forecast stats unreadable");
                forecasts_stats(&[])
            }
        }
    }

    /// Removes every job's expired forecasts (a job busy with something else waits for the next
    /// sweep). Jobs with none expired are not touched.
    pub async fn sweep_expired_forecasts(&self) {
        let now = now_ms();
        let Ok(ids) = self.expand_ids("_all", true) else {
            return;
        };
        for job_id in ids {
            let due = request_stats(&self.store, &job_id).map(|s| !expired(&s, now).is_empty());
            if !matches!(due, Ok(true)) {
                continue;
            }
            let id = job_id.clone();
            let work = move |store: &Store| Ok(json!(remove_expired(store, &id, now)?));
            match self.on_job_data(&job_id, Needs::Any, Box::new(work)).await {
                Ok(removed) => tracing::info!(%job_id, %removed, "expired forecasts deleted"),
                Err(error) => tracing::info!(%job_id, %error, "expired forecasts not deleted now"),
            }
        }
    }
}

/// Starts the hourly sweep; it ends when the manager is dropped.
pub(super) fn start_expiry_sweep(manager: &Arc<JobManager>) {
    let manager: Weak<JobManager> = Arc::downgrade(manager);
    tokio::spawn(async move {
        let mut wait = FIRST_SWEEP;
        loop {
            tokio::time::sleep(wait).await;
            wait = EXPIRY_SWEEP;
            let Some(manager) = manager.upgrade() else {
                return;
            };
            manager.sweep_expired_forecasts().await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(id: &str, created: i64, expiry: i64, memory: u64, records: u64) -> Value {
        json!({"forecast_id": id, "forecast_create_timestamp": created,
               "forecast_expiry_timestamp": expiry, "forecast_memory_bytes": memory,
               "processed_record_count": records, "processing_time_ms": 2,
               "forecast_status": "finished"})
    }

    #[test]
    fn expiry_spares_forecasts_that_never_expire() {
        let all = [
            stats("a", 100, 200, 1, 1),
            stats("b", 150, 150, 1, 1),
            stats("c", 160, 900, 1, 1),
        ];
        assert_eq!(expired(&all, 199), Vec::<i64>::new());
        assert_eq!(expired(&all, 200), vec![100]);
        assert_eq!(expired(&all, 10_000), vec![100, 160]);
    }

    #[test]
    fn stats_summarize_every_forecast() {
        assert_eq!(
            forecasts_stats(&[]),
            json!({"total": 0, "forecasted_jobs": 0})
        );
        let s = forecasts_stats(&[stats("a", 1, 2, 100, 10), stats("b", 3, 4, 300, 30)]);
        assert_eq!(s["total"], 2);
        assert_eq!(s["forecasted_jobs"], 1);
        assert_eq!(
            s["memory_bytes"],
            json!({"total": 400.0, "min": 100.0, "max": 300.0, "avg": 200.0})
        );
        assert_eq!(s["records"]["avg"], 20.0);
        assert_eq!(s["status"], json!({"finished": 2}));
    }

    #[test]
    fn delete_expressions() {
        for all in ["", "_all", "*"] {
            assert!(named(all, "abc"));
        }
        assert!(named("x,abc", "abc"));
        assert!(named("ab*", "abc"));
        assert!(!named("x,y", "abc"));
    }
}
