//! `POST _ml/anomaly_detectors/<id>/_data`.
//!
//! Owns the endpoint's parameters (`reset_start`/`reset_end`: validated as dates; what resetting
//! does is not implemented yet and they are otherwise ignored), the `202 Accepted` status
//! Elasticsearch answers with, and its deprecation `Warning` header.
//! Does not own: reading records or counting them (`job`, `ingest`). Talks to: `job`.

use hyper::header::WARNING;

use super::error::ApiError;
use super::params::ParamSpec;
use super::reply::Reply;
use super::request::ApiRequest;
use super::root::{BUILD_HASH, ES_VERSION};
use super::AppState;

const POST_DATA: ParamSpec = ParamSpec {
    api: "post_data",
    query: &["reset_start", "reset_end"],
    body: None,
};

const DEPRECATION: &str = "Posting data directly to anomaly detection jobs is deprecated, \
     in a future major version it will be compulsory to use a datafeed";

/// `299 Elasticsearch-<version>-<build hash> "<message>"`, the format clients parse warnings with.
fn deprecation_warning() -> String {
    format!("299 Elasticsearch-{ES_VERSION}-{BUILD_HASH} \"{DEPRECATION}\"")
}

pub async fn post(state: &AppState, job_id: &str, request: &ApiRequest) -> Result<Reply, ApiError> {
    let params = request.params(&POST_DATA)?;
    params.date("reset_start")?;
    params.date("reset_end")?;
    let counts = state.jobs.post_data(job_id, request.body.clone()).await?;
    Ok(Reply::with_status(202, counts).header(WARNING, deprecation_warning()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_header_format() {
        let warning = deprecation_warning();
        assert!(warning.starts_with("299 Elasticsearch-8."));
        assert!(warning.ends_with(
            "\"Posting data directly to anomaly detection jobs is deprecated, in a future major version it will be compulsory to use a datafeed\""
        ));
    }
}
