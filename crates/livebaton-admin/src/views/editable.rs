//! [`Editable`]: what the two collaborative forms (records, entity definitions) do differently: the row type, its form
//! values, how it is reloaded and saved, and how its fields are named and shown in the conflict panel.

use std::collections::BTreeMap;

use livebaton::editing::OwnerToken;
use livebaton::editing::merge::FieldConflict;
use livebaton_content::SafeHtml;
use livebaton_web::channel::BoxFuture;
use maud::Markup;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ViewContext;
use super::conflict::{ConflictRich, value_markup};
use crate::content::editing::{Author, EditedRow, EditingService, SaveOutcome};
use crate::content::{ContentError, SaveRequest};

/// A kind of row a collaborative form edits.
pub trait Editable: Send + Sync + 'static {
    /// The stored row (its version, values and conflicts: [`EditedRow`]).
    type Row: EditedRow;
    /// Its form values, as drafts carry them (the JSON API's input shape, so `edit:*` channel clients share drafts).
    type Values: Serialize + DeserializeOwned + Clone + Send + Sync;

    /// The values a stored row shows.
    fn values_of(row: &Self::Row) -> Self::Values;

    /// `values` as they would be stored (validated and normalised: a form's `"false"` is the row's `false`), or `None`
    /// when they are invalid. Tells a form that was only looked at from one that was typed in.
    fn normalized(&self, values: &Self::Values) -> Option<Value>;

    /// The row as stored now (`None` if it is gone or the database failed).
    fn reload<'a>(&'a self, context: &'a ViewContext, row: &'a Self::Row) -> BoxFuture<'a, Option<Self::Row>>;

    /// A fenced save of `save` over `row` by `by`, merged per field with the row as it is now.
    fn save<'a>(
        &'a self,
        service: &'a EditingService,
        row: &'a Self::Row,
        save: SaveRequest<'a, Self::Values>,
        token: &'a OwnerToken,
        by: &'a Author,
    ) -> BoxFuture<'a, SaveOutcome<Self::Row>>;

    /// What the form calls field `name` (`title`, `data.venue`, …).
    fn field_label(&self, name: &str) -> String;

    /// Field `name`'s `value` as the conflict panel shows it: text, escaped; rich text from `rich` (sanitised).
    fn show_value(&self, name: &str, value: &Value, rich: Option<&SafeHtml>) -> Markup {
        let _ = (name, rich);
        value_markup(value)
    }

    /// The rich-text values among `fields`, sanitised for output (off the runtime's workers).
    fn rich<'a>(
        &'a self,
        context: &'a ViewContext,
        fields: &'a BTreeMap<String, FieldConflict>,
    ) -> BoxFuture<'a, ConflictRich> {
        let _ = (context, fields);
        Box::pin(async { ConflictRich::new() })
    }

    /// "record" or "entity", for messages.
    fn noun(&self) -> &'static str;

    /// Where the page goes when the row was deleted.
    fn list_path(&self) -> String;

    /// Whether a deleted row of this kind waits in a trash (records) rather than being gone at once (entities).
    fn has_trash(&self) -> bool {
        false
    }

    /// Whether `row` is in the trash now.
    fn in_trash<'a>(&'a self, context: &'a ViewContext, row: &'a Self::Row) -> BoxFuture<'a, bool> {
        let _ = (context, row);
        Box::pin(async { false })
    }

    /// Takes the row out of the trash, as it was (same version), for a form whose row was deleted while it was open.
    /// Kinds without a trash (entities) have nothing to restore.
    ///
    /// # Errors
    /// [`ContentError::NotFound`] when it is not in the trash (or the kind has none).
    fn restore<'a>(
        &'a self,
        context: &'a ViewContext,
        row: &'a Self::Row,
    ) -> BoxFuture<'a, Result<Self::Row, ContentError>> {
        let _ = (context, row);
        Box::pin(async { Err(ContentError::NotFound) })
    }
}
