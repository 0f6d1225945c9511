//! Custom rules between the job config and the model: resolves each detector's `custom_rules`
//! against the stored filters into the model's [`JobRules`], and keeps an open job's rules current.
//!
//! Rules reach the model only through the input log (`InputEntry::Rules`), like scheduled events:
//! when a job opens with rules other than those in force, and when `_update` changes an open job's
//! `custom_rules` or `_ml/filters/{id}/_update` changes a filter an open job's rules use. The
//! actor appends the entry between two of its own commands, so a replay puts the new rules in force
//! at exactly the same point of the input.

use crate::engine::config::{parse_rules, JobConfig};
use crate::job::filters::load_items;
use crate::job::{JobError, JobManager, Phase};
use crate::model::rules::JobRules;
use crate::store::Store;

/// The job's rules with their filters' items (a filter that does not exist is a 404, as in ES).
pub fn resolve(store: &Store, config: &JobConfig) -> Result<JobRules, JobError> {
    let mut rules = JobRules::default();
    for detector in &config.analysis_config.detectors {
        let mut resolved = Vec::new();
        if let Some(value) = &detector.custom_rules {
            for parsed in parse_rules(value)? {
                let mut rule = parsed.rule;
                for (scope, filter_id) in rule.scope.iter_mut().zip(&parsed.filter_ids) {
                    scope.items = load_items(store, filter_id)?;
                }
                resolved.push(rule);
            }
        }
        rules.detectors.push(resolved);
    }
    if rules.is_empty() {
        // A job without rules has none in force: no entry for it at all.
        rules.detectors.clear();
    }
    Ok(rules)
}

/// True when any rule of the job scopes on `filter_id`.
pub fn uses_filter(config: &JobConfig, filter_id: &str) -> bool {
    config
        .analysis_config
        .detectors
        .iter()
        .filter_map(|d| d.custom_rules.as_ref())
        .filter_map(|rules| parse_rules(rules).ok())
        .flatten()
        .any(|parsed| parsed.filter_ids.iter().any(|id| id == filter_id))
}

impl JobManager {
    /// Sends the current rules of every open job for which `affected` holds to its actor.
    pub(crate) async fn refresh_rules(
        &self,
        affected: impl Fn(&JobConfig) -> bool,
    ) -> Result<(), JobError> {
        let targets: Vec<_> = {
            let slots = self.lock();
            slots
                .values()
                .filter(|slot| affected(&slot.config))
                .filter_map(|slot| match &slot.phase {
                    Phase::Opened { handle, .. } if !handle.has_failed() => {
                        Some((slot.config.clone(), handle.clone()))
                    }
                    _ => None,
                })
                .collect()
        };
        for (config, handle) in targets {
            let rules = resolve(&self.store, &config)?;
            handle.set_rules(rules).await?;
        }
        self.store.flush().await?;
        Ok(())
    }
}
