//! JSON the Lua scripts answer and publish, and its conversion to the replica's types.
//!
//! Lua's `cjson` encodes an empty table as `{}`, so every list here also accepts an empty object.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};

use crate::presence::replica::{JoinOutcome, RemoteEntry, RemoteEvent, RemoteOp, TopicSnapshot};
use crate::presence::{Authority, Meta};

/// An entry's data as stored in Redis: written only by the entry's node.
#[derive(Serialize, Deserialize)]
pub(super) struct EntryData {
    /// Presence key.
    pub k: Arc<str>,
    /// `phx_ref`.
    pub r: Arc<str>,
    /// Application metadata.
    pub f: Arc<Meta>,
}

impl EntryData {
    pub(super) fn encode(key: &Arc<str>, phx_ref: &Arc<str>, fields: &Arc<Meta>) -> String {
        #[derive(Serialize)]
        struct Borrowed<'a> {
            k: &'a str,
            r: &'a str,
            f: &'a Meta,
        }
        // A map with string keys always serialises.
        serde_json::to_string(&Borrowed { k: key, r: phx_ref, f: fields }).unwrap_or_default()
    }
}

/// A list, or `{}` (Lua's empty table).
fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Vec<T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrEmpty<T> {
        List(Vec<T>),
        Empty {},
    }
    Ok(match ListOrEmpty::deserialize(deserializer)? {
        ListOrEmpty::List(list) => list,
        ListOrEmpty::Empty {} => Vec::new(),
    })
}

/// An entry in a script's answer.
#[derive(Deserialize)]
pub(super) struct WireEntry {
    m: String,
    s: u64,
    c: u64,
    d: String,
}

impl WireEntry {
    fn into_remote(self) -> Option<RemoteEntry> {
        remote_entry(self.m, self.s, self.c, &self.d)
    }
}

fn remote_entry(member: String, seq: u64, ver: u64, data: &str) -> Option<RemoteEntry> {
    match serde_json::from_str::<EntryData>(data) {
        Ok(data) => {
            Some(RemoteEntry { member: Arc::from(member), key: data.k, phx_ref: data.r, fields: data.f, seq, ver })
        }
        Err(error) => {
            tracing::warn!(%member, %error, "skipped a presence entry whose data in Redis is not readable");
            None
        }
    }
}

/// `[member, fence]` of a topic's leader (`""` and 0 when none).
#[derive(Deserialize)]
pub(super) struct WireAuthority(String, u64);

impl WireAuthority {
    pub(super) fn into_authority(self, generation: &Arc<str>) -> Authority {
        Authority {
            generation: generation.clone(),
            member: (!self.0.is_empty()).then(|| Arc::from(self.0)),
            fence: self.1,
        }
    }
}

/// The answer to a join.
#[derive(Deserialize)]
pub(super) struct WireJoin {
    s: u64,
    v: u64,
    r: String,
    #[serde(deserialize_with = "list")]
    e: Vec<WireEntry>,
    a: WireAuthority,
}

impl WireJoin {
    pub(super) fn into_outcome(self, generation: &Arc<str>) -> JoinOutcome {
        JoinOutcome {
            seq: self.s,
            ver: self.v,
            reclaimed: (!self.r.is_empty()).then(|| Arc::from(self.r)),
            earlier: self.e.into_iter().filter_map(WireEntry::into_remote).collect(),
            authority: self.a.into_authority(generation),
        }
    }
}

/// The answer to a snapshot.
#[derive(Deserialize)]
pub(super) struct WireSnapshot {
    v: u64,
    #[serde(deserialize_with = "list")]
    e: Vec<WireEntry>,
    a: WireAuthority,
}

impl WireSnapshot {
    pub(super) fn into_snapshot(self, topic: Arc<str>, generation: &Arc<str>) -> TopicSnapshot {
        TopicSnapshot {
            topic,
            ver: self.v,
            entries: self.e.into_iter().filter_map(WireEntry::into_remote).collect(),
            authority: Some(self.a.into_authority(generation)),
        }
    }
}

/// The answer to an authority check.
#[derive(Deserialize)]
pub(super) struct WireCheck {
    pub ok: bool,
    pub d: String,
}

/// A list of strings (topics, or a flattened hash).
#[derive(Deserialize)]
pub(super) struct WireStrings(#[serde(deserialize_with = "list")] pub Vec<String>);

/// A shared document in the answer of `DOCS`.
#[derive(Deserialize)]
pub(super) struct WireDoc {
    pub k: String,
    pub j: String,
    pub r: u64,
}

/// The answer to `DOC_PUT`: whether the write was made, and the revision of the document Redis keeps (the write's
/// own, or, when refused, the document it keeps instead, `j` empty if none).
#[derive(Deserialize)]
pub(super) struct WireDocPut {
    pub ok: bool,
    pub r: u64,
    pub j: String,
}

/// The documents in the answer of `DOCS`.
#[derive(Deserialize)]
pub(super) struct WireDocs(#[serde(deserialize_with = "list")] pub Vec<WireDoc>);

/// One change in a published roster event.
#[derive(Deserialize)]
#[serde(tag = "k")]
pub(super) enum WireOp {
    #[serde(rename = "j")]
    Join { m: String, s: u64, c: u64, d: String },
    #[serde(rename = "l")]
    Leave { m: String },
    #[serde(rename = "u")]
    Update { m: String, c: u64, d: String },
    #[serde(rename = "m")]
    Move { m: String, s: u64, c: u64 },
}

impl WireOp {
    fn into_op(self) -> Option<RemoteOp> {
        Some(match self {
            WireOp::Join { m, s, c, d } => RemoteOp::Upsert(remote_entry(m, s, c, &d)?),
            WireOp::Leave { m } => RemoteOp::Leave { member: Arc::from(m) },
            WireOp::Update { m, c, d } => {
                let entry = remote_entry(m, 0, c, &d)?;
                RemoteOp::Update { member: entry.member, phx_ref: entry.phx_ref, fields: entry.fields, ver: c }
            }
            WireOp::Move { m, s, c } => RemoteOp::Move { member: Arc::from(m), seq: s, ver: c },
        })
    }
}

/// Anything published on the roster's channel.
#[derive(Deserialize)]
#[serde(tag = "x")]
pub(super) enum Incoming {
    /// A roster event.
    #[serde(rename = "r")]
    Roster {
        g: String,
        o: String,
        t: String,
        v: u64,
        f: bool,
        #[serde(deserialize_with = "list")]
        ops: Vec<WireOp>,
        a: WireAuthority,
    },
    /// A shared document changed to version `v` (`j` empty: removed) at revision `r`.
    #[serde(rename = "d")]
    Doc { g: String, o: String, k: String, j: String, v: String, r: u64 },
}

impl Incoming {
    /// The dataset generation the message was published in.
    pub(super) fn generation(&self) -> &str {
        match self {
            Incoming::Roster { g, .. } | Incoming::Doc { g, .. } => g,
        }
    }

    /// The node whose script published it.
    pub(super) fn origin(&self) -> &str {
        match self {
            Incoming::Roster { o, .. } | Incoming::Doc { o, .. } => o,
        }
    }
}

/// Converts a roster event.
pub(super) fn into_event(
    topic: String,
    ver: u64,
    first: bool,
    ops: Vec<WireOp>,
    a: WireAuthority,
    generation: &Arc<str>,
) -> RemoteEvent {
    RemoteEvent {
        topic: Arc::from(topic),
        ver,
        first,
        ops: ops.into_iter().filter_map(WireOp::into_op).collect(),
        authority: a.into_authority(generation),
    }
}

/// One of this node's entries as `RECONCILE` takes it.
#[derive(Serialize)]
pub(super) struct ReconcileEntry<'a> {
    pub m: &'a str,
    pub s: u64,
    pub d: String,
    pub e: bool,
    pub t: &'a str,
    pub x: bool,
}
