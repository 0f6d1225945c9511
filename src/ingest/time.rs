//! Time formats: `epoch` (seconds, may be fractional), `epoch_ms`, and Java-style date patterns.

use crate::ingest::IngestError;

/// A compiled `data_description.time_format`.
#[derive(Debug, Clone)]
pub enum TimeFormat {
    EpochSeconds,
    EpochMillis,
    Pattern(String),
}

impl TimeFormat {
    pub fn parse(_format: &str) -> Result<TimeFormat, IngestError> {
        todo!("ingest helper")
    }
}
