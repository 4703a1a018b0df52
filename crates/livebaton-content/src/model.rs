//! The content model: entity definitions, their fields, and records, as validated values.
//!
//! Inputs (`EntityInput`, `RecordInput`) are what a form or the JSON API sends; `ValidEntity` and `ValidRecord` exist
//! only as the output of validation ("parse, don't validate"), so the store never sees an unchecked value.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Publication status of an entity or a record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Work in progress; not public.
    Draft,
    /// Live.
    #[default]
    Published,
    /// Kept but hidden; pages showing it redirect to their list.
    Archived,
}

impl Status {
    /// The stored and displayed name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Published => "published",
            Status::Archived => "archived",
        }
    }

    /// Parses a stored or submitted name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "draft" => Some(Status::Draft),
            "published" => Some(Status::Published),
            "archived" => Some(Status::Archived),
            _ => None,
        }
    }
}

/// The kinds of field an entity can define.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// One line, at most 255 characters.
    Text,
    /// Several lines, at most 5000 characters.
    Textarea,
    /// An email address.
    Email,
    /// A web address (`https://` is added when the scheme is missing).
    Url,
    /// HTML, sanitised when written and again when shown (`SafeHtml`).
    RichText,
    /// A number.
    Number,
    /// True or false.
    Boolean,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// One of the options, from a list.
    Select,
    /// One of the options, as radio buttons.
    Radio,
    /// Any subset of the options.
    Checkbox,
}

impl FieldType {
    /// Every field type, in the order a field builder offers them.
    pub const ALL: [FieldType; 11] = [
        FieldType::Text,
        FieldType::Textarea,
        FieldType::Email,
        FieldType::Url,
        FieldType::RichText,
        FieldType::Number,
        FieldType::Boolean,
        FieldType::Date,
        FieldType::Select,
        FieldType::Radio,
        FieldType::Checkbox,
    ];

    /// The stored name (`rich_text`, …).
    pub fn as_str(&self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Textarea => "textarea",
            FieldType::Email => "email",
            FieldType::Url => "url",
            FieldType::RichText => "rich_text",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::Select => "select",
            FieldType::Radio => "radio",
            FieldType::Checkbox => "checkbox",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        FieldType::ALL.into_iter().find(|field_type| field_type.as_str() == text)
    }

    /// Whether the type picks from `options` (and so needs at least one).
    pub fn has_options(&self) -> bool {
        matches!(self, FieldType::Select | FieldType::Radio | FieldType::Checkbox)
    }
}

/// One field of an entity, as validated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldDefinition {
    /// The field's type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// The key its values are stored under (slug-like, unique within the entity).
    pub key: String,
    /// The label shown next to the input.
    pub label: String,
    /// Whether a record must have a value.
    #[serde(default)]
    pub required: bool,
    /// The value a new record starts with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// The choices of select, radio and checkbox fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Type-specific properties (placeholder, rows, …), kept as given.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub props: Map<String, Value>,
}

/// An entity definition as submitted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EntityInput {
    /// The entity's name (slug). Generated from `display_name` when absent or empty.
    pub name: Option<String>,
    /// Singular display name.
    pub display_name: String,
    /// Plural display name.
    pub display_name_plural: String,
    /// Description.
    pub description: Option<String>,
    /// Icon name.
    pub icon: Option<String>,
    /// `draft`, `published` (default) or `archived`.
    pub status: Option<String>,
    /// Field definitions as JSON objects (validated one by one so every problem is reported).
    pub fields_definition: Vec<Value>,
    /// Free-form settings.
    pub settings: Option<Map<String, Value>>,
}

/// A validated entity definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidEntity {
    /// Unique slug name.
    pub name: String,
    /// Singular display name.
    pub display_name: String,
    /// Plural display name.
    pub display_name_plural: String,
    /// Description (≤ 500 characters).
    pub description: String,
    /// Icon name.
    pub icon: String,
    /// Status.
    pub status: Status,
    /// Fields, in order.
    pub fields_definition: Vec<FieldDefinition>,
    /// Free-form settings.
    pub settings: Map<String, Value>,
}

/// A record as submitted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordInput {
    /// Title (1–255 characters).
    pub title: String,
    /// Slug; generated from the title when absent or empty.
    pub slug: Option<String>,
    /// `draft`, `published` (default) or `archived`.
    pub status: Option<String>,
    /// Values by field key.
    pub data: Map<String, Value>,
    /// Free-form metadata.
    pub metadata: Option<Map<String, Value>>,
}

/// A validated record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidRecord {
    /// Title.
    pub title: String,
    /// The slug asked for, or `None` to generate one from the title (the store makes it unique).
    pub slug: Option<String>,
    /// Status.
    pub status: Status,
    /// Values by field key, normalised per type (numbers parsed, URLs completed, rich text sanitised).
    pub data: Map<String, Value>,
    /// Free-form metadata.
    pub metadata: Map<String, Value>,
}
