//! The PubSub contract against the single-node backend and the in-process cluster backend.

mod contract;

mod single_node {
    crate::single_node_contract!(livebaton::pubsub::PubSub::default());
}

mod cluster_node {
    crate::single_node_contract!({
        let cluster = livebaton::pubsub::LocalCluster::new();
        livebaton::pubsub::PubSub::with_backend(Default::default(), cluster.node("solo"))
    });
}

mod cluster_of_two {
    crate::multi_node_contract!({
        use livebaton::pubsub::{LocalCluster, PubSub};
        let cluster = LocalCluster::new();
        (
            PubSub::with_backend(Default::default(), cluster.node("a")),
            PubSub::with_backend(Default::default(), cluster.node("b")),
        )
    });
}
