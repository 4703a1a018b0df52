//! # livebaton-content
//!
//! The content model of livebaton's admin application: entity definitions (a name, display names, a status and an
//! ordered list of typed fields) and records (a title, a slug, a status and values per field). Everything here is pure:
//! validation, normalisation, sanitising and slug generation, with no database and no HTTP, so the JSON API, the live
//! forms and the store all share one set of rules.

mod entity;
mod errors;
mod fields;
mod model;
mod slug;
mod validate;

pub use errors::ValidationErrors;
pub use model::{EntityInput, FieldDefinition, FieldType, RecordInput, Status, ValidEntity, ValidRecord};
pub use slug::{entity_name_from, slugify, unique_slug};
pub use validate::{validate_entity, validate_record};
