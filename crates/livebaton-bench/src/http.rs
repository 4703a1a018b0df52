//! The few HTTP requests the tool makes (tokens, a record id, metrics): HTTP/1.1 with `Connection: close` over a
//! plain `TcpStream`, bounded to 60 s each.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `POST /api/tokens`: the bearer token of `email`.
pub async fn create_token(addr: &str, email: &str, password: &str) -> anyhow::Result<String> {
    let body = json!({"email": email, "password": password}).to_string();
    let value: Value = serde_json::from_str(&request(addr, "POST", "/api/tokens", None, Some(&body)).await?)
        .context("POST /api/tokens: the body is not JSON")?;
    value["token"].as_str().map(str::to_owned).context("POST /api/tokens: no token in the response")
}

/// `GET path` with a bearer token, as JSON.
pub async fn get_json(addr: &str, path: &str, token: &str) -> anyhow::Result<Value> {
    let body = request(addr, "GET", path, Some(token), None).await?;
    serde_json::from_str(&body).with_context(|| format!("GET {path}: the body is not JSON"))
}

/// `GET /metrics`: the Prometheus text.
pub async fn metrics(addr: &str) -> anyhow::Result<String> {
    request(addr, "GET", "/metrics", None, None).await
}

/// The value of the series `name` (exact, labels included) in Prometheus text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// One request; the body of a 200 answer, an error otherwise.
async fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> anyhow::Result<String> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    let request = format!("{head}\r\n{}", body.unwrap_or_default());
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        anyhow::Ok(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .with_context(|| format!("{method} {path} timed out"))?
        .with_context(|| format!("{method} {path}"))?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) =
        response.split_once("\r\n\r\n").with_context(|| format!("{method} {path}: malformed response"))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        bail!("{method} {path}: {status}: {body}");
    }
    if head.lines().any(|line| line.eq_ignore_ascii_case("transfer-encoding: chunked")) {
        return Ok(dechunk(body));
    }
    Ok(body.to_owned())
}

/// The body of a `Transfer-Encoding: chunked` answer.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].strip_prefix("\r\n").unwrap_or(&rest[size..]);
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters (for the token in the query string).
pub fn percent_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_percent_encoded() {
        assert_eq!(percent_encode("lb1.ab-c_d~e"), "lb1.ab-c_d~e");
        assert_eq!(percent_encode("a+b/c="), "a%2Bb%2Fc%3D");
    }

    #[test]
    fn chunked_bodies_and_metrics_are_read() {
        assert_eq!(dechunk("5\r\nhello\r\n3\r\n ok\r\n0\r\n\r\n"), "hello ok");
        let text = "# HELP x\nlivebaton_owner_handoff_seconds_count 12\nlivebaton_owner_handoff_seconds_sum 0.5\n";
        assert_eq!(metric(text, "livebaton_owner_handoff_seconds_count"), Some(12.0));
        assert_eq!(metric(text, "livebaton_owner_handoff_seconds_sum"), Some(0.5));
        assert_eq!(metric(text, "livebaton_owner_handoff_seconds"), None);
    }
}
