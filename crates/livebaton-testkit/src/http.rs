//! [`get`]: one HTTP/1.1 GET over a plain TCP stream, as raw as a test needs it (no client library between the test and
//! what the server sent).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::WAIT;

/// An HTTP answer: status, headers (names in lower case) and body.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The headers, in order, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, as text.
    pub body: String,
}

impl Answer {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// The value of the first `attribute="…"` in the body, as written (entities not decoded).
    pub fn attribute(&self, attribute: &str) -> Option<String> {
        let start = self.body.find(&format!("{attribute}=\""))? + attribute.len() + 2;
        let end = self.body[start..].find('"')? + start;
        Some(self.body[start..end].to_owned())
    }
}

/// `GET path` at `address`, with extra request header lines (`"Cookie: a=b"`). The connection closes after the
/// answer, whose body is read whole (not chunk-decoded: the servers under test answer with a length).
pub async fn get(address: SocketAddr, path: &str, headers: &[&str]) -> Answer {
    let mut stream = TcpStream::connect(address).await.expect("the server accepts");
    let extra: String = headers.iter().map(|line| format!("{line}\r\n")).collect();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n{extra}\r\n");
    stream.write_all(request.as_bytes()).await.expect("the request is sent");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw)).await.expect("an answer in time").expect("readable");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("an HTTP answer, got {text:?}"));
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status = status_line.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("a status code");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Answer { status, headers, body: body.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::Answer;

    #[test]
    fn headers_and_attributes_are_found_by_name() {
        let answer = Answer {
            status: 200,
            headers: vec![("content-type".into(), "text/html".into())],
            body: r#"<div id="lb-root" data-lb-view="notes" data-lb-token="a.b"></div>"#.into(),
        };
        assert_eq!(answer.header("content-type"), Some("text/html"));
        assert_eq!(answer.header("location"), None);
        assert_eq!(answer.attribute("data-lb-view").as_deref(), Some("notes"));
        assert_eq!(answer.attribute("data-lb-token").as_deref(), Some("a.b"));
        assert_eq!(answer.attribute("data-missing"), None);
    }
}
