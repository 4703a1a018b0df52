//! [`CollabForm`]: a collaborative form over the application's own type ([`Editable`]): the values shown (the
//! owner's input, or the owner's draft for a spectator), the row version they came from, the fenced save with its
//! errors and conflicts, and the reactions to the editing session (drafts, promotion, saves and deletes elsewhere).
//!
//! A save over a row that moved since the draft began is merged per field ([`SaveRequest`] to the application's
//! [`Editable::save`]): what only the other side changed is kept, and only the fields both changed are offered in the
//! conflict panel, each with "yours" and "theirs" side by side and a choice; the choices save with `resolve`. The
//! draft stays in the form until it is saved or discarded.
//!
//! Every write of the owner may be fenced by the user's current account too ([`Editable::may_write`]): a save asks
//! for a fresh check, a draft accepts one at most [`DRAFT_CHECK_AGE`] old, so a demoted owner's page stops writing
//! even while its socket is still open.

use std::time::Duration;

use livebaton::editing::merge::{MergeConflict, Resolutions, SaveRequest};
use livebaton::editing::{Draft, DraftBase, EditTarget, Editing, EditingError, KeptDraft};
use livebaton::pubsub::Broadcast;
use serde_json::Value;

use super::conflict::form_text;
use super::editable::{ConflictValues, Editable, RestoreError, SaveOutcome, VersionedRow};
use super::member::{SessionEvent, SessionMember, refused};
use crate::live::{Html, LiveSocket, MountError, Session};

/// How old a check of the owner's right to write may be for a draft ([`Editable::may_write`]); saves ask for a fresh
/// one.
pub const DRAFT_CHECK_AGE: Duration = Duration::from_secs(1);

/// The form field holding the row version the form's values came from.
pub const VERSION_FIELD: &str = "_lock_version";

/// The row version a submitted form says its values came from.
pub fn shown_version(form: &Value) -> Option<i64> {
    form_text(form, VERSION_FIELD).trim().parse().ok()
}

/// How the row of an open form went away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gone {
    /// Moved to the trash: it can be restored, with its id and version, and the form saved after.
    Trash,
    /// Removed for good.
    Purged,
}

/// What the form's save status (next to Save) says about its values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaveStatus {
    /// The form shows the row as stored.
    Unchanged,
    /// The session has unsaved changes (this page's, or the owner's for a spectator).
    Unsaved,
    /// Saved at `at` (ms since the Unix epoch), by this page or by `by`.
    Saved {
        /// When.
        at: u64,
        /// Who, when it was someone else.
        by: Option<String>,
    },
    /// The last save failed, and why (the changes are kept).
    NotSaved(String),
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
    pub errors: E::Errors,
    /// After a save conflicted: the row as it is now, and only the fields both sides changed.
    pub conflict: Option<MergeConflict<E::Row>>,
    /// The conflict's values as the panel shows them.
    conflict_shown: ConflictValues,
    /// The page's place in the editing session.
    pub member: SessionMember,
    /// Recovered values (with the row version they came from) that this page could not make the draft because
    /// someone else rejoined first and holds the baton: they become the draft if this page is promoted while the
    /// session still has none (see [`CollabForm::recover`]).
    held: Option<(E::Values, Option<i64>)>,
    /// The unsaved changes an earlier session of this form left for this user, offered until restored or discarded
    /// ([`CollabForm::offer_kept`]).
    kept: Option<KeptDraft>,
    /// The row was deleted while this page was open: the form stays, with the values it held, so nobody's text is
    /// lost; a row in the trash can be restored from here and editing goes on.
    gone: Option<Gone>,
    /// What the save status says.
    status: SaveStatus,
}

impl<E: Editable> CollabForm<E> {
    /// A form over `row` for the page `member` (joined already, see [`SessionMember::join`]); `draft` (the session's,
    /// for a late joiner) wins over the row's values.
    pub fn new(editable: E, row: E::Row, member: SessionMember, draft: Option<&Draft>) -> Self {
        let mut form = CollabForm {
            editable,
            values: E::values_of(&row),
            values_version: row.lock_version(),
            row,
            errors: E::Errors::default(),
            conflict: None,
            conflict_shown: ConflictValues::new(),
            member,
            held: None,
            kept: None,
            gone: None,
            status: SaveStatus::Unchanged,
        };
        if let Some(draft) = draft {
            form.show_draft(draft);
            form.status = SaveStatus::Unsaved;
        }
        form
    }

    /// Joins `target`'s editing session as this page (subscribing it to the session's topics for as long as the view
    /// lives) and builds the form over `row`, showing the session's draft for a late joiner and offering the user's
    /// kept draft; `can_edit` is whether the user may hold the baton. Call it from the view's `mount`.
    ///
    /// # Errors
    /// [`MountError::Failed`] if the presence backend is unavailable or the tab id is invalid.
    pub async fn mount(
        editable: E,
        row: E::Row,
        editing: &Editing,
        target: EditTarget,
        can_edit: bool,
        session: &Session,
        socket: &mut LiveSocket,
    ) -> Result<Self, MountError> {
        let mut member = SessionMember::new(editing, target, session, can_edit);
        let draft = member.join(session, socket).await?;
        let mut form = CollabForm::new(editable, row, member, draft.as_deref());
        form.offer_kept().await;
        Ok(form)
    }

    /// Whether this page holds the baton.
    pub fn is_owner(&self) -> bool {
        self.member.is_owner()
    }

    /// Whether the form waits for its owner to restore or discard the unsaved changes kept for them: until then it is
    /// read-only, so that a new draft never replaces kept changes its author did not choose to drop.
    pub fn awaits_choice(&self) -> bool {
        self.kept.is_some() && self.is_owner()
    }

    /// Looks for unsaved changes an earlier session of this form left for this user (they left by a link, closed the
    /// tab, or the server restarted), to offer them: "You have unsaved changes from … — Restore / Discard". Not
    /// offered when the form already shows them (the session's draft has the same values). A store that cannot be
    /// read offers nothing now (the changes stay kept; the log says why).
    pub async fn offer_kept(&mut self) {
        match self.member.find_kept().await {
            Ok(Some(kept)) => {
                let live = self.member.draft();
                if live.is_none_or(|live| live.params != kept.draft.params) {
                    self.kept = Some(kept);
                }
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "kept drafts could not be read; none offered"),
        }
    }

    /// The offer of kept unsaved changes: when they were made, and Restore (for the owner) and Discard.
    pub fn kept_offer(&self) -> Html {
        let Some(kept) = &self.kept else { return Html::default() };
        let when = date_time(i64::try_from(kept.draft.updated_at).unwrap_or(i64::MAX));
        let choice = if self.is_owner() {
            r#" Restore them or discard them to edit. <button class="small" type="button" phx-click="restore_draft">Restore</button>"#
        } else {
            " You can restore them once you are editing."
        };
        Html::new(format!(
            r#"<div class="notice kept-draft" id="kept-draft" role="status">You have unsaved changes from <time datetime="{when}">{when}</time>.{choice} <button class="small secondary" type="button" phx-click="discard_draft">Discard</button></div>"#
        ))
    }

    /// What the form element says to the browser about leaving: the question to ask before an in-app link takes the
    /// owner away from unsaved changes (`data-lb-confirm-leave`), and whether there are some now (`data-lb-unsaved`;
    /// the client also asks while a change of its own is not sent yet).
    pub fn leave_guard(&self) -> (Option<&'static str>, bool) {
        if !self.is_owner() {
            return (None, false);
        }
        let question =
            "You have unsaved changes. Leave this page? They are kept for you to restore when you come back.";
        (Some(question), self.member.has_draft())
    }

    async fn restore_kept(&mut self, socket: &mut LiveSocket) {
        if self.kept.is_none() {
            return;
        }
        match self.member.restore_kept().await {
            Ok(draft) => {
                self.kept = None;
                self.show_draft(&draft);
                if draft.base_lock_version == self.row.lock_version() {
                    socket.put_flash("info", "Your unsaved changes are back.");
                } else {
                    let noun = self.editable.noun();
                    socket.put_flash(
                        "info",
                        format!(
                            "Your unsaved changes are back. This {noun} was saved since: saving keeps the newer values                              of fields you did not change, and asks about fields you both changed."
                        ),
                    );
                }
            }
            Err(EditingError::NoKeptDraft) => {
                self.kept = None;
                socket.put_flash("error", EditingError::NoKeptDraft.to_string());
            }
            Err(EditingError::NotOwner(not_owner)) => socket.put_flash("error", refused(&not_owner)),
            Err(error) => socket.put_flash("error", format!("Not restored: {error}. They are still kept.")),
        }
    }

    async fn discard_kept(&mut self, socket: &mut LiveSocket) {
        let Some(kept) = &self.kept else { return };
        match self.member.discard_kept(kept.draft.updated_at).await {
            Ok(true) => {
                self.kept = None;
                socket.put_flash("info", "Discarded your earlier unsaved changes.");
            }
            Ok(false) => {
                // Restored or discarded elsewhere, or newer ones were kept meanwhile: show what is kept now.
                self.kept = None;
                self.offer_kept().await;
                if self.kept.is_some() {
                    socket.put_flash("info", "Newer unsaved changes of yours were kept meanwhile; here they are.");
                }
            }
            Err(error) => socket.put_flash("error", format!("Not discarded: {error}. Try again.")),
        }
    }

    fn show_draft(&mut self, draft: &Draft) {
        if let Ok(values) = serde_json::from_value::<E::Values>(draft.params.clone()) {
            self.values = values;
            self.values_version = draft.base_lock_version;
            self.errors = E::Errors::default();
        }
    }

    /// Shows the row as stored.
    fn show_row(&mut self, row: E::Row) {
        self.values = E::values_of(&row);
        self.values_version = row.lock_version();
        self.errors = E::Errors::default();
        self.row = row;
    }

    /// Whether the owner's user may still write ([`Editable::may_write`]; `max_age` is [`DRAFT_CHECK_AGE`] for drafts
    /// and zero for saves). A page that is not the owner is not asked: the editing session refuses it with its own
    /// message. A refusal is shown as a flash.
    pub async fn may_write(&mut self, socket: &mut LiveSocket, max_age: Duration) -> bool {
        if !self.member.is_owner() {
            return true;
        }
        match self.editable.may_write(max_age).await {
            Ok(()) => true,
            Err(refusal) => {
                socket.put_flash("error", refusal);
                false
            }
        }
    }

    /// [`CollabForm::may_write`] for a draft (a check at most [`DRAFT_CHECK_AGE`] old will do).
    pub async fn may_draft(&mut self, socket: &mut LiveSocket) -> bool {
        self.may_write(socket, DRAFT_CHECK_AGE).await
    }

    /// Owner only: `values` become what the form shows and the session's draft (spectators see them). A spectator is
    /// told why nothing changed.
    pub fn publish(&mut self, values: E::Values, socket: &mut LiveSocket) -> bool {
        if !self.member.is_owner() {
            socket.put_flash("error", self.member.read_only_message());
            return false;
        }
        if self.awaits_choice() {
            socket.put_flash("error", "Restore or discard your earlier unsaved changes first: they are shown above.");
            return false;
        }
        let params = serde_json::to_value(&values).unwrap_or(Value::Null);
        // A draft is broadcast to every spectator and saved from whoever holds it next: no bigger than a save may be.
        if let Some(refusal) = self.editable.draft_too_large(&params) {
            socket.put_flash("error", refusal);
            return false;
        }
        self.values = values;
        // The base counts only when the draft starts: spare building the row's values on every keystroke.
        let base = if self.member.has_draft() { DraftBase::from(self.values_version) } else { self.draft_base() };
        match self.member.update_draft(base, params) {
            Ok(_) => {
                self.status = SaveStatus::Unsaved;
                true
            }
            Err(not_owner) => {
                socket.put_flash("error", refused(&not_owner));
                false
            }
        }
    }

    /// What a draft this page starts is based on: the version its values came from, with that row's values when the
    /// page has it (not after showing a recovered or a held form of an older version).
    fn draft_base(&self) -> DraftBase {
        if self.row.lock_version() == self.values_version {
            DraftBase::new(self.values_version, self.row.values())
        } else {
            DraftBase::from(self.values_version)
        }
    }

    /// The hidden field that carries the row version the form's values came from, so a recovery after a rejoin can
    /// say so (Rails' optimistic-locking field, under a name no row has).
    pub fn version_field(&self) -> Html {
        Html::new(format!(r#"<input type="hidden" name="{VERSION_FIELD}" value="{}">"#, self.values_version))
    }

    /// Form recovery (the client's `recover` event after a rejoin): `values` are what the page showed before it lost
    /// its view, `shown_version` the row version they came from (the form's `_lock_version` field). They become this
    /// owner's draft only when the session has none: a draft that outlived the old view (the same tab reclaiming its
    /// place, or a promoted spectator's) is newer than anything the page held. When the row was saved meanwhile the
    /// page says so at once; the draft keeps the old version as its base, with no base values (the page never had
    /// that row), so its save offers every field where it differs from the row and overwrites nothing unasked. A
    /// recovery with nothing typed changes nothing.
    ///
    /// After a restart the page that rejoins first owns the form, which may not be the page that owned it before. A
    /// spectator's recovery is therefore held, and the user told so: it becomes the draft if the page is promoted
    /// while the session still has none, and is dropped, with a notice, as soon as someone else's draft appears.
    pub async fn recover(&mut self, values: E::Values, shown_version: Option<i64>, socket: &mut LiveSocket) {
        let unchanged = match (self.editable.normalized(&values), self.editable.normalized(&self.values)) {
            (Some(recovered), Some(shown)) => recovered == shown,
            _ => serde_json::to_value(&values).ok() == serde_json::to_value(&self.values).ok(),
        };
        if unchanged || self.member.has_draft() {
            return;
        }
        if !self.member.is_owner() {
            if !self.member.can_edit {
                return; // never promoted (a viewer's form was read-only): nothing of theirs to keep
            }
            self.held = Some((values, shown_version));
            let owner = self.member.owner_name().unwrap_or("Someone else");
            socket.put_flash(
                "error",
                format!(
                    "{owner} is editing now. Your unsaved changes are kept on this page and come back if you get to \
                     edit before anyone changes the form."
                ),
            );
            return;
        }
        let current = self.row.lock_version();
        self.values_version = shown_version.unwrap_or(current);
        let recovered = serde_json::to_value(&values).ok();
        // The page brings back what it showed when it lost its view (a restart): newer than anything kept from it,
        // so the offer goes (a form waiting for the choice recovers nothing: it showed the row, unchanged). The kept
        // copy is forgotten when it is the same; otherwise it stays kept and is offered next time.
        let offered = self.kept.take();
        if !self.publish(values, socket) {
            self.kept = offered;
            return;
        }
        if let Some(kept) = offered.filter(|kept| recovered.as_ref() == Some(&kept.draft.params)) {
            if let Err(error) = self.member.discard_kept(kept.draft.updated_at).await {
                tracing::warn!(%error, "a recovered draft's kept copy could not be removed");
            }
        }
        if self.values_version != current {
            // The save merges them with the row, and asks about every field the two disagree on: the page does not
            // know the row its values came from.
            let noun = self.editable.noun();
            socket.put_flash(
                "error",
                format!(
                    "Your unsaved changes are back, but this {noun} was saved meanwhile: saving asks which values to keep \
                     where they differ."
                ),
            );
        } else {
            socket.put_flash("info", "Your unsaved changes are back.");
        }
    }

    /// A fenced save of the form's values, merged per field with the row as it is now; `resolve` holds the user's
    /// choices for the fields of the conflict on row version `resolved_against`. Every refusal keeps the values and
    /// says why; a conflict shows only the fields both sides changed.
    pub async fn save(&mut self, socket: &mut LiveSocket, resolve: &Resolutions, resolved_against: Option<i64>) {
        if let Some(gone) = self.gone {
            return socket.put_flash("error", self.gone_message(gone));
        }
        let token = match self.member.fence() {
            Ok(token) => token,
            Err(not_owner) => return socket.put_flash("error", refused(&not_owner)),
        };
        if !self.may_write(socket, Duration::ZERO).await {
            return;
        }
        // The draft's base (the page published its values just before); without a draft, what the page shows.
        let fallback = self.draft_base();
        let (base_version, base_values) = match token.draft() {
            Some(draft) => (draft.base_lock_version, draft.base_values.clone()),
            None => (fallback.lock_version, fallback.values),
        };
        let request = SaveRequest {
            mine: &self.values,
            base_version,
            base_values: base_values.as_ref(),
            resolve,
            resolved_against,
        };
        let noun = self.editable.noun();
        let editing = self.member.editing().clone();
        let outcome = self.editable.save(&editing, &self.row, request, &token, self.member.author()).await;
        match outcome {
            SaveOutcome::Saved(saved) => {
                let labels: Vec<String> = saved.merged.iter().map(|name| self.editable.field_label(name)).collect();
                self.show_row(saved.row);
                self.conflict = None;
                self.conflict_shown.clear();
                self.status = SaveStatus::Saved { at: now_ms(), by: None };
                if labels.is_empty() {
                    socket.put_flash("info", "Saved.");
                } else {
                    let kept = labels.join(", ");
                    socket.put_flash("info", format!("Saved. Kept the newer values saved meanwhile of: {kept}."));
                }
            }
            SaveOutcome::Conflict(conflict) => {
                self.conflict_shown = self.editable.conflict_values(&conflict.fields).await;
                let again = resolved_against == Some(conflict.current.lock_version());
                self.conflict = Some(conflict);
                let message = if again {
                    "Not saved: choose yours or theirs for each field listed. Your changes are kept.".to_owned()
                } else {
                    format!("Not saved: someone else changed the same fields of this {noun}. Your changes are kept.")
                };
                self.not_saved(socket, message);
            }
            SaveOutcome::Invalid(errors) => {
                self.errors = errors;
                self.not_saved(socket, "Not saved: check the highlighted fields. Your changes are kept.".to_owned());
            }
            SaveOutcome::NotOwner(not_owner) => self.not_saved(socket, refused(&not_owner)),
            SaveOutcome::Gone => {
                self.row_gone(socket).await;
                self.status = SaveStatus::NotSaved(format!("Not saved: this {noun} was deleted."));
            }
            SaveOutcome::Unavailable => {
                let message = "Not saved: the server could not save it just now. Your changes are kept; try again.";
                self.not_saved(socket, message.to_owned());
            }
        }
    }

    /// A failed save: the status and a flash say why.
    fn not_saved(&mut self, socket: &mut LiveSocket, message: String) {
        socket.put_flash("error", message.clone());
        self.status = SaveStatus::NotSaved(message);
    }

    /// What the save status says now.
    pub fn status(&self) -> &SaveStatus {
        &self.status
    }

    /// The save status, to put next to Save (a polite live region: screen readers announce its changes):
    /// "Unsaved changes", "Saved at 14:02 UTC", "Saved by Bob at 14:02 UTC", "Not saved: …". The browser client
    /// shows "Saving…" in it while a save is on its way, and why a save cannot go while offline.
    pub fn save_status(&self) -> Html {
        let (state, text) = match &self.status {
            SaveStatus::Unchanged => ("unchanged", String::new()),
            SaveStatus::Unsaved => ("unsaved", "Unsaved changes".to_owned()),
            SaveStatus::Saved { at, by: None } => ("saved", format!("Saved at {}", clock(*at))),
            SaveStatus::Saved { at, by: Some(by) } => ("saved", format!("Saved by {by} at {}", clock(*at))),
            SaveStatus::NotSaved(reason) => ("not-saved", reason.clone()),
        };
        Html::new(format!(
            r#"<span class="save-status" id="save-status" role="status" aria-live="polite" data-status="{state}">{}</span>"#,
            Html::escape(&text)
        ))
    }

    /// The events both forms share: `resolve` (the conflict panel's choices, `resolve[<field>]` = `mine` or
    /// `theirs`) and `discard` (after a conflict), `restore_draft` and `discard_draft` (the kept unsaved changes),
    /// `restore_row` (a row deleted while the form was open), `take_here`, `dismiss`. Returns false for any other
    /// event.
    pub async fn shared_event(&mut self, name: &str, value: &Value, socket: &mut LiveSocket) -> bool {
        match name {
            "resolve" => {
                let Some(conflict) = &self.conflict else { return true };
                let against = conflict.current.lock_version();
                let resolve = super::conflict::choices(conflict, value);
                self.save(socket, &resolve, Some(against)).await;
            }
            "discard" => {
                if !self.may_draft(socket).await {
                    return true;
                }
                if let (true, Some(conflict)) = (self.is_owner(), self.conflict.take()) {
                    let current = conflict.current;
                    self.conflict_shown.clear();
                    self.member.discard_draft(DraftBase::new(current.lock_version(), current.values()));
                    self.show_row(current);
                    self.status = SaveStatus::Unchanged;
                }
            }
            "restore_draft" => {
                if self.may_draft(socket).await {
                    self.restore_kept(socket).await;
                }
            }
            "discard_draft" => self.discard_kept(socket).await,
            "restore_row" => self.restore_row(socket).await,
            "take_here" => {
                if let Err(error) = self.member.take_here() {
                    socket.put_flash("error", error.to_string());
                }
            }
            "dismiss" => self.member.notice = None,
            _ => return false,
        }
        true
    }

    /// The events of a collaborative form: `draft` (a change) and `save` (a submit) with the form's values, read by
    /// `read` from the event's value (and the form, for what the submitted form does not carry) (each checked with [`Editable::may_write`] first: a save must not even become
    /// the draft unless the user may still write now), `recover` (form recovery after a rejoin), and every event of
    /// [`CollabForm::shared_event`]. Returns false for any other event (the view's own).
    pub async fn handle_event(
        &mut self,
        name: &str,
        value: &Value,
        socket: &mut LiveSocket,
        read: impl Fn(&Self, &Value) -> E::Values,
    ) -> bool {
        match name {
            "draft" | "save" => {
                let max_age = if name == "save" { Duration::ZERO } else { DRAFT_CHECK_AGE };
                if self.may_write(socket, max_age).await {
                    let values = read(self, value);
                    if self.publish(values, socket) && name == "save" {
                        self.save(socket, &Resolutions::new(), None).await;
                    }
                }
                true
            }
            "recover" => {
                if self.may_draft(socket).await {
                    let values = read(self, value);
                    self.recover(values, shown_version(value), socket).await;
                }
                true
            }
            other => self.shared_event(other, value, socket).await,
        }
    }

    /// What to tell a page whose row went away `gone`.
    fn gone_message(&self, gone: Gone) -> String {
        let noun = self.editable.noun();
        match gone {
            Gone::Trash if self.is_owner() => format!(
                "This {noun} was moved to the trash. Your changes are still here: restore it to keep editing and \
                 save them."
            ),
            Gone::Trash => format!("This {noun} was moved to the trash."),
            Gone::Purged => format!(
                "This {noun} was deleted for good. Its form stays open with the values it held: copy what you need."
            ),
        }
    }

    /// The row went away while the page was open. A kind without a trash (entities, whose delete takes their records
    /// too) leaves for its list, as before; a record's form stays with what it held, so the person typing keeps their
    /// text.
    fn show_gone(&mut self, gone: Gone, socket: &mut LiveSocket) {
        if !self.editable.has_trash() {
            let noun = self.editable.noun();
            socket.put_flash("error", format!("This {noun} was deleted in another session."));
            socket.redirect(self.editable.list_path());
            return;
        }
        self.gone = Some(gone);
        socket.put_flash("error", self.gone_message(gone));
    }

    /// A save found the row gone: in the trash (the form offers to restore it) or removed for good.
    async fn row_gone(&mut self, socket: &mut LiveSocket) {
        let gone = if self.editable.in_trash(&self.row).await { Gone::Trash } else { Gone::Purged };
        self.show_gone(gone, socket);
    }

    /// Restores the row from the trash ("Restore and keep editing"): anyone who may edit this kind, checked against
    /// the account as stored now. The form keeps its values and the draft its base (the row comes back at the same
    /// version), so the next save goes through.
    async fn restore_row(&mut self, socket: &mut LiveSocket) {
        if self.gone != Some(Gone::Trash) {
            return;
        }
        if !self.member.can_edit {
            return socket.put_flash("error", "Your role may view but not restore this.");
        }
        if let Err(refusal) = self.editable.may_write(Duration::ZERO).await {
            return socket.put_flash("error", refusal);
        }
        let noun = self.editable.noun();
        match self.editable.restore(&self.row).await {
            Ok(row) => {
                self.gone = None;
                self.row = row;
                socket.put_flash("info", format!("Restored this {noun}. Your changes are still here."));
            }
            Err(RestoreError::NotInTrash) => match self.editable.reload(&self.row).await {
                // Someone restored it a moment before.
                Some(row) => {
                    self.gone = None;
                    self.row = row;
                }
                None => self.show_gone(Gone::Purged, socket),
            },
            Err(error) => socket.put_flash("error", format!("Not restored: {error}. Try again.")),
        }
    }

    /// The panel of a form whose row was deleted while it was open: what happened and, for a row in the trash, the
    /// way back.
    pub fn gone_panel(&self) -> Html {
        let Some(gone) = self.gone else { return Html::default() };
        let restore = if gone == Gone::Trash && self.member.can_edit {
            r#" <button class="small" type="button" phx-click="restore_row">Restore and keep editing</button>"#
        } else {
            ""
        };
        Html::new(format!(
            r#"<div class="notice gone" id="row-gone" role="alert">{}{restore} <a href="{}">Back to the list</a></div>"#,
            Html::escape(&self.gone_message(gone)),
            Html::escape(&self.editable.list_path())
        ))
    }

    /// The conflict panel, when a save conflicted (see [`super::conflict::panel`]).
    pub fn conflict_panel(&self) -> Html {
        match &self.conflict {
            Some(conflict) => super::conflict::panel(&self.editable, conflict, &self.conflict_shown),
            None => Html::default(),
        }
    }

    /// Follows the editing session: the owner's drafts, promotion (continuing from the draft), saves and deletes
    /// made elsewhere.
    pub async fn handle_info(&mut self, message: &Broadcast, socket: &mut LiveSocket) {
        match self.member.handle(message) {
            SessionEvent::Nothing => {}
            SessionEvent::Promoted(None) => {
                if let Some((values, shown_version)) = self.held.take() {
                    Box::pin(self.recover(values, shown_version, socket)).await;
                }
            }
            SessionEvent::Draft(draft) | SessionEvent::Promoted(Some(draft)) => {
                if self.held.take().is_some() {
                    let by = &draft.updated_by.name;
                    self.member.notice = Some(format!("{by} changed the form: your earlier unsaved changes are gone."));
                }
                self.show_draft(&draft);
                self.status = SaveStatus::Unsaved;
            }
            SessionEvent::DraftEnded => {
                if let Some(fresh) = self.editable.reload(&self.row).await {
                    self.show_row(fresh);
                }
                if self.status == SaveStatus::Unsaved {
                    self.status = SaveStatus::Unchanged;
                }
            }
            SessionEvent::Saved { by } => {
                // Unsaved changes stay in the form (their save will conflict and show what changed); a form without
                // any shows the new row, so the next draft starts from it.
                let keeps_changes = self.member.is_owner() && self.member.has_draft();
                // Another tab of this user's is no news; another user is, whatever their name.
                if by.id != self.member.author().id {
                    self.member.notice = Some(format!("Saved by {}.", by.name));
                }
                if let Some(fresh) = self.editable.reload(&self.row).await {
                    if keeps_changes {
                        self.row = fresh;
                    } else {
                        self.show_row(fresh);
                    }
                }
                if !keeps_changes {
                    let by = (by.id != self.member.author().id).then_some(by.name);
                    self.status = SaveStatus::Saved { at: now_ms(), by };
                }
            }
            SessionEvent::Deleted { trash } => {
                let gone = if trash { Gone::Trash } else { Gone::Purged };
                self.show_gone(gone, socket);
            }
            SessionEvent::Restored => {
                if self.gone.take().is_some() {
                    if let Some(fresh) = self.editable.reload(&self.row).await {
                        self.row = fresh;
                    }
                    let noun = self.editable.noun();
                    socket.put_flash("info", format!("This {noun} was restored: you can save again."));
                }
            }
        }
    }
}

/// `yyyy-mm-dd hh:mm UTC` of a time in ms since the Unix epoch (the proleptic Gregorian calendar).
pub fn date_time(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (Howard Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", of_day / 3600, (of_day / 60) % 60)
}

/// Now, in ms since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// `hh:mm UTC` of a time in ms since the Unix epoch.
fn clock(ms: u64) -> String {
    let minutes = ms / 60_000;
    format!("{:02}:{:02} UTC", (minutes / 60) % 24, minutes % 60)
}

#[cfg(test)]
mod tests {
    use super::{clock, date_time};

    #[test]
    fn clock_reads_hours_and_minutes() {
        assert_eq!(clock(((13 * 60 + 5) * 60 + 9) * 1000), "13:05 UTC");
        assert_eq!(clock(0), "00:00 UTC");
    }

    #[test]
    fn date_time_reads_the_civil_date_and_time() {
        assert_eq!(date_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(date_time(951_782_400_000), "2000-02-29 00:00 UTC", "a leap day");
        assert_eq!(date_time(1_796_651_700_000), "2026-12-07 13:55 UTC");
        assert_eq!(date_time(-1), "1969-12-31 23:59 UTC");
    }
}
