//! [`LivePage`]: a live page opened as a browser opens it, and used as a person uses it.

use serde_json::{Map, Value, json};

use crate::http::{Answer, get};
use crate::peer::{Peer, connect, ws_request};
use crate::server::TestServer;

/// A live page: the static render of `GET path` (with the request's headers: cookies), then its view joined over a
/// socket opened with the same headers, with the page's signed token. Keeps the view's regions as the last render and
/// the diffs since left them.
pub struct LivePage {
    peer: Peer,
    topic: String,
    /// The page's first, static render.
    pub page: Answer,
    regions: Map<String, Value>,
    /// The view's title, as last sent.
    pub title: Option<String>,
}

/// What the view answered an event: the regions that changed (already applied to the page), and what else it said.
#[derive(Clone, Debug, Default)]
pub struct EventReply {
    /// The regions whose HTML changed.
    pub regions: Map<String, Value>,
    /// Flash messages (`kind → message`).
    pub flash: Map<String, Value>,
    /// A full-page redirect (`{to}`), if the view asked for one.
    pub redirect: Option<String>,
    /// A live navigation (`{to}`), if the view asked for one.
    pub navigate: Option<String>,
}

impl EventReply {
    fn of(response: &Value) -> Self {
        let object = |name: &str| response.get(name).and_then(Value::as_object).cloned().unwrap_or_default();
        let to = |name: &str| response.get(name)?.get("to")?.as_str().map(str::to_owned);
        EventReply {
            regions: object("regions"),
            flash: object("flash"),
            redirect: to("redirect"),
            navigate: to("navigate"),
        }
    }

    /// Region `id`'s new HTML, or "" when it did not change.
    pub fn region(&self, id: &str) -> &str {
        self.regions.get(id).and_then(Value::as_str).unwrap_or_default()
    }

    /// The flash of `kind` (`info`, `error`), or "".
    pub fn flash(&self, kind: &str) -> &str {
        self.flash.get(kind).and_then(Value::as_str).unwrap_or_default()
    }
}

impl LivePage {
    /// Opens `path` on `server` with request `headers` (`("cookie", "a=b")`), in a browser tab with id `tab-1`.
    ///
    /// # Errors
    /// The page's answer when it is not a live page (a redirect to sign in, a 404).
    pub async fn open(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Result<LivePage, Answer> {
        Self::open_in_tab(server, path, headers, "tab-1").await
    }

    /// [`LivePage::open`] in the browser tab `tab_id` (a reload of the same tab reclaims its place).
    ///
    /// # Errors
    /// As [`LivePage::open`].
    pub async fn open_in_tab(
        server: &TestServer,
        path: &str,
        headers: &[(&str, &str)],
        tab_id: &str,
    ) -> Result<LivePage, Answer> {
        let lines: Vec<String> = headers.iter().map(|(name, value)| format!("{name}: {value}")).collect();
        let line_refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let page = get(server.address(), path, &line_refs).await;
        let (Some(view), Some(token)) = (page.attribute("data-lb-view"), page.attribute("data-lb-token")) else {
            return Err(page);
        };
        // The page's connect params, as the client reads them from its meta (written escaped in the HTML).
        let connect_params = page.attribute(r#"name="lb-connect" content"#).unwrap_or_default().replace("&amp;", "&");
        let query =
            if connect_params.is_empty() { "vsn=2.0.0".to_owned() } else { format!("vsn=2.0.0&{connect_params}") };
        let (mut peer, _) = connect(ws_request(&server.socket_url(&query), headers))
            .await
            .unwrap_or_else(|refusal| panic!("the socket of {path} was refused: {refusal:?}"));
        let topic = format!("lv:{view}");
        let reply = peer.join(&topic, json!({"token": token, "tab_id": tab_id})).await;
        assert_eq!(reply[4]["status"], "ok", "joining {topic} failed: {reply}");
        let response = &reply[4]["response"];
        let regions = response["rendered"]["regions"].as_object().cloned().unwrap_or_default();
        let title = response["title"].as_str().map(str::to_owned);
        Ok(LivePage { peer, topic, page, regions, title })
    }

    /// The `lv:<view>` topic the page joined.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Region `id`'s HTML as it is now ("" when the view has no such region).
    pub fn region(&self, id: &str) -> &str {
        self.regions.get(id).and_then(Value::as_str).unwrap_or_default()
    }

    /// The socket, for what the page does not cover (a channel of its own on the same socket).
    pub fn peer(&mut self) -> &mut Peer {
        &mut self.peer
    }

    fn apply(&mut self, regions: &Map<String, Value>) {
        for (id, html) in regions {
            self.regions.insert(id.clone(), html.clone());
        }
    }

    /// Sends a client event (`type` `click`, `change` or `submit`) and returns the view's answer.
    pub async fn event(&mut self, kind: &str, event: &str, value: Value) -> EventReply {
        let topic = self.topic.clone();
        let reply = self.peer.push(&topic, "event", json!({"type": kind, "event": event, "value": value})).await;
        assert_eq!(reply[4]["status"], "ok", "the event {event} failed: {reply}");
        let answer = EventReply::of(&reply[4]["response"]);
        self.apply(&answer.regions);
        if let Some(title) = reply[4]["response"]["title"].as_str() {
            self.title = Some(title.to_owned());
        }
        answer
    }

    /// A `phx-click` of `event` with its `phx-value-*` object.
    pub async fn click(&mut self, event: &str, value: Value) -> EventReply {
        self.event("click", event, value).await
    }

    /// A `phx-change` of the form's `event` with its values (an object of strings).
    pub async fn change(&mut self, event: &str, form: Value) -> EventReply {
        self.event("change", event, form).await
    }

    /// A `phx-submit` of the form's `event` with its values.
    pub async fn submit(&mut self, event: &str, form: Value) -> EventReply {
        self.event("submit", event, form).await
    }

    /// The next diff pushed to the page (applied to its regions).
    pub async fn next_diff(&mut self) -> EventReply {
        let topic = self.topic.clone();
        let push = self.peer.event(&topic, "diff").await;
        let diff = EventReply::of(&push[4]);
        self.apply(&diff.regions);
        diff
    }

    /// Applies the diffs pushed to the page, in order, until region `id` contains `text`; the region's HTML then.
    pub async fn diff_until(&mut self, id: &str, text: &str) -> String {
        let deadline = tokio::time::Instant::now() + crate::WAIT;
        while !self.region(id).contains(text) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "region {id} never contained {text:?}: {}",
                self.region(id)
            );
            self.next_diff().await;
        }
        self.region(id).to_owned()
    }

    /// Leaves the view (as following a link does): its presences end at once.
    pub async fn leave(&mut self) {
        let topic = self.topic.clone();
        let reply = self.peer.push(&topic, "phx_leave", json!({})).await;
        assert_eq!(reply[4]["status"], "ok", "leaving {topic} failed: {reply}");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::EventReply;

    #[test]
    fn an_event_reply_reads_regions_flash_and_navigation() {
        let reply = EventReply::of(&json!({
            "regions": {"count": "<b>1</b>"},
            "flash": {"error": "Not saved"},
            "redirect": {"to": "/login"},
        }));
        assert_eq!((reply.region("count"), reply.region("other")), ("<b>1</b>", ""));
        assert_eq!((reply.flash("error"), reply.flash("info")), ("Not saved", ""));
        assert_eq!((reply.redirect.as_deref(), reply.navigate.as_deref()), (Some("/login"), None));
    }
}
