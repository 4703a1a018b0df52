//! Churn over real sockets, the small version of `livebaton-bench churn`: clients stay in a room while many more
//! connect, join and go away, and afterwards every roster lists exactly the clients that stayed.
//!
//! The whole admin application runs on 127.0.0.1:0 (`support/live.rs`) with the default presence settings (adaptive
//! coalescing) and a short leave grace. Each client here is a raw Phoenix V2 WebSocket that reads every frame and
//! keeps the room's presence list as phoenix.js does (a `presence_state` replaces it, a `presence_diff` adds its
//! joins, then removes its leaves).

#[path = "support/live.rs"]
#[allow(dead_code)] // This suite uses a few of the shared helpers.
mod live_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use live_support::{LiveServer, WAIT, Ws, eventually, start};
use livebaton_admin::accounts::Role;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// The room every client joins.
const TOPIC: &str = "room:churn";
/// Clients that join first and stay.
const STAY: usize = 50;
/// Connect → join → leave-or-close cycles.
const CYCLES: usize = 500;
/// Cycles at once.
const CONCURRENCY: usize = 25;
/// The presence leave grace: closed and dropped clients stay listed this long.
const GRACE: Duration = Duration::from_millis(200);

/// A presence list as phoenix.js keeps it: key → the `phx_ref`s of its metas.
type Listed = BTreeMap<String, BTreeSet<String>>;

/// 50 clients stay in a room while 500 connect, join, and then leave with `phx_leave` (half of them), close the
/// socket with a close frame (a quarter) or drop the connection without one (a quarter), 25 at a time. After the leave
/// grace, each staying client's list, a fresh client's list and the server's own roster hold exactly the staying
/// clients: no cycling client is left behind as a ghost, and no staying one went missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_churn_every_roster_is_exactly_the_clients_that_stayed() {
    let server = start(GRACE, Vec::new()).await;
    let stay_user = server.user("stay@example.com", "Stay", Role::Viewer).await;
    let cycle_user = server.user("cycle@example.com", "Cycle", Role::Viewer).await;
    let observer_user = server.user("observer@example.com", "Observer", Role::Viewer).await;
    let (stay_key, cycle_key) = (stay_user.id.to_string(), cycle_user.id.to_string());
    let stay_token = server.token(&stay_user).await;

    let mut stayers = Vec::new();
    for _ in 0..STAY {
        stayers.push(Member::join(&server, &stay_token).await);
    }
    let only_stayers: Listed = [(stay_key.clone(), server_refs(&server, &stay_key))].into();
    assert_eq!(only_stayers[&stay_key].len(), STAY, "the server lists every staying client once");
    eventually("every staying client lists exactly the staying clients", || {
        stayers.iter().all(|member| member.listed() == only_stayers)
    })
    .await;

    let cycle_token = server.token(&cycle_user).await;
    let endings = futures_util::stream::iter(0..CYCLES)
        .map(|cycle| {
            let (server, token) = (&server, &cycle_token);
            async move { Ending::of(cycle).run(server, token).await }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(endings.len(), CYCLES);
    assert!(
        stayers[0].seen_keys().contains(&cycle_key),
        "the staying clients saw cycling clients join (the cycles really churned the room)"
    );

    // After the grace every list settles on the staying clients, and stays there.
    tokio::time::sleep(GRACE).await;
    eventually("the server's roster is exactly the staying clients", || {
        server.state.engine.presence.sorted(TOPIC).len() == STAY
    })
    .await;
    eventually("every staying client's list is exactly the staying clients", || {
        stayers.iter().all(|member| member.listed() == only_stayers)
    })
    .await;
    tokio::time::sleep(GRACE * 2).await;
    assert_eq!(server_refs(&server, &stay_key), only_stayers[&stay_key], "the server's roster stays the same");
    assert!(server.state.engine.presence.sorted(TOPIC).iter().all(|(key, _)| **key == *stay_key));
    for (index, member) in stayers.iter().enumerate() {
        assert_eq!(member.listed(), only_stayers, "staying client {index}'s list");
    }

    // A client that joins now is told the same.
    let observer = Member::join(&server, &server.token(&observer_user).await).await;
    let mut expected = only_stayers.clone();
    expected.insert(observer_user.id.to_string(), server_refs(&server, &observer_user.id.to_string()));
    eventually("a fresh client lists the staying clients and itself", || observer.listed() == expected).await;
}

/// The `phx_ref`s the server's roster lists under `key`.
fn server_refs(server: &LiveServer, key: &str) -> BTreeSet<String> {
    let sorted = server.state.engine.presence.sorted(TOPIC);
    sorted.iter().filter(|(listed, _)| **listed == *key).map(|(_, meta)| meta.phx_ref.to_string()).collect()
}

/// How a cycling client goes away, by its cycle number.
#[derive(Clone, Copy)]
enum Ending {
    /// `phx_leave` (its reply awaited), then a close frame: the entry leaves at once.
    Leave,
    /// A close frame without leaving: the entry leaves after the grace.
    Close,
    /// The TCP connection dropped without a close frame: the entry leaves after the grace.
    Drop,
}

impl Ending {
    fn of(cycle: usize) -> Ending {
        match cycle % 4 {
            0 | 2 => Ending::Leave,
            1 => Ending::Close,
            _ => Ending::Drop,
        }
    }

    /// One cycle: connect, join (reply awaited), go away.
    async fn run(self, server: &LiveServer, token: &str) {
        let mut ws = open(server, token).await;
        send(&mut ws, json!(["1", "1", TOPIC, "phx_join", {}])).await;
        reply(&mut ws, "1").await;
        match self {
            Ending::Leave => {
                send(&mut ws, json!(["1", "2", TOPIC, "phx_leave", {}])).await;
                reply(&mut ws, "2").await;
                close(ws).await;
            }
            Ending::Close => close(ws).await,
            Ending::Drop => drop(ws),
        }
    }
}

async fn open(server: &LiveServer, token: &str) -> Ws {
    let url = server.ws_url(&format!("vsn=2.0.0&token={token}"));
    tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("the upgrade is answered in time")
        .expect("the upgrade succeeds")
        .0
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.expect("the frame is sent");
}

/// Reads until the `ok` reply to `reference` on the room (other frames are skipped).
async fn reply(ws: &mut Ws, reference: &str) {
    let wait = async {
        while let Some(message) = ws.next().await {
            if let Message::Text(text) = message.expect("the socket stays open") {
                let frame: Value = serde_json::from_str(&text).expect("frames are JSON");
                if frame[1] == reference && frame[3] == "phx_reply" {
                    assert_eq!(frame[4]["status"], "ok", "{frame}");
                    return;
                }
            }
        }
        panic!("the socket ended before the reply to {reference}");
    };
    tokio::time::timeout(WAIT, wait).await.expect("the reply arrives in time");
}

/// Sends a close frame and reads until the server's answer (or the end of the stream).
async fn close(mut ws: Ws) {
    let _ = ws.send(Message::Close(None)).await;
    let drain = async { while let Some(Ok(_)) = ws.next().await {} };
    tokio::time::timeout(WAIT, drain).await.expect("the server answers the close in time");
}

/// A client that joined the room and keeps reading it.
struct Member {
    /// Its list, written by its reading task after each frame; a std `Mutex` never held across an `.await`.
    listed: Arc<Mutex<Listed>>,
    /// Every key it was ever told joined.
    seen: Arc<Mutex<BTreeSet<String>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Member {
    /// Connects with `token`, joins the room and waits for the join reply; then reads in the background.
    async fn join(server: &LiveServer, token: &str) -> Member {
        let mut ws = open(server, token).await;
        send(&mut ws, json!(["1", "1", TOPIC, "phx_join", {}])).await;
        let listed = Arc::new(Mutex::new(Listed::new()));
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let (joined, replied) = tokio::sync::oneshot::channel();
        let reader = tokio::spawn(read(ws, listed.clone(), seen.clone(), joined));
        tokio::time::timeout(WAIT, replied).await.expect("the join is answered in time").expect("the join succeeds");
        Member { listed, seen, reader }
    }

    fn listed(&self) -> Listed {
        self.listed.lock().unwrap().clone()
    }

    fn seen_keys(&self) -> BTreeSet<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Applies the room's presence frames to `listed` until the socket ends; fails the test if the server closes it.
async fn read(
    mut ws: Ws,
    listed: Arc<Mutex<Listed>>,
    seen: Arc<Mutex<BTreeSet<String>>>,
    joined: tokio::sync::oneshot::Sender<()>,
) {
    let mut joined = Some(joined);
    while let Some(message) = ws.next().await {
        let Message::Text(text) = message.expect("a staying client is never closed") else { continue };
        let frame: Value = serde_json::from_str(&text).expect("frames are JSON");
        let mut listed = listed.lock().unwrap();
        match frame[3].as_str() {
            Some("phx_reply") if frame[1] == "1" => {
                assert_eq!(frame[4]["status"], "ok", "{frame}");
                joined.take().map(|joined| joined.send(()));
            }
            Some("presence_state") => *listed = entries(&frame[4]),
            Some("presence_diff") => {
                let (joins, leaves) = (entries(&frame[4]["joins"]), entries(&frame[4]["leaves"]));
                seen.lock().unwrap().extend(joins.keys().cloned());
                for (key, added) in joins {
                    listed.entry(key).or_default().extend(added);
                }
                for (key, removed) in leaves {
                    if let Some(refs) = listed.get_mut(&key) {
                        refs.retain(|listed| !removed.contains(listed));
                        if refs.is_empty() {
                            listed.remove(&key);
                        }
                    }
                }
            }
            Some("phx_close" | "phx_error") => panic!("the room ended for a staying client: {frame}"),
            _ => {}
        }
    }
}

/// The `phx_ref`s of a `presence_state` (or of a diff's joins or leaves), by key.
fn entries(entries: &Value) -> Listed {
    let entries = entries.as_object().expect("presence entries are an object");
    let refs = |entry: &Value| -> BTreeSet<String> {
        let metas = entry["metas"].as_array().expect("an entry has metas");
        metas.iter().map(|meta| meta["phx_ref"].as_str().expect("a meta has a phx_ref").to_owned()).collect()
    };
    entries.iter().map(|(key, entry)| (key.clone(), refs(entry))).collect()
}
