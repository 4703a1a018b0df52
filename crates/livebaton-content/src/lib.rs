//! # livebaton-content
//!
//! The content model of livebaton's admin application: entity definitions (a name, display names, a status and an
//! ordered list of typed fields) and records (a title, a slug, a status and values per field). Everything here is pure:
//! validation, normalisation, sanitising and slug generation, with no database and no HTTP, so the JSON API, the live
//! forms and the store all share one set of rules.
//!
//! Rich text is the one kind of value that becomes markup, and only as a [`SafeHtml`]: sanitised when it is written
//! and again whenever it is shown (see [`SafeHtml::render`]). Every other value is text, for the renderer to escape.

mod entity;
mod errors;
mod fields;
mod migrate;
mod model;
mod rich_text;
mod slug;
mod validate;

pub use entity::{MAX_FIELDS, MAX_OPTIONS};
pub use errors::ValidationErrors;
pub use migrate::{migrate_data, reshapes_data};
pub use model::{EntityInput, FieldDefinition, FieldType, RecordInput, Status, ValidEntity, ValidRecord};
pub use rich_text::{
    MAX_RICH_TEXT_CHARS, MAX_RICH_TEXT_DEPTH, MAX_RICH_TEXT_ELEMENTS, MAX_UNCLOSED_FORMATTING, RichTextError, SafeHtml,
};
pub use slug::{entity_name_from, field_key_from, slugify, unique_slug};
pub use validate::{MAX_CONTENT_BYTES, frame_bytes_for_content, validate_entity, validate_record};
