//! The views an application serves, by id, each with the `on_mount` hooks of the live session it belongs to.
//!
//! A view id is its route name: the `<view-id>` of the `lv:<view-id>` topic and the `view` of its token. Views are
//! built fresh for every mount by a factory, so no state leaks between pages.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::hooks::{Hook, run_hooks};
use super::socket::{LiveSocket, Navigation};
use super::view::{LiveView, MountError};

/// Builds a fresh view.
pub type Factory = Arc<dyn Fn() -> Box<dyn LiveView> + Send + Sync>;

/// A registered view.
#[derive(Clone)]
pub(crate) struct ViewEntry {
    factory: Factory,
    hooks: Arc<[Arc<dyn Hook>]>,
}

/// Views sharing `on_mount` hooks, like Phoenix's `live_session :admin, on_mount: [...]`.
#[derive(Default)]
pub struct LiveSession {
    hooks: Vec<Arc<dyn Hook>>,
    views: Vec<(String, Factory)>,
}

impl LiveSession {
    /// A session with no hooks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a hook, run (in order of addition) before every view of this session mounts.
    pub fn on_mount(mut self, hook: impl Hook) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// Adds the view `id`, built by `factory`.
    pub fn view<V: LiveView>(mut self, id: &str, factory: impl Fn() -> V + Send + Sync + 'static) -> Self {
        self.views.push((id.to_owned(), Arc::new(move || Box::new(factory()) as Box<dyn LiveView>)));
        self
    }
}

/// Every view, by id.
#[derive(Clone, Default)]
pub struct Registry {
    views: HashMap<String, ViewEntry>,
}

impl Registry {
    /// No views.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a view with no hooks.
    pub fn view<V: LiveView>(self, id: &str, factory: impl Fn() -> V + Send + Sync + 'static) -> Self {
        self.session(LiveSession::new().view(id, factory))
    }

    /// Adds every view of `session`, each running the session's hooks.
    pub fn session(mut self, session: LiveSession) -> Self {
        let hooks: Arc<[Arc<dyn Hook>]> = session.hooks.into();
        for (id, factory) in session.views {
            self.views.insert(id, ViewEntry { factory, hooks: hooks.clone() });
        }
        self
    }

    /// Whether `id` is registered.
    pub fn contains(&self, id: &str) -> bool {
        self.views.contains_key(id)
    }

    pub(crate) fn get(&self, id: &str) -> Option<&ViewEntry> {
        self.views.get(id)
    }
}

impl ViewEntry {
    /// Builds the view, runs the hooks then `mount`. A redirect asked for during mount halts it like a hook would:
    /// the page is not shown, the client goes elsewhere.
    pub(crate) async fn mount(
        &self,
        params: &Map<String, Value>,
        socket: &mut LiveSocket,
    ) -> Result<Box<dyn LiveView>, MountError> {
        let session = socket.session().clone();
        run_hooks(&self.hooks, params, &session, socket).await?;
        let mut view = (self.factory)();
        view.mount(params, &session, socket).await?;
        match socket.navigation.take() {
            Some(Navigation::Redirect(to) | Navigation::Navigate(to)) => Err(MountError::Redirect { to }),
            None => Ok(view),
        }
    }
}
