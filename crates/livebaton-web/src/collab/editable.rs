//! [`Editable`]: what an application tells a collaborative form about its own type: the row, its form values, how it
//! is reloaded and saved, and how its fields are named and shown in the conflict panel. Everything else (who holds
//! the baton, drafts, promotion, recovery, fenced saves, conflicts, the bar) is the form's ([`super::CollabForm`]).

use std::collections::BTreeMap;
use std::time::Duration;

use livebaton::editing::merge::{self, FieldConflict, MergeConflict, MergeError, Resolutions, SaveRequest, Saved};
use livebaton::editing::{DraftBase, Editing, EditingError, NotOwner, OwnerToken};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Author, FormNotice, SavedNotice};
use crate::channel::BoxFuture;
use crate::live::Html;

/// A stored row a collaborative form edits: its version (bumped by every save, checked by the next) and its values in
/// merge shape (a JSON object, one member per field, see [`livebaton::editing::merge`]).
pub trait VersionedRow: Clone + Send + Sync + 'static {
    /// Its version.
    fn lock_version(&self) -> i64;

    /// Its values in merge shape: the base of a draft started from it.
    fn values(&self) -> Value;
}

/// How a save from a collaborative form ended. Only [`SaveOutcome::Saved`] wrote anything; every other outcome keeps
/// the form's values.
#[derive(Debug)]
pub enum SaveOutcome<Row, Errors> {
    /// Committed (tell the session: [`super::FormNotice::Saved`]).
    Saved(Saved<Row>),
    /// Both sides changed some fields (only those are listed; none when the row kept changing during the save).
    Conflict(MergeConflict<Row>),
    /// The values (or the resolutions) are invalid: the form shows `Errors` by its fields.
    Invalid(Errors),
    /// The saving page does not hold the baton (the fence refused it at commit).
    NotOwner(NotOwner),
    /// The row is gone (deleted, or in the trash).
    Gone,
    /// The database or the editing roster failed (log the cause; the user is told to try again).
    Unavailable,
}

/// Why a row could not be taken out of the trash.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// It is not in the trash (restored meanwhile, deleted for good, or the kind has no trash).
    #[error("not in the trash")]
    NotInTrash,
    /// Anything else, worded for the user.
    #[error("{0}")]
    Failed(String),
}

/// Each conflicting field's values as the conflict panel shows them, `(mine, theirs)` by field name.
pub type ConflictValues = BTreeMap<String, (Html, Html)>;

/// The most bytes of JSON a draft may hold by default ([`Editable::draft_too_large`]).
pub const DEFAULT_MAX_DRAFT_BYTES: usize = 64 * 1024;

/// A kind of row a collaborative form edits: the application's own type. See the module documentation.
pub trait Editable: Send + Sync + 'static {
    /// The stored row.
    type Row: VersionedRow;
    /// Its form values, as drafts carry them (the same JSON a form submits, so a draft survives a hand-over).
    type Values: Serialize + DeserializeOwned + Clone + Send + Sync;
    /// Per-field validation errors, as the application's form shows them.
    type Errors: Default + Send + Sync;

    /// The values a stored row shows.
    fn values_of(row: &Self::Row) -> Self::Values;

    /// `values` as they would be stored (validated and normalised: a form's `"false"` is the row's `false`), or `None`
    /// when they are invalid. Tells a form that was only looked at from one that was typed in.
    fn normalized(&self, values: &Self::Values) -> Option<Value>;

    /// The row as stored now (`None` if it is gone or the database failed).
    fn reload<'a>(&'a self, row: &'a Self::Row) -> BoxFuture<'a, Option<Self::Row>>;

    /// A fenced save of `save` over `row` by `by`: merge it per field with the row as it is now
    /// ([`livebaton::editing::merge::merge`]), commit only while `token` still holds the baton
    /// ([`livebaton::editing::Editing::verify_with_authority`] just before the commit) and the row's version is what
    /// the merge read, then end the draft ([`livebaton::editing::Editing::finish_save`]) and tell the session
    /// ([`super::FormNotice::Saved`] on its form topic).
    /// [`save_merged`] does all of it for an application that implements [`MergedSave`]; `editing` is the engine the
    /// form's session runs on.
    fn save<'a>(
        &'a self,
        editing: &'a Editing,
        row: &'a Self::Row,
        save: SaveRequest<'a, Self::Values>,
        token: &'a OwnerToken,
        by: &'a Author,
    ) -> BoxFuture<'a, SaveOutcome<Self::Row, Self::Errors>>;

    /// Whether the page's user may still write now (their account or role may have changed since the page mounted),
    /// given a check at most `max_age` old is good enough; `Err` holds what to tell them. Asked before every draft
    /// and save of the owner. By default always.
    fn may_write(&mut self, max_age: Duration) -> BoxFuture<'_, Result<(), String>> {
        let _ = max_age;
        Box::pin(async { Ok(()) })
    }

    /// What the form calls field `name` (`title`, `data.venue`, …).
    fn field_label(&self, name: &str) -> String {
        name.to_owned()
    }

    /// The conflicting fields' values as the conflict panel shows them, by field name. By default every value as
    /// escaped text ([`value_html`]); an application with rich text sanitises its values here (off the runtime's
    /// workers: it may be slow).
    fn conflict_values<'a>(&'a self, fields: &'a BTreeMap<String, FieldConflict>) -> BoxFuture<'a, ConflictValues> {
        let shown = fields
            .iter()
            .map(|(name, field)| (name.clone(), (value_html(&field.mine), value_html(&field.theirs))))
            .collect();
        Box::pin(async move { shown })
    }

    /// What the row is called in messages ("record", "note").
    fn noun(&self) -> &'static str;

    /// Where the page goes when the row was deleted and there is no trash to restore it from.
    fn list_path(&self) -> String;

    /// Whether a deleted row of this kind waits in a trash (it can be restored from the form) rather than being gone.
    fn has_trash(&self) -> bool {
        false
    }

    /// Whether `row` is in the trash now.
    fn in_trash<'a>(&'a self, row: &'a Self::Row) -> BoxFuture<'a, bool> {
        let _ = row;
        Box::pin(async { false })
    }

    /// Takes the row out of the trash, as it was (same version), for a form whose row was deleted while it was open.
    ///
    /// # Errors
    /// [`RestoreError::NotInTrash`] when it is not there (or the kind has no trash).
    fn restore<'a>(&'a self, row: &'a Self::Row) -> BoxFuture<'a, Result<Self::Row, RestoreError>> {
        let _ = row;
        Box::pin(async { Err(RestoreError::NotInTrash) })
    }

    /// Why draft `params` are refused for their size, or `None`: a draft is sent to every spectator and saved by
    /// whoever holds the baton next, so it should be no bigger than a save may be. By default at most
    /// [`DEFAULT_MAX_DRAFT_BYTES`] of JSON.
    fn draft_too_large(&self, params: &Value) -> Option<String> {
        let size = serde_json::to_vec(params).map_or(usize::MAX, |json| json.len());
        (size > DEFAULT_MAX_DRAFT_BYTES).then(|| "These changes are too large to keep: shorten a field.".to_owned())
    }
}

/// A value as text in the conflict panel: a list as its items, nothing as "(empty)"; always escaped.
pub fn value_html(value: &Value) -> Html {
    let text = match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map_or_else(|| item.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    };
    if text.trim().is_empty() {
        Html::new(r#"<span class="muted">(empty)</span>"#)
    } else {
        Html::new(Html::escape(&text))
    }
}

/// What [`save_merged`] needs of the application beyond [`Editable`]: validation, and one compare-and-set write.
pub trait MergedSave: Editable {
    /// `values` validated and normalised as they would be stored, or the errors to show by field. The row's
    /// [`VersionedRow::values`] must be the JSON of its validated values, so that a field nobody changed compares
    /// equal on both sides of a merge.
    ///
    /// # Errors
    /// The per-field errors.
    fn validate(&self, values: &Self::Values) -> Result<Self::Values, Self::Errors>;

    /// Writes `values` (validated) over `row` only if the stored row is still at `row`'s version, bumping it: the row
    /// as written, or `Ok(None)` when it moved on meanwhile (or is gone).
    ///
    /// # Errors
    /// The store failed (logged; the user is told to try again, with the draft kept).
    fn commit<'a>(
        &'a self,
        row: &'a Self::Row,
        values: &'a Self::Values,
    ) -> BoxFuture<'a, Result<Option<Self::Row>, String>>;
}

/// How many times [`save_merged`] merges again when the row moved between its read and its commit.
const ATTEMPTS: usize = 3;

/// A whole fenced save for an [`Editable::save`]: validates the values, checks the baton (across nodes), reads the row
/// as it is now, merges the values into it per field ([`livebaton::editing::merge`]: a field only the other side
/// changed keeps their value, a field both changed is a conflict unless the user chose), validates the result,
/// checks the baton again and commits it only if the row has not moved (merging again if it has, a few times), then
/// ends the session's draft and tells the session `saved` ([`FormNotice`]).
pub async fn save_merged<E: MergedSave>(
    editable: &E,
    editing: &Editing,
    row: &E::Row,
    save: SaveRequest<'_, E::Values>,
    token: &OwnerToken,
    by: &Author,
) -> SaveOutcome<E::Row, E::Errors> {
    let mine = match editable.validate(save.mine) {
        Ok(mine) => serde_json::to_value(&mine).unwrap_or(Value::Null),
        Err(errors) => return SaveOutcome::Invalid(errors),
    };
    match editing.verify_with_authority(token).await {
        Ok(()) => {}
        Err(EditingError::NotOwner(not_owner)) => {
            super::count_not_owner();
            return SaveOutcome::NotOwner(not_owner);
        }
        Err(error) => {
            tracing::error!(%error, target = %token.target(), "a save could not check the baton");
            return SaveOutcome::Unavailable;
        }
    }
    let Some(mut current) = editable.reload(row).await else { return SaveOutcome::Gone };
    let none = Resolutions::new();
    for _ in 0..ATTEMPTS {
        let theirs = current.values();
        // The row still at the draft's base is the base itself: no snapshot needed.
        let base = if current.lock_version() == save.base_version { Some(&theirs) } else { save.base_values };
        // Choices made against an older row do not answer for values their maker never saw.
        let resolve = if save.resolved_against == Some(current.lock_version()) { save.resolve } else { &none };
        let merged = match merge::merge(base, &mine, &theirs, resolve) {
            Ok(merged) => merged,
            Err(MergeError::Conflicts(fields)) => return SaveOutcome::Conflict(MergeConflict { current, fields }),
            Err(error) => {
                // The form offers choices only for the fields in conflict: this is a client's doing.
                tracing::warn!(%error, "a save's resolutions were refused");
                return SaveOutcome::Conflict(MergeConflict { current, fields: Default::default() });
            }
        };
        let values = match serde_json::from_value::<E::Values>(merged.values) {
            Ok(values) => match editable.validate(&values) {
                Ok(values) => values,
                Err(errors) => return SaveOutcome::Invalid(errors),
            },
            Err(error) => {
                tracing::error!(%error, "merged values do not read back as the form's values");
                return SaveOutcome::Unavailable;
            }
        };
        if let Err(not_owner) = editing.verify(token) {
            super::count_not_owner();
            return SaveOutcome::NotOwner(not_owner);
        }
        match editable.commit(&current, &values).await {
            Ok(Some(saved)) => {
                editing.finish_save(token, DraftBase::new(saved.lock_version(), saved.values()));
                let notice = FormNotice::Saved(SavedNotice::new(saved.lock_version(), by, merged.merged.clone()));
                if let Err(error) = editing.presence().pubsub().broadcast(&token.target().form_topic(), notice) {
                    tracing::warn!(%error, "a save's notice was not sent");
                }
                return SaveOutcome::Saved(Saved { row: saved, merged: merged.merged });
            }
            // The row moved between the read and the commit: merge again with the newer row.
            Ok(None) => match editable.reload(&current).await {
                Some(newer) => current = newer,
                None => return SaveOutcome::Gone,
            },
            Err(error) => {
                tracing::error!(%error, "a save could not be committed");
                return SaveOutcome::Unavailable;
            }
        }
    }
    SaveOutcome::Conflict(MergeConflict { current, fields: Default::default() })
}
