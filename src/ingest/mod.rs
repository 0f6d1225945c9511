//! Ingest: turns a `_data` request body into records for one job. Pure: no I/O, no tokio, no sled.
//!
//! Owns the body formats (NDJSON, concatenated JSON objects, JSON arrays of objects), the time
//! formats (`epoch`, `epoch_ms`, Java-style date patterns), dotted field paths, and the rules behind
//! every `data_counts` counter. Does not own ordering or bucketing: whether a record is out of order
//! depends on earlier records, so the job's pipeline decides that and calls [`DataCounts`].
//!
//! A malformed document rejects the whole request ([`IngestError`]); a record with a bad or missing
//! timestamp is not an error, it is counted (`invalid_date_count`).
//!
//! | file | owns |
//! |------|------|
//! | `reader.rs` | [`RecordReader`]: per-job setup, `read_body` |
//! | `framing.rs` | splitting a body into documents, error positions, [`Batch::stored`] |
//! | `extract.rs` | one-pass field extraction from one document, per-value rules, field counting |
//! | `paths.rs` | where a (dotted) field name can be in a record |
//! | `time.rs`, `time_pattern.rs`, `date_fields.rs` | time formats and parsing |
//! | `counts.rs` | [`DataCounts`] and its rules |

pub mod counts;
mod date_fields;
pub mod description;
mod error;
mod extract;
mod framing;
mod paths;
#[cfg(test)]
mod proptests;
mod reader;
pub mod time;
mod time_pattern;

pub use counts::{BucketDiagnostics, DataCounts};
pub use description::DataDescription;
pub use error::IngestError;
pub use reader::RecordReader;
pub use time::{TimeFormat, TimeValue};
pub use time_pattern::DatePattern;

/// One analysis field's value as found in a record. Numbers stay numbers so metric fields need no
/// re-parsing; a numeric string is kept as text and converted by the model when it needs a number.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Num(f64),
    Text(String),
}

impl FieldValue {
    /// The value as a metric: numbers, and strings that parse as finite numbers.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            FieldValue::Num(n) => Some(*n),
            FieldValue::Text(t) => t.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        }
    }

    /// The value as a by/over/partition/influencer term (ES renders numbers without a trailing `.0`).
    pub fn as_term(&self) -> std::borrow::Cow<'_, str> {
        match self {
            FieldValue::Text(t) => std::borrow::Cow::Borrowed(t),
            FieldValue::Num(n) if n.fract() == 0.0 && n.abs() < 1e15 => {
                std::borrow::Cow::Owned(format!("{}", *n as i64))
            }
            FieldValue::Num(n) => std::borrow::Cow::Owned(n.to_string()),
        }
    }
}

/// One input record, reduced to what the analysis reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Epoch milliseconds; `None` when the time field is missing or cannot be parsed
    /// (counted as `invalid_date_count`, never analysed).
    pub time_ms: Option<i64>,
    /// The record has no time field at all (ES counts that in `missing_field_count` too).
    pub time_missing: bool,
    /// One slot per analysis field, in the order given to [`RecordReader::new`]; `None` = absent,
    /// null, an object, or an array without scalars. Strings are `Text`, numbers `Num`, booleans
    /// `Text("true"/"false")`, an array of scalars `Text` of them joined with `,` (as ES does).
    pub values: Vec<Option<FieldValue>>,
    /// What this record adds to `input_field_count`. Elasticsearch counts every leaf field (nested
    /// objects are flattened, an array counts once) and then takes one off for the time field
    /// ("time field doesn't count", even when the record lacks it): `{"time":..,"airline":"AAL",
    /// "responsetime":1.5,"sourcetype":"farequote"}` adds 3.
    pub input_fields: u32,
}

/// The records of one request body plus what must be stored to replay it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub records: Vec<Record>,
    /// Every record's JSON text exactly as received, one per line (NDJSON); line breaks inside a
    /// pretty-printed record (insignificant whitespace) become spaces. Reading this back with
    /// [`RecordReader::read_body`] yields the same `records`; it is what the store keeps.
    pub stored: Vec<u8>,
    /// Size of the request body as received (`input_bytes`).
    pub input_bytes: u64,
}
