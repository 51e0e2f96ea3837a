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
        match hop.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()) {
            Ok(ip) if is_trusted(&ip) => client = ip,
            Ok(ip) => return ip,
            // An unreadable hop: the last address we can vouch for is the client.
            Err(_) => return client,
        }
    }
    client
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
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let got = resolve(mapped, &headers("203.0.113.9"), &trusted);
        assert_eq!(got, "203.0.113.9".parse::<IpAddr>().unwrap());
    }
}
