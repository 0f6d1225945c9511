//! The `security` tree: users, custom roles and API keys, as framed JSON documents that belong to no
//! job. Owns their keys (`kind 0x00 name`) and the one-batch write of related documents (a user and
//! the API keys it owns, a bootstrap user). The documents are opaque here: `security` gives them
//! meaning (only password and API key hashes are ever stored, never a secret).

use sled::Batch;

use super::{frame, keys, tree, Store, StoreError};

/// What a security key holds; the byte is the key's first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityKind {
    User = b'u' as isize,
    Role = b'r' as isize,
    ApiKey = b'k' as isize,
}

impl SecurityKind {
    fn from_byte(byte: u8) -> Option<SecurityKind> {
        [SecurityKind::User, SecurityKind::Role, SecurityKind::ApiKey]
            .into_iter()
            .find(|kind| *kind as u8 == byte)
    }
}

/// One change of a [`Store::write_security`] batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityWrite {
    Put {
        kind: SecurityKind,
        name: String,
        json: Vec<u8>,
    },
    Delete {
        kind: SecurityKind,
        name: String,
    },
}

/// `kind 0x00 name`; names may not be empty or hold `0x00`.
fn security_key(kind: SecurityKind, name: &str) -> Result<Vec<u8>, StoreError> {
    if name.is_empty() || name.as_bytes().contains(&keys::SEPARATOR) {
        return Err(StoreError::Encode(format!(
            "security name [{name}] is empty or contains NUL"
        )));
    }
    let mut key = vec![kind as u8, keys::SEPARATOR];
    key.extend_from_slice(name.as_bytes());
    Ok(key)
}

impl Store {
    pub fn get_security(
        &self,
        kind: SecurityKind,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let key = security_key(kind, name)?;
        match self.security.get(&key)? {
            Some(value) => Ok(Some(frame::unframe(tree::SECURITY, &key, &value)?.to_vec())),
            None => Ok(None),
        }
    }

    /// Every document of a kind with its name, in name order.
    pub fn scan_security(&self, kind: SecurityKind) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut docs = Vec::new();
        for entry in self.security.scan_prefix([kind as u8, keys::SEPARATOR]) {
            let (key, value) = entry?;
            let name = String::from_utf8_lossy(&key[2..]).into_owned();
            docs.push((name, frame::unframe(tree::SECURITY, &key, &value)?.to_vec()));
        }
        Ok(docs)
    }

    /// Applies every write in one atomic batch (all or none of them after a crash).
    pub fn write_security(&self, writes: &[SecurityWrite]) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        for write in writes {
            match write {
                SecurityWrite::Put { kind, name, json } => {
                    batch.insert(security_key(*kind, name)?, frame::frame(json)?);
                }
                SecurityWrite::Delete { kind, name } => batch.remove(security_key(*kind, name)?),
            }
        }
        let _exclusive = super::gate::exclusive();
        self.touched(super::SECURITY_SCOPE);
        self.security.apply_batch(batch)?;
        Ok(())
    }

    /// Whether the tree holds no user at all (a first start).
    pub fn has_no_users(&self) -> Result<bool, StoreError> {
        Ok(self
            .security
            .scan_prefix([SecurityKind::User as u8, keys::SEPARATOR])
            .next()
            .transpose()?
            .is_none())
    }
}

/// Why a `security` key is malformed, if it is (for `check_integrity`).
pub(super) fn key_problem(key: &[u8]) -> Option<&'static str> {
    match key {
        [kind, separator, name @ ..]
            if SecurityKind::from_byte(*kind).is_some()
                && *separator == keys::SEPARATOR
                && !name.is_empty()
                && !name.contains(&keys::SEPARATOR) =>
        {
            None
        }
        _ => Some("malformed security key"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(kind: SecurityKind, name: &str, json: &str) -> SecurityWrite {
        SecurityWrite::Put {
            kind,
            name: name.into(),
            json: json.as_bytes().to_vec(),
        }
    }

    #[test]
    fn documents_round_trip_in_one_batch() {
        let store = Store::temporary().unwrap();
        assert!(store.has_no_users().unwrap());
        store
            .write_security(&[
                put(SecurityKind::User, "bob", "{\"u\":1}"),
                put(SecurityKind::ApiKey, "k1", "{\"k\":1}"),
                put(SecurityKind::ApiKey, "k2", "{\"k\":2}"),
                put(SecurityKind::Role, "r", "{}"),
            ])
            .unwrap();
        assert!(!store.has_no_users().unwrap());
        assert_eq!(
            store.get_security(SecurityKind::User, "bob").unwrap(),
            Some(b"{\"u\":1}".to_vec())
        );
        assert_eq!(
            store.scan_security(SecurityKind::ApiKey).unwrap(),
            vec![
                ("k1".to_string(), b"{\"k\":1}".to_vec()),
                ("k2".to_string(), b"{\"k\":2}".to_vec())
            ]
        );
        store
            .write_security(&[
                SecurityWrite::Delete {
                    kind: SecurityKind::User,
                    name: "bob".into(),
                },
                put(SecurityKind::ApiKey, "k1", "{\"k\":3}"),
            ])
            .unwrap();
        assert_eq!(store.get_security(SecurityKind::User, "bob").unwrap(), None);
        assert_eq!(store.scan_security(SecurityKind::Role).unwrap().len(), 1);
        // A bad name refuses the whole batch: nothing of it is written.
        assert!(store
            .write_security(&[
                put(SecurityKind::User, "ok", "{}"),
                put(SecurityKind::User, "", "{}")
            ])
            .is_err());
        assert_eq!(store.get_security(SecurityKind::User, "ok").unwrap(), None);
        assert!(store.check_integrity().unwrap().is_clean());
    }

    #[test]
    fn key_problems() {
        assert_eq!(key_problem(b"u\0elastic"), None);
        assert!(key_problem(b"u\0").is_some());
        assert!(key_problem(b"x\0a").is_some());
        assert!(key_problem(b"k\0a\0b").is_some());
    }
}
