//! What the examples share and a real application would do its own way: a stand-in sign-in (a name picked on a form,
//! kept in a cookie), a secret for the view tokens, and serving until Ctrl-C.

#![allow(dead_code, reason = "each example uses part of it")]

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use livebaton_web::app::{Authentication, Caller, CallerKind, LiveHandle};
use livebaton_web::channel::UserInfo;
use livebaton_web::live::percent_decode;

/// The application's own record of a user: what its sign-in gives, carried by the socket to every view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The name they picked.
    pub name: String,
    /// A colour for their badge, drawn from the name.
    pub color: &'static str,
}

impl Member {
    /// The member called `name`.
    pub fn named(name: &str) -> Member {
        const COLORS: [&str; 5] = ["teal", "plum", "amber", "slate", "coral"];
        let index = name.bytes().map(usize::from).sum::<usize>() % COLORS.len();
        Member { name: name.to_owned(), color: COLORS[index] }
    }
}

/// The longest name one may pick.
const MAX_NAME: usize = 40;

/// Who calls: the member named by the `member` cookie (here anyone may pick any name; a real application checks a
/// session). Pages without it go to `/join`; sockets without it are refused.
pub async fn authenticate(caller: Caller) -> Authentication {
    let cookies = caller.headers.get_all(header::COOKIE).iter().filter_map(|value| value.to_str().ok());
    let name = cookies
        .flat_map(|cookies| cookies.split(';'))
        .find_map(|cookie| cookie.trim().strip_prefix("member="))
        .map(percent_decode)
        .filter(|name| !name.trim().is_empty() && name.chars().count() <= MAX_NAME);
    match (name, caller.kind) {
        (Some(name), _) => Ok(Some(UserInfo::new(&name, &name, "", "member").with_data(Member::named(&name)))),
        (None, CallerKind::Page) => Err(Redirect::to("/join").into_response()),
        (None, CallerKind::Socket) => Err((StatusCode::FORBIDDEN, "pick a name first").into_response()),
    }
}

/// `GET /join?name=…`: sets the `member` cookie and goes to `/`; without a name, the form to pick one.
pub async fn join(axum::extract::Query(query): axum::extract::Query<Vec<(String, String)>>) -> Response {
    let name = query.into_iter().find(|(key, _)| key == "name").map(|(_, name)| name.trim().to_owned());
    match name.filter(|name| !name.is_empty() && name.chars().count() <= MAX_NAME) {
        Some(name) => {
            let encoded: String = name
                .bytes()
                .map(|byte| match byte {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => char::from(byte).to_string(),
                    other => format!("%{other:02X}"),
                })
                .collect();
            let cookie = format!("member={encoded}; Path=/; HttpOnly; SameSite=Lax");
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        None => axum::response::Html(format!(
            r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Pick a name</title>
<link rel="stylesheet" href="{}"></head><body><h1>Pick a name</h1>
<form action="/join" method="get"><label>Your name <input name="name" maxlength="40" required></label>
<div class="actions"><button>Enter</button></div></form></body></html>"#,
            livebaton_web::live::stylesheet_path()
        ))
        .into_response(),
    }
}

/// The secret view tokens are signed with: `SECRET` from the environment, or 32 bytes drawn at start (from the
/// standard library's per-process random hash keys: an example needs no crate for this), which makes open pages
/// reload after a restart. Keep one secret for every node of a deployment.
pub fn secret() -> Vec<u8> {
    use std::hash::{BuildHasher, RandomState};
    std::env::var("SECRET")
        .map(String::into_bytes)
        .unwrap_or_else(|_| (0..4u64).flat_map(|part| RandomState::new().hash_one(part).to_le_bytes()).collect())
}

/// Serves `app` on `127.0.0.1:$PORT` (4000 by default) until Ctrl-C, then closes the live sockets.
pub async fn serve(name: &str, app: axum::Router, handle: LiveHandle) -> std::io::Result<()> {
    let port = std::env::var("PORT").ok().and_then(|port| port.parse().ok()).unwrap_or(4000u16);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("{name} on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            handle.shutdown();
        })
        .await
}
