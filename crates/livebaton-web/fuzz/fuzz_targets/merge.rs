//! The per-field three-way merge of a save (`livebaton::editing::merge`): any three JSON values and any resolutions
//! merge without panicking; and over values of the form's shape (a few keys, a nested `data` object, no `.` in keys,
//! so field names are unambiguous) a merge never changes a field only "theirs" changed, keeps every field only "mine"
//! changed, applies a resolution only to a field both changed, conflicts on exactly the fields both changed
//! differently, and lists as `merged` exactly the fields saved from "theirs" over a different draft value. A rebase
//! keeps the draft's own changes and takes every other field from the saved row.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livebaton::editing::merge::{MergeError, Resolutions, Side, field_names, merge, rebase};
use serde_json::{Map, Value};

#[derive(arbitrary::Arbitrary, Debug)]
enum Input<'a> {
    /// Whatever JSON a client or a stored draft holds (unparsable text is `null`).
    Raw { base: Option<&'a str>, mine: &'a str, theirs: &'a str, resolve: Vec<(String, bool)> },
    /// Values of the form's shape.
    Form { base: Option<Values>, mine: Values, theirs: Values, picks: Vec<bool> },
}

/// A form's values: top-level fields and an optional nested `data` object.
#[derive(arbitrary::Arbitrary, Debug)]
struct Values {
    top: Vec<(u8, Small)>,
    data: Option<Vec<(u8, Small)>>,
}

#[derive(arbitrary::Arbitrary, Debug)]
enum Small {
    Null,
    Bool(bool),
    Number(i8),
    Text(u8),
    List(Vec<u8>),
    Object(u8, u8),
}

impl Small {
    fn json(&self) -> Value {
        match self {
            Small::Null => Value::Null,
            Small::Bool(flag) => Value::Bool(*flag),
            Small::Number(n) => Value::from(*n),
            Small::Text(n) => Value::from(format!("t{}", n % 4)),
            Small::List(items) => items.iter().take(3).map(|n| Value::from(n % 3)).collect(),
            Small::Object(key, n) => Value::Object(Map::from_iter([(format!("k{}", key % 2), Value::from(n % 2))])),
        }
    }
}

fn object(fields: &[(u8, Small)], names: &[&str]) -> Map<String, Value> {
    fields.iter().take(8).map(|(key, value)| (names[*key as usize % names.len()].to_owned(), value.json())).collect()
}

impl Values {
    fn json(&self) -> Value {
        let mut top = object(&self.top, &["title", "slug", "status", "data", "settings"]);
        if let Some(data) = &self.data {
            top.insert("data".into(), Value::Object(object(data, &["venue", "date", "price", "tags"])));
        }
        Value::Object(top)
    }
}

/// The value of field `name` (`outer` or `outer.inner`) in `values`, missing as null.
fn at(values: &Value, name: &str) -> Value {
    let found = match name.split_once('.') {
        None => values.get(name),
        Some((outer, inner)) => values.get(outer).and_then(|outer| outer.get(inner)),
    };
    found.cloned().unwrap_or(Value::Null)
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fuzz_target!(|input: Input| match input {
    Input::Raw { base, mine, theirs, resolve } => {
        let (base, mine, theirs) = (base.map(parse), parse(mine), parse(theirs));
        let resolve: Resolutions = resolve
            .into_iter()
            .take(64)
            .map(|(name, mine)| (name, if mine { Side::Mine } else { Side::Theirs }))
            .collect();
        let count = field_names(&[base.as_ref(), Some(&mine), Some(&theirs)]).len();
        match merge(base.as_ref(), &mine, &theirs, &resolve) {
            Ok(merged) => assert!(merged.values.is_object()),
            Err(MergeError::Conflicts(fields)) => assert!(!fields.is_empty()),
            Err(MergeError::TooManyResolutions { given, fields }) => assert!(given > fields && fields == count),
        }
        let rebased = rebase(base.as_ref(), &mine, &theirs);
        assert!(base.is_some() || rebased == mine);
    }
    Input::Form { base, mine, theirs, picks } => {
        let (base, mine, theirs) = (base.map(|base| base.json()), mine.json(), theirs.json());
        let names = field_names(&[base.as_ref(), Some(&mine), Some(&theirs)]);
        let resolve: Resolutions = names
            .iter()
            .zip(&picks)
            .map(|(name, mine)| (name.clone(), if *mine { Side::Mine } else { Side::Theirs }))
            .collect();
        let both_changed = |name: &str| {
            let (m, t) = (at(&mine, name), at(&theirs, name));
            let b = base.as_ref().map(|base| at(base, name));
            m != t && b.as_ref().is_none_or(|b| m != *b && t != *b)
        };
        match merge(base.as_ref(), &mine, &theirs, &resolve) {
            Ok(merged) => {
                for name in &names {
                    let (m, t, out) = (at(&mine, name), at(&theirs, name), at(&merged.values, name));
                    let b = base.as_ref().map(|base| at(base, name));
                    if m == t {
                        assert_eq!(out, t, "{name}: both sides agree");
                    } else if b.as_ref() == Some(&m) {
                        assert_eq!(out, t, "{name}: only theirs changed it, and the merge changed it back");
                    } else if b.as_ref() == Some(&t) {
                        assert_eq!(out, m, "{name}: only mine changed it, and the merge lost it");
                    } else {
                        let side = resolve[name];
                        assert_eq!(out, if side == Side::Mine { m.clone() } else { t.clone() }, "{name}: resolved");
                    }
                    assert_eq!(merged.merged.contains(name), out == t && out != m, "{name}: merged list");
                }
            }
            Err(MergeError::Conflicts(fields)) => {
                assert!(!fields.is_empty());
                for (name, conflict) in &fields {
                    assert!(both_changed(name), "{name} conflicts but was not changed on both sides");
                    assert!(!resolve.contains_key(name), "{name} was resolved");
                    assert_eq!((&conflict.mine, &conflict.theirs), (&at(&mine, name), &at(&theirs, name)));
                }
                for name in names.iter().filter(|name| both_changed(name) && !resolve.contains_key(*name)) {
                    assert!(fields.contains_key(name), "{name} changed on both sides but is not offered");
                }
            }
            Err(error) => panic!("{error}"),
        }
        if let Some(base) = &base {
            let rebased = rebase(Some(base), &mine, &theirs);
            for name in &names {
                let expected = if at(&mine, name) != at(base, name) { at(&mine, name) } else { at(&theirs, name) };
                assert_eq!(at(&rebased, name), expected, "{name}: rebase");
            }
        }
    }
});
