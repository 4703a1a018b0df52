//! Session statistics for a live dashboard: who is connected to the site, one entry per open page.
//!
//! Each page is a presence entry on the statistics' topic ([`DEFAULT_SESSIONS_TOPIC`] unless the application names
//! its own, [`crate::EngineConfig::sessions_topic`]): key `user:<id>` for a signed-in user (a user's two tabs are two
//! metas of one key: two sessions, one unique user) and `anonymous:<session id>` for a visitor. An entry leaves with
//! its page; nothing expires while the page is alive (PhoenixKit dropped live sessions after an hour).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::presence::{Meta, Presence, PresenceError, PresenceObserver, PresenceState, RosterChange, TrackGuard};
use crate::pubsub::Subscription;

/// The presence topic of the open pages, unless the application names another.
pub const DEFAULT_SESSIONS_TOPIC: &str = "sessions";

/// Most pages listed in [`PresenceStats::top_pages`].
pub const TOP_PAGES: usize = 10;

/// A signed-in user, as the statistics know them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionUser {
    /// The user's id.
    pub id: String,
    /// The user's email.
    pub email: String,
}

/// The dashboard's numbers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceStats {
    /// Open pages.
    pub total_sessions: usize,
    /// Open pages of visitors who are not signed in.
    pub anonymous_sessions: usize,
    /// Open pages of signed-in users.
    pub authenticated_sessions: usize,
    /// Distinct anonymous visitors (by session id).
    pub unique_anonymous_visitors: usize,
    /// Distinct signed-in users.
    pub unique_users: usize,
    /// The most visited pages with their open-page counts, most first (ties by path), at most [`TOP_PAGES`].
    pub top_pages: Vec<(String, usize)>,
    /// When the numbers last changed, ms since the Unix epoch (0 before any change).
    pub last_updated: u64,
}

/// One open page, for the dashboard's list of active sessions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActiveSession {
    /// `user:<id>` or `anonymous:<session id>`.
    pub key: String,
    /// What the page reported: `type`, `user_id`/`session_id`, `current_page`, `connected_at`, ….
    pub meta: Meta,
}

/// Session statistics over a [`Presence`] tracker. Cheap to clone.
#[derive(Clone)]
pub struct SessionStats {
    presence: Presence,
    topic: Arc<str>,
    last_updated: Arc<LastUpdated>,
}

/// Records when the sessions topic last changed; an atomic because the observer runs under the tracker's lock and
/// readers must not take it.
struct LastUpdated {
    topic: Arc<str>,
    at: AtomicU64,
}

impl PresenceObserver for LastUpdated {
    fn watches(&self, topic: &str) -> bool {
        topic == &*self.topic
    }

    fn on_change(&self, _topic: &str, _roster: &PresenceState, _change: &RosterChange) {
        self.at.store(now_ms(), Ordering::Relaxed);
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64)
}

impl SessionStats {
    /// Statistics kept on `presence`, on the presence topic `topic`.
    pub fn new(presence: Presence, topic: impl Into<Arc<str>>) -> Self {
        let topic = topic.into();
        let last_updated = Arc::new(LastUpdated { topic: topic.clone(), at: AtomicU64::new(0) });
        presence.observe(last_updated.clone());
        SessionStats { presence, topic, last_updated }
    }

    /// The presence topic of the open pages (a page subscribes to it to hear every change).
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Counts an anonymous visitor's page while the guard lives. `meta` may carry `current_page`, `ip_address`,
    /// `user_agent`.
    ///
    /// # Errors
    /// [`PresenceError`] if the presence backend is unavailable.
    pub async fn track_anonymous(&self, session_id: &str, mut meta: Meta) -> Result<TrackGuard, PresenceError> {
        meta.insert("type".into(), json!("anonymous"));
        meta.insert("session_id".into(), json!(session_id));
        if !meta.contains_key("connected_at") {
            meta.insert("connected_at".into(), json!(now_ms()));
        }
        self.presence.track(&self.topic, &format!("anonymous:{session_id}"), meta).await
    }

    /// Counts a signed-in user's page while the guard lives.
    ///
    /// # Errors
    /// [`PresenceError`] if the presence backend is unavailable.
    pub async fn track_user(&self, user: &SessionUser, mut meta: Meta) -> Result<TrackGuard, PresenceError> {
        meta.insert("type".into(), json!("authenticated"));
        meta.insert("user_id".into(), json!(user.id));
        meta.insert("user_email".into(), json!(user.email));
        if !meta.contains_key("connected_at") {
            meta.insert("connected_at".into(), json!(now_ms()));
        }
        self.presence.track(&self.topic, &format!("user:{}", user.id), meta).await
    }

    /// The current numbers.
    pub fn presence_stats(&self) -> PresenceStats {
        let sessions = self.presence.sorted(&self.topic);
        let mut stats = PresenceStats {
            total_sessions: sessions.len(),
            anonymous_sessions: 0,
            authenticated_sessions: 0,
            unique_anonymous_visitors: 0,
            unique_users: 0,
            top_pages: Vec::new(),
            last_updated: self.last_updated.at.load(Ordering::Relaxed),
        };
        let mut anonymous = HashSet::new();
        let mut users = HashSet::new();
        let mut pages: HashMap<&str, usize> = HashMap::new();
        for (key, meta) in &sessions {
            if meta.get_str("type") == Some("authenticated") {
                stats.authenticated_sessions += 1;
                users.insert(key.clone());
            } else {
                stats.anonymous_sessions += 1;
                anonymous.insert(key.clone());
            }
            if let Some(page) = meta.get_str("current_page") {
                *pages.entry(page).or_default() += 1;
            }
        }
        stats.unique_anonymous_visitors = anonymous.len();
        stats.unique_users = users.len();
        let mut top: Vec<(String, usize)> = pages.into_iter().map(|(page, count)| (page.to_owned(), count)).collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(TOP_PAGES);
        stats.top_pages = top;
        stats
    }

    /// Every open page, most recently connected first.
    pub fn list_active_sessions(&self) -> Vec<ActiveSession> {
        let mut sessions: Vec<ActiveSession> = self
            .presence
            .sorted(&self.topic)
            .into_iter()
            .map(|(key, meta)| ActiveSession { key: key.to_string(), meta: (*meta.fields).clone() })
            .collect();
        let connected_at = |session: &ActiveSession| session.meta.get("connected_at").and_then(|at| at.as_u64());
        sessions.sort_by_key(|session| std::cmp::Reverse(connected_at(session)));
        sessions
    }

    /// Presence diffs of the sessions topic: each one means the numbers changed.
    pub fn subscribe(&self) -> Subscription {
        self.presence.subscribe(&self.topic)
    }
}
