//! The `resources` tree: filters, calendars, scheduled events and node settings, as framed JSON documents that
//! belong to no job. Owns their keys (`kind 0x00 id [0x00 event_id]`), reads, writes and deletes.
//! The documents are opaque here. Written only by the job manager (the API's filter and calendar
//! handlers go through it); no actor touches this tree.

use sled::Batch;

use super::{failpoint, frame, keys, tree, Store, StoreError};

/// What a resource key holds; the byte is the key's first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    Filter = b'f' as isize,
    Calendar = b'c' as isize,
    /// Keyed by calendar id, then event id.
    Event = b'e' as isize,
    /// A node-wide setting, keyed by its name (`upgrade_mode`).
    Setting = b's' as isize,
}

impl ResourceKind {
    pub(super) fn from_byte(byte: u8) -> Option<ResourceKind> {
        [
            ResourceKind::Filter,
            ResourceKind::Calendar,
            ResourceKind::Event,
            ResourceKind::Setting,
        ]
        .into_iter()
        .find(|kind| *kind as u8 == byte)
    }
}

/// `kind 0x00 id` (plus `0x00 sub` for an event); ids may not be empty or hold `0x00`.
fn resource_key(kind: ResourceKind, id: &str, sub: Option<&str>) -> Result<Vec<u8>, StoreError> {
    let mut key = vec![kind as u8, keys::SEPARATOR];
    for part in std::iter::once(id).chain(sub) {
        if part.is_empty() || part.as_bytes().contains(&keys::SEPARATOR) {
            return Err(StoreError::Encode(format!(
                "resource id [{part}] is empty or contains NUL"
            )));
        }
        if key.len() > 2 {
            key.push(keys::SEPARATOR);
        }
        key.extend_from_slice(part.as_bytes());
    }
    Ok(key)
}

impl Store {
    /// Writes (or replaces) one document. `sub` is the event id for events (`id` = calendar id).
    pub fn put_resource(
        &self,
        kind: ResourceKind,
        id: &str,
        sub: Option<&str>,
        json: &[u8],
    ) -> Result<(), StoreError> {
        let key = resource_key(kind, id, sub)?;
        failpoint::failpoint(failpoint::RESOURCE_BEFORE)?;
        self.touched(super::RESOURCES_SCOPE);
        self.resources.insert(key, frame::frame(json)?)?;
        Ok(())
    }

    pub fn get_resource(
        &self,
        kind: ResourceKind,
        id: &str,
        sub: Option<&str>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let key = resource_key(kind, id, sub)?;
        match self.resources.get(&key)? {
            Some(value) => Ok(Some(
                frame::unframe(tree::RESOURCES, &key, &value)?.to_vec(),
            )),
            None => Ok(None),
        }
    }

    /// Every document of a kind, in id order; events of one calendar when `calendar` is given.
    pub fn scan_resources(
        &self,
        kind: ResourceKind,
        calendar: Option<&str>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let prefix = match calendar {
            Some(id) => {
                let mut prefix = resource_key(kind, id, None)?;
                prefix.push(keys::SEPARATOR);
                prefix
            }
            None => vec![kind as u8, keys::SEPARATOR],
        };
        let mut docs = Vec::new();
        for entry in self.resources.scan_prefix(&prefix) {
            let (key, value) = entry?;
            docs.push(frame::unframe(tree::RESOURCES, &key, &value)?.to_vec());
        }
        Ok(docs)
    }

    /// Removes one document and, for a calendar, all of its events (one atomic batch); returns
    /// whether the document existed.
    pub fn delete_resource(
        &self,
        kind: ResourceKind,
        id: &str,
        sub: Option<&str>,
    ) -> Result<bool, StoreError> {
        let key = resource_key(kind, id, sub)?;
        let existed = self.resources.contains_key(&key)?;
        let mut batch = Batch::default();
        batch.remove(key);
        if kind == ResourceKind::Calendar {
            let mut events = resource_key(ResourceKind::Event, id, None)?;
            events.push(keys::SEPARATOR);
            for entry in self.resources.scan_prefix(&events) {
                batch.remove(entry?.0);
            }
        }
        failpoint::failpoint(failpoint::RESOURCE_BEFORE)?;
        self.touched(super::RESOURCES_SCOPE);
        let _exclusive = super::gate::exclusive();
        self.resources.apply_batch(batch)?;
        Ok(existed)
    }
}

/// Why a `resources` key is malformed, if it is (for `check_integrity`).
pub(super) fn key_problem(key: &[u8]) -> Option<&'static str> {
    match key {
        [kind, separator, id @ ..]
            if ResourceKind::from_byte(*kind).is_some()
                && *separator == keys::SEPARATOR
                && !id.is_empty() =>
        {
            let parts = id.split(|b| *b == keys::SEPARATOR).count();
            let expected = if *kind == ResourceKind::Event as u8 {
                2
            } else {
                1
            };
            (parts != expected).then_some("resource key has the wrong number of ids")
        }
        _ => Some("malformed resource key"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_round_trip_and_calendars_take_their_events_along() {
        let store = Store::temporary().unwrap();
        store
            .put_resource(ResourceKind::Filter, "f1", None, b"{\"a\":1}")
            .unwrap();
        store
            .put_resource(ResourceKind::Calendar, "c", None, b"{}")
            .unwrap();
        store
            .put_resource(ResourceKind::Calendar, "c2", None, b"{}")
            .unwrap();
        for (calendar, event) in [("c", "e1"), ("c", "e2"), ("c2", "e1")] {
            let json = format!("\"{calendar}/{event}\"");
            store
                .put_resource(ResourceKind::Event, calendar, Some(event), json.as_bytes())
                .unwrap();
        }
        assert_eq!(
            store
                .get_resource(ResourceKind::Filter, "f1", None)
                .unwrap()
                .unwrap(),
            b"{\"a\":1}"
        );
        assert_eq!(
            store
                .scan_resources(ResourceKind::Event, Some("c"))
                .unwrap(),
            vec![b"\"c/e1\"".to_vec(), b"\"c/e2\"".to_vec()]
        );
        assert_eq!(
            store
                .scan_resources(ResourceKind::Event, None)
                .unwrap()
                .len(),
            3
        );
        assert!(store
            .delete_resource(ResourceKind::Calendar, "c", None)
            .unwrap());
        assert_eq!(
            store.scan_resources(ResourceKind::Event, None).unwrap(),
            vec![b"\"c2/e1\"".to_vec()]
        );
        assert!(!store
            .delete_resource(ResourceKind::Calendar, "c", None)
            .unwrap());
        assert!(store
            .put_resource(ResourceKind::Filter, "", None, b"{}")
            .is_err());
        assert!(store.check_integrity().unwrap().is_clean());
    }

    #[test]
    fn key_problems() {
        assert_eq!(key_problem(b"f\0x"), None);
        assert_eq!(key_problem(b"e\0c\0e"), None);
        assert!(key_problem(b"e\0c").is_some());
        assert!(key_problem(b"f\0x\0y").is_some());
        assert!(key_problem(b"z\0x").is_some());
        assert!(key_problem(b"f").is_some());
    }
}
