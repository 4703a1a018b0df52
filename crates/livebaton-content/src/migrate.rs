//! What an entity's new field definitions do to the values its records already hold.
//!
//! When an entity is saved with fields removed, added or retyped, every record's values are carried over by
//! [`migrate_data`] in the same transaction, so stored data always matches the definition (and a key that is removed
//! and later re-added starts empty, never with what the old field held). Per value:
//! - its key is no longer a field: the value is dropped;
//! - its field kept its type: the value is kept as it is;
//! - its field changed type (or the key had no field before: data left by an older version): the value is converted
//!   and kept only if it is valid for the new type, else dropped. Plain text (and numbers, booleans, lists as
//!   "a, b") becomes rich text **escaped**, one paragraph with its line breaks, never read as markup; rich text
//!   becomes text as its HTML source; numbers and booleans become text as written; other conversions
//!   (text → number, select → radio, text → email, …) are validated like a submitted value.
//!
//! Record values are never half-converted: each one is either valid for its field after the change, or gone.

use serde_json::{Map, Value};

use crate::fields;
use crate::rich_text::SafeHtml;
use crate::{FieldDefinition, FieldType};

/// Whether saving `new` over `old` can change what records hold: a key removed or added, or a field's type changed.
/// When it is `false`, [`migrate_data`] returns `None` for every record.
pub fn reshapes_data(old: &[FieldDefinition], new: &[FieldDefinition]) -> bool {
    old.len() != new.len()
        || new.iter().any(|field| type_of(old, &field.key) != Some(field.field_type))
        || old.iter().any(|field| type_of(new, &field.key).is_none())
}

/// A record's values (`data`) carried over from fields `old` to fields `new` (see the module documentation), or `None`
/// when nothing changes.
pub fn migrate_data(
    old: &[FieldDefinition],
    new: &[FieldDefinition],
    data: &Map<String, Value>,
) -> Option<Map<String, Value>> {
    let mut migrated = Map::new();
    let mut changed = false;
    for (key, value) in data {
        let Some(field) = new.iter().find(|field| &field.key == key) else {
            changed = true;
            continue;
        };
        if type_of(old, key) == Some(field.field_type) {
            migrated.insert(key.clone(), value.clone());
            continue;
        }
        match convert(field, value) {
            Some(converted) => {
                changed |= &converted != value;
                migrated.insert(key.clone(), converted);
            }
            None => changed = true,
        }
    }
    changed.then_some(migrated)
}

/// The type of the field `key` in `fields`.
fn type_of(fields: &[FieldDefinition], key: &str) -> Option<FieldType> {
    fields.iter().find(|field| field.key == key).map(|field| field.field_type)
}

/// `value` as a valid value of `field`, which it was not stored for; `None` when it cannot be.
fn convert(field: &FieldDefinition, value: &Value) -> Option<Value> {
    let valid = |candidate: &Value| fields::normalize(field.field_type, &field.options, candidate).ok().flatten();
    match field.field_type {
        FieldType::RichText => {
            let text = as_text(value)?;
            let escaped = Value::String(SafeHtml::from_plain_text(&text).into_string());
            // Thousands of lines are thousands of `<br>`: past the element limit, keep the text on one line.
            valid(&escaped).or_else(|| {
                let one_line = text.replace(['\r', '\n'], " ");
                valid(&Value::String(SafeHtml::from_plain_text(&one_line).into_string()))
            })
        }
        FieldType::Text | FieldType::Textarea => valid(&Value::String(as_text(value)?)),
        _ => valid(value),
    }
}

/// A value as text: strings as they are, numbers and booleans as written, a list of those joined with ", ".
fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Array(items) => {
            let texts: Option<Vec<String>> =
                items.iter().map(|item| if item.is_array() { None } else { as_text(item) }).collect();
            Some(texts?.join(", "))
        }
        Value::Null | Value::Object(_) => None,
    }
}
