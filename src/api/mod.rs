//! Api: routing, request parsing, the Elasticsearch error envelope, replies.
//!
//! A request goes: decode the URI (`request`) -> route (`route`) -> read the body under
//! `http.max_content_length` and check its content type (`request`) -> one handler per endpoint group
//! (`root`, `jobs`, `lifecycle`, `data`, `results`), which parses its parameters (`params`, `date`),
//! calls the job layer or reads the store, and returns a [`reply::Reply`] or an [`ApiError`] (`error`),
//! rendered with the headers every answer carries (`reply`).
//! Handlers hold no state. Panics are not caught here: `server` runs each call of [`handle`] as its
//! own task and turns a panic into a 500 envelope.
//! Talks to: `job::JobManager` (writes and lifecycle), `store::Store` (results reads).

mod data;
mod date;
pub mod error;
mod jobs;
mod lifecycle;
mod params;
pub mod reply;
mod request;
mod results;
mod results_query;
mod root;
pub mod route;

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
pub use request::MediaType;
pub use root::{ES_VERSION, LUCENE_VERSION};
pub use route::Endpoint;

use request::ApiRequest;
use route::RouteError;

/// Shared, immutable after startup.
pub struct AppState {
    pub config: Config,
    pub jobs: Arc<JobManager>,
}

/// Answers one request. Never fails: every error becomes an Elasticsearch-shaped response.
pub async fn handle(state: Arc<AppState>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    respond(&state, request).await
}

async fn respond<B>(state: &AppState, request: Request<B>) -> Response<Full<Bytes>>
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

    let read = request::read_body(&parts.headers, body, state.config.max_content_length);
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
    let body = match read {
        Ok(body) => body,
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
    };
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
        Endpoint::NotImplemented { api } => Err(ApiError::new(
            EsType::NotImplemented,
            format!(
                "[{api}] is part of the Elasticsearch API but not implemented by auspex yet; \
                 the request [{} {}] was not executed",
                request.method, request.path
            ),
        )),
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
