//! Collaborative editing: the first eligible editor in line holds the baton (may edit and save), everyone else
//! watches read-only and sees the owner's draft live; when the owner leaves the next in line is promoted at once and
//! continues from the draft; saves are fenced so a tab that lost the baton can never overwrite anything. A draft
//! snapshots the row it started from, so a save over a row that moved since merges per field ([`merge`]): what only
//! one side changed is taken from that side, and only fields both changed are a conflict.
//!
//! Names follow PhoenixKit's `PresenceHelpers` without their `get_` prefixes (`track_editing_session`,
//! `editing_role`, …). The editors of a session are presence entries on `<kind>_edit:<id>`, so
//! their order is the roster's total order and every node agrees on the owner.

mod draft;
mod kept;
mod kept_redis;
pub mod merge;
mod owner;
mod presences;
mod redis;
mod target;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::presence::{Meta, NotTracked, Presence, PresenceError, TrackGuard, TrackOptions, validate_tab_id};
use crate::pubsub::Subscription;

pub use draft::{Draft, DraftAuthor, DraftBase, DraftChanged, DraftStore, LocalDraftStore};
pub use kept::{KeptDraft, KeptDraftError, KeptDraftLimits, KeptDraftStore, MemoryKeptDrafts, supersedes};
pub use kept_redis::RedisKeptDrafts;
pub use owner::{DraftSummary, NotOwner, OwnerChangeReason, OwnerChanged, OwnerToken, RoleChange};
pub use presences::{EditingPresence, EditingRole};
pub use redis::RedisDraftStore;
pub use target::{EditTarget, Editor, InvalidTarget, MAX_ID_LEN, MAX_KIND_LEN};

use kept::Keeper;
use owner::{OwnerBoard, SessionOwner};
use presences::{first_eligible, is_eligible, role_of};

/// Errors from editing operations, each with a message fit to show the user.
#[derive(Debug, thiserror::Error)]
pub enum EditingError {
    /// Only the owner may do this.
    #[error(transparent)]
    NotOwner(#[from] NotOwner),
    /// The page is not (or no longer) part of the editing session.
    #[error("this page is no longer part of the editing session; reload it")]
    NotInSession,
    /// `take_here` from a tab of a different user than the owner's.
    #[error("only another tab of the person editing can take over")]
    NotSameUser,
    /// The user's role may not edit this content.
    #[error("your role may view but not edit this")]
    NotEligible,
    /// The presence tracker failed.
    #[error(transparent)]
    Presence(#[from] PresenceError),
    /// A kept draft cannot be restored over the session's live draft of someone else.
    #[error("{by}'s unsaved changes are in the form: save them first")]
    DraftInProgress {
        /// Who wrote the live draft.
        by: String,
    },
    /// Nothing is kept for this user and form (discarded or restored elsewhere, or expired).
    #[error("no unsaved changes of yours are kept for this form any more")]
    NoKeptDraft,
    /// The kept-draft store failed.
    #[error(transparent)]
    Kept(#[from] KeptDraftError),
}

impl From<NotTracked> for EditingError {
    fn from(_: NotTracked) -> Self {
        EditingError::NotInSession
    }
}

/// Collaborative-editing helpers over a [`Presence`] tracker. Cheap to clone.
#[derive(Clone)]
pub struct Editing {
    presence: Presence,
    board: Arc<OwnerBoard>,
}

/// The meta fields the engine writes for an editor; an application's display fields cannot replace them.
const RESERVED_FIELDS: [&str; 7] = ["user_id", "user_name", "can_edit", "rank", "yielded", "joined_at", "tab_id"];

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64)
}

impl Editing {
    /// Editing sessions on `presence`, with live drafts, and the drafts of ended sessions, in this process's memory.
    /// Create one `Editing` per tracker (as [`crate::Engine`] does): each registers an observer that announces owner
    /// changes.
    pub fn new(presence: Presence) -> Self {
        Self::with_draft_store(presence, Arc::new(LocalDraftStore::default()))
    }

    /// Editing sessions on `presence`, with live drafts in `drafts` and the drafts of ended sessions in memory.
    pub fn with_draft_store(presence: Presence, drafts: Arc<dyn DraftStore>) -> Self {
        Self::with_stores(presence, drafts, Arc::new(MemoryKeptDrafts::new(KeptDraftLimits::default())))
    }

    /// Editing sessions on `presence`, with live drafts in `drafts` and the drafts of ended sessions in `kept` (see
    /// [`KeptDraftStore`]: a database survives a restart).
    pub fn with_stores(presence: Presence, drafts: Arc<dyn DraftStore>, kept: Arc<dyn KeptDraftStore>) -> Self {
        presence.pubsub().register::<DraftChanged>();
        let board = Arc::new(OwnerBoard::new(presence.pubsub().clone(), drafts, Keeper::new(kept)));
        presence.observe(board.clone());
        Editing { presence, board }
    }

    /// The presence tracker the sessions live on (for listing a session's roster as Phoenix presence).
    pub fn presence(&self) -> &Presence {
        &self.presence
    }

    /// Joins the editing session of `target` as page `view_id` of `editor`, in browser tab `tab_id` (which may
    /// reclaim its place after a reload). The page stays in the session as long as the returned guard.
    ///
    /// The entry's meta, which every member of the session receives, holds the user's id and name, whether they may
    /// edit, when they joined, and the tab id: never an email or anything else a member should not see.
    ///
    /// # Errors
    /// [`PresenceError::InvalidTabId`] if `tab_id` is not 1 to 64 characters of `A-Z a-z 0-9 _ -` (a client chose
    /// it); [`PresenceError`] if the presence backend is unavailable.
    pub async fn track_editing_session(
        &self,
        target: &EditTarget,
        view_id: &str,
        editor: &Editor,
        tab_id: Option<&str>,
    ) -> Result<TrackGuard, PresenceError> {
        if let Some(tab_id) = tab_id {
            validate_tab_id(tab_id)?;
        }
        let mut meta: Meta = editor
            .fields
            .iter()
            .filter(|(name, _)| !RESERVED_FIELDS.contains(&name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        meta.insert("user_id".into(), json!(editor.user_id));
        meta.insert("user_name".into(), json!(editor.name));
        // Whether the page may hold the baton now (a yielded editor may edit, but stepped back): the entry's
        // eligibility to lead the session's topic, and shown to members as `can_edit`.
        let may_lead = editor.can_edit && !editor.yielded;
        meta.insert("can_edit".into(), json!(may_lead));
        meta.insert("rank".into(), json!(editor.rank));
        meta.insert("yielded".into(), json!(editor.yielded));
        meta.insert("joined_at".into(), json!(now_ms()));
        if let Some(tab_id) = tab_id {
            meta.insert("tab_id".into(), json!(tab_id));
        }
        // A tab reclaims its place only for the same user: the reclaim identity is user and tab together, so a
        // client that sends someone else's tab id (or a duplicated tab) cannot take over their lingering place.
        let reclaim_as = tab_id.map(|tab_id| format!("{}/{tab_id}", editor.user_id));
        let options = TrackOptions { tab_id: reclaim_as.as_deref(), may_lead };
        self.presence.track_with(&target.presence_topic(), view_id, meta, options).await
    }

    /// The role of page `view_id` (of user `user_id`) in `target`'s session.
    pub fn editing_role(&self, target: &EditTarget, view_id: &str, user_id: &str) -> EditingRole {
        let topic = target.presence_topic();
        self.presence.read(|roster| role_of(roster.entries(&topic), view_id, user_id))
    }

    /// Every editor of `target`, in queue order.
    pub fn sorted_presences(&self, target: &EditTarget) -> Vec<EditingPresence> {
        let topic = target.presence_topic();
        self.presence.read(|roster| roster.entries(&topic).map(EditingPresence::from_entry).collect())
    }

    /// The editor holding the baton, if any.
    pub fn lock_owner(&self, target: &EditTarget) -> Option<EditingPresence> {
        let topic = target.presence_topic();
        self.presence.read(|roster| first_eligible(roster.entries(&topic)).map(EditingPresence::from_entry))
    }

    /// Every editor except the owner, in queue order.
    pub fn spectators(&self, target: &EditTarget) -> Vec<EditingPresence> {
        let topic = target.presence_topic();
        self.presence.read(|roster| {
            let owner = first_eligible(roster.entries(&topic)).map(|owner| owner.id);
            roster.entries(&topic).filter(|entry| Some(entry.id) != owner).map(EditingPresence::from_entry).collect()
        })
    }

    /// Presence diffs and [`OwnerChanged`] messages of `target`'s session.
    pub fn subscribe_to_editing(&self, target: &EditTarget) -> Subscription {
        self.presence.subscribe(&target.presence_topic())
    }

    /// [`DraftChanged`] messages of `target`'s session.
    pub fn subscribe_to_drafts(&self, target: &EditTarget) -> Subscription {
        self.presence.subscribe(&target.form_topic())
    }

    /// Moves the baton from the owner's tab to `view_id`, another tab of the same user, at once. The two tabs swap
    /// places in the queue, so nobody else moves.
    ///
    /// # Errors
    /// [`EditingError::NotInSession`] if `view_id` is not in the session, [`EditingError::NotEligible`] if it may not
    /// edit, [`EditingError::NotSameUser`] if the owner is another user. Taking over when already owner is a no-op.
    pub fn take_here(&self, target: &EditTarget, view_id: &str) -> Result<(), EditingError> {
        let topic = target.presence_topic();
        self.presence.swap_order(&topic, |roster| {
            let me = roster.entry_by_key(&topic, view_id).ok_or(EditingError::NotInSession)?;
            if !is_eligible(me) {
                return Err(EditingError::NotEligible);
            }
            let owner = first_eligible(roster.entries(&topic)).ok_or(EditingError::NotInSession)?;
            if owner.id == me.id {
                return Ok((me.id, me.id));
            }
            if owner.meta.get_str("user_id") != me.meta.get_str("user_id") {
                return Err(EditingError::NotSameUser);
            }
            Ok((owner.id, me.id))
        })
    }

    /// The session's unsaved draft, for a late joiner or a promoted owner.
    pub fn draft(&self, target: &EditTarget) -> Option<Arc<Draft>> {
        self.board.drafts.get(target)
    }

    /// Replaces the session's draft with `params` if `view_id` holds the baton, bumps its version and publishes it
    /// to the session's form topic. `base` (the row version the form was loaded from, with that row's values when the
    /// caller knows them: a bare `i64` is a version with unknown values) is recorded by the first update; later
    /// updates keep the draft's original base, so a save can merge per field against it ([`merge`]).
    ///
    /// With a shared roster the write is fenced like a save: refused here while the shared roster's leader, as this
    /// node heard it, is not this tab or while this node cannot vouch for its view (as [`Editing::fence`]), and
    /// refused by Redis, for every node, when the leader changed elsewhere a moment ago (this node then takes Redis's
    /// draft back). A tab that lost the baton can never overwrite the new owner's draft.
    ///
    /// # Errors
    /// [`NotOwner`] when `view_id` is not the owner; the draft is unchanged.
    pub fn update_draft(
        &self,
        target: &EditTarget,
        view_id: &str,
        base: impl Into<DraftBase>,
        params: serde_json::Value,
    ) -> Result<Arc<Draft>, NotOwner> {
        let base = base.into();
        self.write_draft(target, view_id, |previous, author| {
            let (base_lock_version, base_values) = match previous {
                Some(draft) => (draft.base_lock_version, draft.base_values.clone()),
                None => (base.lock_version, base.values),
            };
            Ok(Draft {
                params,
                version: previous.map_or(1, |draft| draft.version + 1),
                base_lock_version,
                base_values,
                updated_by: author,
                updated_at: now_ms(),
            })
        })
    }

    /// Writes the session's draft that `build` makes from the current one and its author (the owner), if `view_id`
    /// holds the baton (fenced as [`Editing::update_draft`] says), and publishes it.
    fn write_draft<E: From<NotOwner>>(
        &self,
        target: &EditTarget,
        view_id: &str,
        build: impl FnOnce(Option<&Arc<Draft>>, DraftAuthor) -> Result<Draft, E>,
    ) -> Result<Arc<Draft>, E> {
        let shared = self.presence.is_shared();
        // Read before taking the board's lock: the lock order is tracker, then board.
        let authority = if shared { self.presence.authority(&target.presence_topic()) } else { None };
        let healthy = !shared || self.presence.is_healthy();
        let sessions = self.board.lock();
        let session = sessions.get(target);
        let Some(owner) = session.and_then(|session| session.owner.as_ref()).filter(|owner| &*owner.view_id == view_id)
        else {
            return Err(OwnerBoard::not_owner(session).into());
        };
        if shared {
            let agrees = authority.as_ref().is_some_and(|authority| {
                authority.member.is_some() && authority.member == session.and_then(|session| session.member.clone())
            });
            if !agrees || !healthy {
                return Err(NotOwner { owner_name: None }.into());
            }
        }
        let previous = self.board.drafts.get(target);
        let author =
            DraftAuthor { user_id: owner.user_id.clone(), name: owner.user_name.clone(), view_id: view_id.to_owned() };
        let draft = Arc::new(build(previous.as_ref(), author)?);
        self.board.drafts.put(target, draft.clone(), authority.as_ref());
        self.publish_draft(target, Some(draft.clone()), view_id);
        drop(sessions);
        Ok(draft)
    }

    /// The draft of `target` kept for `user_id` after an earlier session ended with it unsaved, if any (see
    /// [`KeptDraftStore`]). Read from the store each time: call it when a form opens, to offer it to its author.
    ///
    /// # Errors
    /// [`KeptDraftError`] when the store cannot be read.
    pub async fn find_kept_draft(
        &self,
        target: &EditTarget,
        user_id: &str,
    ) -> Result<Option<KeptDraft>, KeptDraftError> {
        self.board.keeper.store().find(target, user_id).await
    }

    /// Makes the draft kept for the owner of `view_id` the session's draft again, with its original base (so its save
    /// merges per field with whatever was saved since), publishes it to the spectators and forgets the kept copy. Only
    /// the owner restores, and only their own kept draft; over a live draft only if the owner wrote that one too (they
    /// typed before choosing: restoring replaces it, as they asked).
    ///
    /// # Errors
    /// [`EditingError::NotOwner`] for anyone but the owner; [`EditingError::NoKeptDraft`] when nothing is kept for
    /// the owner; [`EditingError::DraftInProgress`] over someone else's live draft; [`EditingError::Kept`] when the
    /// store cannot be read. The kept draft stays on every error.
    pub async fn restore_kept_draft(&self, target: &EditTarget, view_id: &str) -> Result<Arc<Draft>, EditingError> {
        let user_id = self.board.owner_user(target, view_id).ok_or_else(|| self.not_owner(target))?;
        let kept = self.find_kept_draft(target, &user_id).await?.ok_or(EditingError::NoKeptDraft)?;
        let restored = self.write_draft(target, view_id, |previous, author| {
            if author.user_id != kept.draft.updated_by.user_id {
                return Err(EditingError::NoKeptDraft); // the baton moved to someone else meanwhile
            }
            if let Some(live) = previous.filter(|live| live.updated_by.user_id != author.user_id) {
                return Err(EditingError::DraftInProgress { by: live.updated_by.name.clone() });
            }
            Ok(Draft {
                params: kept.draft.params.clone(),
                version: previous.map_or(1, |draft| draft.version + 1),
                base_lock_version: kept.draft.base_lock_version,
                base_values: kept.draft.base_values.clone(),
                updated_by: author,
                updated_at: now_ms(),
            })
        })?;
        if let Err(error) = self.discard_kept_draft(target, &user_id, kept.draft.updated_at).await {
            // The draft is live again; the stale copy is offered once more at worst, and expires.
            tracing::warn!(%target, %error, "a restored draft's kept copy could not be removed");
        }
        Ok(restored)
    }

    /// Forgets the draft of `target` kept for `user_id`, if it is still the one written at `updated_at` (the one the
    /// user was shown). Returns whether it was removed.
    ///
    /// # Errors
    /// [`KeptDraftError`] when the store cannot be reached.
    pub async fn discard_kept_draft(
        &self,
        target: &EditTarget,
        user_id: &str,
        updated_at: u64,
    ) -> Result<bool, KeptDraftError> {
        self.board.keeper.store().discard(target, user_id, updated_at).await
    }

    /// For a graceful shutdown: on a single node, keeps every open session's draft in one batch (the sessions end with
    /// the process, and a draft's reloading tab may not come back); then waits until every draft handed over so far
    /// is in the kept-draft store. Call it before closing the sockets (their sessions ending then keep nothing newer,
    /// which costs a store one read each) and again after, to wait for the drafts their ends handed over. With a shared roster the open drafts stay live in Redis for the other nodes, and only
    /// the wait is done.
    pub async fn keep_open_drafts(&self) {
        if !self.presence.is_shared() {
            let open = self.board.drafts.snapshot();
            if !open.is_empty() {
                if let Err(error) = self.board.keeper.store().keep_batch(&open).await {
                    tracing::warn!(%error, drafts = open.len(), "the open drafts could not be kept at once; one by one");
                    for (target, draft) in open {
                        self.board.keeper.keep(&target, draft);
                    }
                }
            }
        }
        self.board.keeper.flush().await;
    }

    fn not_owner(&self, target: &EditTarget) -> EditingError {
        OwnerBoard::not_owner(self.board.lock().get(target)).into()
    }

    /// Proves that `view_id` holds the baton right now; pass the token to the store's save.
    ///
    /// With a shared roster the token also records the session's leader and fence as the shared roster announced
    /// them, and is refused while they do not name this tab (an instant after a hand-over elsewhere, before this node
    /// heard of it) or while this node cannot vouch for its view (its lease is stale).
    ///
    /// # Errors
    /// [`NotOwner`] for every tab but the owner.
    pub fn fence(&self, target: &EditTarget, view_id: &str) -> Result<OwnerToken, NotOwner> {
        let shared = self.presence.is_shared();
        // Read before taking the board's lock: the lock order is tracker, then board.
        let authority = if shared { self.presence.authority(&target.presence_topic()) } else { None };
        let healthy = !shared || self.presence.is_healthy();
        let sessions = self.board.lock();
        let session = sessions.get(target);
        match session.and_then(|session| session.owner.as_ref().map(|owner| (owner, session))) {
            Some((owner, session)) if &*owner.view_id == view_id => {
                if shared {
                    let agrees = authority
                        .as_ref()
                        .is_some_and(|authority| authority.member.is_some() && authority.member == session.member);
                    if !agrees || !healthy {
                        return Err(NotOwner { owner_name: None });
                    }
                }
                let draft = self.board.drafts.get(target);
                Ok(OwnerToken {
                    target: target.clone(),
                    view_id: owner.view_id.clone(),
                    epoch: session.epoch,
                    base_lock_version: draft.as_ref().map(|draft| draft.base_lock_version),
                    draft_version: draft.as_ref().map(|draft| draft.version),
                    draft,
                    authority,
                })
            }
            _ => Err(OwnerBoard::not_owner(session)),
        }
    }

    /// Checks at commit time that `token`'s tab still holds the baton (no hand-over since it was issued), as this node
    /// sees it. With a shared roster it also requires the shared roster's leader and fence, as this node last heard
    /// them, to be the token's, and this node's lease to be fresh; a hand-over on another node that this node has not
    /// heard of yet (milliseconds) is caught only by [`Editing::verify_with_authority`].
    ///
    /// # Errors
    /// [`NotOwner`] when ownership moved on.
    pub fn verify(&self, token: &OwnerToken) -> Result<(), NotOwner> {
        let current = token
            .authority
            .as_ref()
            .map(|_| (self.presence.authority(&token.target.presence_topic()), self.presence.is_healthy()));
        let sessions = self.board.lock();
        Self::check(&sessions, token)?;
        if let (Some(expected), Some((current, healthy))) = (&token.authority, current) {
            if current.as_ref() != Some(expected) || !healthy {
                return Err(NotOwner { owner_name: None });
            }
        }
        Ok(())
    }

    /// [`Editing::verify`], then, with a shared roster, asks Redis atomically whether the token's tab still leads
    /// the session with the same fence (same dataset generation, leader's node alive). This is the check to make just
    /// before committing a save on several nodes: a tab whose ownership moved on anywhere in the cluster is refused
    /// even if this node has not heard of it yet. On a single node it is [`Editing::verify`].
    ///
    /// # Errors
    /// [`EditingError::NotOwner`] when ownership moved on; [`EditingError::Presence`] when Redis cannot be asked (the
    /// save must not proceed then either).
    pub async fn verify_with_authority(&self, token: &OwnerToken) -> Result<(), EditingError> {
        self.verify(token)?;
        let Some(authority) = &token.authority else { return Ok(()) };
        let check = self.presence.check_authority(&token.target.presence_topic(), authority).await?;
        if check.valid {
            return Ok(());
        }
        let owner_name = check
            .leader_fields
            .as_ref()
            .and_then(|fields| fields.get("user_name"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        tracing::info!(target = %token.target, view = %token.view_id, "save refused: the shared roster says the baton moved on");
        Err(NotOwner { owner_name }.into())
    }

    /// Settles the draft after a save made with `token` committed, leaving the row as `saved` (its version, and its
    /// values when known): the saved draft ends (spectators are told, and reload the row); a newer draft typed after
    /// `fence` is kept and rebased on the saved row, so the next save does not conflict with this one. Rebasing keeps
    /// the fields that draft changed since its own base and takes every other field from the saved row
    /// ([`merge::rebase`]): a value the save merged in from someone else is not the draft's change, and must not be
    /// written back over by the next save. Call it only after the store committed with `token`; it does not check
    /// ownership, since the save stands even if the baton moved meanwhile.
    pub fn finish_save(&self, token: &OwnerToken, saved: impl Into<DraftBase>) {
        let saved = saved.into();
        let _sessions = self.board.lock();
        let Some(draft) = self.board.drafts.get(&token.target) else { return };
        if Some(draft.version) == token.draft_version {
            self.board.drafts.remove(&token.target);
            self.publish_draft(&token.target, None, &token.view_id);
        } else {
            // Fenced by the token: if the baton moved on, the new owner's draft keeps its base (its save conflicts
            // and the user resolves it) rather than being rewritten from a node that no longer leads.
            let params = match &saved.values {
                Some(values) => merge::rebase(draft.base_values.as_ref(), &draft.params, values),
                None => draft.params.clone(),
            };
            let changed = params != draft.params;
            let rebased = Arc::new(Draft {
                params,
                base_lock_version: saved.lock_version,
                base_values: saved.values,
                ..(*draft).clone()
            });
            self.board.drafts.put(&token.target, rebased.clone(), token.authority.as_ref());
            if changed {
                // Spectators show the values the next save would write; the owner learns of them from its save.
                self.publish_draft(&token.target, Some(rebased), &token.view_id);
            }
        }
    }

    fn check(sessions: &HashMap<EditTarget, SessionOwner>, token: &OwnerToken) -> Result<(), NotOwner> {
        let session = sessions.get(&token.target);
        let current = session.and_then(|session| session.owner.as_ref().map(|owner| (owner, session.epoch)));
        match current {
            Some((owner, epoch)) if epoch == token.epoch && owner.view_id == token.view_id => Ok(()),
            _ => Err(OwnerBoard::not_owner(session)),
        }
    }

    fn publish_draft(&self, target: &EditTarget, draft: Option<Arc<Draft>>, source: &str) {
        let message = DraftChanged { target: target.clone(), draft, source: source.to_owned() };
        if let Err(error) = self.board.pubsub.broadcast(&target.form_topic(), message) {
            tracing::warn!(%target, %error, "draft not forwarded to other nodes");
        }
    }
}
