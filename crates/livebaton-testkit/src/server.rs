//! [`TestServer`]: an axum router served on a free loopback port for one test.

use std::net::SocketAddr;

/// The application on a free loopback port, served until the value is dropped (the test ended).
pub struct TestServer {
    address: SocketAddr,
    /// Stops serving when dropped: a test's server never outlives it, even on a runtime shared by many tests.
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Serves `app`, with each connection's peer address available to handlers as
    /// `ConnectInfo<SocketAddr>` (as `into_make_service_with_connect_info` gives it).
    pub async fn start(app: axum::Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free loopback port");
        let address = listener.local_addr().expect("a local address");
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, service).await {
                panic!("the test server stopped: {error}");
            }
        });
        TestServer { address, task }
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://<address>`, the `Origin` of its own pages.
    pub fn origin(&self) -> String {
        format!("http://{}", self.address)
    }

    /// `ws://<address>/live/websocket?<query>`.
    pub fn socket_url(&self, query: &str) -> String {
        format!("ws://{}/live/websocket?{query}", self.address)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
