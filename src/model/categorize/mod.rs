//! Categorization: groups the values of `categorization_field_name` into categories of similar
//! messages, and hands each record's category id to the detectors as the `mlcategory` field.
//!
//! The algorithm follows the idea of ml-cpp's token-list categorizer, written afresh: a message
//! is analysed into tokens (`tokenize`), each weighted (words more than ids); it joins the most
//! similar category of its partition when the weighted edit-distance similarity to that
//! category's founding tokens exceeds 0.7, else founds a new one. A category keeps the tokens all
//! its members share in order (its `terms` and `regex`), up to `categorization_examples_limit`
//! examples, and its match count. Ids are unique per job (also with per-partition
//! categorization), given in order of first appearance, so the same input always gives the same
//! categories; the whole state is part of the model snapshot.
//!
//! Changed categories are handed out with the next finalized bucket
//! ([`Categorizer::take_changed`]) and stored as category definition results.

mod category;
pub mod tokenize;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ingest::FieldValue;
use crate::model::{AnalysisConfig, ML_CATEGORY};
use category::total_weight;
pub use category::Category;
use tokenize::{Analyzer, AnalyzerSpec};

/// Similarity above which a message joins a category (ml-cpp's default threshold).
const SIMILARITY_THRESHOLD: f64 = 0.7;
/// Documents a partition must have seen before its status can turn to `warn`.
const MIN_DOCS_FOR_STATUS: u64 = 100;
/// `analysis_limits.categorization_examples_limit` when a job does not set it.
const DEFAULT_EXAMPLES_LIMIT: usize = 4;

/// How a job categorizes (from its config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategorizerConfig {
    pub analyzer: AnalyzerSpec,
    pub examples_limit: usize,
    /// With per-partition categorization: the partition field's name.
    pub partition_field: Option<String>,
    pub stop_on_warn: bool,
}

/// One partition's categories (the whole job's without per-partition categorization).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Partition {
    /// Ids of its categories, in creation order.
    categories: Vec<u64>,
    docs: u64,
    /// Set once its status turned `warn` with `stop_on_warn`: it is categorized no more.
    stopped: bool,
}

/// `model_size_stats`' categorization part.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CategorizationStats {
    pub categorized_doc_count: u64,
    pub total_category_count: u64,
    pub frequent_category_count: u64,
    pub rare_category_count: u64,
    pub dead_category_count: u64,
    pub failed_category_count: u64,
    /// `warn` when the categories suggest the field is not suited to categorization.
    pub warn: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Categorizer {
    config: CategorizerConfig,
    /// Record slot of the categorization field and, with per-partition, of the partition field.
    text_slot: usize,
    partition_slot: Option<usize>,
    /// Every category, by id (ids start at 1).
    categories: Vec<Category>,
    partitions: BTreeMap<String, Partition>,
    changed: BTreeSet<u64>,
    #[serde(skip)]
    analyzer: Option<Analyzer>,
}

impl PartialEq for Categorizer {
    fn eq(&self, other: &Self) -> bool {
        // The compiled analyzer is derived from the config.
        self.config == other.config
            && self.text_slot == other.text_slot
            && self.partition_slot == other.partition_slot
            && self.categories == other.categories
            && self.partitions == other.partitions
            && self.changed == other.changed
    }
}

impl Categorizer {
    /// The categorizer of a job that categorizes, and the model's field list: `fields` (the
    /// record slots) with `mlcategory` appended, the slot [`Categorizer::extend`] fills in.
    pub fn for_job(
        config: &AnalysisConfig,
        fields: &[String],
    ) -> Option<(Categorizer, Vec<String>)> {
        let text_field = config.categorization_field_name.as_ref()?;
        let text_slot = fields.iter().position(|f| f == text_field)?;
        let per_partition = config
            .per_partition_categorization
            .as_ref()
            .filter(|p| p.enabled);
        let partition_field = per_partition.and_then(|_| {
            config
                .detectors
                .iter()
                .find(|d| {
                    d.by_field_name.as_deref() == Some(ML_CATEGORY)
                        || d.over_field_name.as_deref() == Some(ML_CATEGORY)
                })
                .and_then(|d| d.partition_field_name.clone())
        });
        let partition_slot = partition_field
            .as_ref()
            .and_then(|p| fields.iter().position(|f| f == p));
        // The job config refuses analyzers auspex cannot run; a stored one falls back to default.
        let analyzer = AnalyzerSpec::from_config(
            config.categorization_filters.as_deref(),
            config.categorization_analyzer.as_ref(),
        )
        .unwrap_or_default();
        let categorizer = Categorizer::new(
            CategorizerConfig {
                analyzer,
                examples_limit: DEFAULT_EXAMPLES_LIMIT,
                partition_field,
                stop_on_warn: per_partition.is_some_and(|p| p.stop_on_warn),
            },
            text_slot,
            partition_slot,
        );
        let mut model_fields = fields.to_vec();
        model_fields.push(ML_CATEGORY.to_string());
        Some((categorizer, model_fields))
    }

    /// `analysis_limits.categorization_examples_limit`.
    pub fn set_examples_limit(&mut self, limit: usize) {
        self.config.examples_limit = limit;
    }

    /// The record's values with its category id in the `mlcategory` slot (last).
    pub fn extend(&mut self, values: &[Option<FieldValue>]) -> Vec<Option<FieldValue>> {
        let category = self.categorize_record(values);
        let mut extended = Vec::with_capacity(values.len() + 1);
        extended.extend_from_slice(values);
        extended.push(category);
        extended
    }

    pub fn new(config: CategorizerConfig, text_slot: usize, partition_slot: Option<usize>) -> Self {
        Categorizer {
            config,
            text_slot,
            partition_slot,
            categories: Vec::new(),
            partitions: BTreeMap::new(),
            changed: BTreeSet::new(),
            analyzer: None,
        }
    }

    /// The category id of a record (as the `mlcategory` value), or `None` when the record has no
    /// text to categorize or its partition stopped categorizing.
    pub fn categorize_record(&mut self, values: &[Option<FieldValue>]) -> Option<FieldValue> {
        let text = values.get(self.text_slot)?.as_ref()?.as_term().into_owned();
        let partition = match self.partition_slot {
            Some(slot) => values
                .get(slot)
                .and_then(Option::as_ref)
                .map(|v| v.as_term().into_owned())
                .unwrap_or_default(),
            None => String::new(),
        };
        self.categorize(&partition, &text)
            .map(|id| FieldValue::Text(id.to_string()))
    }

    /// The id of `text`'s category in `partition`, creating one if none is similar enough.
    pub fn categorize(&mut self, partition: &str, text: &str) -> Option<u64> {
        if self.partitions.get(partition).is_some_and(|p| p.stopped) {
            return None;
        }
        let analyzer = match &self.analyzer {
            Some(analyzer) => analyzer,
            None => {
                // Patterns were checked when the job was created; an invalid one strips nothing.
                let compiled = Analyzer::new(&self.config.analyzer).unwrap_or_else(|_| {
                    Analyzer::new(&AnalyzerSpec {
                        strip_patterns: Vec::new(),
                        ..self.config.analyzer.clone()
                    })
                    .expect("no patterns to compile")
                });
                self.analyzer.insert(compiled)
            }
        };
        let tokens = analyzer.tokens(text);
        let weight = total_weight(&tokens);
        let entry = self.partitions.entry(partition.to_string()).or_default();
        let mut best: Option<(f64, u64)> = None;
        for id in &entry.categories {
            let category = &self.categories[(*id - 1) as usize];
            if let Some(s) = category.similarity(&tokens, weight, SIMILARITY_THRESHOLD) {
                if s > SIMILARITY_THRESHOLD && best.is_none_or(|(b, _)| s > b) {
                    best = Some((s, *id));
                }
            }
        }
        let id = match best {
            Some((_, id)) => id,
            None => {
                let id = self.categories.len() as u64 + 1;
                let field = self.config.partition_field.clone();
                self.categories.push(Category::new(
                    id,
                    field.map(|f| (f, partition.to_string())),
                    tokens.clone(),
                ));
                entry.categories.push(id);
                id
            }
        };
        entry.docs += 1;
        let limit = self.config.examples_limit;
        self.categories[(id - 1) as usize].add(&tokens, text, limit);
        self.changed.insert(id);
        if self.config.stop_on_warn {
            let entry = &self.partitions[partition];
            let stats = self.stats_of(entry.categories.iter(), entry.docs);
            if stats.warn {
                if let Some(p) = self.partitions.get_mut(partition) {
                    p.stopped = true;
                }
            }
        }
        Some(id)
    }

    fn stats_of<'a>(&self, ids: impl Iterator<Item = &'a u64>, docs: u64) -> CategorizationStats {
        let mut stats = CategorizationStats {
            categorized_doc_count: docs,
            ..CategorizationStats::default()
        };
        for id in ids {
            let matches = self.categories[(*id - 1) as usize].num_matches;
            stats.total_category_count += 1;
            if matches * 100 > docs {
                stats.frequent_category_count += 1;
            }
            if matches == 1 {
                stats.rare_category_count += 1;
            }
        }
        let total = stats.total_category_count;
        stats.warn = docs >= MIN_DOCS_FOR_STATUS
            && (total == 1
                || stats.frequent_category_count == 0
                || stats.rare_category_count * 10 > total * 9
                || total * 2 > docs);
        stats
    }

    /// Statistics over the whole job; the status is `warn` when any partition's is.
    pub fn stats(&self) -> CategorizationStats {
        let docs = self.partitions.values().map(|p| p.docs).sum();
        let mut stats = self.stats_of(self.partitions.values().flat_map(|p| &p.categories), docs);
        stats.warn = self
            .partitions
            .values()
            .any(|p| p.stopped || self.stats_of(p.categories.iter(), p.docs).warn);
        stats
    }

    /// The categories changed since the last call, by id.
    pub fn take_changed(&mut self) -> Vec<Category> {
        std::mem::take(&mut self.changed)
            .into_iter()
            .map(|id| self.categories[(id - 1) as usize].clone())
            .collect()
    }

    pub fn category(&self, id: u64) -> Option<&Category> {
        id.checked_sub(1)
            .and_then(|i| self.categories.get(i as usize))
    }

    pub fn approximate_bytes(&self) -> u64 {
        // Tokens and examples dominate; a rough per-category figure is enough for model_bytes.
        self.categories.len() as u64 * 512
    }
}

#[cfg(test)]
mod tests;
