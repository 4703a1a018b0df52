//! The `save` event of `edit:*` (and the base of a new `draft`): which values are saved, what they started from
//! (the base of the per-field merge), the user's resolutions, and the replies.
//!
//! - mine: the event's `params`, or the session's draft;
//! - base: the draft's base (version and values); without a draft, the row this channel last saw; a save with
//!   `params` and `lock_version` but no `resolve` says its params already account for that version (a client that
//!   merged by hand), so that version is its base;
//! - `resolve` (`{name: "mine" | "theirs"}`) needs `lock_version`, the version of the conflict it answers: the
//!   choices apply only while the row is still there.

use livebaton::editing::DraftBase;
use livebaton::editing::merge::{Resolutions, Side};
use livebaton_content::{EntityInput, RecordInput};
use livebaton_web::channel::Reply;
use livebaton_web::protocol::ReplyStatus;
use serde_json::{Value, json};

use super::{EditChannel, current_row, not_owner, refuse, refused_write};
use crate::content::SaveRequest;
use crate::content::editing::{ContentKind, EditedRow, SaveOutcome};

impl EditChannel {
    /// The base of a new draft on row version `base`: with that row's values when this channel saw it, or when the
    /// row is still there (a client that reloaded the row after someone else's save). Read only for a new draft.
    pub(super) async fn draft_base(&self, base: i64) -> DraftBase {
        if self.editing().draft(&self.target).is_some() {
            return DraftBase::from(base);
        }
        if base == self.lock_version {
            return DraftBase::new(base, self.row_values.clone());
        }
        match current_row(self.service.content().store(), self.kind, self.id).await {
            Ok(Some((version, values))) if version == base => DraftBase::new(base, values),
            _ => DraftBase::from(base),
        }
    }

    pub(super) async fn save(&mut self, payload: Value) -> Reply {
        let token = match self.editing().fence(&self.target, &self.connection_id) {
            Ok(token) => token,
            Err(refused) => return not_owner(refused.to_string()),
        };
        if let Err(refusal) = self.access.check(self.service.content().store(), std::time::Duration::ZERO).await {
            return refused_write(refusal);
        }
        let resolve = match resolutions(payload.get("resolve")) {
            Ok(resolve) => resolve,
            Err(message) => {
                return (ReplyStatus::Error, json!({"reason": "invalid", "errors": {"resolve": [message]}}));
            }
        };
        let lock_version = payload.get("lock_version").and_then(Value::as_i64);
        if !resolve.is_empty() && lock_version.is_none() {
            let message = "needs the lock_version of the conflict it answers";
            return (ReplyStatus::Error, json!({"reason": "invalid", "errors": {"resolve": [message]}}));
        }
        let draft = token.draft().cloned();
        // The values a base version had, as far as this channel knows them.
        let known = |version: i64| match &draft {
            Some(draft) if draft.base_lock_version == version => draft.base_values.clone(),
            _ if version == self.lock_version => Some(self.row_values.clone()),
            _ => None,
        };
        let (params, base_version, base_values) = match (payload.get("params"), &draft, lock_version) {
            // Params merged by hand with the row at `lock_version`: they are based on it.
            (Some(params), _, Some(version)) if resolve.is_empty() => (params.clone(), version, known(version)),
            (Some(params), Some(draft), _) => (params.clone(), draft.base_lock_version, draft.base_values.clone()),
            (Some(params), None, _) => (params.clone(), self.lock_version, Some(self.row_values.clone())),
            (None, Some(draft), _) => (draft.params.clone(), draft.base_lock_version, draft.base_values.clone()),
            (None, None, _) => {
                return (ReplyStatus::Error, json!({"reason": "invalid", "errors": {"params": ["nothing to save"]}}));
            }
        };
        let resolved_against = if resolve.is_empty() { None } else { lock_version };
        let base_values = base_values.as_ref();
        let (service, id, by) = (&self.service, self.id, &self.author);
        match self.kind {
            ContentKind::Record => {
                let input: RecordInput = match serde_json::from_value(params) {
                    Ok(input) => input,
                    Err(error) => return invalid_params(&error),
                };
                // Only a missing row means deleted; a database that does not answer is `unavailable`, draft kept.
                let store = service.content().store();
                let entity = match store.find_record_by_id(id).await {
                    Ok(Some(record)) => store.find_entity(record.entity_id).await,
                    Ok(None) => Ok(None),
                    Err(error) => Err(error),
                };
                let entity = match entity {
                    Ok(Some(entity)) => entity,
                    Ok(None) => return (ReplyStatus::Error, refuse("deleted")),
                    Err(error) => {
                        tracing::error!(%error, "save failed: the record could not be read");
                        return unavailable();
                    }
                };
                let save = SaveRequest { mine: &input, base_version, base_values, resolve: &resolve, resolved_against };
                let outcome = service.save_record(&entity, id, save, &token, by).await;
                self.reply_to_save(outcome)
            }
            ContentKind::Entity => {
                let input: EntityInput = match serde_json::from_value(params) {
                    Ok(input) => input,
                    Err(error) => return invalid_params(&error),
                };
                let save = SaveRequest { mine: &input, base_version, base_values, resolve: &resolve, resolved_against };
                let outcome = service.save_entity(id, save, &token, by).await;
                self.reply_to_save(outcome)
            }
        }
    }

    /// The reply to a save (docs/protocol.md §5.4). A committed save moves the row this channel last saw.
    fn reply_to_save<R: EditedRow>(&mut self, outcome: SaveOutcome<R>) -> Reply {
        match outcome {
            SaveOutcome::Saved(saved) => {
                self.lock_version = saved.row.lock_version();
                self.row_values = saved.row.values();
                (ReplyStatus::Ok, json!({"lock_version": self.lock_version, "merged": saved.merged}))
            }
            SaveOutcome::Conflict(conflict) => (
                ReplyStatus::Error,
                json!({"reason": "conflict", "lock_version": conflict.current.lock_version(), "current": conflict.current, "fields": conflict.fields}),
            ),
            SaveOutcome::Invalid(errors) => (ReplyStatus::Error, json!({"reason": "invalid", "errors": errors})),
            SaveOutcome::NotOwner(refused) => not_owner(refused.to_string()),
            SaveOutcome::Gone => (ReplyStatus::Error, refuse("deleted")),
            SaveOutcome::Unavailable => unavailable(),
        }
    }
}

/// `resolve` of a `save`: field name → `"mine"` or `"theirs"` (its size is bounded by the merge: at most one per
/// field the values have).
fn resolutions(value: Option<&Value>) -> Result<Resolutions, &'static str> {
    const SHAPE: &str = "must be an object of field names to \"mine\" or \"theirs\"";
    match value {
        None | Some(Value::Null) => Ok(Resolutions::new()),
        Some(Value::Object(choices)) => choices
            .iter()
            .map(|(name, side)| side.as_str().and_then(Side::parse).map(|side| (name.clone(), side)).ok_or(SHAPE))
            .collect(),
        Some(_) => Err(SHAPE),
    }
}

/// The reply to a save the database or the roster could not take: nothing was written, the draft stays.
fn unavailable() -> Reply {
    (ReplyStatus::Error, json!({"reason": "unavailable", "message": "the save failed; your draft is kept"}))
}

fn invalid_params(error: &serde_json::Error) -> Reply {
    (ReplyStatus::Error, json!({"reason": "invalid", "errors": {"params": [error.to_string()]}}))
}
