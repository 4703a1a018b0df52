//! [`SessionMember`]: one live page's membership in an editing session: joining it, knowing who holds the baton,
//! following the owner's draft, and the bar that says all of it.
//!
//! The engine decides (owner = first eligible page in sequence order, drafts, fencing); this module only turns its
//! messages into what a form shows. The page's presence key is its own view id, unique per mounted view, so a second
//! tab, or a rejoin on the same socket, is a separate place in the queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use livebaton::editing::{
    Draft, DraftBase, DraftChanged, EditTarget, Editing, EditingError, EditingPresence, Editor, KeptDraft,
    KeptDraftError, NotOwner, OwnerChanged, OwnerToken,
};
use livebaton::presence::PresenceDiff;
use livebaton::pubsub::Broadcast;
use serde_json::Value;

use super::{Author, Baton, FormNotice, MemberRole, RoleReason, RoleUpdate, count_not_owner};
use crate::live::{Html, LiveSocket, MountError, Session};

/// What a message from the editing session means for the form.
#[derive(Debug)]
pub enum SessionEvent {
    /// Nothing the form has to act on (the bar re-renders from the new roster anyway).
    Nothing,
    /// Another page's draft changed: show its values (when not the owner).
    Draft(Arc<Draft>),
    /// This page was just given the baton; continue from the session's draft, if any.
    Promoted(Option<Arc<Draft>>),
    /// The row was saved by `by` (the owner, or a writer through the API): reload it.
    Saved {
        /// Who saved.
        by: Author,
    },
    /// The row was deleted: moved to the trash (`trash`, it can be restored) or removed for good.
    Deleted {
        /// Whether it is in the trash.
        trash: bool,
    },
    /// The row came back from the trash (at the version it had).
    Restored,
    /// The session's draft ended without this page saving it (saved or discarded by the owner): a spectator shows
    /// the row as stored.
    DraftEnded,
}

/// Unique ids for mounted edit views.
static NEXT_VIEW: AtomicU64 = AtomicU64::new(1);

/// One page's membership in an editing session.
pub struct SessionMember {
    target: EditTarget,
    /// The editing engine (a cheap handle).
    editing: Editing,
    /// This page's presence key in the session.
    view_id: Arc<str>,
    /// The page's user.
    author: Author,
    /// Whether the user's role may edit this kind of content (a viewer watches but never holds the baton).
    pub can_edit: bool,
    /// False during the first (HTTP) render: the page is not in the session yet, so it shows read-only.
    joined: bool,
    is_owner: bool,
    can_take_here: bool,
    owner: Option<EditingPresence>,
    presences: Vec<EditingPresence>,
    /// A one-off note shown in the bar (promotion, a save by someone else).
    pub notice: Option<String>,
}

impl SessionMember {
    /// A page of `session`'s user in `target`'s session, not joined yet; `can_edit` is whether the user may hold the
    /// baton (decided by the application, from its roles).
    pub fn new(editing: &Editing, target: EditTarget, session: &Session, can_edit: bool) -> Self {
        let view_id = format!("{}~{}", session.connection_id, NEXT_VIEW.fetch_add(1, Ordering::Relaxed));
        SessionMember {
            target,
            editing: editing.clone(),
            view_id: view_id.into(),
            author: Author::from(&*session.user),
            can_edit,
            joined: false,
            is_owner: false,
            can_take_here: false,
            owner: None,
            presences: Vec::new(),
            notice: None,
        }
    }

    /// Joins the session (when the page is connected): subscribes to its roster and drafts, takes a place in the
    /// queue for as long as the view lives, and returns the session's current draft for a late joiner to show.
    ///
    /// # Errors
    /// [`MountError::Failed`] if the presence backend is unavailable.
    pub async fn join(&mut self, session: &Session, socket: &mut LiveSocket) -> Result<Option<Arc<Draft>>, MountError> {
        if !socket.is_connected() {
            return Ok(None);
        }
        // The form hears of saves made on other nodes only if this node can rebuild their notices.
        FormNotice::register(self.editing.presence().pubsub());
        // Subscribe before tracking, so no change between the two is missed.
        socket.subscribe(&self.target.presence_topic());
        socket.subscribe(&self.target.form_topic());
        let tab = session.tab_id.as_deref();
        let editor = Editor::new(session.user.id(), session.user.name()).with_can_edit(self.can_edit);
        let joined = self.editing.track_editing_session(&self.target, &self.view_id, &editor, tab).await;
        let guard = joined.map_err(|error| match error {
            livebaton::presence::PresenceError::InvalidTabId(invalid) => MountError::Failed(invalid.to_string()),
            error => {
                tracing::error!(%error, target = %self.target, "an editing session could not be joined");
                MountError::Failed("unavailable".into())
            }
        })?;
        socket.keep(guard);
        self.joined = true;
        self.refresh();
        Ok(self.editing().draft(&self.target))
    }

    /// The session's target.
    pub fn target(&self) -> &EditTarget {
        &self.target
    }

    /// The page's user.
    pub fn author(&self) -> &Author {
        &self.author
    }

    /// The editing engine this page edits through.
    pub fn editing(&self) -> &Editing {
        &self.editing
    }

    /// Re-reads this page's role and the queue from the engine.
    pub fn refresh(&mut self) {
        if !self.joined {
            return;
        }
        let Baton { role, owner, queue, can_take_here } =
            Baton::from(self.editing.editing_role(&self.target, &self.view_id, &self.author.id));
        self.is_owner = role == MemberRole::Owner;
        self.can_take_here = can_take_here;
        self.owner = owner;
        self.presences = queue;
    }

    /// Whether this page holds the baton.
    pub fn is_owner(&self) -> bool {
        self.joined && self.is_owner
    }

    /// The owner's display name, if anyone holds the baton.
    pub fn owner_name(&self) -> Option<&str> {
        self.owner.as_ref().map(|owner| owner.user_name.as_str())
    }

    /// Whether the session has an unsaved draft.
    pub fn has_draft(&self) -> bool {
        self.editing().draft(&self.target).is_some()
    }

    /// The session's unsaved draft.
    pub fn draft(&self) -> Option<Arc<Draft>> {
        self.editing().draft(&self.target)
    }

    /// The message to show a page that tried to change something without holding the baton.
    pub fn read_only_message(&self) -> String {
        let refusal = NotOwner { owner_name: self.owner.as_ref().map(|owner| owner.user_name.clone()) };
        refused(&refusal)
    }

    /// Publishes the owner's form values as the session's draft (spectators see them); `base` is the row they
    /// started from, recorded when the draft starts.
    ///
    /// # Errors
    /// [`NotOwner`] if this page does not hold the baton.
    pub fn update_draft(&self, base: DraftBase, params: Value) -> Result<Arc<Draft>, NotOwner> {
        self.editing().update_draft(&self.target, &self.view_id, base, params)
    }

    /// Proof that this page holds the baton now, for a fenced save.
    ///
    /// # Errors
    /// [`NotOwner`] if it does not.
    pub fn fence(&self) -> Result<OwnerToken, NotOwner> {
        self.editing().fence(&self.target, &self.view_id)
    }

    /// Ends the session's draft without saving it (the owner discarded it after a conflict), as a save would: the
    /// spectators reload the row, here `row`.
    pub fn discard_draft(&self, row: DraftBase) {
        if let Ok(token) = self.fence() {
            self.editing().finish_save(&token, row);
        }
    }

    /// The unsaved draft an earlier session of this form left for this user, if any (read from the kept-draft store).
    ///
    /// # Errors
    /// [`KeptDraftError`] when the store cannot be read.
    pub async fn find_kept(&self) -> Result<Option<KeptDraft>, KeptDraftError> {
        if !self.joined {
            return Ok(None);
        }
        self.editing().find_kept_draft(&self.target, &self.author.id).await
    }

    /// Makes this user's kept draft the session's draft again (owner only).
    ///
    /// # Errors
    /// As [`Editing::restore_kept_draft`].
    pub async fn restore_kept(&self) -> Result<Arc<Draft>, EditingError> {
        self.editing().restore_kept_draft(&self.target, &self.view_id).await
    }

    /// Forgets this user's kept draft written at `updated_at`.
    ///
    /// # Errors
    /// [`KeptDraftError`] when the store cannot be reached.
    pub async fn discard_kept(&self, updated_at: u64) -> Result<bool, KeptDraftError> {
        self.editing().discard_kept_draft(&self.target, &self.author.id, updated_at).await
    }

    /// Moves the baton here from the same user's other tab.
    ///
    /// # Errors
    /// As [`Editing::take_here`].
    pub fn take_here(&mut self) -> Result<(), EditingError> {
        self.editing().take_here(&self.target, &self.view_id)?;
        self.refresh();
        Ok(())
    }

    /// What `message` (from the session's roster or form topic) means for the form.
    pub fn handle(&mut self, message: &Broadcast) -> SessionEvent {
        if message.downcast::<PresenceDiff>().is_some() {
            self.refresh();
            return SessionEvent::Nothing;
        }
        if let Some(change) = message.downcast::<OwnerChanged>() {
            let update = RoleUpdate::of(change, &self.view_id);
            self.refresh();
            return match update {
                RoleUpdate { reason, .. } if update.promoted() => {
                    let draft = self.editing().draft(&self.target);
                    // The first owner of a session needs no note: the bar already says "You are editing".
                    if reason != RoleReason::First {
                        self.notice = Some(promotion_notice(reason, draft.as_deref(), &self.view_id, &self.author));
                    }
                    SessionEvent::Promoted(draft)
                }
                RoleUpdate { role: MemberRole::Spectator, reason: RoleReason::TakenHere } => {
                    self.notice = Some("Editing moved to your other tab.".to_owned());
                    SessionEvent::Nothing
                }
                _ => SessionEvent::Nothing,
            };
        }
        if let Some(changed) = message.downcast::<DraftChanged>() {
            if *changed.source == *self.view_id || self.is_owner {
                return SessionEvent::Nothing;
            }
            return match &changed.draft {
                Some(draft) => SessionEvent::Draft(draft.clone()),
                None => SessionEvent::DraftEnded,
            };
        }
        match message.downcast::<FormNotice>() {
            Some(FormNotice::Saved(saved)) => {
                SessionEvent::Saved { by: Author::new(saved.by_id.clone(), saved.by.clone()) }
            }
            Some(FormNotice::Deleted(deleted)) => SessionEvent::Deleted { trash: deleted.trash.unwrap_or(false) },
            Some(FormNotice::Restored(_)) => SessionEvent::Restored,
            None => SessionEvent::Nothing,
        }
    }

    /// The editing bar: who edits, who waits, how many others are here, and "Edit here" for the owner's other tab. A
    /// live region of the view (`#editing-bar`) and a polite live region for assistive technology: it stays in the page
    /// and its changes ("You are now editing", "Read-only — Ann is editing", "Saved by Bob.") are announced. Its
    /// `data-role` says `connecting`, `owner` or `spectator` (the client moves focus into the form on promotion).
    pub fn bar(&self) -> Html {
        let me = &*self.view_id;
        let owner_id = self.owner.as_ref().map(|owner| owner.view_id.clone());
        let waiting: Vec<String> = self
            .presences
            .iter()
            .filter(|presence| presence.can_edit && Some(&presence.view_id) != owner_id.as_ref())
            .map(|presence| if &*presence.view_id == me { "you".to_owned() } else { presence.user_name.clone() })
            .collect();
        let others = self.presences.iter().filter(|presence| &*presence.view_id != me).count();
        let (class, role) = if !self.joined {
            ("editing-bar", "connecting")
        } else if self.is_owner {
            ("editing-bar owner", "owner")
        } else {
            ("editing-bar spectator", "spectator")
        };
        let who = if !self.joined {
            "Read-only until connected…".to_owned()
        } else if self.is_owner {
            "You are editing".to_owned()
        } else if let Some(owner) = &self.owner {
            format!("Read-only — {} is editing", Html::escape(&owner.user_name))
        } else {
            "Read-only — nobody is editing".to_owned()
        };
        let mut html = format!(
            r#"<div id="editing-bar" class="{class}" data-lb-region data-role="{role}" aria-live="polite"><span class="who-edits">{who}</span>"#
        );
        if !waiting.is_empty() {
            let names: Vec<String> = waiting.iter().map(|name| Html::escape(name)).collect();
            html.push_str(&format!(r#"<span class="queue">{} waiting: {}</span>"#, waiting.len(), names.join(", ")));
        }
        if self.joined {
            html.push_str(&format!(r#"<span class="others">{}</span>"#, people(others)));
        }
        if self.can_take_here {
            html.push_str(r#"<button class="small" type="button" phx-click="take_here">Edit here</button>"#);
        }
        if let Some(notice) = &self.notice {
            html.push_str(&format!(
                r#"<div class="notice in-bar" id="editing-notice">{} <button class="link" type="button" phx-click="dismiss">Dismiss</button></div>"#,
                Html::escape(notice)
            ));
        }
        html.push_str("</div>");
        Html::new(html)
    }
}

/// "Nobody else here" / "1 other person" / "3 other people".
pub fn people(count: usize) -> String {
    match count {
        0 => "Nobody else here".to_owned(),
        1 => "1 other person".to_owned(),
        _ => format!("{count} other people"),
    }
}

/// "Read-only — Alice is editing", as a refused change says it.
pub fn refused(not_owner: &NotOwner) -> String {
    count_not_owner();
    match &not_owner.owner_name {
        Some(name) => format!("Read-only — {name} is editing; your change was not applied."),
        None => "Read-only — you are not editing this; your change was not applied.".to_owned(),
    }
}

fn promotion_notice(reason: RoleReason, draft: Option<&Draft>, me: &str, my_user: &Author) -> String {
    let mut notice = match reason {
        RoleReason::TakenHere => "You are now editing in this tab.".to_owned(),
        _ => "You are now editing.".to_owned(),
    };
    match draft {
        Some(draft) if draft.updated_by.view_id == me => {}
        Some(draft) if draft.updated_by.user_id == my_user.id => {
            notice.push_str(" The form holds your unsaved changes from another tab or before a reload.");
        }
        Some(draft) => notice.push_str(&format!(
            " The form holds {}'s unsaved changes; save them or change them.",
            draft.updated_by.name
        )),
        None => {}
    }
    notice
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_counts() {
        assert_eq!(people(0), "Nobody else here");
        assert_eq!(people(1), "1 other person");
        assert_eq!(people(2), "2 other people");
    }

    fn draft_by(user_id: &str, name: &str, view_id: &str) -> Draft {
        Draft {
            params: serde_json::json!({}),
            version: 1,
            base_lock_version: 1,
            base_values: None,
            updated_by: livebaton::editing::DraftAuthor {
                user_id: user_id.into(),
                name: name.into(),
                view_id: view_id.into(),
            },
            updated_at: 0,
        }
    }

    /// A promoted page is told whose unsaved changes it now holds: its own (another tab), someone else's, or none.
    #[test]
    fn a_promotion_says_whose_draft_the_form_holds() {
        let me = Author::new("1", "Ann");
        let promoted = |draft: Option<&Draft>| promotion_notice(RoleReason::Promoted, draft, "view-a", &me);
        assert_eq!(promoted(None), "You are now editing.");
        assert_eq!(promoted(Some(&draft_by("1", "Ann", "view-a"))), "You are now editing.");
        assert!(promoted(Some(&draft_by("1", "Ann", "view-b"))).contains("your unsaved changes from another tab"));
        assert!(promoted(Some(&draft_by("2", "Bob", "view-b"))).contains("Bob's unsaved changes"));
        let here = promotion_notice(RoleReason::TakenHere, None, "view-a", &me);
        assert_eq!(here, "You are now editing in this tab.");
    }
}
