//! Re-asserting this node's entries ([`Node::reconcile`]): making Redis hold exactly the node's live entries again
//! after Redis lost its data (at their old seqs), after the others declared the node dead (at the back), or after the
//! write queue folded the node's changes together (see [`super::queue`]).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::call::{CallError, Reply};
use super::docs::PendingDocs;
use super::node::Node;
use super::queue::Mode;
use super::scripts::Script;
use super::wire::{EntryData, ReconcileEntry, StringList};
use crate::presence::replica::OwnEntry;

impl Node {
    /// Makes Redis hold exactly this node's live entries; returns the number of the last submitted change the list of
    /// entries includes. Runs on the writer, so no own change is written meanwhile.
    pub(super) async fn reconcile(&self, mode: Mode) -> Result<u64, CallError> {
        let generation = self.generation();
        let sent = Instant::now();
        self.call(Script::Revive, &generation, &[self.config.lease.as_millis().to_string()]).await?;
        self.lease_ok(sent);
        let Some(handle) = self.handle() else { return Ok(0) };
        let Some((entries, mark)) = handle.own_entries(|| self.submitted.load(Ordering::SeqCst)) else {
            return Ok(0);
        };
        let owned = match self.call(Script::Owned, &generation, &[]).await? {
            Reply::Ok { payload, .. } => {
                serde_json::from_str::<StringList>(&payload).map(|list| list.0).unwrap_or_default()
            }
            _ => Vec::new(),
        };
        let local: HashSet<&str> = entries.iter().map(|entry| &*entry.member).collect();
        // The documents of this node's topics stay as the copy has them until the re-assert is done: a reload running
        // meanwhile must not drop one that Redis lost with this node's entries (see `Node::write_back_docs`).
        let _held = match (mode, self.docs()) {
            (Mode::Restore, _) | (_, None) => PendingDocs::default(),
            (_, Some(docs)) => {
                let topics: HashSet<&str> = entries.iter().map(|entry| &*entry.topic).collect();
                let keys = docs.docs_to_restore().into_iter().map(|doc| doc.key).filter(|key| topics.contains(&**key));
                PendingDocs::hold(self, keys.collect())
            }
        };
        let mut topics: BTreeMap<&str, (Vec<&OwnEntry>, Vec<&str>)> = BTreeMap::new();
        for entry in &entries {
            topics.entry(&entry.topic).or_default().0.push(entry);
        }
        for pair in owned.chunks(2) {
            if let [member, topic] = pair {
                if !local.contains(member.as_str()) {
                    topics.entry(topic).or_default().1.push(member);
                }
            }
        }
        let mut written = 0usize;
        let mut put_back: Vec<&str> = Vec::new();
        for (topic, (mut own, stale)) in topics {
            own.sort_by_key(|entry| entry.seq);
            let listed: Vec<ReconcileEntry<'_>> = own
                .iter()
                .map(|entry| ReconcileEntry {
                    member: &entry.member,
                    seq: entry.seq,
                    data: EntryData::encode(&entry.key, &entry.phx_ref, &entry.fields, entry.eligible),
                    eligible: entry.eligible,
                    tab: entry.tab.as_deref().unwrap_or_default(),
                    closing: entry.closing,
                })
                .collect();
            let args = [
                topic.to_owned(),
                mode.as_str().to_owned(),
                serde_json::to_string(&listed).unwrap_or_else(|_| "[]".to_owned()),
                serde_json::to_string(&stale).unwrap_or_else(|_| "[]".to_owned()),
            ];
            if let Reply::Ok { payload, .. } = self.call(Script::Reconcile, &generation, &args).await? {
                let mut counts = payload.split(' ').map(|count| count.parse::<usize>().unwrap_or(0));
                written += counts.next().unwrap_or(0);
                if counts.next().unwrap_or(0) > 0 {
                    put_back.push(topic);
                }
            }
        }
        if mode == Mode::Restore {
            self.restore_docs(&generation).await?;
        } else if !put_back.is_empty() {
            self.write_back_docs(&generation, &put_back).await?;
        }
        self.stats.reconciles.fetch_add(1, Ordering::Relaxed);
        tracing::info!(node = %self.id, mode = mode.as_str(), entries = entries.len(), changes = written, "re-asserted this node's presence entries");
        Ok(mark)
    }
}
