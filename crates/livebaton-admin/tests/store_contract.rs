//! The store's contract, written once and run against both databases it supports (mirrors `src/storage/`).
//!
//! Every test below is generated twice by `contract_suite!`: in `sqlite::` on a fresh database file per test, and in
//! `postgres::` on a fresh database per test, created on the server named by `DATABASE_URL` and dropped afterwards.
//! The PostgreSQL tests fail (never skip) when `DATABASE_URL` is unset or the server does not answer.
//!
//! Run: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p livebaton-admin --test store_contract`

use std::future::Future;
use std::time::Duration;

use livebaton::editing::NotOwner;
use livebaton_admin::accounts::Role;
use livebaton_admin::storage::{
    AuditAction, Dialect, Entity, LinkError, LinkKind, NewAuditEntry, NewLink, NewUser, Record, Session, SqlKeptDrafts,
    Store, StoreError, UserChange, now_ms,
};
use livebaton_content::{FieldDefinition, FieldType, Status, ValidEntity, ValidRecord};
use serde_json::{Map, Value, json};
use sqlx::{Connection, Executor};

/// Generates the contract functions, then one `#[tokio::test]` per function and backend, each carrying the
/// function's doc comment.
macro_rules! contract_suite {
    ($( $(#[$meta:meta])* async fn $name:ident($store:ident: Store) $body:block )*) => {
        $( $(#[$meta])* async fn $name($store: Store) $body )*

        mod sqlite {
            $( $(#[$meta])* #[tokio::test] async fn $name() { super::on_sqlite(super::$name).await } )*
        }

        mod postgres {
            $( $(#[$meta])* #[tokio::test] async fn $name() { super::on_postgres(super::$name).await } )*
        }
    };
}

// ---------------------------------------------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------------------------------------------

/// Runs `test` on a store over a fresh SQLite file in a temporary directory.
async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("contract.db").display());
    let store = Store::connect(&url).await.expect("the SQLite store opens and migrates");
    assert_eq!(store.dialect(), Dialect::Sqlite);
    let outcome = tokio::spawn(test(store.clone())).await;
    store.pool().close().await;
    drop(dir);
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// Runs `test` on a store over a fresh database created on the PostgreSQL server named by `DATABASE_URL`, and drops
/// that database afterwards (also when the test failed).
async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let server_url = std::env::var("DATABASE_URL").unwrap_or_default();
    assert!(
        server_url.starts_with("postgres://") || server_url.starts_with("postgresql://"),
        "the PostgreSQL contract tests need DATABASE_URL naming a PostgreSQL server, e.g. \
         DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres (got {:?})",
        redact(&server_url)
    );
    let database =
        format!("livebaton_test_{}", livebaton_admin::accounts::sha256_hex(&random_suffix())[..16].to_owned());
    let mut admin = connect_server(&server_url).await;
    admin.execute(format!("CREATE DATABASE {database}").as_str()).await.unwrap_or_else(|error| {
        panic!("could not create the test database {database} on {}: {error}", redact(&server_url))
    });

    let url = with_database(&server_url, &database);
    let outcome = match Store::connect(&url).await {
        Ok(store) => {
            assert_eq!(store.dialect(), Dialect::Postgres);
            let outcome = tokio::spawn(test(store.clone())).await;
            store.pool().close().await;
            Ok(outcome)
        }
        Err(error) => Err(error),
    };

    // Best effort: a leftover database is harmless, so a failed drop does not fail the test.
    let _ = admin.execute(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)").as_str()).await;
    let _ = admin.close().await;

    match outcome {
        Err(error) => panic!("Store::connect to the fresh PostgreSQL database {database} failed: {error}"),
        Ok(Err(join_error)) => std::panic::resume_unwind(join_error.into_panic()),
        Ok(Ok(())) => {}
    }
}

async fn connect_server(server_url: &str) -> sqlx::PgConnection {
    let url = redact(server_url);
    match tokio::time::timeout(Duration::from_secs(10), sqlx::PgConnection::connect(server_url)).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(error)) => panic!(
            "the PostgreSQL server at DATABASE_URL={url} does not answer ({error}); start it (e.g. \
             `pg_ctlcluster --skip-systemctl-redirect <version> main start`) — these tests do not skip"
        ),
        Err(_) => panic!("the PostgreSQL server at DATABASE_URL={url} did not answer within 10 s"),
    }
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match url[scheme + 3..at].split_once(':') {
            Some((user, _password)) => format!("{}://{user}:…{}", &url[..scheme], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

/// `url` with its database (the path) replaced by `database`, keeping any query string.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |at| at + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{server}/{database}{query}")
}

fn random_suffix() -> String {
    format!("{}-{:?}-{}", std::process::id(), std::thread::current().id(), livebaton_admin::accounts::random_token(16))
}

// ---------------------------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------------------------

fn valid_entity(name: &str, display_name: &str) -> ValidEntity {
    ValidEntity {
        name: name.to_owned(),
        display_name: display_name.to_owned(),
        display_name_plural: format!("{display_name}s"),
        description: format!("About {display_name}"),
        icon: "document".to_owned(),
        status: Status::Published,
        fields_definition: vec![
            FieldDefinition {
                field_type: FieldType::Text,
                key: "summary".to_owned(),
                label: "Summary".to_owned(),
                required: false,
                default: None,
                options: vec![],
                props: Map::new(),
            },
            FieldDefinition {
                field_type: FieldType::Select,
                key: "category".to_owned(),
                label: "Category".to_owned(),
                required: true,
                default: Some(json!("news")),
                options: vec!["news".to_owned(), "guide".to_owned()],
                props: Map::from_iter([("placeholder".to_owned(), json!("Pick one"))]),
            },
        ],
        settings: Map::from_iter([("per_page".to_owned(), json!(20))]),
    }
}

fn valid_record(title: &str, slug: Option<&str>) -> ValidRecord {
    ValidRecord {
        title: title.to_owned(),
        slug: slug.map(str::to_owned),
        status: Status::Draft,
        data: Map::from_iter([
            ("summary".to_owned(), json!(format!("{title} in short"))),
            ("category".to_owned(), json!("news")),
        ]),
        metadata: Map::from_iter([("source".to_owned(), json!("contract"))]),
    }
}

fn failing_fence() -> Result<(), NotOwner> {
    Err(NotOwner { owner_name: Some("Alice".to_owned()) })
}

fn new_user(email: &str, role: Role) -> NewUser {
    NewUser {
        email: email.to_owned(),
        name: email.split('@').next().unwrap_or_default().to_owned(),
        password_hash: "$argon2id$not-a-real-hash".to_owned(),
        role,
    }
}

fn entity_conflict(result: Result<Entity, StoreError>) -> Entity {
    match result {
        Err(StoreError::EntityConflict(current)) => *current,
        other => panic!("expected EntityConflict, got {other:?}"),
    }
}

fn record_conflict(result: Result<Record, StoreError>) -> Record {
    match result {
        Err(StoreError::RecordConflict(current)) => *current,
        other => panic!("expected RecordConflict, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The contract
// ---------------------------------------------------------------------------------------------------------------

contract_suite! {
    /// Unsaved drafts of ended sessions are kept per form and user, the newest winning, within the retention and the
    /// limits (the engine's contract for every kept-draft store); each store the contract makes starts empty.
    async fn drafts_of_ended_sessions_meet_the_kept_draft_contract(store: Store) {
        livebaton::testing::kept_draft_store_contract(
            |limits| {
                let store = store.clone();
                async move {
                    sqlx::query("DELETE FROM kept_drafts").execute(store.pool()).await.expect("an empty table");
                    SqlKeptDrafts::new(store, limits)
                }
            },
            ("data", "entity"),
            1,
        )
        .await;
    }

    /// An inserted entity starts at version 1 with every field stored, and is found by id, by name and in the list.
    async fn entities_are_inserted_found_and_listed(store: Store) {
        let valid = valid_entity("product", "Product");
        let product = store.insert_entity(&valid, None).await.expect("insert product");
        let article = store.insert_entity(&valid_entity("article", "Article"), None).await.expect("insert article");

        assert_eq!(product.lock_version, 1);
        assert_eq!(product.name, "product");
        assert_eq!(product.display_name_plural, "Products");
        assert_eq!(product.description, "About Product");
        assert_eq!(product.icon, "document");
        assert_eq!(product.status, Status::Published);
        assert_eq!(product.fields_definition, valid.fields_definition, "fields round-trip, props and default included");
        assert_eq!(product.settings, valid.settings);
        assert_eq!(product.created_by, None);
        assert!(product.created_at > 0 && product.created_at == product.updated_at);
        assert_ne!(product.id, article.id);

        assert_eq!(store.find_entity(product.id).await.unwrap(), Some(product.clone()));
        assert_eq!(store.find_entity_by_name("product").await.unwrap(), Some(product.clone()));
        assert_eq!(store.find_entity_by_name("missing").await.unwrap(), None);
        assert_eq!(store.find_entity(product.id + article.id + 100).await.unwrap(), None);

        let names: Vec<String> = store.list_entities().await.unwrap().into_iter().map(|entity| entity.name).collect();
        assert_eq!(names, ["article", "product"], "listed by display name");
    }

    /// A second entity with a taken name is refused with `Taken("name")`, on insert and on rename.
    async fn a_taken_entity_name_is_refused(store: Store) {
        store.insert_entity(&valid_entity("article", "Article"), None).await.expect("first insert");
        let duplicate = store.insert_entity(&valid_entity("article", "Another"), None).await;
        assert!(matches!(duplicate, Err(StoreError::Taken("name"))), "got {duplicate:?}");

        let page = store.insert_entity(&valid_entity("page", "Page"), None).await.expect("insert page");
        let renamed = store.update_entity(page.id, 1, &valid_entity("article", "Page"), None).await;
        assert!(matches!(renamed, Err(StoreError::Taken("name"))), "got {renamed:?}");
        assert_eq!(store.find_entity(page.id).await.unwrap(), Some(page), "the refused rename changed nothing");
        assert_eq!(store.list_entities().await.unwrap().len(), 2);
    }

    /// An update based on the current version stores the new values and bumps `lock_version` by one each time.
    async fn an_entity_update_at_the_current_version_bumps_it(store: Store) {
        let created = store.insert_entity(&valid_entity("article", "Article"), None).await.unwrap();
        let mut changed = valid_entity("story", "Story");
        changed.status = Status::Archived;
        changed.fields_definition.truncate(1);

        let updated = store.update_entity(created.id, 1, &changed, None).await.expect("update at version 1");
        assert_eq!(updated.lock_version, 2);
        assert_eq!(updated.name, "story");
        assert_eq!(updated.status, Status::Archived);
        assert_eq!(updated.fields_definition.len(), 1);
        assert_eq!(updated.created_at, created.created_at);
        assert_eq!(store.find_entity(created.id).await.unwrap(), Some(updated.clone()));

        let again = store.update_entity(created.id, 2, &changed, None).await.expect("update at version 2");
        assert_eq!(again.lock_version, 3);
    }

    /// A renamed entity is found by its old names, until an entity has the name again; deleting it forgets them.
    async fn renamed_entities_are_found_by_their_old_names(store: Store) {
        let created = store.insert_entity(&valid_entity("article", "Article"), None).await.unwrap();
        let story = store.update_entity(created.id, 1, &valid_entity("story", "Article"), None).await.unwrap();
        let found = |name: &'static str| {
            let store = store.clone();
            async move { store.find_renamed_entity(name).await.unwrap().map(|entity| (entity.id, entity.name)) }
        };
        assert_eq!(found("article").await, Some((created.id, "story".to_owned())));
        assert_eq!(found("story").await, None, "a live name is nobody's old name");
        let tale = store.update_entity(created.id, story.lock_version, &valid_entity("tale", "Article"), None).await;
        let tale = tale.unwrap();
        assert_eq!(found("article").await, Some((created.id, "tale".to_owned())), "old names follow every rename");
        assert_eq!(found("story").await, Some((created.id, "tale".to_owned())));

        // Back to the first name: it is live again; a new entity taking an old name wins over the redirect.
        store.update_entity(created.id, tale.lock_version, &valid_entity("article", "Article"), None).await.unwrap();
        assert_eq!(found("article").await, None);
        let other = store.insert_entity(&valid_entity("story", "Story"), None).await.unwrap();
        assert_eq!(found("story").await, None, "the live entity {} has the name", other.id);
        assert_eq!(found("tale").await, Some((created.id, "article".to_owned())));

        store.delete_entity(created.id, None).await.unwrap();
        assert_eq!(found("tale").await, None, "a deleted entity's old names are forgotten");
    }

    /// Records holding a value in a field are counted, live and in the trash; empty values are not values.
    async fn records_with_a_value_in_a_field_are_counted(store: Store) {
        let entity = store.insert_entity(&valid_entity("article", "Article"), None).await.unwrap();
        let with = |summary: Value| {
            let mut record = valid_record("R", None);
            record.data.insert("summary".to_owned(), summary);
            record
        };
        for value in [json!("text"), json!("[]"), json!(0), json!(false), json!(["a"]), json!({"k": 1})] {
            store.insert_record(entity.id, &with(value), None).await.unwrap();
        }
        for empty in [json!(""), json!(null), json!([])] {
            store.insert_record(entity.id, &with(empty), None).await.unwrap();
        }
        let mut missing = valid_record("R", None);
        missing.data.remove("summary");
        let trashed = store.insert_record(entity.id, &with(json!("in the trash")), None).await.unwrap();
        store.trash_record(entity.id, trashed.id, None, None).await.unwrap();
        store.insert_record(entity.id, &missing, None).await.unwrap();

        assert_eq!(store.count_records_with_value(entity.id, "summary").await.unwrap(), 7);
        assert_eq!(store.count_records_with_value(entity.id, "category").await.unwrap(), 11);
        assert_eq!(store.count_records_with_value(entity.id, "nothing").await.unwrap(), 0);
        assert_eq!(store.count_records_with_value(entity.id + 1, "summary").await.unwrap(), 0);
    }

    /// An update based on an old version is refused with `EntityConflict` carrying the current row, and changes
    /// nothing; an update of a missing entity is `NotFound`.
    async fn a_stale_entity_update_conflicts_with_the_current_row(store: Store) {
        let created = store.insert_entity(&valid_entity("article", "Article"), None).await.unwrap();
        let current = store.update_entity(created.id, 1, &valid_entity("article", "Post"), None).await.unwrap();

        let stale = store.update_entity(created.id, 1, &valid_entity("article", "Stale"), None).await;
        let reported = entity_conflict(stale);
        assert_eq!(reported, current, "the conflict carries the row as it is now");
        assert_eq!(reported.display_name, "Post");
        assert_eq!(reported.lock_version, 2);
        assert_eq!(store.find_entity(created.id).await.unwrap(), Some(current));

        let missing = store.update_entity(created.id + 1000, 1, &valid_entity("other", "Other"), None).await;
        assert!(matches!(missing, Err(StoreError::NotFound)), "got {missing:?}");
    }

    /// A fence that fails at commit time refuses the write with `NotOwner` and rolls it back, for entities and records.
    async fn a_failing_fence_refuses_and_rolls_back(store: Store) {
        let entity = store.insert_entity(&valid_entity("article", "Article"), None).await.unwrap();
        let refused =
            store.update_entity(entity.id, 1, &valid_entity("renamed", "Renamed"), Some(&failing_fence)).await;
        match refused {
            Err(StoreError::NotOwner(not_owner)) => assert_eq!(not_owner.owner_name.as_deref(), Some("Alice")),
            other => panic!("expected NotOwner, got {other:?}"),
        }
        assert_eq!(store.find_entity(entity.id).await.unwrap(), Some(entity.clone()), "entity unchanged");
        assert_eq!(store.find_entity_by_name("renamed").await.unwrap(), None);

        let record = store.insert_record(entity.id, &valid_record("Hello", None), None).await.unwrap();
        let refused = store
            .update_record(entity.id, record.id, 1, &valid_record("Changed", Some("changed")), None, Some(&failing_fence))
            .await;
        assert!(matches!(refused, Err(StoreError::NotOwner(_))), "got {refused:?}");
        assert_eq!(store.find_record(entity.id, record.id).await.unwrap(), Some(record.clone()), "record unchanged");

        // A passing fence lets the same writes through.
        let passing = || Ok(());
        let updated =
            store.update_entity(entity.id, 1, &valid_entity("renamed", "Renamed"), Some(&passing)).await.unwrap();
        assert_eq!(updated.lock_version, 2);
        let updated =
            store.update_record(entity.id, record.id, 1, &valid_record("Changed", None), None, Some(&passing)).await.unwrap();
        assert_eq!(updated.title, "Changed");
        assert_eq!(updated.lock_version, 2);
    }

    /// An update that retypes or removes fields carries records' values over in its transaction: a removed key is
    /// dropped, text becomes escaped rich text, and a changed row gets a new version (a save based on the old row
    /// conflicts). A refused update changes no record; an update that keeps the fields' keys and types changes none.
    async fn an_entity_update_carries_record_values_over_to_new_fields(store: Store) {
        let entity = store.insert_entity(&valid_entity("article", "Article"), None).await.unwrap();
        let record = store.insert_record(entity.id, &valid_record("<b>Hi</b>", None), None).await.unwrap();
        let other = store.insert_entity(&valid_entity("other", "Other"), None).await.unwrap();
        let bystander = store.insert_record(other.id, &valid_record("Other", None), None).await.unwrap();
        let mut retyped = valid_entity("article", "Article");
        retyped.fields_definition[0].field_type = FieldType::RichText;
        retyped.fields_definition.truncate(1);

        let refused = store.update_entity(entity.id, 1, &retyped, Some(&failing_fence)).await;
        assert!(matches!(refused, Err(StoreError::NotOwner(_))), "got {refused:?}");
        assert_eq!(store.find_record(entity.id, record.id).await.unwrap(), Some(record.clone()), "rolled back");

        store.update_entity(entity.id, 1, &retyped, None).await.unwrap();
        let migrated = store.find_record(entity.id, record.id).await.unwrap().unwrap();
        let escaped = json!({"summary": "<p>&lt;b&gt;Hi&lt;/b&gt; in short</p>"});
        assert_eq!(serde_json::Value::Object(migrated.data), escaped);
        assert_eq!(migrated.lock_version, 2);
        assert_eq!((migrated.title, migrated.metadata), (record.title, record.metadata));
        assert_eq!(store.find_record(other.id, bystander.id).await.unwrap(), Some(bystander), "another entity's");

        let mut relabelled = retyped.clone();
        relabelled.fields_definition[0].label = "Short".to_owned();
        store.update_entity(entity.id, 2, &relabelled, None).await.unwrap();
        assert_eq!(store.find_record(entity.id, record.id).await.unwrap().unwrap().lock_version, 2, "unchanged");
    }

    /// Deleting an entity removes it and its records (not other entities' records); a stale delete changes nothing.
    async fn deleting_an_entity_removes_its_records(store: Store) {
        let doomed = store.insert_entity(&valid_entity("article", "Article"), None).await.unwrap();
        let kept = store.insert_entity(&valid_entity("page", "Page"), None).await.unwrap();
        let first = store.insert_record(doomed.id, &valid_record("One", None), None).await.unwrap();
        store.insert_record(doomed.id, &valid_record("Two", None), None).await.unwrap();
        let other = store.insert_record(kept.id, &valid_record("One", None), None).await.unwrap();

        let stale = store.delete_entity(doomed.id, Some(7)).await;
        assert_eq!(entity_conflict(stale), doomed);
        assert_eq!(store.list_records(doomed.id).await.unwrap().len(), 2, "a refused delete keeps the records");

        let deleted = store.delete_entity(doomed.id, Some(1)).await.expect("delete at the current version");
        assert_eq!(deleted.id, doomed.id);
        assert_eq!(store.find_entity(doomed.id).await.unwrap(), None);
        assert!(store.list_records(doomed.id).await.unwrap().is_empty());
        assert_eq!(store.find_record(doomed.id, first.id).await.unwrap(), None);
        assert_eq!(store.list_records(kept.id).await.unwrap(), vec![other]);

        let again = store.delete_entity(doomed.id, None).await;
        assert!(matches!(again, Err(StoreError::NotFound)), "got {again:?}");
        store.delete_entity(kept.id, None).await.expect("a delete without a version is unconditional");
        assert!(store.list_entities().await.unwrap().is_empty());
    }

    /// Records with equal titles get `my-title`, `my-title-2`, `my-title-3`; slugs are unique per entity only.
    async fn equal_titles_get_numbered_slugs(store: Store) {
        let entity = store.insert_entity(&valid_entity("article", "Article"), None).await.unwrap();
        let other = store.insert_entity(&valid_entity("page", "Page"), None).await.unwrap();
        let mut slugs = Vec::new();
        for _ in 0..3 {
            slugs.push(store.insert_record(entity.id, &valid_record("My Title", None), None).await.unwrap().slug);
        }
        assert_eq!(slugs, ["my-title", "my-title-2", "my-title-3"]);

        let elsewhere = store.insert_record(other.id, &valid_record("My Title", None), None).await.unwrap();
        assert_eq!(elsewhere.slug, "my-title", "another entity's slugs do not count");

        // A title that only shares a prefix does not bump the number.
        let similar = store.insert_record(entity.id, &valid_record("My Title Two", None), None).await.unwrap();
        assert_eq!(similar.slug, "my-title-two");
        let fourth = store.insert_record(entity.id, &valid_record("My Title", None), None).await.unwrap();
        assert_eq!(fourth.slug, "my-title-4");

        let found = store.find_record_by_slug(entity.id, "my-title-2").await.unwrap().expect("found by slug");
        assert_eq!(found.title, "My Title");
        assert_eq!(found.lock_version, 1);
        assert_eq!(found.data.get("category"), Some(&json!("news")));
        assert_eq!(found.metadata.get("source"), Some(&json!("contract")));
        assert_eq!(found.status, Status::Draft);

        let listed: Vec<String> =
            store.list_records(entity.id).await.unwrap().into_iter().map(|record| record.slug).collect();
        assert_eq!(listed, ["my-title-4", "my-title-two", "my-title-3", "my-title-2", "my-title"], "newest first");
    }

    /// Records with equal titles inserted at the same time all succeed, each with its own numbered slug.
    async fn concurrent_equal_titles_get_distinct_slugs(store: Store) {
        let entity = store.insert_entity(&valid_entity("article", "Article"), None).await.unwrap();
        let inserts: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                let record = valid_record("Same Title", None);
                tokio::spawn(async move { store.insert_record(entity.id, &record, None).await })
            })
            .collect();
        let mut slugs = Vec::new();
        for insert in inserts {
            slugs.push(insert.await.expect("the task finishes").expect("every concurrent insert succeeds").slug);
        }
        slugs.sort();
        assert_eq!(slugs, ["same-title", "same-title-2", "same-title-3", "same-title-4"]);
    }

    /// An explicit slug that is taken in the entity is refused with `Taken("slug")`, on insert and on update.
    async fn an_explicit_taken_slug_is_refused(store: Store) {
        let entity = store.insert_entity(&valid_entity("article", "Article"), None).await.unwrap();
        store.insert_record(entity.id, &valid_record("First", Some("hello")), None).await.unwrap();
        let duplicate = store.insert_record(entity.id, &valid_record("Second", Some("hello")), None).await;
        assert!(matches!(duplicate, Err(StoreError::Taken("slug"))), "got {duplicate:?}");
        assert_eq!(store.list_records(entity.id).await.unwrap().len(), 1, "nothing half-written");

        let second = store.insert_record(entity.id, &valid_record("Second", Some("world")), None).await.unwrap();
        let renamed = store.update_record(entity.id, second.id, 1, &valid_record("Second", Some("hello")), None, None).await;
        assert!(matches!(renamed, Err(StoreError::Taken("slug"))), "got {renamed:?}");
        assert_eq!(store.find_record(entity.id, second.id).await.unwrap(), Some(second));
    }

    /// A record update without a slug keeps the current one; with a slug it changes it; each bumps `lock_version`.
    async fn a_record_update_keeps_its_slug_unless_one_is_given(store: Store) {
        let entity = store.insert_entity(&valid_entity("article", "Article"), None).await.unwrap();
        let author = store.create_user(&new_user("erin@example.com", Role::Editor)).await.unwrap();
        let created =
            store.insert_record(entity.id, &valid_record("Original Title", None), Some(author.id)).await.unwrap();
        assert_eq!(created.slug, "original-title");
        assert_eq!(created.created_by, Some(author.id));
        assert_eq!(created.updated_by, Some(author.id), "the creator saved it last");

        let mut changed = valid_record("A Completely New Title", None);
        changed.status = Status::Published;
        changed.data.insert("summary".to_owned(), json!("new summary"));
        let editor = store.create_user(&new_user("finn@example.com", Role::Editor)).await.unwrap();
        let updated = store.update_record(entity.id, created.id, 1, &changed, Some(editor.id), None).await.unwrap();
        assert_eq!(updated.slug, "original-title", "the slug is kept");
        assert_eq!(updated.updated_by, Some(editor.id), "who saved it last");
        assert_eq!(updated.created_by, Some(author.id), "the creator stays");
        assert_eq!(updated.title, "A Completely New Title");
        assert_eq!(updated.status, Status::Published);
        assert_eq!(updated.data.get("summary"), Some(&json!("new summary")));
        assert_eq!(updated.lock_version, 2);
        assert_eq!(updated.created_at, created.created_at);

        let reslugged = store
            .update_record(entity.id, created.id, 2, &valid_record("Again", Some("fresh-slug")), None, None)
            .await
            .unwrap();
        assert_eq!(reslugged.slug, "fresh-slug");
        assert_eq!(reslugged.lock_version, 3);
        assert_eq!(store.find_record(entity.id, created.id).await.unwrap(), Some(reslugged));
    }

    /// Stale record updates and deletes are refused with `RecordConflict` carrying the current row; a matching
    /// delete removes the record; missing records are `NotFound`.
    async fn stale_record_writes_conflict_with_the_current_row(store: Store) {
        let entity = store.insert_entity(&valid_entity("article", "Article"), None).await.unwrap();
        let created = store.insert_record(entity.id, &valid_record("Hello", None), None).await.unwrap();
        let current =
            store.update_record(entity.id, created.id, 1, &valid_record("Hello again", None), None, None).await.unwrap();

        let stale_update = store.update_record(entity.id, created.id, 1, &valid_record("Lost", None), None, None).await;
        let reported = record_conflict(stale_update);
        assert_eq!(reported, current);
        assert_eq!(reported.title, "Hello again");
        assert_eq!(reported.lock_version, 2);

        let stale_delete = store.trash_record(entity.id, created.id, Some(1), None).await;
        assert_eq!(record_conflict(stale_delete), current);
        assert_eq!(store.find_record(entity.id, created.id).await.unwrap(), Some(current.clone()), "still there");

        // The record is addressed through its entity: another entity's id does not reach it.
        let other = store.insert_entity(&valid_entity("page", "Page"), None).await.unwrap();
        let wrong_entity = store.update_record(other.id, created.id, 2, &valid_record("Nope", None), None, None).await;
        assert!(matches!(wrong_entity, Err(StoreError::NotFound)), "got {wrong_entity:?}");

        let deleted =
            store.trash_record(entity.id, created.id, Some(2), None).await.expect("delete at the current version");
        assert_eq!((deleted.id, deleted.lock_version, deleted.deleted_at.is_some()), (current.id, 2, true));
        assert_eq!(store.find_record(entity.id, created.id).await.unwrap(), None);
        let missing_update = store.update_record(entity.id, created.id, 2, &valid_record("Gone", None), None, None).await;
        assert!(matches!(missing_update, Err(StoreError::NotFound)), "got {missing_update:?}");
        let missing_delete = store.trash_record(entity.id, created.id, None, None).await;
        assert!(matches!(missing_delete, Err(StoreError::NotFound)), "got {missing_delete:?}");
    }

    /// A deleted record goes to the trash: no live query finds it (list, id, slug, update), the trash lists it with
    /// who deleted it and when, its slug stays taken, and a restore brings back the same id, slug, `lock_version`
    /// and data; only a record in the trash can be restored.
    async fn a_deleted_record_waits_in_the_trash_and_comes_back_as_it_was(store: Store) {
        let editor = store.create_user(&new_user("edda@example.com", Role::Editor)).await.unwrap();
        let entity = store.insert_entity(&valid_entity("article", "Article"), None).await.unwrap();
        let kept = store.insert_record(entity.id, &valid_record("Kept", None), None).await.unwrap();
        let created = store.insert_record(entity.id, &valid_record("Venue notes", Some("venue")), None).await.unwrap();
        let current =
            store.update_record(entity.id, created.id, 1, &valid_record("Venue notes", None), None, None).await.unwrap();

        let trashed = store.trash_record(entity.id, created.id, None, Some(editor.id)).await.unwrap();
        assert_eq!(trashed.deleted_by, Some(editor.id));
        assert!(trashed.deleted_at.is_some_and(|at| at <= now_ms()));
        assert_eq!(store.find_record(entity.id, created.id).await.unwrap(), None);
        assert_eq!(store.find_record_by_id(created.id).await.unwrap(), None);
        assert_eq!(store.find_record_by_slug(entity.id, "venue").await.unwrap(), None);
        let live: Vec<i64> = store.list_records(entity.id).await.unwrap().iter().map(|record| record.id).collect();
        assert_eq!(live, vec![kept.id], "the list holds only live records");
        let update = store.update_record(entity.id, created.id, 2, &valid_record("Edited", None), None, None).await;
        assert!(matches!(update, Err(StoreError::NotFound)), "a trashed record is not updated: {update:?}");
        let taken = store.insert_record(entity.id, &valid_record("Other", Some("venue")), None).await;
        assert!(matches!(taken, Err(StoreError::Taken("slug"))), "the slug stays with the trashed record: {taken:?}");
        let generated = store.insert_record(entity.id, &valid_record("Venue", None), None).await.unwrap();
        assert_eq!(generated.slug, "venue-2", "a generated slug steps around the trashed one");

        let trash = store.list_trash(entity.id).await.unwrap();
        assert_eq!(trash, vec![trashed.clone()]);
        assert_eq!(store.find_trashed_record(entity.id, created.id).await.unwrap(), Some(trashed));

        let restored = store.restore_record(entity.id, created.id).await.unwrap();
        assert_eq!(restored, current, "id, slug, lock_version and data as before the delete");
        assert_eq!(store.find_record_by_slug(entity.id, "venue").await.unwrap(), Some(current.clone()));
        assert!(store.list_trash(entity.id).await.unwrap().is_empty());
        let again = store.restore_record(entity.id, created.id).await;
        assert!(matches!(again, Err(StoreError::NotFound)), "only a trashed record is restored: {again:?}");
        let live_one = store.restore_record(entity.id, kept.id).await;
        assert!(matches!(live_one, Err(StoreError::NotFound)), "{live_one:?}");
        // Saves continue from the restored version.
        store.update_record(entity.id, created.id, 2, &valid_record("After", None), None, None).await.unwrap();
    }

    /// A purge removes a record for good, from the trash or live (a live one fenced by its version); the sweep
    /// purges only what has been in the trash since before its cutoff.
    async fn purges_remove_for_good_and_the_sweep_respects_its_cutoff(store: Store) {
        let entity = store.insert_entity(&valid_entity("article", "Article"), None).await.unwrap();
        let old = store.insert_record(entity.id, &valid_record("Old", None), None).await.unwrap();
        let young = store.insert_record(entity.id, &valid_record("Young", None), None).await.unwrap();
        let live = store.insert_record(entity.id, &valid_record("Live", None), None).await.unwrap();
        store.trash_record(entity.id, old.id, None, None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let cutoff = now_ms();
        tokio::time::sleep(Duration::from_millis(20)).await;
        store.trash_record(entity.id, young.id, None, None).await.unwrap();

        assert_eq!(store.purge_trash_before(cutoff).await.unwrap(), 1, "only the record trashed before the cutoff");
        let trash: Vec<i64> = store.list_trash(entity.id).await.unwrap().iter().map(|record| record.id).collect();
        assert_eq!(trash, vec![young.id]);
        assert!(matches!(store.restore_record(entity.id, old.id).await, Err(StoreError::NotFound)), "purged");

        let stale = store.purge_record(entity.id, live.id, Some(7)).await;
        assert_eq!(record_conflict(stale), live, "a live record is purged only at its version");
        store.purge_record(entity.id, live.id, Some(1)).await.expect("purge a live record");
        store.purge_record(entity.id, young.id, Some(99)).await.expect("a trashed record is purged whatever version");
        assert_eq!(store.list_records(entity.id).await.unwrap(), vec![]);
        assert!(store.list_trash(entity.id).await.unwrap().is_empty());
        let gone = store.purge_record(entity.id, young.id, None).await;
        assert!(matches!(gone, Err(StoreError::NotFound)), "{gone:?}");
    }

    /// Users are created with a lowercase email, found by email in any case, unique by email, listed oldest first
    /// and counted by role.
    async fn users_are_created_found_listed_and_counted(store: Store) {
        let alice = store.create_user(&new_user("Alice@Example.COM", Role::Admin)).await.expect("create alice");
        assert_eq!(alice.email, "alice@example.com");
        assert_eq!(alice.role, Role::Admin);
        assert_eq!(alice.password_hash, "$argon2id$not-a-real-hash");
        let bob = store.create_user(&new_user("bob@example.com", Role::Editor)).await.unwrap();
        let carol = store.create_user(&new_user("carol@example.com", Role::Editor)).await.unwrap();

        assert_eq!(store.find_user_by_email("alice@example.com").await.unwrap(), Some(alice.clone()));
        assert_eq!(store.find_user_by_email("  ALICE@example.Com ").await.unwrap(), Some(alice.clone()));
        assert_eq!(store.find_user_by_email("nobody@example.com").await.unwrap(), None);
        assert_eq!(store.find_user(bob.id).await.unwrap(), Some(bob.clone()));

        let duplicate = store.create_user(&new_user("ALICE@example.com", Role::Viewer)).await;
        assert!(matches!(duplicate, Err(StoreError::Taken("email"))), "got {duplicate:?}");

        let emails: Vec<String> = store.list_users().await.unwrap().into_iter().map(|user| user.email).collect();
        assert_eq!(emails, ["alice@example.com", "bob@example.com", "carol@example.com"]);
        assert_eq!(store.count_users_with_role(Role::Admin).await.unwrap(), 1);
        assert_eq!(store.count_users_with_role(Role::Editor).await.unwrap(), 2);
        assert_eq!(store.count_users_with_role(Role::Viewer).await.unwrap(), 0);

        let promoted = store.update_user(carol.id, "Carol", "$argon2id$other", Role::Admin).await.unwrap();
        assert_eq!((promoted.name.as_str(), promoted.role), ("Carol", Role::Admin));
        assert_eq!(store.count_users_with_role(Role::Admin).await.unwrap(), 2);
    }

    /// A session is found by its id hash until it is deleted; an expired session is never found and is swept.
    async fn sessions_are_created_found_deleted_and_expire(store: Store) {
        let user = store.create_user(&new_user("dave@example.com", Role::Viewer)).await.unwrap();
        let live = Session {
            id_hash: "a".repeat(64),
            user_id: user.id,
            csrf_token: "csrf-live".to_owned(),
            expires_at: now_ms() + 60_000,
            token_generation: user.token_generation,
        };
        let expired = Session {
            id_hash: "b".repeat(64),
            user_id: user.id,
            csrf_token: "csrf-old".to_owned(),
            expires_at: now_ms() - 1,
            token_generation: user.token_generation,
        };
        store.create_session(&live).await.expect("create live session");
        store.create_session(&expired).await.expect("create expired session");

        assert_eq!(store.find_session(&live.id_hash).await.unwrap(), Some(live.clone()));
        assert_eq!(store.find_session(&expired.id_hash).await.unwrap(), None, "expired sessions are not found");
        assert_eq!(store.find_session(&"c".repeat(64)).await.unwrap(), None);

        assert_eq!(store.delete_expired_sessions().await.unwrap(), 1, "only the expired one is swept");
        assert_eq!(store.find_session(&live.id_hash).await.unwrap(), Some(live.clone()));

        store.delete_session(&live.id_hash).await.unwrap();
        assert_eq!(store.find_session(&live.id_hash).await.unwrap(), None, "a deleted session is gone");
    }

    /// The last active admin can be neither demoted, deactivated nor deleted; with two admins, two demotions racing
    /// each other leave one admin (one of them is refused), and nothing of a refused change is written.
    async fn the_last_admin_stays_an_admin_even_when_two_demotions_race(store: Store) {
        let ann = store.create_user(&new_user("ann@example.com", Role::Admin)).await.unwrap();
        let demote = UserChange::Update { name: None, password_hash: None, role: Some(Role::Editor) };
        for change in [demote, UserChange::SetActive(false), UserChange::Delete] {
            let refused = store.change_user(ann.id, change).await;
            assert!(matches!(refused, Err(StoreError::LastAdmin)), "{change:?}: {refused:?}");
        }
        let unchanged = store.find_user(ann.id).await.unwrap().unwrap();
        assert_eq!((unchanged.role, unchanged.active(), unchanged.token_generation), (Role::Admin, true, 0));

        for round in 0..10 {
            let bob = store.create_user(&new_user(&format!("bob{round}@example.com"), Role::Admin)).await.unwrap();
            let (first, second) = tokio::join!(store.change_user(ann.id, demote), store.change_user(bob.id, demote));
            let refused = [&first, &second].iter().filter(|result| matches!(result, Err(StoreError::LastAdmin))).count();
            assert_eq!(refused, 1, "round {round}: exactly one demotion refused: {first:?} / {second:?}");
            assert_eq!(store.count_users_with_role(Role::Admin).await.unwrap(), 1, "round {round}");
            // Back to the start: Ann the only admin.
            let promote = UserChange::Update { name: None, password_hash: None, role: Some(Role::Admin) };
            store.change_user(ann.id, promote).await.unwrap();
            store.change_user(bob.id, UserChange::Delete).await.unwrap();
        }
    }

    /// Deactivating revokes (sessions gone, token generation moved) and the audit entry of a change is written with
    /// it; reactivating revokes nothing more.
    async fn deactivation_revokes_and_changes_are_audited_with_them(store: Store) {
        store.create_user(&new_user("root@example.com", Role::Admin)).await.unwrap();
        let eve = store.create_user(&new_user("eve@example.com", Role::Editor)).await.unwrap();
        let session = Session {
            id_hash: "e".repeat(64),
            user_id: eve.id,
            csrf_token: "csrf".to_owned(),
            expires_at: now_ms() + 60_000,
            token_generation: eve.token_generation,
        };
        store.create_session_from(&session, "Firefox", "192.0.2.1").await.unwrap();
        let listed = store.sessions_of(eve.id).await.unwrap();
        assert_eq!((listed.len(), listed[0].user_agent.as_str(), listed[0].address.as_str()), (1, "Firefox", "192.0.2.1"));

        let audit = NewAuditEntry {
            actor: Some((1, "Root".to_owned())),
            action: AuditAction::Deactivated,
            subject_id: None,
            subject_email: eve.email.clone(),
            detail: Map::new(),
        };
        let changed = store.change_user_audited(eve.id, UserChange::SetActive(false), Some(audit)).await.unwrap();
        let off = changed.user.unwrap();
        assert!(changed.revoked && !off.active());
        assert_eq!(off.token_generation, eve.token_generation + 1);
        assert_eq!(store.find_session(&session.id_hash).await.unwrap(), None);
        assert!(store.sessions_of(eve.id).await.unwrap().is_empty());
        let trail = store.audit_trail(None, 10).await.unwrap();
        assert_eq!((trail[0].action.as_str(), trail[0].subject_id, trail[0].actor_name.as_str()), ("deactivated", Some(eve.id), "Root"));

        let on = store.change_user(eve.id, UserChange::SetActive(true)).await.unwrap();
        assert!(!on.revoked && on.user.as_ref().unwrap().active());
        assert_eq!(on.user.unwrap().token_generation, off.token_generation, "reactivating gives nothing back");

        // A refused change writes no audit entry.
        let refused_audit = NewAuditEntry { action: AuditAction::RoleChanged, ..trail_entry(&eve.email) };
        let root = store.find_user_by_email("root@example.com").await.unwrap().unwrap();
        let demote = UserChange::Update { name: None, password_hash: None, role: Some(Role::Viewer) };
        assert!(matches!(store.change_user_audited(root.id, demote, Some(refused_audit)).await, Err(StoreError::LastAdmin)));
        assert_eq!(store.audit_trail(None, 10).await.unwrap().len(), 1);
        assert_eq!(store.audit_trail(Some(trail[0].id), 10).await.unwrap().len(), 0, "paged by id");
    }

    /// An invitation link works once, creates the account with its role, and is refused when used twice, revoked,
    /// replaced or late; two uses racing each other make one account.
    async fn invitation_links_work_once_and_until_they_expire(store: Store) {
        let admin = store.create_user(&new_user("root@example.com", Role::Admin)).await.unwrap();
        let invite = |email: &str, hash: &str, expires_at: i64| NewLink {
            kind: LinkKind::Invitation,
            email: email.to_owned(),
            name: "Nia".to_owned(),
            role: Role::Editor,
            user_id: None,
            token_hash: hash.to_owned(),
            expires_at,
        };
        let audit = trail_entry("nia@example.com");
        let link = store.create_link(&invite("Nia@Example.com", &"1".repeat(64), now_ms() + 60_000), Some(admin.id), &audit).await.unwrap();
        assert_eq!((link.email.as_str(), link.kind, link.role), ("nia@example.com", LinkKind::Invitation, Role::Editor));
        assert_eq!(store.pending_invitations().await.unwrap().len(), 1);

        let token = "1".repeat(64);
        let (first, second) = tokio::join!(store.use_link(&token, "$argon2id$nia"), store.use_link(&token, "$argon2id$nia2"));
        let first_won = first.is_ok();
        let (won, lost) = if first_won { (first, second) } else { (second, first) };
        let nia = won.expect("one use wins");
        // Either use may win the race; the account has the winner's password.
        let expected_hash = if first_won { "$argon2id$nia" } else { "$argon2id$nia2" };
        assert_eq!((nia.email.as_str(), nia.role, nia.password_hash.as_str()), ("nia@example.com", Role::Editor, expected_hash));

        assert!(matches!(lost, Err(LinkError::Used)), "{lost:?}");
        assert!(store.pending_invitations().await.unwrap().is_empty());
        assert!(matches!(store.use_link(&"0".repeat(64), "x").await, Err(LinkError::Unknown)));

        // Late, replaced, revoked.
        store.create_link(&invite("late@example.com", &"2".repeat(64), now_ms() - 1), None, &audit).await.unwrap();
        assert!(matches!(store.use_link(&"2".repeat(64), "x").await, Err(LinkError::Expired)));
        store.create_link(&invite("twice@example.com", &"3".repeat(64), now_ms() + 60_000), None, &audit).await.unwrap();
        let again = store.create_link(&invite("twice@example.com", &"4".repeat(64), now_ms() + 60_000), None, &audit).await.unwrap();
        assert!(matches!(store.use_link(&"3".repeat(64), "x").await, Err(LinkError::Revoked)), "a re-sent invitation replaces the first");
        assert!(store.revoke_link(again.id, &audit).await.unwrap().is_some());
        assert!(store.revoke_link(again.id, &audit).await.unwrap().is_none(), "nothing left to revoke");
        assert!(matches!(store.use_link(&"4".repeat(64), "x").await, Err(LinkError::Revoked)));
        // An invitation to an address that has an account by now is refused, and stays unused.
        store.create_link(&invite("root@example.com", &"5".repeat(64), now_ms() + 60_000), None, &audit).await.unwrap();
        assert!(matches!(store.use_link(&"5".repeat(64), "x").await, Err(LinkError::AccountExists)));
        assert_eq!(store.find_link(&"5".repeat(64)).await.unwrap().unwrap().used_at, None);
    }

    /// A reset link sets the password and revokes the account's sessions and tokens, once.
    async fn reset_links_set_the_password_and_revoke(store: Store) {
        let ann = store.create_user(&new_user("ann@example.com", Role::Editor)).await.unwrap();
        let reset = NewLink {
            kind: LinkKind::Reset,
            email: ann.email.clone(),
            name: ann.name.clone(),
            role: ann.role,
            user_id: Some(ann.id),
            token_hash: "6".repeat(64),
            expires_at: now_ms() + 60_000,
        };
        store.create_link(&reset, None, &trail_entry(&ann.email)).await.unwrap();
        let changed = store.use_link(&"6".repeat(64), "$argon2id$new").await.unwrap();
        assert_eq!((changed.id, changed.password_hash.as_str()), (ann.id, "$argon2id$new"));
        assert_eq!(changed.token_generation, ann.token_generation + 1, "old tokens end");
        assert!(matches!(store.use_link(&"6".repeat(64), "$argon2id$again").await, Err(LinkError::Used)));
    }

    /// API tokens are listed per user and revoked one by one, only by their owner.
    async fn api_tokens_are_listed_and_revoked_one_by_one(store: Store) {
        let ann = store.create_user(&new_user("ann@example.com", Role::Editor)).await.unwrap();
        let bob = store.create_user(&new_user("bob@example.com", Role::Editor)).await.unwrap();
        let deploy = store.create_api_token(ann.id, "deploy script", now_ms() + 60_000).await.unwrap();
        let laptop = store.create_api_token(ann.id, "  ", now_ms() + 60_000).await.unwrap();
        assert_eq!(laptop.name, "sign-in");
        assert!(store.use_api_token(deploy.id, ann.id).await.unwrap());
        assert!(!store.use_api_token(deploy.id, bob.id).await.unwrap(), "another user's id does not match");
        assert!(!store.revoke_api_token(deploy.id, bob.id).await.unwrap(), "only the owner revokes");
        assert!(store.revoke_api_token(deploy.id, ann.id).await.unwrap());
        assert!(!store.use_api_token(deploy.id, ann.id).await.unwrap(), "revoked");
        assert!(store.use_api_token(laptop.id, ann.id).await.unwrap(), "the other token still works");
        let listed = store.api_tokens_of(ann.id).await.unwrap();
        assert_eq!(listed.iter().map(|token| (token.name.as_str(), token.revoked_at.is_some())).collect::<Vec<_>>(), [("sign-in", false), ("deploy script", true)]);
        assert!(listed[1].last_used_at.is_some());
    }
}

fn trail_entry(email: &str) -> NewAuditEntry {
    NewAuditEntry {
        actor: None,
        action: AuditAction::Invited,
        subject_id: None,
        subject_email: email.to_owned(),
        detail: Map::new(),
    }
}
