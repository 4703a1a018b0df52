//! First-start setup: the admin account and demo content.

use livebaton_content::{EntityInput, RecordInput};
use serde_json::json;

use crate::accounts::{MIN_PASSWORD_LEN, Role, generate_password, hash_password, verify_password};
use crate::content::ContentService;
use crate::storage::{NewUser, Store, User, UserChange, UserChanged};

/// The email of the admin created when none exists and none is configured.
pub const DEFAULT_ADMIN_EMAIL: &str = "admin@livebaton.local";

/// What the first start did, for the log and the console.
#[derive(Debug, Default)]
pub struct Bootstrap {
    /// An admin created with a generated password: `(email, password)`, to print once.
    pub generated_admin: Option<(String, String)>,
    /// Whether demo content was seeded.
    pub seeded_demo: bool,
    /// The configured admin whose password or role this start changed: their sessions and tokens are revoked, and
    /// their sockets on other nodes must be closed (`live::announce_revocation`).
    pub revoked_admin: Option<i64>,
}

/// Creates or updates a user by email; see [`put_user`].
///
/// # Errors
/// If the password is too short or the database fails.
pub async fn upsert_user(
    store: &Store,
    email: &str,
    password: &str,
    role: Role,
    name: Option<&str>,
) -> anyhow::Result<User> {
    let changed = put_user(store, email, password, role, name).await?;
    changed.user.ok_or_else(|| anyhow::anyhow!("the user {email} was deleted meanwhile"))
}

/// Creates a user by email, or updates an existing one through [`Store::change_user`]: a new password or role revokes
/// their sessions and API tokens ([`UserChanged::revoked`]; closing their live sockets is the caller's part). The
/// same password keeps its stored hash, so restarting with the same `--admin-password` revokes nothing; without
/// `name` an existing user keeps theirs.
///
/// # Errors
/// If the password is too short or the database fails.
pub async fn put_user(
    store: &Store,
    email: &str,
    password: &str,
    role: Role,
    name: Option<&str>,
) -> anyhow::Result<UserChanged> {
    anyhow::ensure!(
        password.chars().count() >= MIN_PASSWORD_LEN,
        "password must be at least {MIN_PASSWORD_LEN} characters"
    );
    let email = email.trim().to_lowercase();
    anyhow::ensure!(email.contains('@') && !email.contains(char::is_whitespace), "{email:?} is not an email address");
    if let Some(existing) = store.find_user_by_email(&email).await? {
        let password_hash = match verify_password(password, Some(&existing.password_hash)).await {
            true => None,
            false => Some(hash_password(password).await),
        };
        let change = UserChange::Update { name, password_hash: password_hash.as_deref(), role: Some(role) };
        return Ok(store.change_user(existing.id, change).await?);
    }
    let name = name.map(str::to_owned).unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());
    let password_hash = hash_password(password).await;
    let user = store.create_user(&NewUser { email, name, password_hash, role }).await?;
    Ok(UserChanged { user: Some(user), revoked: false })
}

/// Makes sure an admin exists and, on an empty database, seeds demo content.
///
/// # Errors
/// If the database fails.
pub async fn bootstrap(content: &ContentService, admin: Option<(&str, &str)>, demo: bool) -> anyhow::Result<Bootstrap> {
    let store = content.store();
    // "Empty" means no content: accounts created with `livebaton user add` before the first start do not stop the
    // demo (use --no-demo for that).
    let empty = store.list_entities().await?.is_empty();
    let mut done = Bootstrap::default();
    let admin_user = match admin {
        Some((email, password)) => {
            let changed = put_user(store, email, password, Role::Admin, None).await?;
            done.revoked_admin = changed.user.as_ref().filter(|_| changed.revoked).map(|user| user.id);
            changed.user
        }
        None if store.count_users_with_role(Role::Admin).await? == 0 => {
            let password = generate_password();
            let user = upsert_user(store, DEFAULT_ADMIN_EMAIL, &password, Role::Admin, Some("Admin")).await?;
            done.generated_admin = Some((user.email.clone(), password));
            Some(user)
        }
        None => None,
    };
    if empty && demo {
        seed_demo(content, admin_user.map(|user| user.id)).await?;
        done.seeded_demo = true;
    }
    Ok(done)
}

/// The demo entity `article` and three records.
async fn seed_demo(content: &ContentService, created_by: Option<i64>) -> anyhow::Result<()> {
    let article = EntityInput {
        name: Some("article".into()),
        display_name: "Article".into(),
        display_name_plural: "Articles".into(),
        description: Some("News, guides and opinion pieces.".into()),
        icon: Some("document-text".into()),
        status: Some("published".into()),
        fields_definition: vec![
            json!({"type": "textarea", "key": "summary", "label": "Summary"}),
            json!({"type": "rich_text", "key": "body", "label": "Body"}),
            json!({"type": "select", "key": "category", "label": "Category", "options": ["news", "guide", "opinion"]}),
            json!({"type": "date", "key": "published_on", "label": "Published on"}),
            json!({"type": "boolean", "key": "featured", "label": "Featured"}),
        ],
        settings: None,
    };
    let entity = content.create_entity(&article, created_by).await.map_err(|error| anyhow::anyhow!("{error}"))?;
    let records = [
        (
            "Welcome to livebaton",
            "news",
            "2026-11-02",
            true,
            "<p>Open this record in two browsers and edit it in one.</p>",
        ),
        (
            "Passing the baton",
            "guide",
            "2026-11-09",
            false,
            "<p>The first editor in line owns the form; the others watch.</p>",
        ),
        (
            "Why drafts outlive their authors",
            "opinion",
            "2026-11-16",
            false,
            "<p>Nothing typed is lost when someone leaves.</p>",
        ),
    ];
    for (title, category, date, featured, body) in records {
        let mut data = serde_json::Map::new();
        data.insert("summary".into(), json!(format!("{title}: a demo article.")));
        data.insert("body".into(), json!(body));
        data.insert("category".into(), json!(category));
        data.insert("published_on".into(), json!(date));
        data.insert("featured".into(), json!(featured));
        let input = RecordInput { title: title.into(), data, ..RecordInput::default() };
        content.create_record(&entity, &input, created_by).await.map_err(|error| anyhow::anyhow!("{error}"))?;
    }
    Ok(())
}
