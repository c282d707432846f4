//! Which address a request comes from: the connection's peer, or behind
//! trusted proxies, the right-most address in `X-Forwarded-For` that no
//! trusted proxy wrote.
//!
//! The header is the client's to write: a client can put any address in
//! it. Only the entries that trusted proxies appended are worth anything,
//! and each proxy appends the address it received the request from, so the
//! walk goes from the right, past every entry that is itself a trusted
//! proxy, and stops at the first that is not: the last hop no proxy of ours
//! can vouch past. Everything to its left the client may have forged.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use axum::http::header::HeaderName;

use super::credential::trim_whitespace;
use crate::networks::IpNetwork;

/// `X-Forwarded-For` (de facto standard; RFC 7239's `Forwarded` is its
/// successor, rarely sent by the proxies in front of services today).
pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The proxies whose `X-Forwarded-For` entries the layer believes. Empty by
/// default: then the header is never read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TrustedProxies(Vec<IpNetwork>);

impl TrustedProxies {
    pub(crate) fn new(networks: impl IntoIterator<Item = IpNetwork>) -> Self {
        TrustedProxies(networks.into_iter().collect())
    }

    fn trust(&self, address: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(address))
    }

    /// The client's address for a request from `peer` (the connection's
    /// other end, if the server says) with `headers`, or `None` when it
    /// cannot be told: no peer, or an entry of the walk that is not an
    /// address. `None` fails closed: a token with an allowlist is refused.
    ///
    /// The header is read only when `peer` is a trusted proxy; otherwise
    /// the peer is the client, whatever the header says. Walking from the
    /// right (the header's lines in order, each a comma-separated list),
    /// trusted entries are skipped and the first untrusted one is the
    /// client; if every entry is trusted, the left-most is (the request
    /// began inside our own network). Without the header the peer, a
    /// trusted proxy, made the request itself.
    pub(crate) fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?.to_canonical();
        if !self.trust(peer) {
            return Some(peer);
        }
        let mut client = peer;
        for line in headers.get_all(&X_FORWARDED_FOR).iter().rev() {
            for entry in line.as_bytes().rsplit(|&b| b == b',') {
                let entry = trim_whitespace(entry);
                // RFC 9110 §5.6.1: a list may hold empty elements, which a
                // recipient ignores.
                if entry.is_empty() {
                    continue;
                }
                client = parse_entry(entry)?;
                if !self.trust(client) {
                    return Some(client);
                }
            }
        }
        Some(client)
    }
}

/// One `X-Forwarded-For` entry: an IPv4 or IPv6 address, or one with a
/// port (`203.0.113.7:41234`, `[2001:db8::7]:41234`), as some proxies
/// write it. Anything else (`unknown`, an obfuscated RFC 7239 name, a
/// hostname, bytes that are not ASCII) is no address.
fn parse_entry(entry: &[u8]) -> Option<IpAddr> {
    // The longest address with a port: `[` + 45 + `]:` + 5 = 53 bytes.
    if entry.len() > 53 {
        return None;
    }
    let text = std::str::from_utf8(entry).ok()?;
    let address = text
        .parse::<IpAddr>()
        .or_else(|_| text.parse::<SocketAddr>().map(|socket| socket.ip()))
        .ok()?;
    Some(address.to_canonical())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn proxies(networks: &[&str]) -> TrustedProxies {
        TrustedProxies::new(networks.iter().map(|network| network.parse().unwrap()))
    }

    fn forwarded(lines: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(&X_FORWARDED_FOR, HeaderValue::from_bytes(line).unwrap());
        }
        headers
    }

    /// The client for a request from `peer` with these header lines.
    fn client(trusted: &TrustedProxies, peer: &str, lines: &[&[u8]]) -> Option<IpAddr> {
        trusted.client(Some(ip(peer)), &forwarded(lines))
    }

    #[test]
    fn without_trusted_proxies_the_header_is_never_read() {
        let none = TrustedProxies::default();
        assert_eq!(
            client(&none, "198.51.100.9", &[b"10.0.0.1"]),
            Some(ip("198.51.100.9"))
        );
        assert_eq!(
            client(&none, "198.51.100.9", &[b"garbage"]),
            Some(ip("198.51.100.9"))
        );
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_its_header_says() {
        let trusted = proxies(&["10.0.0.0/8"]);
        for lines in [
            &[&b"10.0.0.1"[..]][..],
            &[b"garbage"],
            &[b"10.1.1.1, 10.2.2.2"],
        ] {
            assert_eq!(
                client(&trusted, "198.51.100.9", lines),
                Some(ip("198.51.100.9"))
            );
        }
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_entry_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8"]);
        // The client forged the left-most entry; the proxy appended the
        // address it saw.
        assert_eq!(
            client(&trusted, "10.0.0.2", &[b"203.0.113.5, 198.51.100.9"]),
            Some(ip("198.51.100.9"))
        );
        // Two trusted proxies in a row: both their entries are skipped.
        assert_eq!(
            client(
                &trusted,
                "10.0.0.2",
                &[b"203.0.113.5, 198.51.100.9, 10.0.0.3"]
            ),
            Some(ip("198.51.100.9"))
        );
    }

    #[test]
    fn the_lines_of_a_repeated_header_are_one_list_in_order() {
        let trusted = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            client(
                &trusted,
                "10.0.0.2",
                &[b"203.0.113.5", b"198.51.100.9, 10.0.0.3", b"10.0.0.4"]
            ),
            Some(ip("198.51.100.9"))
        );
        // The client's own line comes first; the proxy's decides.
        assert_eq!(
            client(&trusted, "10.0.0.2", &[b"10.9.9.9", b"198.51.100.9"]),
            Some(ip("198.51.100.9"))
        );
    }

    #[test]
    fn when_every_entry_is_trusted_the_leftmost_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            client(&trusted, "10.0.0.2", &[b"10.0.0.7, 10.0.0.3"]),
            Some(ip("10.0.0.7"))
        );
        // No header at all: the proxy itself made the request.
        assert_eq!(client(&trusted, "10.0.0.2", &[]), Some(ip("10.0.0.2")));
    }

    #[test]
    fn an_entry_that_is_no_address_on_the_walk_means_no_client() {
        let trusted = proxies(&["10.0.0.0/8"]);
        for line in [
            &b"garbage"[..],
            b"198.51.100.9, unknown",
            b"198.51.100.9 10.0.0.3",
            b"198.51.100.9;10.0.0.3",
            b"_hidden",
            b"example.com",
            b"198.51.100.9/32",
            b"fe80::1%eth0",
            b"\xff\xfe",
            b"1.2.3.4.5",
        ] {
            assert_eq!(client(&trusted, "10.0.0.2", &[line]), None, "{line:?}");
        }
        let long = "1".repeat(64 * 1024);
        assert_eq!(client(&trusted, "10.0.0.2", &[long.as_bytes()]), None);
    }

    #[test]
    fn garbage_left_of_the_client_is_never_read() {
        let trusted = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            client(&trusted, "10.0.0.2", &[b"garbage, 198.51.100.9"]),
            Some(ip("198.51.100.9"))
        );
    }

    #[test]
    fn entries_may_carry_ports_spaces_and_empty_elements() {
        let trusted = proxies(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        for (line, expected) in [
            (&b"198.51.100.9:41234"[..], "198.51.100.9"),
            (b"[2001:db8::7]:443", "2001:db8::7"),
            (b"2001:db8::7", "2001:db8::7"),
            (b" \t198.51.100.9\t , ,10.0.0.3 ,", "198.51.100.9"),
            (b"198.51.100.9, 2001:db8:ffff::1", "198.51.100.9"),
        ] {
            assert_eq!(
                client(&trusted, "10.0.0.2", &[line]),
                Some(ip(expected)),
                "{line:?}"
            );
        }
    }

    #[test]
    fn ipv4_seen_through_an_ipv6_socket_is_ipv4() {
        let trusted = proxies(&["127.0.0.0/8"]);
        // The peer, mapped, is still the trusted proxy it is.
        assert_eq!(
            client(&trusted, "::ffff:127.0.0.1", &[b"::ffff:198.51.100.9"]),
            Some(ip("198.51.100.9"))
        );
        assert_eq!(
            TrustedProxies::default().client(Some(ip("::ffff:198.51.100.9")), &HeaderMap::new()),
            Some(ip("198.51.100.9"))
        );
    }

    #[test]
    fn without_a_peer_there_is_no_client() {
        let trusted = proxies(&["10.0.0.0/8"]);
        assert_eq!(trusted.client(None, &forwarded(&[b"198.51.100.9"])), None);
        assert_eq!(
            TrustedProxies::default().client(None, &HeaderMap::new()),
            None
        );
    }
}
