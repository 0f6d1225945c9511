//! Replies: JSON bodies, the headers every response carries, and the error bodies.
//!
//! Owns: `X-Elastic-Product: Elasticsearch` and the `content-type` on every response (the official
//! clients refuse a server without the product header), `?pretty`, the error envelope rendering, and
//! the "simple" error bodies Elasticsearch's router sends (`{"error":"..."}` for an unknown path,
//! `{"error":"...","status":N}` for a wrong method or an unsupported content type).
//! Does not own: what a handler answers. Talks to: hyper's response types.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::error::ApiError;
use super::request::MediaType;

pub const ELASTIC_PRODUCT: &str = "x-elastic-product";

/// A handler's answer before rendering.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(HeaderName, String)>,
    /// A plain-text answer (the `_cat` tables); sent instead of `body` when set.
    pub text: Option<String>,
}

impl Reply {
    pub fn ok(body: Value) -> Reply {
        Reply::with_status(200, body)
    }

    pub fn with_status(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body,
            headers: Vec::new(),
            text: None,
        }
    }

    /// `200` with a `text/plain` body.
    pub fn text(text: String) -> Reply {
        Reply {
            text: Some(text),
            ..Reply::ok(Value::Null)
        }
    }

    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    pub fn acknowledged() -> Reply {
        Reply::ok(json!({ "acknowledged": true }))
    }
}

/// How to write a response for this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Render {
    pub media: MediaType,
    pub pretty: bool,
}

impl Default for Render {
    fn default() -> Render {
        Render {
            media: MediaType::Json,
            pretty: false,
        }
    }
}

impl Render {
    pub fn reply(self, reply: Reply) -> Response<Full<Bytes>> {
        let mut response = match reply.text {
            Some(text) => {
                let mut response = self.empty(reply.status);
                *response.body_mut() = Full::new(Bytes::from(text));
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=UTF-8"),
                );
                response
            }
            None => self.json(reply.status, &reply.body),
        };
        for (name, value) in reply.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().append(name, value);
            }
        }
        response
    }

    pub fn error(self, error: &ApiError) -> Response<Full<Bytes>> {
        self.json(error.status(), &error.to_json())
    }

    /// Elasticsearch's router errors: a bare message, with `status` alongside when `with_status`.
    pub fn simple_error(
        self,
        status: u16,
        message: String,
        with_status: bool,
    ) -> Response<Full<Bytes>> {
        let body = if with_status {
            json!({ "error": message, "status": status })
        } else {
            json!({ "error": message })
        };
        self.json(status, &body)
    }

    /// A response with no body (`OPTIONS`), still carrying the product header.
    pub fn empty(self, status: u16) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = status_code(status);
        response.headers_mut().insert(
            HeaderName::from_static(ELASTIC_PRODUCT),
            HeaderValue::from_static("Elasticsearch"),
        );
        response
    }

    fn json(self, status: u16, body: &Value) -> Response<Full<Bytes>> {
        let mut bytes = if self.pretty {
            serde_json::to_vec_pretty(body)
        } else {
            serde_json::to_vec(body)
        }
        // Serializing a `Value` cannot fail: its keys are strings and it holds no non-finite float.
        .unwrap_or_else(|_| b"{}".to_vec());
        if self.pretty {
            bytes.push(b'\n');
        }
        let mut response = self.empty(status);
        *response.body_mut() = Full::new(Bytes::from(bytes));
        if let Ok(value) = HeaderValue::from_str(&self.media.content_type()) {
            response.headers_mut().insert(CONTENT_TYPE, value);
        }
        response
    }
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The answer for a handler that panicked (rendered without the request at hand); `cause` is logged.
pub fn panic_response(cause: &dyn std::fmt::Display) -> Response<Full<Bytes>> {
    let error = ApiError::internal(cause);
    Render::default().error(&error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_text(response: Response<Full<Bytes>>) -> String {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("Full is infallible")
            .to_bytes();
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn headers_on_every_response() {
        let render = Render {
            media: MediaType::Compatible(8),
            pretty: false,
        };
        let response = render.reply(Reply::ok(json!({"a": 1})).header(
            HeaderName::from_static("warning"),
            "299 Elasticsearch-8.15.0-unknown \"x\"",
        ));
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()[ELASTIC_PRODUCT], "Elasticsearch");
        assert_eq!(
            response.headers()[CONTENT_TYPE],
            "application/vnd.elasticsearch+json;compatible-with=8"
        );
        assert_eq!(
            response.headers()["warning"],
            "299 Elasticsearch-8.15.0-unknown \"x\""
        );
        assert_eq!(body_text(response).await, r#"{"a":1}"#);
    }

    #[tokio::test]
    async fn pretty_printing() {
        let render = Render {
            media: MediaType::Json,
            pretty: true,
        };
        let text = body_text(render.reply(Reply::ok(json!({"a": 1})))).await;
        assert_eq!(text, "{\n  \"a\": 1\n}\n");
    }

    #[tokio::test]
    async fn simple_errors() {
        let render = Render::default();
        let text = body_text(render.simple_error(400, "no handler".into(), false)).await;
        assert_eq!(text, r#"{"error":"no handler"}"#);
        let response = render.simple_error(405, "wrong".into(), true);
        assert_eq!(response.status(), 405);
        assert_eq!(
            body_text(response).await,
            r#"{"error":"wrong","status":405}"#
        );
    }

    #[tokio::test]
    async fn panic_is_a_500_envelope() {
        let response = panic_response(&"test panic");
        assert_eq!(response.status(), 500);
        assert_eq!(response.headers()[ELASTIC_PRODUCT], "Elasticsearch");
        let body: Value = serde_json::from_str(&body_text(response).await).expect("json");
        assert_eq!(body["status"], 500);
        assert_eq!(body["error"]["type"], "exception");
    }
}
