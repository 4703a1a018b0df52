//! The page frame shared by the server-rendered pages: document head, our own small stylesheet, header.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::storage::User;

const STYLE: &str = r#"
:root { --ink: #1d2433; --muted: #5b6476; --line: #d9dee8; --accent: #2f5bd3; --bad: #b42318; --bg: #f6f7fb; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
header { display: flex; align-items: center; justify-content: space-between; padding: 0.75rem 1.5rem; background: #fff; border-bottom: 1px solid var(--line); }
header .brand { font-weight: 700; letter-spacing: 0.02em; }
main { max-width: 960px; margin: 2rem auto; padding: 0 1.5rem; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 1.5rem; }
.narrow { max-width: 380px; margin: 4rem auto; }
h1 { font-size: 1.4rem; margin: 0 0 1rem; }
label { display: block; font-weight: 600; margin: 0.9rem 0 0.3rem; }
input[type=email], input[type=password], input[type=text] { width: 100%; padding: 0.55rem 0.7rem; border: 1px solid var(--line); border-radius: 6px; font: inherit; }
input:focus { outline: 2px solid var(--accent); outline-offset: 1px; }
button { margin-top: 1.2rem; padding: 0.55rem 1.1rem; border: 0; border-radius: 6px; background: var(--accent); color: #fff; font: inherit; font-weight: 600; cursor: pointer; }
button.link { background: none; color: var(--accent); padding: 0; margin: 0; }
.error { color: var(--bad); background: #fef3f2; border: 1px solid #fecdca; padding: 0.5rem 0.75rem; border-radius: 6px; }
.muted { color: var(--muted); }
"#;

/// A full page titled `title` with `body` inside `<main>`.
pub fn page(title: &str, user: Option<&User>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · livebaton" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    span.brand { "livebaton" }
                    @if let Some(user) = user {
                        span.muted { (user.name) " (" (user.role) ") · " a href="/admin/logout" { "Sign out" } }
                    }
                }
                main { (body) }
            }
        }
    }
}
