//! The store on a PostgreSQL reached as a managed one is: over TLS. A private server that accepts TLS connections
//! only (its `pg_hba.conf` has `hostssl` lines alone) and shows a certificate signed by a CA the test makes:
//! `sslmode=verify-full&sslrootcert=<ca>` opens the store and checks the certificate and host name, `sslmode=require`
//! encrypts without checking, and a certificate from another CA (or one the system's roots do not know) is refused
//! with an error about the certificate, in seconds.
//!
//! Each test starts its own server from the PostgreSQL binaries in `/usr/lib/postgresql/*/bin` (as the `postgres`
//! user when run as root) and stops it at the end: without them these tests fail, they never skip.

#[path = "support/postgres_tls.rs"]
mod postgres_tls;
#[path = "../../livebaton/tests/support/tls.rs"]
mod tls;

use std::time::{Duration, Instant};

use livebaton_admin::accounts::Role;
use livebaton_admin::storage::{NewUser, Store, StoreError};

use crate::postgres_tls::TlsPostgres;

/// How long opening the store may take, refused or not.
const OPEN_WITHIN: Duration = Duration::from_secs(20);

async fn open(url: &str) -> Result<Store, StoreError> {
    let started = Instant::now();
    let result = tokio::time::timeout(OPEN_WITHIN, Store::connect(url))
        .await
        .unwrap_or_else(|_| panic!("opening the store did not finish within {OPEN_WITHIN:?}"));
    println!("opening took {:?}", started.elapsed());
    result
}

/// Whether the store's connection is encrypted, as the server sees it.
async fn encrypted(store: &Store) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .expect("pg_stat_ssl answers")
}

/// `sslmode=verify-full` with the private CA as `sslrootcert`: the store opens (migrations included) over TLS, by
/// address and by host name (both are in the certificate), and works.
#[tokio::test]
async fn verify_full_with_the_private_ca_opens_the_store_over_tls() {
    let server = TlsPostgres::start();
    let ca = server.certificates.ca.display().to_string();
    for host in ["127.0.0.1", "localhost"] {
        let url = server.url(host, &format!("sslmode=verify-full&sslrootcert={ca}"));
        let store = open(&url).await.unwrap_or_else(|error| panic!("{url}: {error}\n{}", server.log()));
        assert!(encrypted(&store).await, "{url}: the connection is encrypted");
        let email = format!("tls@{host}");
        // Any PHC-shaped string: the store does not check it, and hashing is not what this test is about.
        let user =
            NewUser { email: email.clone(), name: "TLS".into(), password_hash: "$x$y".into(), role: Role::Editor };
        store.create_user(&user).await.expect("a write over TLS");
        assert!(store.list_users().await.unwrap().iter().any(|user| user.email == email));
    }
}

/// `sslmode=require` encrypts without checking the certificate, as libpq does.
#[tokio::test]
async fn require_encrypts_without_a_root_certificate() {
    let server = TlsPostgres::start();
    let store = open(&server.url("127.0.0.1", "sslmode=require")).await.unwrap_or_else(|error| {
        panic!("{error}\n{}", server.log());
    });
    assert!(encrypted(&store).await);
}

/// A certificate that the given CA did not sign, or that the system's roots do not know, is refused before anything
/// is sent, with an error about the certificate.
#[tokio::test]
async fn an_untrusted_certificate_is_refused_with_verify_full() {
    let server = TlsPostgres::start();
    let other_ca = server.certificates.other_ca.display().to_string();
    for params in [format!("sslmode=verify-full&sslrootcert={other_ca}"), "sslmode=verify-full".to_owned()] {
        let error = open(&server.url("127.0.0.1", &params)).await.expect_err("refused");
        let message = error.to_string();
        println!("{message}");
        assert!(message.contains("certificate"), "{params}: {message}");
    }
}

/// The server itself refuses a plain connection, so the stores above were encrypted because they asked for it.
#[tokio::test]
async fn the_server_refuses_plain_connections() {
    let server = TlsPostgres::start();
    let error = open(&server.url("127.0.0.1", "sslmode=disable")).await.expect_err("refused");
    println!("{error}");
    assert!(error.to_string().contains("no encryption"), "{error}");
}
