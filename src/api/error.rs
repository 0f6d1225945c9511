//! ApiError and the Elasticsearch error envelope.
//!
//! Owns: the table of Elasticsearch error kinds auspex answers with ([`EsType`]: type string and HTTP
//! status, declared once), the mapping of every lower-layer error to one of them (exhaustive matches,
//! no catch-all arm, so a new `JobError`/`IngestError` variant does not compile until it is mapped),
//! and the JSON envelope `{"error":{"root_cause":[{type,reason}],type,reason},"status":N}`.
//! Does not own: the "simple" error bodies the router sends for unknown paths / wrong methods /
//! unsupported content types (those are `{"error":"..."}` strings in Elasticsearch; see `api::reply`).
//! Talks to: nothing; `tracing` for the internal errors whose cause is never sent to the client.

use std::fmt;

use serde_json::json;

use crate::ingest::IngestError;
use crate::job::JobError;
use crate::store::StoreError;

macro_rules! es_types {
    ($($variant:ident => ($type_name:literal, $status:literal)),* $(,)?) => {
        /// The Elasticsearch error kinds auspex answers with: one row per kind (type string, status).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum EsType {
            $($variant),*
        }

        impl EsType {
            /// The `type` field Elasticsearch clients match on.
            pub fn type_name(self) -> &'static str {
                match self {
                    $(EsType::$variant => $type_name),*
                }
            }

            pub fn status(self) -> u16 {
                match self {
                    $(EsType::$variant => $status),*
                }
            }
        }
    };
}

es_types! {
    ResourceNotFound => ("resource_not_found_exception", 404),
    ResourceAlreadyExists => ("resource_already_exists_exception", 400),
    IllegalArgument => ("illegal_argument_exception", 400),
    XContentParse => ("x_content_parse_exception", 400),
    Parse => ("parse_exception", 400),
    Status => ("status_exception", 409),
    // Elasticsearch's `badRequestException`: a `status_exception` with status 400.
    BadRequestStatus => ("status_exception", 400),
    RejectedExecution => ("es_rejected_execution_exception", 429),
    // What Elasticsearch's upgrade-mode filter answers a write with.
    UpgradeModeStatus => ("status_exception", 429),
    // A request body that did not arrive within `--body-read-timeout` (auspex's own type name).
    RequestTimeout => ("timeout_exception", 408),
    // Elasticsearch answers an oversized body with a bare 413 and no body; auspex adds an envelope
    // so the client sees why (the type name is auspex's own).
    ContentTooLong => ("content_too_long_exception", 413),
    // Anything that is auspex's fault; the reason sent is generic, the cause goes to the log.
    Internal => ("exception", 500),
    // No or bad credentials (with `WWW-Authenticate` challenges; see `api::auth`).
    Unauthenticated => ("security_exception", 401),
    // Authenticated, but no role grants the action.
    Forbidden => ("security_exception", 403),
}

/// An error answer: always rendered as the Elasticsearch envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub kind: EsType,
    pub reason: String,
}

impl ApiError {
    pub fn new(kind: EsType, reason: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            reason: reason.into(),
        }
    }

    pub fn illegal_argument(reason: impl Into<String>) -> ApiError {
        ApiError::new(EsType::IllegalArgument, reason)
    }

    /// 500 with a generic reason; `cause` is logged with a reference the client also gets, so a
    /// report can be matched to the log line without leaking internals.
    pub fn internal(cause: &dyn fmt::Display) -> ApiError {
        ApiError::internal_saying(cause, None)
    }

    /// A 500 whose reason also says `shown` (what failed, when that reveals nothing internal: an
    /// operating system error such as a full disk).
    fn internal_saying(cause: &dyn fmt::Display, shown: Option<&str>) -> ApiError {
        let reference = uuid::Uuid::new_v4().simple().to_string();
        tracing::error!(reference = %reference, "internal error: {cause}");
        let shown = shown.map(|s| format!(": {s}")).unwrap_or_default();
        ApiError::new(
            EsType::Internal,
            format!("internal error [{reference}]{shown}; the auspex log has the details"),
        )
    }

    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// `{"error":{"root_cause":[{"type","reason"}],"type","reason"},"status":N}`.
    pub fn to_json(&self) -> serde_json::Value {
        let type_name = self.kind.type_name();
        json!({
            "error": {
                "root_cause": [{ "type": type_name, "reason": self.reason }],
                "type": type_name,
                "reason": self.reason,
            },
            "status": self.kind.status(),
        })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.kind.type_name(), self.reason)
    }
}

impl From<JobError> for ApiError {
    fn from(error: JobError) -> ApiError {
        let reason = error.to_string();
        match error {
            JobError::NotFound { .. } | JobError::Missing(_) => {
                ApiError::new(EsType::ResourceNotFound, reason)
            }
            JobError::AlreadyExists { .. } | JobError::Exists(_) => {
                ApiError::new(EsType::ResourceAlreadyExists, reason)
            }
            JobError::InvalidArgument(_) => ApiError::new(EsType::IllegalArgument, reason),
            JobError::Parse(_) => ApiError::new(EsType::XContentParse, reason),
            JobError::BadDate { .. } => ApiError::new(EsType::Parse, reason),
            JobError::NotOpen { .. } | JobError::Conflict(_) => {
                ApiError::new(EsType::Status, reason)
            }
            JobError::Overloaded { .. } => ApiError::new(EsType::RejectedExecution, reason),
            JobError::Ingest(ingest) => ApiError::from(ingest),
            JobError::Store(store) => ApiError::from(store),
            JobError::ActorGone { .. } => ApiError::internal(&reason),
            // The operator needs to know which job and what is damaged; no client input is echoed.
            JobError::Damaged { .. } => ApiError::new(EsType::Internal, reason),
            JobError::BadRequest(_) => ApiError::new(EsType::BadRequestStatus, reason),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> ApiError {
        let reason = error.to_string();
        match error {
            // A body that is not JSON is what Elasticsearch reports as an x-content parse failure.
            IngestError::Malformed { .. } | IngestError::NotAnObject { .. } => {
                ApiError::new(EsType::XContentParse, reason)
            }
            IngestError::InvalidTimeFormat(_) => ApiError::new(EsType::IllegalArgument, reason),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            // What the disk said (No space left on device, ...) tells the operator what to fix.
            StoreError::Sled(sled::Error::Io(ref io)) => ApiError::internal_saying(
                &error,
                Some(&format!(
                    "the store could not read or write its files: {io}"
                )),
            ),
            StoreError::Sled(_)
            | StoreError::Corrupt { .. }
            | StoreError::UnknownFormat { .. }
            | StoreError::Encode(_) => ApiError::internal(&error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(error: impl Into<ApiError>) -> (u16, String) {
        let error = error.into();
        (error.status(), error.to_json().to_string())
    }

    fn envelope(type_name: &str, reason: &str, status: u16) -> String {
        format!(
            r#"{{"error":{{"root_cause":[{{"type":"{type_name}","reason":"{reason}"}}],"type":"{type_name}","reason":"{reason}"}},"status":{status}}}"#
        )
    }

    #[test]
    fn a_full_disk_is_named_in_the_500() {
        let full = StoreError::Sled(sled::Error::Io(std::io::Error::from_raw_os_error(28)));
        let (status, body) = rendered(full);
        assert_eq!(status, 500);
        assert!(body.contains("No space left on device"), "{body}");
        // Other internal errors still show only their reference.
        let (_, body) = rendered(StoreError::Encode("secret detail".into()));
        assert!(!body.contains("secret detail"), "{body}");
    }

    #[test]
    fn not_found_golden() {
        let (status, body) = rendered(JobError::NotFound { job_id: "x".into() });
        assert_eq!(status, 404);
        assert_eq!(
            body,
            envelope(
                "resource_not_found_exception",
                "No known job with id 'x'",
                404
            )
        );
    }

    #[test]
    fn already_exists_golden() {
        let (status, body) = rendered(JobError::AlreadyExists { job_id: "x".into() });
        assert_eq!(status, 400);
        assert_eq!(
            body,
            envelope(
                "resource_already_exists_exception",
                "The job cannot be created with the Id 'x'. The Id is already used.",
                400
            )
        );
    }

    #[test]
    fn argument_parse_and_date_goldens() {
        assert_eq!(
            rendered(JobError::InvalidArgument("No detectors configured".into())),
            (
                400,
                envelope("illegal_argument_exception", "No detectors configured", 400)
            )
        );
        assert_eq!(
            rendered(JobError::Parse("unknown field [foo]".into())),
            (
                400,
                envelope("x_content_parse_exception", "unknown field [foo]", 400)
            )
        );
        assert_eq!(
            rendered(JobError::BadDate {
                param: "start".into(),
                value: "yesterday".into()
            }),
            (
                400,
                envelope(
                    "parse_exception",
                    "Query param [start] with value [yesterday] cannot be parsed as a date or converted to a number (epoch).",
                    400
                )
            )
        );
    }

    #[test]
    fn conflicts_are_409_status_exception() {
        assert_eq!(
            rendered(JobError::NotOpen { job_id: "x".into() }),
            (
                409,
                envelope(
                    "status_exception",
                    "Cannot perform requested action because job [x] is not open",
                    409
                )
            )
        );
        assert_eq!(
            rendered(JobError::Conflict(
                "Cannot delete job [x] because the job is opened".into()
            )),
            (
                409,
                envelope(
                    "status_exception",
                    "Cannot delete job [x] because the job is opened",
                    409
                )
            )
        );
    }

    #[test]
    fn overloaded_is_429() {
        let (status, body) = rendered(JobError::Overloaded { job_id: "x".into() });
        assert_eq!(status, 429);
        assert!(body.contains(r#""type":"es_rejected_execution_exception""#));
    }

    #[test]
    fn ingest_errors_are_400() {
        let malformed = IngestError::Malformed {
            line: 2,
            column: 5,
            message: "expected value".into(),
        };
        let reason = malformed.to_string();
        let (status, body) = rendered(JobError::Ingest(malformed));
        assert_eq!(status, 400);
        assert_eq!(body, envelope("x_content_parse_exception", &reason, 400));
        let (status, body) = rendered(IngestError::InvalidTimeFormat("yyyy".into()));
        assert_eq!(status, 400);
        assert!(body.contains("illegal_argument_exception"));
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let store = StoreError::Corrupt {
            tree: "results",
            key: "secret-key".into(),
            reason: "crc mismatch".into(),
        };
        for error in [
            ApiError::from(JobError::Store(store)),
            ApiError::from(JobError::ActorGone { job_id: "x".into() }),
        ] {
            assert_eq!(error.status(), 500);
            assert_eq!(error.kind.type_name(), "exception");
            assert!(!error.reason.contains("secret-key"));
            assert!(!error.reason.contains("stopped unexpectedly"));
            assert!(error.reason.starts_with("internal error ["));
        }
    }

    #[test]
    fn every_type_has_an_error_status() {
        for kind in [
            EsType::ResourceNotFound,
            EsType::ResourceAlreadyExists,
            EsType::IllegalArgument,
            EsType::XContentParse,
            EsType::Parse,
            EsType::Status,
            EsType::BadRequestStatus,
            EsType::RejectedExecution,
            EsType::ContentTooLong,
            EsType::Internal,
            EsType::Unauthenticated,
            EsType::Forbidden,
        ] {
            assert!((400..600).contains(&kind.status()), "{kind:?}");
            assert!(kind.type_name().ends_with("exception"), "{kind:?}");
            assert!(kind
                .type_name()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }
}
