//! # livebaton-web
//!
//! The live transport: the Phoenix Channels V2 JSON protocol over WebSocket, so the official `phoenix` JS client
//! works unchanged. This first part is the wire protocol ([`protocol`]); the socket, the channel router and the limits
//! build on it.

#![warn(missing_docs)]

pub mod channel;
pub mod channels;
pub mod config;
mod connections;
pub mod endpoint;
pub mod live;
mod outbound;
pub mod protocol;
pub mod rate;
pub mod socket;
pub mod websocket;
