//! Drafts shared by every node through the Redis roster.
//!
//! [`DraftStore`] is synchronous on purpose: it is called while a session's ownership is locked, so a tab that lost
//! the baton a moment before can never write a draft. So this store keeps a **local copy** that answers every read at
//! once, and **writes through**: each `put`/`remove` changes the copy first, then goes to Redis on the roster's writer
//! (after every presence change this node made before, so a draft never arrives ahead of the ownership it depends
//! on). The write's script publishes it on the roster's channel, and every other node's store applies it to its copy;
//! a node that (re)connects reloads every draft. In Redis each draft is a hash with a TTL (the roster's `doc_ttl`,
//! renewed by every write) as a safety net: the drafts of sessions whose nodes all died do not stay forever.
//!
//! A write is fenced: Redis accepts it only while the writing tab leads the session (its member and fence), so a tab
//! that lost the baton a moment ago on another node, before this node heard of it, cannot overwrite the new owner's
//! draft; its node then takes Redis's draft back. Redis numbers every accepted write and removal with a revision, and
//! every copy (the writer's own included) applies them in that order, so all copies end up as Redis's.
//!
//! A removal is conditional on the version the remover saw (a session's last editor leaving can race with a new
//! editor's first keystroke on another node; the newer draft survives). After Redis lost its data every node writes
//! its copies back unless Redis already has a newer version.
//!
//! **Why drafts ride on the roster's shared documents** rather than a Redis link of their own: the fence must be
//! checked in the same Redis script that reads the session's leader (two round trips would let a hand-over slip in
//! between), a draft write must reach Redis after this node's presence writes that made its tab the leader (one
//! ordered writer), and after Redis lost its data the drafts come back with the roster's re-assert of the same
//! generation. The roster sees only opaque JSON documents keyed by topic, fenced by that topic's leader: it knows
//! nothing of drafts, and the draft's format, merge and lifecycle stay here, behind [`DraftStore`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::draft::{Draft, DraftStore};
use super::target::EditTarget;
use crate::presence::{Authority, DocSink, DocWrite, RedisRoster};

/// A [`DraftStore`] shared by every node of a Redis roster. See the module documentation.
pub struct RedisDraftStore {
    roster: Arc<RedisRoster>,
    /// The local copy. A std `Mutex`: one map operation per call, never held across an await (the store's methods
    /// run under the editing board's lock, and the roster's subscriber and writer apply Redis's changes here).
    drafts: Mutex<HashMap<EditTarget, Copy>>,
}

/// One draft of the local copy.
struct Copy {
    draft: Arc<Draft>,
    /// The revision of the last change of this draft in Redis the copy applied (0: none yet). A local write keeps
    /// it until Redis numbers the write (its echo) or refuses it (its answer).
    rev: u64,
}

impl RedisDraftStore {
    /// A draft store on `roster` (which keeps it informed of other nodes' drafts from now on).
    pub fn new(roster: Arc<RedisRoster>) -> Arc<Self> {
        let store = Arc::new(RedisDraftStore { roster, drafts: Mutex::new(HashMap::new()) });
        let sink: Arc<dyn DocSink> = store.clone();
        store.roster.attach_docs(Arc::downgrade(&sink) as Weak<dyn DocSink>);
        store
    }

    fn map(&self) -> MutexGuard<'_, HashMap<EditTarget, Copy>> {
        self.drafts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Number of sessions with a draft in the local copy.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether the local copy holds no draft.
    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }
}

fn key(target: &EditTarget) -> String {
    target.presence_topic()
}

fn parse(json: &str) -> Option<Arc<Draft>> {
    match serde_json::from_str::<Draft>(json) {
        Ok(draft) => Some(Arc::new(draft)),
        Err(error) => {
            tracing::warn!(%error, "ignored an unreadable draft from Redis");
            None
        }
    }
}

impl DraftStore for RedisDraftStore {
    fn get(&self, target: &EditTarget) -> Option<Arc<Draft>> {
        self.map().get(target).map(|copy| copy.draft.clone())
    }

    fn put(&self, target: &EditTarget, draft: Arc<Draft>, writer: Option<&Authority>) {
        let json = match serde_json::to_string(&*draft) {
            Ok(json) => json,
            Err(error) => {
                tracing::error!(%target, %error, "draft not shared with other nodes: it cannot be encoded");
                String::new()
            }
        };
        let fence = writer.and_then(|writer| Some((writer.member.clone()?, writer.fence)));
        let write = DocWrite { key: key(target), version: draft.version, updated_at: draft.updated_at, json, fence };
        let mut drafts = self.map();
        let rev = drafts.get(target).map_or(0, |copy| copy.rev);
        drafts.insert(target.clone(), Copy { draft, rev });
        drop(drafts);
        if !write.json.is_empty() {
            self.roster.put_doc(write);
        }
    }

    fn snapshot(&self) -> Vec<(EditTarget, Arc<Draft>)> {
        self.map().iter().map(|(target, copy)| (target.clone(), copy.draft.clone())).collect()
    }

    fn remove(&self, target: &EditTarget) -> Option<Arc<Draft>> {
        let removed = self.map().remove(target).map(|copy| copy.draft);
        if let Some(draft) = &removed {
            self.roster.remove_doc(key(target), draft.version, draft.updated_at);
        }
        removed
    }
}

impl DocSink for RedisDraftStore {
    fn doc_changed(&self, key: &str, json: Option<&str>, version: u64, rev: u64, own: bool) {
        let Some(target) = EditTarget::from_presence_topic(key) else { return };
        let mut drafts = self.map();
        let copy = drafts.get_mut(&target);
        if copy.as_ref().is_some_and(|copy| copy.rev >= rev) {
            return;
        }
        if let Some(copy) = copy.filter(|copy| own && copy.draft.version > version) {
            // A newer write of this node is on its way after this one: its echo (or refusal) settles the copy.
            copy.rev = rev;
            return;
        }
        match json.and_then(parse) {
            Some(draft) => {
                drafts.insert(target, Copy { draft, rev });
            }
            None if json.is_none() => {
                drafts.remove(&target);
            }
            None => {}
        }
    }

    fn doc_refused(&self, key: &str, json: Option<&str>, rev: u64) {
        let Some(target) = EditTarget::from_presence_topic(key) else { return };
        let mut drafts = self.map();
        // Gone meanwhile (a newer removal): nothing to take back.
        if drafts.get(&target).is_none_or(|copy| copy.rev > rev) {
            return;
        }
        match json.and_then(parse) {
            Some(draft) => {
                drafts.insert(target, Copy { draft, rev });
            }
            None => {
                drafts.remove(&target);
            }
        }
    }

    fn docs_loaded(&self, docs: Vec<(String, String, u64)>, pending: &HashSet<String>, remove_missing: bool) {
        let loaded: HashMap<EditTarget, Copy> = docs
            .into_iter()
            .filter_map(|(key, json, rev)| {
                Some((EditTarget::from_presence_topic(&key)?, Copy { draft: parse(&json)?, rev }))
            })
            .collect();
        let mut drafts = self.map();
        if remove_missing {
            drafts.retain(|target, _| pending.contains(&key(target)) || loaded.contains_key(target));
        }
        for (target, copy) in loaded {
            if !pending.contains(&key(&target)) {
                drafts.insert(target, copy);
            }
        }
    }

    fn docs_to_restore(&self) -> Vec<DocWrite> {
        self.map()
            .iter()
            .filter_map(|(target, copy)| {
                let json = serde_json::to_string(&*copy.draft).ok()?;
                let (version, updated_at) = (copy.draft.version, copy.draft.updated_at);
                Some(DocWrite { key: key(target), version, updated_at, json, fence: None })
            })
            .collect()
    }

    fn docs_reset(&self) {
        for copy in self.map().values_mut() {
            copy.rev = 0;
        }
    }
}
