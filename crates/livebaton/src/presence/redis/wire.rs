//! JSON the Lua scripts answer and publish, and its conversion to the replica's types. Field names on the wire are
//! one letter (every event crosses Redis to every node); `#[serde(rename)]` maps them to the names used here.
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
    #[serde(rename = "k")]
    pub key: Arc<str>,
    /// `phx_ref`.
    #[serde(rename = "r")]
    pub phx_ref: Arc<str>,
    /// Application metadata.
    #[serde(rename = "f")]
    pub fields: Arc<Meta>,
    /// Whether the entry may lead its topic (absent: no).
    #[serde(rename = "e", default)]
    pub eligible: bool,
}

impl EntryData {
    pub(super) fn encode(key: &Arc<str>, phx_ref: &Arc<str>, fields: &Arc<Meta>, eligible: bool) -> String {
        #[derive(Serialize)]
        struct Borrowed<'a> {
            #[serde(rename = "k")]
            key: &'a str,
            #[serde(rename = "r")]
            phx_ref: &'a str,
            #[serde(rename = "f")]
            fields: &'a Meta,
            #[serde(rename = "e", skip_serializing_if = "std::ops::Not::not")]
            eligible: bool,
        }
        // A map with string keys always serialises.
        serde_json::to_string(&Borrowed { key, phx_ref, fields, eligible }).unwrap_or_default()
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
pub(super) struct ListedEntry {
    #[serde(rename = "m")]
    member: String,
    #[serde(rename = "s")]
    seq: u64,
    /// The topic version of the entry's last change.
    #[serde(rename = "c")]
    ver: u64,
    /// [`EntryData`], encoded.
    #[serde(rename = "d")]
    data: String,
}

impl ListedEntry {
    fn into_remote(self) -> Option<RemoteEntry> {
        remote_entry(self.member, self.seq, self.ver, &self.data)
    }
}

fn remote_entry(member: String, seq: u64, ver: u64, data: &str) -> Option<RemoteEntry> {
    match serde_json::from_str::<EntryData>(data) {
        Ok(data) => Some(RemoteEntry {
            member: Arc::from(member),
            key: data.key,
            phx_ref: data.phx_ref,
            fields: data.fields,
            eligible: data.eligible,
            seq,
            ver,
        }),
        Err(error) => {
            tracing::warn!(%member, %error, "skipped a presence entry whose data in Redis is not readable");
            None
        }
    }
}

/// A topic's leader and its fence, as the array `[member, fence]` (`""` and 0 when none).
#[derive(Deserialize)]
pub(super) struct Leader {
    member: String,
    fence: u64,
}

impl Leader {
    pub(super) fn into_authority(self, generation: &Arc<str>) -> Authority {
        Authority {
            generation: generation.clone(),
            member: (!self.member.is_empty()).then(|| Arc::from(self.member)),
            fence: self.fence,
        }
    }
}

/// The answer to a join.
#[derive(Deserialize)]
pub(super) struct JoinAnswer {
    #[serde(rename = "s")]
    seq: u64,
    #[serde(rename = "v")]
    ver: u64,
    /// The lingering member the join reclaimed, or `""`.
    #[serde(rename = "r")]
    reclaimed: String,
    /// Entries changed since the version the joiner's replica has.
    #[serde(rename = "e", deserialize_with = "list")]
    earlier: Vec<ListedEntry>,
    #[serde(rename = "a")]
    leader: Leader,
}

impl JoinAnswer {
    pub(super) fn into_outcome(self, generation: &Arc<str>) -> JoinOutcome {
        JoinOutcome {
            seq: self.seq,
            ver: self.ver,
            reclaimed: (!self.reclaimed.is_empty()).then(|| Arc::from(self.reclaimed)),
            earlier: self.earlier.into_iter().filter_map(ListedEntry::into_remote).collect(),
            authority: self.leader.into_authority(generation),
        }
    }
}

/// The answer to a snapshot.
#[derive(Deserialize)]
pub(super) struct SnapshotAnswer {
    #[serde(rename = "v")]
    ver: u64,
    #[serde(rename = "e", deserialize_with = "list")]
    entries: Vec<ListedEntry>,
    #[serde(rename = "a")]
    leader: Leader,
}

impl SnapshotAnswer {
    pub(super) fn into_snapshot(self, topic: Arc<str>, generation: &Arc<str>) -> TopicSnapshot {
        TopicSnapshot {
            topic,
            ver: self.ver,
            entries: self.entries.into_iter().filter_map(ListedEntry::into_remote).collect(),
            authority: Some(self.leader.into_authority(generation)),
        }
    }
}

/// The answer to an authority check.
#[derive(Deserialize)]
pub(super) struct CheckAnswer {
    /// Whether the authority checked is the topic's current one.
    #[serde(rename = "ok")]
    pub valid: bool,
    /// The current leader's [`EntryData`], encoded (`""` when none).
    #[serde(rename = "d")]
    pub leader_data: String,
}

/// A list of strings (topics, or a flattened hash).
#[derive(Deserialize)]
pub(super) struct StringList(#[serde(deserialize_with = "list")] pub Vec<String>);

/// A shared document in the answer of `DOCS`.
#[derive(Deserialize)]
pub(super) struct StoredDocument {
    #[serde(rename = "k")]
    pub key: String,
    #[serde(rename = "j")]
    pub json: String,
    #[serde(rename = "r")]
    pub rev: u64,
}

/// The documents in the answer of `DOCS`.
#[derive(Deserialize)]
pub(super) struct DocumentList(#[serde(deserialize_with = "list")] pub Vec<StoredDocument>);

/// The answer to `DOC_PUT`: whether the write was made, and the revision of the document Redis keeps (the write's
/// own, or, when refused, the document it keeps instead, `json` empty if none).
#[derive(Deserialize)]
pub(super) struct DocumentPutAnswer {
    #[serde(rename = "ok")]
    pub written: bool,
    #[serde(rename = "r")]
    pub rev: u64,
    #[serde(rename = "j")]
    pub json: String,
}

/// One change in a published roster event.
#[derive(Deserialize)]
#[serde(tag = "k")]
pub(super) enum EventOp {
    #[serde(rename = "j")]
    Join {
        #[serde(rename = "m")]
        member: String,
        #[serde(rename = "s")]
        seq: u64,
        #[serde(rename = "c")]
        ver: u64,
        #[serde(rename = "d")]
        data: String,
    },
    #[serde(rename = "l")]
    Leave {
        #[serde(rename = "m")]
        member: String,
    },
    #[serde(rename = "u")]
    Update {
        #[serde(rename = "m")]
        member: String,
        #[serde(rename = "c")]
        ver: u64,
        #[serde(rename = "d")]
        data: String,
    },
    #[serde(rename = "m")]
    Move {
        #[serde(rename = "m")]
        member: String,
        #[serde(rename = "s")]
        seq: u64,
        #[serde(rename = "c")]
        ver: u64,
    },
}

impl EventOp {
    fn into_op(self) -> Option<RemoteOp> {
        Some(match self {
            EventOp::Join { member, seq, ver, data } => RemoteOp::Upsert(remote_entry(member, seq, ver, &data)?),
            EventOp::Leave { member } => RemoteOp::Leave { member: Arc::from(member) },
            EventOp::Update { member, ver, data } => {
                let entry = remote_entry(member, 0, ver, &data)?;
                RemoteOp::Update { member: entry.member, phx_ref: entry.phx_ref, fields: entry.fields, ver }
            }
            EventOp::Move { member, seq, ver } => RemoteOp::Move { member: Arc::from(member), seq, ver },
        })
    }
}

/// A roster event: changes of one topic's entries, numbered by the topic's version.
#[derive(Deserialize)]
pub(super) struct RosterEvent {
    #[serde(rename = "g")]
    generation: String,
    #[serde(rename = "o")]
    origin: String,
    #[serde(rename = "t")]
    topic: String,
    #[serde(rename = "v")]
    ver: u64,
    /// The event is the topic's first (it had no entries before).
    #[serde(rename = "f")]
    first: bool,
    #[serde(deserialize_with = "list")]
    ops: Vec<EventOp>,
    #[serde(rename = "a")]
    leader: Leader,
}

impl RosterEvent {
    /// The event for the replica.
    pub(super) fn into_event(self, generation: &Arc<str>) -> RemoteEvent {
        RemoteEvent {
            topic: Arc::from(self.topic),
            ver: self.ver,
            first: self.first,
            ops: self.ops.into_iter().filter_map(EventOp::into_op).collect(),
            authority: self.leader.into_authority(generation),
        }
    }
}

/// A shared document changed to version `version` (`json` empty: removed) at revision `rev`.
#[derive(Deserialize)]
pub(super) struct DocumentChange {
    #[serde(rename = "g")]
    generation: String,
    #[serde(rename = "o")]
    origin: String,
    #[serde(rename = "k")]
    pub key: String,
    #[serde(rename = "j")]
    pub json: String,
    #[serde(rename = "v")]
    pub version: String,
    #[serde(rename = "r")]
    pub rev: u64,
}

/// Anything published on the roster's channel.
#[derive(Deserialize)]
#[serde(tag = "x")]
pub(super) enum Incoming {
    /// A roster event.
    #[serde(rename = "r")]
    Roster(RosterEvent),
    /// A shared document changed.
    #[serde(rename = "d")]
    Document(DocumentChange),
}

impl Incoming {
    /// The dataset generation the message was published in.
    pub(super) fn generation(&self) -> &str {
        match self {
            Incoming::Roster(RosterEvent { generation, .. })
            | Incoming::Document(DocumentChange { generation, .. }) => generation,
        }
    }

    /// The node whose script published it.
    pub(super) fn origin(&self) -> &str {
        match self {
            Incoming::Roster(RosterEvent { origin, .. }) | Incoming::Document(DocumentChange { origin, .. }) => origin,
        }
    }
}

/// One of this node's entries as `RECONCILE` takes it.
#[derive(Serialize)]
pub(super) struct ReconcileEntry<'a> {
    #[serde(rename = "m")]
    pub member: &'a str,
    #[serde(rename = "s")]
    pub seq: u64,
    /// [`EntryData`], encoded.
    #[serde(rename = "d")]
    pub data: String,
    #[serde(rename = "e")]
    pub eligible: bool,
    /// The entry's tab id, or `""`.
    #[serde(rename = "t")]
    pub tab: &'a str,
    /// The entry is lingering (its tab closed, within the leave grace).
    #[serde(rename = "x")]
    pub closing: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_answers_read_as_the_scripts_write_them() {
        let event = r#"{"x":"r","g":"G","o":"n~1","t":"room","v":3,"f":false,"a":["n~1#a",7],
            "ops":[{"k":"j","m":"n~1#a","s":1,"c":3,"d":"{\"k\":\"u\",\"r\":\"R\",\"f\":{}}"},{"k":"l","m":"n~2#b"}]}"#;
        let Ok(incoming @ Incoming::Roster(_)) = serde_json::from_str::<Incoming>(event) else { panic!("an event") };
        assert_eq!((incoming.generation(), incoming.origin()), ("G", "n~1"));
        let Incoming::Roster(event) = incoming else { unreachable!() };
        let event = event.into_event(&Arc::from("G"));
        assert_eq!((event.ver, event.ops.len(), event.authority.fence), (3, 2, 7));
        assert_eq!(event.authority.member.as_deref(), Some("n~1#a"));

        let document = r#"{"x":"d","g":"G","o":"n~2","k":"room","j":"","v":"4","r":9}"#;
        let Ok(Incoming::Document(change)) = serde_json::from_str::<Incoming>(document) else { panic!("a document") };
        assert_eq!(
            (change.key.as_str(), change.json.as_str(), change.version.as_str(), change.rev),
            ("room", "", "4", 9)
        );

        let join: JoinAnswer = serde_json::from_str(r#"{"s":5,"v":6,"r":"","e":{},"a":["",0]}"#).unwrap();
        let outcome = join.into_outcome(&Arc::from("G"));
        assert_eq!((outcome.seq, outcome.ver, outcome.earlier.len()), (5, 6, 0));
        assert!(outcome.reclaimed.is_none() && outcome.authority.member.is_none());
    }

    #[test]
    fn entries_are_written_with_the_scripts_field_names() {
        let data = EntryData::encode(&Arc::from("u"), &Arc::from("R"), &Arc::new(Meta::new()), true);
        assert_eq!(data, r#"{"k":"u","r":"R","f":{},"e":true}"#);
        let plain = EntryData::encode(&Arc::from("u"), &Arc::from("R"), &Arc::new(Meta::new()), false);
        assert_eq!(plain, r#"{"k":"u","r":"R","f":{}}"#);
        let read: EntryData = serde_json::from_str(&data).unwrap();
        assert!(read.eligible && !serde_json::from_str::<EntryData>(&plain).unwrap().eligible);
        let entry = ReconcileEntry { member: "m", seq: 1, data, eligible: true, tab: "", closing: false };
        let json = serde_json::to_value(&entry).unwrap();
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 6);
        for key in ["m", "s", "d", "e", "t", "x"] {
            assert!(keys.contains(&key), "{key} in {json}");
        }
    }
}
