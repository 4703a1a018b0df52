//! Saves from an editing session: the draft is merged per field into the row as it is now
//! ([`livebaton::editing::merge`]), so a save never writes a field its author did not change, and only the fields both
//! sides changed are offered as a conflict. Both the `edit:*` channel and the live forms save through here.
//!
//! **What is merged.** A row's values in "merge shape": the validated input's JSON, so a draft (form text, `"3"`) and a
//! stored row (`3`) compare equal where nobody changed anything. Records: `title`, `slug`, `status`, and one field
//! per key of `data` and of `metadata` (`data.venue`, the names validation errors use). Entity definitions: `name`,
//! `display_name`, `display_name_plural`, `description`, `icon`, `status`, one field per key of `settings`, and
//! `fields_definition` as **one** field: the field list is ordered, its keys must stay unique and the records' values
//! are carried over to it as a whole, so two people changing it is a conflict on the whole list, never a mix.
//! Members the input leaves out (`null`: a record's `metadata` and empty `slug`, an entity's `icon` and `settings`,
//! which the forms do not show or the store keeps) are untouched, not emptied.
//!
//! **How.** Validate the draft; read the row; if it is still at the draft's base version the base is the row itself,
//! else the draft's snapshot of its base values (unknown: every field the two disagree on conflicts). Merge, validate
//! the result, commit it against the row's current version, fenced by the owner token as any save. If the row moved
//! again in between, merge again with the newer row (a few times), so a change made meanwhile is never written over.
//! Resolutions are the user's choices against the row version they saw: they apply only while the row is still at
//! that version; otherwise the merge against the newer row is offered again.

use livebaton_web::collab::VersionedRow;
use std::collections::BTreeMap;

use livebaton::editing::merge::{self, MergeError, Resolutions};
pub use livebaton::editing::merge::{MergeConflict, SaveRequest, Saved};
use livebaton::editing::{DraftBase, OwnerToken};
use livebaton::events::Action;
use livebaton_content::{EntityInput, RecordInput, ValidEntity, ValidRecord, ValidationErrors};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::editing::{Author, EditedRow, FormNotice, SavedNotice};
use super::events::{data_event, entity_event};
use super::{ContentError, ContentService, announce, fence_for};
use crate::storage::{Entity, Fence, Record, StoreError};

/// How many times a save merges again when the row moved between its read and its commit.
const ATTEMPTS: usize = 3;

/// A stored record's values in merge shape.
pub fn record_values(record: &Record) -> Value {
    json!({
        "title": record.title,
        "slug": record.slug,
        "status": record.status,
        "data": record.data,
        "metadata": record.metadata,
    })
}

/// A stored entity definition's values in merge shape.
pub fn entity_values(entity: &Entity) -> Value {
    json!({
        "name": entity.name,
        "display_name": entity.display_name,
        "display_name_plural": entity.display_name_plural,
        "description": entity.description,
        "icon": entity.icon,
        "status": entity.status,
        "fields_definition": entity.fields_definition,
        "settings": entity.settings,
    })
}

/// What differs between records and entity definitions in a merged save.
trait Kind {
    type Row: EditedRow;
    type Input: Serialize + DeserializeOwned + Send + Sync;
    type Valid: Serialize;

    /// Members that are "unchanged" when the input leaves them out (or they validate to null): mine takes theirs'
    /// value. A record's empty slug keeps the stored one (the store's update does), so it is one of them.
    const UNTOUCHED_WHEN_NULL: &'static [&'static str];
    fn conflict(conflict: MergeConflict<Self::Row>) -> ContentError;
    /// The current row carried by the store's version check, or the error.
    fn moved(error: StoreError) -> Result<Self::Row, StoreError>;
}

struct Records;
struct Entities;

impl Kind for Records {
    type Row = Record;
    type Input = RecordInput;
    type Valid = ValidRecord;

    const UNTOUCHED_WHEN_NULL: &'static [&'static str] = &["slug", "metadata"];
    fn conflict(conflict: MergeConflict<Record>) -> ContentError {
        ContentError::RecordMerge(Box::new(conflict))
    }
    fn moved(error: StoreError) -> Result<Record, StoreError> {
        match error {
            StoreError::RecordConflict(current) => Ok(*current),
            other => Err(other),
        }
    }
}

impl Kind for Entities {
    type Row = Entity;
    type Input = EntityInput;
    type Valid = ValidEntity;

    const UNTOUCHED_WHEN_NULL: &'static [&'static str] = &["icon", "settings"];
    fn conflict(conflict: MergeConflict<Entity>) -> ContentError {
        ContentError::EntityMerge(Box::new(conflict))
    }
    fn moved(error: StoreError) -> Result<Entity, StoreError> {
        match error {
            StoreError::EntityConflict(current) => Ok(*current),
            other => Err(other),
        }
    }
}

/// `mine` (validated, as JSON) with the members its input left out taken from `theirs`.
fn mine_values<K: Kind>(input: &K::Input, valid: &K::Valid, theirs: &Value) -> Value {
    let mut mine = serde_json::to_value(valid).unwrap_or(Value::Null);
    let given = serde_json::to_value(input).unwrap_or(Value::Null);
    if let Value::Object(members) = &mut mine {
        for &name in K::UNTOUCHED_WHEN_NULL {
            if given.get(name).is_none_or(Value::is_null) || members.get(name).is_none_or(Value::is_null) {
                members.insert(name.to_owned(), theirs.get(name).cloned().unwrap_or(Value::Null));
            }
        }
    }
    mine
}

/// The outcome of merging a save with one version of the row.
enum Step<K: Kind> {
    /// Validated merged values to commit, and the merged fields.
    Commit(K::Valid, Vec<String>),
    Refused(ContentError),
}

impl ContentService {
    /// Saves a record from an editing session (see the module documentation): merged per field with the record as
    /// it is now, committed against its current version and fenced by `token`; `saved` is sent to the session with
    /// the merged fields.
    ///
    /// # Errors
    /// [`ContentError::RecordMerge`] with the fields both sides changed (nothing written); [`ContentError::Invalid`]
    /// (the draft, the merged values, or more resolutions than fields); [`ContentError::NotOwner`];
    /// [`ContentError::NotFound`]; [`ContentError::Store`]; [`ContentError::Roster`].
    pub async fn save_record(
        &self,
        entity: &Entity,
        id: i64,
        save: SaveRequest<'_, RecordInput>,
        token: &OwnerToken,
        by: &Author,
    ) -> Result<Saved<Record>, ContentError> {
        let saved = self.save_merged::<Records>(id, save, token, by, Some(entity)).await?;
        announce(self.events.broadcast(data_event(Action::Updated, entity.id, saved.row.id)));
        Ok(saved)
    }

    /// Saves an entity definition from an editing session, like [`ContentService::save_record`].
    ///
    /// # Errors
    /// As [`ContentService::save_record`], with [`ContentError::EntityMerge`].
    pub async fn save_entity(
        &self,
        id: i64,
        save: SaveRequest<'_, EntityInput>,
        token: &OwnerToken,
        by: &Author,
    ) -> Result<Saved<Entity>, ContentError> {
        let saved = self.save_merged::<Entities>(id, save, token, by, None).await?;
        announce(self.events.broadcast(entity_event(Action::Updated, saved.row.id)));
        Ok(saved)
    }

    async fn save_merged<K: Kind>(
        &self,
        id: i64,
        save: SaveRequest<'_, K::Input>,
        token: &OwnerToken,
        by: &Author,
        entity: Option<&Entity>,
    ) -> Result<Saved<K::Row>, ContentError>
    where
        Self: Validate<K>,
    {
        let valid_mine = self.check(entity, save.mine).await?;
        self.check_authority(Some(token)).await?;
        let target = K::Row::KIND.target(id);
        let mut current = self.current::<K>(id).await?;
        for attempt in 1..=ATTEMPTS {
            let (valid, merged) = match self.merge_step::<K>(entity, &save, &valid_mine, &current).await {
                Step::Commit(valid, merged) => (valid, merged),
                Step::Refused(error) => return Err(error),
            };
            let editing = self.editing.clone();
            let fenced = target.clone();
            let fence = move || fence_for(&editing, &fenced, Some(token));
            match self.commit(entity, id, current.lock_version(), &valid, by, &fence).await {
                Ok(row) => {
                    self.editing.finish_save(token, DraftBase::new(row.lock_version(), row.values()));
                    let notice = SavedNotice::new(row.lock_version(), by, merged.clone());
                    self.tell_editors(&target, FormNotice::Saved(notice));
                    return Ok(Saved { row, merged });
                }
                Err(error) => match K::moved(error) {
                    // The row moved between the read and the commit: merge again with the newer row.
                    Ok(newer) if attempt < ATTEMPTS => current = newer,
                    Ok(newer) => {
                        return Err(K::conflict(MergeConflict { current: newer, fields: BTreeMap::new() }));
                    }
                    Err(error) => return Err(error.into()),
                },
            }
        }
        unreachable!("the last attempt returns")
    }

    /// The row as it is now.
    async fn current<K: Kind>(&self, id: i64) -> Result<K::Row, ContentError>
    where
        Self: Validate<K>,
    {
        self.read(id).await?.ok_or(ContentError::NotFound)
    }

    /// Merges the save with `current`: the values to commit, or why not.
    async fn merge_step<K: Kind>(
        &self,
        entity: Option<&Entity>,
        save: &SaveRequest<'_, K::Input>,
        valid_mine: &K::Valid,
        current: &K::Row,
    ) -> Step<K>
    where
        Self: Validate<K>,
    {
        let theirs = current.values();
        // The row still at the draft's base is the base itself: no snapshot needed.
        let base = if current.lock_version() == save.base_version { Some(&theirs) } else { save.base_values };
        let mine = mine_values::<K>(save.mine, valid_mine, &theirs);
        let fields = merge::field_names(&[base, Some(&mine), Some(&theirs)]).len();
        if save.resolve.len() > fields {
            let mut errors = ValidationErrors::default();
            errors.add("resolve", format!("names {} fields; the values have {fields}", save.resolve.len()));
            return Step::Refused(ContentError::Invalid(errors));
        }
        let none = Resolutions::new();
        // Choices made against an older row do not answer for values their maker never saw.
        let resolve = if save.resolved_against == Some(current.lock_version()) { save.resolve } else { &none };
        let merged = match merge::merge(base, &mine, &theirs, resolve) {
            Ok(merged) => merged,
            Err(MergeError::Conflicts(fields)) => {
                return Step::Refused(K::conflict(MergeConflict { current: current.clone(), fields }));
            }
            Err(MergeError::TooManyResolutions { given, fields }) => {
                let mut errors = ValidationErrors::default();
                errors.add("resolve", format!("names {given} fields; the values have {fields}"));
                return Step::Refused(ContentError::Invalid(errors));
            }
        };
        let input: K::Input = match serde_json::from_value(merged.values) {
            Ok(input) => input,
            Err(error) => {
                let mut errors = ValidationErrors::default();
                errors.add("params", error.to_string());
                return Step::Refused(ContentError::Invalid(errors));
            }
        };
        match self.check(entity, &input).await {
            Ok(valid) => Step::Commit(valid, merged.merged),
            Err(error) => Step::Refused(error),
        }
    }
}

/// Validation, reading and committing per kind (records need their entity).
trait Validate<K: Kind> {
    async fn check(&self, entity: Option<&Entity>, input: &K::Input) -> Result<K::Valid, ContentError>;
    async fn read(&self, id: i64) -> Result<Option<K::Row>, ContentError>;
    async fn commit(
        &self,
        entity: Option<&Entity>,
        id: i64,
        version: i64,
        valid: &K::Valid,
        by: &Author,
        fence: Fence<'_>,
    ) -> Result<K::Row, StoreError>;
}

impl Validate<Records> for ContentService {
    async fn check(&self, entity: Option<&Entity>, input: &RecordInput) -> Result<ValidRecord, ContentError> {
        let entity = entity.ok_or(ContentError::NotFound)?;
        self.validate_record(entity, input).await
    }
    async fn read(&self, id: i64) -> Result<Option<Record>, ContentError> {
        Ok(self.store.find_record_by_id(id).await?)
    }
    async fn commit(
        &self,
        entity: Option<&Entity>,
        id: i64,
        version: i64,
        valid: &ValidRecord,
        by: &Author,
        fence: Fence<'_>,
    ) -> Result<Record, StoreError> {
        let entity = entity.ok_or(StoreError::NotFound)?;
        self.store.update_record(entity.id, id, version, valid, by.id.parse().ok(), Some(fence)).await
    }
}

impl Validate<Entities> for ContentService {
    async fn check(&self, _: Option<&Entity>, input: &EntityInput) -> Result<ValidEntity, ContentError> {
        self.validate_entity(input).await
    }
    async fn read(&self, id: i64) -> Result<Option<Entity>, ContentError> {
        Ok(self.store.find_entity(id).await?)
    }
    async fn commit(
        &self,
        _: Option<&Entity>,
        id: i64,
        version: i64,
        valid: &ValidEntity,
        _: &Author,
        fence: Fence<'_>,
    ) -> Result<Entity, StoreError> {
        self.store.update_entity(id, version, valid, Some(fence)).await
    }
}
