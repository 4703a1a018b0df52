//! Shared documents: small JSON documents keyed by string that every node of the roster sees, each fenced by the
//! topic of the same name (see the module documentation of [`super`]).
//!
//! A node writes them through its writer (after every change of its own entries made before, so a document never
//! arrives ahead of the leadership it depends on), the script publishes the change, and every node's [`DocSink`]
//! applies changes in the order of the revisions Redis gives them. A node whose entries the others took for gone keeps
//! the documents of their topics, and writes them back once its entries are back (unless the topic went on elsewhere).

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::RedisRoster;
use super::call::{CallError, Reply};
use super::node::{Node, lock};
use super::queue::{Command, DocOp};
use super::scripts::Script;
use super::wire::{DocumentChange, DocumentList, DocumentPutAnswer};

/// A shared document to write (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocWrite {
    /// The document's key.
    pub key: String,
    /// Its version (a restore never overwrites a newer one).
    pub version: u64,
    /// When it was written (ms), which with the version identifies it for a conditional removal.
    pub updated_at: u64,
    /// The document.
    pub json: String,
    /// The member and fence the write is made under: Redis accepts it only while that member leads the topic named
    /// like the document with that fence. `None`: not fenced (a restore after Redis lost its data).
    pub fence: Option<(Arc<str>, u64)>,
}

/// Keeps this node's copy of the shared documents.
///
/// Redis numbers every write and removal of a document with a revision that only grows (within a dataset
/// generation), and publishes them in that order, this node's own included. A copy applies a change only if its
/// revision is newer than the copy's, so every node ends with what Redis has, whatever the writes' nodes believed.
pub trait DocSink: Send + Sync + 'static {
    /// A node (`own`: this one) wrote (`Some`) or removed (`None`) version `version` of a document, at revision `rev`.
    fn doc_changed(&self, key: &str, json: Option<&str>, version: u64, rev: u64, own: bool);
    /// Redis refused this node's write of a document (the writer no longer leads) and keeps `json` (`None`: nothing)
    /// at revision `rev`: the copy takes it back, unless it has heard of a newer revision meanwhile.
    fn doc_refused(&self, key: &str, json: Option<&str>, rev: u64);
    /// Every document in Redis after a (re)connection, as `(key, json, revision)`; keys in `pending` have writes of
    /// this node on their way and must be left as they are. With `remove_missing` false (Redis lost its data and the
    /// documents are being written back) a local document missing from `docs` is kept.
    fn docs_loaded(&self, docs: Vec<(String, String, u64)>, pending: &HashSet<String>, remove_missing: bool);
    /// This node's documents, to write back after Redis lost its data.
    fn docs_to_restore(&self) -> Vec<DocWrite>;
    /// Redis lost its data: revisions start again, so the copy forgets the ones it has.
    fn docs_reset(&self);
}

impl RedisRoster {
    /// Keeps `sink` informed of shared documents from now on.
    pub fn attach_docs(&self, sink: Weak<dyn DocSink>) {
        if self.node.docs.set(sink).is_err() {
            tracing::warn!(node = %self.node.id, "a Redis roster serves one document copy; a second one is ignored");
        }
    }

    /// Writes a shared document through (after everything submitted before).
    pub fn put_doc(&self, doc: DocWrite) {
        self.node.doc_pending(&doc.key, true);
        let key = doc.key.clone();
        if !self.node.send(Command::Doc(DocOp::Put(doc))) {
            self.node.doc_pending(&key, false);
            tracing::debug!(node = %self.node.id, "document not written: the roster is stopped");
        }
    }

    /// Removes a shared document if Redis still has that version of it.
    pub fn remove_doc(&self, key: String, version: u64, updated_at: u64) {
        self.node.doc_pending(&key, true);
        if !self.node.send(Command::Doc(DocOp::Remove { key: key.clone(), version, updated_at })) {
            self.node.doc_pending(&key, false);
            tracing::debug!(node = %self.node.id, "document not removed: the roster is stopped");
        }
    }
}

impl Node {
    pub(super) fn docs(&self) -> Option<Arc<dyn DocSink>> {
        self.docs.get().and_then(Weak::upgrade)
    }

    /// Counts a write of document `key` as on its way (`add`) or done.
    pub(super) fn doc_pending(&self, key: &str, add: bool) {
        let mut pending = lock(&self.pending_docs);
        if add {
            *pending.entry(key.to_owned()).or_insert(0) += 1;
        } else if let Some(count) = pending.get_mut(key) {
            *count -= 1;
            if *count == 0 {
                pending.remove(key);
            }
        }
    }

    /// Document writes the queue dropped (superseded by later ones) are no longer on their way.
    pub(super) fn docs_dropped(&self, keys: Vec<String>) {
        for key in keys {
            self.doc_pending(&key, false);
        }
    }

    /// The writer is done with a document write (`result`: see `Writer::execute`): a write Redis refused because the
    /// writer no longer leads is taken back by the copy.
    pub(super) fn doc_written(&self, op: &DocOp, result: Option<Result<Reply, String>>) {
        let key = op.key();
        if let (DocOp::Put(_), Some(Ok(Reply::Ok { payload, .. }))) = (op, result) {
            match serde_json::from_str::<DocumentPutAnswer>(&payload) {
                Ok(put) if !put.written => {
                    tracing::debug!(node = %self.id, %key, "Redis refused a document write: the writer no longer leads");
                    if let Some(docs) = self.docs() {
                        docs.doc_refused(key, (!put.json.is_empty()).then_some(put.json.as_str()), put.rev);
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(node = %self.id, %key, %error, "unreadable answer to a document write")
                }
            }
        }
        self.doc_pending(key, false);
    }

    /// Applies a published change of a document to the copy.
    pub(super) fn apply_document_change(&self, change: DocumentChange, own: bool) {
        let DocumentChange { key, json, version, rev, .. } = change;
        if json.is_empty() && !own && self.handle().is_some_and(|handle| handle.holds_dropped(&key)) {
            // The others took this node's entries of the topic for gone and removed its document; the entries are
            // still here, so the copy keeps it, to write it back once they are re-asserted.
            tracing::info!(node = %self.id, %key, "kept a document whose topic's entries on this node were taken for gone");
            return;
        }
        // Own writes too: the copy applies every write in Redis's order (see `DocSink`).
        if let Some(docs) = self.docs() {
            docs.doc_changed(&key, (!json.is_empty()).then_some(json.as_str()), version.parse().unwrap_or(0), rev, own);
        }
    }

    /// Reloads the copy from Redis (part of every full reload of the replica).
    pub(super) async fn load_docs(&self) -> Result<(), CallError> {
        let Some(docs) = self.docs() else { return Ok(()) };
        if let Reply::Ok { payload, .. } = self.call(Script::Docs, &self.generation(), &[]).await? {
            let list: DocumentList = serde_json::from_str(&payload)
                .map_err(|error| CallError::Refused(format!("unreadable document list: {error}")))?;
            let mut pending: HashSet<String> = lock(&self.pending_docs).keys().cloned().collect();
            // Topics whose entries here the others took for gone go on: their documents stay until re-asserted.
            if let Some(handle) = self.handle() {
                pending.extend(handle.dropped_topics().iter().map(|topic| topic.to_string()));
            }
            let resetting = lock(&self.reset_until).is_some_and(|until| tokio::time::Instant::now() < until);
            let loaded = list.0.into_iter().map(|doc| (doc.key, doc.json, doc.rev)).collect();
            docs.docs_loaded(loaded, &pending, !resetting);
        }
        Ok(())
    }

    /// After Redis lost its data: writes every document of the copy back, unless Redis already has a newer version.
    pub(super) async fn restore_docs(&self, generation: &str) -> Result<(), CallError> {
        let Some(docs) = self.docs() else { return Ok(()) };
        for doc in docs.docs_to_restore() {
            self.call(Script::DocPut, generation, &doc_args(&doc, self.config.doc_ttl, "restore")).await?;
        }
        Ok(())
    }

    /// After this node put back entries of `topics` that Redis no longer held (the others declared it dead, removed
    /// them, and may have removed the documents of topics left empty): writes back the documents of those topics that
    /// the copy kept (see [`Node::apply_document_change`] and [`Node::load_docs`]), unless the topic went on elsewhere
    /// meanwhile (Redis has the document, or entries of other nodes). A document Redis refuses is replaced in the copy
    /// by Redis's (or dropped).
    pub(super) async fn write_back_docs(&self, generation: &str, topics: &[&str]) -> Result<(), CallError> {
        let Some(docs) = self.docs() else { return Ok(()) };
        for doc in docs.docs_to_restore() {
            if !topics.contains(&doc.key.as_str()) {
                continue;
            }
            let args = doc_args(&doc, self.config.doc_ttl, "rejoin");
            let Reply::Ok { payload, .. } = self.call(Script::DocPut, generation, &args).await? else { continue };
            match serde_json::from_str::<DocumentPutAnswer>(&payload) {
                Ok(put) if put.written => {
                    tracing::info!(node = %self.id, key = %doc.key, "wrote back a document whose topic's entries stayed on this node");
                }
                Ok(put) => docs.doc_refused(&doc.key, (!put.json.is_empty()).then_some(put.json.as_str()), put.rev),
                Err(error) => {
                    tracing::warn!(node = %self.id, key = %doc.key, %error, "unreadable answer to a document write")
                }
            }
        }
        Ok(())
    }
}

/// The arguments of `DOC_PUT` for `doc` in `mode` (see [`super::scripts`]).
pub(super) fn doc_args(doc: &DocWrite, ttl: Duration, mode: &str) -> [String; 8] {
    let (member, fence) = doc.fence.as_ref().map_or((String::new(), 0), |(member, fence)| (member.to_string(), *fence));
    [
        doc.key.clone(),
        doc.version.to_string(),
        doc.updated_at.to_string(),
        doc.json.clone(),
        ttl.as_millis().max(1).to_string(),
        mode.to_owned(),
        member,
        fence.to_string(),
    ]
}

/// Documents counted as having writes of this node on their way (so a reload leaves them as they are) for as long
/// as it lives.
#[derive(Default)]
pub(super) struct PendingDocs<'a> {
    node: Option<&'a Node>,
    keys: Vec<String>,
}

impl<'a> PendingDocs<'a> {
    pub(super) fn hold(node: &'a Node, keys: Vec<String>) -> Self {
        for key in &keys {
            node.doc_pending(key, true);
        }
        PendingDocs { node: Some(node), keys }
    }
}

impl Drop for PendingDocs<'_> {
    fn drop(&mut self) {
        if let Some(node) = self.node {
            for key in &self.keys {
                node.doc_pending(key, false);
            }
        }
    }
}
