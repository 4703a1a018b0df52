//! A collaborative editor over the application's own type: notes with UUID ids, in SQLite through sqlx.
//!
//! `cargo run -p livebaton-web --example notes`, then open <http://127.0.0.1:4000> in two browsers (or one and a
//! private window), pick two names and open the same note. The first in line owns the form; the other watches it
//! read-only and sees every change as it is typed. Close the owner's window: the other is promoted at once, with the
//! unsaved text. Saves are fenced and merged per field, so nothing is overwritten silently.
//!
//! What the application writes: its row and form values ([`Note`], [`NoteValues`]), how a page finds its note and
//! renders the inputs ([`FormView`]), validation and one compare-and-set `UPDATE` ([`MergedSave`]). The form, the
//! editing bar, drafts, promotion, conflicts and recovery are `livebaton_web::collab`'s.

mod common;

use std::collections::BTreeMap;

use livebaton::Engine;
use livebaton::editing::merge::SaveRequest;
use livebaton::editing::{EditTarget, Editing, OwnerToken};
use livebaton_web::app::{LiveApp, LiveHandle};
use livebaton_web::channel::BoxFuture;
use livebaton_web::collab::{
    Author, CollabView, Editable, FormView, MergedSave, Mounted, SaveOutcome, VersionedRow, save_merged,
};
use livebaton_web::live::{Html, MountError, Session};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sqlx::SqlitePool;

/// A stored note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// A UUID.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its text.
    pub body: String,
    /// Bumped by every save; a save commits only over the version it merged with.
    pub lock_version: i64,
}

impl VersionedRow for Note {
    fn lock_version(&self) -> i64 {
        self.lock_version
    }

    fn values(&self) -> Value {
        json!({"title": self.title, "body": self.body})
    }
}

/// A note's form values: what the form submits, what drafts carry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteValues {
    /// The title.
    pub title: String,
    /// The text.
    pub body: String,
}

/// Errors by field name.
pub type FieldErrors = BTreeMap<&'static str, String>;

/// The longest title and text a note may have (characters).
const MAX_TITLE: usize = 120;
const MAX_BODY: usize = 10_000;

/// The notes of one database: the editing form's part of the application.
pub struct NoteForm {
    pool: SqlitePool,
}

/// Creates the table (and a first note to edit, when there is none).
pub async fn prepare(pool: &SqlitePool) -> sqlx::Result<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS notes (id TEXT PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL, \
         lock_version INTEGER NOT NULL)",
    )
    .execute(pool)
    .await?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM notes").fetch_one(pool).await?;
    if count == 0 {
        create(pool, "Welcome", "Open this note in two browsers and type in one of them.").await?;
    }
    Ok(())
}

/// Adds a note; its id.
pub async fn create(pool: &SqlitePool, title: &str, body: &str) -> sqlx::Result<String> {
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query("INSERT INTO notes (id, title, body, lock_version) VALUES (?, ?, ?, 1)")
        .bind(&id)
        .bind(title)
        .bind(body)
        .execute(pool)
        .await?;
    Ok(id)
}

/// The note `id`, if there is one.
pub async fn find(pool: &SqlitePool, id: &str) -> sqlx::Result<Option<Note>> {
    let row: Option<(String, String, String, i64)> =
        sqlx::query_as("SELECT id, title, body, lock_version FROM notes WHERE id = ?")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(id, title, body, lock_version)| Note { id, title, body, lock_version }))
}

impl Editable for NoteForm {
    type Row = Note;
    type Values = NoteValues;
    type Errors = FieldErrors;

    fn values_of(row: &Note) -> NoteValues {
        NoteValues { title: row.title.clone(), body: row.body.clone() }
    }

    fn normalized(&self, values: &NoteValues) -> Option<Value> {
        serde_json::to_value(self.validate(values).ok()?).ok()
    }

    fn reload<'a>(&'a self, row: &'a Note) -> BoxFuture<'a, Option<Note>> {
        Box::pin(async move { find(&self.pool, &row.id).await.ok().flatten() })
    }

    fn save<'a>(
        &'a self,
        editing: &'a Editing,
        row: &'a Note,
        save: SaveRequest<'a, NoteValues>,
        token: &'a OwnerToken,
        by: &'a Author,
    ) -> BoxFuture<'a, SaveOutcome<Note, FieldErrors>> {
        Box::pin(save_merged(self, editing, row, save, token, by))
    }

    fn field_label(&self, name: &str) -> String {
        match name {
            "title" => "Title".to_owned(),
            "body" => "Text".to_owned(),
            other => other.to_owned(),
        }
    }

    fn noun(&self) -> &'static str {
        "note"
    }

    fn list_path(&self) -> String {
        "/".to_owned()
    }
}

impl MergedSave for NoteForm {
    fn validate(&self, values: &NoteValues) -> Result<NoteValues, FieldErrors> {
        let title = values.title.trim().to_owned();
        let mut errors = FieldErrors::new();
        if title.is_empty() {
            errors.insert("title", "A note needs a title.".to_owned());
        } else if title.chars().count() > MAX_TITLE {
            errors.insert("title", format!("At most {MAX_TITLE} characters."));
        }
        if values.body.chars().count() > MAX_BODY {
            errors.insert("body", format!("At most {MAX_BODY} characters."));
        }
        if errors.is_empty() { Ok(NoteValues { title, body: values.body.clone() }) } else { Err(errors) }
    }

    fn commit<'a>(&'a self, row: &'a Note, values: &'a NoteValues) -> BoxFuture<'a, Result<Option<Note>, String>> {
        Box::pin(async move {
            let updated = sqlx::query(
                "UPDATE notes SET title = ?, body = ?, lock_version = lock_version + 1 WHERE id = ? AND lock_version = ?",
            )
            .bind(&values.title)
            .bind(&values.body)
            .bind(&row.id)
            .bind(row.lock_version)
            .execute(&self.pool)
            .await
            .map_err(|error| error.to_string())?;
            if updated.rows_affected() == 0 {
                return Ok(None);
            }
            find(&self.pool, &row.id).await.map_err(|error| error.to_string())
        })
    }
}

impl FormView for NoteForm {
    type Context = SqlitePool;

    fn mount<'a>(
        pool: &'a SqlitePool,
        params: &'a Map<String, Value>,
        _session: &'a Session,
    ) -> BoxFuture<'a, Result<Mounted<Self>, MountError>> {
        Box::pin(async move {
            let id = params.get("id").and_then(Value::as_str).ok_or(MountError::NotFound)?;
            let note = match find(pool, id).await {
                Ok(Some(note)) => note,
                Ok(None) => return Err(MountError::NotFound),
                Err(error) => return Err(MountError::Failed(error.to_string())),
            };
            // One editing session per note; everyone signed in may edit (an application checks its roles here).
            let target = EditTarget::new("note", note.id.as_str()).map_err(|_| MountError::NotFound)?;
            let title = format!("Note: {}", note.title);
            Ok(Mounted { editable: NoteForm { pool: pool.clone() }, row: note, target, can_edit: true, title })
        })
    }

    fn values_from_form(&self, form: &Value) -> NoteValues {
        let text = |name: &str| form.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
        NoteValues { title: text("title"), body: text("body") }
    }

    fn render_inputs(&self, values: &NoteValues, errors: &FieldErrors) -> Html {
        let error = |field: &str| match errors.get(field) {
            Some(message) => format!(r#"<p class="field-error" role="alert">{}</p>"#, Html::escape(message)),
            None => String::new(),
        };
        Html::new(format!(
            r#"<p><label for="note-title">Title</label><br><input id="note-title" name="title" maxlength="{MAX_TITLE}" value="{}">{}</p>
<p><label for="note-body">Text</label><br><textarea id="note-body" name="body" rows="12" cols="60">{}</textarea>{}</p>"#,
            Html::escape(&values.title),
            error("title"),
            Html::escape(&values.body),
            error("body"),
        ))
    }
}

/// `GET /`: every note, and a way to add one (a plain page: nothing here needs to be live).
async fn index(axum::extract::State(pool): axum::extract::State<SqlitePool>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let notes: Vec<(String, String)> =
        sqlx::query_as("SELECT id, title FROM notes ORDER BY title").fetch_all(&pool).await.unwrap_or_default();
    let items: String = notes
        .iter()
        .map(|(id, title)| format!(r#"<li><a href="/notes/{}">{}</a></li>"#, Html::escape(id), Html::escape(title)))
        .collect();
    axum::response::Html(format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Notes</title><link rel="stylesheet" href="{}"></head><body><h1>Notes</h1><ul>{items}</ul><p><a href="/new">New note</a></p></body></html>"#,
        livebaton_web::live::stylesheet_path()
    ))
    .into_response()
}

/// `GET /new`: adds a note and opens it.
async fn new_note(axum::extract::State(pool): axum::extract::State<SqlitePool>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match create(&pool, "Untitled", "").await {
        Ok(id) => axum::response::Redirect::to(&format!("/notes/{id}")).into_response(),
        Err(error) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response(),
    }
}

/// The application's routes: its own `/`, `/new` and `/join`, and the live note form at `/notes/{id}`.
pub fn app(engine: &Engine, pool: SqlitePool, secret: Vec<u8>) -> (axum::Router, LiveHandle) {
    let editing = engine.editing.clone();
    let context = pool.clone();
    let (live, handle) = LiveApp::new(engine, secret)
        .authenticate(common::authenticate)
        .sign_in("/join")
        .live("/notes/{id}", "note", move || CollabView::<NoteForm>::new(context.clone(), editing.clone()))
        .build();
    let routes = axum::Router::new()
        .route("/", axum::routing::get(index))
        .route("/new", axum::routing::get(new_note))
        .with_state(pool)
        .route("/join", axum::routing::get(common::join));
    (routes.merge(live), handle)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A file by default (`NOTES_DB=sqlite::memory:` for none); `mode=rwc` creates it.
    let url = std::env::var("NOTES_DB").unwrap_or_else(|_| "sqlite://notes.db?mode=rwc".to_owned());
    // Every connection to an in-memory database is a database of its own: one connection then.
    let connections = if url.contains(":memory:") { 1 } else { 4 };
    let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(connections).connect(&url).await?;
    prepare(&pool).await?;
    let engine = Engine::new(Default::default());
    let (app, handle) = app(&engine, pool, common::secret());
    common::serve("notes", app, handle).await?;
    Ok(())
}
