//! One module per scenario, and what several of them share.

pub mod churn;
pub mod cross_node;
pub mod editing;
pub mod fanout;
pub mod form_sync;
pub mod handoff;
pub mod idle;
pub mod join_storm;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;

use crate::server::User;

/// Each user's bearer token (`POST /api/tokens`), in order. Four requests at a time: every sign-in costs the
/// server an Argon2 verification.
pub async fn tokens_for(addr: &str, users: &[User], bound: Duration) -> anyhow::Result<Vec<String>> {
    let requests = futures_util::stream::iter(users.iter().map(|user| async move {
        crate::http::create_token(addr, &user.email, &user.password)
            .await
            .with_context(|| format!("signing in as {}", user.email))
    }))
    .buffered(4)
    .collect::<Vec<_>>();
    tokio::time::timeout(bound, requests).await.context("signing the users in took too long")?.into_iter().collect()
}

/// A microsecond clock shared by every task of this process: publishers stamp messages with it and receivers
/// subtract, so a latency is one `Instant` minus another, in one process.
pub fn now_us() -> u64 {
    instant_us(Instant::now())
}

/// `at` on the [`now_us`] clock.
pub fn instant_us(at: Instant) -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(at.saturating_duration_since(epoch).as_micros()).unwrap_or(u64::MAX)
}
