//! Api: routing, request parsing, the Elasticsearch error envelope, replies.
//!
//! A request goes: decode the URI (`request`) -> route (`route`) -> read the body under
//! `http.max_content_length` and check its content type (`request`) -> one handler per endpoint group
//! (`root`, `jobs`, `lifecycle`, `data`, `results`), which parses its parameters (`params`, `date`),
//! calls the job layer or reads the store, and returns a [`reply::Reply`] or an [`ApiError`] (`error`),
//! rendered with the headers every answer carries (`reply`).
//! Handlers hold no state. Panics are not caught here: `server` runs each call of [`handle`] as its
//! own task and turns a panic into a 500 envelope.
//! auspex extensions (`/_explorer`, `/_prometheus/metrics`, `/_auspex/...`) are routed the same way:
//! `explorer` serves the embedded anomaly explorer, `metrics` the Prometheus page, `replay` the
//! background replay tasks.
//! Every routed request passes `auth` first (who is it, may it perform the endpoint's action);
//! `security` serves the `_security` endpoints.
//! Talks to: `job::JobManager` (writes and lifecycle), `store::Store` (results reads), `replay`.

mod admin;
pub mod auth;
mod budget;
mod calendars;
mod cat;
mod categories;
mod data;
mod date;
pub mod error;
mod explorer;
mod filters;
mod forecast;
mod jobs;
mod lifecycle;
mod metrics;
mod model_plot;
mod node;
mod overall;
mod params;
mod replay;
pub mod reply;
mod request;
mod results;
mod results_query;
mod root;
pub mod route;
mod security;
mod snapshots;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONNECTION};
use hyper::{Method, Request, Response};

use crate::config::Config;
use crate::job::JobManager;

pub use error::{ApiError, EsType};
pub use reply::{Render, Reply};
pub use request::{BodyBudget, MediaType};
pub use root::{ES_VERSION, LUCENE_VERSION};
pub use route::Endpoint;

use request::ApiRequest;
use route::RouteError;

/// Shared, immutable after startup.
pub struct AppState {
    pub config: Config,
    pub jobs: Arc<JobManager>,
    /// Users, roles and API keys (disabled: every request is let through).
    pub security: Arc<crate::security::Security>,
}

/// Answers one request. Never fails: every error becomes an Elasticsearch-shaped response.
/// Each request is counted and timed (`metrics`) and logged as one line at debug level.
pub async fn handle(state: Arc<AppState>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let mut endpoint = "unknown";
    let response = respond(&state, request, &mut endpoint).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    crate::metrics::observe_request(endpoint, method.as_str(), status, elapsed.as_secs_f64());
    tracing::debug!(
        %method,
        path,
        endpoint,
        status,
        took_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// Answers; names the routed endpoint in `endpoint` (left alone when routing fails).
async fn respond<B>(
    state: &AppState,
    request: Request<B>,
    endpoint_name: &mut &'static str,
) -> Response<Full<Bytes>>
where
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let (parts, body) = request.into_parts();
    let mut render = Render {
        media: MediaType::from_headers(&parts.headers),
        pretty: false,
    };
    let query = match request::query_pairs(parts.uri.query()) {
        Ok(query) => query,
        Err(error) => return render.error(&error),
    };
    render.pretty = query
        .iter()
        .rev()
        .find(|(name, _)| name == "pretty")
        .is_some_and(|(_, value)| value != "false");
    let segments = match request::path_segments(parts.uri.path()) {
        Ok(segments) => segments,
        Err(error) => return render.error(&error),
    };
    // Elasticsearch quotes the URI as sent, query string included.
    let uri = parts.uri.path_and_query().map_or_else(
        || parts.uri.path().to_string(),
        |pq| pq.as_str().to_string(),
    );

    if parts.method == Method::OPTIONS {
        let mut response = render.empty(200);
        if let Some(allow) = allow_header(&route::allowed_methods(&segments)) {
            response.headers_mut().insert(ALLOW, allow);
        }
        return response;
    }
    let endpoint = match route::route(&parts.method, &segments) {
        Ok(endpoint) => endpoint,
        Err(RouteError::NoHandler) => {
            let message = format!(
                "no handler found for uri [{uri}] and method [{}]",
                parts.method
            );
            return render.simple_error(400, message, false);
        }
        Err(RouteError::MethodNotAllowed { allowed }) => {
            let names: Vec<&str> = allowed.iter().map(Method::as_str).collect();
            let message = format!(
                "Incorrect HTTP method for uri [{uri}] and method [{}], allowed: [{}]",
                parts.method,
                names.join(", ")
            );
            let mut response = render.simple_error(405, message, true);
            if let Some(allow) = allow_header(&allowed) {
                response.headers_mut().insert(ALLOW, allow);
            }
            return response;
        }
    };

    *endpoint_name = endpoint.name();
    // The server puts the peer's address on every request (`server.rs`).
    let client = parts
        .extensions
        .get::<std::net::SocketAddr>()
        .map(|peer| peer.ip());
    let auth = match auth::check(
        state,
        &parts.headers,
        &parts.method,
        &uri,
        &endpoint,
        client,
    )
    .await
    {
        Ok(auth) => auth,
        Err(Ok(reply)) => return render.reply(reply),
        Err(Err(error)) => return render.error(&error),
    };
    // The explorer's files and the metrics page are not JSON: they answer before the JSON path.
    match &endpoint {
        Endpoint::Explorer { asset } => return explorer::serve(asset.as_deref(), render),
        Endpoint::Metrics => return metrics::serve(state).await,
        _ => {}
    }

    // The server puts its in-flight body budget on every request (`server.rs`).
    let budget = parts.extensions.get::<Arc<BodyBudget>>();
    let read = request::read_body(
        &parts.headers,
        body,
        state.config.max_content_length,
        budget,
    );
    // A client that sends headers and then stalls must not hold a task and its buffer forever.
    let read = match tokio::time::timeout(state.config.body_read_timeout, read).await {
        Ok(read) => read,
        Err(_) => Err(ApiError::new(
            EsType::RequestTimeout,
            format!(
                "the request body did not arrive within {}ms",
                state.config.body_read_timeout.as_millis()
            ),
        )),
    };
    // The reservation is held until the answer is built: the body lives that long (a `_data` body
    // waits in its job's queue and is parsed there).
    let (body, _reservation) = match read {
        Ok(read) => read,
        Err(error) => {
            // The rest of an oversized, stalled or broken body is never read: the connection
            // cannot be reused.
            let mut response = render.error(&error);
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
    };
    if !body.is_empty() {
        if let Err(message) = request::check_content_type(&parts.headers) {
            return render.simple_error(406, message, true);
        }
    }
    let request = ApiRequest {
        method: parts.method,
        path: parts.uri.path().to_string(),
        query,
        body,
        auth,
    };
    if let Some(action) = endpoint.upgrade_mode_blocked_action() {
        if state.jobs.upgrade_mode() {
            let error = ApiError::new(
                EsType::UpgradeModeStatus,
                format!("Cannot perform {action} action while upgrade mode is enabled"),
            );
            return render.error(&error);
        }
    }
    match dispatch(state, endpoint, &request).await {
        Ok(reply) => render.reply(reply),
        Err(error) => render.error(&error),
    }
}

async fn dispatch(
    state: &AppState,
    endpoint: Endpoint,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    match endpoint {
        Endpoint::Root => root::info(state, request),
        Endpoint::PutJob { job_id } => jobs::put(state, &job_id, request).await,
        Endpoint::GetJobs { expression } => jobs::get(state, &expression, request),
        Endpoint::DeleteJob { job_id } => jobs::delete(state, &job_id, request).await,
        Endpoint::JobStats { expression } => jobs::stats(state, &expression, request).await,
        Endpoint::OpenJob { job_id } => lifecycle::open(state, &job_id, request).await,
        Endpoint::CloseJob { expression } => lifecycle::close(state, &expression, request).await,
        Endpoint::Flush { job_id } => lifecycle::flush(state, &job_id, request).await,
        Endpoint::PostData { job_id } => data::post(state, &job_id, request).await,
        Endpoint::Buckets { job_id, timestamp } => {
            results::buckets(state, job_id, timestamp, request).await
        }
        Endpoint::Records { job_id } => results::records(state, job_id, request).await,
        Endpoint::Replay { job_id } => replay::start(state, &job_id, request).await,
        Endpoint::Tasks { task_id } => replay::tasks(task_id.as_deref()),
        Endpoint::Influencers { job_id } => results::influencers(state, job_id, request).await,
        // Answered in `respond` before the JSON path.
        Endpoint::Explorer { .. } | Endpoint::Metrics => {
            Err(ApiError::internal(&"not a JSON endpoint"))
        }
        Endpoint::OverallBuckets { expression } => overall::get(state, &expression, request).await,
        Endpoint::ModelSnapshots {
            job_id,
            snapshot_id,
        } => snapshots::get(state, &job_id, snapshot_id, request),
        Endpoint::UpdateModelSnapshot {
            job_id,
            snapshot_id,
        } => snapshots::update(state, &job_id, &snapshot_id, request).await,
        Endpoint::DeleteModelSnapshot {
            job_id,
            snapshot_id,
        } => snapshots::delete(state, &job_id, &snapshot_id, request).await,
        Endpoint::RevertModelSnapshot {
            job_id,
            snapshot_id,
        } => snapshots::revert(state, &job_id, &snapshot_id, request).await,
        Endpoint::UpdateJob { job_id } => admin::update_job(state, &job_id, request).await,
        Endpoint::ResetJob { job_id } => admin::reset_job(state, &job_id, request).await,
        Endpoint::ValidateJob => admin::validate(request),
        Endpoint::ValidateDetector => admin::validate_detector(request),
        Endpoint::EstimateModelMemory => admin::estimate_model_memory(request),
        Endpoint::MlInfo => admin::info(state, request),
        Endpoint::SetUpgradeMode => admin::set_upgrade_mode(state, request).await,
        Endpoint::DeleteExpiredData { job_id } => {
            admin::delete_expired_data(state, job_id.as_deref(), request).await
        }
        Endpoint::CatJobs { job_id } => cat::jobs(state, job_id.as_deref(), request).await,
        Endpoint::PutFilter { filter_id } => filters::put(state, &filter_id, request).await,
        Endpoint::GetFilters { filter_id } => filters::get(state, filter_id.as_deref(), request),
        Endpoint::UpdateFilter { filter_id } => filters::update(state, &filter_id, request).await,
        Endpoint::DeleteFilter { filter_id } => filters::delete(state, &filter_id, request).await,
        Endpoint::PutCalendar { calendar_id } => calendars::put(state, &calendar_id, request).await,
        Endpoint::GetCalendars { calendar_id } => {
            calendars::get(state, calendar_id.as_deref(), request)
        }
        Endpoint::DeleteCalendar { calendar_id } => {
            calendars::delete(state, &calendar_id, request).await
        }
        Endpoint::CalendarJobs {
            calendar_id,
            job_ids,
            add,
        } => calendars::jobs(state, &calendar_id, &job_ids, add, request).await,
        Endpoint::PostCalendarEvents { calendar_id } => {
            calendars::post_events(state, &calendar_id, request).await
        }
        Endpoint::GetCalendarEvents { calendar_id } => {
            calendars::get_events(state, &calendar_id, request)
        }
        Endpoint::DeleteCalendarEvent {
            calendar_id,
            event_id,
        } => calendars::delete_event(state, &calendar_id, &event_id, request).await,
        Endpoint::UpgradeModelSnapshot {
            job_id,
            snapshot_id,
        } => snapshots::upgrade(state, &job_id, &snapshot_id, request),
        Endpoint::ModelSnapshotUpgradeStats { job_id } => {
            snapshots::upgrade_stats(state, &job_id, request)
        }
        Endpoint::MemoryStats { node_id } => node::memory_stats(state, node_id.as_deref(), request),
        Endpoint::Forecast { job_id } => forecast::post(state, &job_id, request).await,
        Endpoint::DeleteForecast {
            job_id,
            forecast_id,
        } => forecast::delete(state, &job_id, forecast_id.as_deref(), request).await,
        Endpoint::ModelPlot { job_id } => model_plot::get(state, job_id, request).await,
        Endpoint::Forecasts {
            job_id,
            forecast_id: None,
        } => forecast::list(state, job_id, request).await,
        Endpoint::Forecasts {
            job_id,
            forecast_id: Some(forecast_id),
        } => forecast::rows(state, job_id, forecast_id, request).await,
        Endpoint::Categories {
            job_id,
            category_id,
        } => categories::get(state, job_id, category_id, request).await,
        Endpoint::Authenticate => security::authenticate(request),
        Endpoint::CreateApiKey => security::create_api_key(state, request).await,
        Endpoint::GetApiKeys => security::get_api_keys(state, request).await,
        Endpoint::InvalidateApiKeys => security::invalidate_api_keys(state, request).await,
        Endpoint::PutRole { name } => security::put_role(state, &name, request).await,
        Endpoint::GetRoles { name } => security::get_roles(state, name, request).await,
        Endpoint::DeleteRole { name } => security::delete_role(state, &name, request).await,
        Endpoint::PutUser { username } => security::put_user(state, &username, request).await,
        Endpoint::GetUsers { username } => security::get_users(state, username, request).await,
        Endpoint::DeleteUser { username } => security::delete_user(state, &username, request).await,
        Endpoint::ChangePassword { username } => {
            security::change_password(state, username, request).await
        }
    }
}

/// `Allow: GET,POST` (Elasticsearch joins with a bare comma).
fn allow_header(methods: &[Method]) -> Option<HeaderValue> {
    if methods.is_empty() {
        return None;
    }
    let joined: Vec<&str> = methods.iter().map(Method::as_str).collect();
    HeaderValue::from_str(&joined.join(",")).ok()
}
