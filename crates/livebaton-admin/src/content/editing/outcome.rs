//! The typed outcomes of the editing service: of a save ([`SaveOutcome`]) and of a join ([`JoinRefused`]). The
//! `edit:*` channel turns them into replies, the live forms into flashes; which error is a conflict, which means the
//! row is gone and which is logged as the server's failure is decided here only.

use std::collections::BTreeMap;

use livebaton::presence::{InvalidTabId, PresenceError};
use livebaton_content::ValidationErrors;
use livebaton_web::collab::VersionedRow;
use serde::Serialize;
use serde_json::Value;

use super::kind::ContentKind;
use crate::content::{ContentError, MergeConflict, Saved, entity_values, record_values};
use crate::storage::{Entity, Record};

/// A row of the admin's content a collaborative form edits: its version and merge-shape values
/// ([`VersionedRow`]), its kind, and how a content error names a conflict over it.
pub trait EditedRow: VersionedRow + Serialize {
    /// Its kind.
    const KIND: ContentKind;

    /// This kind's conflict in `error` (per field, or the whole row when the save's version check failed), or the
    /// error unchanged.
    ///
    /// # Errors
    /// Any error that is not a conflict over a row of this kind.
    fn conflict(error: ContentError) -> Result<MergeConflict<Self>, ContentError>;
}

impl VersionedRow for Record {
    fn lock_version(&self) -> i64 {
        self.lock_version
    }

    fn values(&self) -> Value {
        record_values(self)
    }
}

impl EditedRow for Record {
    const KIND: ContentKind = ContentKind::Record;

    fn conflict(error: ContentError) -> Result<MergeConflict<Self>, ContentError> {
        match error {
            ContentError::RecordMerge(conflict) => Ok(*conflict),
            ContentError::RecordConflict(current) => Ok(MergeConflict { current: *current, fields: BTreeMap::new() }),
            other => Err(other),
        }
    }
}

impl VersionedRow for Entity {
    fn lock_version(&self) -> i64 {
        self.lock_version
    }

    fn values(&self) -> Value {
        entity_values(self)
    }
}

impl EditedRow for Entity {
    const KIND: ContentKind = ContentKind::Entity;

    fn conflict(error: ContentError) -> Result<MergeConflict<Self>, ContentError> {
        match error {
            ContentError::EntityMerge(conflict) => Ok(*conflict),
            ContentError::EntityConflict(current) => Ok(MergeConflict { current: *current, fields: BTreeMap::new() }),
            other => Err(other),
        }
    }
}

/// How a save of the admin's content from an editing session ended (see [`livebaton_web::collab::SaveOutcome`]).
pub type SaveOutcome<Row> = livebaton_web::collab::SaveOutcome<Row, ValidationErrors>;

/// The outcome of a content save: which error is a conflict, which means the row is gone and which is logged as the
/// server's failure is decided here only.
pub fn save_outcome<Row: EditedRow>(result: Result<Saved<Row>, ContentError>) -> SaveOutcome<Row> {
    let error = match result.map_err(Row::conflict) {
        Ok(saved) => return SaveOutcome::Saved(saved),
        Err(Ok(conflict)) => return SaveOutcome::Conflict(conflict),
        Err(Err(error)) => error,
    };
    match error {
        ContentError::Invalid(errors) => SaveOutcome::Invalid(errors),
        ContentError::NotOwner(not_owner) => {
            super::count_not_owner();
            SaveOutcome::NotOwner(not_owner)
        }
        ContentError::NotFound => SaveOutcome::Gone,
        // The database, the roster, or a conflict over another kind of row (which a save of this kind cannot
        // cause): the server's failure, not the user's.
        error => {
            tracing::error!(%error, "save failed");
            SaveOutcome::Unavailable
        }
    }
}

/// Why a member could not join an editing session.
#[derive(Debug, PartialEq, Eq)]
pub enum JoinRefused {
    /// The tab id is not one (its message says what one is).
    InvalidTabId(InvalidTabId),
    /// The presence backend failed (the cause is logged, never shown).
    Unavailable,
}

impl From<PresenceError> for JoinRefused {
    fn from(error: PresenceError) -> Self {
        match error {
            PresenceError::InvalidTabId(invalid) => JoinRefused::InvalidTabId(invalid),
            // The cause is for the log, not for the client (it may name the backend's internals).
            error => {
                tracing::warn!(%error, "editing join refused: presence unavailable");
                JoinRefused::Unavailable
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use livebaton::editing::NotOwner;
    use livebaton::editing::merge::FieldConflict;
    use livebaton_content::Status;
    use serde_json::Map;

    use super::*;
    use crate::storage::StoreError;

    fn record(lock_version: i64) -> Record {
        Record {
            id: 1,
            entity_id: 1,
            title: "Hello".into(),
            slug: "hello".into(),
            status: Status::Published,
            data: Map::new(),
            metadata: Map::new(),
            created_by: None,
            created_at: 0,
            updated_at: 0,
            updated_by: None,
            lock_version,
            deleted_at: None,
            deleted_by: None,
        }
    }

    fn entity(lock_version: i64) -> Entity {
        Entity {
            id: 1,
            name: "article".into(),
            display_name: "Article".into(),
            display_name_plural: "Articles".into(),
            description: String::new(),
            icon: String::new(),
            status: Status::Published,
            fields_definition: Vec::new(),
            settings: Map::new(),
            created_by: None,
            created_at: 0,
            updated_at: 0,
            lock_version,
        }
    }

    fn record_outcome(error: ContentError) -> SaveOutcome<Record> {
        save_outcome(Err::<Saved<Record>, _>(error))
    }

    /// Every way a record's save can fail maps to one outcome: conflicts (per field, or the whole row) keep the row
    /// as it is now, a missing row is gone, and the server's failures are unavailable.
    #[test]
    fn record_save_errors_map_to_outcomes() {
        let saved = save_outcome(Ok(Saved { row: record(2), merged: vec!["title".into()] }));
        assert!(
            matches!(saved, SaveOutcome::Saved(Saved { ref row, ref merged }) if row.lock_version == 2 && merged == &["title"])
        );

        let field = FieldConflict { base: Value::Null, mine: "Mine".into(), theirs: "Theirs".into() };
        let fields = BTreeMap::from([("title".to_owned(), field)]);
        let merge = ContentError::RecordMerge(Box::new(MergeConflict { current: record(3), fields }));
        assert!(
            matches!(record_outcome(merge), SaveOutcome::Conflict(c) if c.current.lock_version == 3 && c.fields.len() == 1)
        );
        let whole = ContentError::RecordConflict(Box::new(record(4)));
        assert!(
            matches!(record_outcome(whole), SaveOutcome::Conflict(c) if c.current.lock_version == 4 && c.fields.is_empty())
        );

        let mut errors = ValidationErrors::default();
        errors.add("title", "can't be blank");
        assert!(
            matches!(record_outcome(ContentError::Invalid(errors.clone())), SaveOutcome::Invalid(e) if e == errors)
        );
        let not_owner = NotOwner { owner_name: Some("Alice".into()) };
        assert!(
            matches!(record_outcome(ContentError::NotOwner(not_owner.clone())), SaveOutcome::NotOwner(n) if n == not_owner)
        );
        assert!(matches!(record_outcome(ContentError::NotFound), SaveOutcome::Gone));
        assert!(matches!(record_outcome(ContentError::Store(StoreError::ShuttingDown)), SaveOutcome::Unavailable));
        assert!(matches!(record_outcome(ContentError::Roster("down".into())), SaveOutcome::Unavailable));
        // A conflict over an entity cannot come from a record's save: it is the server's failure, not a conflict.
        let foreign = ContentError::EntityConflict(Box::new(entity(1)));
        assert!(matches!(record_outcome(foreign), SaveOutcome::Unavailable));
    }

    /// An entity's save maps its own conflicts, and not a record's.
    #[test]
    fn entity_save_errors_map_to_outcomes() {
        let outcome = |error| save_outcome::<Entity>(Err(error));
        let merge = ContentError::EntityMerge(Box::new(MergeConflict { current: entity(5), fields: BTreeMap::new() }));
        assert!(matches!(outcome(merge), SaveOutcome::Conflict(c) if c.current.lock_version == 5));
        assert!(matches!(outcome(ContentError::EntityConflict(Box::new(entity(6)))), SaveOutcome::Conflict(_)));
        assert!(matches!(outcome(ContentError::RecordConflict(Box::new(record(1)))), SaveOutcome::Unavailable));
        assert_eq!((entity(7).lock_version(), Entity::KIND), (7, ContentKind::Entity));
        assert_eq!(record(8).values()["title"], "Hello");
    }

    /// A bad tab id is the client's to fix and says why; any other presence failure is only "unavailable".
    #[test]
    fn join_errors_map_to_refusals() {
        assert_eq!(
            JoinRefused::from(PresenceError::InvalidTabId(InvalidTabId)),
            JoinRefused::InvalidTabId(InvalidTabId)
        );
    }
}
