//! Where the wanted fields (analysis fields and the time field) can be in a record.
//!
//! Owns the lookup built once per reader; `extract.rs` walks it while parsing. A dotted name such as
//! `host.name` can be written as a literal key (`{"host.name":..}`), as nested objects
//! (`{"host":{"name":..}}`), or as any mix (`{"a.b":{"c":..}}` for `a.b.c`): Elasticsearch flattens
//! nested objects by joining keys with `.`, so every split of the name at its dots is a way in.
//!
//! The lookup is a small trie keyed by "what has been consumed so far": node 0 is the record's top
//! level, and an entry says what a key at that node means (a wanted field, a way into a nested
//! object, or both). Records rarely want more than a handful of fields, so nodes hold short
//! vectors scanned linearly, which beats hashing for keys this short.

/// One key that matters at one nesting position.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: Box<str>,
    /// Slots whose full name ends with this key here (usually one).
    pub slots: Vec<usize>,
    /// The node to use inside this key's value when that value is an object.
    pub child: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    pub entries: Vec<Entry>,
}

impl Node {
    pub fn find(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| &*e.key == key)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct FieldPaths {
    nodes: Vec<Node>,
}

impl FieldPaths {
    pub const ROOT: usize = 0;

    /// `names[i]` fills slot `i`.
    pub fn new(names: &[&str]) -> FieldPaths {
        // Node identity is the prefix consumed so far, e.g. "" (top level) or "event.".
        let mut prefixes: Vec<String> = vec![String::new()];
        let mut nodes = vec![Node::default()];
        for (slot, name) in names.iter().enumerate() {
            // Every prefix of `name` that ends at a dot, plus the empty prefix.
            let starts: Vec<usize> = std::iter::once(0)
                .chain(name.match_indices('.').map(|(i, _)| i + 1))
                .collect();
            for (i, &from) in starts.iter().enumerate() {
                let node = node_for(&mut prefixes, &mut nodes, &name[..from]);
                entry(&mut nodes[node], &name[from..]).slots.push(slot);
                for &to in &starts[i + 1..] {
                    let child = node_for(&mut prefixes, &mut nodes, &name[..to]);
                    entry(&mut nodes[node], &name[from..to - 1]).child = Some(child);
                }
            }
        }
        FieldPaths { nodes }
    }

    pub fn node(&self, index: usize) -> &Node {
        &self.nodes[index]
    }
}

fn node_for(prefixes: &mut Vec<String>, nodes: &mut Vec<Node>, prefix: &str) -> usize {
    if let Some(i) = prefixes.iter().position(|p| p == prefix) {
        return i;
    }
    prefixes.push(prefix.to_string());
    nodes.push(Node::default());
    nodes.len() - 1
}

fn entry<'n>(node: &'n mut Node, key: &str) -> &'n mut Entry {
    let index = match node.entries.iter().position(|e| &*e.key == key) {
        Some(i) => i,
        None => {
            node.entries.push(Entry {
                key: key.into(),
                slots: Vec::new(),
                child: None,
            });
            node.entries.len() - 1
        }
    };
    &mut node.entries[index]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Follows `keys` from the top level; returns the slots of the last key.
    fn slots_via(paths: &FieldPaths, keys: &[&str]) -> Option<Vec<usize>> {
        let mut node = FieldPaths::ROOT;
        let (last, inner) = keys.split_last()?;
        for key in inner {
            node = paths.node(node).find(key)?.child?;
        }
        Some(paths.node(node).find(last)?.slots.clone())
    }

    #[test]
    fn every_split_of_a_dotted_name_reaches_its_slot() {
        let paths = FieldPaths::new(&["time", "a.b.c", "host.name"]);
        assert_eq!(slots_via(&paths, &["time"]), Some(vec![0]));
        assert_eq!(slots_via(&paths, &["a.b.c"]), Some(vec![1]));
        assert_eq!(slots_via(&paths, &["a", "b.c"]), Some(vec![1]));
        assert_eq!(slots_via(&paths, &["a.b", "c"]), Some(vec![1]));
        assert_eq!(slots_via(&paths, &["a", "b", "c"]), Some(vec![1]));
        assert_eq!(slots_via(&paths, &["host", "name"]), Some(vec![2]));
        assert_eq!(slots_via(&paths, &["a", "c"]), None);
        assert_eq!(slots_via(&paths, &["b", "c"]), None);
    }

    #[test]
    fn a_key_can_be_a_field_and_a_way_in() {
        let paths = FieldPaths::new(&["a", "a.b"]);
        let a = paths.node(FieldPaths::ROOT).find("a").expect("a is known");
        assert_eq!(a.slots, vec![0]);
        assert!(a.child.is_some());
        assert_eq!(slots_via(&paths, &["a", "b"]), Some(vec![1]));
    }
}
