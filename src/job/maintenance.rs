//! Changing a job's stored data from outside the write path: where such work runs (store I1) and
//! `_reset`.
//!
//! An open job's actor is the only writer of its data, so work on an open job is sent to the actor
//! and runs between two of its commands ([`ExclusiveWork`]). A closed job has no actor: the manager
//! marks it `Busy` (reported as closed, refuses `_open`, `_close` and `_delete` with a 409 until
//! done), runs the work on the blocking pool, then puts the phase back. Talks to: the store, actors.

use crate::job::actor::ExclusiveWork;
use crate::job::{not_found, JobError, JobManager, Phase};
use crate::store::{PersistedState, Progress};

/// Which jobs a piece of maintenance work accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Needs {
    /// Open or closed (open: runs on the actor).
    Any,
    /// Only a closed job; an open (or failed) one is refused with this ES message.
    Closed(&'static str),
}

impl JobManager {
    /// Runs `work` on the job's stored data where I1 allows it; see the module doc.
    pub(crate) async fn on_job_data(
        &self,
        job_id: &str,
        needs: Needs,
        work: ExclusiveWork,
    ) -> Result<serde_json::Value, JobError> {
        let busy_from = {
            let mut slots = self.lock();
            let slot = slots.get_mut(job_id).ok_or_else(|| not_found(job_id))?;
            let state = slot.state();
            match (&slot.phase, needs) {
                (Phase::Opened { handle, .. }, Needs::Any) if !handle.has_failed() => {
                    Err(handle.clone())
                }
                (Phase::Closed, _) => Ok(false),
                (Phase::Failed, Needs::Any) => Ok(true),
                (_, Needs::Closed(message))
                    if matches!(slot.phase, Phase::Opened { .. } | Phase::Failed) =>
                {
                    return Err(JobError::Conflict(message.to_string()))
                }
                _ => {
                    return Err(JobError::Conflict(format!(
                        "Cannot change the data of job [{job_id}] because the job is {state}"
                    )))
                }
            }
        };
        let was_failed = match busy_from {
            Err(handle) => {
                // Acknowledged means durable, on the actor's thread as on the blocking pool.
                let value = handle.exclusive(work).await?;
                self.store.flush().await?;
                return Ok(value);
            }
            Ok(was_failed) => was_failed,
        };
        self.set_phase(job_id, Phase::Busy { was_failed });
        let busy = BusyGuard {
            manager: self,
            job_id,
            was_failed,
        };
        let store = self.store.clone();
        let outcome = tokio::task::spawn_blocking(move || work(&store)).await;
        drop(busy);
        let value = outcome.map_err(|_| JobError::ActorGone {
            job_id: job_id.to_string(),
        })??;
        self.store.flush().await?;
        Ok(value)
    }

    /// `_reset`: removes the job's input, results and snapshots; the config stays, and the next open
    /// starts from an empty model.
    pub async fn reset_job(&self, job_id: &str) -> Result<(), JobError> {
        let id = job_id.to_string();
        self.on_job_data(
            job_id,
            Needs::Closed("Can only reset a job when it is closed."),
            Box::new(move |store| {
                store.reset_job(&id, &Progress::fresh(PersistedState::Closed))?;
                Ok(serde_json::Value::Null)
            }),
        )
        .await?;
        Ok(())
    }
}

/// Puts a `Busy` job back to its phase when dropped, so even a cancelled request cannot leave the
/// job busy for good.
struct BusyGuard<'a> {
    manager: &'a JobManager,
    job_id: &'a str,
    was_failed: bool,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        let phase = if self.was_failed {
            Phase::Failed
        } else {
            Phase::Closed
        };
        self.manager.set_phase(self.job_id, phase);
    }
}
