//! `POST _ml/set_upgrade_mode`: parks every open job so the data path holds still (for a backup or
//! a binary upgrade), and brings them back afterwards.
//!
//! Enabling records the setting first (a crash midway restarts in upgrade mode), then persists each
//! open job's model as a snapshot and stops its actor. A parked job still reports `opened`, as in
//! Elasticsearch, with no node and an `assignment_explanation`; the API refuses every action that
//! would write ML data (429). Disabling restores each parked job from its snapshot plus stored
//! input, exactly as a restart does, then clears the setting. Talks to: the store (the setting),
//! the actors.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::job::{actor, JobError, JobManager, Phase};
use crate::store::{PersistedState, ResourceKind, Store};

const SETTING_ID: &str = "upgrade_mode";

/// What a parked job reports as `assignment_explanation` (Elasticsearch's words).
pub const PARKED_EXPLANATION: &str =
    "persistent task cannot be assigned while upgrade mode is enabled.";

/// The stored setting (off when never set).
pub(crate) fn stored_upgrade_mode(store: &Store) -> Result<bool, JobError> {
    let Some(bytes) = store.get_resource(ResourceKind::Setting, SETTING_ID, None)? else {
        return Ok(false);
    };
    let doc: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| JobError::Parse(e.to_string()))?;
    Ok(doc["enabled"].as_bool().unwrap_or(false))
}

impl JobManager {
    pub fn upgrade_mode(&self) -> bool {
        self.upgrade_mode.load(Ordering::Acquire)
    }

    /// Turns upgrade mode on or off; a no-op when it already is. Calls are serialized.
    pub async fn set_upgrade_mode(&self, enabled: bool) -> Result<(), JobError> {
        let _one_at_a_time = self.upgrade_mode_change.lock().await;
        if self.upgrade_mode() == enabled {
            return Ok(());
        }
        if enabled {
            self.store.put_resource(
                ResourceKind::Setting,
                SETTING_ID,
                None,
                br#"{"enabled":true}"#,
            )?;
            self.store.flush().await?;
            // From here the API refuses writes; what is already queued runs before the persist.
            self.upgrade_mode.store(true, Ordering::Release);
            self.park_open_jobs().await
        } else {
            self.unpark_jobs().await;
            self.store.put_resource(
                ResourceKind::Setting,
                SETTING_ID,
                None,
                br#"{"enabled":false}"#,
            )?;
            self.store.flush().await?;
            self.upgrade_mode.store(false, Ordering::Release);
            Ok(())
        }
    }

    async fn park_open_jobs(&self) -> Result<(), JobError> {
        let open: Vec<(String, actor::JobHandle)> = self
            .lock()
            .iter()
            .filter_map(|(id, slot)| match &slot.phase {
                Phase::Opened { handle, .. } if !handle.has_failed() => {
                    Some((id.clone(), handle.clone()))
                }
                _ => None,
            })
            .collect();
        for (job_id, handle) in open {
            // A job whose snapshot cannot be written stays running: parking it would lose the
            // input since its last snapshot from memory (it is still in the store, but the
            // operator asked for a consistent data path and should hear that it is not).
            handle.persist().await?;
            let _ = handle.stop().await;
            self.set_phase(&job_id, Phase::Parked);
            tracing::info!(%job_id, "job parked for upgrade mode");
        }
        self.store.flush().await?;
        Ok(())
    }

    /// Restores every parked job; one that cannot be restored becomes failed (as after a restart).
    async fn unpark_jobs(&self) {
        let parked: Vec<String> = self
            .lock()
            .iter()
            .filter(|(_, slot)| matches!(slot.phase, Phase::Parked))
            .map(|(id, _)| id.clone())
            .collect();
        for job_id in parked {
            self.resume_opened_job(&job_id).await;
        }
    }

    /// Starts the actor of a job recorded as opened (after a restart, or leaving upgrade mode).
    pub(crate) async fn resume_opened_job(&self, job_id: &str) {
        let Ok(config) = self.slot_config(job_id) else {
            return;
        };
        let outcome = actor::spawn(config, self.store.clone(), self.max_empty_buckets).await;
        let mut slots = self.lock();
        let Some(slot) = slots.get_mut(job_id) else {
            return;
        };
        match outcome {
            Ok(handle) => {
                tracing::info!(%job_id, "job resumed");
                slot.phase = Phase::Opened {
                    handle,
                    since: Instant::now(),
                };
            }
            Err(error) => {
                tracing::error!(%job_id, %error, "job could not be resumed; it is now failed");
                slot.note = Some(error.to_string());
                drop(slots);
                if let Err(error) = self.persist_state(job_id, PersistedState::Failed) {
                    tracing::error!(%job_id, %error, "could not record the failed state");
                    self.set_phase(job_id, Phase::Failed);
                }
            }
        }
    }
}
