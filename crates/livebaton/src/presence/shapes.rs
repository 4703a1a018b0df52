//! Phoenix.Presence's data shapes: `key → {metas: [meta, …]}` lists and `{joins, leaves}` diffs.
//!
//! Every meta carries `phx_ref` (unique per tracked entry and per version of it), `phx_ref_prev` after an update, and
//! `seq`, the entry's place in the topic's total order (lower is earlier). Keys keep the order of their earliest entry,
//! and the metas of one key are in `seq` order, so a client that walks the JSON object in order sees join order.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use super::meta::Meta;

/// Keys the tracker writes itself; values an application puts under these names are replaced.
pub const RESERVED_META_KEYS: [&str; 3] = ["phx_ref", "phx_ref_prev", "seq"];

/// One meta as Phoenix sends it: the application's fields plus `phx_ref`, `phx_ref_prev` and `seq`.
#[derive(Clone, Debug, PartialEq)]
pub struct PresenceMeta {
    /// Unique reference of this version of the entry.
    pub phx_ref: Arc<str>,
    /// The reference this version replaced, after an update.
    pub phx_ref_prev: Option<Arc<str>>,
    /// Place in the topic's total order, assigned by the backend at track time.
    pub seq: u64,
    /// The application's fields, shared rather than copied between the roster, lists and diffs.
    pub fields: Arc<Meta>,
}

impl PresenceMeta {
    /// A field of the application's metadata.
    pub fn get(&self, field: &str) -> Option<&serde_json::Value> {
        self.fields.get(field)
    }

    /// A string field of the application's metadata.
    pub fn get_str(&self, field: &str) -> Option<&str> {
        self.fields.get(field).and_then(serde_json::Value::as_str)
    }
}

impl Serialize for PresenceMeta {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let own = self.fields.keys().filter(|key| !RESERVED_META_KEYS.contains(&key.as_str())).count();
        let mut map = serializer.serialize_map(Some(own + 2 + usize::from(self.phx_ref_prev.is_some())))?;
        for (key, value) in self.fields.iter() {
            if !RESERVED_META_KEYS.contains(&key.as_str()) {
                map.serialize_entry(key, value)?;
            }
        }
        map.serialize_entry("phx_ref", &*self.phx_ref)?;
        if let Some(prev) = &self.phx_ref_prev {
            map.serialize_entry("phx_ref_prev", &**prev)?;
        }
        map.serialize_entry("seq", &self.seq)?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for PresenceMeta {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut fields = Meta::deserialize(deserializer)?;
        let phx_ref = match fields.remove("phx_ref") {
            Some(serde_json::Value::String(value)) => Arc::from(value),
            _ => return Err(D::Error::missing_field("phx_ref")),
        };
        let phx_ref_prev = match fields.remove("phx_ref_prev") {
            Some(serde_json::Value::String(value)) => Some(Arc::from(value)),
            _ => None,
        };
        let seq = fields.remove("seq").and_then(|value| value.as_u64()).unwrap_or(0);
        Ok(PresenceMeta { phx_ref, phx_ref_prev, seq, fields: Arc::new(fields) })
    }
}

/// The metas of one key, owned: Phoenix's `%{metas: [...]}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PresenceEntry {
    /// One meta per tracked entry under this key, in `seq` order.
    pub metas: Vec<Arc<PresenceMeta>>,
}

/// The metas of one key inside a [`PresenceList`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PresenceEntryRef<'a> {
    /// One meta per tracked entry under this key, in `seq` order.
    pub metas: &'a [Arc<PresenceMeta>],
}

impl Serialize for PresenceEntryRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("metas", self.metas)?;
        map.end()
    }
}

/// Phoenix's presence map `key → {metas: [...]}`, keeping key order (earliest entry first).
///
/// Stored flat, one allocation for keys and one for metas (each key owns a contiguous range of metas), because listing
/// a 10,000-member topic must cost microseconds per member, not an allocation each.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PresenceList {
    keys: Vec<(Arc<str>, Range<usize>)>,
    metas: Vec<Arc<PresenceMeta>>,
}

impl PresenceList {
    /// Groups `(key, meta)` pairs by key; keys keep the order in which they first appear.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (Arc<str>, Arc<PresenceMeta>)>) -> Self {
        // Diffs usually hold one or two keys: search those directly and index only larger lists.
        const INDEX_FROM: usize = 16;
        let pairs = pairs.into_iter();
        let mut grouped: Vec<(Arc<str>, Vec<Arc<PresenceMeta>>)> = Vec::with_capacity(pairs.size_hint().0);
        let mut index: HashMap<Arc<str>, usize> = HashMap::new();
        let mut count = 0;
        for (key, meta) in pairs {
            count += 1;
            let found = if grouped.len() < INDEX_FROM {
                grouped.iter().position(|(existing, _)| *existing == key)
            } else {
                if index.is_empty() {
                    index.extend(grouped.iter().enumerate().map(|(at, (existing, _))| (existing.clone(), at)));
                }
                index.get(&key).copied()
            };
            match found {
                Some(at) => grouped[at].1.push(meta),
                None => {
                    if !index.is_empty() {
                        index.insert(key.clone(), grouped.len());
                    }
                    grouped.push((key, vec![meta]));
                }
            }
        }
        let mut list = PresenceList { keys: Vec::with_capacity(grouped.len()), metas: Vec::with_capacity(count) };
        for (key, metas) in grouped {
            let start = list.metas.len();
            list.metas.extend(metas);
            list.keys.push((key, start..list.metas.len()));
        }
        list
    }

    /// Builds a list from pairs whose keys are known to be all different, without grouping.
    pub(crate) fn from_distinct_pairs(pairs: impl ExactSizeIterator<Item = (Arc<str>, Arc<PresenceMeta>)>) -> Self {
        let mut list = PresenceList { keys: Vec::with_capacity(pairs.len()), metas: Vec::with_capacity(pairs.len()) };
        for (at, (key, meta)) in pairs.enumerate() {
            list.keys.push((key, at..at + 1));
            list.metas.push(meta);
        }
        list
    }

    /// The metas of `key`, if present (a linear search: meant for diffs and tests, not for large lists).
    pub fn get(&self, key: &str) -> Option<PresenceEntryRef<'_>> {
        self.keys.iter().find(|(candidate, _)| &**candidate == key).map(|(_, range)| self.entry(range))
    }

    fn entry(&self, range: &Range<usize>) -> PresenceEntryRef<'_> {
        PresenceEntryRef { metas: &self.metas[range.clone()] }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Keys and their metas, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, PresenceEntryRef<'_>)> {
        self.keys.iter().map(|(key, range)| (&**key, self.entry(range)))
    }

    /// Every `(key, meta)` pair, key by key.
    pub fn metas(&self) -> impl Iterator<Item = (&str, &Arc<PresenceMeta>)> {
        self.keys.iter().flat_map(|(key, range)| self.metas[range.clone()].iter().map(move |meta| (&**key, meta)))
    }

    /// Number of metas over all keys.
    pub fn meta_count(&self) -> usize {
        self.metas.len()
    }

    /// Splits the list into consecutive lists of at most `max_metas` metas each, keeping the order; a key with more
    /// metas than that is split across lists (a client merges a key's metas from a later join). A large room's
    /// `presence_state` is sent this way: one big frame would stay allocated in the connection's write buffer, and
    /// could exceed its limit.
    pub fn chunks(&self, max_metas: usize) -> Vec<PresenceList> {
        let max_metas = max_metas.max(1);
        let mut chunks = Vec::new();
        let mut current = PresenceList::default();
        for (key, range) in &self.keys {
            let mut metas = &self.metas[range.clone()];
            while !metas.is_empty() {
                if current.metas.len() == max_metas {
                    chunks.push(std::mem::take(&mut current));
                }
                let take = metas.len().min(max_metas - current.metas.len());
                let start = current.metas.len();
                current.metas.extend(metas[..take].iter().cloned());
                current.keys.push((key.clone(), start..current.metas.len()));
                metas = &metas[take..];
            }
        }
        if !current.is_empty() || chunks.is_empty() {
            chunks.push(current);
        }
        chunks
    }
}

impl Serialize for PresenceList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.keys.len()))?;
        for (key, entry) in self.iter() {
            map.serialize_entry(key, &entry)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for PresenceList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = PresenceList;
            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a map of presence key to {metas: [...]}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<PresenceList, A::Error> {
                let mut list = PresenceList::default();
                while let Some((key, entry)) = access.next_entry::<String, PresenceEntry>()? {
                    let start = list.metas.len();
                    list.metas.extend(entry.metas);
                    list.keys.push((Arc::from(key), start..list.metas.len()));
                }
                Ok(list)
            }
        }
        deserializer.deserialize_map(ListVisitor)
    }
}

/// Phoenix's `presence_diff` payload. Clients apply joins first, then leaves; an update is a leave of the old meta and
/// a join of the new one (carrying `phx_ref_prev`) in the same diff.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PresenceDiff {
    /// Metas that appeared.
    pub joins: PresenceList,
    /// Metas that went away.
    pub leaves: PresenceList,
}

/// Presence diffs are local: every node computes and delivers its own (as Phoenix.Presence does), so no codec.
impl crate::pubsub::Message for PresenceDiff {
    fn event(&self) -> &str {
        "presence_diff"
    }

    fn write_payload(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, self)
    }
}

impl PresenceDiff {
    /// Whether the diff changes nothing.
    pub fn is_empty(&self) -> bool {
        self.joins.is_empty() && self.leaves.is_empty()
    }
}
