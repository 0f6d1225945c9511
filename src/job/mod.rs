//! Job: configs, lifecycle, and one actor per open job that owns its model and serializes its work.
//!
//! [`JobManager`] is the registry. A job exists in three places, kept consistent here:
//! the `jobs` tree (its config; only the manager writes it), the `progress` tree (its persisted state
//! and counts; written by its actor while open, by the manager otherwise), and the in-memory slot
//! (its phase and, while open, the handle of its actor). The slot map's lock is never held across an
//! `.await`: a lifecycle change marks the slot `Opening`/`Closing`/`Deleting`, does its slow work
//! unlocked, then records the outcome; a request that meets a transitional phase gets a 409.

mod actor;
mod calendars;
mod clock;
pub mod config;
mod error;
mod filters;
mod forecast;
mod ids;
mod maintenance;
mod model_snapshots;
pub mod pipeline;
pub mod renormalize;
mod retention;
pub mod rules;
pub mod snapshot;
mod status;
#[cfg(test)]
mod tests;
mod update;
mod upgrade_mode;

pub use actor::result_docs;
pub use calendars::NewEvent;
pub use clock::now_ms;
pub use config::JobConfig;
pub use error::JobError;
pub use forecast::{forecast_rows, request_stats as forecast_request_stats, ForecastRequest};
pub use ids::wildcard_match;
pub use retention::{expired_snapshots, SnapshotAge};
pub use status::JobStatus;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;

use crate::job::actor::JobHandle;
use crate::store::{PersistedState, Progress, Store};

/// `_flush` parameters after date parsing (all times epoch ms), validated by the api layer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlushParams {
    pub calc_interim: bool,
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub advance_time: Option<i64>,
    pub skip_time: Option<i64>,
}

/// A job's state as Elasticsearch names it (`state` in `_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Opening,
    Opened,
    Closing,
    Closed,
    Failed,
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JobState::Opening => "opening",
            JobState::Opened => "opened",
            JobState::Closing => "closing",
            JobState::Closed => "closed",
            JobState::Failed => "failed",
        })
    }
}

enum Phase {
    Closed,
    Failed,
    Opening,
    Opened {
        handle: JobHandle,
        since: Instant,
    },
    Closing,
    Deleting,
    /// Opened on disk, with no actor while upgrade mode is on (`upgrade_mode`).
    Parked,
    /// Closed, with the manager changing its stored data (revert, reset, snapshot edits, retention);
    /// `was_failed` is the phase to return to.
    Busy {
        was_failed: bool,
    },
}

struct JobSlot {
    config: Arc<JobConfig>,
    phase: Phase,
    /// Why the last open or restore failed (kept until an open succeeds); shown as
    /// `assignment_explanation`. An open job shows its restore note instead (`JobHandle::note`).
    note: Option<String>,
    /// Set when the stored config could not be read: `config` is a stand-in, and the job can
    /// only be deleted.
    damaged: Option<String>,
}

impl JobSlot {
    fn state(&self) -> JobState {
        match &self.phase {
            Phase::Closed | Phase::Deleting | Phase::Busy { was_failed: false } => JobState::Closed,
            Phase::Failed | Phase::Busy { was_failed: true } => JobState::Failed,
            Phase::Opening => JobState::Opening,
            Phase::Opened { handle, .. } if handle.has_failed() => JobState::Failed,
            Phase::Opened { .. } | Phase::Parked => JobState::Opened,
            Phase::Closing => JobState::Closing,
        }
    }
}

/// Registry of jobs and their actors.
pub struct JobManager {
    store: Store,
    node_id: String,
    slots: Mutex<BTreeMap<String, JobSlot>>,
    /// `upgrade_mode`: the stored setting, read on every write request.
    upgrade_mode: AtomicBool,
    upgrade_mode_change: tokio::sync::Mutex<()>,
    /// Jobs `shutdown` could not persist (the process must then not exit as if all went well).
    unpersisted_at_shutdown: std::sync::atomic::AtomicUsize,
    /// The gap bound every actor applies to new input (`pipeline::DEFAULT_MAX_EMPTY_BUCKETS`).
    max_empty_buckets: u64,
}

impl JobManager {
    /// [`JobManager::start_with`] the default gap bound.
    pub async fn start(store: Store) -> Result<Arc<JobManager>, JobError> {
        JobManager::start_with(store, pipeline::DEFAULT_MAX_EMPTY_BUCKETS).await
    }

    /// Opens the registry on a store; reopens the jobs that were open when the process stopped.
    /// `max_empty_buckets` is the gap bound of new input (`limits.max_empty_buckets`).
    pub async fn start_with(
        store: Store,
        max_empty_buckets: u64,
    ) -> Result<Arc<JobManager>, JobError> {
        let mut slots = BTreeMap::new();
        let mut to_reopen = Vec::new();
        let upgrade_mode = upgrade_mode::stored_upgrade_mode(&store)?;
        let mut stored: Vec<(String, Result<JobConfig, String>)> = store
            .scan_job_configs()?
            .into_iter()
            .map(|(job_id, bytes)| {
                let config = bytes.map_err(|e| e.to_string()).and_then(|bytes| {
                    serde_json::from_slice::<JobConfig>(&bytes)
                        .map_err(|e| format!("the stored config is not a job config: {e}"))
                });
                (job_id, config)
            })
            .collect();
        for job_id in store.jobs_without_config()? {
            stored.push((
                job_id,
                Err("the job's config is missing from the store".into()),
            ));
        }
        // A job the store lost whole (its writes after sled's last durable epoch) is still shown.
        for (job_id, reason) in store.lost() {
            if !job_id.starts_with('\0') && !stored.iter().any(|(id, _)| *id == job_id) {
                stored.push((job_id, Err(reason)));
            }
        }
        for (job_id, config) in stored {
            // One damaged job is failed, with the reason; the server serves the others.
            let (config, damaged) = match config {
                Ok(config) => (config, None),
                Err(reason) => {
                    let reason = format!(
                        "the job's stored config is damaged ({reason}); it cannot be used: delete it \
                         (DELETE _ml/anomaly_detectors/{job_id}?force=true, or offline `auspex jobs \
                         delete {job_id}`)"
                    );
                    tracing::error!(%job_id, %reason, "job config unreadable; the job is failed");
                    match damaged_placeholder(&job_id) {
                        Some(config) => (config, Some(reason)),
                        None => continue,
                    }
                }
            };
            let problems = match damaged {
                Some(_) => Vec::new(),
                None => check_stored_job(&store, &job_id).await,
            };
            let mut note = damaged.clone();
            let phase = match store.get_progress(&job_id).map(|p| p.map(|p| p.state)) {
                _ if note.is_some() => Phase::Failed,
                _ if !problems.is_empty() => {
                    let reason = problems.join("; ");
                    tracing::error!(%job_id, %reason, "the job's stored data is damaged; the job is failed");
                    note = Some(format!(
                        "the job's stored data is damaged and it is not served: {reason}"
                    ));
                    Phase::Failed
                }
                Ok(Some(PersistedState::Failed)) => Phase::Failed,
                Ok(Some(PersistedState::Opened)) if upgrade_mode => Phase::Parked,
                Ok(Some(PersistedState::Opened)) => {
                    to_reopen.push(job_id.clone());
                    Phase::Opening
                }
                Ok(_) => Phase::Closed,
                Err(error) => {
                    tracing::error!(%job_id, %error, "job progress unreadable; the job is failed");
                    note = Some(format!("the job's progress record is damaged: {error}"));
                    Phase::Failed
                }
            };
            slots.insert(
                job_id,
                JobSlot {
                    config: Arc::new(config),
                    phase,
                    note,
                    damaged,
                },
            );
        }
        let manager = Arc::new(JobManager {
            store,
            node_id: uuid::Uuid::new_v4().simple().to_string()[..22].to_string(),
            slots: Mutex::new(slots),
            upgrade_mode: AtomicBool::new(upgrade_mode),
            upgrade_mode_change: tokio::sync::Mutex::new(()),
            unpersisted_at_shutdown: std::sync::atomic::AtomicUsize::new(0),
            max_empty_buckets,
        });
        for job_id in to_reopen {
            manager.resume_opened_job(&job_id).await;
        }
        manager.store.flush().await?;
        forecast::start_expiry_sweep(&manager);
        Ok(manager)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The id this process answers `_open` with and reports as the job's node.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, JobSlot>> {
        // A panic while holding this lock leaves the map itself consistent (every change is a
        // single field assignment), so a poisoned lock is safe to keep using.
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn slot_config(&self, job_id: &str) -> Result<Arc<JobConfig>, JobError> {
        self.lock()
            .get(job_id)
            .map(|slot| slot.config.clone())
            .ok_or_else(|| not_found(job_id))
    }

    fn set_phase(&self, job_id: &str, phase: Phase) {
        if let Some(slot) = self.lock().get_mut(job_id) {
            slot.phase = phase;
        }
    }

    /// Writes the job's lifecycle state while no actor owns its progress record.
    fn persist_state(&self, job_id: &str, state: PersistedState) -> Result<(), JobError> {
        let mut progress = self.store.get_progress(job_id)?.unwrap_or(Progress {
            state,
            last_seq: 0,
            latest_snapshot_id: None,
            status: Vec::new(),
        });
        progress.state = state;
        self.store.put_progress(job_id, &progress)?;
        if let Some(slot) = self.lock().get_mut(job_id) {
            slot.phase = match state {
                PersistedState::Failed => Phase::Failed,
                _ => Phase::Closed,
            };
        }
        Ok(())
    }

    /// `PUT _ml/anomaly_detectors/<job_id>`: returns the created job document.
    pub async fn put_job(&self, job_id: &str, body: &[u8]) -> Result<serde_json::Value, JobError> {
        let config = self.create_job(job_id, body, Phase::Closed).await?;
        serde_json::to_value(&config).map_err(|e| JobError::Parse(e.to_string()))
    }

    /// Creates a job that stays `opening` (open, close and delete answer 409) until
    /// [`JobManager::release`]: background work such as a replay fills in its input, results and
    /// snapshot meanwhile, as the job's only writer (I1).
    pub async fn put_job_reserved(&self, job_id: &str, body: &[u8]) -> Result<JobConfig, JobError> {
        self.create_job(job_id, body, Phase::Opening).await
    }

    /// Ends a [`JobManager::put_job_reserved`] reservation: the job is closed, or failed (persisted,
    /// so a half-built job is never mistaken for a complete one).
    pub async fn release(&self, job_id: &str, failed: bool) -> Result<(), JobError> {
        if failed {
            self.persist_state(job_id, PersistedState::Failed)?;
        } else {
            self.set_phase(job_id, Phase::Closed);
        }
        self.store.flush().await?;
        Ok(())
    }

    async fn create_job(
        &self,
        job_id: &str,
        body: &[u8],
        phase: Phase,
    ) -> Result<JobConfig, JobError> {
        let config = JobConfig::from_put_body(job_id, body, clock::now_ms())?;
        // The filters the rules scope on must exist.
        rules::resolve(&self.store, &config)?;
        let json = serde_json::to_vec(&config).map_err(|e| JobError::Parse(e.to_string()))?;
        {
            let mut slots = self.lock();
            if slots.contains_key(job_id) {
                return Err(JobError::AlreadyExists {
                    job_id: job_id.to_string(),
                });
            }
            let progress = Progress {
                state: PersistedState::Closed,
                last_seq: 0,
                latest_snapshot_id: None,
                status: Vec::new(),
            };
            if !self.store.create_job(job_id, &json, &progress)? {
                return Err(JobError::AlreadyExists {
                    job_id: job_id.to_string(),
                });
            }
            slots.insert(
                job_id.to_string(),
                JobSlot {
                    config: Arc::new(config.clone()),
                    phase,
                    note: None,
                    damaged: None,
                },
            );
        }
        self.store.flush().await?;
        Ok(config)
    }

    /// Expands an id expression (id, group, comma list, wildcards, `_all`, empty = all) to sorted ids.
    /// With `allow_no_match = false` an expression part that matches nothing is a 404.
    pub fn expand_ids(
        &self,
        expression: &str,
        allow_no_match: bool,
    ) -> Result<Vec<String>, JobError> {
        let slots = self.lock();
        ids::expand(
            expression,
            slots.values().map(|slot| ids::Known {
                job_id: &slot.config.job_id,
                groups: &slot.config.groups,
            }),
            allow_no_match,
        )
    }

    /// `GET _ml/anomaly_detectors/<expr>`: the job documents.
    pub fn get_jobs(
        &self,
        expression: &str,
        allow_no_match: bool,
    ) -> Result<Vec<serde_json::Value>, JobError> {
        let ids = self.expand_ids(expression, allow_no_match)?;
        let configs: Vec<Arc<JobConfig>> = {
            let slots = self.lock();
            ids.iter()
                .filter_map(|id| slots.get(id).map(|slot| slot.config.clone()))
                .collect()
        };
        configs
            .iter()
            .map(|config| {
                let mut doc =
                    serde_json::to_value(&**config).map_err(|e| JobError::Parse(e.to_string()))?;
                self.fill_model_snapshot_id(&config.job_id, &mut doc)?;
                Ok(doc)
            })
            .collect()
    }

    /// `GET _ml/anomaly_detectors/<expr>/_stats`: one stats document per job.
    pub async fn job_stats(
        &self,
        expression: &str,
        allow_no_match: bool,
    ) -> Result<Vec<serde_json::Value>, JobError> {
        let ids = self.expand_ids(expression, allow_no_match)?;
        let mut out = Vec::with_capacity(ids.len());
        for job_id in ids {
            let (state, open_for, config, mut note) = {
                let slots = self.lock();
                let Some(slot) = slots.get(&job_id) else {
                    continue;
                };
                let (open_for, note) = match &slot.phase {
                    Phase::Opened { since, handle } => (
                        Some(since.elapsed().as_secs()),
                        handle.note().map(str::to_string),
                    ),
                    Phase::Parked => (None, Some(upgrade_mode::PARKED_EXPLANATION.to_string())),
                    _ => (None, slot.note.clone()),
                };
                (slot.state(), open_for, slot.config.clone(), note)
            };
            // A damaged progress record must not hide every other job's stats.
            let status = match snapshot::stored_status(&self.store, &job_id) {
                Ok((_, status)) => status,
                Err(error) => {
                    note.get_or_insert_with(|| {
                        format!("the job's progress is unreadable: {error}")
                    });
                    JobStatus::default()
                }
            };
            let mut stats = serde_json::json!({
                "job_id": job_id,
                "data_counts": status.counts.to_json(&job_id),
                "model_size_stats": status.model_size_stats_json(&job_id, snapshot::memory_limit_bytes(&config)),
                "forecasts_stats": self.forecasts_stats_json(&job_id),
                "state": state.to_string(),
            });
            let map = stats.as_object_mut().expect("object literal");
            // A parked job (upgrade mode) is opened but assigned to no node, as in Elasticsearch.
            if state == JobState::Opened && open_for.is_some() {
                map.insert("node".into(), self.node_json());
            }
            if state == JobState::Opened || note.is_some() {
                map.insert(
                    "assignment_explanation".into(),
                    note.unwrap_or_default().into(),
                );
            }
            if let Some(secs) = open_for {
                map.insert("open_time".into(), format!("{secs}s").into());
            }
            map.insert("timing_stats".into(), status.timing.to_json(&job_id));
            out.push(stats);
        }
        Ok(out)
    }

    /// The model bytes of the jobs open now (`anomaly_detectors_in_bytes` of memory stats), as
    /// their actors last measured them.
    pub fn open_jobs_model_bytes(&self) -> u64 {
        let open: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, slot)| matches!(slot.phase, Phase::Opened { .. }))
            .map(|(id, _)| id.clone())
            .collect();
        open.iter()
            .filter_map(|id| snapshot::stored_status(&self.store, id).ok())
            .map(|(_, status)| status.model_size_stats.model_bytes)
            .sum()
    }

    fn node_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.node_id,
            "name": "auspex",
            "ephemeral_id": self.node_id,
            "transport_address": "127.0.0.1:9300",
            "attributes": {},
        })
    }

    pub async fn delete_job(&self, job_id: &str, force: bool) -> Result<(), JobError> {
        let handle = {
            let mut slots = self.lock();
            let slot = slots.get_mut(job_id).ok_or_else(|| not_found(job_id))?;
            let state = slot.state();
            let handle = match (&slot.phase, force) {
                (Phase::Closed, _) => None,
                (Phase::Opened { handle, .. }, true) => Some(handle.clone()),
                (Phase::Failed, true) => None,
                (Phase::Opened { .. } | Phase::Failed, false) => {
                    return Err(JobError::Conflict(format!(
                        "Cannot delete job [{job_id}] because the job is {state}"
                    )))
                }
                (
                    Phase::Opening
                    | Phase::Closing
                    | Phase::Deleting
                    | Phase::Busy { .. }
                    | Phase::Parked,
                    _,
                ) => {
                    return Err(JobError::Conflict(format!(
                        "Cannot delete job [{job_id}] because the job is {state}"
                    )))
                }
            };
            slot.phase = Phase::Deleting;
            handle
        };
        if let Some(handle) = handle {
            // The actor may already be gone (failed); either way it no longer writes.
            let _ = handle.stop().await;
        }
        let store = self.store.clone();
        let id = job_id.to_string();
        let deleted = tokio::task::spawn_blocking(move || store.delete_job(&id))
            .await
            .map_err(|_| JobError::ActorGone {
                job_id: job_id.to_string(),
            })?;
        if let Err(error) = deleted {
            self.set_phase(job_id, Phase::Closed);
            return Err(error.into());
        }
        self.lock().remove(job_id);
        self.store.flush().await?;
        Ok(())
    }

    pub async fn open_job(&self, job_id: &str) -> Result<(), JobError> {
        let config = {
            let mut slots = self.lock();
            let slot = slots.get_mut(job_id).ok_or_else(|| not_found(job_id))?;
            if matches!(slot.phase, Phase::Busy { .. }) {
                return Err(JobError::Conflict(format!(
                    "Cannot open job [{job_id}] while its model state is being changed"
                )));
            }
            if let Some(reason) = &slot.damaged {
                return Err(JobError::Damaged {
                    job_id: job_id.to_string(),
                    reason: reason.clone(),
                });
            }
            match slot.state() {
                JobState::Opened => return Ok(()),
                JobState::Closed => {}
                JobState::Failed => {
                    return Err(JobError::Conflict(format!(
                        "Cannot open job [{job_id}] because it has failed; close it with force=true first"
                    )))
                }
                other => {
                    return Err(JobError::Conflict(format!(
                        "Cannot open job [{job_id}] because it is {other}"
                    )))
                }
            }
            slot.phase = Phase::Opening;
            slot.config.clone()
        };
        let problems = check_stored_job(&self.store, job_id).await;
        let outcome = match problems.is_empty() {
            true => actor::spawn(config, self.store.clone(), self.max_empty_buckets).await,
            false => Err(JobError::Damaged {
                job_id: job_id.to_string(),
                reason: problems.join("; "),
            }),
        };
        if let Some(slot) = self.lock().get_mut(job_id) {
            match &outcome {
                Ok(handle) => {
                    slot.note = None;
                    slot.phase = Phase::Opened {
                        handle: handle.clone(),
                        since: Instant::now(),
                    };
                }
                Err(error) => {
                    slot.note = Some(error.to_string());
                    slot.phase = Phase::Closed;
                }
            }
        }
        outcome?;
        self.store.flush().await?;
        Ok(())
    }

    pub async fn close_jobs(
        &self,
        expression: &str,
        force: bool,
        allow_no_match: bool,
    ) -> Result<(), JobError> {
        let ids = self.expand_ids(expression, allow_no_match)?;
        if !force {
            let slots = self.lock();
            if let Some(failed) = ids.iter().find(|id| {
                slots
                    .get(*id)
                    .is_some_and(|s| s.state() == JobState::Failed)
            }) {
                return Err(JobError::Conflict(format!(
                    "cannot close job [{failed}] because it failed, use force close"
                )));
            }
        }
        for job_id in ids {
            self.close_one(&job_id, force).await?;
        }
        self.store.flush().await?;
        Ok(())
    }

    async fn close_one(&self, job_id: &str, force: bool) -> Result<(), JobError> {
        let handle = {
            let mut slots = self.lock();
            let Some(slot) = slots.get_mut(job_id) else {
                return Ok(());
            };
            let handle = match &slot.phase {
                Phase::Closed | Phase::Deleting => return Ok(()),
                Phase::Opening | Phase::Closing | Phase::Busy { .. } | Phase::Parked => {
                    return Err(JobError::Conflict(format!(
                        "Cannot close job [{job_id}] because it is {}",
                        slot.state()
                    )))
                }
                Phase::Failed => None,
                Phase::Opened { handle, .. } => Some(handle.clone()),
            };
            slot.phase = Phase::Closing;
            handle
        };
        let graceful = match (&handle, force) {
            (Some(handle), false) if !handle.has_failed() => Some(handle.close().await),
            (Some(handle), _) => {
                let _ = handle.stop().await;
                None
            }
            (None, _) => None,
        };
        match graceful {
            Some(Err(error)) => {
                // The actor keeps running with its last good state; the job stays open.
                if let Some(handle) = handle {
                    self.set_phase(
                        job_id,
                        Phase::Opened {
                            handle,
                            since: Instant::now(),
                        },
                    );
                }
                Err(error)
            }
            Some(Ok(())) => {
                self.set_phase(job_id, Phase::Closed);
                Ok(())
            }
            None => self.persist_state(job_id, PersistedState::Closed),
        }
    }

    /// The actor of an open job. A job that does not exist, or a wildcard, is "not open" (409)
    /// rather than unknown: Elasticsearch's task actions look for a running task only.
    fn open_handle(&self, job_id: &str) -> Result<JobHandle, JobError> {
        let slots = self.lock();
        match slots.get(job_id).map(|slot| &slot.phase) {
            Some(Phase::Opened { handle, .. }) if !handle.has_failed() => Ok(handle.clone()),
            _ => Err(JobError::NotOpen {
                job_id: job_id.to_string(),
            }),
        }
    }

    /// `_data`: returns the counts of this body alone (ES shape, with `job_id`; `_stats` has the
    /// running totals). The records are durable before this returns.
    pub async fn post_data(
        &self,
        job_id: &str,
        body: Bytes,
    ) -> Result<serde_json::Value, JobError> {
        let counts = self.open_handle(job_id)?.post_data(body).await?;
        self.store.flush().await?;
        Ok(counts.to_json(job_id))
    }

    /// `_flush`: returns `last_finalized_bucket_end` (None before any data).
    pub async fn flush(&self, job_id: &str, params: FlushParams) -> Result<Option<i64>, JobError> {
        let end = self.open_handle(job_id)?.flush(params).await?;
        self.store.flush().await?;
        Ok(end)
    }

    /// The job's state, `None` if it does not exist.
    pub fn job_state(&self, job_id: &str) -> Option<JobState> {
        self.lock().get(job_id).map(JobSlot::state)
    }

    /// 404 unless the job exists (results and snapshot reads check this first).
    pub fn require_job(&self, job_id: &str) -> Result<JobConfig, JobError> {
        self.slot_config(job_id).map(|c| (*c).clone())
    }

    /// Persists every open job (a snapshot, as `_close` would, but they stay `opened` on disk so a
    /// restart reopens them).
    pub async fn shutdown(&self) {
        let open: Vec<(String, JobHandle)> = self
            .lock()
            .iter()
            .filter_map(|(id, slot)| match &slot.phase {
                Phase::Opened { handle, .. } => Some((id.clone(), handle.clone())),
                _ => None,
            })
            .collect();
        for (job_id, handle) in open {
            if let Err(error) = handle.persist().await {
                tracing::error!(%job_id, %error, "could not persist the job at shutdown");
                self.unpersisted_at_shutdown.fetch_add(1, Ordering::SeqCst);
            }
        }
        if let Err(error) = self.store.flush().await {
            tracing::error!(%error, "final store flush failed");
            self.unpersisted_at_shutdown.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// How many jobs `shutdown` could not persist (the final flush failing counts as one).
    pub fn unpersisted_at_shutdown(&self) -> usize {
        self.unpersisted_at_shutdown.load(Ordering::SeqCst)
    }
}

/// The store's cheap check of a job (`Store::check_job`), off the reactor: it counts keys.
async fn check_stored_job(store: &Store, job_id: &str) -> Vec<String> {
    let (store, id) = (store.clone(), job_id.to_string());
    tokio::task::spawn_blocking(move || store.check_job(&id))
        .await
        .unwrap_or_else(|error| vec![format!("the check of the job's data failed: {error}")])
}

/// A stand-in config for a job whose stored one is unreadable, so the job can be listed (as
/// failed, with the reason) and deleted; `None` when even its id is unusable.
fn damaged_placeholder(job_id: &str) -> Option<JobConfig> {
    let body = br#"{"description":"stand-in: the stored config of this job is damaged","analysis_config":{"bucket_span":"1h","detectors":[{"function":"count"}]},"data_description":{}}"#;
    JobConfig::from_put_body(job_id, body, 0).ok()
}

fn not_found(job_id: &str) -> JobError {
    JobError::NotFound {
        job_id: job_id.to_string(),
    }
}
