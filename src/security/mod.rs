//! Security: users, roles, API keys, authentication and Elasticsearch's cluster privileges.
//!
//! Owns what a credential means: [`Credentials`] (HTTP Basic or `ApiKey`) -> [`Authentication`]
//! (who, which roles, which privilege sets) -> whether an Elasticsearch action name is granted, and
//! the denial wording. Users, custom roles and API keys live in the store's `security` tree as
//! JSON documents holding only hashes (argon2id for passwords, BLAKE2b for API key secrets).
//! Built-in roles (`superuser`, `machine_learning_admin`, `machine_learning_user`) are not stored.
//!
//! Successful password checks are cached in memory as a keyed digest of exactly the credential that
//! succeeded (user, password and the stored hash it matched), compared in constant time, so a client
//! sending Basic credentials on every request pays argon2 once. Anything else, a wrong password
//! above all, always pays a full argon2 check: the cache never answers "no". Changing the password
//! (or the user) changes the stored hash and voids the entry. Repeated failures per user and per
//! client address slow further attempts down (`throttle`).
//!
//! Does not own: HTTP (the `api::auth` layer reads headers, picks the action per endpoint and
//! renders 401/403), or the store format. Talks to: `store` (the `security` tree).
//! All methods are synchronous; password hashing is slow on purpose, so async callers run them on
//! the blocking pool.

mod api_key;
mod manage;
pub mod privilege;
mod role;
mod secret;
mod throttle;
mod user;

use std::collections::HashMap;
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::store::{SecurityKind, SecurityWrite, Store, StoreError};

pub use api_key::{ApiKey, CreateRequest, KeyFilter};
pub use role::{RoleDescriptor, BUILTIN as BUILTIN_ROLES};
pub use secret::generate_password;
pub use throttle::LoginThrottle;
pub use user::{check_password, User, UserChange, ELASTIC};

/// Why a security request failed (the API maps each to an Elasticsearch error).
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("{0}")]
    IllegalArgument(String),
    #[error("{0}")]
    Parse(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Credentials from an `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic { username: String, password: String },
    ApiKey { id: String, key: String },
}

impl std::fmt::Debug for Credentials {
    /// Never shows a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username})"),
            Credentials::ApiKey { id, .. } => write!(f, "ApiKey({id})"),
        }
    }
}

/// Why authentication failed; `api::auth` renders each as Elasticsearch's 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthnError {
    /// No credentials at all.
    Missing,
    /// Basic credentials that do not match an enabled user.
    User { username: String },
    /// An API key (or a header) that cannot be used; `detail` says why, never the secret.
    Token { detail: String },
    /// The store could not be read.
    Internal(String),
}

impl Credentials {
    /// Parses `Basic base64(user:password)` or `ApiKey base64(id:key)` (schemes case-insensitive).
    pub fn from_header(value: &str) -> Result<Credentials, AuthnError> {
        let malformed = |detail: &str| AuthnError::Token {
            detail: detail.to_string(),
        };
        let (scheme, encoded) = value
            .trim()
            .split_once(' ')
            .ok_or_else(|| malformed("malformed authorization header"))?;
        let decoded = STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| malformed("credentials are not valid base64"))?;
        let (first, second) = decoded
            .split_once(':')
            .ok_or_else(|| malformed("credentials lack a ':'"))?;
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => Ok(Credentials::Basic {
                username: first.to_string(),
                password: second.to_string(),
            }),
            "apikey" => Ok(Credentials::ApiKey {
                id: first.to_string(),
                key: second.to_string(),
            }),
            _ => Err(malformed("unsupported authorization scheme")),
        }
    }
}

/// Who a request is, and what it may do.
#[derive(Debug, Clone)]
pub struct Authentication {
    pub user: User,
    /// Set when the request authenticated with an API key: `(id, name)`.
    pub api_key: Option<(String, String)>,
    /// The user's roles that exist (built-in or stored), in the user's order.
    pub effective_roles: Vec<String>,
    /// The user's roles that exist nowhere.
    pub missing_roles: Vec<String>,
    /// Privilege sets that must all grant an action (one for a user; two for a limited API key).
    pub privilege_sets: Vec<Vec<String>>,
}

impl Authentication {
    /// Whether every privilege set grants `action`.
    pub fn allows(&self, action: &str) -> bool {
        self.privilege_sets
            .iter()
            .all(|set| privilege::any_grants(set.iter().map(String::as_str), action))
    }

    /// Whether this caller may see and invalidate every user's API keys (not just its own).
    pub fn manages_all_api_keys(&self) -> bool {
        self.privilege_sets
            .iter()
            .all(|set| privilege::manages_all_api_keys(set.iter().map(String::as_str)))
    }

    /// Elasticsearch's 403 reason for `action`.
    pub fn denial(&self, action: &str) -> String {
        let who = match &self.api_key {
            Some((id, _)) => format!("API key id [{id}] of user [{}]", self.user.username),
            None => {
                let mut who = format!(
                    "user [{}] with effective roles [{}]",
                    self.user.username,
                    self.effective_roles.join(",")
                );
                if !self.missing_roles.is_empty() {
                    who.push_str(&format!(
                        " (assigned roles [{}] were not found)",
                        self.missing_roles.join(",")
                    ));
                }
                who
            }
        };
        format!(
            "action [{action}] is unauthorized for {who}, this action is granted by the cluster \
             privileges [{}]",
            privilege::granting(action).join(",")
        )
    }
}

/// The tracing target of the audit log (the api layer writes its refusals there too).
pub const AUDIT_TARGET: &str = "auspex::audit";

/// The security service: one per server (or offline command), over the store's `security` tree.
pub struct Security {
    store: Store,
    enabled: bool,
    /// Per username, the keyed digest of the credential that last succeeded (`credential_digest`).
    logins: Mutex<HashMap<String, [u8; 32]>>,
    cache_key: [u8; 32],
    throttle: throttle::Throttle,
}

impl Security {
    /// `enabled = false` is `--no-security`: nothing is checked, `_security` APIs are refused.
    pub fn new(store: Store, enabled: bool) -> Result<Security, SecurityError> {
        Ok(Security {
            store,
            enabled,
            logins: Mutex::new(HashMap::new()),
            cache_key: secret::process_key()?,
            throttle: throttle::Throttle::new(LoginThrottle::default()),
        })
    }

    /// The same service with other login throttling settings.
    pub fn with_login_throttle(mut self, settings: LoginThrottle) -> Security {
        self.throttle = throttle::Throttle::new(settings);
        self
    }

    /// [`Security::authenticate`] for a request from `client`, throttled: after repeated failures
    /// for the user or from the address, the attempt first waits its turn (or is refused unchecked
    /// when too many wait), and each delay or refusal is a line on the audit target. The check
    /// itself runs on the blocking pool (argon2 is slow on purpose).
    pub async fn authenticate_request(
        self: &std::sync::Arc<Self>,
        credentials: Credentials,
        client: Option<std::net::IpAddr>,
        now_ms: i64,
    ) -> Result<Authentication, AuthnError> {
        let (principal, refused) = match &credentials {
            Credentials::Basic { username, .. } => (
                username.clone(),
                AuthnError::User {
                    username: username.clone(),
                },
            ),
            Credentials::ApiKey { id, .. } => (
                id.clone(),
                AuthnError::Token {
                    detail: "too many failed authentication attempts".into(),
                },
            ),
        };
        let client_text = client.map(|c| c.to_string()).unwrap_or_default();
        let keys = throttle_keys(&credentials, client);
        match self.throttle.admit(&keys, std::time::Instant::now()) {
            throttle::Admission::Now => {}
            throttle::Admission::At { at, failures } => {
                tracing::info!(
                    target: AUDIT_TARGET,
                    event = "authentication_delayed",
                    principal,
                    client = client_text,
                    failures,
                    delay_ms = at.saturating_duration_since(std::time::Instant::now()).as_millis() as u64,
                    "authentication delayed after repeated failures"
                );
                tokio::time::sleep_until(at.into()).await;
            }
            throttle::Admission::Flooded { failures } => {
                tracing::warn!(
                    target: AUDIT_TARGET,
                    event = "authentication_throttled",
                    principal,
                    client = client_text,
                    failures,
                    "authentication refused unchecked: too many failed attempts are waiting"
                );
                return Err(refused);
            }
        }
        let security = std::sync::Arc::clone(self);
        let attempt = credentials.clone();
        let outcome = tokio::task::spawn_blocking(move || security.authenticate(&attempt, now_ms))
            .await
            .unwrap_or_else(|e| Err(AuthnError::Internal(e.to_string())));
        let keys = throttle_keys(&credentials, client);
        match &outcome {
            Ok(_) => self.throttle.record(&keys, true, std::time::Instant::now()),
            Err(AuthnError::Internal(_) | AuthnError::Missing) => {}
            Err(_) => self
                .throttle
                .record(&keys, false, std::time::Instant::now()),
        }
        outcome
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Makes the changes so far durable (every acknowledged change awaits this).
    pub async fn flush(&self) -> Result<(), SecurityError> {
        Ok(self.store.flush().await?)
    }

    /// On a store without users, creates `elastic` (a superuser) with `password`, or a generated
    /// one, which is returned so the caller can show it once. `None` when users exist already.
    pub fn bootstrap(&self, password: Option<&str>) -> Result<Option<String>, SecurityError> {
        if !self.store.has_no_users()? {
            return Ok(None);
        }
        let password = match password {
            Some(given) => {
                user::check_password(given)?;
                given.to_string()
            }
            None => secret::generate_password()?,
        };
        let change = UserChange {
            password: Some(password.clone()),
            roles: Some(vec!["superuser".to_string()]),
            ..UserChange::default()
        };
        self.write_user(&User::create(ELASTIC, change)?, Vec::new())?;
        Ok(Some(password))
    }

    /// Checks credentials; `now_ms` decides API key expiry.
    pub fn authenticate(
        &self,
        credentials: &Credentials,
        now_ms: i64,
    ) -> Result<Authentication, AuthnError> {
        let internal = |e: SecurityError| AuthnError::Internal(e.to_string());
        match credentials {
            Credentials::Basic { username, password } => {
                let refused = || AuthnError::User {
                    username: username.clone(),
                };
                let Some(user) = self.user(username).map_err(internal)? else {
                    // As slow as a wrong password, so timing does not tell which users exist.
                    secret::verify_password(password, secret::decoy_hash());
                    return Err(refused());
                };
                if !user.enabled || !self.password_matches(&user, password) {
                    return Err(refused());
                }
                let privilege_sets =
                    vec![self.cluster_privileges(&user.roles).map_err(internal)?];
                self.authentication(user, None, privilege_sets)
                    .map_err(internal)
            }
            Credentials::ApiKey { id, key } => {
                let token = |detail: &str| AuthnError::Token {
                    detail: detail.to_string(),
                };
                let stored = self
                    .api_key(id)
                    .map_err(internal)?
                    .ok_or_else(|| token(&format!("unable to find apikey with id {id}")))?;
                let digest = secret::to_hex(&secret::digest(&[id.as_bytes(), key.as_bytes()]));
                if !secret::same(digest.as_bytes(), stored.digest.as_bytes()) {
                    return Err(token(&format!("invalid credentials for API key [{id}]")));
                }
                if stored.invalidated {
                    return Err(token("api key has been invalidated"));
                }
                if stored.is_expired(now_ms) {
                    return Err(token("api key is expired"));
                }
                let owner = self
                    .user(&stored.username)
                    .map_err(internal)?
                    .ok_or_else(|| token("the api key's owner no longer exists"))?;
                let privilege_sets = stored.privilege_sets();
                self.authentication(owner, Some((stored.id, stored.name)), privilege_sets)
                    .map_err(internal)
            }
        }
    }

    fn authentication(
        &self,
        user: User,
        api_key: Option<(String, String)>,
        privilege_sets: Vec<Vec<String>>,
    ) -> Result<Authentication, SecurityError> {
        let mut effective_roles = Vec::new();
        let mut missing_roles = Vec::new();
        for name in &user.roles {
            if self.role(name)?.is_some() {
                effective_roles.push(name.clone());
            } else {
                missing_roles.push(name.clone());
            }
        }
        Ok(Authentication {
            user,
            api_key,
            effective_roles,
            missing_roles,
            privilege_sets,
        })
    }

    /// argon2 once per credential that succeeds; that exact credential is then recognised by a
    /// keyed digest compared in constant time. Anything else is a full argon2 check, so a wrong
    /// password costs the same whether or not the user logged in before.
    fn password_matches(&self, user: &User, password: &str) -> bool {
        let digest = secret::digest(&[
            &self.cache_key,
            user.username.as_bytes(),
            user.password_hash.as_bytes(),
            password.as_bytes(),
        ]);
        let cached = self
            .logins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&user.username)
            .is_some_and(|known| secret::same(known, &digest));
        if cached {
            return true;
        }
        if !secret::verify_password(password, &user.password_hash) {
            return false;
        }
        self.logins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(user.username.clone(), digest);
        true
    }

    /// The union of the cluster privileges of the named roles that exist.
    fn cluster_privileges(&self, roles: &[String]) -> Result<Vec<String>, SecurityError> {
        let mut privileges = Vec::new();
        for name in roles {
            if let Some(role) = self.role(name)? {
                privileges.extend(role.cluster);
            }
        }
        Ok(privileges)
    }

    fn read<T: serde::de::DeserializeOwned>(
        &self,
        kind: SecurityKind,
        name: &str,
    ) -> Result<Option<T>, SecurityError> {
        match self.store.get_security(kind, name) {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| SecurityError::Internal(format!("stored {kind:?} [{name}]: {e}"))),
            Ok(None) => Ok(None),
            // A name the store cannot key (empty, NUL) exists nowhere.
            Err(StoreError::Encode(_)) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    fn read_all<T: serde::de::DeserializeOwned>(
        &self,
        kind: SecurityKind,
    ) -> Result<Vec<T>, SecurityError> {
        Ok(self
            .read_all_named(kind)?
            .into_iter()
            .map(|(_, doc)| doc)
            .collect())
    }

    /// Every stored document of a kind with its name, in name order.
    fn read_all_named<T: serde::de::DeserializeOwned>(
        &self,
        kind: SecurityKind,
    ) -> Result<Vec<(String, T)>, SecurityError> {
        self.store
            .scan_security(kind)?
            .into_iter()
            .map(|(name, bytes)| {
                serde_json::from_slice(&bytes)
                    .map(|doc| (name.clone(), doc))
                    .map_err(|e| SecurityError::Internal(format!("stored {kind:?} [{name}]: {e}")))
            })
            .collect()
    }

    pub fn user(&self, username: &str) -> Result<Option<User>, SecurityError> {
        self.read(SecurityKind::User, username)
    }

    pub fn api_key(&self, id: &str) -> Result<Option<ApiKey>, SecurityError> {
        self.read(SecurityKind::ApiKey, id)
    }

    /// A built-in or stored role.
    pub fn role(&self, name: &str) -> Result<Option<RoleDescriptor>, SecurityError> {
        match RoleDescriptor::builtin(name) {
            Some(builtin) => Ok(Some(builtin)),
            None => self.read(SecurityKind::Role, name),
        }
    }

    /// Writes a user plus other related documents in one batch.
    fn write_user(&self, user: &User, mut also: Vec<SecurityWrite>) -> Result<(), SecurityError> {
        also.push(put(SecurityKind::User, &user.username, user)?);
        self.store.write_security(&also)?;
        Ok(())
    }
}

/// What a failed attempt with these credentials counts against.
fn throttle_keys(
    credentials: &Credentials,
    client: Option<std::net::IpAddr>,
) -> Vec<throttle::Key<'_>> {
    let mut keys = Vec::with_capacity(2);
    if let Credentials::Basic { username, .. } = credentials {
        keys.push(throttle::Key::User(username));
    }
    keys.extend(client.map(throttle::Key::Address));
    keys
}

/// A put of a JSON document.
fn put<T: serde::Serialize>(
    kind: SecurityKind,
    name: &str,
    value: &T,
) -> Result<SecurityWrite, SecurityError> {
    Ok(SecurityWrite::Put {
        kind,
        name: name.to_string(),
        json: serde_json::to_vec(value).map_err(|e| SecurityError::Internal(e.to_string()))?,
    })
}

#[cfg(test)]
mod tests;
