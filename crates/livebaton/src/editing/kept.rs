//! Drafts kept after their session ended, so that leaving a form (a link, a closed tab, a restart) never loses what
//! was typed: the author finds them when they open the form again and chooses to restore or discard them.
//!
//! A live draft belongs to the editing session ([`super::DraftStore`]); when the session's last member leaves with an
//! unsaved draft, the session hands it to a [`KeptDraftStore`] under its author (the draft's
//! [`super::Draft::updated_by`]): one kept draft per target and user, the newest winning, for a retention period.
//! Stores are read lazily, one target and user at a time, when a form opens: a node never loads them all.
//!
//! The stores: [`MemoryKeptDrafts`] (in this process; what a single-node [`crate::Engine`] uses unless given another),
//! [`super::RedisKeptDrafts`] (every node of a cluster), and the application's own (in its database on a single node, so
//! they survive a restart).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::draft::Draft;
use super::target::EditTarget;
use crate::BoxFuture;

/// A draft kept after its session ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeptDraft {
    /// The form it belongs to.
    pub target: EditTarget,
    /// The draft as its session left it: values, base (row version and values, for the merge at save) and author.
    pub draft: Draft,
    /// When it was kept, ms since the Unix epoch; it expires [`KeptDraftLimits::retention`] later.
    pub kept_at: u64,
}

/// How long drafts are kept, and how many.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeptDraftLimits {
    /// How long a kept draft waits for its author (24 hours by default).
    pub retention: Duration,
    /// The most drafts kept in all: beyond it the oldest go first. The application bounds a draft's size (a form's
    /// content limit); with drafts of at most 20 KB the default 10,000 is at most about 200 MB.
    pub max_drafts: usize,
    /// The most drafts kept for one user, so one account cannot push everyone else's out (100 by default).
    pub max_per_user: usize,
}

impl Default for KeptDraftLimits {
    fn default() -> Self {
        KeptDraftLimits { retention: Duration::from_secs(24 * 3600), max_drafts: 10_000, max_per_user: 100 }
    }
}

impl KeptDraftLimits {
    /// [`KeptDraftLimits::retention`] in ms.
    pub fn retention_ms(&self) -> u64 {
        u64::try_from(self.retention.as_millis()).unwrap_or(u64::MAX)
    }
}

/// Why a kept-draft store failed.
#[derive(Debug, thiserror::Error)]
pub enum KeptDraftError {
    /// The store could not be reached or answered with an error (the cause is for the log, not for users).
    #[error("unsaved drafts cannot be reached right now")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl KeptDraftError {
    /// An [`KeptDraftError::Unavailable`] caused by `error`.
    pub fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        KeptDraftError::Unavailable(Box::new(error))
    }
}

/// Keeps drafts whose session ended. Implementations must be safe to call from several nodes at once with the same
/// draft (each node of a cluster sees the session end): keeping a draft that is not newer than the one kept is a
/// no-op.
pub trait KeptDraftStore: Send + Sync + 'static {
    /// Keeps `draft` of `target` under its author (`draft.updated_by.user_id`), replacing an older one of the same
    /// target and user, then trims the store to its limits (oldest first).
    fn keep<'a>(&'a self, target: &'a EditTarget, draft: &'a Draft) -> BoxFuture<'a, Result<(), KeptDraftError>>;

    /// Keeps every draft of `drafts` as [`KeptDraftStore::keep`] does (at a shutdown: all open forms' drafts at once).
    /// The default keeps them one by one; a database does better in one transaction.
    fn keep_batch<'a>(&'a self, drafts: &'a [(EditTarget, Arc<Draft>)]) -> BoxFuture<'a, Result<(), KeptDraftError>> {
        Box::pin(async move {
            for (target, draft) in drafts {
                self.keep(target, draft).await?;
            }
            Ok(())
        })
    }

    /// The draft of `target` kept for `user_id`, unless it expired.
    fn find<'a>(
        &'a self,
        target: &'a EditTarget,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<KeptDraft>, KeptDraftError>>;

    /// Removes the draft of `target` kept for `user_id` if it is still the one written at `updated_at` (a newer one,
    /// kept meanwhile, stays). Returns whether one was removed. The store remembers its version until it would have
    /// expired, so that keeping the same draft again (a late keep from another node) does not bring it back; a newer
    /// draft is kept as usual.
    fn discard<'a>(
        &'a self,
        target: &'a EditTarget,
        user_id: &'a str,
        updated_at: u64,
    ) -> BoxFuture<'a, Result<bool, KeptDraftError>>;
}

/// Whether a draft written at `(updated_at, version)` replaces one kept at `(kept_updated_at, kept_version)`: the
/// newer write wins, and the same write again changes nothing.
pub fn supersedes(updated_at: u64, version: u64, kept_updated_at: u64, kept_version: u64) -> bool {
    (updated_at, version) > (kept_updated_at, kept_version)
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// Kept drafts in this process's memory: bounded by [`KeptDraftLimits`], gone with the process.
pub struct MemoryKeptDrafts {
    limits: KeptDraftLimits,
    /// Target and user → kept draft. A std `Mutex`: each call is one short map operation (a trim scans the map only
    /// when a limit is exceeded), never held across an await.
    drafts: Mutex<HashMap<(EditTarget, String), Entry>>,
}

/// A kept draft, or what is left of a discarded one until it expires: its version, so that a late keep of the same
/// draft (another node's keeper, a retry) does not bring it back.
struct Entry {
    kept: KeptDraft,
    discarded: bool,
}

impl MemoryKeptDrafts {
    /// An empty store with `limits`.
    pub fn new(limits: KeptDraftLimits) -> Self {
        MemoryKeptDrafts { limits, drafts: Mutex::new(HashMap::new()) }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<(EditTarget, String), Entry>> {
        self.drafts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Drafts kept right now (expired and discarded ones included until the next write after their retention drops
    /// them).
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no draft is kept.
    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }

    /// Keeps `draft` as if at `now` (see [`KeptDraftStore::keep`]).
    fn keep_at(&self, target: &EditTarget, draft: &Draft, now: u64) {
        let user = draft.updated_by.user_id.clone();
        let mut drafts = self.map();
        let expired_before = now.saturating_sub(self.limits.retention_ms());
        drafts.retain(|_, entry| entry.kept.kept_at > expired_before);
        if let Some(Entry { kept, .. }) = drafts.get(&(target.clone(), user.clone()))
            && !supersedes(draft.updated_at, draft.version, kept.draft.updated_at, kept.draft.version)
        {
            return;
        }
        let kept = KeptDraft { target: target.clone(), draft: draft.clone(), kept_at: now };
        drafts.insert((target.clone(), user.clone()), Entry { kept, discarded: false });
        trim(&mut drafts, self.limits.max_per_user, |(_, owner)| *owner == user);
        trim(&mut drafts, self.limits.max_drafts, |_| true);
    }

    fn find_at(&self, target: &EditTarget, user_id: &str, now: u64) -> Option<KeptDraft> {
        let expired_before = now.saturating_sub(self.limits.retention_ms());
        let drafts = self.map();
        let entry = drafts.get(&(target.clone(), user_id.to_owned()))?;
        (!entry.discarded && entry.kept.kept_at > expired_before).then(|| entry.kept.clone())
    }
}

/// Drops the oldest entries among those `counted` until at most `max` remain.
fn trim(
    drafts: &mut HashMap<(EditTarget, String), Entry>,
    max: usize,
    counted: impl Fn(&(EditTarget, String)) -> bool,
) {
    let mut keys: Vec<((EditTarget, String), (u64, u64))> = drafts
        .iter()
        .filter(|(key, _)| counted(key))
        .map(|(key, entry)| (key.clone(), (entry.kept.kept_at, entry.kept.draft.updated_at)))
        .collect();
    if keys.len() <= max {
        return;
    }
    keys.sort_by_key(|(_, age)| *age);
    let excess = keys.len() - max;
    for (key, _) in keys.into_iter().take(excess) {
        drafts.remove(&key);
    }
}

impl KeptDraftStore for MemoryKeptDrafts {
    fn keep<'a>(&'a self, target: &'a EditTarget, draft: &'a Draft) -> BoxFuture<'a, Result<(), KeptDraftError>> {
        self.keep_at(target, draft, now_ms());
        Box::pin(std::future::ready(Ok(())))
    }

    fn find<'a>(
        &'a self,
        target: &'a EditTarget,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<KeptDraft>, KeptDraftError>> {
        let found = self.find_at(target, user_id, now_ms());
        Box::pin(std::future::ready(Ok(found)))
    }

    fn discard<'a>(
        &'a self,
        target: &'a EditTarget,
        user_id: &'a str,
        updated_at: u64,
    ) -> BoxFuture<'a, Result<bool, KeptDraftError>> {
        let mut drafts = self.map();
        let entry = drafts.get_mut(&(target.clone(), user_id.to_owned()));
        let entry = entry.filter(|entry| !entry.discarded && entry.kept.draft.updated_at == updated_at);
        let removed = entry.map(|entry| entry.discarded = true).is_some();
        Box::pin(std::future::ready(Ok(removed)))
    }
}

/// What the keeper's task is asked to do.
enum Job {
    Keep(EditTarget, Arc<Draft>),
    /// Answered once every job sent before it is done.
    Flush(oneshot::Sender<()>),
}

/// Hands drafts of ended sessions to the [`KeptDraftStore`] from a task of its own: a session ends inside the presence
/// tracker's lock, where nothing may wait for a database.
pub(crate) struct Keeper {
    store: Arc<dyn KeptDraftStore>,
    /// Started by the first job (an engine may be built outside a runtime). Unbounded: one job per session that ended
    /// with a draft (each bounded by the application's form limit), so the queue is bounded by the sessions there were, and a
    /// job dropped for a full queue would be someone's lost work.
    jobs: OnceLock<mpsc::UnboundedSender<Job>>,
}

/// How many times the keeper tries a draft the store refused, and how long it waits before the first retry (doubled
/// each time): a store away for a few seconds (a database restart) loses nothing.
const KEEP_ATTEMPTS: u32 = 4;
const FIRST_RETRY: Duration = Duration::from_millis(500);

impl Keeper {
    pub(crate) fn new(store: Arc<dyn KeptDraftStore>) -> Self {
        Keeper { store, jobs: OnceLock::new() }
    }

    pub(crate) fn store(&self) -> &Arc<dyn KeptDraftStore> {
        &self.store
    }

    fn sender(&self) -> Option<&mpsc::UnboundedSender<Job>> {
        if let Some(jobs) = self.jobs.get() {
            return Some(jobs);
        }
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        Some(self.jobs.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            runtime.spawn(run(self.store.clone(), receiver));
            sender
        }))
    }

    /// Keeps `draft` of `target` soon (never waits).
    pub(crate) fn keep(&self, target: &EditTarget, draft: Arc<Draft>) {
        let sent = self.sender().is_some_and(|jobs| jobs.send(Job::Keep(target.clone(), draft)).is_ok());
        if !sent {
            tracing::error!(%target, "an unsaved draft could not be kept: no runtime to keep it from");
        }
    }

    /// Waits until every draft handed over before the call was kept (or given up on).
    pub(crate) async fn flush(&self) {
        let Some(jobs) = self.jobs.get() else { return };
        let (done, wait) = oneshot::channel();
        if jobs.send(Job::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

async fn run(store: Arc<dyn KeptDraftStore>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = jobs.recv().await {
        match job {
            Job::Keep(target, draft) => keep_with_retries(&*store, &target, &draft).await,
            Job::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

async fn keep_with_retries(store: &dyn KeptDraftStore, target: &EditTarget, draft: &Draft) {
    let mut wait = FIRST_RETRY;
    for attempt in 1..=KEEP_ATTEMPTS {
        match store.keep(target, draft).await {
            Ok(()) => return,
            Err(error) if attempt < KEEP_ATTEMPTS => {
                tracing::warn!(%target, attempt, error = %error_chain(&error), "keeping an unsaved draft failed; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(error) => tracing::error!(
                %target,
                user = %draft.updated_by.user_id,
                error = %error_chain(&error),
                "an unsaved draft could not be kept: the store kept failing"
            ),
        }
    }
}

fn error_chain(error: &KeptDraftError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::editing::DraftAuthor;

    fn draft(user: &str, updated_at: u64, version: u64) -> Draft {
        Draft {
            params: serde_json::json!({"title": format!("{user} at {updated_at}")}),
            version,
            base_lock_version: 3,
            base_values: None,
            updated_by: DraftAuthor { user_id: user.into(), name: user.into(), view_id: "v".into() },
            updated_at,
        }
    }

    const HOUR: u64 = 3_600_000;

    #[test]
    fn the_newest_draft_of_a_target_and_user_wins_and_the_same_one_again_changes_nothing() {
        let store = MemoryKeptDrafts::new(KeptDraftLimits::default());
        let target = EditTarget::new("article", 1).unwrap();
        store.keep_at(&target, &draft("ann", 200, 4), 1_000);
        store.keep_at(&target, &draft("ann", 100, 9), 2_000);
        assert_eq!(
            store.find_at(&target, "ann", 3_000).map(|kept| (kept.draft.updated_at, kept.kept_at)),
            Some((200, 1_000))
        );
        store.keep_at(&target, &draft("ann", 200, 4), 5_000);
        assert_eq!(store.find_at(&target, "ann", 6_000).unwrap().kept_at, 1_000, "kept again from a second node");
        store.keep_at(&target, &draft("bob", 150, 1), 5_000);
        assert_eq!(store.len(), 2, "one per user");
        assert!(store.find_at(&EditTarget::new("category", 1).unwrap(), "ann", 6_000).is_none(), "per target");
    }

    #[test]
    fn kept_drafts_expire_after_the_retention() {
        let limits = KeptDraftLimits { retention: Duration::from_secs(3600), ..KeptDraftLimits::default() };
        let store = MemoryKeptDrafts::new(limits);
        let target = EditTarget::new("article", 1).unwrap();
        store.keep_at(&target, &draft("ann", 1, 1), HOUR);
        assert!(store.find_at(&target, "ann", 2 * HOUR - 1).is_some());
        assert!(store.find_at(&target, "ann", 2 * HOUR).is_none(), "an hour after it was kept");
        store.keep_at(&EditTarget::new("article", 2).unwrap(), &draft("bob", 1, 1), 3 * HOUR);
        assert_eq!(store.len(), 1, "a write drops expired drafts");
    }

    #[test]
    fn the_oldest_go_first_beyond_the_limits_of_a_user_and_of_all() {
        let limits = KeptDraftLimits { max_drafts: 4, max_per_user: 2, ..KeptDraftLimits::default() };
        let store = MemoryKeptDrafts::new(limits);
        for id in 1..=3 {
            store.keep_at(&EditTarget::new("article", id).unwrap(), &draft("ann", id as u64, 1), id as u64);
        }
        assert!(store.find_at(&EditTarget::new("article", 1).unwrap(), "ann", 10).is_none(), "ann's oldest went");
        assert!(store.find_at(&EditTarget::new("article", 3).unwrap(), "ann", 10).is_some());
        for (at, user) in [(4, "bob"), (5, "cid"), (6, "dan")] {
            store.keep_at(&EditTarget::new("article", 9).unwrap(), &draft(user, at, 1), at);
        }
        assert_eq!(store.len(), 4);
        assert!(store.find_at(&EditTarget::new("article", 2).unwrap(), "ann", 10).is_none(), "the oldest of all went");
        assert!(store.find_at(&EditTarget::new("article", 9).unwrap(), "dan", 10).is_some());
    }

    #[tokio::test]
    async fn a_discard_removes_only_the_draft_it_names() {
        let store = MemoryKeptDrafts::new(KeptDraftLimits::default());
        let target = EditTarget::new("article", 1).unwrap();
        store.keep(&target, &draft("ann", 5, 1)).await.unwrap();
        assert!(!store.discard(&target, "ann", 4).await.unwrap(), "an older draft's discard");
        assert!(store.find(&target, "ann").await.unwrap().is_some());
        assert!(store.discard(&target, "ann", 5).await.unwrap());
        assert!(store.find(&target, "ann").await.unwrap().is_none());
    }

    struct Flaky {
        failures: Mutex<u32>,
        inner: MemoryKeptDrafts,
    }

    impl KeptDraftStore for Flaky {
        fn keep<'a>(&'a self, target: &'a EditTarget, draft: &'a Draft) -> BoxFuture<'a, Result<(), KeptDraftError>> {
            let mut failures = self.failures.lock().unwrap();
            if *failures > 0 {
                *failures -= 1;
                let error = std::io::Error::other("database restarting");
                return Box::pin(std::future::ready(Err(KeptDraftError::unavailable(error))));
            }
            self.inner.keep(target, draft)
        }
        fn find<'a>(
            &'a self,
            t: &'a EditTarget,
            u: &'a str,
        ) -> BoxFuture<'a, Result<Option<KeptDraft>, KeptDraftError>> {
            self.inner.find(t, u)
        }
        fn discard<'a>(
            &'a self,
            t: &'a EditTarget,
            u: &'a str,
            at: u64,
        ) -> BoxFuture<'a, Result<bool, KeptDraftError>> {
            self.inner.discard(t, u, at)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_keeper_retries_a_store_that_fails_for_a_while_and_flush_waits_for_it() {
        let store =
            Arc::new(Flaky { failures: Mutex::new(2), inner: MemoryKeptDrafts::new(KeptDraftLimits::default()) });
        let keeper = Keeper::new(store.clone());
        keeper.keep(&EditTarget::new("article", 1).unwrap(), Arc::new(draft("ann", 1, 1)));
        keeper.flush().await;
        assert!(
            store.find(&EditTarget::new("article", 1).unwrap(), "ann").await.unwrap().is_some(),
            "kept at the third attempt"
        );
    }
}
