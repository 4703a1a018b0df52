//! Validation of entity definitions and their field definitions.
//!
//! Rules: `name` matches `^[a-z][a-z0-9_]*$` and is 2–50 characters, made from `display_name` when absent or blank;
//! `display_name` and `display_name_plural` are 2–100 characters; `description` at most 500; `status` is draft,
//! published (default) or archived; each field definition is an object with a known `type`, a `key` that is slug-like
//! (1–50 characters) and unique within the entity, a non-blank `label`, a boolean `required`, an optional `default`,
//! and (select, radio, checkbox) at least one non-blank option. Unknown keys of a field definition are kept in `props`.
//!
//! Bounds, so a definition (loaded for every page and form of its entity) stays small whoever sends it: at most 100
//! fields, at most 100 options per field, labels at most 100 characters, options at most 255, a default at most 5,000
//! characters (as text), a field's `props` at most 2,000 characters and the entity's `settings` at most 10,000 (as
//! JSON). Too many fields or options are reported once, on the list, without checking its items.
//!
//! Decisions, where the rules are silent:
//! - Every text is trimmed before checking and stored trimmed: name, display names, description, icon, field keys,
//!   labels and options. Lengths count characters, not bytes.
//! - When the name is generated and the display name is itself invalid, only the display name is reported: the name
//!   problem is a consequence, and the user did not type a name. A generated name that is still invalid (a display
//!   name starting with a digit, say) is reported on `name` so the form can show it next to the generated value.
//! - `icon` is at most 100 characters (an icon name, not content).
//! - `required` accepts what a form sends for a checkbox (`"true"`, `"on"`, `"1"`, …) as well as JSON booleans;
//!   `null` or missing means `false`.
//! - Options are trimmed; blank options are dropped and duplicates are kept once (first position), so a form's empty
//!   trailing option row is harmless. Options of non-choice types are discarded (switching a field from select to text
//!   leaves none behind); other non-choice keys are kept in `props`.
//! - `default` is validated like a record value of the field (so a select default must be one of its options, a date
//!   default a real date) and stored normalised; a blank default is no default. It is checked only when the type and
//!   options are valid, so one mistake is not reported twice.
//! - When the duplicate check fires, the second and later uses of a key are reported, not the first.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::fields::{self, too_long};
use crate::slug::{MAX_ENTITY_NAME_CHARS, entity_name_from, is_entity_name};
use crate::validate::{check_length, parse_status};
use crate::{EntityInput, FieldDefinition, FieldType, ValidEntity, ValidationErrors};

/// Display name lengths, in characters.
const DISPLAY_NAME_CHARS: (usize, usize) = (2, 100);
/// Longest description, in characters.
const MAX_DESCRIPTION_CHARS: usize = 500;
/// Longest icon name, in characters.
const MAX_ICON_CHARS: usize = 100;
/// Longest field key, in characters.
const MAX_KEY_CHARS: usize = 50;
/// Longest field label, in characters (as long as a display name).
const MAX_LABEL_CHARS: usize = 100;
/// Longest option of a choice field, in characters.
const MAX_OPTION_CHARS: usize = 255;
/// Most fields of one entity.
pub const MAX_FIELDS: usize = 100;
/// Most options of one choice field.
pub const MAX_OPTIONS: usize = 100;
/// Longest `default` of a field, in characters (a text default; list defaults are bounded by the options).
const MAX_DEFAULT_CHARS: usize = 5_000;
/// Longest `props` of one field, in characters of JSON.
const MAX_PROPS_JSON_CHARS: usize = 2_000;
/// Longest `settings` of an entity, in characters of JSON.
const MAX_SETTINGS_JSON_CHARS: usize = 10_000;
/// The keys of a field definition that are not `props`.
const KNOWN_KEYS: [&str; 6] = ["type", "key", "label", "required", "default", "options"];

/// Validates an entity definition (see the module documentation).
pub(crate) fn validate(input: &EntityInput) -> Result<ValidEntity, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    if crate::validate::json_bytes(input) > crate::validate::MAX_CONTENT_BYTES {
        let limit = crate::validate::MAX_CONTENT_BYTES;
        errors.add("fields_definition", format!("is too large: an entity holds at most {limit} bytes of definition"));
        return Err(errors);
    }

    let display_name = input.display_name.trim();
    let display_name_plural = input.display_name_plural.trim();
    let (min, max) = DISPLAY_NAME_CHARS;
    check_length(&mut errors, "display_name", display_name, min, max);
    check_length(&mut errors, "display_name_plural", display_name_plural, min, max);

    let given_name = input.name.as_deref().map(str::trim).filter(|name| !name.is_empty());
    let name = given_name.map_or_else(|| entity_name_from(display_name), str::to_owned);
    if given_name.is_some() || errors.get("display_name").is_empty() {
        check_name(&mut errors, &name);
    }

    let description = input.description.as_deref().unwrap_or_default().trim();
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        errors.add("description", too_long(MAX_DESCRIPTION_CHARS));
    }
    let icon = input.icon.as_deref().unwrap_or_default().trim();
    if icon.chars().count() > MAX_ICON_CHARS {
        errors.add("icon", too_long(MAX_ICON_CHARS));
    }
    let status = parse_status(&mut errors, input.status.as_deref());
    let settings = input.settings.clone().unwrap_or_default();
    if json_chars(&settings) > MAX_SETTINGS_JSON_CHARS {
        errors.add("settings", format!("must be at most {MAX_SETTINGS_JSON_CHARS} characters as JSON"));
    }

    let mut seen_keys = HashSet::new();
    let fields_definition = if input.fields_definition.len() > MAX_FIELDS {
        errors.add("fields_definition", format!("must have at most {MAX_FIELDS} fields"));
        Vec::new()
    } else {
        input
            .fields_definition
            .iter()
            .enumerate()
            .filter_map(|(index, field)| field_definition(&mut errors, index, field, &mut seen_keys))
            .collect()
    };

    errors.into_result(ValidEntity {
        name,
        display_name: display_name.to_owned(),
        display_name_plural: display_name_plural.to_owned(),
        description: description.to_owned(),
        icon: icon.to_owned(),
        status,
        fields_definition,
        settings,
    })
}

/// Checks an entity name: 2–50 characters, `^[a-z][a-z0-9_]*$`.
fn check_name(errors: &mut ValidationErrors, name: &str) {
    check_length(errors, "name", name, 2, MAX_ENTITY_NAME_CHARS);
    if !name.is_empty() && !is_entity_name(name) {
        errors.add("name", "must start with a letter and contain only lowercase letters, numbers and underscores");
    }
}

/// Validates the field definition at `index`, reporting problems under `fields_definition[index]`. `None` when it is
/// invalid (its errors are then in `errors`).
fn field_definition(
    errors: &mut ValidationErrors,
    index: usize,
    value: &Value,
    seen_keys: &mut HashSet<String>,
) -> Option<FieldDefinition> {
    let path = |part: &str| format!("fields_definition[{index}].{part}");
    let Value::Object(object) = value else {
        errors.add(format!("fields_definition[{index}]"), "must be an object with a type, a key and a label");
        return None;
    };
    let before = errors.fields.len();

    let field_type = match object.get("type") {
        None | Some(Value::Null) => {
            errors.add(path("type"), crate::validate::BLANK);
            None
        }
        Some(Value::String(text)) if text.trim().is_empty() => {
            errors.add(path("type"), crate::validate::BLANK);
            None
        }
        Some(other) => {
            let parsed = other.as_str().and_then(|text| FieldType::parse(text.trim()));
            if parsed.is_none() {
                let known: Vec<&str> = FieldType::ALL.iter().map(FieldType::as_str).collect();
                errors.add(path("type"), format!("must be one of: {}", known.join(", ")));
            }
            parsed
        }
    };

    let key = required_text(errors, &path("key"), object.get("key"), MAX_KEY_CHARS);
    if let Some(key) = &key {
        if !is_entity_name(key) {
            errors.add(
                path("key"),
                "must start with a letter and contain only lowercase letters, numbers and underscores",
            );
        }
        if !seen_keys.insert(key.clone()) {
            errors.add(path("key"), "is already used by another field");
        }
    }
    let label = required_text(errors, &path("label"), object.get("label"), MAX_LABEL_CHARS);

    let required = match object.get("required").map(fields::boolean).unwrap_or(Ok(None)) {
        Ok(flag) => flag.unwrap_or(false),
        Err(message) => {
            errors.add(path("required"), message);
            false
        }
    };

    let options = match field_type {
        Some(field_type) if field_type.has_options() => options(errors, &path("options"), object.get("options")),
        _ => Some(Vec::new()),
    };

    let default = match (field_type, &options, object.get("default")) {
        (Some(_), Some(_), Some(Value::String(text))) if text.chars().count() > MAX_DEFAULT_CHARS => {
            errors.add(path("default"), too_long(MAX_DEFAULT_CHARS));
            None
        }
        (Some(field_type), Some(options), Some(value)) => match fields::normalize(field_type, options, value) {
            Ok(normalized) => normalized,
            Err(message) => {
                errors.add(path("default"), message);
                None
            }
        },
        _ => None,
    };

    let props: Map<String, Value> = object
        .iter()
        .filter(|(name, _)| !KNOWN_KEYS.contains(&name.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if json_chars(&props) > MAX_PROPS_JSON_CHARS {
        errors.add(
            format!("fields_definition[{index}]"),
            format!("must have at most {MAX_PROPS_JSON_CHARS} characters of other properties (as JSON)"),
        );
    }

    if errors.fields.len() != before {
        return None;
    }
    Some(FieldDefinition {
        field_type: field_type?,
        key: key?,
        label: label?,
        required,
        default,
        options: options?,
        props,
    })
}

/// A trimmed, non-blank string of at most `max` characters; `None` after reporting a problem at `path`.
fn required_text(errors: &mut ValidationErrors, path: &str, value: Option<&Value>, max: usize) -> Option<String> {
    match value {
        None | Some(Value::Null) => {
            errors.add(path, crate::validate::BLANK);
            None
        }
        Some(Value::String(text)) => {
            let text = text.trim();
            let before = errors.get(path).len();
            check_length(errors, path, text, 1, max);
            (errors.get(path).len() == before).then(|| text.to_owned())
        }
        Some(_) => {
            errors.add(path, "must be text");
            None
        }
    }
}

/// The options of a choice field: a list of at most [`MAX_OPTIONS`] strings, trimmed, blanks dropped, duplicates kept
/// once, at least one.
fn options(errors: &mut ValidationErrors, path: &str, value: Option<&Value>) -> Option<Vec<String>> {
    let items: &[Value] = match value {
        None | Some(Value::Null) => &[],
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.add(path, "must be a list of text options");
            return None;
        }
    };
    if items.len() > MAX_OPTIONS {
        errors.add(path, format!("must have at most {MAX_OPTIONS} options"));
        return None;
    }
    let mut options: Vec<String> = Vec::new();
    for item in items {
        let Value::String(option) = item else {
            errors.add(path, "must be a list of text options");
            return None;
        };
        let option = option.trim();
        if option.chars().count() > MAX_OPTION_CHARS {
            errors.add(path, format!("each option {}", too_long(MAX_OPTION_CHARS)));
            return None;
        }
        if !option.is_empty() && !options.iter().any(|known| known == option) {
            options.push(option.to_owned());
        }
    }
    if options.is_empty() {
        errors.add(path, "requires at least one option");
        return None;
    }
    Some(options)
}

/// The length of `value` serialised as JSON, in characters.
fn json_chars(value: &Map<String, Value>) -> usize {
    // A map with string keys always serialises.
    serde_json::to_string(value).map_or(usize::MAX, |json| json.chars().count())
}
