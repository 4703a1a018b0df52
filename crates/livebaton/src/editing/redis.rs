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
//! A removal is conditional on the version the remover saw (a session's last editor leaving can race with a new
//! editor's first keystroke on another node; the newer draft survives). After Redis lost its data every node writes
//! its copies back unless Redis already has a newer version.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::draft::{Draft, DraftStore};
use super::target::EditTarget;
use crate::presence::{DocSink, DocWrite, RedisRoster};

/// A [`DraftStore`] shared by every node of a Redis roster. See the module documentation.
pub struct RedisDraftStore {
    roster: Arc<RedisRoster>,
    /// The local copy. A std `Mutex`: one map operation per call, never held across an await (the store's methods
    /// run under the editing board's lock, and the roster's subscriber applies other nodes' drafts here).
    drafts: Mutex<HashMap<EditTarget, Arc<Draft>>>,
}

impl RedisDraftStore {
    /// A draft store on `roster` (which keeps it informed of other nodes' drafts from now on).
    pub fn new(roster: Arc<RedisRoster>) -> Arc<Self> {
        let store = Arc::new(RedisDraftStore { roster, drafts: Mutex::new(HashMap::new()) });
        let sink: Arc<dyn DocSink> = store.clone();
        store.roster.attach_docs(Arc::downgrade(&sink) as Weak<dyn DocSink>);
        store
    }

    fn map(&self) -> MutexGuard<'_, HashMap<EditTarget, Arc<Draft>>> {
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
        self.map().get(target).cloned()
    }

    fn put(&self, target: &EditTarget, draft: Arc<Draft>) {
        let json = match serde_json::to_string(&*draft) {
            Ok(json) => json,
            Err(error) => {
                tracing::error!(%target, %error, "draft not shared with other nodes: it cannot be encoded");
                String::new()
            }
        };
        let write = DocWrite { key: key(target), version: draft.version, updated_at: draft.updated_at, json };
        self.map().insert(*target, draft);
        if !write.json.is_empty() {
            self.roster.put_doc(write);
        }
    }

    fn remove(&self, target: &EditTarget) -> Option<Arc<Draft>> {
        let removed = self.map().remove(target);
        if let Some(draft) = &removed {
            self.roster.remove_doc(key(target), draft.version, draft.updated_at);
        }
        removed
    }
}

impl DocSink for RedisDraftStore {
    fn doc_changed(&self, key: &str, json: Option<&str>, version: &str, updated_at: &str) {
        let Some(target) = EditTarget::from_presence_topic(key) else { return };
        let mut drafts = self.map();
        match json {
            Some(json) => {
                if let Some(draft) = parse(json) {
                    drafts.insert(target, draft);
                }
            }
            None => {
                let same = drafts.get(&target).is_some_and(|draft| {
                    draft.version.to_string() == version && draft.updated_at.to_string() == updated_at
                });
                if same {
                    drafts.remove(&target);
                }
            }
        }
    }

    fn docs_loaded(&self, docs: Vec<(String, String)>, pending: &HashSet<String>, remove_missing: bool) {
        let loaded: HashMap<EditTarget, Arc<Draft>> = docs
            .into_iter()
            .filter_map(|(key, json)| Some((EditTarget::from_presence_topic(&key)?, parse(&json)?)))
            .collect();
        let mut drafts = self.map();
        if remove_missing {
            drafts.retain(|target, _| pending.contains(&key(target)) || loaded.contains_key(target));
        }
        for (target, draft) in loaded {
            if !pending.contains(&key(&target)) {
                drafts.insert(target, draft);
            }
        }
    }

    fn docs_to_restore(&self) -> Vec<DocWrite> {
        self.map()
            .iter()
            .filter_map(|(target, draft)| {
                let json = serde_json::to_string(&**draft).ok()?;
                Some(DocWrite { key: key(target), version: draft.version, updated_at: draft.updated_at, json })
            })
            .collect()
    }
}
