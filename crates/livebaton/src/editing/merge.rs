//! The three-way merge of a save whose row moved since its draft began: per field, from the draft's base values (the
//! row as the draft started from it), the draft ("mine") and the row as it is now ("theirs"). Pure: no I/O, no
//! clock; the application reads the row, calls [`merge`], and commits the result fenced as any save.
//!
//! **Fields.** Values are JSON objects (anything else counts as an empty object). Each member is one field, named by
//! its key, except a member that is an object on every side that has it non-null: each of *its* members is a field,
//! named `outer.inner` (a form's `data` object holding one field per key: `data.venue`). Deeper objects, arrays and scalars
//! are single values. Keys should not contain `.`, or two fields could share a name. A field missing from a side is
//! null there: absent and null are the same value; a nested object that is null or missing is an empty one.
//!
//! **Rules**, per field, with base `b`, mine `m` and theirs `t`:
//! - `m == t`: nothing to merge;
//! - `m == b`: only theirs changed it: theirs;
//! - `t == b`: only mine changed it: mine;
//! - otherwise both changed it, differently: a **conflict**, unless a resolution picks `mine` or `theirs`.
//!
//! Without base values (the caller does not know the row the draft started from) every field where mine and theirs
//! differ is a conflict: the merge never guesses who changed what. So a merge never writes a field only theirs changed
//! (the property tests in this file check it) and writes mine only where mine changed it or the user chose it.
//!
//! **Output.** The merged values are theirs with mine's winning fields applied (a field mine left out is removed), so
//! members that are no field of either side's choosing keep the current row's value. `merged` names the fields whose
//! saved value is theirs where the draft had another: what the draft's author must now see changed in the form.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Which value a conflicting field keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The draft's value.
    Mine,
    /// The current row's value.
    Theirs,
}

impl Side {
    /// `"mine"` or `"theirs"`, as the protocol spells it.
    pub fn parse(text: &str) -> Option<Side> {
        match text {
            "mine" => Some(Side::Mine),
            "theirs" => Some(Side::Theirs),
            _ => None,
        }
    }
}

/// The user's choices for conflicting fields, by field name. A choice for a field that is not in conflict is ignored.
pub type Resolutions = BTreeMap<String, Side>;

/// One field both sides changed, differently. Missing values are null.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldConflict {
    /// The value the draft started from (null as well when the base is not known).
    pub base: Value,
    /// The draft's value.
    pub mine: Value,
    /// The current row's value.
    pub theirs: Value,
}

/// A save from an editing session: the values to save and the row they started from.
pub struct SaveRequest<'a, V> {
    /// The values to save ("mine"): the draft, or what the client sent.
    pub mine: &'a V,
    /// The row version they started from.
    pub base_version: i64,
    /// That row's values in merge shape (see the module documentation), when known.
    pub base_values: Option<&'a Value>,
    /// The user's choice for fields in conflict.
    pub resolve: &'a Resolutions,
    /// The row version the choices were made against (the conflict's `lock_version`).
    pub resolved_against: Option<i64>,
}

/// A committed save.
#[derive(Debug)]
pub struct Saved<Row> {
    /// The row as saved.
    pub row: Row,
    /// Fields saved with the row's newer value, not the draft's (sorted names): what the form must now show changed.
    pub merged: Vec<String>,
}

/// A save that both sides changed some fields of: nothing was written.
#[derive(Debug)]
pub struct MergeConflict<Row> {
    /// The row as it is now.
    pub current: Row,
    /// Only the fields both sides changed, by name. Empty only when the row kept changing during the save.
    pub fields: BTreeMap<String, FieldConflict>,
}

/// A merge that left no conflict.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    /// The values to save: theirs, with mine's winning fields applied.
    pub values: Value,
    /// Fields whose saved value came from theirs and differs from the draft's, by name, sorted.
    pub merged: Vec<String>,
}

/// Why a merge has nothing to save.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum MergeError {
    /// Fields both sides changed and no resolution covers: only those, by name.
    #[error("{} field(s) changed on both sides", .0.len())]
    Conflicts(BTreeMap<String, FieldConflict>),
    /// More resolutions than the values have fields (the client's input is bounded by the form's size).
    #[error("{given} resolutions for {fields} fields")]
    TooManyResolutions {
        /// Resolutions given.
        given: usize,
        /// Fields the values have.
        fields: usize,
    },
}

/// A field: a top-level member, or a member of a top-level object (`outer.inner`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Path {
    outer: String,
    inner: Option<String>,
}

impl Path {
    fn name(&self) -> String {
        match &self.inner {
            None => self.outer.clone(),
            Some(inner) => format!("{}.{inner}", self.outer),
        }
    }
}

static NULL: Value = Value::Null;

fn members(value: &Value) -> Option<&Map<String, Value>> {
    value.as_object()
}

/// The value of `path` on `side`, or `None` when the side does not have it.
fn lookup<'a>(side: Option<&'a Map<String, Value>>, path: &Path) -> Option<&'a Value> {
    let outer = side?.get(&path.outer)?;
    match &path.inner {
        None => Some(outer),
        Some(inner) => outer.as_object()?.get(inner),
    }
}

/// Every field of the sides (see the module documentation), sorted.
fn fields(sides: &[Option<&Map<String, Value>>]) -> BTreeSet<Path> {
    let outers: BTreeSet<&String> = sides.iter().flatten().flat_map(|side| side.keys()).collect();
    let mut paths = BTreeSet::new();
    for outer in outers {
        let present: Vec<&Value> =
            sides.iter().flatten().filter_map(|side| side.get(outer)).filter(|value| !value.is_null()).collect();
        if !present.is_empty() && present.iter().all(|value| value.is_object()) {
            for inner in present.iter().filter_map(|value| value.as_object()).flat_map(|object| object.keys()) {
                paths.insert(Path { outer: outer.clone(), inner: Some(inner.clone()) });
            }
        } else {
            paths.insert(Path { outer: outer.clone(), inner: None });
        }
    }
    paths
}

/// Sets `path` in `values` to `value`, or removes it when `value` is `None`.
fn apply(values: &mut Map<String, Value>, path: &Path, value: Option<&Value>) {
    match (&path.inner, value) {
        (None, Some(value)) => {
            values.insert(path.outer.clone(), value.clone());
        }
        (None, None) => {
            values.remove(&path.outer);
        }
        (Some(inner), value) => {
            let outer = values.entry(path.outer.clone()).or_insert_with(|| Value::Object(Map::new()));
            if !outer.is_object() {
                *outer = Value::Object(Map::new());
            }
            if let Value::Object(object) = outer {
                match value {
                    Some(value) => {
                        object.insert(inner.clone(), value.clone());
                    }
                    None => {
                        object.remove(inner);
                    }
                }
            }
        }
    }
}

/// The names of the fields of `values` taken together (their number bounds a client's resolutions).
pub fn field_names(values: &[Option<&Value>]) -> BTreeSet<String> {
    let sides: Vec<Option<&Map<String, Value>>> = values.iter().map(|value| value.and_then(members)).collect();
    fields(&sides).iter().map(Path::name).collect()
}

/// Merges `mine` (the draft) into `theirs` (the row now), field by field, against `base` (the row the draft started
/// from; `None` when not known). See the module documentation for the rules.
///
/// # Errors
/// [`MergeError::Conflicts`] with the fields both sides changed that `resolve` does not cover (nothing to save);
/// [`MergeError::TooManyResolutions`] when `resolve` names more entries than the values have fields.
pub fn merge(base: Option<&Value>, mine: &Value, theirs: &Value, resolve: &Resolutions) -> Result<Merged, MergeError> {
    // A base that is not an object is known, and empty.
    let empty = Map::new();
    let sides = [base.map(|base| members(base).unwrap_or(&empty)), members(mine), members(theirs)];
    let count = field_names(&[base, Some(mine), Some(theirs)]).len();
    if resolve.len() > count {
        return Err(MergeError::TooManyResolutions { given: resolve.len(), fields: count });
    }
    combine(sides, |name| resolve.get(name).copied())
}

/// A newer draft moved onto a saved row: the fields the draft changed since `base` keep the draft's value, every other
/// field takes the saved one. Without `base` the draft is returned as it is.
pub fn rebase(base: Option<&Value>, draft: &Value, saved: &Value) -> Value {
    let Some(base) = base else { return draft.clone() };
    let empty = Map::new();
    let sides = [Some(members(base).unwrap_or(&empty)), members(draft), members(saved)];
    match combine(sides, |_| Some(Side::Mine)) {
        Ok(merged) => merged.values,
        // Every conflict is resolved as the draft's: unreachable, and the draft is the safe answer anyway.
        Err(_) => draft.clone(),
    }
}

/// The merge itself over `[base, mine, theirs]`, with `choose` giving a conflicting field's resolution.
fn combine(
    [base, mine, theirs]: [Option<&Map<String, Value>>; 3],
    choose: impl Fn(&str) -> Option<Side>,
) -> Result<Merged, MergeError> {
    let known = base.is_some();
    let mut values = theirs.cloned().unwrap_or_default();
    let mut merged = BTreeSet::new();
    let mut conflicts = BTreeMap::new();
    for path in fields(&[base, mine, theirs]) {
        let (b, m, t) = (lookup(base, &path), lookup(mine, &path), lookup(theirs, &path));
        let value = |side: Option<&Value>| side.unwrap_or(&NULL).clone();
        let same = |left: Option<&Value>, right: Option<&Value>| left.unwrap_or(&NULL) == right.unwrap_or(&NULL);
        if same(m, t) {
            continue;
        }
        let side = if known && same(m, b) {
            Side::Theirs
        } else if known && same(t, b) {
            Side::Mine
        } else {
            let name = path.name();
            match choose(&name) {
                Some(side) => side,
                None => {
                    conflicts.insert(name, FieldConflict { base: value(b), mine: value(m), theirs: value(t) });
                    continue;
                }
            }
        };
        match side {
            Side::Mine => apply(&mut values, &path, m),
            Side::Theirs => {
                merged.insert(path.name());
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(MergeError::Conflicts(conflicts));
    }
    Ok(Merged { values: Value::Object(values), merged: merged.into_iter().collect() })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn none() -> Resolutions {
        Resolutions::new()
    }

    fn conflicts(result: Result<Merged, MergeError>) -> BTreeMap<String, FieldConflict> {
        match result {
            Err(MergeError::Conflicts(fields)) => fields,
            other => panic!("expected conflicts, got {other:?}"),
        }
    }

    /// Alice edits the title while Bob changes the venue: both survive, and Alice is told the venue came from Bob.
    #[test]
    fn fields_changed_on_one_side_each_are_taken_from_that_side() {
        let base = json!({"title": "Gig", "data": {"venue": "Old hall", "date": "2026-05-01"}});
        let mine = json!({"title": "Gig, sold out", "data": {"venue": "Old hall", "date": "2026-05-01"}});
        let theirs = json!({"title": "Gig", "data": {"venue": "New hall", "date": "2026-05-01"}});
        let merged = merge(Some(&base), &mine, &theirs, &none()).unwrap();
        assert_eq!(
            merged.values,
            json!({"title": "Gig, sold out", "data": {"venue": "New hall", "date": "2026-05-01"}})
        );
        assert_eq!(merged.merged, ["data.venue"]);
    }

    #[test]
    fn only_fields_both_sides_changed_conflict_and_a_resolution_settles_each() {
        let base = json!({"title": "Gig", "data": {"venue": "Old hall", "price": 10}});
        let mine = json!({"title": "Gig!", "data": {"venue": "Big hall", "price": 10}});
        let theirs = json!({"title": "Gig", "data": {"venue": "New hall", "price": 12}});
        let fields = conflicts(merge(Some(&base), &mine, &theirs, &none()));
        assert_eq!(
            fields,
            BTreeMap::from([(
                "data.venue".to_owned(),
                FieldConflict { base: json!("Old hall"), mine: json!("Big hall"), theirs: json!("New hall") }
            )])
        );
        let mut resolve = Resolutions::from([("data.venue".to_owned(), Side::Mine)]);
        let merged = merge(Some(&base), &mine, &theirs, &resolve).unwrap();
        assert_eq!(merged.values, json!({"title": "Gig!", "data": {"venue": "Big hall", "price": 12}}));
        assert_eq!(merged.merged, ["data.price"]);
        resolve.insert("data.venue".into(), Side::Theirs);
        let merged = merge(Some(&base), &mine, &theirs, &resolve).unwrap();
        assert_eq!(merged.values, json!({"title": "Gig!", "data": {"venue": "New hall", "price": 12}}));
        assert_eq!(merged.merged, ["data.price", "data.venue"]);
    }

    #[test]
    fn the_same_change_on_both_sides_is_no_conflict() {
        let base = json!({"title": "a"});
        let both = json!({"title": "b"});
        let merged = merge(Some(&base), &both, &both, &none()).unwrap();
        assert_eq!((merged.values, merged.merged), (both, Vec::<String>::new()));
    }

    #[test]
    fn a_missing_field_is_null_and_removals_are_changes() {
        // Mine removed `note` (theirs did not touch it); theirs set `extra` to null where mine never had it.
        let base = json!({"note": "x", "data": {"a": 1}});
        let mine = json!({"data": {"a": 1}});
        let theirs = json!({"note": "x", "extra": null, "data": {"a": 1, "b": null}});
        let merged = merge(Some(&base), &mine, &theirs, &none()).unwrap();
        assert_eq!(merged.values, json!({"extra": null, "data": {"a": 1, "b": null}}));
        assert!(merged.merged.is_empty(), "null and missing are the same value: {:?}", merged.merged);
        // Both changed `note`: mine removed it, theirs rewrote it.
        let theirs = json!({"note": "y", "data": {"a": 1}});
        let fields = conflicts(merge(Some(&base), &mine, &theirs, &none()));
        assert_eq!(fields["note"], FieldConflict { base: json!("x"), mine: Value::Null, theirs: json!("y") });
    }

    #[test]
    fn without_a_base_every_difference_is_a_conflict() {
        let mine = json!({"title": "mine", "data": {"same": 1, "venue": "Old"}});
        let theirs = json!({"title": "theirs", "data": {"same": 1, "venue": "New"}});
        let fields = conflicts(merge(None, &mine, &theirs, &none()));
        assert_eq!(fields.keys().collect::<Vec<_>>(), ["data.venue", "title"]);
        assert_eq!(fields["title"].base, Value::Null);
        let resolve = Resolutions::from([("title".into(), Side::Mine), ("data.venue".into(), Side::Theirs)]);
        let merged = merge(None, &mine, &theirs, &resolve).unwrap();
        assert_eq!(merged.values, json!({"title": "mine", "data": {"same": 1, "venue": "New"}}));
    }

    #[test]
    fn resolutions_for_fields_not_in_conflict_are_ignored_but_bounded() {
        let base = json!({"a": 1, "b": 1});
        let mine = json!({"a": 2, "b": 1});
        let theirs = json!({"a": 1, "b": 3});
        let resolve = Resolutions::from([("b".into(), Side::Mine), ("nope".into(), Side::Mine)]);
        let merged = merge(Some(&base), &mine, &theirs, &resolve).unwrap();
        assert_eq!(merged.values, json!({"a": 2, "b": 3}), "b only changed on their side: theirs, whatever was asked");
        let many: Resolutions = (0..3).map(|n| (format!("f{n}"), Side::Mine)).collect();
        assert_eq!(
            merge(Some(&base), &mine, &theirs, &many),
            Err(MergeError::TooManyResolutions { given: 3, fields: 2 })
        );
    }

    #[test]
    fn a_member_that_is_not_an_object_everywhere_is_one_field() {
        let base = json!({"settings": {"a": 1}});
        let mine = json!({"settings": "flat"});
        let theirs = json!({"settings": {"a": 1}});
        let merged = merge(Some(&base), &mine, &theirs, &none()).unwrap();
        assert_eq!(merged.values, json!({"settings": "flat"}));
        // A nested object missing on one side is an empty one: a member added inside it is a field of its own.
        let merged = merge(Some(&json!({})), &json!({"data": {"x": 1}}), &json!({"data": null}), &none()).unwrap();
        assert_eq!(merged.values, json!({"data": {"x": 1}}));
    }

    #[test]
    fn a_newer_draft_rebased_on_a_merged_save_keeps_only_its_own_changes() {
        // The save merged Bob's venue; the draft typed meanwhile still has the old venue, which is not Alice's change.
        let base = json!({"title": "Gig", "data": {"venue": "Old"}});
        let draft = json!({"title": "Gig, later", "data": {"venue": "Old"}});
        let saved = json!({"title": "Gig, sooner", "data": {"venue": "New"}});
        assert_eq!(rebase(Some(&base), &draft, &saved), json!({"title": "Gig, later", "data": {"venue": "New"}}));
        assert_eq!(rebase(None, &draft, &saved), draft);
    }

    fn value() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            Just(None),
            Just(Some(Value::Null)),
            (0..3i64).prop_map(|n| Some(json!(n))),
            "[ab]".prop_map(|text| Some(json!(text))),
            Just(Some(json!({"deep": 1}))),
        ]
    }

    /// Values over a few top-level keys, some of them nested objects (`data`), with collisions likely.
    fn values() -> impl Strategy<Value = Value> {
        let top = proptest::collection::btree_map("[a-c]", value(), 0..4);
        let data = proptest::option::of(proptest::collection::btree_map("[x-z]", value(), 0..4));
        (top, data).prop_map(|(top, data)| {
            let mut object: Map<String, Value> =
                top.into_iter().filter_map(|(key, value)| Some((key, value?))).collect();
            if let Some(data) = data {
                let data: Map<String, Value> =
                    data.into_iter().filter_map(|(key, value)| Some((key, value?))).collect();
                object.insert("data".into(), Value::Object(data));
            }
            Value::Object(object)
        })
    }

    /// A field's value on a side, with missing as null.
    fn at(values: &Value, path: &Path) -> Value {
        lookup(values.as_object(), path).cloned().unwrap_or(Value::Null)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// The data-integrity property: whatever the resolutions, a merged save never changes a field only theirs
        /// changed, keeps every field only mine changed, and conflicts are exactly the fields both changed
        /// differently.
        #[test]
        fn a_merge_never_changes_a_field_only_theirs_changed(
            base in values(),
            mine in values(),
            theirs in values(),
            picks in proptest::collection::vec(any::<bool>(), 0..12),
        ) {
            let all = fields(&[base.as_object(), mine.as_object(), theirs.as_object()]);
            let resolve: Resolutions = all.iter().zip(&picks)
                .map(|(path, mine)| (path.name(), if *mine { Side::Mine } else { Side::Theirs }))
                .collect();
            match merge(Some(&base), &mine, &theirs, &resolve) {
                Ok(merged) => {
                    for path in &all {
                        let (b, m, t, out) = (at(&base, path), at(&mine, path), at(&theirs, path), at(&merged.values, path));
                        if m == b {
                            prop_assert_eq!(&out, &t, "{} only changed on their side", path.name());
                        } else if t == b {
                            prop_assert_eq!(&out, &m, "{} only changed on my side", path.name());
                        } else if m != t {
                            let side = resolve[&path.name()];
                            prop_assert_eq!(&out, if side == Side::Mine { &m } else { &t });
                        } else {
                            prop_assert_eq!(&out, &t);
                        }
                        prop_assert_eq!(merged.merged.contains(&path.name()), out == t && out != m);
                    }
                }
                Err(MergeError::Conflicts(fields)) => {
                    for (name, conflict) in &fields {
                        prop_assert!(!resolve.contains_key(name));
                        prop_assert!(conflict.mine != conflict.base && conflict.theirs != conflict.base);
                        prop_assert!(conflict.mine != conflict.theirs);
                    }
                    prop_assert!(!fields.is_empty());
                }
                Err(error) => prop_assert!(false, "{error}"),
            }
        }

        /// Without resolutions, a field conflicts exactly when both sides changed it differently; when the row did not
        /// move (theirs is the base) the merge is the draft itself.
        #[test]
        fn conflicts_are_exactly_the_fields_both_sides_changed(base in values(), mine in values(), theirs in values()) {
            let expected: BTreeSet<String> = fields(&[base.as_object(), mine.as_object(), theirs.as_object()])
                .iter()
                .filter(|path| {
                    let (b, m, t) = (at(&base, path), at(&mine, path), at(&theirs, path));
                    m != b && t != b && m != t
                })
                .map(Path::name)
                .collect();
            match merge(Some(&base), &mine, &theirs, &none()) {
                Ok(_) => prop_assert!(expected.is_empty(), "missed conflicts {:?}", expected),
                Err(MergeError::Conflicts(fields)) => {
                    prop_assert_eq!(fields.keys().cloned().collect::<BTreeSet<_>>(), expected)
                }
                Err(error) => prop_assert!(false, "{error}"),
            }
            let unmoved = merge(Some(&base), &mine, &base, &none()).unwrap();
            for path in fields(&[base.as_object(), mine.as_object()]) {
                prop_assert_eq!(at(&unmoved.values, &path), at(&mine, &path));
            }
        }
    }
}
