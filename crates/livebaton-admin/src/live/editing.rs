//! `edit:entity:<id>` and `edit:data:<id>`: collaborative editing for clients that render their own UI. The session,
//! its baton and its saves are the editing service's ([`crate::content::editing`], which the bundled live forms use
//! too); this file words them as Phoenix replies and pushes.
//!
//! Join with `{tab_id}`; the reply says `{role, owner, queue, draft, lock_version, kept_draft}`, where `kept_draft`
//! (or `null`) is the unsaved draft an earlier session of this form left for this user: `{params, updated_at,
//! base_lock_version}`, offered until the client sends `restore_draft` (owner only: it becomes the session's draft,
//! with its original base, and reaches the spectators as a `draft` push; the reply is `{version, params}`) or
//! `discard_draft {updated_at}` (reply `{discarded}`). Pushes: `presence_state` and
//! `presence_diff` (keys are connection ids), `role` when this member's role changes (`promoted`, `taken_here`) or
//! the owner changes (`owner_changed`), `draft` from the owner (never echoed to its author), `saved` `{lock_version,
//! by, by_id, merged}` and `deleted`. Events: `draft {params, lock_version?}` (owner only; `lock_version` is the row
//! version the client edits), `save {params?, lock_version?, resolve?}`, `take_here`.
//!
//! A save is fenced (owner token, and the row's version at commit) and merged per field with the row as it is now
//! ([`crate::content::SaveRequest`]): the ok reply is `{lock_version, merged}`; a `conflict` reply carries `current`,
//! its `lock_version` and `fields` (`{name: {base, mine, theirs}}`, only the fields both sides changed), and the client
//! answers it with `save {resolve: {name: "mine" | "theirs"}, lock_version}` (the conflict's version). What the values
//! started from (the merge's base): the draft's base, or without a draft the row this channel last saw; a save with
//! `params` and `lock_version` but no `resolve` says its params already account for that version (a client that
//! merged by hand). The channel keeps the values of the row it last saw (its join, its own saves) as base values.
//!
//! Whether the member may edit comes from the store at join, and every `save` (and `draft`, from a check at most a
//! second old) re-reads the user first ([`WriteAccess`]): after a password or role change the reply is an error with
//! `reason` `role_changed` or `credentials_changed` and a `message`, and nothing is written.

mod save;

use std::sync::Arc;

use livebaton::editing::{DraftChanged, EditTarget, EditingError, OwnerChanged};
use livebaton::presence::{PresenceDiff, TrackGuard};
use livebaton::pubsub::Broadcast;
use livebaton_web::channel::{
    BoxFuture, Channel, ChannelRoute, JoinRequest, Joined, Outgoing, Pusher, Reply, Termination,
};
use livebaton_web::protocol::ReplyStatus;
use serde_json::{Value, json};

use super::write_access::{DRAFT_CHECK_AGE, Refusal, WriteAccess};
use crate::accounts::Role;
use crate::content::editing::{
    Author, ContentKind, DRAFT_TOO_LARGE, EditedRow, EditingService, JoinRefused, RoleUpdate, count_not_owner,
    draft_too_large,
};
use crate::storage::{Store, StoreError};

/// Routes `edit:entity:*` or `edit:data:*`.
pub struct EditRoute {
    pub(crate) kind: ContentKind,
    pub(crate) service: EditingService,
}

struct EditChannel {
    kind: ContentKind,
    /// The row's id.
    id: i64,
    target: EditTarget,
    connection_id: Arc<str>,
    /// This member's user (saves name them in `saved`).
    author: Author,
    service: EditingService,
    /// The row version this member last saw (the base of a first draft).
    lock_version: i64,
    /// That row's values (see [`record_values`]): the base values of a draft or save based on `lock_version`.
    row_values: Value,
    /// This member's place in the session; taken on an explicit leave so it goes at once.
    guard: Option<TrackGuard>,
    /// The member's right to write, re-read before each write.
    access: WriteAccess,
}

fn refuse(reason: &str) -> Value {
    json!({"reason": reason})
}

/// A join refused because the store failed: the cause goes to the log, the client is told only "unavailable" (it
/// retries, as phoenix.js does with refused joins).
fn store_unavailable(error: crate::storage::StoreError) -> Value {
    tracing::warn!(%error, "editing join refused: the store is unavailable");
    refuse("unavailable")
}

/// A join refused by the editing service.
fn join_refused(refused: JoinRefused) -> Value {
    match refused {
        JoinRefused::InvalidTabId(invalid) => refuse(&invalid.to_string()),
        JoinRefused::Unavailable => refuse("unavailable"),
    }
}

/// Row `id` of `kind` as stored now: its version and its values in merge shape (see [`EditedRow::values`]).
async fn current_row(store: &Store, kind: ContentKind, id: i64) -> Result<Option<(i64, Value)>, StoreError> {
    fn snapshot(row: &impl EditedRow) -> (i64, Value) {
        (row.lock_version(), row.values())
    }
    Ok(match kind {
        ContentKind::Record => store.find_record_by_id(id).await?.as_ref().map(snapshot),
        ContentKind::Entity => store.find_entity(id).await?.as_ref().map(snapshot),
    })
}

/// The reply to an event from a member that does not hold the baton (counted for `/metrics`).
fn not_owner(message: String) -> Reply {
    count_not_owner();
    (ReplyStatus::Error, json!({"reason": "not_owner", "message": message}))
}

/// The reply to a write from a member whose password or role changed (or when that could not be checked).
fn refused_write(refusal: Refusal) -> Reply {
    (ReplyStatus::Error, json!({"reason": refusal.reason(), "message": refusal.message()}))
}

fn kept_json(kept: &livebaton::editing::KeptDraft) -> Value {
    json!({
        "params": kept.draft.params,
        "updated_at": kept.draft.updated_at,
        "base_lock_version": kept.draft.base_lock_version,
    })
}

fn owner_json(presence: &livebaton::editing::EditingPresence) -> Value {
    json!({"user_id": presence.user_id, "name": presence.user_name, "view_id": presence.view_id})
}

impl ChannelRoute for EditRoute {
    fn join<'a>(&'a self, request: JoinRequest<'a>) -> BoxFuture<'a, Result<Joined, Value>> {
        Box::pin(async move {
            let kind = self.kind;
            let id: i64 = request
                .topic
                .strip_prefix(kind.channel_prefix())
                .and_then(|id| id.parse().ok())
                .ok_or_else(|| refuse("not found"))?;
            let target = kind.target(id);
            Role::parse(request.socket.user.role()).ok_or_else(|| refuse("unauthorized"))?;
            let store = self.service.content().store();
            let row = current_row(store, kind, id).await.map_err(store_unavailable)?;
            let (lock_version, row_values) = row.ok_or_else(|| refuse("not found"))?;
            // The role as the store has it now, not as the socket authenticated it.
            let user = &request.socket.user;
            let access = WriteAccess::load(store, user, kind.permits()).await.map_err(store_unavailable)?;
            let tab_id = match request.payload.get("tab_id") {
                None | Some(Value::Null) => None,
                Some(Value::String(tab)) if tab.is_empty() => None,
                Some(Value::String(tab)) => Some(tab.as_str()),
                // Checked like any tab id: refused with its reason.
                Some(_) => return Err(refuse(&livebaton::presence::InvalidTabId.to_string())),
            };
            // Subscribe before tracking so nothing between the reply and the first diff is missed.
            let editing = self.service.engine();
            let subscriptions = vec![editing.subscribe_to_editing(&target), editing.subscribe_to_drafts(&target)];
            let connection_id = request.socket.connection_id.clone();
            let guard = self
                .service
                .join(&target, &connection_id, user, access.permitted(), tab_id)
                .await
                .map_err(join_refused)?;
            let baton = self.service.baton(&target, &connection_id, user.id());
            let owner = baton.owner.as_ref().map_or(Value::Null, owner_json);
            let queue: Vec<Value> = baton
                .queue
                .iter()
                .map(|presence| json!({"view_id": presence.view_id, "user_id": presence.user_id, "name": presence.user_name, "can_edit": presence.can_edit}))
                .collect();
            let draft = editing
                .draft(&target)
                .map(|draft| json!({"params": draft.params, "version": draft.version, "updated_by": draft.updated_by}));
            // Looked up now, for this user and form only (never all of a user's kept drafts); a store that cannot be
            // read offers nothing (the draft stays kept).
            let kept_draft = match editing.find_kept_draft(&target, user.id()).await {
                Ok(kept) => kept.map(|kept| kept_json(&kept)),
                Err(error) => {
                    tracing::warn!(%error, "kept drafts could not be read; none offered");
                    None
                }
            };
            let reply = json!({"role": baton.role.as_str(), "owner": owner, "queue": queue, "draft": draft, "lock_version": lock_version, "kept_draft": kept_draft});
            let channel = EditChannel {
                kind,
                id,
                target,
                connection_id,
                author: Author::from(&**user),
                service: self.service.clone(),
                lock_version,
                row_values,
                guard: Some(guard),
                access,
            };
            Ok(Joined { reply, channel: Box::new(channel), subscriptions })
        })
    }
}

impl EditChannel {
    async fn push_state(&self, pusher: &Pusher) {
        livebaton_web::channels::push_presence_state(pusher, &self.editing_presence_list()).await;
    }

    fn editing_presence_list(&self) -> livebaton::presence::PresenceList {
        // The editing session's roster, keyed by connection id.
        self.presences().list(&self.target.presence_topic())
    }

    fn presences(&self) -> &livebaton::presence::Presence {
        self.editing().presence()
    }

    fn editing(&self) -> &livebaton::editing::Editing {
        self.service.engine()
    }

    /// Whether this member may still change the draft: only the owner can, so only the owner's access is checked
    /// (from a check at most [`DRAFT_CHECK_AGE`] old); anyone else is refused as `not_owner` by the engine.
    async fn may_draft(&mut self) -> Result<(), Refusal> {
        if self.editing().fence(&self.target, &self.connection_id).is_err() {
            return Ok(());
        }
        self.access.check(self.service.content().store(), DRAFT_CHECK_AGE).await
    }
}

impl Channel for EditChannel {
    fn after_join<'a>(&'a mut self, pusher: &'a Pusher) -> BoxFuture<'a, ()> {
        Box::pin(self.push_state(pusher))
    }

    fn handle_in<'a>(
        &'a mut self,
        event: &'a str,
        payload: Value,
        _pusher: &'a Pusher,
    ) -> BoxFuture<'a, Option<Reply>> {
        Box::pin(async move {
            let reply = match event {
                "draft" => {
                    let params = payload.get("params").cloned().unwrap_or(Value::Null);
                    if !params.is_object() {
                        (ReplyStatus::Error, json!({"reason": "invalid", "errors": {"params": ["must be an object"]}}))
                    } else if draft_too_large(&params) {
                        let errors = json!({"params": [DRAFT_TOO_LARGE]});
                        (ReplyStatus::Error, json!({"reason": "too_large", "errors": errors}))
                    } else if let Err(refusal) = self.may_draft().await {
                        refused_write(refusal)
                    } else {
                        // The base of a new draft is the row version the client says it edits; without one, the
                        // version this channel last saw itself (its join or its own save), never one learnt from
                        // another writer's `saved`, which the client may not have applied yet.
                        let base = payload.get("lock_version").and_then(Value::as_i64).unwrap_or(self.lock_version);
                        let base = self.draft_base(base).await;
                        match self.editing().update_draft(&self.target, &self.connection_id, base, params) {
                            Ok(draft) => (ReplyStatus::Ok, json!({"version": draft.version})),
                            Err(refused) => not_owner(refused.to_string()),
                        }
                    }
                }
                "save" => self.save(payload).await,
                "restore_draft" => match self.may_draft().await {
                    Err(refusal) => refused_write(refusal),
                    Ok(()) => match self.editing().restore_kept_draft(&self.target, &self.connection_id).await {
                        Ok(draft) => (ReplyStatus::Ok, json!({"version": draft.version, "params": draft.params})),
                        Err(EditingError::NotOwner(refused)) => not_owner(refused.to_string()),
                        Err(error) => {
                            let reason = match error {
                                EditingError::NoKeptDraft => "no_kept_draft",
                                EditingError::DraftInProgress { .. } => "draft_in_progress",
                                _ => "unavailable",
                            };
                            (ReplyStatus::Error, json!({"reason": reason, "message": error.to_string()}))
                        }
                    },
                },
                "discard_draft" => match payload.get("updated_at").and_then(Value::as_u64) {
                    None => {
                        let errors = json!({"updated_at": ["must be the kept draft's updated_at"]});
                        (ReplyStatus::Error, json!({"reason": "invalid", "errors": errors}))
                    }
                    Some(updated_at) => {
                        match self.editing().discard_kept_draft(&self.target, &self.author.id, updated_at).await {
                            Ok(discarded) => (ReplyStatus::Ok, json!({"discarded": discarded})),
                            Err(error) => {
                                (ReplyStatus::Error, json!({"reason": "unavailable", "message": error.to_string()}))
                            }
                        }
                    }
                },
                "take_here" => match self.editing().take_here(&self.target, &self.connection_id) {
                    Ok(()) => (ReplyStatus::Ok, json!({})),
                    Err(error) => {
                        let reason = match error {
                            EditingError::NotSameUser => "not_same_user",
                            EditingError::NotEligible => "not_eligible",
                            _ => "not_in_session",
                        };
                        (ReplyStatus::Error, json!({"reason": reason, "message": error.to_string()}))
                    }
                },
                other => (ReplyStatus::Error, json!({"reason": format!("unknown event {other:?}")})),
            };
            Some(reply)
        })
    }

    fn handle_out(&mut self, broadcast: &Arc<Broadcast>, pusher: &Pusher) -> Outgoing {
        if let Some(diff) = broadcast.downcast::<PresenceDiff>() {
            pusher.push("presence_diff", diff);
        } else if let Some(change) = broadcast.downcast::<OwnerChanged>() {
            let owner = change.owner.as_ref().map_or(Value::Null, owner_json);
            let RoleUpdate { role, reason } = RoleUpdate::of(change, &self.connection_id);
            let (role, reason) = (role.as_str(), reason.as_str());
            let draft =
                change.draft.as_ref().map(|draft| json!({"version": draft.version, "updated_by": draft.updated_by}));
            pusher.push("role", &json!({"role": role, "owner": owner, "reason": reason, "draft": draft}));
        } else if let Some(changed) = broadcast.downcast::<DraftChanged>() {
            if let (Some(draft), false) = (&changed.draft, changed.source == *self.connection_id) {
                pusher.push(
                    "draft",
                    &json!({"params": draft.params, "version": draft.version, "updated_by": draft.updated_by}),
                );
            }
        } else {
            // Form notices (`saved`, `deleted`, `restored`) go to the client as they are; the channel's own row version only moves with its
            // own saves (see `draft`).
            return Outgoing::Forward;
        }
        Outgoing::Handled
    }

    fn handle_lag<'a>(&'a mut self, _missed: u64, pusher: &'a Pusher) -> BoxFuture<'a, ()> {
        Box::pin(self.push_state(pusher))
    }

    fn terminate(&mut self, reason: Termination) {
        if let Some(guard) = self.guard.take() {
            match reason {
                // The tab may come back (reload, or a rejoin on the same socket): keep its place for the grace
                // period, so the same user's tab reclaims it.
                Termination::Closed | Termination::Replaced => drop(guard),
                Termination::Left | Termination::Shutdown => guard.leave(),
            }
        }
    }
}
