//! The IP allow-list of a key: IPv4/IPv6 addresses and CIDR ranges, normalised and de-duplicated.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

pub const MAX_ENTRIES: usize = 100;

/// One entry: an address becomes a host network, a CIDR with host bits becomes its network.
/// IPv4-mapped IPv6 entries (`::ffff:1.2.3.4`, `::ffff:10.0.0.0/104`) become the IPv4 they
/// stand for, since clients are matched by their IPv4 address.
pub fn parse_entry(entry: &str) -> Option<IpNet> {
    let entry = entry.trim();
    let net = match entry.parse::<IpNet>() {
        Ok(net) => net.trunc(),
        Err(_) => IpNet::from(entry.parse::<IpAddr>().ok()?),
    };
    Some(canonical(net))
}

fn canonical(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(|n| IpNet::V4(n.trunc()))
                .unwrap_or(net),
            None => net,
        },
        other => other,
    }
}

/// The list as sent: a JSON array of strings, one comma-separated string, or null.
pub fn parse_list(value: &Value) -> Result<Vec<IpNet>, String> {
    let entries: Vec<&str> = match value {
        Value::Null => Vec::new(),
        Value::String(joined) => joined
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::trim))
            .collect::<Option<Vec<_>>>()
            .ok_or("must be a list of strings or a comma-separated string")?,
        _ => return Err("must be a list of strings or a comma-separated string".into()),
    };
    normalise(&entries)
}

fn normalise(entries: &[&str]) -> Result<Vec<IpNet>, String> {
    let mut nets: Vec<IpNet> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        if entry.is_empty() {
            return Err(format!("entry {} is empty", index + 1));
        }
        let net = parse_entry(entry).ok_or_else(|| {
            let shown: String = entry.chars().take(64).collect();
            format!(
                "entry {} ({shown:?}) is not a valid IP address or CIDR range",
                index + 1
            )
        })?;
        if !nets.contains(&net) {
            nets.push(net);
        }
        if nets.len() > MAX_ENTRIES {
            return Err(format!("must have at most {MAX_ENTRIES} entries"));
        }
    }
    Ok(nets)
}

/// The text form: a single address without its prefix length, ranges as CIDR.
pub fn display(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

/// The list in its text form, as stored and shown.
pub fn display_list(nets: &[IpNet]) -> Vec<String> {
    nets.iter().map(display).collect()
}

/// True when the list is empty (any address) or holds `ip`. IPv4-mapped IPv6 peers match IPv4 entries.
pub fn allows(nets: &[IpNet], ip: IpAddr) -> bool {
    if nets.is_empty() {
        return true;
    }
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    nets.iter().any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn shown(value: Value) -> Result<Vec<String>, String> {
        parse_list(&value).map(|nets| nets.iter().map(display).collect())
    }

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(
            shown(json!("192.168.1.1, 10.0.0.1")).unwrap(),
            ["192.168.1.1", "10.0.0.1"]
        );
        assert_eq!(
            shown(json!(["10.0.0.0/8", "2001:db8::/32"])).unwrap(),
            ["10.0.0.0/8", "2001:db8::/32"]
        );
        assert_eq!(shown(json!(null)).unwrap(), Vec::<String>::new());
        assert_eq!(shown(json!("")).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn normalises_and_deduplicates() {
        assert_eq!(
            shown(json!([
                "10.1.2.3/8",
                "1.2.3.4",
                "1.2.3.4/32",
                "10.0.0.0/8",
                "2001:DB8::1"
            ]))
            .unwrap(),
            ["10.0.0.0/8", "1.2.3.4", "2001:db8::1"]
        );
    }

    #[test]
    fn rejects_bad_entries_naming_them() {
        let err = shown(json!("192.168.1.1, 300.1.1.1")).unwrap_err();
        assert!(
            err.contains("entry 2") && err.contains("300.1.1.1"),
            "{err}"
        );
        assert!(shown(json!(["10.0.0.0/33"])).is_err());
        assert!(shown(json!([1, 2])).is_err());
        assert!(shown(json!({"a": 1})).is_err());
        let many: Vec<String> = (0..101)
            .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
            .collect();
        assert!(shown(json!(many)).unwrap_err().contains("at most 100"));
    }

    #[test]
    fn ipv4_mapped_entries_are_ipv4() {
        assert_eq!(shown(json!(["::ffff:1.2.3.4"])).unwrap(), ["1.2.3.4"]);
        assert_eq!(
            shown(json!(["::ffff:10.1.2.3/104", "10.0.0.0/8"])).unwrap(),
            ["10.0.0.0/8"]
        );
        let nets = parse_list(&json!(["::ffff:1.2.3.4"])).unwrap();
        assert!(allows(&nets, "1.2.3.4".parse().unwrap()));
        assert!(allows(&nets, "::ffff:1.2.3.4".parse().unwrap()));
        assert_eq!(shown(json!(["::ffff:0:0/96"])).unwrap(), ["0.0.0.0/0"]);
    }

    #[test]
    fn matches_addresses_and_ranges() {
        let nets = parse_list(&json!(["10.0.0.0/8", "2001:db8::/32"])).unwrap();
        assert!(allows(&nets, "10.9.8.7".parse().unwrap()));
        assert!(allows(&nets, "::ffff:10.1.1.1".parse().unwrap()));
        assert!(allows(&nets, "2001:db8::5".parse().unwrap()));
        assert!(!allows(&nets, "127.0.0.1".parse().unwrap()));
        assert!(allows(&[], "127.0.0.1".parse().unwrap()));
    }

    proptest! {
        #[test]
        fn never_panics(input in ".{0,200}") {
            let _ = parse_list(&Value::String(input));
        }

        #[test]
        fn normalised_form_round_trips(octets in proptest::array::uniform4(0u8..), prefix in 0u8..=32) {
            let text = format!("{}.{}.{}.{}/{prefix}", octets[0], octets[1], octets[2], octets[3]);
            let first = parse_list(&json!([text])).unwrap();
            let again = parse_list(&json!([display(&first[0])])).unwrap();
            prop_assert_eq!(first, again);
        }

        #[test]
        fn v6_round_trips(segments in proptest::array::uniform8(0u16..), prefix in 0u8..=128) {
            let addr = std::net::Ipv6Addr::from(segments);
            let first = parse_list(&json!([format!("{addr}/{prefix}")])).unwrap();
            let again = parse_list(&json!([display(&first[0])])).unwrap();
            prop_assert_eq!(first, again);
        }
    }
}
