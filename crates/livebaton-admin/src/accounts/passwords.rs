//! Password hashing (Argon2id) off the async runtime, with equal time for unknown accounts.

use std::sync::OnceLock;

/// Hashes a password as an Argon2id PHC string. Runs on the blocking pool: hashing takes tens of milliseconds and
/// must not stall the tasks that serve live pages.
pub async fn hash_password(password: &str) -> String {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || password_auth::generate_hash(password))
        .await
        .expect("password hashing does not panic")
}

/// Checks `password` against `hash`, or against a fixed dummy hash when there is no account, so an unknown email
/// takes as long as a wrong password and response times do not reveal which emails exist.
pub async fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let password = password.to_owned();
    let (hash, known) = match hash {
        Some(hash) => (hash.to_owned(), true),
        None => (dummy_hash().to_owned(), false),
    };
    let matches = tokio::task::spawn_blocking(move || password_auth::verify_password(password, &hash).is_ok())
        .await
        .unwrap_or(false);
    matches && known
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| password_auth::generate_hash("livebaton dummy password, never matches a real account"))
}

/// Hashes the dummy once at start-up, so the first unknown-email login is not faster than later ones.
pub async fn warm_up() {
    let _ = tokio::task::spawn_blocking(dummy_hash).await;
}

/// Minimum password length for accounts created through the CLI or at start-up.
pub const MIN_PASSWORD_LEN: usize = 8;
