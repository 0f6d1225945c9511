//! Filter endpoints: `PUT _ml/filters/<id>`, `GET _ml/filters[/<id>]`, `POST _ml/filters/<id>/_update`,
//! `DELETE _ml/filters/<id>`. Owns their parameters and reply shapes (`{"count":N,"filters":[..]}`;
//! `from`/`size` page the list). Does not own the filter rules (`job::filters`). Talks to: `job`.

use serde_json::{json, Value};

use super::error::{ApiError, EsType};
use super::params::{ParamSpec, Params};
use super::reply::Reply;
use super::request::ApiRequest;
use super::results::page;
use super::AppState;

const PUT_FILTER: ParamSpec = ParamSpec {
    api: "filter",
    query: &[],
    body: Some(&["filter_id", "description", "items"]),
};

const GET_FILTERS: ParamSpec = ParamSpec {
    api: "get_filters",
    query: &["from", "size"],
    body: None,
};

const UPDATE_FILTER: ParamSpec = ParamSpec {
    api: "filter_update",
    query: &[],
    body: Some(&["filter_id", "description", "add_items", "remove_items"]),
};

const DELETE_FILTER: ParamSpec = ParamSpec {
    api: "delete_filter",
    query: &[],
    body: None,
};

/// A body field that must be a list of strings (absent = empty).
pub fn string_list(params: &Params, name: &str) -> Result<Vec<String>, ApiError> {
    match params.body_field(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(values)) => values
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| field_error(params, name)),
        Some(_) => Err(field_error(params, name)),
    }
}

fn field_error(params: &Params, name: &str) -> ApiError {
    ApiError::new(
        EsType::XContentParse,
        format!("[{}] failed to parse field [{name}]", params.api()),
    )
}

/// The `from`/`size` page of `docs`.
pub fn paged(params: &Params, docs: Vec<Value>) -> Result<Vec<Value>, ApiError> {
    let page = page(params)?.unwrap_or_default();
    Ok(docs.into_iter().skip(page.from).take(page.size).collect())
}

pub async fn put(
    state: &AppState,
    filter_id: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params(&PUT_FILTER)?;
    let filter = state
        .jobs
        .put_filter(
            filter_id,
            params.string("description")?,
            string_list(&params, "items")?,
        )
        .await?;
    Ok(Reply::ok(filter))
}

pub fn get(
    state: &AppState,
    filter_id: Option<&str>,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params_without_body(&GET_FILTERS)?;
    let filters = state.jobs.get_filters(filter_id)?;
    let count = filters.len();
    Ok(Reply::ok(
        json!({"count": count, "filters": paged(&params, filters)?}),
    ))
}

pub async fn update(
    state: &AppState,
    filter_id: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params(&UPDATE_FILTER)?;
    let filter = state
        .jobs
        .update_filter(
            filter_id,
            params.string("description")?,
            string_list(&params, "add_items")?,
            string_list(&params, "remove_items")?,
        )
        .await?;
    Ok(Reply::ok(filter))
}

pub async fn delete(
    state: &AppState,
    filter_id: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    request.params_without_body(&DELETE_FILTER)?;
    state.jobs.delete_filter(filter_id).await?;
    Ok(Reply::acknowledged())
}
