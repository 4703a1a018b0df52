//! [`CollabView`]: a ready live view of a collaborative form over the application's [`FormView`] type. The
//! application says how a page finds its row and renders its inputs; the view does the rest: the editing bar with the
//! queue and "N other people", inputs disabled for spectators, live draft sync, promotion with the draft, "Edit here",
//! the conflict panel, kept drafts offered back, form recovery after a reconnect, and saves refused to non-owners.
//!
//! The page it renders (inside the page layout, see [`crate::app::LiveApp`]):
//!
//! ```text
//! <h1>{title}</h1>
//! <div id="editing-bar" data-lb-region data-role="owner|spectator|connecting">…</div>
//! <div id="collab-editor" class="card" data-lb-region>
//!   {gone panel}{kept drafts}{conflict panel}
//!   <form id="collab-form" phx-change="draft" phx-submit="save" phx-auto-recover="recover">
//!     <fieldset [disabled]>{version field}{the application's inputs}
//!       <div class="actions"><button>Save</button>{save status}</div></fieldset>
//!   </form>
//! </div>
//! ```

use std::sync::Arc;

use livebaton::editing::{EditTarget, Editing};
use livebaton::pubsub::Broadcast;
use serde_json::{Map, Value};

use super::editable::Editable;
use super::form::CollabForm;
use crate::channel::BoxFuture;
use crate::live::{Html, LiveSocket, LiveView, MountError, Session};

/// What a page of a [`CollabView`] mounted: the application's editable, the row, its session and what the user may
/// do.
pub struct Mounted<E: Editable> {
    /// The application's editable (with whatever it needs to reload and save).
    pub editable: E,
    /// The row as stored now.
    pub row: E::Row,
    /// The row's editing session (one per row: [`EditTarget::new`] with the kind and the row's id).
    pub target: EditTarget,
    /// Whether the user may hold the baton (a user who may not watches read-only).
    pub can_edit: bool,
    /// The page's title.
    pub title: String,
}

/// The application's part of a [`CollabView`]: how a page finds its row, reads a submitted form, and renders its
/// inputs. Everything a form must escape goes through [`Html::escape`]: the view adds nothing unescaped of the
/// application's values.
pub trait FormView: Editable + Sized {
    /// What every page needs to mount (a database pool, settings): cloned into each view.
    type Context: Clone + Send + Sync + 'static;

    /// Finds the row the page edits (from its signed params, a route's `{id}`) and what the user may do; a
    /// [`MountError::NotFound`] for a row that does not exist, a redirect for a user who may not see it.
    fn mount<'a>(
        context: &'a Self::Context,
        params: &'a Map<String, Value>,
        session: &'a Session,
    ) -> BoxFuture<'a, Result<Mounted<Self>, MountError>>;

    /// The form values of a submitted form (`value` of a `change`/`submit` event: an object of strings).
    fn values_from_form(&self, form: &Value) -> Self::Values;

    /// The form's inputs for `values`, with `errors` by field. The view disables them (a `<fieldset disabled>`)
    /// while the page may not write.
    fn render_inputs(&self, values: &Self::Values, errors: &Self::Errors) -> Html;
}

/// A live view of a collaborative form over `E` (see the module documentation). Register it with a factory:
/// `LiveApp::live("/notes/{id}", "note", move || CollabView::<Note>::new(context.clone(), editing.clone()))`.
pub struct CollabView<E: FormView> {
    context: E::Context,
    editing: Editing,
    form: Option<CollabForm<E>>,
    title: String,
}

impl<E: FormView> CollabView<E> {
    /// A view (mounted per page) over `context`, joining editing sessions of `editing` (the engine's
    /// [`livebaton::Engine::editing`]).
    pub fn new(context: E::Context, editing: Editing) -> Self {
        CollabView { context, editing, form: None, title: String::new() }
    }

    /// The form, once mounted.
    pub fn form(&self) -> Option<&CollabForm<E>> {
        self.form.as_ref()
    }
}

impl<E: FormView> LiveView for CollabView<E> {
    fn mount<'a>(
        &'a mut self,
        params: &'a Map<String, Value>,
        session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>> {
        Box::pin(async move {
            let mounted = E::mount(&self.context, params, session).await?;
            socket.set_title(mounted.title.clone());
            self.title = mounted.title;
            let (editable, row, target, can_edit) = (mounted.editable, mounted.row, mounted.target, mounted.can_edit);
            let form = CollabForm::mount(editable, row, &self.editing, target, can_edit, session, socket).await?;
            self.form = Some(form);
            Ok(())
        })
    }

    fn handle_event<'a>(
        &'a mut self,
        name: &'a str,
        value: &'a Value,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(form) = &mut self.form {
                form.handle_event(name, value, socket, |form, value| form.editable.values_from_form(value)).await;
            }
        })
    }

    fn handle_info<'a>(&'a mut self, message: &'a Arc<Broadcast>, socket: &'a mut LiveSocket) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(form) = &mut self.form {
                form.handle_info(message, socket).await;
            }
        })
    }

    fn render(&self) -> Html {
        let Some(form) = &self.form else { return Html::default() };
        let read_only = !form.is_owner() || form.awaits_choice();
        let (question, unsaved) = form.leave_guard();
        let leave = question.map(|question| format!(r#" data-lb-confirm-leave="{}""#, Html::escape(question)));
        Html::new(format!(
            r#"<h1>{title}</h1>{bar}<div id="collab-editor" class="card" data-lb-region>{gone}{kept}{conflict}<form id="collab-form" phx-change="draft" phx-submit="save" phx-auto-recover="recover" novalidate{leave}{unsaved}><fieldset{disabled}>{version}{inputs}<div class="actions"><button type="submit">Save</button>{status}</div></fieldset></form></div>"#,
            title = Html::escape(&self.title),
            bar = form.member.bar(),
            gone = form.gone_panel(),
            kept = form.kept_offer(),
            conflict = form.conflict_panel(),
            leave = leave.unwrap_or_default(),
            unsaved = if unsaved { " data-lb-unsaved" } else { "" },
            disabled = if read_only { " disabled" } else { "" },
            version = form.version_field(),
            inputs = form.editable.render_inputs(&form.values, &form.errors),
            status = form.save_status(),
        ))
    }
}
