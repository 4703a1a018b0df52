//! The content service: validate, store, then announce. Every write the admin app makes (JSON API or live form) goes
//! through here, so validation, the lock_version check, the editing fence and the events after commit cannot be
//! skipped by one of them.
//!
//! Validation sanitises rich text, which parses HTML: it runs on tokio's blocking threads, never on a runtime worker,
//! and at most one sanitising job per core runs at a time (more wait their turn), so a burst of large submissions
//! delays other submissions, not every page and socket of the server. Showing rich text sanitises it again
//! ([`ContentService::rich_values`], [`ContentService::for_output`]), the same way.
//!
//! Saves from an editing session merge per field with the row as it is now ([`merging`]); the JSON API's updates
//! replace the row when its `lock_version` still matches.

pub mod editing;
pub mod events;
mod merging;

use std::collections::BTreeMap;
use std::sync::Arc;

use livebaton::editing::{DraftBase, EditTarget, Editing, EditingError, NotOwner, OwnerToken};
use livebaton::events::{Action, Events};
use livebaton::pubsub::PubSub;
use livebaton_content::{
    EntityInput, FieldDefinition, FieldType, RecordInput, SafeHtml, ValidationErrors, validate_entity, validate_record,
};
use serde_json::{Map, Value};

use self::editing::{Author, DeletedNotice, FormNotice, RestoredNotice, SavedNotice, entity_target, record_target};
use self::events::{data_event, entity_event};
use tokio::sync::Semaphore;

use crate::storage::{Entity, Record, Store, StoreError};

pub use merging::{MergeConflict, SaveRequest, Saved, entity_values, record_values};

/// Why a content write was refused. Each variant maps to one message the user sees.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// The submission is invalid; every field's messages.
    #[error("{0}")]
    Invalid(ValidationErrors),
    /// The entity or record does not exist.
    #[error("not found")]
    NotFound,
    /// The entity changed since it was loaded.
    #[error("this entity was changed by someone else; reload to see the current version")]
    EntityConflict(Box<Entity>),
    /// The record changed since it was loaded.
    #[error("this record was changed by someone else; reload to see the current version")]
    RecordConflict(Box<Record>),
    /// An editing session's save: the record moved, and some fields were changed on both sides.
    #[error("someone else changed the same fields of this record")]
    RecordMerge(Box<MergeConflict<Record>>),
    /// An editing session's save: the entity moved, and some fields were changed on both sides.
    #[error("someone else changed the same fields of this entity")]
    EntityMerge(Box<MergeConflict<Entity>>),
    /// The save came from a tab that no longer holds the baton.
    #[error(transparent)]
    NotOwner(#[from] NotOwner),
    /// The database failed; nothing was written.
    #[error("the change could not be saved: {0}")]
    Store(StoreError),
    /// The cluster's roster could not be asked whether the tab still holds the baton; nothing was written.
    #[error("the change could not be saved: the editing roster is unavailable ({0})")]
    Roster(String),
}

impl From<StoreError> for ContentError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ContentError::NotFound,
            StoreError::EntityConflict(current) => ContentError::EntityConflict(current),
            StoreError::RecordConflict(current) => ContentError::RecordConflict(current),
            StoreError::NotOwner(not_owner) => ContentError::NotOwner(not_owner),
            StoreError::Taken(field) => {
                let mut errors = ValidationErrors::default();
                errors.add(field, "has already been taken");
                ContentError::Invalid(errors)
            }
            other => ContentError::Store(other),
        }
    }
}

/// Rich-text values of one record, sanitised for output, by field key.
pub type RichValues = BTreeMap<String, SafeHtml>;

/// Content writes with their rules.
#[derive(Clone)]
pub struct ContentService {
    store: Store,
    events: Events,
    editing: Editing,
    /// For the `saved`/`deleted` notices on editing sessions' form topics.
    events_pubsub: PubSub,
    /// One permit per core for validating and sanitising on the blocking threads: tokio's blocking pool grows to
    /// hundreds of threads, and each of them parsing HTML at once would only share the same cores more slowly.
    sanitizing: Arc<Semaphore>,
}

impl ContentService {
    /// A service over `store`, announcing on `pubsub` (the admin's resource events: [`events`]) and fencing with
    /// `editing`.
    pub fn new(store: Store, editing: Editing, pubsub: PubSub) -> Self {
        let events = self::events::admin_events(&pubsub);
        FormNotice::register(&pubsub);
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        ContentService { store, events, editing, events_pubsub: pubsub, sanitizing: Arc::new(Semaphore::new(cores)) }
    }

    /// The admin's resource events, to subscribe to (see [`events`]).
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Runs `work` (validation or sanitising) on a blocking thread once one of the per-core permits is free.
    async fn off_the_workers<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        off_the_workers(&self.sanitizing, work).await
    }

    /// Validates an entity definition off the workers (a rich-text default is sanitised).
    async fn validate_entity(&self, input: &EntityInput) -> Result<livebaton_content::ValidEntity, ContentError> {
        let input = input.clone();
        self.off_the_workers(move || validate_entity(&input)).await.map_err(ContentError::Invalid)
    }

    /// Validates a record against `entity`'s fields off the workers (rich text is sanitised).
    async fn validate_record(
        &self,
        entity: &Entity,
        input: &RecordInput,
    ) -> Result<livebaton_content::ValidRecord, ContentError> {
        let (fields, input) = (entity.fields_definition.clone(), input.clone());
        self.off_the_workers(move || validate_record(&fields, &input)).await.map_err(ContentError::Invalid)
    }

    /// The rich-text values `data` holds for `fields`, sanitised again for output whatever is stored (see
    /// [`SafeHtml::render`]), off the workers. Pages print rich text only from here.
    pub async fn rich_values(&self, fields: &[FieldDefinition], data: &Map<String, Value>) -> RichValues {
        let rich: Vec<(String, String)> = fields
            .iter()
            .filter(|field| field.field_type == FieldType::RichText)
            .filter_map(|field| Some((field.key.clone(), data.get(&field.key)?.as_str()?.to_owned())))
            .collect();
        if rich.is_empty() {
            return RichValues::new();
        }
        self.off_the_workers(move || rich.into_iter().map(|(key, html)| (key, SafeHtml::render(&html))).collect()).await
    }

    /// `records` of `entity` as the JSON API returns them: every rich-text value sanitised again, like the pages show
    /// it (what is stored may predate a field's change of type), off the workers. Other values are returned as stored.
    pub async fn for_output(&self, entity: &Entity, mut records: Vec<Record>) -> Vec<Record> {
        let fields = entity.fields_definition.clone();
        if !fields.iter().any(|field| field.field_type == FieldType::RichText) {
            return records;
        }
        self.off_the_workers(move || {
            for record in &mut records {
                for field in fields.iter().filter(|field| field.field_type == FieldType::RichText) {
                    if let Some(Value::String(html)) = record.data.get_mut(&field.key) {
                        *html = SafeHtml::render(html).into_string();
                    }
                }
            }
            records
        })
        .await
    }

    /// The store, for reads.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Validates and stores a new entity, then announces it.
    ///
    /// # Errors
    /// [`ContentError::Invalid`] (including a taken name); [`ContentError::Store`].
    pub async fn create_entity(&self, input: &EntityInput, actor: Option<i64>) -> Result<Entity, ContentError> {
        let valid = self.validate_entity(input).await?;
        let entity = self.store.insert_entity(&valid, actor).await?;
        announce(self.events.broadcast(entity_event(Action::Created, entity.id)));
        Ok(entity)
    }

    /// Validates and replaces entity `id` if still at `lock_version` (and, with `token`, if the editing tab still
    /// holds the baton at commit time), then announces it. Records' values are carried over to the new fields in the
    /// same transaction (see [`Store::update_entity`]); those records are not announced one by one.
    ///
    /// # Errors
    /// [`ContentError::Invalid`], [`ContentError::EntityConflict`], [`ContentError::NotOwner`],
    /// [`ContentError::NotFound`], [`ContentError::Store`].
    pub async fn update_entity(
        &self,
        id: i64,
        lock_version: i64,
        input: &EntityInput,
        token: Option<&OwnerToken>,
        by: &Author,
    ) -> Result<Entity, ContentError> {
        let valid = self.validate_entity(input).await?;
        self.check_authority(token).await?;
        let editing = self.editing.clone();
        let target = entity_target(id);
        let fenced = target.clone();
        let fence = move || fence_for(&editing, &fenced, token);
        let entity = self.store.update_entity(id, lock_version, &valid, Some(&fence)).await?;
        if let Some(token) = token {
            // The draft has been saved; spectators reload from the row.
            self.editing.finish_save(token, DraftBase::new(entity.lock_version, entity_values(&entity)));
        }
        announce(self.events.broadcast(entity_event(Action::Updated, entity.id)));
        self.tell_editors(&target, FormNotice::Saved(SavedNotice::new(entity.lock_version, by, Vec::new())));
        Ok(entity)
    }

    /// Deletes entity `id` (and its records) if still at `lock_version` when given, then announces it.
    ///
    /// # Errors
    /// [`ContentError::EntityConflict`], [`ContentError::NotFound`], [`ContentError::Store`].
    pub async fn delete_entity(&self, id: i64, lock_version: Option<i64>) -> Result<Entity, ContentError> {
        let entity = self.store.delete_entity(id, lock_version).await?;
        announce(self.events.broadcast(entity_event(Action::Deleted, entity.id)));
        self.tell_editors(&entity_target(entity.id), FormNotice::Deleted(DeletedNotice { trash: None }));
        Ok(entity)
    }

    /// Validates a record against its entity's fields, stores it and announces it.
    ///
    /// # Errors
    /// [`ContentError::Invalid`] (including a taken slug); [`ContentError::Store`].
    pub async fn create_record(
        &self,
        entity: &Entity,
        input: &RecordInput,
        actor: Option<i64>,
    ) -> Result<Record, ContentError> {
        let valid = self.validate_record(entity, input).await?;
        let record = self.store.insert_record(entity.id, &valid, actor).await?;
        announce(self.events.broadcast(data_event(Action::Created, entity.id, record.id)));
        Ok(record)
    }

    /// Validates and replaces record `id` if still at `lock_version` (and, with `token`, if the editing tab still
    /// holds the baton at commit time), then announces it.
    ///
    /// # Errors
    /// [`ContentError::Invalid`], [`ContentError::RecordConflict`], [`ContentError::NotOwner`],
    /// [`ContentError::NotFound`], [`ContentError::Store`].
    pub async fn update_record(
        &self,
        entity: &Entity,
        id: i64,
        lock_version: i64,
        input: &RecordInput,
        token: Option<&OwnerToken>,
        by: &Author,
    ) -> Result<Record, ContentError> {
        let valid = self.validate_record(entity, input).await?;
        self.check_authority(token).await?;
        let editing = self.editing.clone();
        let target = record_target(id);
        let fenced = target.clone();
        let fence = move || fence_for(&editing, &fenced, token);
        let record =
            self.store.update_record(entity.id, id, lock_version, &valid, by.id.parse().ok(), Some(&fence)).await?;
        if let Some(token) = token {
            self.editing.finish_save(token, DraftBase::new(record.lock_version, record_values(&record)));
        }
        announce(self.events.broadcast(data_event(Action::Updated, entity.id, record.id)));
        self.tell_editors(&target, FormNotice::Saved(SavedNotice::new(record.lock_version, by, Vec::new())));
        Ok(record)
    }

    /// Moves record `id` to the trash if still at `lock_version` when given, then announces it as deleted (to
    /// subscribers it is gone; [`ContentService::restore_record`] brings it back). `by` is who deleted it.
    ///
    /// # Errors
    /// [`ContentError::RecordConflict`], [`ContentError::NotFound`], [`ContentError::Store`].
    pub async fn delete_record(
        &self,
        entity: &Entity,
        id: i64,
        lock_version: Option<i64>,
        by: Option<i64>,
    ) -> Result<Record, ContentError> {
        let record = self.store.trash_record(entity.id, id, lock_version, by).await?;
        announce(self.events.broadcast(data_event(Action::Deleted, entity.id, record.id)));
        self.tell_editors(&record_target(record.id), FormNotice::Deleted(DeletedNotice { trash: Some(true) }));
        Ok(record)
    }

    /// Takes record `id` out of the trash, exactly as it was (id, slug, `lock_version`, data), and announces it as
    /// created: to subscribers it is back.
    ///
    /// # Errors
    /// [`ContentError::NotFound`] if it is not in the trash; [`ContentError::Store`].
    pub async fn restore_record(&self, entity: &Entity, id: i64) -> Result<Record, ContentError> {
        let record = self.store.restore_record(entity.id, id).await?;
        announce(self.events.broadcast(data_event(Action::Created, entity.id, record.id)));
        // Pages still open on its form (their editors kept their text) learn that it is back, at the same version.
        let restored = RestoredNotice { lock_version: record.lock_version };
        self.tell_editors(&record_target(record.id), FormNotice::Restored(restored));
        Ok(record)
    }

    /// Removes record `id` for good, from the trash or live (then only if still at `lock_version` when given). A live
    /// record's removal is announced as a delete.
    ///
    /// # Errors
    /// [`ContentError::RecordConflict`], [`ContentError::NotFound`], [`ContentError::Store`].
    pub async fn purge_record(
        &self,
        entity: &Entity,
        id: i64,
        lock_version: Option<i64>,
    ) -> Result<Record, ContentError> {
        let record = self.store.purge_record(entity.id, id, lock_version).await?;
        if record.deleted_at.is_none() {
            announce(self.events.broadcast(data_event(Action::Deleted, entity.id, record.id)));
            self.tell_editors(&record_target(record.id), FormNotice::Deleted(DeletedNotice { trash: Some(false) }));
        }
        Ok(record)
    }
}

impl ContentService {
    /// With several nodes, asks the shared roster whether `token`'s tab still holds the baton, just before the
    /// write (on one node this is the local check the commit repeats). The commit then checks the token again
    /// locally and the row's `lock_version`: if ownership moves in the instant between, the new owner's save is
    /// based on the old row version and conflicts, so no write is lost either way.
    async fn check_authority(&self, token: Option<&OwnerToken>) -> Result<(), ContentError> {
        let Some(token) = token else { return Ok(()) };
        match self.editing.verify_with_authority(token).await {
            Ok(()) => Ok(()),
            Err(EditingError::NotOwner(not_owner)) => Err(ContentError::NotOwner(not_owner)),
            Err(error) => Err(ContentError::Roster(error.to_string())),
        }
    }

    /// Tells the editors of `target` (on its form topic) that the row was saved, deleted or restored.
    fn tell_editors(&self, target: &EditTarget, notice: FormNotice) {
        announce(self.events_pubsub.broadcast(&target.form_topic(), notice).map(drop));
    }
}

/// The commit-time check of a write: none for writes outside an editing session (the JSON API); with a token, it must
/// be for this target and still be the owner's.
fn fence_for(editing: &Editing, target: &EditTarget, token: Option<&OwnerToken>) -> Result<(), NotOwner> {
    match token {
        None => Ok(()),
        Some(token) if token.target() != target => Err(NotOwner { owner_name: None }),
        Some(token) => editing.verify(token),
    }
}

/// Events are sent after commit; if other nodes cannot be told, local pages still were, and the write stands.
fn announce(result: Result<(), livebaton::pubsub::PubSubError>) {
    if let Err(error) = result {
        tracing::warn!(%error, "content event not forwarded to other nodes");
    }
}

/// Runs `work` on tokio's blocking pool once one of `permits` is free, so costly validation and sanitising never hold
/// a runtime worker (which serves every page and socket) and never more of them run at once than there are permits.
async fn off_the_workers<T: Send + 'static>(permits: &Arc<Semaphore>, work: impl FnOnce() -> T + Send + 'static) -> T {
    // The semaphore is never closed; without a permit the work would still be bounded by the blocking pool.
    let permit = Arc::clone(permits).acquire_owned().await.ok();
    let outcome = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await;
    match outcome {
        Ok(value) => value,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => panic!("a blocking content task was cancelled: {error}"),
    }
}

#[cfg(test)]
mod off_the_workers_tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// The work runs on another thread than the runtime's (a current-thread runtime: its only worker is the test's
    /// thread), and no more of it at once than there are permits.
    #[tokio::test]
    async fn work_runs_on_the_blocking_pool_within_its_permits() {
        let permits = Arc::new(Semaphore::new(2));
        let here = std::thread::current().id();
        let there = off_the_workers(&permits, || std::thread::current().id()).await;
        assert_ne!(here, there, "the work ran on the runtime's worker");

        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let jobs = (0..8).map(|_| {
            let (running, most) = (running.clone(), most.clone());
            off_the_workers(&permits, move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
            })
        });
        futures_util::future::join_all(jobs).await;
        assert_eq!(most.load(Ordering::SeqCst), 2, "two permits: two at once, never more");
    }
}
