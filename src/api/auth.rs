//! Authentication and authorization of each routed request, as Elasticsearch does them.
//!
//! Owns: reading the `Authorization` header, asking `security` who the caller is (on the blocking
//! pool: a first password check runs argon2), checking the endpoint's action name
//! (`Endpoint::action`) against the caller's privileges, the self-service exceptions
//! (`_authenticate`, changing one's own password), the 401 answer with its `WWW-Authenticate`
//! challenges and the 403 answer, and the audit log: one line per refused request on the
//! `auspex::audit` tracing target (never a secret; the attempted user or API key id only).
//! Does not own: what credentials mean (`security`) or which action an endpoint is (`route`).

use hyper::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::{HeaderMap, Method};
use serde_json::{json, Map};

use super::date::now_ms;
use super::error::{ApiError, EsType};
use super::reply::Reply;
use super::route::Endpoint;
use super::AppState;
use crate::security::{Authentication, AuthnError, Credentials};

/// The tracing target of the audit log.
pub use crate::security::AUDIT_TARGET;

/// The challenges every 401 carries (two header lines): Basic, which makes a browser ask for a
/// user and password, and ApiKey.
pub const CHALLENGES: [&str; 2] = ["Basic realm=\"security\", charset=\"UTF-8\"", "ApiKey"];

/// Who sent the request (`None` when security is off), or the 401/403 answer. `client` is the
/// peer's address (failed logins are throttled per address too).
pub async fn check(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    uri: &str,
    endpoint: &Endpoint,
    client: Option<std::net::IpAddr>,
) -> Result<Option<Authentication>, Result<Reply, ApiError>> {
    if !state.security.enabled() {
        return Ok(None);
    }
    let credentials = match headers.get(AUTHORIZATION) {
        None => Err(AuthnError::Missing),
        Some(value) => value
            .to_str()
            .map_err(|_| AuthnError::Token {
                detail: "malformed authorization header".into(),
            })
            .and_then(Credentials::from_header),
    };
    let authenticated = match credentials {
        Ok(credentials) => state
            .security
            .authenticate_request(credentials.clone(), client, now_ms())
            .await
            .map_err(|error| (error, Some(credentials))),
        Err(error) => Err((error, None)),
    };
    let auth = match authenticated {
        Ok(auth) => auth,
        Err((AuthnError::Internal(cause), _)) => return Err(Err(ApiError::internal(&cause))),
        Err((error, credentials)) => {
            audit_unauthenticated(&error, credentials.as_ref(), method, uri);
            return Err(Ok(unauthenticated(&error, uri)));
        }
    };
    let action = endpoint.action();
    if auth.allows(action) || is_self_service(&auth, endpoint) {
        return Ok(Some(auth));
    }
    let reason = auth.denial(action);
    tracing::warn!(
        target: AUDIT_TARGET,
        event = "access_denied",
        user = %auth.user.username,
        api_key = auth.api_key.as_ref().map(|(id, _)| id.as_str()).unwrap_or(""),
        roles = %auth.effective_roles.join(","),
        action,
        %method,
        uri,
        "access denied"
    );
    Err(Err(ApiError::new(EsType::Forbidden, reason)))
}

/// What anyone authenticated may do whatever their roles: see who they are, change their own
/// password (with a password, not an API key).
fn is_self_service(auth: &Authentication, endpoint: &Endpoint) -> bool {
    match endpoint {
        Endpoint::Authenticate => true,
        Endpoint::ChangePassword { username } => {
            auth.api_key.is_none()
                && username
                    .as_deref()
                    .is_none_or(|name| name == auth.user.username)
        }
        _ => false,
    }
}

fn audit_unauthenticated(
    error: &AuthnError,
    credentials: Option<&Credentials>,
    method: &Method,
    uri: &str,
) {
    let principal = match credentials {
        Some(Credentials::Basic { username, .. }) => username.as_str(),
        Some(Credentials::ApiKey { id, .. }) => id.as_str(),
        None => "",
    };
    match error {
        AuthnError::Missing => tracing::info!(
            target: AUDIT_TARGET,
            event = "anonymous_access_denied",
            %method,
            uri,
            "request without credentials refused"
        ),
        _ => tracing::warn!(
            target: AUDIT_TARGET,
            event = "authentication_failed",
            principal,
            kind = match credentials {
                Some(Credentials::ApiKey { .. }) => "api_key",
                Some(Credentials::Basic { .. }) => "basic",
                None => "malformed",
            },
            %method,
            uri,
            "authentication failed"
        ),
    }
}

/// Elasticsearch's 401: `security_exception`, the challenges in the headers and in the body.
fn unauthenticated(error: &AuthnError, uri: &str) -> Reply {
    let (reason, detail) = match error {
        AuthnError::Missing => (
            format!("missing authentication credentials for REST request [{uri}]"),
            None,
        ),
        AuthnError::User { username } => (
            format!("unable to authenticate user [{username}] for REST request [{uri}]"),
            None,
        ),
        AuthnError::Token { detail } | AuthnError::Internal(detail) => (
            "unable to authenticate with provided credentials and anonymous access is not allowed \
             for this request"
                .to_string(),
            Some(format!("API key: {detail}")),
        ),
    };
    let mut cause = Map::new();
    cause.insert("type".into(), json!(EsType::Unauthenticated.type_name()));
    cause.insert("reason".into(), json!(reason));
    if let Some(detail) = detail {
        cause.insert("additional_unsuccessful_credentials".into(), json!(detail));
    }
    cause.insert("header".into(), json!({ "WWW-Authenticate": CHALLENGES }));
    let mut error = Map::new();
    error.insert("root_cause".into(), json!([cause.clone()]));
    error.extend(cause);
    let body = json!({ "error": error, "status": EsType::Unauthenticated.status() });
    CHALLENGES
        .iter()
        .fold(Reply::with_status(401, body), |reply, challenge| {
            reply.header(WWW_AUTHENTICATE, *challenge)
        })
}
