//! An editing session for the `handoff` and `form-sync` scenarios: editors, each its own user with role `editor`
//! and its own connection, on `edit:data:<id>` of the first demo record (`docs/protocol.md` §5.4).
//!
//! Each editor is a task that obeys [`Command`]s and reports what it sends and receives as [`Report`]s, stamped
//! with the moment the frame was sent or read. The scenario drives the session from one place and computes the
//! latencies from the stamps.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::cli::ServerArgs;
use crate::client::Conn;
use crate::protocol::phoenix::PhoenixV2;
use crate::protocol::{Incoming, Protocol};
use crate::scenarios::tokens_for;
use crate::server::{Launch, Server, User};

/// The users of a session of `count` editors.
pub fn editor_users(count: usize) -> Vec<User> {
    (0..count).map(|index| User::new(&format!("editor-{index}"), "editor")).collect()
}

/// Starts the server with the demo content and the editors' accounts. Event limits are raised so that the
/// scenario's pace, not the rate limiter, decides.
pub async fn start_server(args: &ServerArgs, users: &[User]) -> anyhow::Result<Server> {
    anyhow::ensure!(
        args.server == crate::cli::ServerKind::Livebaton,
        "handoff and form-sync measure livebaton's collaborative editing, which the peers do not have"
    );
    let flags = ["--events-per-second", "10000", "--event-burst", "10000"].map(str::to_owned).to_vec();
    Server::start(Launch { args, demo: true, users, flags, database_url: None }).await
}

/// What an editor is told to do.
#[derive(Debug)]
pub enum Command {
    /// Join (again) with the editor's tab id.
    Join,
    /// `phx_leave`.
    Leave,
    /// Send `draft` with params marked with `round`.
    Draft { round: u64 },
}

/// What an editor sent or received, and when.
#[derive(Debug)]
pub enum Report {
    /// The join's reply: `role` is `owner` or `spectator`.
    Joined {
        editor: usize,
        role: String,
        at: Instant,
    },
    LeaveSent {
        editor: usize,
        at: Instant,
    },
    /// `phx_close` or `phx_error`.
    Closed {
        editor: usize,
        event: String,
    },
    /// A `role` push.
    Role {
        editor: usize,
        role: String,
        reason: String,
        at: Instant,
    },
    /// The owner wrote its `draft` frame.
    DraftSent {
        round: u64,
        at: Instant,
    },
    /// The owner's reply to it.
    DraftReply {
        round: u64,
        ok: bool,
        response: Value,
        at: Instant,
    },
    /// A `draft` push carrying `round`'s params.
    DraftSeen {
        editor: usize,
        round: u64,
        at: Instant,
    },
    /// A refused join, or the connection ended.
    Failed {
        editor: usize,
        reason: String,
    },
}

/// A running session.
pub struct Session {
    pub topic: String,
    editors: Vec<mpsc::UnboundedSender<Command>>,
    reports: mpsc::UnboundedReceiver<Report>,
    tasks: Vec<JoinHandle<()>>,
}

impl Session {
    /// Signs the editors in, connects them and joins them one after the other, so their place in line is their
    /// index: editor 0 owns. Editor `i` connects to `nodes[i % nodes.len()]` (one address for a single node; the
    /// `cross-node` scenario passes two); `server` is where the record is looked up and the editors sign in.
    pub async fn open(
        server: &Server,
        nodes: &[&str],
        users: &[User],
        quickack: bool,
        bound: Duration,
    ) -> anyhow::Result<Session> {
        anyhow::ensure!(!nodes.is_empty(), "an editing session needs at least one node");
        let protocol: Arc<dyn Protocol> = Arc::new(PhoenixV2);
        let admin = server.admin_token().await?;
        let records = crate::http::get_json(&server.addr, "/api/entities/article/records", &admin).await?;
        let record_id = records["records"][0]["id"].as_i64().context("no demo record: is the demo content seeded?")?;
        let topic = format!("edit:data:{record_id}");
        let tokens = tokens_for(&server.addr, users, bound).await?;
        let (report_tx, reports) = mpsc::unbounded_channel();
        let mut session = Session { topic, editors: Vec::new(), reports, tasks: Vec::new() };
        for (index, token) in tokens.iter().enumerate() {
            let mut conn = Conn::connect(protocol.clone(), nodes[index % nodes.len()], token).await?;
            conn.set_quickack(quickack);
            let (commands, command_rx) = mpsc::unbounded_channel();
            let editor = Editor { index, conn, topic: session.topic.clone(), reports: report_tx.clone() };
            session.tasks.push(tokio::spawn(editor.run(command_rx)));
            session.editors.push(commands);
        }
        for index in 0..users.len() {
            session.send(index, Command::Join)?;
            let deadline = Instant::now() + bound;
            loop {
                match session.next(deadline).await? {
                    Report::Joined { editor, role, .. } if editor == index => {
                        let expected = if index == 0 { "owner" } else { "spectator" };
                        if role != expected {
                            bail!("editor {index} joined as {role}, not {expected}");
                        }
                        break;
                    }
                    Report::Failed { editor, reason } => bail!("editor {editor}: {reason}"),
                    _ => {}
                }
            }
        }
        // The first owner's `role` push (`first`) and the presence traffic of the joins.
        session.drain(Duration::from_millis(200)).await?;
        Ok(session)
    }

    pub fn send(&self, editor: usize, command: Command) -> anyhow::Result<()> {
        self.editors[editor].send(command).ok().with_context(|| format!("editor {editor} has stopped"))
    }

    /// The next report, or an error at `deadline`.
    pub async fn next(&mut self, deadline: Instant) -> anyhow::Result<Report> {
        tokio::time::timeout_at(deadline.into(), self.reports.recv())
            .await
            .context("timed out waiting for the editors")?
            .context("every editor has stopped")
    }

    /// Discards reports until none has come for `quiet`; a failure is an error.
    pub async fn drain(&mut self, quiet: Duration) -> anyhow::Result<()> {
        while let Ok(report) = tokio::time::timeout(quiet, self.reports.recv()).await {
            match report {
                Some(Report::Failed { editor, reason }) => bail!("editor {editor}: {reason}"),
                Some(_) => {}
                None => bail!("every editor has stopped"),
            }
        }
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(self) {
        drop(self.editors);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

/// The params of round `round`'s draft: a whole record form, as the admin page sends it.
pub fn draft_params(round: u64) -> Value {
    json!({
        "title": format!("Bench draft {round}"),
        "status": "draft",
        "data": {"summary": format!("Typed in round {round}."), "bench_round": round},
    })
}

enum Pending {
    Join,
    Leave,
    Draft(u64),
}

struct Editor {
    index: usize,
    conn: Conn,
    topic: String,
    reports: mpsc::UnboundedSender<Report>,
}

impl Editor {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let index = self.index;
        let tab_id = json!({"tab_id": format!("bench-tab-{index}")});
        let mut join_ref = None;
        let mut pending = HashMap::new();
        loop {
            tokio::select! {
                command = commands.recv() => {
                    let Some(command) = command else { break };
                    let sent = match command {
                        Command::Join => self.conn.join(&self.topic, &tab_id).await.map(|reference| {
                            join_ref = Some(reference);
                            pending.insert(reference, Pending::Join);
                        }),
                        Command::Leave => {
                            let at = Instant::now();
                            let left = self.conn.leave(&self.topic, join_ref.unwrap_or_default()).await;
                            self.report(Report::LeaveSent { editor: index, at });
                            left.map(|reference| {
                                pending.insert(reference, Pending::Leave);
                            })
                        }
                        Command::Draft { round } => {
                            let payload = json!({"params": draft_params(round)});
                            let at = Instant::now();
                            let pushed =
                                self.conn.push(&self.topic, join_ref.unwrap_or_default(), "draft", &payload).await;
                            self.report(Report::DraftSent { round, at });
                            pushed.map(|reference| {
                                pending.insert(reference, Pending::Draft(round));
                            })
                        }
                    };
                    if let Err(error) = sent {
                        self.report(Report::Failed { editor: index, reason: format!("{error:#}") });
                        break;
                    }
                }
                received = self.conn.recv() => {
                    let received = match received {
                        Ok(received) => received,
                        Err(ended) => {
                            self.report(Report::Failed { editor: index, reason: ended.to_string() });
                            return;
                        }
                    };
                    let at = received.at;
                    match self.conn.protocol().decode(received.text.as_str()) {
                        Incoming::Reply { reference: Some(reference), ok, response, .. } => {
                            let reference = reference.parse::<u64>().unwrap_or_default();
                            match pending.remove(&reference) {
                                Some(Pending::Join) if ok => {
                                    let role = response["role"].as_str().unwrap_or_default().to_owned();
                                    self.report(Report::Joined { editor: index, role, at });
                                }
                                Some(Pending::Join) => {
                                    self.report(Report::Failed { editor: index, reason: format!("join refused: {response}") });
                                }
                                Some(Pending::Draft(round)) => {
                                    self.report(Report::DraftReply { round, ok, response, at });
                                }
                                Some(Pending::Leave) | None => {}
                            }
                        }
                        Incoming::Closed { event, .. } => {
                            self.report(Report::Closed { editor: index, event: event.to_owned() });
                        }
                        Incoming::Event { event: "role", payload, .. } => {
                            let payload: Value = serde_json::from_str(payload).unwrap_or_default();
                            let role = payload["role"].as_str().unwrap_or_default().to_owned();
                            let reason = payload["reason"].as_str().unwrap_or_default().to_owned();
                            self.report(Report::Role { editor: index, role, reason, at });
                        }
                        Incoming::Event { event: "draft", payload, .. } => {
                            let payload: Value = serde_json::from_str(payload).unwrap_or_default();
                            if let Some(round) = payload["params"]["data"]["bench_round"].as_u64() {
                                self.report(Report::DraftSeen { editor: index, round, at });
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        self.conn.close().await;
    }

    fn report(&self, report: Report) {
        let _ = self.reports.send(report);
    }
}
