//! Managing users, roles and API keys: what the `_security` API and the `users`/`roles` commands
//! change. Each change is one `write_security` batch (a deleted user takes its API keys' invalidation
//! along), and the caller flushes the store before acknowledging.

use serde_json::{Map, Value};

use super::{
    put, secret, user, ApiKey, Authentication, CreateRequest, KeyFilter, RoleDescriptor, Security,
    SecurityError, User, UserChange, BUILTIN_ROLES, ELASTIC,
};
use crate::store::{SecurityKind, SecurityWrite};

/// The names of a comma list (`a,b`); `None` or `*`/`_all` = everything.
fn names_of(list: Option<&str>) -> Option<Vec<&str>> {
    list.filter(|l| !l.is_empty() && *l != "*" && *l != "_all")
        .map(|l| {
            l.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .collect()
        })
}

impl Security {
    /// Creates or updates a user; returns whether it was created. The reserved `elastic` user is
    /// refused, as Elasticsearch does: only its password changes (`change_password`), so the store
    /// always keeps its superuser.
    pub fn put_user(&self, username: &str, change: UserChange) -> Result<bool, SecurityError> {
        if username == ELASTIC {
            return Err(SecurityError::IllegalArgument(format!(
                "user [{username}] is reserved and only the password can be changed"
            )));
        }
        super::role::check_name("user", username)?;
        let (user, created) = match self.user(username)? {
            Some(mut existing) => {
                existing.apply(change)?;
                (existing, false)
            }
            None => (User::create(username, change)?, true),
        };
        self.write_user(&user, Vec::new())?;
        Ok(created)
    }

    /// The named users (all when `names` is `None`), in name order.
    pub fn users(&self, names: Option<&str>) -> Result<Vec<User>, SecurityError> {
        let mut users: Vec<User> = self.read_all(SecurityKind::User)?;
        if let Some(names) = names_of(names) {
            users.retain(|u| names.contains(&u.username.as_str()));
        }
        Ok(users)
    }

    /// Deletes a user and invalidates its API keys, in one batch; returns whether it existed.
    pub fn delete_user(&self, username: &str, now_ms: i64) -> Result<bool, SecurityError> {
        if username == ELASTIC {
            return Err(SecurityError::IllegalArgument(format!(
                "user [{username}] is reserved and cannot be deleted"
            )));
        }
        if self.user(username)?.is_none() {
            return Ok(false);
        }
        let owned = KeyFilter {
            username: Some(username.to_string()),
            ..KeyFilter::default()
        };
        let mut writes = self.invalidations(&owned, now_ms)?.0;
        writes.push(SecurityWrite::Delete {
            kind: SecurityKind::User,
            name: username.to_string(),
        });
        self.store.write_security(&writes)?;
        Ok(true)
    }

    pub fn change_password(&self, username: &str, password: &str) -> Result<(), SecurityError> {
        user::check_password(password)?;
        let mut user = self
            .user(username)?
            .ok_or_else(|| SecurityError::NotFound(format!("user [{username}] does not exist")))?;
        user.password_hash = secret::hash_password(password)?;
        self.write_user(&user, Vec::new())
    }

    /// Creates or replaces a custom role; returns whether it was created.
    pub fn put_role(&self, name: &str, role: &RoleDescriptor) -> Result<bool, SecurityError> {
        super::role::check_name("role", name)?;
        if BUILTIN_ROLES.contains(&name) {
            return Err(SecurityError::IllegalArgument(format!(
                "role [{name}] is reserved and cannot be modified"
            )));
        }
        let created = self
            .read::<RoleDescriptor>(SecurityKind::Role, name)?
            .is_none();
        self.store
            .write_security(&[put(SecurityKind::Role, name, role)?])?;
        Ok(created)
    }

    /// The named roles (built-in ones first, then stored ones, in name order).
    pub fn roles(
        &self,
        names: Option<&str>,
    ) -> Result<Vec<(String, RoleDescriptor)>, SecurityError> {
        let mut roles: Vec<(String, RoleDescriptor)> = BUILTIN_ROLES
            .iter()
            .filter_map(|name| RoleDescriptor::builtin(name).map(|r| (name.to_string(), r)))
            .collect();
        for (name, role) in self.read_all_named::<RoleDescriptor>(SecurityKind::Role)? {
            roles.push((name, role));
        }
        if let Some(names) = names_of(names) {
            roles.retain(|(name, _)| names.contains(&name.as_str()));
        }
        Ok(roles)
    }

    pub fn delete_role(&self, name: &str) -> Result<bool, SecurityError> {
        if BUILTIN_ROLES.contains(&name) {
            return Err(SecurityError::IllegalArgument(format!(
                "role [{name}] is reserved and cannot be deleted"
            )));
        }
        if self
            .read::<RoleDescriptor>(SecurityKind::Role, name)?
            .is_none()
        {
            return Ok(false);
        }
        self.store.write_security(&[SecurityWrite::Delete {
            kind: SecurityKind::Role,
            name: name.to_string(),
        }])?;
        Ok(true)
    }

    /// Creates an API key owned by `owner`, limited by the owner's roles as they are now; returns
    /// the stored key and its secret (shown once, never stored).
    pub fn create_api_key(
        &self,
        owner: &Authentication,
        request: CreateRequest,
        now_ms: i64,
    ) -> Result<(ApiKey, String), SecurityError> {
        let mut limited_by = Map::new();
        if owner.api_key.is_some() {
            // As in Elasticsearch: a key may only derive a key that can do nothing.
            let empty = !request.role_descriptors.is_empty()
                && request.role_descriptors.values().all(|d| {
                    d.get("cluster")
                        .and_then(Value::as_array)
                        .is_none_or(Vec::is_empty)
                });
            if !empty {
                return Err(SecurityError::IllegalArgument(
                    "creating derived api keys requires an explicit role descriptor that is empty \
                     (has no privileges)"
                        .into(),
                ));
            }
        } else {
            for name in &owner.effective_roles {
                if let Some(role) = self.role(name)? {
                    limited_by.insert(name.clone(), serde_json::to_value(role).unwrap_or_default());
                }
            }
        }
        let id = secret::random_token::<15>()?;
        let key = secret::random_token::<16>()?;
        let stored = ApiKey {
            digest: secret::to_hex(&secret::digest(&[id.as_bytes(), key.as_bytes()])),
            id,
            name: request.name,
            username: owner.user.username.clone(),
            realm: owner.user.realm().to_string(),
            creation: now_ms,
            expiration: request.expiration_ms.map(|ms| now_ms.saturating_add(ms)),
            invalidated: false,
            invalidation: None,
            metadata: request.metadata,
            role_descriptors: request.role_descriptors,
            limited_by,
        };
        self.store
            .write_security(&[put(SecurityKind::ApiKey, &stored.id, &stored)?])?;
        Ok((stored, key))
    }

    /// The keys matching `filter`, oldest first.
    pub fn api_keys(&self, filter: &KeyFilter) -> Result<Vec<ApiKey>, SecurityError> {
        let mut keys: Vec<ApiKey> = self.read_all(SecurityKind::ApiKey)?;
        keys.retain(|k| filter.matches(k));
        keys.sort_by(|a, b| a.creation.cmp(&b.creation).then(a.id.cmp(&b.id)));
        Ok(keys)
    }

    /// Invalidates the keys matching `filter`; returns the ids invalidated now and those that
    /// already were.
    pub fn invalidate_api_keys(
        &self,
        filter: &KeyFilter,
        now_ms: i64,
    ) -> Result<(Vec<String>, Vec<String>), SecurityError> {
        let (writes, invalidated, previously) = self.invalidations(filter, now_ms)?;
        self.store.write_security(&writes)?;
        Ok((invalidated, previously))
    }

    /// The writes that invalidate the keys matching `filter`, the ids they invalidate, and the
    /// ids already invalid.
    #[allow(clippy::type_complexity)]
    fn invalidations(
        &self,
        filter: &KeyFilter,
        now_ms: i64,
    ) -> Result<(Vec<SecurityWrite>, Vec<String>, Vec<String>), SecurityError> {
        let mut writes = Vec::new();
        let mut invalidated = Vec::new();
        let mut previously = Vec::new();
        for mut key in self.api_keys(filter)? {
            if key.invalidated {
                previously.push(key.id);
                continue;
            }
            key.invalidated = true;
            key.invalidation = Some(now_ms);
            writes.push(put(SecurityKind::ApiKey, &key.id, &key)?);
            invalidated.push(key.id);
        }
        Ok((writes, invalidated, previously))
    }
}
