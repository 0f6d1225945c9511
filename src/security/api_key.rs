//! API keys: the stored document (a digest of the secret, never the secret), the create request,
//! the `GET` and `DELETE` filters, and what they show.
//!
//! A key's privileges are limited twice, as in Elasticsearch: by its own `role_descriptors` (when
//! given) and by its owner's roles as they were when the key was created (`limited_by`), so a key
//! can never do more than its owner could.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::role::RoleDescriptor;
use super::SecurityError;

/// A stored API key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    /// Hex BLAKE2b-256 of the id and the secret.
    pub digest: String,
    pub username: String,
    pub realm: String,
    pub creation: i64,
    pub expiration: Option<i64>,
    pub invalidated: bool,
    pub invalidation: Option<i64>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// The key's own role descriptors (empty: the owner's privileges as of creation).
    #[serde(default)]
    pub role_descriptors: Map<String, Value>,
    /// The owner's role descriptors when the key was created.
    #[serde(default)]
    pub limited_by: Map<String, Value>,
}

/// A parsed `POST /_security/api_key` body.
#[derive(Debug)]
pub struct CreateRequest {
    pub name: String,
    pub expiration_ms: Option<i64>,
    pub role_descriptors: Map<String, Value>,
    pub metadata: Map<String, Value>,
}

/// Which keys a `GET` or `DELETE` is about; every given field must match.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct KeyFilter {
    pub ids: Option<Vec<String>>,
    pub name: Option<String>,
    pub username: Option<String>,
    pub realm_name: Option<String>,
}

impl ApiKey {
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.expiration.is_some_and(|at| at <= now_ms)
    }

    /// As `GET /_security/api_key` shows it; `with_limited_by` adds the owner's descriptors.
    pub fn to_json(&self, now_ms: i64, with_limited_by: bool) -> Value {
        let mut shown = json!({
            "id": self.id,
            "name": self.name,
            "type": "rest",
            "creation": self.creation,
            "invalidated": self.invalidated,
            "username": self.username,
            "realm": self.realm,
            "metadata": self.metadata,
            "role_descriptors": self.role_descriptors,
        });
        if let Some(object) = shown.as_object_mut() {
            if let Some(expiration) = self.expiration {
                object.insert("expiration".into(), json!(expiration));
            }
            if let Some(invalidation) = self.invalidation {
                object.insert("invalidation".into(), json!(invalidation));
            }
            if with_limited_by {
                object.insert("limited_by".into(), json!([self.limited_by]));
            }
            // auspex's own addition, so a client need not compare clocks.
            object.insert("expired".into(), json!(self.is_expired(now_ms)));
        }
        shown
    }

    /// The privilege sets that must all grant an action for this key: its own descriptors'
    /// (when it has any) and its owner's at creation.
    pub fn privilege_sets(&self) -> Vec<Vec<String>> {
        let cluster_of = |descriptors: &Map<String, Value>| -> Vec<String> {
            descriptors
                .values()
                .filter_map(|d| d.get("cluster").and_then(Value::as_array))
                .flatten()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect()
        };
        let mut sets = Vec::new();
        if !self.role_descriptors.is_empty() {
            sets.push(cluster_of(&self.role_descriptors));
        }
        sets.push(cluster_of(&self.limited_by));
        sets
    }
}

impl KeyFilter {
    pub fn matches(&self, key: &ApiKey) -> bool {
        self.ids.as_ref().is_none_or(|ids| ids.contains(&key.id))
            && self
                .name
                .as_ref()
                .is_none_or(|n| wildcard_match(n, &key.name))
            && self.username.as_ref().is_none_or(|u| *u == key.username)
            && self.realm_name.as_ref().is_none_or(|r| *r == key.realm)
    }

    pub fn is_empty(&self) -> bool {
        *self == KeyFilter::default()
    }
}

/// `name` patterns may end in `*` (Elasticsearch allows a trailing wildcard).
fn wildcard_match(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

impl CreateRequest {
    pub fn parse(body: &Value) -> Result<CreateRequest, SecurityError> {
        let object = body.as_object().ok_or_else(|| {
            SecurityError::Parse("failed to parse create api key request: not an object".into())
        })?;
        let mut name = None;
        let mut request = CreateRequest {
            name: String::new(),
            expiration_ms: None,
            role_descriptors: Map::new(),
            metadata: Map::new(),
        };
        for (field, value) in object {
            match (field.as_str(), value) {
                ("name", Value::String(text)) => name = Some(text.clone()),
                ("expiration", Value::String(text)) => {
                    request.expiration_ms = Some(parse_time_value(text)?)
                }
                ("expiration", Value::Null) => {}
                ("role_descriptors", Value::Object(map)) => {
                    for (role, descriptor) in map {
                        // Checked like a role; stored as given (normalized).
                        let parsed = RoleDescriptor::parse(role, descriptor)?;
                        request
                            .role_descriptors
                            .insert(role.clone(), serde_json::to_value(parsed).unwrap_or_default());
                    }
                }
                ("metadata", Value::Object(map)) => request.metadata = map.clone(),
                ("name" | "expiration" | "role_descriptors" | "metadata", other) => {
                    return Err(SecurityError::Parse(format!(
                        "failed to parse create api key request: field [{field}] cannot be [{other}]"
                    )))
                }
                _ => {
                    return Err(SecurityError::Parse(format!(
                        "failed to parse create api key request. unexpected field [{field}]"
                    )))
                }
            }
        }
        request.name = match name {
            Some(name) if !name.trim().is_empty() && name.len() <= 256 => name,
            _ => {
                return Err(SecurityError::IllegalArgument(
                    "Validation Failed: 1: api key name is required and must be at most 256 characters;"
                        .into(),
                ))
            }
        };
        Ok(request)
    }
}

/// An Elasticsearch time value (`7d`, `12h`, `30m`, `10s`, `500ms`) in milliseconds.
pub fn parse_time_value(text: &str) -> Result<i64, SecurityError> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let factor: i64 = match unit.to_ascii_lowercase().as_str() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => 0,
    };
    match digits.parse::<i64>() {
        Ok(number) if factor > 0 => number.checked_mul(factor).ok_or_else(|| {
            SecurityError::IllegalArgument(format!("time value [{text}] is too large"))
        }),
        _ => Err(SecurityError::Parse(format!(
            "failed to parse setting [expiration] with value [{text}] as a time value: unit is \
             missing or unrecognized"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(role_descriptors: Value, limited_by: Value) -> ApiKey {
        ApiKey {
            id: "id1".into(),
            name: "k".into(),
            digest: String::new(),
            username: "ann".into(),
            realm: "native".into(),
            creation: 0,
            expiration: Some(100),
            invalidated: false,
            invalidation: None,
            metadata: Map::new(),
            role_descriptors: role_descriptors.as_object().cloned().unwrap_or_default(),
            limited_by: limited_by.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn a_key_is_limited_by_its_descriptors_and_its_owner() {
        let owner = json!({"machine_learning_admin": {"cluster": ["manage_ml"]}});
        let limited = key(json!({"r": {"cluster": ["monitor_ml"]}}), owner.clone());
        assert_eq!(
            limited.privilege_sets(),
            vec![
                vec!["monitor_ml".to_string()],
                vec!["manage_ml".to_string()]
            ]
        );
        assert_eq!(key(json!({}), owner).privilege_sets().len(), 1);
        assert!(!limited.is_expired(99) && limited.is_expired(100));
        let shown = limited.to_json(0, false);
        assert_eq!(shown["expiration"], 100);
        assert!(shown.get("digest").is_none() && shown.get("limited_by").is_none());
    }

    #[test]
    fn create_requests_and_filters() {
        let request = CreateRequest::parse(&json!({
            "name": "k", "expiration": "1d",
            "role_descriptors": {"r": {"cluster": ["monitor_ml"]}}
        }))
        .unwrap();
        assert_eq!(request.expiration_ms, Some(86_400_000));
        assert!(CreateRequest::parse(&json!({"expiration": "1d"})).is_err());
        assert!(CreateRequest::parse(&json!({"name": "k", "expiration": "1y"})).is_err());
        assert!(CreateRequest::parse(&json!({"name": "k", "extra": 1})).is_err());
        assert!(CreateRequest::parse(
            &json!({"name": "k", "role_descriptors": {"r": {"cluster": ["nope"]}}})
        )
        .is_err());
        let k = key(json!({}), json!({}));
        let by_name = KeyFilter {
            name: Some("*".into()),
            ..KeyFilter::default()
        };
        assert!(by_name.matches(&k));
        let other_user = KeyFilter {
            username: Some("bob".into()),
            ..KeyFilter::default()
        };
        assert!(!other_user.matches(&k));
        assert_eq!(parse_time_value("500ms").unwrap(), 500);
    }
}
