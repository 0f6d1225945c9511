//! Job id expressions: an id, a group, a comma list, wildcards (`*`, `foo*`), `_all` or empty.

use std::collections::BTreeSet;

use crate::job::JobError;

/// What the expression is matched against: each job's id and groups.
pub struct Known<'a> {
    pub job_id: &'a str,
    pub groups: &'a [String],
}

/// Expands `expression` to the sorted, de-duplicated ids it names.
///
/// As in Elasticsearch: a part that names an id or group exactly must exist (404 otherwise); a
/// wildcard part or `_all` that matches nothing is an error only when `allow_no_match` is false.
pub fn expand<'a>(
    expression: &str,
    known: impl Iterator<Item = Known<'a>> + Clone,
    allow_no_match: bool,
) -> Result<Vec<String>, JobError> {
    let parts: Vec<&str> = expression
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let parts = if parts.is_empty() {
        vec!["_all"]
    } else {
        parts
    };
    let mut matched = BTreeSet::new();
    for part in parts {
        let is_pattern = part == "_all" || part.contains('*');
        let mut any = false;
        for job in known.clone() {
            let hit = if part == "_all" {
                true
            } else if is_pattern {
                wildcard_match(part, job.job_id)
                    || job.groups.iter().any(|g| wildcard_match(part, g))
            } else {
                job.job_id == part || job.groups.iter().any(|g| g == part)
            };
            if hit {
                any = true;
                matched.insert(job.job_id.to_string());
            }
        }
        if !any && (!is_pattern || !allow_no_match) {
            return Err(JobError::NotFound {
                job_id: part.to_string(),
            });
        }
    }
    Ok(matched.into_iter().collect())
}

/// `*` matches any run of characters; everything else matches itself.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let pieces: Vec<&str> = pattern.split('*').collect();
    if pieces.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &pieces[1..pieces.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs() -> Vec<(String, Vec<String>)> {
        vec![
            ("alpha".into(), vec!["web".into()]),
            ("alpine".into(), vec![]),
            ("beta".into(), vec!["web".into(), "db".into()]),
        ]
    }

    fn run(expression: &str, allow_no_match: bool) -> Result<Vec<String>, JobError> {
        let jobs = jobs();
        expand(
            expression,
            jobs.iter().map(|(id, groups)| Known { job_id: id, groups }),
            allow_no_match,
        )
    }

    #[test]
    fn ids_groups_lists_and_wildcards() {
        assert_eq!(run("alpha", true).unwrap(), vec!["alpha"]);
        assert_eq!(run("web", true).unwrap(), vec!["alpha", "beta"]);
        assert_eq!(run("alp*", true).unwrap(), vec!["alpha", "alpine"]);
        assert_eq!(run("beta,alpha", true).unwrap(), vec!["alpha", "beta"]);
        assert_eq!(run("_all", true).unwrap(), vec!["alpha", "alpine", "beta"]);
        assert_eq!(run("", true).unwrap(), vec!["alpha", "alpine", "beta"]);
        assert_eq!(run("*", true).unwrap(), vec!["alpha", "alpine", "beta"]);
        assert_eq!(run("d*", true).unwrap(), vec!["beta"]);
    }

    #[test]
    fn missing_matches() {
        assert!(
            matches!(run("gamma", true), Err(JobError::NotFound { job_id }) if job_id == "gamma")
        );
        assert_eq!(run("gam*", true).unwrap(), Vec::<String>::new());
        assert!(matches!(run("gam*", false), Err(JobError::NotFound { .. })));
        assert!(matches!(
            run("alpha,gamma", true),
            Err(JobError::NotFound { .. })
        ));
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("a*c", "abc"));
        assert!(wildcard_match("a*c", "ac"));
        assert!(!wildcard_match("a*c", "ab"));
        assert!(wildcard_match("*b*", "abc"));
        assert!(!wildcard_match("ab*ba", "aba"));
        assert!(wildcard_match("job-*-x", "job-1-x"));
    }
}
