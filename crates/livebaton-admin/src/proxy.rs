//! Who sent a request when reverse proxies stand in between: the trusted proxies (`--trusted-proxies`), the
//! client's address ([`ClientAddr`]) and whether the browser's connection was HTTPS.
//!
//! The server sees its TCP peer. Behind nginx every peer is nginx, so per-address limits would lump every client
//! together. A peer inside one of the trusted networks is believed about the client: the client is the rightmost
//! address of `X-Forwarded-For` that is not itself a trusted proxy. Each trusted hop appended the address it saw;
//! whatever lies left of the first untrusted hop was written by the client and may be forged. `Forwarded` (RFC 7239)
//! is read the same way, only when no `X-Forwarded-For` came (a proxy that sends only `Forwarded` must then drop a
//! client's `X-Forwarded-For`). From any other peer both headers are ignored, so a client connecting directly cannot
//! choose its address or claim HTTPS.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::rejection::ExtensionRejection;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

/// Most forwarding hops looked at, from the right.
const MAX_HOPS: usize = 32;

/// A network in CIDR notation (`10.0.0.0/8`, `::1/128`; a bare address is a network of one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    /// The network address, host bits cleared.
    network: IpAddr,
    /// Prefix length, at most 32 (IPv4) or 128 (IPv6).
    prefix: u8,
}

/// A `--trusted-proxies` entry that is not a network.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a network: write an address with a prefix length, like 127.0.0.1/32 or ::1/128")]
pub struct InvalidNet(String);

impl IpNet {
    /// Whether `ip` lies in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => mask_v4(u32::from(ip), self.prefix) == u32::from(network),
            (IpAddr::V6(network), IpAddr::V6(ip)) => mask_v6(u128::from(ip), self.prefix) == u128::from(network),
            _ => false,
        }
    }
}

fn mask_v4(bits: u32, prefix: u8) -> u32 {
    if prefix == 0 { 0 } else { bits & (u32::MAX << (32 - u32::from(prefix))) }
}

fn mask_v6(bits: u128, prefix: u8) -> u128 {
    if prefix == 0 { 0 } else { bits & (u128::MAX << (128 - u32::from(prefix))) }
}

impl FromStr for IpNet {
    type Err = InvalidNet;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidNet(text.to_owned());
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| invalid())?;
        let address = address.to_canonical();
        let width = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().ok().filter(|prefix| *prefix <= width).ok_or_else(invalid)?,
            None => width,
        };
        let network = match address {
            IpAddr::V4(v4) => IpAddr::V4(mask_v4(u32::from(v4), prefix).into()),
            IpAddr::V6(v6) => IpAddr::V6(mask_v6(u128::from(v6), prefix).into()),
        };
        Ok(IpNet { network, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The networks whose peers may say who the client is. Empty (the default): no peer is believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    /// Trusts peers in `networks`.
    pub fn new(networks: impl IntoIterator<Item = IpNet>) -> Self {
        TrustedProxies(networks.into_iter().collect())
    }

    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(ip))
    }

    /// The client's address for a request from `peer`: the rightmost untrusted forwarding hop when `peer` is
    /// trusted (the leftmost hop if all of them are trusted), else `peer` itself.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        // `Forwarded` only when no `X-Forwarded-For` came at all: a client could otherwise make the proxy's
        // `X-Forwarded-For` unreadable (a byte that is not visible ASCII) and choose its address in `Forwarded`.
        let hops = if headers.contains_key("x-forwarded-for") {
            header_items(headers, "x-forwarded-for")
        } else {
            forwarded_params(headers, "for")
        };
        for hop in hops.iter().rev().take(MAX_HOPS) {
            // An unreadable hop (`unknown`, an obfuscated name) ends the walk at the last hop we could read.
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }

    /// Whether a request from `peer` reached the trusted proxy over HTTPS: `X-Forwarded-Proto: https` (the value
    /// the nearest proxy added), else `Forwarded: proto=https`, and only from a trusted peer.
    pub fn is_https(&self, peer: IpAddr, headers: &HeaderMap) -> bool {
        if !self.trusts(peer) {
            return false;
        }
        let proto = if headers.contains_key("x-forwarded-proto") {
            header_items(headers, "x-forwarded-proto")
        } else {
            forwarded_params(headers, "proto")
        };
        proto.last().is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
    }
}

/// The comma-separated items of every `name` header, in order, trimmed. Read as bytes: a header with a byte that is
/// not visible ASCII in one item still yields its other items (the proxy's own hop, appended last, among them); an
/// item that is not UTF-8 comes out empty, which no hop parses, so the walk stops there.
fn header_items<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|value| value.as_bytes().split(|byte| *byte == b','))
        .map(|item| std::str::from_utf8(item).unwrap_or("\u{0}").trim())
        .filter(|item| !item.is_empty())
        .collect()
}

/// The key under which limits count a client address: IPv4 as it is (also when mapped into IPv6), IPv6 by its /64
/// network, since one host usually owns a whole /64 and single addresses would give it billions of fresh keys.
pub fn client_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
    }
}

/// The values of parameter `key` in the elements of every `Forwarded` header, in order (an element without it is
/// skipped), unquoted.
fn forwarded_params<'a>(headers: &'a HeaderMap, key: &str) -> Vec<&'a str> {
    header_items(headers, "forwarded")
        .into_iter()
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                name.trim().eq_ignore_ascii_case(key).then(|| value.trim().trim_matches('"'))
            })
        })
        .collect()
}

/// An address from a forwarding hop: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1` or `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    let ip = hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|socket| socket.ip()));
    let ip = ip.or_else(|| hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok());
    ip.map(|ip| ip.to_canonical())
}

/// The client's address: the TCP peer, or what a trusted proxy says about it (see the module header). Handlers
/// that limit per address take this instead of `ConnectInfo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl<S> FromRequestParts<S> for ClientAddr
where
    S: Send + Sync,
    TrustedProxies: FromRef<S>,
{
    /// Only when the server was not started with connection info (`into_make_service_with_connect_info`).
    type Rejection = ExtensionRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(parts, state).await?;
        Ok(ClientAddr(TrustedProxies::from_ref(state).client(peer.ip(), &parts.headers)))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|net| net.parse::<IpNet>().unwrap()))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn networks_parse_and_contain_their_addresses() {
        let net: IpNet = " 10.1.2.3/8".parse().unwrap();
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert!(net.contains(ip("10.255.0.1")) && !net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.0.0.1")), "IPv4-mapped IPv6 is IPv4");
        let one: IpNet = "::1".parse().unwrap();
        assert_eq!(one.to_string(), "::1/128");
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")) && !one.contains(ip("127.0.0.1")));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")) && !all.contains(ip("2001:db8::1")));
        let v6: IpNet = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        assert!("127.0.0.1/32".parse::<IpNet>().unwrap().contains(ip("127.0.0.1")));
        for bad in ["", "10.0.0.0/33", "::/129", "localhost", "10.0.0.0/x", "10.0.0/8"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop_from_a_trusted_peer_only() {
        let trusted = proxies(&["127.0.0.1/32", "10.0.0.0/8"]);
        let spoofed = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7")]);
        assert_eq!(trusted.client(ip("127.0.0.1"), &spoofed), ip("198.51.100.7"), "the hop nginx appended");
        assert_eq!(trusted.client(ip("203.0.113.5"), &spoofed), ip("203.0.113.5"), "an untrusted peer is not believed");
        assert_eq!(proxies(&[]).client(ip("127.0.0.1"), &spoofed), ip("127.0.0.1"), "nothing trusted by default");

        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7"), ("x-forwarded-for", "10.0.0.2")]);
        assert_eq!(trusted.client(ip("127.0.0.1"), &chain), ip("198.51.100.7"), "trusted hops are skipped");
        let inside = headers(&[("x-forwarded-for", "10.0.0.3, 10.0.0.2")]);
        assert_eq!(trusted.client(ip("127.0.0.1"), &inside), ip("10.0.0.3"), "all trusted: the leftmost");
        let garbage = headers(&[("x-forwarded-for", "6.6.6.6, unknown, 10.0.0.2")]);
        assert_eq!(trusted.client(ip("127.0.0.1"), &garbage), ip("10.0.0.2"), "stops at an unreadable hop");
        let ports = headers(&[("x-forwarded-for", "[2001:db8::7]:4711, 198.51.100.8:80")]);
        assert_eq!(trusted.client(ip("::ffff:127.0.0.1"), &ports), ip("198.51.100.8"));
        assert_eq!(trusted.client(ip("127.0.0.1"), &HeaderMap::new()), ip("127.0.0.1"), "no header: the peer");

        let forwarded = headers(&[("forwarded", r#"for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https"#)]);
        assert_eq!(trusted.client(ip("127.0.0.1"), &forwarded), ip("2001:db8:cafe::17"));
        let both = headers(&[("forwarded", "for=6.6.6.6"), ("x-forwarded-for", "198.51.100.9")]);
        assert_eq!(trusted.client(ip("127.0.0.1"), &both), ip("198.51.100.9"), "X-Forwarded-For wins");
    }

    #[test]
    fn https_is_believed_from_a_trusted_peer_only() {
        let trusted = proxies(&["127.0.0.1/32"]);
        let https = headers(&[("x-forwarded-proto", "HTTPS")]);
        assert!(trusted.is_https(ip("127.0.0.1"), &https));
        assert!(!trusted.is_https(ip("198.51.100.7"), &https));
        assert!(!trusted.is_https(ip("127.0.0.1"), &headers(&[("x-forwarded-proto", "https, http")])));
        assert!(trusted.is_https(ip("127.0.0.1"), &headers(&[("forwarded", "for=1.2.3.4;proto=https")])));
        assert!(!trusted.is_https(ip("127.0.0.1"), &HeaderMap::new()));
    }

    /// A client cannot pick its address by making the proxy's `X-Forwarded-For` unreadable and sending `Forwarded`:
    /// the items of `X-Forwarded-For` are read as bytes, the proxy's hop (appended last) counts, and `Forwarded` is
    /// ignored whenever `X-Forwarded-For` came.
    #[test]
    fn an_unreadable_forwarded_for_does_not_fall_back_to_forwarded() {
        let proxies = proxies(&["127.0.0.1/32"]);
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_bytes(b"\x80, 203.0.113.7").unwrap());
        headers.insert("forwarded", HeaderValue::from_static("for=198.51.100.9"));
        assert_eq!(proxies.client(ip("127.0.0.1"), &headers), ip("203.0.113.7"), "the proxy's own hop");
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_bytes(b"\x80").unwrap());
        headers.insert("forwarded", HeaderValue::from_static("for=198.51.100.9"));
        assert_eq!(proxies.client(ip("127.0.0.1"), &headers), ip("127.0.0.1"), "nothing readable: the proxy");
    }

    #[test]
    fn client_keys_group_ipv6_by_its_64() {
        assert_eq!(client_key(ip("2001:db8:1:2::1")), client_key(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(client_key(ip("2001:db8:1:2::1")), client_key(ip("2001:db8:1:3::1")));
        assert_eq!(client_key(ip("::ffff:9.9.9.9")), ip("9.9.9.9"));
        assert_eq!(client_key(ip("9.9.9.9")), ip("9.9.9.9"));
    }
}
