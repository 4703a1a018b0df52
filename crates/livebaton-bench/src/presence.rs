//! A client's view of a topic's presence, kept with Phoenix.Presence's semantics (phoenix.js `syncState` and
//! `syncDiff`): a state replaces the list; a diff's joins add entries by id (an entry already listed is not counted
//! twice) and its leaves remove them; a key with no entries left is gone.

use std::collections::{HashMap, HashSet};

use crate::protocol::Members;

/// Keys and their entry ids (`phx_ref`s).
#[derive(Debug, Default)]
pub struct PresenceView {
    keys: HashMap<String, HashSet<String>>,
    entries: usize,
}

impl PresenceView {
    /// `syncState`: the list becomes `members`.
    pub fn sync_state(&mut self, members: Members) {
        self.keys.clear();
        self.entries = 0;
        self.join(members);
    }

    /// `syncDiff`: joins first, then leaves, as phoenix.js applies them.
    pub fn sync_diff(&mut self, joins: Members, leaves: Members) {
        self.join(joins);
        for (key, ids) in leaves {
            if let Some(listed) = self.keys.get_mut(&key) {
                for id in ids {
                    if listed.remove(&id) {
                        self.entries -= 1;
                    }
                }
                if listed.is_empty() {
                    self.keys.remove(&key);
                }
            }
        }
    }

    fn join(&mut self, members: Members) {
        for (key, ids) in members {
            let listed = self.keys.entry(key).or_default();
            for id in ids {
                if listed.insert(id) {
                    self.entries += 1;
                }
            }
        }
    }

    /// Keys listed.
    pub fn keys(&self) -> usize {
        self.keys.len()
    }

    /// Entries (metas) listed, all keys together.
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// Entries listed under `key`.
    pub fn entries_of(&self, key: &str) -> usize {
        self.keys.get(key).map_or(0, HashSet::len)
    }

    /// The keys listed, sorted.
    pub fn key_names(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.keys.keys().cloned().collect();
        keys.sort();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(list: &[(&str, &[&str])]) -> Members {
        list.iter().map(|(key, ids)| (key.to_string(), ids.iter().map(|id| id.to_string()).collect())).collect()
    }

    #[test]
    fn states_replace_and_diffs_merge() {
        let mut view = PresenceView::default();
        view.sync_state(members(&[("1", &["a", "b"]), ("2", &["c"])]));
        assert_eq!((view.keys(), view.entries()), (2, 3));
        // A chunked state's rest and a join already listed are merged, not counted twice.
        view.sync_diff(members(&[("2", &["c", "d"]), ("3", &["e"])]), vec![]);
        assert_eq!((view.keys(), view.entries()), (3, 5));
        view.sync_diff(vec![], members(&[("1", &["a", "b"]), ("2", &["x"])]));
        assert_eq!((view.keys(), view.entries()), (2, 3));
        assert_eq!((view.entries_of("2"), view.entries_of("1")), (2, 0));
        assert_eq!(view.key_names(), ["2", "3"]);
        view.sync_state(members(&[("9", &["z"])]));
        assert_eq!((view.keys(), view.entries()), (1, 1));
    }
}
