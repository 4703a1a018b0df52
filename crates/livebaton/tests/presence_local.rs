//! The presence contract against the single-node tracker (its own roster is the authority).

mod contract;

mod single_node {
    crate::presence_contract!({
        let presence = livebaton::presence::PresenceConfig {
            leave_grace: std::time::Duration::from_millis(300),
            ..Default::default()
        };
        vec![livebaton::Engine::new(livebaton::EngineConfig { presence, ..Default::default() })]
    });
}
