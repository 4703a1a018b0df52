//! # livebaton-web
//!
//! The live transport over the [`livebaton`] engine: the Phoenix Channels V2 JSON protocol over WebSocket, so the
//! official `phoenix` JS client works unchanged, and live views on top of it.
//!
//! - [`protocol`]: the wire frames (decode, encode once per broadcast).
//! - [`websocket`]: RFC 6455 for many idle connections (no buffer held by an idle socket).
//! - [`socket`] and [`endpoint`]: one task per connection, heartbeats, the idle sweep, limits, sign-out and shutdown.
//! - [`channel`] and [`channels`]: the `Channel` trait a topic's handler implements (join, events, outgoing
//!   broadcasts), and the built-in `room:*` channel with presence.
//! - [`live`]: server-rendered live views (mount, events, diffs of rendered regions) over the same socket.
//! - [`rate`] and [`config`]: per-socket event rates and the transport's settings.
//! - [`collab`]: collaborative forms over the application's own types (owner and spectators, drafts, fenced saves).
//! - [`app`]: the few lines that put live pages, channels and their socket into an axum application
//!   ([`app::LiveApp`]), with the security headers of [`headers`].

#![warn(missing_docs)]

pub mod app;
pub mod channel;
pub mod channels;
pub mod collab;
pub mod config;
mod connections;
pub mod endpoint;
pub mod headers;
pub mod live;
mod outbound;
pub mod protocol;
pub mod rate;
pub mod socket;
pub mod websocket;
