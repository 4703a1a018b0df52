//! A change to one topic's roster as flat lists of joined and left metas, before it becomes a [`PresenceDiff`].
//!
//! Changes are merged while a coalescing window is open: a meta that joins and leaves inside one window cancels out,
//! so a burst of N joins costs one diff per subscriber instead of N.

use std::collections::HashSet;
use std::sync::Arc;

use super::shapes::{PresenceDiff, PresenceList, PresenceMeta};

/// Joined and left metas of one topic, in the order they happened.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RosterChange {
    /// `(key, meta)` pairs that appeared.
    pub joins: Vec<(Arc<str>, Arc<PresenceMeta>)>,
    /// `(key, meta)` pairs that went away.
    pub leaves: Vec<(Arc<str>, Arc<PresenceMeta>)>,
}

impl RosterChange {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.joins.is_empty() && self.leaves.is_empty()
    }

    /// Folds a later change into this one. A meta joined here and left there disappears from both lists: subscribers
    /// never saw it, so they need not hear of it.
    pub fn merge(&mut self, later: RosterChange) {
        if !later.leaves.is_empty() && !self.joins.is_empty() {
            let joined_here: HashSet<Arc<str>> = self.joins.iter().map(|(_, meta)| meta.phx_ref.clone()).collect();
            let (cancelled, leaves): (Vec<_>, Vec<_>) =
                later.leaves.into_iter().partition(|(_, meta)| joined_here.contains(&meta.phx_ref));
            let cancelled: HashSet<Arc<str>> = cancelled.into_iter().map(|(_, meta)| meta.phx_ref.clone()).collect();
            self.joins.retain(|(_, meta)| !cancelled.contains(&meta.phx_ref));
            self.leaves.extend(leaves);
        } else {
            self.leaves.extend(later.leaves);
        }
        self.joins.extend(later.joins);
    }

    /// The Phoenix diff for this change.
    pub fn to_diff(&self) -> PresenceDiff {
        PresenceDiff {
            joins: PresenceList::from_pairs(self.joins.iter().cloned()),
            leaves: PresenceList::from_pairs(self.leaves.iter().cloned()),
        }
    }
}
