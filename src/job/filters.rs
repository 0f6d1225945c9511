//! Filters (`_ml/filters`): named lists of strings that custom rules scope on. Owns their rules
//! (id, sorted unique items, add/remove, no deleting a filter a job's rules use) and their documents
//! `{filter_id, description, items}`. Stored in the store's `resources` tree; the manager is the only
//! writer, and read-modify-writes run under its slot lock so two updates cannot interleave.
//! Rules scoping on a filter are resolved against its items by `job::rules`; an update of a filter
//! sends the new items to the open jobs that use it.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::engine::config::check_id;
use crate::job::{JobError, JobManager};
use crate::store::{self, ResourceKind, Store};

fn missing(filter_id: &str) -> JobError {
    JobError::Missing(format!("No filter with id [{filter_id}] exists"))
}

pub(crate) fn to_json(value: &Value) -> Result<Vec<u8>, JobError> {
    serde_json::to_vec(value).map_err(|e| JobError::Store(store::StoreError::Encode(e.to_string())))
}

pub(crate) fn from_json(bytes: &[u8]) -> Result<Value, JobError> {
    serde_json::from_slice(bytes).map_err(|e| {
        JobError::Store(store::StoreError::Encode(format!(
            "stored resource is not JSON: {e}"
        )))
    })
}

fn filter_doc(filter_id: &str, description: Option<&str>, items: &BTreeSet<String>) -> Value {
    let mut doc = json!({ "filter_id": filter_id });
    if let Some(description) = description {
        doc["description"] = description.into();
    }
    doc["items"] = json!(items);
    doc
}

fn load(store: &Store, filter_id: &str) -> Result<Value, JobError> {
    match store.get_resource(ResourceKind::Filter, filter_id, None) {
        Ok(Some(bytes)) => from_json(&bytes),
        Ok(None) | Err(store::StoreError::Encode(_)) => Err(missing(filter_id)),
        Err(error) => Err(error.into()),
    }
}

fn items_of(doc: &Value) -> BTreeSet<String> {
    doc["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The items of a stored filter (404 when it does not exist).
pub(crate) fn load_items(store: &Store, filter_id: &str) -> Result<Vec<String>, JobError> {
    Ok(items_of(&load(store, filter_id)?).into_iter().collect())
}

/// True when any custom rule of the job's config scopes on `filter_id`.
fn uses_filter(rules: &Value, filter_id: &str) -> bool {
    match rules {
        Value::Object(map) => {
            map.get("filter_id").and_then(Value::as_str) == Some(filter_id)
                || map.values().any(|v| uses_filter(v, filter_id))
        }
        Value::Array(values) => values.iter().any(|v| uses_filter(v, filter_id)),
        _ => false,
    }
}

impl JobManager {
    pub async fn put_filter(
        &self,
        filter_id: &str,
        description: Option<String>,
        items: Vec<String>,
    ) -> Result<Value, JobError> {
        check_id("filter_id", filter_id)?;
        let items: BTreeSet<String> = items.into_iter().collect();
        let doc = filter_doc(filter_id, description.as_deref(), &items);
        {
            let _guard = self.lock();
            if self
                .store
                .get_resource(ResourceKind::Filter, filter_id, None)?
                .is_some()
            {
                return Err(JobError::Exists(format!(
                    "A filter with id [{filter_id}] already exists"
                )));
            }
            self.store
                .put_resource(ResourceKind::Filter, filter_id, None, &to_json(&doc)?)?;
        }
        self.store.flush().await?;
        Ok(doc)
    }

    /// One filter (404 when missing), or every filter for `None`, `_all` or `*`.
    pub fn get_filters(&self, filter_id: Option<&str>) -> Result<Vec<Value>, JobError> {
        match filter_id.filter(|id| !id.is_empty() && *id != "_all" && *id != "*") {
            Some(id) => Ok(vec![load(&self.store, id)?]),
            None => self
                .store
                .scan_resources(ResourceKind::Filter, None)?
                .iter()
                .map(|bytes| from_json(bytes))
                .collect(),
        }
    }

    pub async fn update_filter(
        &self,
        filter_id: &str,
        description: Option<String>,
        add_items: Vec<String>,
        remove_items: Vec<String>,
    ) -> Result<Value, JobError> {
        let doc = {
            let _guard = self.lock();
            let current = load(&self.store, filter_id)?;
            let mut items = items_of(&current);
            items.extend(add_items);
            for item in &remove_items {
                if !items.remove(item) {
                    return Err(JobError::InvalidArgument(format!(
                        "Cannot remove item [{item}] as it is not present in filter [{filter_id}]"
                    )));
                }
            }
            let description =
                description.or_else(|| current["description"].as_str().map(str::to_string));
            let doc = filter_doc(filter_id, description.as_deref(), &items);
            self.store
                .put_resource(ResourceKind::Filter, filter_id, None, &to_json(&doc)?)?;
            doc
        };
        self.store.flush().await?;
        // Open jobs whose rules scope on the filter take its new items from here on.
        self.refresh_rules(|config| crate::job::rules::uses_filter(config, filter_id))
            .await?;
        Ok(doc)
    }

    pub async fn delete_filter(&self, filter_id: &str) -> Result<(), JobError> {
        {
            let slots = self.lock();
            load(&self.store, filter_id)?;
            let users: Vec<&str> = slots
                .values()
                .filter(|slot| {
                    slot.config
                        .analysis_config
                        .detectors
                        .iter()
                        .filter_map(|d| d.custom_rules.as_ref())
                        .any(|rules| uses_filter(rules, filter_id))
                })
                .map(|slot| slot.config.job_id.as_str())
                .collect();
            if !users.is_empty() {
                return Err(JobError::Conflict(format!(
                    "Cannot delete filter [{filter_id}] currently used by jobs [{}]",
                    users.join(", ")
                )));
            }
            self.store
                .delete_resource(ResourceKind::Filter, filter_id, None)?;
        }
        self.store.flush().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_scoping_on_a_filter_are_found() {
        let rules = json!([{"actions": ["skip_result"], "scope": {"airline": {"filter_id": "safe", "filter_type": "include"}}}]);
        assert!(uses_filter(&rules, "safe"));
        assert!(!uses_filter(&rules, "other"));
        assert!(!uses_filter(&json!([{"actions": ["skip_result"]}]), "safe"));
    }
}
