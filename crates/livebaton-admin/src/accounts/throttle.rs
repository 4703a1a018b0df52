//! Throttling of failed sign-ins, per account and per client address: growing delays, never a long lockout.
//!
//! The rule, for each key (an account *from one client address*; an account from anywhere; a client address):
//! - the first `limit` failures are free (5 per account from one address, ten times that per account from
//!   anywhere, 20 per address by default);
//! - the failure that reaches the limit, and every one after it, closes the key for a delay that doubles each time:
//!   5 s, 10 s, 20 s, … capped at `window` (15 minutes by default; a minute for an account from anywhere), counted
//!   from that failure;
//! - a key left alone for `window` after it reopened is forgotten; a successful sign-in forgets its account.
//!
//! So a guesser at one address gets 5 tries at an account and then one per delay, one per 15 minutes once the cap is
//! reached; a guesser with many addresses gets 50 tries at the account and then at most one a minute. Someone else's
//! guesses never close the account to an address it was signed in from before (a *known* address, remembered for
//! 30 days after a success: the account-wide key does not apply there), and close it to new addresses for at most a
//! minute at a time: nobody can lock the owner out.
//!
//! An attempt counts as a failure from the moment it *starts* ([`Throttle::begin`], atomically with the check), not
//! after its password was hashed: concurrent guesses cannot all pass the check before the first is recorded. A
//! success then gives its count back ([`Attempt::succeeded`]). An attempt dropped without a verdict stays counted.
//!
//! Addresses are keyed as given, except IPv6 addresses, which are keyed by their /64 network (one host usually owns
//! a whole /64, so single addresses would give it billions of fresh keys). Accounts are keyed by the SHA-256 of the
//! normalised email, so every key has the same small size whatever is posted. The map is bounded by `max_keys`:
//! forgotten keys go first, then the open keys that failed longest ago; a closed key goes last, so spraying fresh
//! emails or addresses does not reopen an account under attack.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The delay after the failure that reaches a key's limit; each further failure doubles it, up to the window.
pub const FIRST_DELAY: Duration = Duration::from_secs(5);

/// Limits for [`Throttle`].
#[derive(Clone, Debug)]
pub struct ThrottleConfig {
    /// Failures of one account before its delays begin.
    pub per_account: usize,
    /// Failures from one client address (IPv6: one /64) before its delays begin.
    pub per_address: usize,
    /// The longest delay, and how long a key must stay open and unused to be forgotten.
    pub window: Duration,
    /// Most keys remembered.
    pub max_keys: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig { per_account: 5, per_address: 20, window: Duration::from_secs(15 * 60), max_keys: 10_000 }
    }
}

/// The three keys an attempt counts on, by what they stand for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KeyKind {
    /// An account from one client address.
    AccountFrom,
    /// An account from anywhere.
    Account,
    /// A client address.
    Address,
}

impl ThrottleConfig {
    /// Failures of a key of `kind` before its delays begin (at least 1).
    pub(super) fn limit(&self, kind: KeyKind) -> u32 {
        let limit = match kind {
            KeyKind::AccountFrom => self.per_account,
            KeyKind::Account => self.per_account.saturating_mul(ACCOUNT_WIDE_FACTOR),
            KeyKind::Address => self.per_address,
        };
        u32::try_from(limit).unwrap_or(u32::MAX).max(1)
    }

    /// The longest delay of a key of `kind`.
    pub(super) fn longest_delay(&self, kind: KeyKind) -> Duration {
        match kind {
            KeyKind::Account => ACCOUNT_WIDE_MAX_DELAY.min(self.window),
            KeyKind::AccountFrom | KeyKind::Address => self.window,
        }
    }

    /// The delay set by the `failures`-th failure of a key of `kind`: none below the limit, then [`FIRST_DELAY`]
    /// doubling with each failure, up to [`ThrottleConfig::longest_delay`]. (The shared throttle's script computes the
    /// same in Redis.)
    pub(super) fn delay(&self, kind: KeyKind, failures: u32) -> Duration {
        let limit = self.limit(kind);
        if failures < limit {
            return Duration::ZERO;
        }
        let doublings = (failures - limit).min(30);
        FIRST_DELAY.saturating_mul(1 << doublings).min(self.longest_delay(kind))
    }
}

/// Sign-in attempts are refused for a while.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("too many failed sign-in attempts; try again in {}", wait_text(.retry_after))]
pub struct Throttled {
    /// How long until the next attempt is allowed.
    pub retry_after: Duration,
}

/// A wait in whole seconds for `Retry-After`: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    u64::try_from(wait.as_millis().div_ceil(1000)).unwrap_or(u64::MAX).max(1)
}

fn wait_text(wait: &Duration) -> String {
    let seconds = retry_after_secs(*wait);
    match seconds {
        1 => "1 second".to_owned(),
        2..60 => format!("{seconds} seconds"),
        _ => match seconds.div_ceil(60) {
            1 => "1 minute".to_owned(),
            minutes => format!("{minutes} minutes"),
        },
    }
}

/// How many times an account's own limit its failures from anywhere may reach before they slow it for everyone.
const ACCOUNT_WIDE_FACTOR: usize = 10;
/// The longest delay failures from anywhere put on an account: short, so that nobody can lock its owner out.
const ACCOUNT_WIDE_MAX_DELAY: Duration = Duration::from_secs(60);
/// How long an address an account signed in from stays known to it (exempt from the account-wide key).
pub(super) const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    /// SHA-256 of the trimmed, lower-cased email, from one client address (IPv6: its /64).
    AccountFrom([u8; 32], IpAddr),
    /// SHA-256 of the trimmed, lower-cased email, from anywhere.
    Account([u8; 32]),
    /// The address, IPv6 cut to its /64.
    Address(IpAddr),
}

/// What an attempt for `email` from `address` is keyed by: the SHA-256 of the trimmed, lower-cased email, and the
/// address (IPv6 cut to its /64).
pub(super) fn key_parts(email: &str, address: IpAddr) -> ([u8; 32], IpAddr) {
    (Sha256::digest(email.trim().to_lowercase().as_bytes()).into(), crate::proxy::client_key(address))
}

impl Key {
    /// The keys an attempt for `email` from `address` counts on.
    fn of(email: &str, address: IpAddr) -> [Key; 3] {
        let (account, address) = key_parts(email, address);
        [Key::AccountFrom(account, address), Key::Account(account), Key::Address(address)]
    }

    fn kind(&self) -> KeyKind {
        match self {
            Key::AccountFrom(..) => KeyKind::AccountFrom,
            Key::Account(_) => KeyKind::Account,
            Key::Address(_) => KeyKind::Address,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// Failures counted (attempts in flight included) since the key was last forgotten.
    failures: u32,
    /// When the last failure was counted.
    last: Instant,
    /// No attempt starts before this.
    open_at: Instant,
}

impl Entry {
    /// Whether the key has been open and unused for `window` (`open_at` is never before `last`).
    fn forgotten(&self, now: Instant, window: Duration) -> bool {
        now.saturating_duration_since(self.open_at) >= window
    }
}

/// Failed sign-in bookkeeping.
pub struct Throttle {
    config: ThrottleConfig,
    /// Key → its failures. A std `Mutex`: a few map operations per sign-in, never held across an `.await`.
    keys: Mutex<HashMap<Key, Entry>>,
    /// Known addresses: `Key::AccountFrom` pairs that signed in, with when. Bounded by `max_keys` like `keys`; the
    /// same kind of `Mutex`, taken before `keys` when both are.
    known: Mutex<HashMap<Key, Instant>>,
}

/// An attempt that has been counted as a failure until it says otherwise.
#[must_use = "an attempt dropped without a verdict stays counted as a failure"]
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    /// The account's keys (from the address, from anywhere): forgotten on success.
    accounts: [Key; 2],
    address: Key,
    /// The address's `open_at` before this attempt, and the one this attempt set, to undo it on success.
    address_open: (Instant, Instant),
    /// When the attempt started (the address becomes known to the account then, if it succeeds).
    now: Instant,
}

impl Throttle {
    /// A throttle with `config`.
    pub fn new(config: ThrottleConfig) -> Self {
        Throttle { config, keys: Mutex::new(HashMap::new()), known: Mutex::new(HashMap::new()) }
    }

    /// The limits.
    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The keys an attempt for `email` from `address` counts on: the account from this address, the account from
    /// anywhere (unless the address is known to the account), and the address.
    fn keys_of(&self, email: &str, address: IpAddr, now: Instant) -> Vec<Key> {
        let keys = Key::of(email, address);
        let known = self.known.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let is_known = known.get(&keys[0]).is_some_and(|at| now.saturating_duration_since(*at) < KNOWN_FOR);
        keys.into_iter().filter(|key| !(is_known && matches!(key, Key::Account(_)))).collect()
    }

    /// How long `keys` must wait at `now` (zero: not at all); forgotten entries are dropped on the way.
    fn wait(&self, map: &mut HashMap<Key, Entry>, keys: &[Key], now: Instant) -> Duration {
        let mut wait = Duration::ZERO;
        for key in keys {
            if let Some(entry) = map.get(key) {
                if entry.forgotten(now, self.config.window) {
                    map.remove(key);
                } else {
                    wait = wait.max(entry.open_at.saturating_duration_since(now));
                }
            }
        }
        wait
    }

    /// Whether an attempt for `email` from `address` could start at `now`, without counting one.
    ///
    /// # Errors
    /// [`Throttled`] with the time to wait.
    pub fn check(&self, email: &str, address: IpAddr, now: Instant) -> Result<(), Throttled> {
        let keys = self.keys_of(email, address, now);
        let wait = self.wait(&mut self.lock(), &keys, now);
        if wait.is_zero() { Ok(()) } else { Err(Throttled { retry_after: wait }) }
    }

    /// Starts an attempt for `email` from `address` at `now`: checks both keys and, if both are open, counts the
    /// attempt as a failure on both, in one step.
    ///
    /// # Errors
    /// [`Throttled`] with the time to wait; nothing is counted then.
    pub fn begin(&self, email: &str, address: IpAddr, now: Instant) -> Result<Attempt<'_>, Throttled> {
        let keys = self.keys_of(email, address, now);
        let [account_from, account, address] = Key::of(email, address);
        let mut map = self.lock();
        let wait = self.wait(&mut map, &keys, now);
        if !wait.is_zero() {
            return Err(Throttled { retry_after: wait });
        }
        self.make_room(&mut map, now);
        let mut address_open = (now, now);
        for key in keys {
            let entry = map.entry(key).or_insert(Entry { failures: 0, last: now, open_at: now });
            let before = entry.open_at;
            entry.failures = entry.failures.saturating_add(1);
            entry.last = now;
            entry.open_at = entry.open_at.max(now + self.config.delay(key.kind(), entry.failures));
            if key == address {
                address_open = (before, entry.open_at);
            }
        }
        Ok(Attempt { throttle: self, accounts: [account_from, account], address, address_open, now })
    }

    /// Keeps room for three new keys under `max_keys`.
    fn make_room(&self, map: &mut HashMap<Key, Entry>, now: Instant) {
        let max_keys = self.config.max_keys.max(3);
        if map.len() + 3 <= max_keys {
            return;
        }
        let window = self.config.window;
        map.retain(|_, entry| !entry.forgotten(now, window));
        if map.len() + 3 <= max_keys {
            return;
        }
        // Evict an eighth at once, so a full map costs one sort per many sign-ins, not one scan each.
        let excess = map.len() + 3 - max_keys + max_keys / 8;
        let mut candidates: Vec<(bool, Instant, Key)> =
            map.iter().map(|(key, entry)| (entry.open_at > now, entry.last, *key)).collect();
        candidates.sort_unstable_by_key(|(closed, last, _)| (*closed, *last));
        for (_, _, key) in candidates.into_iter().take(excess) {
            map.remove(&key);
        }
    }

    /// Remembers that the account signed in from the address of `account_from` at `now`, within `max_keys`.
    fn remember(&self, account_from: Key, now: Instant) {
        let mut known = self.known.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if known.len() >= self.config.max_keys.max(1) && !known.contains_key(&account_from) {
            known.retain(|_, at| now.saturating_duration_since(*at) < KNOWN_FOR);
            if known.len() >= self.config.max_keys.max(1) {
                let oldest = known.iter().min_by_key(|(_, at)| **at).map(|(key, _)| *key);
                if let Some(oldest) = oldest {
                    known.remove(&oldest);
                }
            }
        }
        known.insert(account_from, now);
    }

    /// Number of keys remembered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Attempt<'_> {
    /// The password was right: forgets the account's failures and gives the address its count back.
    pub fn succeeded(self) {
        self.throttle.remember(self.accounts[0], self.now);
        let mut map = self.throttle.lock();
        for account in &self.accounts {
            map.remove(account);
        }
        if let Some(entry) = map.get_mut(&self.address) {
            entry.failures = entry.failures.saturating_sub(1);
            // Undo this attempt's delay unless a later failure has set another since.
            let (before, set) = self.address_open;
            if entry.open_at == set {
                entry.open_at = before;
            }
            if entry.failures == 0 {
                map.remove(&self.address);
            }
        }
    }

    /// The password was wrong: the attempt stays counted (the same as dropping it).
    pub fn failed(self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(1, 1, 1, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(2, 2, 2, 2));

    fn throttle() -> Throttle {
        Throttle::new(ThrottleConfig { per_account: 3, per_address: 5, window: Duration::from_secs(60), max_keys: 50 })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_account_gets_its_limit_then_delays_that_double_up_to_the_window() {
        let throttle = throttle();
        let start = Instant::now();
        for n in 0..3 {
            throttle.begin("A@x.io", A, start).unwrap_or_else(|_| panic!("attempt {n} allowed")).failed();
        }
        let refused = throttle.begin("a@x.io", A, start + Duration::from_secs(1)).err().unwrap();
        assert_eq!(refused.retry_after, Duration::from_secs(4), "5 s after the third failure from that address");
        assert!(refused.to_string().ends_with("try again in 4 seconds"), "{refused}");
        assert!(throttle.check("b@x.io", A, start).is_ok(), "other accounts are not affected");
        assert!(throttle.check("a@x.io", B, start).is_ok(), "the owner at another address is not locked out");

        let mut now = start;
        for expected in [10, 20, 40, 60, 60] {
            now += throttle.check("a@x.io", A, now).err().map_or(Duration::ZERO, |refused| refused.retry_after);
            throttle.begin("a@x.io", A, now).unwrap().failed();
            let refused = throttle.check("a@x.io", A, now).unwrap_err();
            assert_eq!(refused.retry_after, Duration::from_secs(expected));
        }
        let reopened = now + Duration::from_secs(60);
        throttle.begin("a@x.io", A, reopened).expect("open once the delay ended").failed();
        let refused = throttle.check("a@x.io", A, reopened).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(60), "a guesser gets one try per window");
        let forgotten = reopened + Duration::from_secs(120);
        throttle.begin("a@x.io", A, forgotten).unwrap().failed();
        assert!(throttle.check("a@x.io", A, forgotten).is_ok(), "left alone a window after reopening: forgotten");
    }

    /// An address the account signed in from before is not slowed by guesses from elsewhere, however many.
    #[test]
    fn guesses_from_elsewhere_never_close_an_account_to_a_known_address() {
        let throttle = Throttle::new(ThrottleConfig {
            per_account: 3,
            per_address: 5,
            window: Duration::from_secs(900),
            max_keys: 500,
        });
        let now = Instant::now();
        throttle.begin("a@x.io", A, now).unwrap().succeeded();
        let from = |n: u32| IpAddr::V4(std::net::Ipv4Addr::from(0x0A00_0000 + n));
        let mut later = now;
        for n in 0..60 {
            later +=
                throttle.check("a@x.io", from(n), later).err().map_or(Duration::ZERO, |refused| refused.retry_after);
            throttle.begin("a@x.io", from(n), later).unwrap().failed();
        }
        assert!(throttle.check("a@x.io", B, later).is_err(), "a new address waits (at most a minute)");
        assert!(throttle.check("a@x.io", A, later).is_ok(), "the owner's known address is let in");
    }

    /// Guesses from many addresses slow the account for everyone only after ten times its limit, and by at most a
    /// minute (capped below the window): a distributed guesser cannot lock the owner out for long.
    #[test]
    fn guesses_from_many_addresses_slow_an_account_by_at_most_a_minute() {
        let throttle = Throttle::new(ThrottleConfig {
            per_account: 3,
            per_address: 5,
            window: Duration::from_secs(900),
            max_keys: 500,
        });
        let now = Instant::now();
        let from = |n: u32| IpAddr::V4(std::net::Ipv4Addr::from(0x0A00_0000 + n));
        for n in 0..29 {
            throttle.begin("a@x.io", from(n), now).unwrap().failed();
        }
        assert!(throttle.check("a@x.io", B, now).is_ok(), "29 failures from 29 addresses: the owner is let in");
        let mut later = now;
        for n in 29..40 {
            later +=
                throttle.check("a@x.io", from(n), later).err().map_or(Duration::ZERO, |refused| refused.retry_after);
            throttle.begin("a@x.io", from(n), later).unwrap().failed();
        }
        let refused = throttle.check("a@x.io", B, later).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(60), "slowed for everyone, by at most a minute");
    }

    #[test]
    fn attempts_in_flight_count_so_concurrent_guesses_stop_at_the_limit() {
        let throttle = throttle();
        let now = Instant::now();
        let started: Vec<_> = (0..40).filter_map(|_| throttle.begin("a@x.io", A, now).ok()).collect();
        assert_eq!(started.len(), 3, "only the limit starts before any verdict");
        drop(started);
        assert!(throttle.begin("a@x.io", A, now).is_err(), "dropped attempts stay counted");
    }

    #[test]
    fn a_success_forgets_the_account_and_gives_the_address_its_count_back() {
        let throttle = throttle();
        let now = Instant::now();
        for n in 0..3 {
            throttle.begin(&format!("other{n}@x.io"), A, now).unwrap().failed();
        }
        throttle.begin("a@x.io", A, now).unwrap().failed();
        // The fifth attempt from A closes the address while it is in flight, until its success gives it back.
        throttle.begin("a@x.io", A, now).unwrap().succeeded();
        assert!(throttle.check("fresh@x.io", A, now).is_ok(), "a success neither counts nor leaves a delay");
        throttle.begin("z@x.io", A, now).unwrap().failed();
        assert!(throttle.check("fresh@x.io", A, now).is_err(), "the address kept its four failures");

        throttle.begin("a@x.io", B, now).unwrap().failed();
        throttle.begin("a@x.io", B, now).unwrap().failed();
        assert!(throttle.check("a@x.io", B, now).is_ok(), "the account counts afresh from the success");
        throttle.begin("a@x.io", B, now).unwrap().failed();
        assert!(throttle.check("a@x.io", B, now).is_err(), "closed from B");
    }

    #[test]
    fn an_address_is_throttled_across_accounts_and_ipv6_by_its_64() {
        let throttle = throttle();
        let now = Instant::now();
        for n in 0..5 {
            throttle.begin(&format!("user{n}@x.io"), ip("2001:db8:1:2::1"), now).unwrap().failed();
        }
        assert!(throttle.check("fresh@x.io", ip("2001:db8:1:2:ffff::9"), now).is_err(), "same /64");
        assert!(throttle.check("fresh@x.io", ip("2001:db8:1:3::1"), now).is_ok(), "another /64");
        for n in 0..5 {
            throttle.begin(&format!("user{n}@y.io"), ip("::ffff:9.9.9.9"), now).unwrap().failed();
        }
        assert!(throttle.check("fresh@x.io", ip("9.9.9.9"), now).is_err(), "mapped IPv4 is the IPv4 address");
    }

    #[test]
    fn memory_stays_bounded_and_closed_keys_outlive_a_spray() {
        let throttle = throttle();
        let now = Instant::now();
        for _ in 0..3 {
            throttle.begin("target@x.io", A, now).unwrap().failed();
        }
        for n in 0..1_000 {
            let address = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, (n / 256) as u8, (n % 256) as u8));
            throttle.begin(&format!("spray{n}@x.io"), address, now).unwrap().failed();
        }
        assert!(throttle.len() <= 50, "bounded: {}", throttle.len());
        assert!(throttle.check("target@x.io", A, now).is_err(), "the closed account was kept");
    }
}
