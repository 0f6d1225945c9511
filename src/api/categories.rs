//! `results/categories[/<category_id>]` (GET or POST): the job's category definitions, by
//! `category_id`, paged with `from`/`size` or `page`, optionally of one `partition_field_value`.
//! Answers `{"count": N, "categories": [..]}`; one unknown category id is a 404.
//! Talks to: `job` (does the job exist), `store` (the stored definitions, kind `Category`).

use serde_json::{json, Value};

use super::error::ApiError;
use super::params::ParamSpec;
use super::reply::Reply;
use super::request::ApiRequest;
use super::results::{blocking, page, scan};
use super::results_query::ResultsPage;
use super::AppState;
use crate::store::ResultKind;

const GET_CATEGORIES: ParamSpec = ParamSpec {
    api: "get_categories",
    query: &["from", "size", "partition_field_value"],
    body: Some(&["page", "partition_field_value", "category_id", "job_id"]),
};

pub async fn get(
    state: &AppState,
    job_id: String,
    category_id: Option<String>,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params(&GET_CATEGORIES)?;
    let category_id = match category_id {
        None => None,
        Some(text) => Some(text.parse::<u64>().map_err(|_| {
            ApiError::illegal_argument(format!("Failed to parse [category_id] with value [{text}]"))
        })?),
    };
    let page = page(&params)?.unwrap_or_default();
    let partition = params.string("partition_field_value")?;
    state.jobs.require_job(&job_id)?;
    let store = state.jobs.store().clone();
    let wanted_job = job_id.clone();
    let found = blocking(move || {
        let mut docs = scan(&store, &wanted_job, ResultKind::Category, (None, None))?;
        docs.retain(|doc| {
            category_id.is_none_or(|id| doc["category_id"].as_u64() == Some(id))
                && partition
                    .as_deref()
                    .is_none_or(|p| doc["partition_field_value"].as_str() == Some(p))
        });
        // Stored by id already (the key's ordinal); paging applies after the filters.
        let count = docs.len();
        let results: Vec<Value> = docs.into_iter().skip(page.from).take(page.size).collect();
        Ok(ResultsPage { count, results })
    })
    .await?;
    if let (Some(id), 0) = (category_id, found.count) {
        return Err(ApiError::new(
            super::error::EsType::ResourceNotFound,
            format!("No category definition with id [{id}] exists for job [{job_id}]"),
        ));
    }
    Ok(Reply::ok(
        json!({ "count": found.count, "categories": found.results }),
    ))
}
