//! An in-process "cluster" backend: several [`super::PubSub`] nodes in one process, connected as if by a network.
//!
//! It exists so the multi-node contract (a broadcast reaches other nodes once, `local_broadcast` does not leave the
//! node, messages survive an encode/decode round trip) is tested without Redis, with the same suite that runs against
//! the Redis backend.

use std::sync::{Arc, Mutex};

use super::{BackendError, Inbound, Message, PubSubBackend, RemoteEnvelope};

/// A set of nodes that see each other's broadcasts.
#[derive(Clone, Default)]
pub struct LocalCluster {
    /// Every attached node's inbound. A std `Mutex`: held only to copy the list, never across an await.
    nodes: Arc<Mutex<Vec<Inbound>>>,
}

impl LocalCluster {
    /// An empty cluster.
    pub fn new() -> Self {
        Self::default()
    }

    /// A backend for one more node called `name` (names must be unique within the cluster).
    pub fn node(&self, name: &str) -> Arc<dyn PubSubBackend> {
        Arc::new(ClusterNode { name: name.to_owned(), cluster: self.clone() })
    }
}

struct ClusterNode {
    name: String,
    cluster: LocalCluster,
}

impl PubSubBackend for ClusterNode {
    fn node_name(&self) -> &str {
        &self.name
    }

    fn attach(&self, inbound: Inbound) {
        let mut nodes = self.cluster.nodes.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        nodes.retain(Inbound::is_alive);
        nodes.push(inbound);
    }

    fn forward(&self, topic: &Arc<str>, message: &dyn Message) -> Result<(), BackendError> {
        // Encoded once, decoded by each receiving node, exactly as over a network.
        let bytes = RemoteEnvelope::encode(&self.name, topic, message)?;
        let nodes = self.cluster.nodes.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        for node in nodes {
            // The receiving node's problem (a codec it has not registered), as over a network: it logs, the sender
            // goes on.
            if let Err(error) = node.deliver_encoded(&bytes) {
                tracing::warn!(%error, "a cluster node dropped a message it could not decode");
            }
        }
        Ok(())
    }
}
