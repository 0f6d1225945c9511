//! Roles: the Elasticsearch role descriptor (only `cluster` privileges mean anything to auspex,
//! which has no indices; the other fields are kept and shown back as given), its validation, and
//! the built-in roles.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{privilege, SecurityError};

/// A role descriptor, as `PUT /_security/role/<name>` takes it and `GET` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RoleDescriptor {
    #[serde(default)]
    pub cluster: Vec<String>,
    #[serde(default)]
    pub indices: Vec<Value>,
    #[serde(default)]
    pub applications: Vec<Value>,
    #[serde(default)]
    pub run_as: Vec<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The fields a role descriptor may have (Elasticsearch refuses any other).
const FIELDS: [&str; 8] = [
    "cluster",
    "indices",
    "applications",
    "run_as",
    "metadata",
    "description",
    "transient_metadata",
    "global",
];

/// Built-in roles: they exist without being stored and cannot be changed or deleted.
pub const BUILTIN: [&str; 3] = [
    "superuser",
    "machine_learning_admin",
    "machine_learning_user",
];

impl RoleDescriptor {
    /// Parses and checks a descriptor given for role (or API key role) `name`.
    pub fn parse(name: &str, body: &Value) -> Result<RoleDescriptor, SecurityError> {
        let object = body.as_object().ok_or_else(|| {
            SecurityError::Parse(format!(
                "failed to parse role [{name}]. expected an object but found [{body}] instead"
            ))
        })?;
        if let Some(field) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(SecurityError::Parse(format!(
                "failed to parse role [{name}]. unexpected field [{field}]"
            )));
        }
        let mut descriptor: RoleDescriptor = serde_json::from_value(body.clone())
            .map_err(|e| SecurityError::Parse(format!("failed to parse role [{name}]. {e}")))?;
        for cluster in &mut descriptor.cluster {
            // Elasticsearch resolves privilege names case-insensitively.
            *cluster = cluster.to_ascii_lowercase();
            if !privilege::is_valid(cluster) {
                return Err(SecurityError::IllegalArgument(privilege::unknown_message(
                    cluster,
                )));
            }
        }
        Ok(descriptor)
    }

    /// The descriptor of a built-in role.
    pub fn builtin(name: &str) -> Option<RoleDescriptor> {
        let ml_indices = |privileges: &[&str]| {
            vec![json!({
                "names": [".ml-anomalies*", ".ml-notifications*"],
                "privileges": privileges,
                "allow_restricted_indices": false
            })]
        };
        let (cluster, indices, run_as) = match name {
            "superuser" => (
                vec!["all"],
                vec![
                    json!({"names": ["*"], "privileges": ["all"], "allow_restricted_indices": false}),
                ],
                vec!["*".to_string()],
            ),
            "machine_learning_admin" => (
                vec!["manage_ml"],
                ml_indices(&["view_index_metadata", "read"]),
                Vec::new(),
            ),
            "machine_learning_user" => (
                vec!["monitor_ml"],
                ml_indices(&["view_index_metadata", "read"]),
                Vec::new(),
            ),
            _ => return None,
        };
        let mut metadata = Map::new();
        metadata.insert("_reserved".into(), Value::Bool(true));
        Some(RoleDescriptor {
            cluster: cluster.into_iter().map(String::from).collect(),
            indices,
            applications: Vec::new(),
            run_as,
            metadata,
            description: None,
        })
    }

    /// The descriptor as `GET /_security/role` shows it.
    pub fn to_json(&self) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or_else(|_| json!({}));
        if let Some(object) = value.as_object_mut() {
            object.insert("transient_metadata".into(), json!({"enabled": true}));
        }
        value
    }
}

/// Checks a user or role name the way Elasticsearch does (1 to 507 printable characters, no
/// leading or trailing whitespace); `what` is `user` or `role`.
pub fn check_name(what: &str, name: &str) -> Result<(), SecurityError> {
    let printable = name.chars().all(|c| !c.is_control());
    let trimmed = name.trim() == name;
    if name.is_empty() || name.chars().count() > 507 || !printable || !trimmed {
        let noun = if what == "user" {
            "username"
        } else {
            "role name"
        };
        return Err(SecurityError::IllegalArgument(format!(
            "Validation Failed: 1: Invalid {noun} [{name}]. {what} names must be at least 1 and no \
             more than 507 characters. They can contain alphanumeric characters (a-z, A-Z, 0-9), \
             spaces, punctuation, and printable symbols in the Basic Latin (ASCII) block. Leading \
             or trailing whitespace is not allowed.;"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_are_checked() {
        let role =
            RoleDescriptor::parse("r", &json!({"cluster": ["MONITOR_ML"], "indices": []})).unwrap();
        assert_eq!(role.cluster, ["monitor_ml"]);
        let error = RoleDescriptor::parse("r", &json!({"cluster": ["fly"]})).unwrap_err();
        assert!(error
            .to_string()
            .contains("unknown cluster privilege [fly]"));
        let error = RoleDescriptor::parse("r", &json!({"clusters": []})).unwrap_err();
        assert!(error.to_string().contains("unexpected field [clusters]"));
        assert!(RoleDescriptor::parse("r", &json!([])).is_err());
        assert!(RoleDescriptor::parse("r", &json!({"cluster": "all"})).is_err());
    }

    #[test]
    fn builtin_roles() {
        for name in BUILTIN {
            let role = RoleDescriptor::builtin(name).unwrap();
            assert_eq!(role.metadata["_reserved"], true);
        }
        assert_eq!(
            RoleDescriptor::builtin("machine_learning_admin")
                .unwrap()
                .cluster,
            ["manage_ml"]
        );
        assert!(RoleDescriptor::builtin("other").is_none());
        assert!(check_name("user", "ml-user_1").is_ok());
        assert!(check_name("user", "").is_err());
        assert!(check_name("role", " x").is_err());
        assert!(check_name("user", "a\0b").is_err());
    }
}
