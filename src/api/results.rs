//! `results/buckets[/<timestamp>]`, `results/records` and `results/influencers` (GET or POST).
//!
//! Owns: these endpoints' parameters (query string or body, `page: {from, size}` in the body) and
//! their validation in Elasticsearch's words, the store reads (straight from the handler, on the
//! blocking pool: a scan decodes every document in the range), and the reply shapes
//! `{"count":N,"buckets":[..]}` / `{"count":N,"records":[..]}` / `{"count":N,"influencers":[..]}`.
//! `results/buckets/<timestamp>` answers the one bucket, or 404 `Could not find requested buckets`
//! as Elasticsearch does; `from`, `size`, `start`, `end` and `anomaly_score` cannot go with it.
//! Does not own: filtering, sorting, paging (`api::results_query`). Talks to: `job` (does the job
//! exist), `store` (scans).

use serde_json::{json, Value};

use super::error::{ApiError, EsType};
use super::params::{parse_date, ParamSpec, Params};
use super::reply::Reply;
use super::request::ApiRequest;
use super::results_query::{
    attach_records, query_buckets, query_scored, timestamp_span, BucketsQuery, Page, ResultsPage,
    ScoredQuery, MAX_FROM_SIZE_SUM,
};
use super::AppState;
use crate::store::{ResultKind, Store};

const GET_BUCKETS: ParamSpec = ParamSpec {
    api: "get_buckets",
    query: &[
        "expand",
        "exclude_interim",
        "from",
        "size",
        "start",
        "end",
        "anomaly_score",
        "sort",
        "desc",
    ],
    body: Some(&[
        "expand",
        "exclude_interim",
        "page",
        "start",
        "end",
        "anomaly_score",
        "sort",
        "desc",
        "timestamp",
    ]),
};

const GET_RECORDS: ParamSpec = ParamSpec {
    api: "get_records",
    query: &[
        "exclude_interim",
        "from",
        "size",
        "start",
        "end",
        "record_score",
        "sort",
        "desc",
    ],
    body: Some(&[
        "exclude_interim",
        "page",
        "start",
        "end",
        "record_score",
        "sort",
        "desc",
    ]),
};

const GET_INFLUENCERS: ParamSpec = ParamSpec {
    // Elasticsearch's body parser is named after the action.
    api: "cluster:monitor/xpack/ml/job/results/influencers/get",
    query: &[
        "exclude_interim",
        "from",
        "size",
        "start",
        "end",
        "influencer_score",
        "sort",
        "desc",
    ],
    body: Some(&[
        "exclude_interim",
        "page",
        "start",
        "end",
        "influencer_score",
        "sort",
        "desc",
    ]),
};

pub async fn buckets(
    state: &AppState,
    job_id: String,
    path_timestamp: Option<String>,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params(&GET_BUCKETS)?;
    // A timestamp in the path overrides one in the body, as in Elasticsearch.
    let timestamp_text = match path_timestamp {
        Some(text) => Some(text),
        None => params.string("timestamp")?.filter(|t| !t.is_empty()),
    };
    let query = BucketsQuery {
        exclude_interim: params.bool_or("exclude_interim", false)?,
        anomaly_score: params.double("anomaly_score")?,
        sort: params.string("sort")?.unwrap_or_else(|| "timestamp".into()),
        desc: params.bool_or("desc", false)?,
        page: page(&params)?.unwrap_or_default(),
        expand: params.bool_or("expand", false)?,
    };
    let range = match &timestamp_text {
        Some(text) => {
            let incompatible = ["from", "size", "page", "start", "end", "anomaly_score"];
            if incompatible.iter().any(|name| params.has(name)) {
                return Err(ApiError::illegal_argument(
                    "Param [timestamp] is incompatible with [from,size,start,end,anomaly_score]",
                ));
            }
            let timestamp = parse_date("timestamp", text.clone())?.millis;
            (Some(timestamp), Some(timestamp.saturating_add(1)))
        }
        None => time_range(&params)?,
    };
    state.jobs.require_job(&job_id)?;
    let store = state.jobs.store().clone();
    let page = blocking(move || {
        let docs = scan(&store, &job_id, ResultKind::Bucket, range)?;
        let mut page = query_buckets(docs, &query);
        if query.expand {
            if let Some((first, last)) = timestamp_span(&page.results) {
                let span = (Some(first), Some(last.saturating_add(1)));
                let records = scan(&store, &job_id, ResultKind::Record, span)?;
                attach_records(&mut page.results, records, query.exclude_interim);
            }
        }
        Ok(page)
    })
    .await?;
    if timestamp_text.is_some() && page.count == 0 {
        return Err(ApiError::new(
            EsType::ResourceNotFound,
            "Could not find requested buckets",
        ));
    }
    Ok(Reply::ok(
        json!({ "count": page.count, "buckets": page.results }),
    ))
}

pub async fn records(
    state: &AppState,
    job_id: String,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params(&GET_RECORDS)?;
    scored(
        state,
        job_id,
        &params,
        ResultKind::Record,
        "record_score",
        "records",
    )
    .await
}

pub async fn influencers(
    state: &AppState,
    job_id: String,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params(&GET_INFLUENCERS)?;
    scored(
        state,
        job_id,
        &params,
        ResultKind::Influencer,
        "influencer_score",
        "influencers",
    )
    .await
}

/// Records and influencers: documents of `kind` filtered by their own `score_field`, answered
/// under `key`.
async fn scored(
    state: &AppState,
    job_id: String,
    params: &Params,
    kind: ResultKind,
    score_field: &'static str,
    key: &str,
) -> Result<Reply, ApiError> {
    let defaults = ScoredQuery::new(score_field);
    let query = ScoredQuery {
        exclude_interim: params.bool_or("exclude_interim", false)?,
        threshold: params.double(score_field)?,
        sort: params.string("sort")?.unwrap_or(defaults.sort),
        desc: params.bool_or("desc", defaults.desc)?,
        page: page(params)?.unwrap_or_default(),
        ..defaults
    };
    let range = time_range(params)?;
    state.jobs.require_job(&job_id)?;
    let store = state.jobs.store().clone();
    let page = blocking(move || {
        let docs = scan(&store, &job_id, kind, range)?;
        Ok(query_scored(docs, &query))
    })
    .await?;
    Ok(Reply::ok(json!({ "count": page.count, key: page.results })))
}

/// `start` (inclusive) and `end` (exclusive) as epoch ms.
pub(super) fn time_range(params: &Params) -> Result<(Option<i64>, Option<i64>), ApiError> {
    Ok((
        params.date("start")?.map(|d| d.millis),
        params.date("end")?.map(|d| d.millis),
    ))
}

/// `page: {from, size}` from the body, else `from`/`size` from the query string; `None` when neither.
pub(super) fn page(params: &Params) -> Result<Option<Page>, ApiError> {
    let (from, size) = match params.body_field("page") {
        Some(Value::Object(page)) => {
            if let Some(unknown) = page.keys().find(|k| *k != "from" && *k != "size") {
                return Err(ApiError::new(
                    EsType::XContentParse,
                    format!("[page] unknown field [{unknown}]"),
                ));
            }
            let field = |name: &str| -> Result<Option<i64>, ApiError> {
                match page.get(name) {
                    None | Some(Value::Null) => Ok(None),
                    Some(value) => value.as_i64().map(Some).ok_or_else(|| {
                        ApiError::new(
                            EsType::XContentParse,
                            format!("[page] failed to parse field [{name}]"),
                        )
                    }),
                }
            };
            (field("from")?, field("size")?)
        }
        Some(_) => {
            return Err(ApiError::new(
                EsType::XContentParse,
                format!("[{}] failed to parse field [page]", params.api()),
            ))
        }
        None => (params.int("from")?, params.int("size")?),
    };
    if from.is_none() && size.is_none() {
        return Ok(None);
    }
    let from = from.unwrap_or(0);
    let size = size.unwrap_or(100);
    if from < 0 {
        return Err(ApiError::illegal_argument("Parameter [from] cannot be < 0"));
    }
    if size < 0 {
        return Err(ApiError::illegal_argument("Parameter [size] cannot be < 0"));
    }
    if from.saturating_add(size) > MAX_FROM_SIZE_SUM {
        return Err(ApiError::illegal_argument(format!(
            "The sum of parameters [from] and [size] cannot be higher than {MAX_FROM_SIZE_SUM}."
        )));
    }
    // Both are within 0..=10000 here.
    Ok(Some(Page {
        from: from as usize,
        size: size as usize,
    }))
}

/// Scans one kind of result in `[start, end)` and decodes the documents.
pub(super) fn scan(
    store: &Store,
    job_id: &str,
    kind: ResultKind,
    (start, end): (Option<i64>, Option<i64>),
) -> Result<Vec<Value>, ApiError> {
    if let (Some(start), Some(end)) = (start, end) {
        if start >= end {
            return Ok(Vec::new());
        }
    }
    let raw = store.scan_results(job_id, kind, start, end)?;
    raw.iter()
        .map(|bytes| {
            serde_json::from_slice(bytes).map_err(|error| {
                ApiError::internal(&format!(
                    "stored {kind:?} result of job [{job_id}] is not JSON: {error}"
                ))
            })
        })
        .collect()
}

pub(super) async fn blocking<F>(work: F) -> Result<ResultsPage, ApiError>
where
    F: FnOnce() -> Result<ResultsPage, ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ApiError::internal(&format!("results query task failed: {error}")))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(query: &[(&str, &str)], body: Option<Value>) -> Params {
        let query = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let body = body.map(|b| b.as_object().cloned().expect("object"));
        Params::new("/p", &GET_BUCKETS, query, body).expect("valid params")
    }

    #[test]
    fn page_from_query_or_body() {
        assert_eq!(page(&params(&[], None)).unwrap(), None);
        assert_eq!(
            page(&params(&[("from", "5")], None)).unwrap(),
            Some(Page { from: 5, size: 100 })
        );
        assert_eq!(
            page(&params(
                &[("from", "5"), ("size", "7")],
                Some(json!({"page": {"size": 3}}))
            ))
            .unwrap(),
            Some(Page { from: 0, size: 3 })
        );
    }

    #[test]
    fn page_validation_messages() {
        assert_eq!(
            page(&params(&[("from", "-1")], None)).unwrap_err().reason,
            "Parameter [from] cannot be < 0"
        );
        assert_eq!(
            page(&params(&[("size", "-1")], None)).unwrap_err().reason,
            "Parameter [size] cannot be < 0"
        );
        assert_eq!(
            page(&params(&[("from", "9999"), ("size", "2")], None))
                .unwrap_err()
                .reason,
            "The sum of parameters [from] and [size] cannot be higher than 10000."
        );
        let error = page(&params(&[], Some(json!({"page": {"form": 1}})))).unwrap_err();
        assert_eq!(error.kind, EsType::XContentParse);
        let error = page(&params(&[], Some(json!({"page": 3})))).unwrap_err();
        assert_eq!(error.kind, EsType::XContentParse);
    }

    #[test]
    fn time_range_parses_dates() {
        let range = time_range(&params(
            &[("start", "1403481600"), ("end", "2014-06-23T01:00:00Z")],
            None,
        ))
        .unwrap();
        assert_eq!(range, (Some(1_403_481_600_000), Some(1_403_485_200_000)));
        let error = time_range(&params(&[("end", "later")], None)).unwrap_err();
        assert_eq!(error.kind, EsType::Parse);
    }
}
