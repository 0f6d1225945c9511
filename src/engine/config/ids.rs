//! Elasticsearch's id rules, for job ids, group names and results index names.
//!
//! Does not check uniqueness (a job id or group already in use): the job manager does.

use crate::engine::JobError;

const ID_LENGTH_LIMIT: usize = 64;

/// Elasticsearch's id rule: lowercase alphanumerics, `-`, `_` (and `.`, which Elasticsearch accepts
/// without documenting it), starting and ending alphanumeric, at most 64 characters.
pub fn validate_job_id(job_id: &str) -> Result<(), JobError> {
    check_id("job_id", job_id)?;
    if job_id.len() > ID_LENGTH_LIMIT {
        return Err(JobError::InvalidArgument(format!(
            "Invalid job_id; '{job_id}' cannot contain more than {ID_LENGTH_LIMIT} characters."
        )));
    }
    Ok(())
}

/// A group name follows the id rule (Elasticsearch sets no length limit on groups). That a group may
/// not share its name with a job is the job manager's check.
pub fn validate_group_id(group: &str) -> Result<(), JobError> {
    if is_valid_id(group) {
        return Ok(());
    }
    Err(JobError::InvalidArgument(format!(
        "Invalid group id '{group}'; must be non-empty string and may contain lowercase alphanumeric (a-z and 0-9), hyphens or underscores; must start and end with alphanumeric"
    )))
}

fn is_valid_id(id: &str) -> bool {
    let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bytes = id.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            edge(first)
                && edge(last)
                && bytes
                    .iter()
                    .all(|&c| edge(c) || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

pub fn check_id(kind: &str, id: &str) -> Result<(), JobError> {
    if is_valid_id(id) {
        return Ok(());
    }
    Err(JobError::InvalidArgument(format!(
        "Invalid {kind}; '{id}' can contain lowercase alphanumeric (a-z and 0-9), hyphens or underscores; must start and end with alphanumeric"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_id_rules() {
        let err = |id: &str| validate_job_id(id).unwrap_err().to_string();
        let invalid_chars = |id: &str| {
            format!("Invalid job_id; '{id}' can contain lowercase alphanumeric (a-z and 0-9), hyphens or underscores; must start and end with alphanumeric")
        };
        for ok in ["a", "0", "job-1", "a_b-c", "a.b", &"a".repeat(64)] {
            assert!(validate_job_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-job", "job-", "_job", "Job", "jöb", "a b", "_all", "a*",
        ] {
            assert_eq!(err(bad), invalid_chars(bad));
        }
        let long = "a".repeat(65);
        assert_eq!(
            err(&long),
            format!("Invalid job_id; '{long}' cannot contain more than 64 characters.")
        );
        // A long id with bad characters gets the character message, as in Elasticsearch.
        let long_bad = format!("{}A", "a".repeat(70));
        assert_eq!(err(&long_bad), invalid_chars(&long_bad));
    }

    #[test]
    fn group_ids() {
        assert!(validate_group_id("web-servers").is_ok());
        assert!(
            validate_group_id(&"g".repeat(100)).is_ok(),
            "groups have no length limit"
        );
        assert_eq!(
            validate_group_id("Web").unwrap_err().to_string(),
            "Invalid group id 'Web'; must be non-empty string and may contain lowercase alphanumeric (a-z and 0-9), hyphens or underscores; must start and end with alphanumeric"
        );
    }
}
