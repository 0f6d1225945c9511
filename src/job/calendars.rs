//! Calendars and scheduled events (`_ml/calendars`). Owns their rules (ids, the jobs or groups a
//! calendar applies to, event times) and documents: a calendar `{calendar_id, job_ids, description}`,
//! an event `{description, start_time, end_time, calendar_id, event_id, skip_result,
//! skip_model_update}`. Stored in the store's `resources` tree; the manager is the only writer, and
//! read-modify-writes run under its slot lock.
//!
//! Applying events: when a job opens, [`scheduled_events`] collects the events of the calendars
//! that name the job or one of its groups; if they differ from those in force, the actor writes them
//! into the input log (`InputEntry::Calendar`) and the pipeline applies them from there on
//! (`job::pipeline::ScheduledEvent`). Events posted while a job is open apply from its next open.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::engine::config::check_id;
use crate::engine::pipeline::ScheduledEvent;
use crate::job::filters::{from_json, to_json};
use crate::job::{JobConfig, JobError, JobManager};
use crate::store::{self, ResourceKind, Store};

/// A scheduled event as the API hands it over (times already parsed, epoch ms).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub description: String,
    pub start_time: i64,
    pub end_time: i64,
    pub skip_result: bool,
    pub skip_model_update: bool,
    pub force_time_shift: Option<i64>,
}

/// The events of every calendar that applies to the job (by id or group), by start time.
pub fn scheduled_events(
    store: &Store,
    config: &JobConfig,
) -> Result<Vec<ScheduledEvent>, JobError> {
    let mut events = Vec::new();
    for bytes in store.scan_resources(ResourceKind::Calendar, None)? {
        let calendar = from_json(&bytes)?;
        let members = job_ids_of(&calendar);
        let applies =
            members.contains(&config.job_id) || config.groups.iter().any(|g| members.contains(g));
        let Some(id) = calendar["calendar_id"].as_str().filter(|_| applies) else {
            continue;
        };
        for bytes in store.scan_resources(ResourceKind::Event, Some(id))? {
            let event = from_json(&bytes)?;
            if let (Some(start), Some(end)) =
                (event["start_time"].as_i64(), event["end_time"].as_i64())
            {
                events.push(ScheduledEvent {
                    start,
                    end,
                    skip_result: event["skip_result"].as_bool() != Some(false),
                    skip_model_update: event["skip_model_update"].as_bool() != Some(false),
                });
            }
        }
    }
    events.sort_by_key(|e| (e.start, e.end, e.skip_result, e.skip_model_update));
    Ok(events)
}

fn missing(calendar_id: &str) -> JobError {
    JobError::Missing(format!("No calendar with id [{calendar_id}]"))
}

fn load(store: &Store, calendar_id: &str) -> Result<Value, JobError> {
    match store.get_resource(ResourceKind::Calendar, calendar_id, None) {
        Ok(Some(bytes)) => from_json(&bytes),
        Ok(None) | Err(store::StoreError::Encode(_)) => Err(missing(calendar_id)),
        Err(error) => Err(error.into()),
    }
}

fn job_ids_of(calendar: &Value) -> BTreeSet<String> {
    calendar["job_ids"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn calendar_doc(calendar_id: &str, job_ids: &BTreeSet<String>, description: Option<&str>) -> Value {
    let mut doc = json!({"calendar_id": calendar_id, "job_ids": job_ids});
    if let Some(description) = description {
        doc["description"] = description.into();
    }
    doc
}

/// Calendar ids of an expression: one id, a comma list, wildcards, `_all`/`*`/empty = all.
fn matches(expression: &str, calendar_id: &str) -> bool {
    expression.is_empty()
        || expression
            .split(',')
            .any(|part| part == "_all" || crate::job::wildcard_match(part, calendar_id))
}

impl JobManager {
    /// Each id must name a job or a group (404 otherwise).
    fn check_jobs_exist(&self, job_ids: &[String]) -> Result<(), JobError> {
        for id in job_ids {
            self.expand_ids(id, false)?;
        }
        Ok(())
    }

    pub async fn put_calendar(
        &self,
        calendar_id: &str,
        description: Option<String>,
        job_ids: Vec<String>,
    ) -> Result<Value, JobError> {
        check_id("calendar_id", calendar_id)?;
        self.check_jobs_exist(&job_ids)?;
        let doc = calendar_doc(
            calendar_id,
            &job_ids.into_iter().collect(),
            description.as_deref(),
        );
        {
            let _guard = self.lock();
            if self
                .store
                .get_resource(ResourceKind::Calendar, calendar_id, None)?
                .is_some()
            {
                return Err(JobError::Exists(format!(
                    "A calendar with id [{calendar_id}] already exists"
                )));
            }
            self.store
                .put_resource(ResourceKind::Calendar, calendar_id, None, &to_json(&doc)?)?;
        }
        self.store.flush().await?;
        Ok(doc)
    }

    /// The calendars of an expression; a plain id that does not exist is a 404.
    pub fn get_calendars(&self, expression: &str) -> Result<Vec<Value>, JobError> {
        let plain =
            !expression.is_empty() && !expression.contains(['*', ',']) && expression != "_all";
        if plain {
            return Ok(vec![load(&self.store, expression)?]);
        }
        let mut out = Vec::new();
        for bytes in self.store.scan_resources(ResourceKind::Calendar, None)? {
            let doc = from_json(&bytes)?;
            if matches(expression, doc["calendar_id"].as_str().unwrap_or("")) {
                out.push(doc);
            }
        }
        Ok(out)
    }

    pub async fn delete_calendar(&self, calendar_id: &str) -> Result<(), JobError> {
        {
            let _guard = self.lock();
            load(&self.store, calendar_id)?;
            self.store
                .delete_resource(ResourceKind::Calendar, calendar_id, None)?;
        }
        self.store.flush().await?;
        Ok(())
    }

    /// `PUT` (add) or `DELETE` (remove) `calendars/<id>/jobs/<job ids>`; returns the calendar.
    pub async fn change_calendar_jobs(
        &self,
        calendar_id: &str,
        job_ids: &str,
        add: bool,
    ) -> Result<Value, JobError> {
        let ids: Vec<String> = job_ids
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if add {
            self.check_jobs_exist(&ids)?;
        }
        let doc = {
            let _guard = self.lock();
            let current = load(&self.store, calendar_id)?;
            let mut members = job_ids_of(&current);
            for id in ids {
                if add {
                    members.insert(id);
                } else if !members.remove(&id) {
                    return Err(JobError::Missing(format!(
                        "Cannot remove [{id}] as it is not present in calendar [{calendar_id}]"
                    )));
                }
            }
            let doc = calendar_doc(calendar_id, &members, current["description"].as_str());
            self.store
                .put_resource(ResourceKind::Calendar, calendar_id, None, &to_json(&doc)?)?;
            doc
        };
        self.store.flush().await?;
        Ok(doc)
    }

    /// Stores the events (each gets an id); returns their documents.
    pub async fn post_calendar_events(
        &self,
        calendar_id: &str,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Value>, JobError> {
        let mut docs = Vec::new();
        {
            let _guard = self.lock();
            load(&self.store, calendar_id)?;
            for event in events {
                if event.start_time >= event.end_time {
                    return Err(JobError::InvalidArgument(format!(
                        "Event start time [{}] must come before end time [{}]",
                        event.start_time, event.end_time
                    )));
                }
                let event_id = uuid::Uuid::new_v4().simple().to_string()[..20].to_string();
                let mut doc = json!({
                    "description": event.description,
                    "start_time": event.start_time,
                    "end_time": event.end_time,
                    "skip_result": event.skip_result,
                    "skip_model_update": event.skip_model_update,
                    "calendar_id": calendar_id,
                    "event_id": event_id,
                });
                if let Some(shift) = event.force_time_shift {
                    doc["force_time_shift"] = shift.into();
                }
                docs.push((event_id, doc));
            }
            for (event_id, doc) in &docs {
                self.store.put_resource(
                    ResourceKind::Event,
                    calendar_id,
                    Some(event_id),
                    &to_json(doc)?,
                )?;
            }
        }
        self.store.flush().await?;
        Ok(docs.into_iter().map(|(_, doc)| doc).collect())
    }

    /// Events of the calendars of `expression` (`_all` = every calendar), optionally only those of
    /// calendars that apply to `job_id` (directly or through one of its groups), overlapping
    /// `[start, end)`, in start time order.
    pub fn calendar_events(
        &self,
        expression: &str,
        job_id: Option<&str>,
        start: Option<i64>,
        end: Option<i64>,
    ) -> Result<Vec<Value>, JobError> {
        let mut calendars = self.get_calendars(expression)?;
        if let Some(job_id) = job_id {
            let config = self.require_job(job_id)?;
            calendars.retain(|calendar| {
                let members = job_ids_of(calendar);
                members.contains(job_id) || config.groups.iter().any(|g| members.contains(g))
            });
        }
        let mut events = Vec::new();
        for calendar in &calendars {
            let id = calendar["calendar_id"].as_str().unwrap_or("");
            for bytes in self.store.scan_resources(ResourceKind::Event, Some(id))? {
                let event = from_json(&bytes)?;
                let event_start = event["start_time"].as_i64().unwrap_or(i64::MIN);
                let event_end = event["end_time"].as_i64().unwrap_or(i64::MAX);
                if start.is_none_or(|s| event_end > s) && end.is_none_or(|e| event_start < e) {
                    events.push(event);
                }
            }
        }
        events.sort_by_key(|e| e["start_time"].as_i64().unwrap_or(0));
        Ok(events)
    }

    pub async fn delete_calendar_event(
        &self,
        calendar_id: &str,
        event_id: &str,
    ) -> Result<(), JobError> {
        {
            let _guard = self.lock();
            load(&self.store, calendar_id)?;
            let existed =
                match self
                    .store
                    .delete_resource(ResourceKind::Event, calendar_id, Some(event_id))
                {
                    Ok(existed) => existed,
                    // An id the store cannot key cannot exist either.
                    Err(store::StoreError::Encode(_)) => false,
                    Err(error) => return Err(error.into()),
                };
            if !existed {
                return Err(JobError::Missing(format!("No event with id [{event_id}]")));
            }
        }
        self.store.flush().await?;
        Ok(())
    }
}
