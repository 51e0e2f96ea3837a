//! The client address: the TCP peer, or, when the peer is a trusted proxy, the right-most
//! `X-Forwarded-For` entry that is not itself a trusted proxy.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    // A dual-stack listener sees IPv4 clients as `::ffff:a.b.c.d`.
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if trusted.is_empty() || !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(ip) if is_trusted(&ip) => client = ip,
            Some(ip) => return ip,
            // An unreadable hop: the last address we can vouch for is the client.
            None => return client,
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`) or in brackets.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let ip = hop
        .parse::<IpAddr>()
        .or_else(|_| hop.parse::<std::net::SocketAddr>().map(|s| s.ip()))
        .or_else(|_| {
            hop.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or("")
                .parse::<IpAddr>()
        })
        .ok()?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(xff: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_str(xff).unwrap());
        headers
    }

    #[test]
    fn ignores_the_header_without_trusted_proxies() {
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(resolve(peer, &headers("10.9.8.7"), &[]), peer);
    }

    #[test]
    fn ignores_the_header_from_untrusted_peers() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(resolve(peer, &headers("10.9.8.7"), &trusted), peer);
    }

    #[test]
    fn takes_the_right_most_untrusted_hop() {
        let trusted = [
            "127.0.0.0/8".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let got = resolve(peer, &headers("6.6.6.6, 203.0.113.9, 10.1.1.1"), &trusted);
        assert_eq!(got, "203.0.113.9".parse::<IpAddr>().unwrap());
        let got = resolve(peer, &headers("10.2.2.2"), &trusted);
        assert_eq!(got, "10.2.2.2".parse::<IpAddr>().unwrap());
        let got = resolve(peer, &headers("garbage, 10.2.2.2"), &trusted);
        assert_eq!(got, "10.2.2.2".parse::<IpAddr>().unwrap());
        let got = resolve(peer, &headers("203.0.113.9:5678, 10.1.1.1"), &trusted);
        assert_eq!(got, "203.0.113.9".parse::<IpAddr>().unwrap());
        let got = resolve(peer, &headers("[2001:db8::7]:443"), &trusted);
        assert_eq!(got, "2001:db8::7".parse::<IpAddr>().unwrap());
        let got = resolve(peer, &headers("[2001:db8::8]"), &trusted);
        assert_eq!(got, "2001:db8::8".parse::<IpAddr>().unwrap());
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let got = resolve(mapped, &headers("203.0.113.9"), &trusted);
        assert_eq!(got, "203.0.113.9".parse::<IpAddr>().unwrap());
    }
}
