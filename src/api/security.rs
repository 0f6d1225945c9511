//! Security endpoints: `_security/_authenticate`, `api_key` (create, get, invalidate), `role`,
//! `user` and `_password`. Owns their parameters and reply shapes (Elasticsearch's), running the
//! `security` calls on the blocking pool (password hashing is slow) and flushing the store before
//! acknowledging a change. Does not own who may call them (`api::auth`) or what they change
//! (`security`). With security off, each answers Elasticsearch's 500 "security must be enabled".

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::date::now_ms;
use super::error::{ApiError, EsType};
use super::params::{ParamSpec, Params};
use super::reply::Reply;
use super::request::ApiRequest;
use super::AppState;
use crate::security::privilege::action;
use crate::security::{
    Authentication, CreateRequest, KeyFilter, RoleDescriptor, Security, SecurityError, UserChange,
};

impl From<SecurityError> for ApiError {
    fn from(error: SecurityError) -> ApiError {
        let reason = error.to_string();
        match error {
            SecurityError::IllegalArgument(_) => ApiError::new(EsType::IllegalArgument, reason),
            SecurityError::Parse(_) => ApiError::new(EsType::XContentParse, reason),
            SecurityError::NotFound(_) => ApiError::new(EsType::ResourceNotFound, reason),
            SecurityError::Internal(_) => ApiError::internal(&reason),
            SecurityError::Store(store) => ApiError::from(store),
        }
    }
}

const NO_PARAMS: ParamSpec = ParamSpec {
    api: "security",
    query: &["refresh"],
    body: None,
};

const GET_API_KEY: ParamSpec = ParamSpec {
    api: "get_api_key",
    query: &[
        "id",
        "name",
        "username",
        "realm_name",
        "owner",
        "with_limited_by",
        "active_only",
        "with_profile_uid",
    ],
    body: None,
};

/// The caller, or Elasticsearch's answer for security APIs on a server without security.
fn caller(request: &ApiRequest) -> Result<&Authentication, ApiError> {
    request.auth.as_ref().ok_or_else(|| {
        ApiError::new(
            EsType::Internal,
            "Security must be explicitly enabled to use the security APIs of auspex. Start it \
             without [--no-security] (or with [security.enabled] = true in the config file).",
        )
    })
}

/// Runs `work` on the blocking pool, then flushes the store when it changed something.
async fn blocking<T: Send + 'static>(
    state: &AppState,
    writes: bool,
    work: impl FnOnce(&Security) -> Result<T, SecurityError> + Send + 'static,
) -> Result<T, ApiError> {
    let security: Arc<Security> = state.security.clone();
    let result = tokio::task::spawn_blocking(move || work(&security))
        .await
        .map_err(|e| ApiError::internal(&e))??;
    if writes {
        state.security.flush().await?;
    }
    Ok(result)
}

/// The query string's parameters, checked against `spec` (the body is the handler's).
fn query(request: &ApiRequest, spec: &ParamSpec) -> Result<Params, ApiError> {
    Params::new(&request.path, spec, request.query.clone(), None)
}

fn json_body(request: &ApiRequest) -> Result<Value, ApiError> {
    if request.body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&request.body).map_err(|e| {
        ApiError::new(
            EsType::XContentParse,
            format!("failed to parse the request body: {e}"),
        )
    })
}

/// `GET _security/_authenticate`.
pub fn authenticate(request: &ApiRequest) -> Result<Reply, ApiError> {
    query(request, &NO_PARAMS)?;
    let auth = caller(request)?;
    let mut shown = auth.user.to_json();
    let realm = json!({"name": auth.user.realm(), "type": auth.user.realm()});
    if let Some(object) = shown.as_object_mut() {
        match &auth.api_key {
            Some((id, name)) => {
                object.insert(
                    "authentication_realm".into(),
                    json!({"name": "_es_api_key", "type": "_es_api_key"}),
                );
                object.insert("lookup_realm".into(), realm);
                object.insert("authentication_type".into(), json!("api_key"));
                object.insert("api_key".into(), json!({"id": id, "name": name}));
            }
            None => {
                object.insert("authentication_realm".into(), realm.clone());
                object.insert("lookup_realm".into(), realm);
                object.insert("authentication_type".into(), json!("realm"));
            }
        }
    }
    Ok(Reply::ok(shown))
}

/// `POST/PUT _security/api_key`.
pub async fn create_api_key(state: &AppState, request: &ApiRequest) -> Result<Reply, ApiError> {
    query(request, &NO_PARAMS)?;
    let owner = caller(request)?.clone();
    let create = CreateRequest::parse(&json_body(request)?)?;
    let now = now_ms();
    let (key, secret) = blocking(state, true, move |security| {
        security.create_api_key(&owner, create, now)
    })
    .await?;
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{}:{secret}", key.id));
    let mut body = json!({"id": key.id, "name": key.name, "api_key": secret, "encoded": encoded});
    if let (Some(expiration), Some(object)) = (key.expiration, body.as_object_mut()) {
        object.insert("expiration".into(), json!(expiration));
    }
    Ok(Reply::ok(body))
}

/// Narrows a key filter to the caller's own keys when it may not see everyone's; refuses a
/// request about other users' keys then (Elasticsearch's `manage_own_api_key`).
fn scoped(
    auth: &Authentication,
    mut filter: KeyFilter,
    owner: bool,
    action: &str,
) -> Result<KeyFilter, ApiError> {
    let own = auth.user.username.clone();
    if owner {
        filter.username = Some(own.clone());
    }
    if auth.manages_all_api_keys() {
        return Ok(filter);
    }
    let own_key_only = auth.api_key.as_ref().is_some_and(|(id, _)| {
        filter
            .ids
            .as_ref()
            .is_some_and(|ids| ids.len() == 1 && ids[0] == *id)
    });
    if filter.username.as_deref() == Some(own.as_str()) || own_key_only {
        return Ok(filter);
    }
    Err(ApiError::new(EsType::Forbidden, auth.denial(action)))
}

/// `GET _security/api_key`.
pub async fn get_api_keys(state: &AppState, request: &ApiRequest) -> Result<Reply, ApiError> {
    let params = query(request, &GET_API_KEY)?;
    let auth = caller(request)?;
    let filter = KeyFilter {
        ids: params.string("id")?.map(|id| vec![id]),
        name: params.string("name")?,
        username: params.string("username")?,
        realm_name: params.string("realm_name")?,
    };
    let owner = params.bool_or("owner", false)?;
    let filter = scoped(auth, filter, owner, action::GET_API_KEY)?;
    let with_limited_by = params.bool_or("with_limited_by", false)?;
    let active_only = params.bool_or("active_only", false)?;
    let named = filter.ids.is_some() || filter.name.is_some();
    let keys = blocking(state, false, move |security| security.api_keys(&filter)).await?;
    let now = now_ms();
    let shown: Vec<Value> = keys
        .iter()
        .filter(|k| !active_only || (!k.invalidated && !k.is_expired(now)))
        .map(|k| k.to_json(now, with_limited_by))
        .collect();
    if shown.is_empty() && named {
        // Elasticsearch: a named key that does not exist is a 404.
        return Err(ApiError::new(
            EsType::ResourceNotFound,
            "unable to find apikey with the given criteria",
        ));
    }
    Ok(Reply::ok(json!({ "api_keys": shown })))
}

/// `DELETE _security/api_key`.
pub async fn invalidate_api_keys(
    state: &AppState,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    query(request, &NO_PARAMS)?;
    let auth = caller(request)?;
    let body = json_body(request)?;
    let text = |field: &str| body.get(field).and_then(Value::as_str).map(String::from);
    let mut ids: Option<Vec<String>> = text("id").map(|id| vec![id]);
    if let Some(list) = body.get("ids").and_then(Value::as_array) {
        ids = Some(
            list.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
        );
    }
    let filter = KeyFilter {
        ids,
        name: text("name"),
        username: text("username"),
        realm_name: text("realm_name"),
    };
    let owner = body.get("owner").and_then(Value::as_bool).unwrap_or(false);
    if filter.is_empty() && !owner {
        return Err(ApiError::illegal_argument(
            "Validation Failed: 1: One of [api key id(s), api key name, username, realm name] \
             must be specified if [owner] flag is false;",
        ));
    }
    let filter = scoped(auth, filter, owner, action::INVALIDATE_API_KEY)?;
    let now = now_ms();
    let (invalidated, previously) = blocking(state, true, move |security| {
        security.invalidate_api_keys(&filter, now)
    })
    .await?;
    Ok(Reply::ok(json!({
        "invalidated_api_keys": invalidated,
        "previously_invalidated_api_keys": previously,
        "error_count": 0,
    })))
}

/// `PUT/POST _security/role/<name>`.
pub async fn put_role(
    state: &AppState,
    name: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    query(request, &NO_PARAMS)?;
    caller(request)?;
    let role = RoleDescriptor::parse(name, &json_body(request)?)?;
    let name = name.to_string();
    let created = blocking(state, true, move |security| security.put_role(&name, &role)).await?;
    Ok(Reply::ok(json!({"role": {"created": created}})))
}

/// `GET _security/role[/<names>]`.
pub async fn get_roles(
    state: &AppState,
    names: Option<String>,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    query(request, &NO_PARAMS)?;
    caller(request)?;
    let named = names.is_some();
    let roles = blocking(state, false, move |security| {
        security.roles(names.as_deref())
    })
    .await?;
    let shown: Map<String, Value> = roles
        .into_iter()
        .map(|(name, role)| (name, role.to_json()))
        .collect();
    Ok(found_or_404(named, shown))
}

/// Elasticsearch answers a lookup by name that found nothing with 404 and `{}`.
fn found_or_404(named: bool, shown: Map<String, Value>) -> Reply {
    let status = if named && shown.is_empty() { 404 } else { 200 };
    Reply::with_status(status, Value::Object(shown))
}

/// `{"found": bool}`, 404 when it was not there.
fn found(existed: bool) -> Reply {
    Reply::with_status(if existed { 200 } else { 404 }, json!({"found": existed}))
}

/// `DELETE _security/role/<name>`.
pub async fn delete_role(
    state: &AppState,
    name: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    query(request, &NO_PARAMS)?;
    caller(request)?;
    let name = name.to_string();
    let existed = blocking(state, true, move |security| security.delete_role(&name)).await?;
    Ok(found(existed))
}

/// `PUT/POST _security/user/<username>`.
pub async fn put_user(
    state: &AppState,
    username: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    query(request, &NO_PARAMS)?;
    caller(request)?;
    let change = UserChange::parse(&json_body(request)?)?;
    let username = username.to_string();
    let created = blocking(state, true, move |security| {
        security.put_user(&username, change)
    })
    .await?;
    Ok(Reply::ok(json!({"created": created})))
}

/// `GET _security/user[/<usernames>]`.
pub async fn get_users(
    state: &AppState,
    names: Option<String>,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    query(request, &NO_PARAMS)?;
    caller(request)?;
    let named = names.is_some();
    let users = blocking(state, false, move |security| {
        security.users(names.as_deref())
    })
    .await?;
    let shown: Map<String, Value> = users
        .into_iter()
        .map(|user| (user.username.clone(), user.to_json()))
        .collect();
    Ok(found_or_404(named, shown))
}

/// `DELETE _security/user/<username>` (its API keys are invalidated with it).
pub async fn delete_user(
    state: &AppState,
    username: &str,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    query(request, &NO_PARAMS)?;
    caller(request)?;
    let username = username.to_string();
    let now = now_ms();
    let existed = blocking(state, true, move |security| {
        security.delete_user(&username, now)
    })
    .await?;
    Ok(found(existed))
}

/// `PUT/POST _security/user[/<username>]/_password`.
pub async fn change_password(
    state: &AppState,
    username: Option<String>,
    request: &ApiRequest,
) -> Result<Reply, ApiError> {
    query(request, &NO_PARAMS)?;
    let auth = caller(request)?;
    let username = username.unwrap_or_else(|| auth.user.username.clone());
    let body = json_body(request)?;
    let password = match body.get("password") {
        Some(Value::String(password)) => password.clone(),
        _ => {
            return Err(ApiError::illegal_argument(
                "Validation Failed: 1: password must be specified;",
            ))
        }
    };
    blocking(state, true, move |security| {
        security.change_password(&username, &password)
    })
    .await?;
    Ok(Reply::ok(json!({})))
}
