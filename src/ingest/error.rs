//! Errors that make a whole `_data` request unusable. A bad record is not one of them: it is counted.

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IngestError {
    /// A document in the body is not valid JSON; `line` is 1-based, `column` too.
    #[error("Failed to parse the data at line [{line}], column [{column}]: {message}")]
    Malformed {
        line: usize,
        column: usize,
        message: String,
    },
    /// A JSON value that is not an object where a record is expected.
    #[error("The document at line [{line}] is not a JSON object: records must be objects")]
    NotAnObject { line: usize },
    /// `data_description.time_format` is neither `epoch`, `epoch_ms` nor a date pattern we can read.
    #[error("Invalid Time format string '{0}'")]
    InvalidTimeFormat(String),
}
