//! What finalizing (or interim-scoring) a bucket produces, and its Elasticsearch JSON shape.
//!
//! Owns the result types and their rendering as ES 8.x documents (epoch-ms timestamps,
//! `bucket_span` in seconds, absent optional keys omitted rather than null). Does not compute
//! anything: `detector` fills these in; the job layer stores them and the api layer serves the
//! JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::model::causes::{Cause, GeoResults};
use crate::model::model_plot::ModelPlotRow;

/// One anomalous series in one bucket (`result_type: "record"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyRecord {
    pub detector_index: usize,
    pub probability: f64,
    pub multi_bucket_impact: f64,
    pub record_score: f64,
    pub initial_record_score: f64,
    pub function: String,
    pub function_description: String,
    pub field_name: Option<String>,
    pub by_field_name: Option<String>,
    pub by_field_value: Option<String>,
    pub over_field_name: Option<String>,
    pub over_field_value: Option<String>,
    pub partition_field_name: Option<String>,
    pub partition_field_value: Option<String>,
    /// Empty for a population record: its values are in `causes`.
    pub actual: Vec<f64>,
    pub typical: Vec<f64>,
    /// Population analysis: what made the member unusual.
    pub causes: Vec<Cause>,
    /// `lat_long`: the points as `"lat,lon"`.
    pub geo_results: Option<GeoResults>,
    /// (influencer field name, values seen in this bucket for the series), sorted by name.
    pub influencers: Vec<(String, Vec<String>)>,
}

/// `bucket_influencers[]` of a bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketInfluencer {
    pub influencer_field_name: String,
    pub initial_anomaly_score: f64,
    pub anomaly_score: f64,
    pub raw_anomaly_score: f64,
    pub probability: f64,
}

/// One influencer field value in one bucket (`result_type: "influencer"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InfluencerResult {
    pub influencer_field_name: String,
    pub influencer_field_value: String,
    pub probability: f64,
    pub influencer_score: f64,
    pub initial_influencer_score: f64,
}

/// The keys of an influencer document; an influencer field named like one of them is not also
/// filed under its own name (it would overwrite the key).
const INFLUENCER_KEYS: [&str; 10] = [
    "job_id",
    "result_type",
    "influencer_field_name",
    "influencer_field_value",
    "influencer_score",
    "initial_influencer_score",
    "probability",
    "bucket_span",
    "is_interim",
    "timestamp",
];

/// The result of one bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketResult {
    /// Bucket start, epoch ms.
    pub timestamp: i64,
    pub bucket_span_secs: i64,
    pub anomaly_score: f64,
    pub initial_anomaly_score: f64,
    pub event_count: u64,
    pub is_interim: bool,
    pub bucket_influencers: Vec<BucketInfluencer>,
    /// Records sorted by descending `record_score`, then detector index and series names.
    pub records: Vec<AnomalyRecord>,
    /// Influencer results sorted by descending `influencer_score`, then field name and value.
    #[serde(default)]
    pub influencers: Vec<InfluencerResult>,
    /// Model plot rows (only with `model_plot_config` enabled, only for finalized buckets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_plot: Vec<ModelPlotRow>,
    /// Categories created or changed since the previous finalized bucket (stored as category
    /// definitions with this bucket's results).
    #[serde(default)]
    pub categories: Vec<crate::model::categorize::Category>,
    /// Set on the finalized bucket after which past results are to be rescored
    /// (`model::renormalize`); not part of any document.
    #[serde(skip)]
    pub renormalization: Option<crate::model::renormalize::Renormalization>,
}

impl BucketResult {
    /// The bucket document as ES returns it from `results/buckets` (without `records`).
    pub fn bucket_json(&self, job_id: &str, processing_time_ms: u64) -> Value {
        let influencers: Vec<Value> = self
            .bucket_influencers
            .iter()
            .map(|bi| {
                json!({
                    "job_id": job_id,
                    "result_type": "bucket_influencer",
                    "influencer_field_name": bi.influencer_field_name,
                    "initial_anomaly_score": bi.initial_anomaly_score,
                    "anomaly_score": bi.anomaly_score,
                    "raw_anomaly_score": bi.raw_anomaly_score,
                    "probability": bi.probability,
                    "timestamp": self.timestamp,
                    "bucket_span": self.bucket_span_secs,
                    "is_interim": self.is_interim,
                })
            })
            .collect();
        json!({
            "job_id": job_id,
            "timestamp": self.timestamp,
            "anomaly_score": self.anomaly_score,
            "bucket_influencers": influencers,
            "bucket_span": self.bucket_span_secs,
            "initial_anomaly_score": self.initial_anomaly_score,
            "event_count": self.event_count,
            "is_interim": self.is_interim,
            "processing_time_ms": processing_time_ms,
            "result_type": "bucket",
        })
    }

    /// The model plot documents of the bucket, same order as `model_plot`.
    pub fn model_plot_json(&self, job_id: &str) -> Vec<Value> {
        self.model_plot
            .iter()
            .map(|row| row.to_json(job_id, self.timestamp, self.bucket_span_secs))
            .collect()
    }

    /// The record documents as ES returns them from `results/records`, same order as `records`.
    ///
    /// `multi_bucket_impact` is always 0.0 until multi-bucket analysis exists.
    pub fn records_json(&self, job_id: &str) -> Vec<Value> {
        self.records
            .iter()
            .map(|r| {
                r.to_json(
                    job_id,
                    self.timestamp,
                    self.bucket_span_secs,
                    self.is_interim,
                )
            })
            .collect()
    }
}

impl BucketResult {
    /// The influencer documents as ES returns them from `results/influencers`, same order as
    /// `influencers`. Like ES, the value is also filed under the field's own name.
    pub fn influencers_json(&self, job_id: &str) -> Vec<Value> {
        self.influencers
            .iter()
            .map(|i| {
                let mut doc = Map::new();
                let mut put = |key: &str, value: Value| {
                    doc.insert(key.to_string(), value);
                };
                put("job_id", json!(job_id));
                put("result_type", json!("influencer"));
                put("influencer_field_name", json!(i.influencer_field_name));
                put("influencer_field_value", json!(i.influencer_field_value));
                if !INFLUENCER_KEYS.contains(&i.influencer_field_name.as_str()) {
                    put(&i.influencer_field_name, json!(i.influencer_field_value));
                }
                put("influencer_score", json!(i.influencer_score));
                put(
                    "initial_influencer_score",
                    json!(i.initial_influencer_score),
                );
                put("probability", json!(i.probability));
                put("bucket_span", json!(self.bucket_span_secs));
                put("is_interim", json!(self.is_interim));
                put("timestamp", json!(self.timestamp));
                Value::Object(doc)
            })
            .collect()
    }
}

impl AnomalyRecord {
    fn to_json(
        &self,
        job_id: &str,
        timestamp: i64,
        bucket_span_secs: i64,
        is_interim: bool,
    ) -> Value {
        let mut doc = Map::new();
        let mut put = |key: &str, value: Value| {
            doc.insert(key.to_string(), value);
        };
        put("job_id", json!(job_id));
        put("result_type", json!("record"));
        put("probability", json!(self.probability));
        put("multi_bucket_impact", json!(self.multi_bucket_impact));
        put("record_score", json!(self.record_score));
        put("initial_record_score", json!(self.initial_record_score));
        put("bucket_span", json!(bucket_span_secs));
        put("detector_index", json!(self.detector_index));
        put("is_interim", json!(is_interim));
        put("timestamp", json!(timestamp));
        let optional = [
            ("partition_field_name", &self.partition_field_name),
            ("partition_field_value", &self.partition_field_value),
            ("by_field_name", &self.by_field_name),
            ("by_field_value", &self.by_field_value),
            ("over_field_name", &self.over_field_name),
            ("over_field_value", &self.over_field_value),
        ];
        for (key, value) in optional {
            if let Some(v) = value {
                put(key, json!(v));
            }
        }
        put("function", json!(self.function));
        put("function_description", json!(self.function_description));
        if !self.actual.is_empty() {
            put("typical", json!(self.typical));
            put("actual", json!(self.actual));
        }
        if let Some(geo) = &self.geo_results {
            put("geo_results", geo.to_json());
        }
        if !self.causes.is_empty() {
            put(
                "causes",
                Value::Array(self.causes.iter().map(Cause::to_json).collect()),
            );
        }
        if let Some(field_name) = &self.field_name {
            put("field_name", json!(field_name));
        }
        if !self.influencers.is_empty() {
            let influencers: Vec<Value> = self
                .influencers
                .iter()
                .map(|(name, values)| {
                    json!({"influencer_field_name": name, "influencer_field_values": values})
                })
                .collect();
            put("influencers", Value::Array(influencers));
        }

        // ES also files each by/over/partition/influencer value under the field's own name, so
        // results can be searched by term. A field named like a result key does not overwrite it.
        let mut terms: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let named_values = [
            (&self.partition_field_name, &self.partition_field_value),
            (&self.by_field_name, &self.by_field_value),
            (&self.over_field_name, &self.over_field_value),
        ];
        for (name, value) in named_values {
            if let (Some(name), Some(value)) = (name, value) {
                terms.entry(name).or_default().push(value);
            }
        }
        for (name, values) in &self.influencers {
            terms
                .entry(name)
                .or_default()
                .extend(values.iter().map(String::as_str));
        }
        for (name, mut values) in terms {
            if doc.contains_key(name) {
                continue;
            }
            values.sort_unstable();
            values.dedup();
            doc.insert(name.to_string(), json!(values));
        }
        Value::Object(doc)
    }
}

/// `model_size_stats` as the model measures it (the job adds ids and times).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelSizeStats {
    pub model_bytes: u64,
    pub total_by_field_count: u64,
    pub total_over_field_count: u64,
    pub total_partition_field_count: u64,
    pub bucket_allocation_failures_count: u64,
    pub categorization: crate::model::categorize::CategorizationStats,
    pub peak_model_bytes: u64,
    /// Bytes over `model_memory_limit` when it was last crossed (0: never).
    pub model_bytes_exceeded: u64,
    /// `ok`, `soft_limit` or `hard_limit`.
    pub memory_status: String,
    /// `model_memory_limit` until the model is established, then `current_model_bytes`.
    pub assignment_memory_basis: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket() -> BucketResult {
        BucketResult {
            timestamp: 1_403_481_600_000,
            bucket_span_secs: 3600,
            anomaly_score: 91.5,
            initial_anomaly_score: 91.5,
            event_count: 12,
            is_interim: false,
            bucket_influencers: vec![
                BucketInfluencer {
                    influencer_field_name: "bucket_time".into(),
                    initial_anomaly_score: 91.5,
                    anomaly_score: 91.5,
                    raw_anomaly_score: 21.2,
                    probability: 6.3e-22,
                },
                BucketInfluencer {
                    influencer_field_name: "airline".into(),
                    initial_anomaly_score: 91.5,
                    anomaly_score: 91.5,
                    raw_anomaly_score: 21.2,
                    probability: 6.3e-22,
                },
            ],
            records: vec![AnomalyRecord {
                detector_index: 0,
                probability: 6.3e-22,
                multi_bucket_impact: 0.0,
                record_score: 91.5,
                initial_record_score: 91.5,
                function: "metric".into(),
                function_description: "mean".into(),
                field_name: Some("responsetime".into()),
                by_field_name: Some("airline".into()),
                by_field_value: Some("AAL".into()),
                over_field_name: None,
                over_field_value: None,
                partition_field_name: Some("region".into()),
                partition_field_value: Some("eu".into()),
                actual: vec![1000.5],
                typical: vec![100.25],
                causes: Vec::new(),
                geo_results: None,
                influencers: vec![
                    ("airline".into(), vec!["AAL".into()]),
                    ("host".into(), vec!["h1".into(), "h2".into()]),
                ],
            }],
            influencers: vec![
                InfluencerResult {
                    influencer_field_name: "airline".into(),
                    influencer_field_value: "AAL".into(),
                    probability: 6.3e-22,
                    influencer_score: 88.5,
                    initial_influencer_score: 90.0,
                },
                InfluencerResult {
                    influencer_field_name: "timestamp".into(),
                    influencer_field_value: "x".into(),
                    probability: 0.01,
                    influencer_score: 1.5,
                    initial_influencer_score: 1.5,
                },
            ],
            model_plot: Vec::new(),
            categories: Vec::new(),
            renormalization: None,
        }
    }

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn bucket_document_shape() {
        let doc = bucket().bucket_json("flights", 7);
        assert_eq!(
            keys(&doc),
            vec![
                "job_id",
                "timestamp",
                "anomaly_score",
                "bucket_influencers",
                "bucket_span",
                "initial_anomaly_score",
                "event_count",
                "is_interim",
                "processing_time_ms",
                "result_type"
            ]
        );
        assert_eq!(doc["result_type"], "bucket");
        assert_eq!(doc["timestamp"], 1_403_481_600_000i64);
        assert_eq!(doc["bucket_span"], 3600);
        assert_eq!(doc["processing_time_ms"], 7);
        assert_eq!(doc["anomaly_score"], 91.5);
        let influencer = &doc["bucket_influencers"][0];
        assert_eq!(
            keys(influencer),
            vec![
                "job_id",
                "result_type",
                "influencer_field_name",
                "initial_anomaly_score",
                "anomaly_score",
                "raw_anomaly_score",
                "probability",
                "timestamp",
                "bucket_span",
                "is_interim"
            ]
        );
        assert_eq!(influencer["result_type"], "bucket_influencer");
        assert_eq!(influencer["influencer_field_name"], "bucket_time");
        assert_eq!(influencer["probability"], 6.3e-22);
        assert_eq!(
            doc["bucket_influencers"][1]["influencer_field_name"],
            "airline"
        );
    }

    #[test]
    fn record_document_shape() {
        let docs = bucket().records_json("flights");
        assert_eq!(docs.len(), 1);
        let doc = &docs[0];
        assert_eq!(
            keys(doc),
            vec![
                "job_id",
                "result_type",
                "probability",
                "multi_bucket_impact",
                "record_score",
                "initial_record_score",
                "bucket_span",
                "detector_index",
                "is_interim",
                "timestamp",
                "partition_field_name",
                "partition_field_value",
                "by_field_name",
                "by_field_value",
                "function",
                "function_description",
                "typical",
                "actual",
                "field_name",
                "influencers",
                "airline",
                "host",
                "region"
            ]
        );
        assert_eq!(doc["result_type"], "record");
        assert_eq!(doc["multi_bucket_impact"], 0.0);
        assert_eq!(doc["actual"], serde_json::json!([1000.5]));
        assert_eq!(doc["typical"], serde_json::json!([100.25]));
        assert_eq!(doc["airline"], serde_json::json!(["AAL"]));
        assert_eq!(doc["host"], serde_json::json!(["h1", "h2"]));
        assert_eq!(doc["region"], serde_json::json!(["eu"]));
        assert_eq!(
            doc["influencers"][1],
            serde_json::json!({"influencer_field_name": "host", "influencer_field_values": ["h1", "h2"]})
        );
    }

    #[test]
    fn influencer_document_shape() {
        let docs = bucket().influencers_json("flights");
        assert_eq!(docs.len(), 2);
        let doc = &docs[0];
        assert_eq!(
            keys(doc),
            vec![
                "job_id",
                "result_type",
                "influencer_field_name",
                "influencer_field_value",
                "airline",
                "influencer_score",
                "initial_influencer_score",
                "probability",
                "bucket_span",
                "is_interim",
                "timestamp"
            ]
        );
        assert_eq!(doc["result_type"], "influencer");
        assert_eq!(doc["airline"], "AAL");
        assert_eq!(doc["influencer_score"], 88.5);
        assert_eq!(doc["initial_influencer_score"], 90.0);
        assert_eq!(doc["bucket_span"], 3600);
        assert_eq!(doc["timestamp"], 1_403_481_600_000i64);
        // A field named like a document key is not filed under its name.
        assert_eq!(docs[1]["timestamp"], 1_403_481_600_000i64);
        assert_eq!(keys(&docs[1]).len(), 10);
    }

    #[test]
    fn absent_optional_keys_are_omitted_and_reserved_names_kept() {
        let mut result = bucket();
        let record = &mut result.records[0];
        record.partition_field_name = None;
        record.partition_field_value = None;
        record.field_name = None;
        record.by_field_name = Some("function".into()); // a by field named like a result key
        record.influencers.clear();
        let doc = &result.records_json("j")[0];
        assert!(doc.get("partition_field_name").is_none());
        assert!(doc.get("field_name").is_none());
        assert!(doc.get("influencers").is_none());
        assert_eq!(doc["function"], "metric");
        let text = serde_json::to_string(doc).unwrap();
        assert!(!text.contains("null"), "{text}");
    }
}
