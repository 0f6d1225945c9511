//! `POST _ml/anomaly_detectors/<id>/_update`: the updatable fields of a job and their rules.
//!
//! An update is merged into the job's document and the result must pass every check a `PUT` makes
//! (so `"2gb"` becomes `"2048mb"`, a bad group id or a daily retention above the retention is
//! refused with the same message); the generated fields (`create_time`, `job_version`, ...) are kept.
//! Rules only an update has: the fields that may be changed at all (anything else is an unknown
//! field), `analysis_limits` only while the job is closed, `model_memory_limit` not below what the
//! model uses now, and `detectors` entries addressed by `detector_index`.
//! An open job's actor keeps the config it was opened with until the job is reopened, except
//! `model_plot_config`, which it takes at once (as Elasticsearch does), and detectors'
//! `custom_rules`, which reach it at once through its input log (`job::rules`).

use serde_json::{Map, Value};

use crate::job::{not_found, JobConfig, JobError, JobManager, JobState};

/// Fields an update may carry besides [`PLAIN_FIELDS`]: each has its own rule below.
const SPECIAL_FIELDS: &[&str] = &[
    "job_id",
    "detectors",
    "categorization_filters",
    "model_prune_window",
    "per_partition_categorization",
];

/// Job-level fields copied from the update into the job document as they are (`null` unsets).
const PLAIN_FIELDS: &[&str] = &[
    "description",
    "groups",
    "analysis_limits",
    "background_persist_interval",
    "custom_settings",
    "model_plot_config",
    "renormalization_window_days",
    "model_snapshot_retention_days",
    "daily_model_snapshot_retention_after_days",
    "results_retention_days",
    "allow_lazy_open",
];

/// Fields of `analysis_config` an update may set.
const ANALYSIS_FIELDS: &[&str] = &[
    "categorization_filters",
    "model_prune_window",
    "per_partition_categorization",
];

/// Fields the job manager fills in, never taken from a body.
const GENERATED: &[&str] = &[
    "job_type",
    "job_version",
    "create_time",
    "model_snapshot_id",
];

fn parse_error(message: String) -> JobError {
    JobError::Parse(message)
}

/// The update body as a JSON object, with only updatable fields.
fn parse_update(job_id: &str, body: &[u8]) -> Result<Map<String, Value>, JobError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| parse_error(format!("[job_update] failed to parse the body: {e}")))?;
    let Value::Object(update) = value else {
        return Err(parse_error(
            "[job_update] the request body must be a JSON object".to_string(),
        ));
    };
    // Top-level fields an update may carry: ES `JobUpdate`'s external parser.
    let updatable = |field: &str| PLAIN_FIELDS.contains(&field) || SPECIAL_FIELDS.contains(&field);
    if let Some(field) = update.keys().find(|k| !updatable(k)) {
        return Err(parse_error(format!("[job_update] unknown field [{field}]")));
    }
    if let Some(body_id) = update.get("job_id").and_then(Value::as_str) {
        if body_id != job_id {
            return Err(JobError::InvalidArgument(format!(
                "Inconsistent job_id; '{body_id}' specified in the body differs from '{job_id}' specified as a URL argument"
            )));
        }
    }
    Ok(update)
}

/// Applies `update` to `current`: the merged document, checked as a `PUT` would check it.
pub fn apply_update(
    current: &JobConfig,
    update: &Map<String, Value>,
) -> Result<JobConfig, JobError> {
    let mut doc = serde_json::to_value(current).map_err(|e| parse_error(e.to_string()))?;
    let map = doc
        .as_object_mut()
        .ok_or_else(|| parse_error("job document is not an object".to_string()))?;
    for field in GENERATED {
        map.remove(*field);
    }
    for field in PLAIN_FIELDS {
        match update.get(*field) {
            None => {}
            Some(Value::Null) => {
                map.remove(*field);
            }
            Some(value) => {
                map.insert(field.to_string(), value.clone());
            }
        }
    }
    let analysis = map
        .get_mut("analysis_config")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| parse_error("job has no analysis_config".to_string()))?;
    for field in ANALYSIS_FIELDS {
        match update.get(*field) {
            None => {}
            Some(Value::Null) => {
                analysis.remove(*field);
            }
            Some(value) => {
                analysis.insert(field.to_string(), value.clone());
            }
        }
    }
    if let Some(detectors) = update.get("detectors") {
        update_detectors(analysis, detectors)?;
    }
    let body = serde_json::to_vec(&doc).map_err(|e| parse_error(e.to_string()))?;
    let mut updated = JobConfig::from_put_body(&current.job_id, &body, current.create_time)?;
    updated.job_type.clone_from(&current.job_type);
    updated.job_version.clone_from(&current.job_version);
    updated
        .model_snapshot_id
        .clone_from(&current.model_snapshot_id);
    Ok(updated)
}

/// `detectors: [{detector_index, description, custom_rules}]`.
fn update_detectors(analysis: &mut Map<String, Value>, updates: &Value) -> Result<(), JobError> {
    let updates = updates
        .as_array()
        .ok_or_else(|| parse_error("[job_update] failed to parse field [detectors]".to_string()))?;
    let detectors = analysis
        .get_mut("detectors")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| parse_error("job has no detectors".to_string()))?;
    let count = detectors.len();
    for update in updates {
        let update = update.as_object().ok_or_else(|| {
            parse_error("[job_update] failed to parse field [detectors]".to_string())
        })?;
        if let Some(field) = update
            .keys()
            .find(|k| !["detector_index", "description", "custom_rules"].contains(&k.as_str()))
        {
            return Err(parse_error(format!(
                "[detector_update] unknown field [{field}]"
            )));
        }
        let index = update
            .get("detector_index")
            .and_then(Value::as_i64)
            .ok_or_else(|| {
                JobError::InvalidArgument("[detector_update] requires [detector_index]".to_string())
            })?;
        let detector = usize::try_from(index)
            .ok()
            .and_then(|i| detectors.get_mut(i))
            .and_then(Value::as_object_mut)
            .ok_or_else(|| {
                JobError::InvalidArgument(format!(
                    "Invalid detector_index [{index}]; must be in [0, {count})"
                ))
            })?;
        if let Some(description) = update.get("description") {
            detector.insert("detector_description".into(), description.clone());
        }
        if let Some(rules) = update.get("custom_rules") {
            detector.insert("custom_rules".into(), rules.clone());
        }
    }
    Ok(())
}

fn rules_changed(current: &JobConfig, updated: &JobConfig) -> bool {
    let rules = |config: &JobConfig| {
        config
            .analysis_config
            .detectors
            .iter()
            .map(|d| d.custom_rules.clone())
            .collect::<Vec<_>>()
    };
    rules(current) != rules(updated)
}

impl JobManager {
    /// `_update`: validates, stores and returns the updated job document.
    pub async fn update_job(&self, job_id: &str, body: &[u8]) -> Result<Value, JobError> {
        let update = parse_update(job_id, body)?;
        let (current, state) = {
            let slots = self.lock();
            let slot = slots.get(job_id).ok_or_else(|| not_found(job_id))?;
            (slot.config.clone(), slot.state())
        };
        if update.contains_key("analysis_limits") && state != JobState::Closed {
            return Err(JobError::Conflict(
                "Cannot update analysis_limits while the job is open".to_string(),
            ));
        }
        let updated = apply_update(&current, &update)?;
        crate::job::rules::resolve(&self.store, &updated)?;
        self.check_memory_limit_not_below_usage(job_id, &updated)?;
        self.check_groups_are_not_job_ids(&updated)?;
        let json = serde_json::to_vec(&updated).map_err(|e| parse_error(e.to_string()))?;
        {
            // Under the lock, so two concurrent updates cannot interleave their store and slot writes.
            let mut slots = self.lock();
            let slot = slots.get_mut(job_id).ok_or_else(|| not_found(job_id))?;
            if !self.store.put_job_config(job_id, &json)? {
                return Err(not_found(job_id));
            }
            slot.config = std::sync::Arc::new(updated.clone());
        }
        self.store.flush().await?;
        if update.contains_key("model_plot_config") {
            // Elasticsearch applies model plot changes to a running job at once.
            if let Ok(handle) = self.open_handle(job_id) {
                handle
                    .set_model_plot(updated.model_plot_config.clone())
                    .await?;
            }
        }
        if rules_changed(&current, &updated) {
            // An open job applies new rules at once (through its input log); a closed one at open.
            self.refresh_rules(|config| config.job_id == job_id).await?;
        }
        let mut doc = serde_json::to_value(&updated).map_err(|e| parse_error(e.to_string()))?;
        self.fill_model_snapshot_id(job_id, &mut doc)?;
        Ok(doc)
    }

    fn check_memory_limit_not_below_usage(
        &self,
        job_id: &str,
        updated: &JobConfig,
    ) -> Result<(), JobError> {
        let (_, status) = crate::engine::snapshot::stored_status(&self.store, job_id)?;
        let used = status.model_size_stats.model_bytes;
        let limit = updated.model_memory_limit_bytes();
        if used > limit {
            return Err(JobError::InvalidArgument(format!(
                "Invalid update value for analysis_limits: model_memory_limit cannot be decreased below current usage; current usage [{}mb], update had [{}]",
                used.div_ceil(1 << 20),
                updated.analysis_limits.model_memory_limit
            )));
        }
        Ok(())
    }

    fn check_groups_are_not_job_ids(&self, updated: &JobConfig) -> Result<(), JobError> {
        let slots = self.lock();
        match updated.groups.iter().find(|g| slots.contains_key(*g)) {
            Some(group) => Err(JobError::InvalidArgument(format!(
                "job and group names must be unique but job [{group}] and group [{group}] have the same name"
            ))),
            None => Ok(()),
        }
    }

    /// Sets `model_snapshot_id` of a job document to the job's active snapshot.
    pub fn fill_model_snapshot_id(&self, job_id: &str, doc: &mut Value) -> Result<(), JobError> {
        if let (Some(id), Some(map)) = (self.active_snapshot_id(job_id)?, doc.as_object_mut()) {
            map.insert("model_snapshot_id".into(), id.into());
        }
        Ok(())
    }
}
