//! `on_mount` hooks: setup shared by many views (authentication, subscriptions, session tracking), run before each
//! view's own `mount` — PhoenixKit's `Hooks`. A hook halts the mount by returning an error, typically
//! [`MountError::Redirect`] to the sign-in page, so no view has to repeat the check.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::socket::{LiveSocket, Session};
use super::view::MountError;
use crate::channel::BoxFuture;

/// Runs before `mount` for every view registered with it.
pub trait Hook: Send + Sync + 'static {
    /// Checks or prepares the socket; an error halts the mount (the view's `mount` does not run).
    fn on_mount<'a>(
        &'a self,
        params: &'a Map<String, Value>,
        session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>>;
}

/// Halts unless the user's role is one of `roles`, redirecting to `to` with an error flash.
pub struct RequireRole {
    roles: Vec<String>,
    to: String,
}

impl RequireRole {
    /// Allows `roles`; everyone else is redirected to `to`.
    pub fn new(roles: &[&str], to: impl Into<String>) -> Self {
        RequireRole { roles: roles.iter().map(|role| (*role).to_owned()).collect(), to: to.into() }
    }
}

impl Hook for RequireRole {
    fn on_mount<'a>(
        &'a self,
        _params: &'a Map<String, Value>,
        session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>> {
        let allowed = self.roles.iter().any(|role| role == session.user.role());
        if !allowed {
            socket.put_flash("error", "You are not allowed to see that page.");
        }
        Box::pin(async move { if allowed { Ok(()) } else { Err(MountError::redirect(self.to.clone())) } })
    }
}

/// Subscribes every view of its live session to the same topics, so each hears their broadcasts in `handle_info`
/// (PhoenixKit's pattern: a hook that subscribes every page of a live session to, say, the current user's
/// notifications). Subscriptions last as long as the view; before the socket connects (the first HTTP render) it
/// does nothing.
pub struct Subscribe {
    topics: Vec<String>,
}

impl Subscribe {
    /// Subscribes to `topics`.
    pub fn new(topics: &[&str]) -> Self {
        Subscribe { topics: topics.iter().map(|topic| (*topic).to_owned()).collect() }
    }
}

impl Hook for Subscribe {
    fn on_mount<'a>(
        &'a self,
        _params: &'a Map<String, Value>,
        _session: &'a Session,
        socket: &'a mut LiveSocket,
    ) -> BoxFuture<'a, Result<(), MountError>> {
        for topic in &self.topics {
            socket.subscribe(topic);
        }
        Box::pin(async { Ok(()) })
    }
}

/// Runs `hooks` in order; the first error halts.
pub(crate) async fn run_hooks(
    hooks: &[Arc<dyn Hook>],
    params: &Map<String, Value>,
    session: &Session,
    socket: &mut LiveSocket,
) -> Result<(), MountError> {
    for hook in hooks {
        hook.on_mount(params, session, socket).await?;
    }
    Ok(())
}
