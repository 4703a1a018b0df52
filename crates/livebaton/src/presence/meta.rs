//! [`Meta`]: a presence entry's application fields, a JSON object kept small.
//!
//! Not `serde_json::Map`: without serde_json's `preserve_order` it is a `BTreeMap`, whose first field allocates a
//! whole B-tree node (hundreds of bytes), and every tracked entry keeps its meta for as long as it is present. A room member's meta has two
//! or three fields, so a sorted vector trimmed to its length is the whole map (about 56 bytes a field), found by
//! binary search. Fields are kept sorted by key, as `serde_json::Map` keeps them, so the JSON is the same byte for
//! byte.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Application metadata of a presence entry (a JSON object), with `serde_json::Map`'s methods for what presence
/// needs: [`Meta::new`], [`Meta::insert`], [`Meta::get`], [`Meta::remove`], iteration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Sorted by key, keys unique.
    fields: Vec<(String, Value)>,
}

impl Meta {
    /// An empty meta.
    pub fn new() -> Self {
        Meta::default()
    }

    /// Sets `key` to `value`, returning the value it replaces.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        match self.position(&key) {
            Ok(index) => Some(std::mem::replace(&mut self.fields[index].1, value)),
            Err(index) => {
                self.fields.insert(index, (key, value));
                None
            }
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).ok().map(|index| &self.fields[index].1)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.position(key).ok().map(|index| self.fields.remove(index).1)
    }

    /// Whether `key` is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// The fields in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.fields.iter().map(|(key, value)| (key, value))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.fields.iter().map(|(key, _)| key)
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there is no field.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Gives back spare room: the tracker calls it once before keeping a meta for an entry's lifetime.
    pub fn shrink_to_fit(&mut self) {
        self.fields.shrink_to_fit();
    }

    /// Room for fields without allocating (for tests of the tracker's memory).
    pub fn capacity(&self) -> usize {
        self.fields.capacity()
    }

    /// Trimmed and shared: how the tracker keeps a meta for an entry's lifetime.
    pub(crate) fn into_kept(mut self) -> std::sync::Arc<Meta> {
        self.shrink_to_fit();
        std::sync::Arc::new(self)
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.fields.binary_search_by(|(field, _)| field.as_str().cmp(key))
    }
}

/// `meta["name"]`, as on a `serde_json::Map`: panics when the field is missing.
impl std::ops::Index<&str> for Meta {
    type Output = Value;

    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or_else(|| panic!("no field {key:?} in the meta"))
    }
}

impl FromIterator<(String, Value)> for Meta {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(fields: I) -> Self {
        let mut meta = Meta::new();
        for (key, value) in fields {
            meta.insert(key, value);
        }
        meta
    }
}

impl From<serde_json::Map<String, Value>> for Meta {
    fn from(map: serde_json::Map<String, Value>) -> Self {
        // Inserted one by one rather than assumed sorted: with serde_json's `preserve_order` feature (which any crate
        // in a build can turn on) a map iterates in insertion order.
        let mut meta: Meta = map.into_iter().collect();
        meta.shrink_to_fit();
        meta
    }
}

impl From<Meta> for serde_json::Map<String, Value> {
    fn from(meta: Meta) -> Self {
        meta.fields.into_iter().collect()
    }
}

impl From<Meta> for Value {
    fn from(meta: Meta) -> Self {
        Value::Object(meta.into())
    }
}

impl Serialize for Meta {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.fields.len()))?;
        for (key, value) in &self.fields {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Meta {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MetaVisitor;

        impl<'de> Visitor<'de> for MetaVisitor {
            type Value = Meta;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Meta, A::Error> {
                let mut meta = Meta::new();
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    meta.insert(key, value);
                }
                meta.shrink_to_fit();
                Ok(meta)
            }
        }

        deserializer.deserialize_map(MetaVisitor)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_are_kept_in_key_order_and_replaced_in_place() {
        let mut meta = Meta::new();
        assert_eq!(meta.insert("name".into(), json!("Alice")), None);
        meta.insert("joined_at".into(), json!(1));
        meta.insert("a".into(), json!(true));
        assert_eq!(meta.insert("name".into(), json!("Bob")), Some(json!("Alice")));
        assert_eq!(meta.keys().map(String::as_str).collect::<Vec<_>>(), ["a", "joined_at", "name"]);
        assert_eq!(meta.get("name"), Some(&json!("Bob")));
        assert!(meta.contains_key("a") && !meta.contains_key("b"));
        assert_eq!(meta.remove("a"), Some(json!(true)));
        assert_eq!(meta.remove("a"), None);
        assert_eq!(meta.len(), 2);
    }

    proptest::proptest! {
        /// The JSON is the same as `serde_json::Map`'s, byte for byte, and reads back to the same meta.
        #[test]
        fn json_is_the_same_as_a_serde_json_map(fields in proptest::collection::vec(("[a-z_]{0,6}", 0i64..100), 0..8)) {
            let map: serde_json::Map<String, Value> = fields.iter().map(|(key, value)| (key.clone(), json!(value))).collect();
            let meta: Meta = fields.iter().map(|(key, value)| (key.clone(), json!(value))).collect();
            let encoded = serde_json::to_string(&meta).unwrap();
            proptest::prop_assert_eq!(&encoded, &serde_json::to_string(&map).unwrap());
            proptest::prop_assert_eq!(&serde_json::from_str::<Meta>(&encoded).unwrap(), &meta);
            proptest::prop_assert_eq!(Meta::from(map.clone()), meta.clone());
            proptest::prop_assert_eq!(serde_json::Map::from(meta), map);
        }
    }
}
