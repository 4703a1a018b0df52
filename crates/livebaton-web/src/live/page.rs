//! The static page around a live view's first render: what the browser client needs to take the page over, for any
//! template engine.
//!
//! The client (served by [`client_asset`] at [`super::client_path`]) looks for three things: an element `#lb-root`
//! with the view id and its signed token, a `lb-connect` meta with the socket's connect params, and optionally a
//! `lb-sign-in` meta naming where to send a user whose socket was refused as signed out. It shows connection states in
//! `#lb-status` and flash messages in `#lb-flash` when the page has them. [`LivePage`] renders each piece escaped, so
//! an application puts [`LivePage::head`] in its own `<head>` and [`LivePage::root`] where the view goes, or takes the
//! whole minimal document from [`LivePage::document`].

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::client::{CLIENT_JS, STYLESHEET, client_path, stylesheet_path};
use super::html::Html;
use super::route::StaticPage;

/// A live view's page: its first render and what the client needs to go live. Build it from
/// [`super::LiveViewRoute::render_static`]'s answer with [`LivePage::new`].
#[derive(Clone, Debug)]
pub struct LivePage {
    /// The view id: the client joins `lv:<view>`.
    pub view: String,
    /// The signed view token the client joins with.
    pub token: String,
    /// The title the view set, if any.
    pub title: Option<String>,
    /// The socket's connect params, as pairs (sent URL-encoded on the WebSocket URL; a CSRF token, for example).
    pub connect: Vec<(String, String)>,
    /// Where the client sends a user whose socket is refused as signed out (`None`: it offers a reload instead).
    pub sign_in: Option<String>,
    /// The view's first render.
    pub body: Html,
    /// Flash messages put while mounting (`kind → message`).
    pub flash: Map<String, Value>,
}

impl LivePage {
    /// The page of view `view` rendered as `rendered`, with no connect params and no sign-in page.
    pub fn new(view: &str, rendered: StaticPage) -> Self {
        LivePage {
            view: view.to_owned(),
            token: rendered.token,
            title: rendered.title,
            connect: Vec::new(),
            sign_in: None,
            body: rendered.html,
            flash: rendered.flash,
        }
    }

    /// Adds a connect param the socket sends with its upgrade (the application's authentication reads it).
    pub fn connect_param(mut self, name: &str, value: &str) -> Self {
        self.connect.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the sign-in page the client sends a signed-out user to.
    pub fn sign_in(mut self, path: &str) -> Self {
        self.sign_in = Some(path.to_owned());
        self
    }

    /// The connect params as the client appends them to the socket's URL (`name=value&…`, URL-encoded).
    pub fn connect_query(&self) -> String {
        let pairs = self.connect.iter().map(|(name, value)| format!("{}={}", url_encode(name), url_encode(value)));
        pairs.collect::<Vec<_>>().join("&")
    }

    /// What goes in `<head>`: the connect and sign-in metas and the client's script tag (deferred, so it runs after
    /// the document is parsed; no inline script, so a strict Content-Security-Policy allows it).
    pub fn head(&self) -> Html {
        let mut head = format!(r#"<meta name="lb-connect" content="{}">"#, Html::escape(&self.connect_query()));
        if let Some(sign_in) = &self.sign_in {
            head.push_str(&format!(r#"<meta name="lb-sign-in" content="{}">"#, Html::escape(sign_in)));
        }
        head.push_str(&format!(r#"<script src="{}" defer></script>"#, client_path()));
        Html(head)
    }

    /// The root element the client takes over, with the view's first render inside.
    pub fn root(&self) -> Html {
        Html(format!(
            r#"<div id="lb-root" data-lb-view="{}" data-lb-token="{}">{}</div>"#,
            Html::escape(&self.view),
            Html::escape(&self.token),
            self.body
        ))
    }

    /// The connection status line and the flash area (with the flash messages put while mounting), for a page that
    /// wants the client to show them; place them above [`LivePage::root`].
    pub fn status_and_flash(&self) -> Html {
        let mut html = String::from(r#"<div id="lb-status" class="lb-status" role="status" hidden></div>"#);
        html.push_str(r#"<div id="lb-flash" class="lb-flash">"#);
        for (kind, message) in &self.flash {
            let Some(message) = message.as_str() else { continue };
            let role = if kind == "error" { "alert" } else { "status" };
            html.push_str(&format!(
                r#"<div class="flash flash-{}" role="{role}">{}<button class="flash-close" type="button" aria-label="Dismiss">×</button></div>"#,
                Html::escape(kind),
                Html::escape(message)
            ));
        }
        html.push_str("</div>");
        Html(html)
    }

    /// A whole minimal document: `<head>` with the title, [`LivePage::head`] and `stylesheets` (paths: the default
    /// look is [`stylesheet_path`]), and a `<body>` with [`LivePage::status_and_flash`] and [`LivePage::root`].
    /// Enough for a small app; a larger one puts the pieces in its own layout.
    pub fn document(&self, stylesheets: &[&str]) -> Html {
        let title = Html::escape(self.title.as_deref().unwrap_or(""));
        let links: String = stylesheets
            .iter()
            .map(|path| format!(r#"<link rel="stylesheet" href="{}">"#, Html::escape(path)))
            .collect();
        Html(format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>{links}{}\
             </head><body data-lb-state=\"static\">{}<main>{}</main></body></html>",
            self.head(),
            self.status_and_flash(),
            self.root()
        ))
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn url_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => encoded.push(char::from(byte)),
            other => encoded.push_str(&format!("%{other:02X}")),
        }
    }
    encoded
}

/// An axum handler for `GET /assets/{file}` that serves the browser client at [`client_path`] and the default
/// stylesheet at [`stylesheet_path`], cacheable for ever (their paths change with their content), and 404 for
/// anything else: `router.route("/assets/{file}", get(client_asset))`.
pub async fn client_asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let asset = |path: &'static str| path.strip_prefix("/assets/") == Some(file.as_str());
    let (content_type, body) = if asset(client_path()) {
        ("text/javascript; charset=utf-8", CLIENT_JS)
    } else if asset(stylesheet_path()) {
        ("text/css; charset=utf-8", STYLESHEET)
    } else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let headers =
        [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=31536000, immutable")];
    (headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> LivePage {
        let rendered = StaticPage {
            html: Html::new("<p>hi</p>"),
            title: Some("A <b> & \"c\"".into()),
            token: "t\"><script>".into(),
            flash: Map::from_iter([("info".to_owned(), Value::from("<i>saved</i>"))]),
        };
        LivePage::new("notes\"", rendered).connect_param("_csrf_token", "a b&c=d").sign_in("/login?next=\"x\"")
    }

    #[test]
    fn every_value_is_escaped_where_it_is_placed() {
        let page = page();
        let root = page.root().into_string();
        assert_eq!(
            root,
            r#"<div id="lb-root" data-lb-view="notes&quot;" data-lb-token="t&quot;&gt;&lt;script&gt;"><p>hi</p></div>"#
        );
        let head = page.head().into_string();
        assert!(head.starts_with(r#"<meta name="lb-connect" content="_csrf_token=a%20b%26c%3Dd">"#), "{head}");
        assert!(head.contains(r#"<meta name="lb-sign-in" content="/login?next=&quot;x&quot;">"#), "{head}");
        assert!(head.ends_with(&format!(r#"<script src="{}" defer></script>"#, client_path())), "{head}");
        let document = page.document(&["/style.css"]).into_string();
        assert!(document.contains("<title>A &lt;b&gt; &amp; &quot;c&quot;</title>"), "{document}");
        assert!(document.contains("&lt;i&gt;saved&lt;/i&gt;") && !document.contains("<i>saved"), "{document}");
        assert!(document.contains(r#"<link rel="stylesheet" href="/style.css">"#));
        assert!(document.contains(&root), "the root is in the document");
    }

    #[tokio::test]
    async fn the_client_is_served_at_its_hashed_path_only() {
        let file = client_path().trim_start_matches("/assets/").to_owned();
        let response = client_asset(axum::extract::Path(file)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
        let css = stylesheet_path().trim_start_matches("/assets/").to_owned();
        let response = client_asset(axum::extract::Path(css)).await;
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/css; charset=utf-8");
        let response = client_asset(axum::extract::Path("livebaton-0000000000000000.js".into())).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
