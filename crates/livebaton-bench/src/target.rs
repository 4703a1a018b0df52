//! The server a scenario runs against: the livebaton binary ([`crate::server`]) or a peer ([`crate::peer`]), with
//! the protocol its clients speak and who they are.

use std::sync::Arc;

use crate::cli::ServerKind;
use crate::peer::Peer;
use crate::protocol::Protocol;
use crate::protocol::phoenix::PhoenixV2;
use crate::protocol::pusher::Pusher;
use crate::protocol::socketio::SocketIo;
use crate::server::{Launch, Server};

pub enum Target {
    Livebaton(Server),
    Peer(Peer),
}

impl Target {
    /// Starts the server `launch.args.server` names; `launch` only matters for livebaton.
    pub async fn start(launch: Launch<'_>) -> anyhow::Result<Target> {
        Ok(match launch.args.server {
            ServerKind::Livebaton => Target::Livebaton(Server::start(launch).await?),
            _ => Target::Peer(Peer::start(launch.args).await?),
        })
    }

    pub fn pid(&self) -> u32 {
        match self {
            Target::Livebaton(server) => server.pid,
            Target::Peer(peer) => peer.pid,
        }
    }

    pub fn addr(&self) -> &str {
        match self {
            Target::Livebaton(server) => &server.addr,
            Target::Peer(peer) => &peer.addr,
        }
    }

    /// The livebaton server, if that is the target.
    pub fn livebaton(&self) -> Option<&Server> {
        match self {
            Target::Livebaton(server) => Some(server),
            Target::Peer(_) => None,
        }
    }

    /// The scenario's server flags, for the JSON line (none on a peer: its settings are its committed config).
    pub fn flags(&self) -> &[String] {
        match self {
            Target::Livebaton(server) => &server.flags,
            Target::Peer(_) => &[],
        }
    }

    pub fn protocol(&self) -> Arc<dyn Protocol> {
        match self {
            Target::Livebaton(_) => Arc::new(PhoenixV2),
            Target::Peer(peer) => match peer.kind {
                ServerKind::Soketi => Arc::new(Pusher { name: "soketi" }),
                ServerKind::Sockudo => Arc::new(Pusher { name: "sockudo" }),
                ServerKind::Socketio | ServerKind::Livebaton => Arc::new(SocketIo),
            },
        }
    }

    /// Credentials for `count` clients that are all "the same person" on livebaton (the admin's token: one
    /// presence key, one meta per connection) and each their own user on a peer (`user-<i>`: Pusher presence is
    /// per user, so one member per connection; one entry per connection either way).
    pub async fn credentials(&self, count: usize) -> anyhow::Result<Vec<String>> {
        match self {
            Target::Livebaton(server) => Ok(vec![server.admin_token().await?; count]),
            Target::Peer(_) => Ok((0..count).map(|index| format!("user-{index}")).collect()),
        }
    }

    pub async fn finish(self, outcome: anyhow::Result<bool>) -> anyhow::Result<bool> {
        match self {
            Target::Livebaton(server) => server.finish(outcome).await,
            Target::Peer(peer) => peer.finish(outcome).await,
        }
    }
}
