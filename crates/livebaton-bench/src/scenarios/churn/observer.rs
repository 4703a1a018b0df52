//! The fresh client that joins the room at the end of `churn` and lists who is there.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;

use crate::client::Conn;
use crate::presence::PresenceView;
use crate::protocol::{Incoming, Protocol};
use crate::server::Server;

/// A bound on the observer's reading of the room.
const OBSERVER_BOUND: Duration = Duration::from_secs(30);

/// A fresh client's list of the room: the admin joins and reads until its list holds at least the stayers and
/// itself, then until nothing arrives for 500 ms (a big state is a `presence_state` and join-only diffs).
pub struct Observer {
    pub view: PresenceView,
}

/// Entries an observer lists that should not be there, and staying entries it does not list.
pub struct Observed {
    pub ghosts: usize,
    pub missing: usize,
}

impl Observer {
    /// The observer expects `stay` entries under `stay_key` and one under its own key.
    pub fn check(&self, stay_key: &str, stay: usize) -> Observed {
        let stayers = self.view.entries_of(stay_key);
        let others = self.view.entries() - stayers;
        Observed {
            ghosts: stayers.saturating_sub(stay) + others.saturating_sub(1),
            missing: stay.saturating_sub(stayers),
        }
    }
}

pub async fn observe(
    protocol: &Arc<dyn Protocol>,
    server: &Server,
    topic: &str,
    stay: usize,
) -> anyhow::Result<Observer> {
    let token = server.admin_token().await?;
    let mut conn = Conn::connect(protocol.clone(), &server.addr, &token).await.context("the observer connects")?;
    conn.join(topic, &json!({})).await.context("the observer joins")?;
    let mut view = PresenceView::default();
    let mut listed = false;
    let deadline = tokio::time::Instant::now() + OBSERVER_BOUND;
    while tokio::time::Instant::now() < deadline {
        let quiet = if view.entries() > stay { Duration::from_millis(500) } else { Duration::from_secs(2) };
        let received = match tokio::time::timeout(quiet, conn.recv()).await {
            Err(_) if listed => break,
            Err(_) => continue,
            Ok(received) => received.map_err(|ended| anyhow::anyhow!("the observer: {ended}"))?,
        };
        match protocol.decode(received.text.as_str()) {
            Incoming::Reply { ok: false, response, .. } => bail!("the observer's join was refused: {response}"),
            Incoming::PresenceState { payload, .. } => {
                view.sync_state(protocol.members(payload).context("a presence_state without members")?);
                listed = true;
            }
            Incoming::PresenceDiff { payload, .. } => {
                let (joins, leaves) = protocol.diff(payload).context("a presence_diff without joins")?;
                view.sync_diff(joins, leaves);
            }
            _ => {}
        }
    }
    anyhow::ensure!(listed, "the observer received no presence_state within {} s", OBSERVER_BOUND.as_secs());
    conn.close().await;
    Ok(Observer { view })
}
