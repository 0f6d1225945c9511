//! Calendar endpoints: `PUT/GET/POST/DELETE _ml/calendars[/<id>]`, `PUT/DELETE
//! _ml/calendars/<id>/jobs/<job ids>`, `POST/GET _ml/calendars/<id>/events`, `DELETE
//! _ml/calendars/<id>/events/<event_id>`. Owns their parameters (events' times are dates or epoch
//! ms, like every date parameter) and reply shapes. Does not own the calendar rules
//! (`job::calendars`). Talks to: `job`.

use serde_json::{json, Value};

use super::error::{ApiError, EsType};
use super::filters::{paged, string_list};
use super::params::{parse_date, ParamSpec};
use super::reply::Reply;
use super::request::ApiRequest;
use super::results::time_range;
use super::AppState;
use crate::job::NewEvent;

const PUT_CALENDAR: ParamSpec = ParamSpec {
    api: "calendar",
    query: &[],
    body: Some(&["calendar_id", "description", "job_ids"]),
};

const GET_CALENDARS: ParamSpec = ParamSpec {
    api: "get_calendars",
    query: &["from", "size"],
    body: Some(&["page", "calendar_id"]),
};

const NO_PARAMS: ParamSpec = ParamSpec {
    api: "calendar",
    query: &[],
    body: None,
};

const POST_EVENTS: ParamSpec = ParamSpec {
    api: "post_calendar_events",
    query: &[],
    body: Some(&["events"]),
};

const GET_EVENTS: ParamSpec = ParamSpec {
    api: "get_calendar_events",
    query: &["job_id", "start", "end", "from", "size"],
    body: None,
};

pub async fn put(
    state: &AppState,
    calendar_id: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params(&PUT_CALENDAR)?;
    let calendar = state
        .jobs
        .put_calendar(
            calendar_id,
            params.string("description")?,
            string_list(&params, "job_ids")?,
        )
        .await?;
    Ok(Reply::ok(calendar))
}

pub fn get(
    state: &AppState,
    calendar_id: Option<&str>,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params(&GET_CALENDARS)?;
    let calendars = state.jobs.get_calendars(calendar_id.unwrap_or("_all"))?;
    let count = calendars.len();
    Ok(Reply::ok(
        json!({"count": count, "calendars": paged(&params, calendars)?}),
    ))
}

pub async fn delete(
    state: &AppState,
    calendar_id: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    request.params_without_body(&NO_PARAMS)?;
    state.jobs.delete_calendar(calendar_id).await?;
    Ok(Reply::acknowledged())
}

/// `PUT` adds the jobs, `DELETE` removes them.
pub async fn jobs(
    state: &AppState,
    calendar_id: &str,
    job_ids: &str,
    add: bool,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    request.params_without_body(&NO_PARAMS)?;
    let calendar = state
        .jobs
        .change_calendar_jobs(calendar_id, job_ids, add)
        .await?;
    Ok(Reply::ok(calendar))
}

pub async fn post_events(
    state: &AppState,
    calendar_id: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params(&POST_EVENTS)?;
    let Some(Value::Array(raw)) = params.body_field("events") else {
        return Err(ApiError::illegal_argument("events field is required"));
    };
    let events = raw.iter().map(parse_event).collect::<Result<Vec<_>, _>>()?;
    let stored = state.jobs.post_calendar_events(calendar_id, events).await?;
    Ok(Reply::ok(json!({ "events": stored })))
}

fn parse_event(value: &Value) -> Result<NewEvent, ApiError> {
    let parse_error = |name: &str| {
        ApiError::new(
            EsType::XContentParse,
            format!("[scheduled_event] failed to parse field [{name}]"),
        )
    };
    let map = value.as_object().ok_or_else(|| parse_error("events"))?;
    const FIELDS: &[&str] = &[
        "description",
        "start_time",
        "end_time",
        "skip_result",
        "skip_model_update",
        "force_time_shift",
        "calendar_id",
        "event_id",
    ];
    if let Some(field) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::new(
            EsType::XContentParse,
            format!("[scheduled_event] unknown field [{field}]"),
        ));
    }
    let time = |name: &str| -> Result<i64, ApiError> {
        let text = match map.get(name) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            None => return Err(ApiError::illegal_argument(format!("Required [{name}]"))),
            Some(_) => return Err(parse_error(name)),
        };
        Ok(parse_date(name, text)?.millis)
    };
    let flag = |name: &str| -> Result<bool, ApiError> {
        match map.get(name) {
            None => Ok(true),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(parse_error(name)),
        }
    };
    let description = match map.get("description") {
        Some(Value::String(s)) => s.clone(),
        None => return Err(ApiError::illegal_argument("Required [description]")),
        Some(_) => return Err(parse_error("description")),
    };
    Ok(NewEvent {
        description,
        start_time: time("start_time")?,
        end_time: time("end_time")?,
        skip_result: flag("skip_result")?,
        skip_model_update: flag("skip_model_update")?,
        force_time_shift: match map.get("force_time_shift") {
            None => None,
            Some(v) => Some(v.as_i64().ok_or_else(|| parse_error("force_time_shift"))?),
        },
    })
}

pub fn get_events(
    state: &AppState,
    calendar_id: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    let params = request.params_without_body(&GET_EVENTS)?;
    let (start, end) = time_range(&params)?;
    let job_id = params.string("job_id")?;
    let events = state
        .jobs
        .calendar_events(calendar_id, job_id.as_deref(), start, end)?;
    let count = events.len();
    Ok(Reply::ok(
        json!({"count": count, "events": paged(&params, events)?}),
    ))
}

pub async fn delete_event(
    state: &AppState,
    calendar_id: &str,
    event_id: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    request.params_without_body(&NO_PARAMS)?;
    state
        .jobs
        .delete_calendar_event(calendar_id, event_id)
        .await?;
    Ok(Reply::acknowledged())
}
