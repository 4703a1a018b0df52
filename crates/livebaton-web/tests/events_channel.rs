//! The engine's resource events on channels (`EventsRoute`): pushed to the sockets the application admits, on the
//! resource's topic and its scope's, and nothing else; clients only listen.

use livebaton::Engine;
use livebaton::events::{Action, ResourceEvent};
use livebaton_testkit::{Peer, TestServer, connect, error_reason, ws_request};
use livebaton_web::app::{Caller, LiveApp};
use livebaton_web::channel::UserInfo;
use livebaton_web::channels::EventsRoute;
use serde_json::json;

/// Test sign-in: the `user` connect param names the user.
async fn authenticate(caller: Caller) -> livebaton_web::app::Authentication {
    Ok(caller.query.get("user").map(|name| UserInfo::new(name, name, "", "member")))
}

async fn peer(server: &TestServer, user: &str) -> Peer {
    connect(ws_request(&server.socket_url(&format!("vsn=2.0.0&user={user}")), &[])).await.expect("connects").0
}

#[tokio::test]
async fn events_reach_the_sockets_the_application_admits_and_clients_only_listen() {
    let engine = Engine::new(Default::default());
    // Anyone signed in hears every invoice; only its customer hears a customer's scope; nobody hears payroll.
    let route = EventsRoute::new(engine.events.clone(), |socket, resource, scope| {
        !socket.user.id().starts_with("anonymous-")
            && resource == "invoice"
            && scope.is_none_or(|customer| customer == socket.user.id())
    });
    let (app, _handle) = LiveApp::new(&engine, b"events test secret of 32 bytes!!".to_vec())
        .authenticate(authenticate)
        .channel("events:*", route)
        .build();
    let server = TestServer::start(app).await;

    let mut acme = peer(&server, "acme").await;
    acme.join_ok("events:invoice", json!({})).await;
    acme.join_ok("events:invoice:acme", json!({})).await;
    assert_eq!(error_reason(&acme.join("events:invoice:globex", json!({})).await), "unauthorized");
    assert_eq!(error_reason(&acme.join("events:payroll", json!({})).await), "unauthorized");
    assert_eq!(error_reason(&acme.join("events:", json!({})).await), "unmatched topic");
    let mut visitor = connect(ws_request(&server.socket_url("vsn=2.0.0"), &[])).await.expect("connects").0;
    assert_eq!(error_reason(&visitor.join("events:invoice", json!({})).await), "unauthorized");

    let event = ResourceEvent::new("invoice", Action::Created).scope("acme").field("invoice_id", "inv-7");
    engine.events.broadcast(event).unwrap();
    for topic in ["events:invoice", "events:invoice:acme"] {
        let push = acme.event(topic, "invoice_created").await;
        assert_eq!(push[4], json!({"invoice_id": "inv-7", "type": "invoice_created"}), "{topic}");
    }

    let refused = acme.push("events:invoice", "invoice_created", json!({"forged": true})).await;
    assert!(error_reason(&refused).contains("only sends"), "{refused}");
}
