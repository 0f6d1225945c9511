//! Background replay tasks for the HTTP API: start one, poll its progress by id.
//!
//! The registry is process-wide (like the metrics registry): task ids are unique per process and
//! only the most recent [`KEEP_FINISHED`] finished tasks are remembered. A task runs on the blocking
//! pool; its target job stays reserved (`opening`) until the task ends, then is released as closed,
//! or as failed when the replay failed (a half-built job is never taken for a whole one).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};

use crate::clock::now_ms;
use crate::job::JobManager;
use crate::replay::stored::StoredReplay;
use crate::replay::Counters;

/// Finished tasks kept for polling.
pub const KEEP_FINISHED: usize = 100;

/// One replay task.
pub struct Task {
    pub id: String,
    pub source_job_id: String,
    pub job_id: String,
    pub snapshot_id: Option<String>,
    pub start_time: i64,
    pub counters: Arc<Counters>,
    /// `None` while running; then the end time and the error, if any.
    outcome: Mutex<Option<(i64, Option<String>)>>,
}

impl Task {
    /// The task document `GET /_auspex/tasks/<id>` answers.
    pub fn to_json(&self) -> Value {
        let outcome = self
            .outcome
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let progress = self.counters.snapshot();
        let state = match &outcome {
            None => "running",
            Some((_, None)) => "completed",
            Some((_, Some(_))) => "failed",
        };
        let mut doc = json!({
            "task_id": self.id,
            "type": "replay",
            "source_job_id": self.source_job_id,
            "job_id": self.job_id,
            "state": state,
            "start_time": self.start_time,
            "progress": {
                "input_entries_total": progress.total,
                "input_entries_done": progress.done,
                "percent": percent(progress.done, progress.total),
                "processed_record_count": progress.records,
                "bucket_count": progress.buckets,
                "anomaly_record_count": progress.anomaly_records,
            },
        });
        let map = doc.as_object_mut().expect("object literal");
        if let Some(id) = &self.snapshot_id {
            map.insert("snapshot_id".into(), id.clone().into());
        }
        if let Some((end, error)) = outcome {
            map.insert("end_time".into(), end.into());
            if let Some(error) = error {
                map.insert("error".into(), error.into());
            }
        }
        doc
    }

    pub fn is_finished(&self) -> bool {
        self.outcome
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .is_some()
    }

    fn finish(&self, error: Option<String>) {
        *self
            .outcome
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((now_ms(), error));
    }
}

fn percent(done: u64, total: u64) -> f64 {
    if total == 0 {
        100.0
    } else {
        (done as f64 * 1000.0 / total as f64).round() / 10.0
    }
}

/// The process's tasks.
#[derive(Default)]
pub struct Tasks {
    next_id: AtomicU64,
    tasks: Mutex<BTreeMap<u64, Arc<Task>>>,
}

/// The process-wide registry.
pub fn tasks() -> &'static Tasks {
    static TASKS: OnceLock<Tasks> = OnceLock::new();
    TASKS.get_or_init(Tasks::default)
}

impl Tasks {
    pub fn get(&self, id: &str) -> Option<Arc<Task>> {
        let number = id.strip_prefix("replay-")?.parse::<u64>().ok()?;
        self.lock().get(&number).cloned()
    }

    /// Every remembered task, oldest first.
    pub fn list(&self) -> Vec<Arc<Task>> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Task>>> {
        self.tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts `replay` into its target job, which `jobs` holds reserved (`put_job_reserved`).
    /// Must be called within a tokio runtime.
    pub fn start(&self, jobs: Arc<JobManager>, replay: StoredReplay) -> Arc<Task> {
        let number = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let task = Arc::new(Task {
            id: format!("replay-{number}"),
            source_job_id: replay.source_job_id.clone(),
            job_id: replay.target.job_id.clone(),
            snapshot_id: replay.snapshot_id.clone(),
            start_time: now_ms(),
            counters: Arc::new(Counters::default()),
            outcome: Mutex::new(None),
        });
        {
            let mut tasks = self.lock();
            tasks.insert(number, task.clone());
            let finished: Vec<u64> = tasks
                .iter()
                .filter(|(_, t)| t.is_finished())
                .map(|(n, _)| *n)
                .collect();
            for old in finished
                .iter()
                .take(finished.len().saturating_sub(KEEP_FINISHED))
            {
                tasks.remove(old);
            }
        }
        let running = task.clone();
        tokio::spawn(async move {
            let store = jobs.store().clone();
            let counters = running.counters.clone();
            let job_id = running.job_id.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                replay.run_into_store(&store, counters).map(|_| ())
            })
            .await;
            let error = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(error.to_string()),
                Err(join) => Some(format!("the replay stopped unexpectedly: {join}")),
            };
            if let Some(error) = &error {
                tracing::error!(task = %running.id, %job_id, %error, "replay failed");
            } else {
                tracing::info!(task = %running.id, %job_id, "replay completed");
            }
            let released = jobs.release(&job_id, error.is_some()).await;
            let error = error.or_else(|| released.err().map(|e| e.to_string()));
            running.finish(error);
        });
        task
    }
}
