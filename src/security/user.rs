//! Users: the stored document (an argon2 hash, never the password), the `PUT
//! /_security/user/<name>` body, and what `GET` and `_authenticate` show.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{secret, SecurityError};

/// The user Elasticsearch calls `elastic`: created at the first secured start, a superuser, and
/// reserved (it cannot be deleted).
pub const ELASTIC: &str = "elastic";

/// A stored user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    pub roles: Vec<String>,
    pub full_name: Option<String>,
    pub email: Option<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    pub enabled: bool,
    pub password_hash: String,
}

/// A parsed `PUT /_security/user` body.
#[derive(Debug, Default)]
pub struct UserChange {
    pub password: Option<String>,
    pub roles: Option<Vec<String>>,
    pub full_name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub metadata: Option<Map<String, Value>>,
    pub enabled: Option<bool>,
}

impl User {
    /// The realm Elasticsearch would name for this user.
    pub fn realm(&self) -> &'static str {
        if self.username == ELASTIC {
            "reserved"
        } else {
            "native"
        }
    }

    /// As `GET /_security/user` shows it (no hash).
    pub fn to_json(&self) -> Value {
        json!({
            "username": self.username,
            "roles": self.roles,
            "full_name": self.full_name,
            "email": self.email,
            "metadata": self.metadata,
            "enabled": self.enabled,
        })
    }

    /// A new user from a change; the password is required.
    pub fn create(username: &str, change: UserChange) -> Result<User, SecurityError> {
        let Some(password) = change.password.as_deref() else {
            return Err(SecurityError::IllegalArgument(
                "Validation Failed: 1: password must be specified unless you are updating an \
                 existing user;"
                    .into(),
            ));
        };
        let mut user = User {
            username: username.to_string(),
            roles: Vec::new(),
            full_name: None,
            email: None,
            metadata: Map::new(),
            enabled: true,
            password_hash: secret::hash_password(password)?,
        };
        user.apply(UserChange {
            password: None,
            ..change
        })?;
        Ok(user)
    }

    /// Applies a change to an existing user (a new password is hashed).
    pub fn apply(&mut self, change: UserChange) -> Result<(), SecurityError> {
        if let Some(password) = change.password.as_deref() {
            self.password_hash = secret::hash_password(password)?;
        }
        if let Some(roles) = change.roles {
            self.roles = roles;
        }
        if let Some(full_name) = change.full_name {
            self.full_name = full_name;
        }
        if let Some(email) = change.email {
            self.email = email;
        }
        if let Some(metadata) = change.metadata {
            self.metadata = metadata;
        }
        if let Some(enabled) = change.enabled {
            self.enabled = enabled;
        }
        Ok(())
    }
}

/// Checks a new password's length (Elasticsearch's rule and wording).
pub fn check_password(password: &str) -> Result<(), SecurityError> {
    if password.chars().count() < secret::MIN_PASSWORD_LEN {
        return Err(SecurityError::IllegalArgument(format!(
            "Validation Failed: 1: passwords must be at least [{}] characters long;",
            secret::MIN_PASSWORD_LEN
        )));
    }
    Ok(())
}

fn optional_string(field: &str, value: &Value) -> Result<Option<String>, SecurityError> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text.clone())),
        other => Err(SecurityError::Parse(format!(
            "expected field [{field}] to be of type string but found [{other}]"
        ))),
    }
}

impl UserChange {
    /// Parses a `PUT /_security/user/<name>` body.
    pub fn parse(body: &Value) -> Result<UserChange, SecurityError> {
        let object = body.as_object().ok_or_else(|| {
            SecurityError::Parse("failed to parse add user request: not an object".into())
        })?;
        let mut change = UserChange::default();
        for (field, value) in object {
            match field.as_str() {
                "password" => {
                    let password = optional_string(field, value)?.unwrap_or_default();
                    check_password(&password)?;
                    change.password = Some(password);
                }
                "roles" => {
                    let roles: Vec<String> =
                        serde_json::from_value(value.clone()).map_err(|_| {
                            SecurityError::Parse(format!(
                                "expected field [roles] to be an array of strings but found [{value}]"
                            ))
                        })?;
                    change.roles = Some(roles);
                }
                "full_name" => change.full_name = Some(optional_string(field, value)?),
                "email" => change.email = Some(optional_string(field, value)?),
                "metadata" => match value {
                    Value::Object(map) => change.metadata = Some(map.clone()),
                    Value::Null => change.metadata = Some(Map::new()),
                    other => {
                        return Err(SecurityError::Parse(format!(
                            "expected field [metadata] to be an object but found [{other}]"
                        )))
                    }
                },
                "enabled" => match value {
                    Value::Bool(enabled) => change.enabled = Some(*enabled),
                    other => {
                        return Err(SecurityError::Parse(format!(
                            "expected field [enabled] to be of type boolean but found [{other}]"
                        )))
                    }
                },
                // The path names the user; the specification's clients repeat it in the body.
                "username" => {}
                other => {
                    return Err(SecurityError::Parse(format!(
                        "failed to parse add user request. unexpected field [{other}]"
                    )))
                }
            }
        }
        Ok(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_created_and_changed_without_keeping_the_password() {
        let change =
            UserChange::parse(&json!({"password": "secret1", "roles": ["machine_learning_user"]}))
                .unwrap();
        let mut user = User::create("ann", change).unwrap();
        assert_eq!(user.roles, ["machine_learning_user"]);
        assert!(secret::verify_password("secret1", &user.password_hash));
        assert!(!serde_json::to_string(&user).unwrap().contains("secret1"));
        assert!(user.to_json().get("password_hash").is_none());
        user.apply(UserChange::parse(&json!({"full_name": "Ann"})).unwrap())
            .unwrap();
        assert!(secret::verify_password("secret1", &user.password_hash));
        assert_eq!(user.full_name.as_deref(), Some("Ann"));
        assert_eq!(user.realm(), "native");
    }

    #[test]
    fn bad_bodies_are_refused() {
        assert!(User::create("x", UserChange::parse(&json!({"roles": []})).unwrap()).is_err());
        let short = UserChange::parse(&json!({"password": "abc"})).unwrap_err();
        assert!(short.to_string().contains("at least [6]"));
        assert!(UserChange::parse(&json!({"roles": "a"})).is_err());
        assert!(UserChange::parse(&json!({"nick": "a"})).is_err());
        assert!(UserChange::parse(&json!({"username": "a"})).is_ok());
        assert!(UserChange::parse(&json!({"enabled": "yes"})).is_err());
    }
}
