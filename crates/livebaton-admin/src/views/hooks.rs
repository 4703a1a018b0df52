//! The admin app's `on_mount` hooks: who may see a page, and counting every open page in the session statistics.

use std::time::SystemTime;

use livebaton::presence::Meta;
use livebaton::stats::{SessionStats, SessionUser};
use livebaton_web::channel::BoxFuture;
use livebaton_web::live::{Hook, LiveSocket, MountError, Session, ViewToken};
use serde_json::{Map, Value, json};

use super::view_secret;

/// The role name of a visitor who is not signed in (public pages only).
pub const VISITOR_ROLE: &str = "visitor";

/// The pseudo-view name visitor tokens are signed for; no page has it, so a visitor token never joins a view.
const VISITOR_TOKEN_VIEW: &str = "~visitor";

/// A signed token naming an anonymous visitor, embedded in public pages so their socket can connect without an
/// account. It is a view token for a view that does not exist, so it can never stand in for a page's token.
pub fn visitor_token(secret_key_base: &str, visitor_id: &str) -> String {
    let mut params = Map::new();
    params.insert("id".into(), json!(visitor_id));
    ViewToken::sign(&view_secret(secret_key_base), VISITOR_TOKEN_VIEW, &params, SystemTime::now())
}

/// The visitor id of a genuine, unexpired visitor token.
pub fn visitor_from_token(secret_key_base: &str, token: &str) -> Option<String> {
    let claims = ViewToken::verify(&view_secret(secret_key_base), token, SystemTime::now()).ok()?;
    if claims.view != VISITOR_TOKEN_VIEW {
        return None;
    }
    claims.params.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()).map(str::to_owned)
}

/// Halts the mount of an admin page for a visitor who is not signed in, sending them to the sign-in page.
pub struct RequireSignedIn;

impl Hook for RequireSignedIn {
    fn on_mount<'a>(
        &'a self,
        _params: &'a Map<String, Value>,
        session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>> {
        let signed_in = crate::accounts::Role::parse(session.user.role()).is_some();
        if !signed_in {
            socket.put_flash("error", "Sign in to see that page.");
        }
        Box::pin(async move { if signed_in { Ok(()) } else { Err(MountError::redirect("/admin/login")) } })
    }
}

/// Counts the page in the session statistics for as long as it is open (its socket owns the entry).
pub struct TrackSession {
    stats: SessionStats,
}

impl TrackSession {
    /// Tracks on `stats`.
    pub fn new(stats: SessionStats) -> Self {
        TrackSession { stats }
    }
}

impl Hook for TrackSession {
    fn on_mount<'a>(
        &'a self,
        params: &'a Map<String, Value>,
        session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>> {
        Box::pin(async move {
            if !socket.is_connected() {
                return Ok(());
            }
            let mut meta = Meta::new();
            let page = params.get("path").and_then(Value::as_str).unwrap_or("/");
            meta.insert("current_page".into(), json!(page));
            meta.insert("connected_at".into(), json!(now_ms()));
            meta.insert("name".into(), json!(session.user.name()));
            let tracked = if session.user.role() == VISITOR_ROLE {
                self.stats.track_anonymous(session.user.id(), meta).await
            } else {
                let user = SessionUser { id: session.user.id().to_owned(), email: session.user.email().to_owned() };
                self.stats.track_user(&user, meta).await
            };
            match tracked {
                Ok(guard) => socket.keep(guard),
                // Statistics are not worth refusing the page for.
                Err(error) => tracing::warn!(%error, "page not counted in the session statistics"),
            }
            Ok(())
        })
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64)
}
