//! The engine's link to Redis: everything its Redis users share, so that they connect, time out and reconnect alike.
//!
//! - [`RedisAddress`] (`address.rs`): where Redis is, with credentials and TLS; every connection is opened from one.
//! - [`Link`] (`connection.rs`): connections to one server under the deadlines of a [`LinkConfig`] (`config.rs`): a
//!   multiplexed connection for commands, a subscription, and reconnecting with a [`Backoff`] (`backoff.rs`); and a
//!   [`SharedConnection`], opened on first use and replaced after a failure.
//! - [`listen`] (`subscriber.rs`): the subscriber loop, with its pings and resubscriptions, for any [`Listener`].
//! - [`LinkError`] (`error.rs`): what went wrong, and whether retrying can help.
//! - [`RedisCommands`] (`commands.rs`): a shared connection for occasional commands (kept drafts, an application's
//!   own).
//!
//! Its users: the PubSub backend ([`crate::pubsub::RedisBackend`]: a subscription, and a publishing connection), the
//! presence roster ([`crate::presence::RedisRoster`]: a subscription, and a shared command connection for its
//! scripts) and the kept drafts ([`crate::editing::RedisKeptDrafts`], through [`RedisCommands`]). What they send is
//! theirs: this module knows none of their channels, keys or messages.

mod address;
mod backoff;
mod commands;
mod config;
mod connection;
mod error;
mod random;
mod subscriber;

pub use address::RedisAddress;
pub(crate) use backoff::Backoff;
pub use commands::RedisCommands;
pub(crate) use config::LinkConfig;
pub(crate) use connection::{Link, SharedConnection};
pub(crate) use error::{LinkError, connect_hint, is_auth_failure, is_refusal, within};
pub(crate) use random::random_u64;
pub(crate) use subscriber::{Flow, Listener, Subscription, listen};
