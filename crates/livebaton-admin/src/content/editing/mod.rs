//! The editing service: what the `edit:*` channel (`crate::live`) and the two collaborative forms (`crate::views`)
//! share about an editing session, so that each of them only words it (JSON replies and pushes for the channel,
//! flashes and the editing bar for the forms):
//!
//! - which session a row's form joins ([`ContentKind`], [`record_target`], [`entity_target`]) and who may hold its
//!   baton ([`ContentKind::permits`]);
//! - joining it as a user ([`EditingService::join`], refused as a [`JoinRefused`]);
//! - who holds the baton ([`Baton`]) and what an owner change means for a member ([`RoleUpdate`]), with the
//!   hand-over and refusal metrics;
//! - saving, with the outcome typed ([`SaveOutcome`]) and attributed to a user by id ([`Author`]);
//! - the notices on the form topic after a write ([`FormNotice`]: `saved`, `deleted`, `restored`);
//! - how large a draft may be ([`draft_too_large`]).

mod kind;
mod outcome;

use livebaton::editing::{EditTarget, Editing, Editor, OwnerToken};
use livebaton::presence::TrackGuard;
use livebaton_content::{EntityInput, RecordInput};
use livebaton_web::channel::UserInfo;
use serde_json::Value;

pub use kind::{ContentKind, entity_target, record_target};
pub use livebaton_web::collab::{
    Author, Baton, DeletedNotice, FormNotice, MemberRole, RestoredNotice, RoleReason, RoleUpdate, SavedNotice,
    count_not_owner,
};
pub use outcome::{EditedRow, JoinRefused, SaveOutcome, save_outcome};

use super::{ContentService, SaveRequest};
use crate::storage::{Entity, Record};

/// Why a draft was refused for its size.
pub const DRAFT_TOO_LARGE: &str =
    "These changes are too large to keep: a record holds at most 20,000 bytes of content. Shorten a field.";

/// Whether draft `params` hold more than one record may ([`livebaton_content::MAX_CONTENT_BYTES`], as JSON): a draft
/// is broadcast to every spectator and saved by whoever holds it next, so it is no bigger than a save may be.
pub fn draft_too_large(params: &Value) -> bool {
    serde_json::to_vec(params).map_or(true, |json| json.len() > livebaton_content::MAX_CONTENT_BYTES)
}

/// Editing sessions over the admin's content. Cheap to clone.
#[derive(Clone)]
pub struct EditingService {
    content: ContentService,
}

impl EditingService {
    /// The service over `content` (and the editing engine it fences with).
    pub fn new(content: &ContentService) -> Self {
        EditingService { content: content.clone() }
    }

    /// The editing engine: drafts, kept drafts, fencing.
    pub fn engine(&self) -> &Editing {
        &self.content.editing
    }

    /// The content service, for reads.
    pub fn content(&self) -> &ContentService {
        &self.content
    }

    /// Takes a place for `user` in `target`'s session as the member `member` (a live page's view id, a channel's
    /// connection id), for as long as the guard lives. `can_edit` is whether the user's role, as stored now, permits
    /// holding the baton; `tab_id` lets the same tab reclaim its place after a reload. Subscribe to the session's
    /// topics before, so that nothing between the two is missed.
    ///
    /// # Errors
    /// [`JoinRefused::InvalidTabId`]; [`JoinRefused::Unavailable`] when the presence backend failed (logged).
    pub async fn join(
        &self,
        target: &EditTarget,
        member: &str,
        user: &UserInfo,
        can_edit: bool,
        tab_id: Option<&str>,
    ) -> Result<TrackGuard, JoinRefused> {
        let editor = Editor::new(user.id(), user.name()).with_can_edit(can_edit);
        Ok(self.engine().track_editing_session(target, member, &editor, tab_id).await?)
    }

    /// Who holds `target`'s baton, as the member `member` of user `user_id` sees it now.
    pub fn baton(&self, target: &EditTarget, member: &str, user_id: &str) -> Baton {
        Baton::from(self.engine().editing_role(target, member, user_id))
    }

    /// Saves record `id` of `entity` from its editing session, merged per field with the row as it is now and fenced
    /// by `token`; `saved` names `by`.
    pub async fn save_record(
        &self,
        entity: &Entity,
        id: i64,
        request: SaveRequest<'_, RecordInput>,
        token: &OwnerToken,
        by: &Author,
    ) -> SaveOutcome<Record> {
        save_outcome(self.content.save_record(entity, id, request, token, by).await)
    }

    /// Saves entity definition `id` from its editing session, as [`EditingService::save_record`].
    pub async fn save_entity(
        &self,
        id: i64,
        request: SaveRequest<'_, EntityInput>,
        token: &OwnerToken,
        by: &Author,
    ) -> SaveOutcome<Entity> {
        save_outcome(self.content.save_entity(id, request, token, by).await)
    }
}
