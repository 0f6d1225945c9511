//! `data_description`: where the time is in a record and how it is written.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataDescription {
    /// Only `xcontent` (JSON) is accepted, as in Elasticsearch 8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default = "default_time_field")]
    pub time_field: String,
    #[serde(default = "default_time_format")]
    pub time_format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_delimiter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote_character: Option<String>,
}

fn default_time_field() -> String {
    "time".to_string()
}

fn default_time_format() -> String {
    "epoch_ms".to_string()
}

impl Default for DataDescription {
    fn default() -> Self {
        DataDescription {
            format: None,
            time_field: default_time_field(),
            time_format: default_time_format(),
            field_delimiter: None,
            quote_character: None,
        }
    }
}
