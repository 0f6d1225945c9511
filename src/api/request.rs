//! Reading a request: the URI (path segments, query pairs), content negotiation and the body.
//!
//! Owns: percent-decoding (`+` is a space in the query string, as Elasticsearch's `RestUtils` decodes
//! it), the accepted request content types (JSON, NDJSON, `application/vnd.elasticsearch+json;
//! compatible-with=N`, `text/plain`, or none), the response media type (the compatible-with type is
//! echoed when the client asked for it), and the `http.max_content_length` body limit (413); the
//! body is reserved from the process-wide [`BodyBudget`] (`budget`, 429 when it is spent) as it is read.
//! Does not own: which parameters an endpoint takes (`api::params`) or routing (`api::route`).
//! Talks to: hyper's body types only.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Body;
use hyper::header::{HeaderMap, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::Method;

pub use super::budget::BodyBudget;
use super::budget::BodyReservation;
use super::error::{ApiError, EsType};
use super::params::{ParamSpec, Params};

/// A routed request as handlers see it: decoded query pairs and the whole body.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: Method,
    /// The raw path (no query string), as Elasticsearch quotes it in messages.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Bytes,
    /// Who sent it (`None` when security is off).
    pub auth: Option<crate::security::Authentication>,
}

impl ApiRequest {
    /// The endpoint's parameters: the query string, plus the JSON body's fields when `spec.body`
    /// says the body carries parameters. A raw body (`PUT` job, `_data`) is left to the handler.
    pub fn params(&self, spec: &ParamSpec) -> Result<Params, ApiError> {
        let body = match spec.body {
            Some(_) => parse_param_body(spec.api, &self.body)?,
            None => None,
        };
        Params::new(&self.path, spec, self.query.clone(), body)
    }

    /// As [`ApiRequest::params`], for endpoints that take no body: one is refused as Elasticsearch does.
    pub fn params_without_body(&self, spec: &ParamSpec) -> Result<Params, ApiError> {
        if !self.body.is_empty() {
            return Err(ApiError::illegal_argument(format!(
                "request [{} {}] does not support having a body",
                self.method, self.path
            )));
        }
        self.params(spec)
    }
}

/// What the response is written as, decided from `Accept` (or `Content-Type` when there is none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Json,
    /// `application/vnd.elasticsearch+json;compatible-with=N`.
    Compatible(u8),
}

impl MediaType {
    pub fn content_type(self) -> String {
        match self {
            MediaType::Json => "application/json".to_string(),
            MediaType::Compatible(version) => {
                format!("application/vnd.elasticsearch+json;compatible-with={version}")
            }
        }
    }

    pub fn from_headers(headers: &HeaderMap) -> MediaType {
        let compatible = |name| {
            headers
                .get_all(name)
                .iter()
                .filter_map(|value| value.to_str().ok())
                .find_map(compatible_version)
        };
        compatible(ACCEPT)
            .or_else(|| compatible(CONTENT_TYPE))
            .map_or(MediaType::Json, MediaType::Compatible)
    }
}

/// `N` of `application/vnd.elasticsearch+<x>; compatible-with=N`.
fn compatible_version(header: &str) -> Option<u8> {
    header.split(',').find_map(|media| {
        let mut parts = media.split(';');
        let essence = parts.next()?.trim().to_ascii_lowercase();
        if !essence.starts_with("application/vnd.elasticsearch+") {
            return None;
        }
        parts.find_map(|param| {
            let (key, value) = param.split_once('=')?;
            (key.trim().eq_ignore_ascii_case("compatible-with"))
                .then(|| value.trim().trim_matches('"').parse().ok())
                .flatten()
        })
    })
}

/// Request body content types auspex reads; anything else is refused like Elasticsearch does
/// (406, `Content-Type header [..] is not supported`). A missing type is accepted (curl, old clients).
pub fn check_content_type(headers: &HeaderMap) -> Result<(), String> {
    let values: Vec<&str> = headers
        .get_all(CONTENT_TYPE)
        .iter()
        .map(|v| v.to_str().unwrap_or("<non-ascii>"))
        .collect();
    let supported = values.iter().all(|value| {
        let essence = value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        matches!(
            essence.as_str(),
            "application/json"
                | "application/x-ndjson"
                | "application/vnd.elasticsearch+json"
                | "application/vnd.elasticsearch+x-ndjson"
                | "text/plain"
        )
    });
    if supported {
        Ok(())
    } else {
        Err(format!(
            "Content-Type header [{}] is not supported",
            values.join(",")
        ))
    }
}

/// Reads the whole body, refusing more than `limit` bytes with a 413 envelope and bodies the
/// `budget` cannot hold with a 429. A declared `Content-Length` is checked and reserved before
/// reading (so `Expect: 100-continue` clients never send a refused body); a body without one is
/// reserved frame by frame. A body refused for the budget is read to its end and dropped (up to
/// `limit` bytes), so a client still sending it gets the 429 rather than a reset connection. The
/// reservation is handed back with the body: keep it while the body (or what is made of it) is
/// held.
pub async fn read_body<B>(
    headers: &HeaderMap,
    body: B,
    limit: u64,
    budget: Option<&Arc<BodyBudget>>,
) -> Result<(Bytes, BodyReservation), ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_long(limit));
    }
    let mut reservation = BodyReservation::on(budget);
    let mut body = std::pin::pin!(body);
    if let Err(refused) = reservation.grow(declared.unwrap_or(0)) {
        discard(body.as_mut(), limit).await;
        return Err(refused);
    }
    let mut buffer = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            ApiError::new(
                EsType::IllegalArgument,
                format!("failed to read the request body: {error}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        let total = (buffer.len() + data.len()) as u64;
        if total > limit {
            return Err(too_long(limit));
        }
        if total > reservation.bytes && reservation.budget.is_some() {
            if let Err(refused) = reservation.grow(total - reservation.bytes) {
                drop(buffer);
                discard(body.as_mut(), limit - total).await;
                return Err(refused);
            }
        }
        if buffer.is_empty() && data.len() as u64 == declared.unwrap_or(u64::MAX) {
            return Ok((data, reservation)); // one frame: no copy
        }
        buffer.extend_from_slice(&data);
    }
    Ok((buffer.freeze(), reservation))
}

/// Reads and drops up to `limit` more bytes of `body` (a frame at a time: no memory kept).
async fn discard<B>(mut body: std::pin::Pin<&mut B>, limit: u64)
where
    B: Body<Data = Bytes>,
{
    let mut left = limit;
    while let Some(Ok(frame)) = body.frame().await {
        let len = frame.data_ref().map_or(0, |data| data.len() as u64);
        match left.checked_sub(len) {
            Some(rest) => left = rest,
            None => return,
        }
    }
}

fn too_long(limit: u64) -> ApiError {
    ApiError::new(
        EsType::ContentTooLong,
        format!("request body is larger than http.max_content_length [{limit}b]"),
    )
}

/// Path segments, percent-decoded one by one (so `%2F` stays inside its segment); empty segments
/// are dropped, which is how a trailing or doubled slash is tolerated.
pub fn path_segments(path: &str) -> Result<Vec<String>, ApiError> {
    path.split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| percent_decode(segment, false))
        .collect()
}

/// `a=1&b&c=x%20y` -> pairs; a name without `=` has the empty value (a boolean flag).
pub fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let Some(query) = query else {
        return Ok(Vec::new());
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(name, true)?, percent_decode(value, true)?))
        })
        .collect()
}

fn percent_decode(text: &str, plus_is_space: bool) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(byte) => out.push(byte),
                    None => {
                        return Err(ApiError::illegal_argument(format!(
                            "partial or invalid escape sequence in [{text}]"
                        )))
                    }
                }
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| ApiError::illegal_argument(format!("invalid UTF-8 after decoding [{text}]")))
}

/// The JSON object of a parameter body; an empty (or all-whitespace) body is no body.
pub fn parse_param_body(
    api: &str,
    body: &[u8],
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(ApiError::new(
            EsType::XContentParse,
            format!("[{api}] the request body must be a JSON object"),
        )),
        Err(error) => Err(ApiError::new(
            EsType::XContentParse,
            format!("[{api}] failed to parse the request body: {error}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn media_type_negotiation() {
        assert_eq!(MediaType::from_headers(&headers(&[])), MediaType::Json);
        let compat = headers(&[(
            "accept",
            "application/vnd.elasticsearch+json; compatible-with=8",
        )]);
        assert_eq!(MediaType::from_headers(&compat), MediaType::Compatible(8));
        assert_eq!(
            MediaType::Compatible(8).content_type(),
            "application/vnd.elasticsearch+json;compatible-with=8"
        );
        let from_content_type = headers(&[(
            "content-type",
            "application/vnd.elasticsearch+x-ndjson;compatible-with=9",
        )]);
        assert_eq!(
            MediaType::from_headers(&from_content_type),
            MediaType::Compatible(9)
        );
        let plain = headers(&[("accept", "application/json")]);
        assert_eq!(MediaType::from_headers(&plain), MediaType::Json);
    }

    #[test]
    fn content_types() {
        for ok in [
            "application/json",
            "application/json; charset=UTF-8",
            "application/x-ndjson",
            "application/vnd.elasticsearch+json; compatible-with=8",
            "application/vnd.elasticsearch+x-ndjson;compatible-with=9",
            "text/plain",
        ] {
            let map = headers(&[("content-type", ok)]);
            assert!(check_content_type(&map).is_ok(), "{ok}");
        }
        assert!(check_content_type(&headers(&[])).is_ok());
        let error = check_content_type(&headers(&[("content-type", "application/xml")]));
        assert_eq!(
            error.unwrap_err(),
            "Content-Type header [application/xml] is not supported"
        );
    }

    #[test]
    fn segments_decode_and_tolerate_slashes() {
        assert_eq!(
            path_segments("/_ml/anomaly_detectors/a%2Fb/").unwrap(),
            vec!["_ml", "anomaly_detectors", "a/b"]
        );
        assert_eq!(path_segments("//").unwrap(), Vec::<String>::new());
        assert!(path_segments("/%zz").is_err());
        assert!(path_segments("/%ff").is_err());
    }

    #[test]
    fn query_pairs_decode() {
        assert_eq!(
            query_pairs(Some("force&start=2014-06-23T00%3A00%3A00Z&q=a+b")).unwrap(),
            vec![
                ("force".to_string(), String::new()),
                ("start".to_string(), "2014-06-23T00:00:00Z".to_string()),
                ("q".to_string(), "a b".to_string()),
            ]
        );
        assert!(query_pairs(None).unwrap().is_empty());
    }

    #[tokio::test]
    async fn body_limit() {
        let body = Full::new(Bytes::from_static(b"0123456789"));
        assert_eq!(
            read_body(&HeaderMap::new(), body.clone(), 10, None)
                .await
                .unwrap()
                .0
                .len(),
            10
        );
        let error = read_body(&HeaderMap::new(), body, 9, None)
            .await
            .unwrap_err();
        assert_eq!(error.kind, EsType::ContentTooLong);
        let declared = headers(&[("content-length", "1000")]);
        let error = read_body(&declared, Full::new(Bytes::new()), 10, None)
            .await
            .unwrap_err();
        assert_eq!(error.status(), 413);
    }

    #[test]
    fn param_bodies() {
        assert_eq!(parse_param_body("x", b"").unwrap(), None);
        assert_eq!(parse_param_body("x", b" \n").unwrap(), None);
        assert!(parse_param_body("x", br#"{"a":1}"#).unwrap().is_some());
        assert_eq!(
            parse_param_body("x", b"[1]").unwrap_err().kind,
            EsType::XContentParse
        );
        assert_eq!(
            parse_param_body("x", b"{").unwrap_err().kind,
            EsType::XContentParse
        );
    }
}
