//! auspex extension: the anomaly explorer, a single page served at `/_explorer` with its script
//! and style sheet embedded in the binary (nothing to install, no CDN). The page is a plain client
//! of the REST API (`_ml/anomaly_detectors`, `_stats`, `results/buckets`, `results/records`, and
//! `results/model_plot` when the server has it), so it sees exactly what any client sees.
//!
//! Files: `explorer/index.html`, `explorer/app.js` (hand-written, no framework: job list, SVG
//! time-series chart with severity-coloured anomalies, swim lane, records table, zoom),
//! `explorer/style.css`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use super::error::{ApiError, EsType};
use super::reply::{Render, ELASTIC_PRODUCT};

const INDEX_HTML: &str = include_str!("explorer/index.html");
const APP_JS: &str = include_str!("explorer/app.js");
const STYLE_CSS: &str = include_str!("explorer/style.css");

/// `/_explorer` (`asset` `None`) or `/_explorer/<asset>`.
pub fn serve(asset: Option<&str>, render: Render) -> Response<Full<Bytes>> {
    let (content_type, body) = match asset {
        None | Some("index.html") => ("text/html; charset=utf-8", INDEX_HTML),
        Some("app.js") => ("text/javascript; charset=utf-8", APP_JS),
        Some("style.css") => ("text/css; charset=utf-8", STYLE_CSS),
        Some(other) => {
            return render.error(&ApiError::new(
                EsType::ResourceNotFound,
                format!("the explorer has no file [{other}]"),
            ))
        }
    };
    let mut response = raw_response(200, content_type, Bytes::from_static(body.as_bytes()));
    // The files change only with the binary; a short cache keeps reloads cheap and upgrades quick.
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
    response
}

/// A non-JSON answer that still carries the product header every response has.
pub fn raw_response(status: u16, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        HeaderName::from_static(ELASTIC_PRODUCT),
        HeaderValue::from_static("Elasticsearch"),
    );
    response
}
