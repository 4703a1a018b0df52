//! Validation of records, and the checks shared with entity validation (see the `entity` module for entities).
//!
//! Every validator collects all problems of a submission into one [`ValidationErrors`] keyed by field path, so a form
//! can show them all at once.
//!
//! Record decisions, where the rules are silent:
//! - A missing status, or a blank one (what an empty form select sends), means `published`; status is trimmed but
//!   case-sensitive (`Published` is refused).
//! - A given slug is trimmed; a blank one is `None` (the store generates one). An invalid slug is refused, not
//!   silently slugified, so the user sees which address they will get.
//! - Missing fields, and optional fields submitted blank (`null`, `""`, whitespace, an empty checkbox list), are
//!   absent from the stored data: blank values are not stored as `null` or `""`. A field's `default` is **not** applied
//!   here: it is the value a new-record form starts with. Applying it on save would resurrect values the user
//!   cleared (an HTML form omits an unchecked checkbox), so validation never invents data.
//! - A required boolean needs a value (`false` counts); a required checkbox field needs at least one option ticked.

use serde_json::{Map, Value};

use crate::fields::{self, too_long};
use crate::slug::{MAX_RECORD_SLUG_CHARS, is_record_slug};
use crate::{EntityInput, FieldDefinition, RecordInput, Status, ValidEntity, ValidRecord, ValidationErrors};

/// Longest record title, in characters.
const MAX_TITLE_CHARS: usize = 255;

/// The one message for a value that must be given and is blank (a title, a required field, an entity's name or a
/// field's label): Ecto's wording, which Phoenix users know. Forms and the API show the same words.
pub(crate) const BLANK: &str = "can't be blank";

/// The most content one form can carry, in bytes of JSON: a whole record (title, slug, values, metadata), or a whole
/// entity definition. Whatever is stored must also be editable in the live forms, whose every change travels in one
/// WebSocket frame as a URL-encoded form (up to three bytes per byte of content) or as JSON: three times this plus
/// 4 KiB of envelope fits the default 64 KiB frame (`SocketConfig::max_frame_bytes`; the admin binary refuses to
/// start with a smaller `--max-frame-bytes`, see [`frame_bytes_for_content`]).
pub const MAX_CONTENT_BYTES: usize = 20_000;

/// The smallest WebSocket frame limit in which every form within [`MAX_CONTENT_BYTES`] can travel.
pub const fn frame_bytes_for_content() -> usize {
    3 * MAX_CONTENT_BYTES + 4 * 1024
}

/// Bytes of `value` as JSON.
pub(crate) fn json_bytes(value: &impl serde::Serialize) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |json| json.len())
}

fn too_large() -> String {
    format!("is too large: a record holds at most {MAX_CONTENT_BYTES} bytes of content in all")
}

/// Validates an entity definition.
///
/// See the `entity` module for the rules and the decisions made where the specification is silent.
///
/// # Errors
/// Every problem at once, by field (`name`, `display_name`, `fields_definition[3].key`, …).
pub fn validate_entity(input: &EntityInput) -> Result<ValidEntity, ValidationErrors> {
    crate::entity::validate(input)
}

/// Validates a record against its entity's fields.
///
/// The title is trimmed (1–255 characters); a given slug must be lowercase letters and digits in hyphen-separated
/// groups (at most 255 characters); every key of `data` must be one of `fields`, and every value is validated and
/// normalised for its field's type (see the `fields` module).
///
/// # Errors
/// Every problem at once, by field (`title`, `slug`, `status`, `data.<key>`).
pub fn validate_record(fields: &[FieldDefinition], input: &RecordInput) -> Result<ValidRecord, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    // Measured before anything costly (sanitising rich text), so an oversized submission costs one pass over it.
    if json_bytes(input) > MAX_CONTENT_BYTES {
        errors.add("data", too_large());
        return Err(errors);
    }

    let title = input.title.trim();
    check_length(&mut errors, "title", title, 1, MAX_TITLE_CHARS);

    let slug = input.slug.as_deref().map(str::trim).filter(|slug| !slug.is_empty());
    if let Some(slug) = slug {
        if !is_record_slug(slug) {
            errors
                .add("slug", "must contain only lowercase letters and numbers, in groups separated by single hyphens");
        }
        if slug.chars().count() > MAX_RECORD_SLUG_CHARS {
            errors.add("slug", too_long(MAX_RECORD_SLUG_CHARS));
        }
    }

    let status = parse_status(&mut errors, input.status.as_deref());

    for key in input.data.keys() {
        if !fields.iter().any(|field| &field.key == key) {
            errors.add(format!("data.{key}"), "is not a field of this entity");
        }
    }

    let mut data = Map::new();
    for field in fields {
        let path = format!("data.{}", field.key);
        let submitted = input.data.get(&field.key).unwrap_or(&Value::Null);
        match fields::normalize(field.field_type, &field.options, submitted) {
            Ok(Some(value)) => {
                data.insert(field.key.clone(), value);
            }
            // One wording for every blank value that must be given (the title's, a field's): Ecto's.
            Ok(None) if field.required => errors.add(path, BLANK),
            Ok(None) => {}
            Err(message) => errors.add(path, message),
        }
    }

    // Normalising can grow a value (sanitised markup is escaped and closed): what is stored must fit as well.
    if errors.is_empty() && json_bytes(&data) + input.title.len() > MAX_CONTENT_BYTES {
        errors.add("data", too_large());
    }
    errors.into_result(ValidRecord {
        title: title.to_owned(),
        slug: slug.map(str::to_owned),
        status,
        data,
        metadata: input.metadata.clone().unwrap_or_default(),
    })
}

/// The status named by `text`: `published` when absent or blank, else one of `draft`, `published`, `archived`.
pub(crate) fn parse_status(errors: &mut ValidationErrors, text: Option<&str>) -> Status {
    match text.map(str::trim).filter(|text| !text.is_empty()) {
        None => Status::default(),
        Some(text) => Status::parse(text).unwrap_or_else(|| {
            errors.add("status", "must be draft, published or archived");
            Status::default()
        }),
    }
}

/// Checks that `text` is `min..=max` characters long (characters, not bytes); empty text "can't be blank".
pub(crate) fn check_length(errors: &mut ValidationErrors, path: &str, text: &str, min: usize, max: usize) {
    let count = text.chars().count();
    if count == 0 {
        errors.add(path, BLANK);
    } else if count < min {
        errors.add(path, format!("must be at least {min} characters"));
    } else if count > max {
        errors.add(path, too_long(max));
    }
}
