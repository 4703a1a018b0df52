//! What the two collaborative forms (records and entities) share: the values shown (the owner's input, or the
//! owner's draft for a spectator), the row version they came from, the fenced save with its errors and conflicts, and
//! the reactions to the editing session (drafts, promotion, saves and deletes elsewhere).
//!
//! [`Editable`] is the part that differs: the row type, its form values, and how it is reloaded and saved.
//!
//! Every write of the owner is fenced by the user's current account too ([`WriteAccess`]): a save re-reads the user,
//! a draft relies on a check at most a second old, so a demoted (or signed-out-by-a-password-change) owner's page
//! stops writing even while its socket is still open.

use livebaton::editing::{Draft, OwnerToken};
use livebaton::pubsub::Broadcast;
use livebaton_content::ValidationErrors;
use livebaton_web::channel::BoxFuture;
use livebaton_web::live::LiveSocket;
use maud::{Markup, html};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ViewContext;
use super::collab::{Collab, SessionEvent, refused};
use super::markup::form_text;
use crate::content::ContentError;
use crate::live::{DRAFT_CHECK_AGE, WriteAccess};

/// The form field holding the row version the form's values came from.
pub const VERSION_FIELD: &str = "_lock_version";

/// The row version a submitted form says its values came from.
pub fn shown_version(form: &Value) -> Option<i64> {
    form_text(form, VERSION_FIELD).trim().parse().ok()
}

/// A kind of row a collaborative form edits.
pub trait Editable: Send + Sync + 'static {
    /// The stored row.
    type Row: Clone + Send + Sync;
    /// Its form values, as drafts carry them (the JSON API's input shape, so `edit:*` channel clients share drafts).
    type Values: Serialize + DeserializeOwned + Clone + Send + Sync;

    /// The values a stored row shows.
    fn values_of(row: &Self::Row) -> Self::Values;

    /// The row's version.
    fn lock_version(row: &Self::Row) -> i64;

    /// `values` as they would be stored (validated and normalised: a form's `"false"` is the row's `false`), or `None`
    /// when they are invalid. Tells a form that was only looked at from one that was typed in.
    fn normalized(&self, values: &Self::Values) -> Option<Value>;

    /// The row as stored now (`None` if it is gone or the database failed).
    fn reload<'a>(&'a self, context: &'a ViewContext, row: &'a Self::Row) -> BoxFuture<'a, Option<Self::Row>>;

    /// A fenced, versioned save of `values` over `row`.
    fn save<'a>(
        &'a self,
        context: &'a ViewContext,
        row: &'a Self::Row,
        base: i64,
        values: &'a Self::Values,
        token: &'a OwnerToken,
        by: &'a str,
    ) -> BoxFuture<'a, Result<Self::Row, ContentError>>;

    /// The current row carried by a version conflict, or the error unchanged.
    ///
    /// # Errors
    /// Any error that is not this kind's conflict.
    fn conflict(error: ContentError) -> Result<Self::Row, ContentError>;

    /// "record" or "entity", for messages.
    fn noun(&self) -> &'static str;

    /// Where the page goes when the row was deleted.
    fn list_path(&self) -> String;
}

/// A collaborative form's state over one row.
pub struct CollabForm<E: Editable> {
    /// What kind of row, with what it needs (a record's entity).
    pub editable: E,
    /// The row as this page last loaded it.
    pub row: E::Row,
    /// What the form shows.
    pub values: E::Values,
    /// The row version `values` started from: the base of a draft this page starts, so values loaded before someone
    /// else's write conflict on save instead of overwriting it.
    values_version: i64,
    /// The last save's per-field errors.
    pub errors: ValidationErrors,
    /// The row as it is now, after a save conflicted with it.
    pub conflict: Option<E::Row>,
    /// The page's place in the editing session.
    pub collab: Collab,
    /// Recovered values (with the row version they came from) that this page could not make the draft because
    /// someone else rejoined first and holds the baton: they become the draft if this page is promoted while the
    /// session still has none (see [`CollabForm::recover`]).
    held: Option<(E::Values, Option<i64>)>,
    user_name: String,
    /// The user's right to write, re-read before the owner's writes.
    access: WriteAccess,
}

impl<E: Editable> CollabForm<E> {
    /// A form over `row` for a user with `access` (loaded at mount); `draft` (the session's, for a late joiner) wins
    /// over the row's values.
    pub fn new(
        editable: E,
        row: E::Row,
        collab: Collab,
        user_name: String,
        access: WriteAccess,
        draft: Option<&Draft>,
    ) -> Self {
        let mut form = CollabForm {
            editable,
            values: E::values_of(&row),
            values_version: E::lock_version(&row),
            row,
            errors: ValidationErrors::default(),
            conflict: None,
            collab,
            held: None,
            user_name,
            access,
        };
        if let Some(draft) = draft {
            form.show_draft(draft);
        }
        form
    }

    /// Whether this page holds the baton.
    pub fn is_owner(&self) -> bool {
        self.collab.is_owner()
    }

    fn show_draft(&mut self, draft: &Draft) {
        if let Ok(values) = serde_json::from_value::<E::Values>(draft.params.clone()) {
            self.values = values;
            self.values_version = draft.base_lock_version;
            self.errors = ValidationErrors::default();
        }
    }

    /// Shows the row as stored.
    fn show_row(&mut self, row: E::Row) {
        self.values = E::values_of(&row);
        self.values_version = E::lock_version(&row);
        self.errors = ValidationErrors::default();
        self.row = row;
    }

    /// Whether the owner's user may still write (see [`WriteAccess::check`]; `max_age` is [`DRAFT_CHECK_AGE`] for
    /// drafts and zero for saves). A page that is not the owner is not asked: the editing session refuses it with its
    /// own message. A refusal is shown as a flash.
    pub async fn may_write(
        &mut self,
        context: &ViewContext,
        socket: &mut LiveSocket,
        max_age: std::time::Duration,
    ) -> bool {
        if !self.collab.is_owner() {
            return true;
        }
        match self.access.check(&context.store, max_age).await {
            Ok(()) => true,
            Err(refusal) => {
                socket.put_flash("error", refusal.message());
                false
            }
        }
    }

    /// [`CollabForm::may_write`] for a draft (a check at most [`DRAFT_CHECK_AGE`] old will do).
    pub async fn may_draft(&mut self, context: &ViewContext, socket: &mut LiveSocket) -> bool {
        self.may_write(context, socket, DRAFT_CHECK_AGE).await
    }

    /// Owner only: `values` become what the form shows and the session's draft (spectators see them). A spectator is
    /// told why nothing changed.
    pub fn publish(&mut self, values: E::Values, socket: &mut LiveSocket) -> bool {
        if !self.collab.is_owner() {
            socket.put_flash("error", self.collab.read_only_message());
            return false;
        }
        let params = serde_json::to_value(&values).unwrap_or(Value::Null);
        // A draft is broadcast to every spectator and saved from whoever holds it next: no bigger than a save may be.
        if draft_too_large(&params) {
            socket.put_flash("error", DRAFT_TOO_LARGE);
            return false;
        }
        self.values = values;
        match self.collab.update_draft(self.values_version, params) {
            Ok(_) => true,
            Err(not_owner) => {
                socket.put_flash("error", refused(&not_owner));
                false
            }
        }
    }

    /// The hidden field that carries the row version the form's values came from, so a recovery after a rejoin can
    /// say so (Rails' optimistic-locking field, under a name no row has).
    pub fn version_field(&self) -> Markup {
        html! { input type="hidden" name=(VERSION_FIELD) value=(self.values_version); }
    }

    /// Form recovery (the client's `recover` event after a rejoin): `values` are what the page showed before it lost
    /// its view, `shown_version` the row version they came from (the form's `_lock_version` field). They become this
    /// owner's draft only when the session has none: a draft that outlived the old view (the same tab reclaiming its
    /// place, or a promoted spectator's) is newer than anything the page held. When the row was saved meanwhile the
    /// conflict shows at once; the draft keeps the old version as its base, so no save overwrites that write
    /// unasked. A recovery with nothing typed changes nothing.
    ///
    /// After a restart the page that rejoins first owns the form, which may not be the page that owned it before. A
    /// spectator's recovery is therefore held, and the user told so: it becomes the draft if the page is promoted
    /// while the session still has none, and is dropped, with a notice, as soon as someone else's draft appears.
    pub fn recover(&mut self, values: E::Values, shown_version: Option<i64>, socket: &mut LiveSocket) {
        let unchanged = match (self.editable.normalized(&values), self.editable.normalized(&self.values)) {
            (Some(recovered), Some(shown)) => recovered == shown,
            _ => serde_json::to_value(&values).ok() == serde_json::to_value(&self.values).ok(),
        };
        if unchanged || self.collab.has_draft() {
            return;
        }
        if !self.collab.is_owner() {
            if !self.collab.can_edit {
                return; // never promoted (a viewer's form was read-only): nothing of theirs to keep
            }
            self.held = Some((values, shown_version));
            let owner = self.collab.owner_name().unwrap_or("Someone else");
            socket.put_flash(
                "error",
                format!(
                    "{owner} is editing now. Your unsaved changes are kept on this page and come back if you get to \
                     edit before anyone changes the form."
                ),
            );
            return;
        }
        let current = E::lock_version(&self.row);
        self.values_version = shown_version.unwrap_or(current);
        if !self.publish(values, socket) {
            return;
        }
        if self.values_version != current {
            self.conflict = Some(self.row.clone());
            let noun = self.editable.noun();
            socket.put_flash("error", format!("Your unsaved changes are back, but this {noun} was saved meanwhile."));
        } else {
            socket.put_flash("info", "Your unsaved changes are back.");
        }
    }

    /// A fenced save of the form's values; `resolved` is the row version the user chose to overwrite after a
    /// conflict. Every refusal keeps the values and says why.
    pub async fn save(&mut self, context: &ViewContext, socket: &mut LiveSocket, resolved: Option<i64>) {
        let token = match self.collab.fence() {
            Ok(token) => token,
            Err(not_owner) => return socket.put_flash("error", refused(&not_owner)),
        };
        if !self.may_write(context, socket, std::time::Duration::ZERO).await {
            return;
        }
        let base = resolved.or(token.base_lock_version()).unwrap_or(self.values_version);
        let noun = self.editable.noun();
        let outcome = self.editable.save(context, &self.row, base, &self.values, &token, &self.user_name).await;
        match outcome.map_err(E::conflict) {
            Ok(saved) => {
                self.show_row(saved);
                self.conflict = None;
                socket.put_flash("info", "Saved.");
            }
            Err(Ok(current)) => {
                self.conflict = Some(current);
                socket
                    .put_flash("error", format!("Not saved: someone else changed this {noun}. Your changes are kept."));
            }
            Err(Err(ContentError::Invalid(errors))) => {
                self.errors = errors;
                socket.put_flash("error", "Not saved: check the highlighted fields. Your changes are kept.");
            }
            Err(Err(ContentError::NotOwner(not_owner))) => socket.put_flash("error", refused(&not_owner)),
            Err(Err(ContentError::NotFound)) => {
                socket.put_flash("error", format!("This {noun} was deleted in another session."));
                socket.redirect(self.editable.list_path());
            }
            Err(Err(error)) => socket.put_flash("error", format!("{error}. Your changes are kept; try again.")),
        }
    }

    /// The events both forms share: `overwrite` and `discard` (after a conflict), `take_here`, `dismiss`. Returns
    /// false for any other event.
    pub async fn shared_event(&mut self, context: &ViewContext, name: &str, socket: &mut LiveSocket) -> bool {
        match name {
            "overwrite" => {
                let resolved = self.conflict.as_ref().map(E::lock_version);
                self.save(context, socket, resolved).await;
            }
            "discard" => {
                if !self.may_draft(context, socket).await {
                    return true;
                }
                if let (true, Some(current)) = (self.is_owner(), self.conflict.take()) {
                    self.collab.discard_draft(E::lock_version(&current));
                    self.show_row(current);
                }
            }
            "take_here" => {
                if let Err(error) = self.collab.take_here() {
                    socket.put_flash("error", error.to_string());
                }
            }
            "dismiss" => self.collab.notice = None,
            _ => return false,
        }
        true
    }

    /// Follows the editing session: the owner's drafts, promotion (continuing from the draft), saves and deletes
    /// made elsewhere.
    pub async fn handle_info(&mut self, context: &ViewContext, message: &Broadcast, socket: &mut LiveSocket) {
        match self.collab.handle(message) {
            SessionEvent::Nothing => {}
            SessionEvent::Promoted(None) => {
                if let Some((values, shown_version)) = self.held.take() {
                    self.recover(values, shown_version, socket);
                }
            }
            SessionEvent::Draft(draft) | SessionEvent::Promoted(Some(draft)) => {
                if self.held.take().is_some() {
                    let by = &draft.updated_by.name;
                    self.collab.notice = Some(format!("{by} changed the form: your earlier unsaved changes are gone."));
                }
                self.show_draft(&draft);
            }
            SessionEvent::DraftEnded => {
                if let Some(fresh) = self.editable.reload(context, &self.row).await {
                    self.show_row(fresh);
                }
            }
            SessionEvent::Saved { by } => {
                // Unsaved changes stay in the form (their save will conflict and show what changed); a form without
                // any shows the new row, so the next draft starts from it.
                let keeps_changes = self.collab.is_owner() && self.collab.has_draft();
                if by != self.user_name {
                    self.collab.notice = Some(format!("Saved by {by}."));
                }
                if let Some(fresh) = self.editable.reload(context, &self.row).await {
                    if keeps_changes {
                        self.row = fresh;
                    } else {
                        self.show_row(fresh);
                    }
                }
            }
            SessionEvent::Deleted => {
                let noun = self.editable.noun();
                socket.put_flash("error", format!("This {noun} was deleted in another session."));
                socket.redirect(self.editable.list_path());
            }
        }
    }
}

/// Why a draft was refused for its size.
pub(crate) const DRAFT_TOO_LARGE: &str =
    "These changes are too large to keep: a record holds at most 20,000 bytes of content. Shorten a field.";

/// Whether draft `params` hold more than one record may ([`livebaton_content::MAX_CONTENT_BYTES`], as JSON).
pub(crate) fn draft_too_large(params: &Value) -> bool {
    serde_json::to_vec(params).map_or(true, |json| json.len() > livebaton_content::MAX_CONTENT_BYTES)
}
