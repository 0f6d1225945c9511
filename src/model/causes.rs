//! The parts of a record that only some functions have: `causes` (population analysis: one entry
//! per by value, or per member when there is no by field, that made a member of the population
//! unusual) and `geo_results` (`lat_long`: the points as `"lat,lon"` strings).
//!
//! Plain data plus its Elasticsearch JSON; `population` fills them in, `result` renders them.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// `geo_results` of a `lat_long` record or cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeoResults {
    pub actual_point: String,
    pub typical_point: String,
}

impl GeoResults {
    pub fn to_json(&self) -> Value {
        json!({"actual_point": self.actual_point, "typical_point": self.typical_point})
    }
}

/// One entry of a population record's `causes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cause {
    pub probability: f64,
    pub function: String,
    pub function_description: String,
    pub field_name: Option<String>,
    pub by_field_name: Option<String>,
    pub by_field_value: Option<String>,
    pub over_field_name: Option<String>,
    pub over_field_value: Option<String>,
    pub partition_field_name: Option<String>,
    pub partition_field_value: Option<String>,
    pub actual: Vec<f64>,
    pub typical: Vec<f64>,
    pub geo_results: Option<GeoResults>,
}

impl Cause {
    /// The cause document, keys in Elasticsearch's order, absent optional keys omitted.
    pub fn to_json(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("probability".into(), json!(self.probability));
        let optional = [
            ("field_name", &self.field_name),
            ("by_field_name", &self.by_field_name),
            ("by_field_value", &self.by_field_value),
            ("over_field_name", &self.over_field_name),
            ("over_field_value", &self.over_field_value),
            ("partition_field_name", &self.partition_field_name),
            ("partition_field_value", &self.partition_field_value),
        ];
        for (key, value) in optional {
            if let Some(v) = value {
                doc.insert(key.into(), json!(v));
            }
        }
        doc.insert("function".into(), json!(self.function));
        doc.insert(
            "function_description".into(),
            json!(self.function_description),
        );
        doc.insert("typical".into(), json!(self.typical));
        doc.insert("actual".into(), json!(self.actual));
        if let Some(geo) = &self.geo_results {
            doc.insert("geo_results".into(), geo.to_json());
        }
        Value::Object(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cause_document_shape() {
        let cause = Cause {
            probability: 1e-9,
            function: "count".into(),
            function_description: "count".into(),
            field_name: None,
            by_field_name: Some("uri".into()),
            by_field_value: Some("/login".into()),
            over_field_name: Some("clientip".into()),
            over_field_value: Some("10.0.0.9".into()),
            partition_field_name: None,
            partition_field_value: None,
            actual: vec![500.0],
            typical: vec![10.0],
            geo_results: None,
        };
        let doc = cause.to_json();
        let keys: Vec<&str> = doc
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            vec![
                "probability",
                "by_field_name",
                "by_field_value",
                "over_field_name",
                "over_field_value",
                "function",
                "function_description",
                "typical",
                "actual"
            ]
        );
        assert_eq!(doc["actual"], json!([500.0]));
    }
}
