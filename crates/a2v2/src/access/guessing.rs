//! Slows key guessing: a per-client budget of requests with a missing or invalid key (and of
//! leaked-key reports) per minute, in this node's memory. IPv6 clients are counted per /64,
//! the block one subscriber usually gets.

use std::{
    net::IpAddr,
    sync::atomic::{AtomicI64, AtomicU32, Ordering},
};

use dashmap::DashMap;

const WINDOW_MS: i64 = 60_000;

/// Failures per client and minute.
pub struct Guessing {
    per_minute: u32,
    clients: DashMap<u128, (AtomicI64, AtomicU32)>,
}

fn client_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        // The /64, marked so it cannot collide with an IPv4 address.
        IpAddr::V6(v6) => (u128::from(v6) >> 64) | (1 << 127),
    }
}

impl Guessing {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            clients: DashMap::new(),
        }
    }

    /// `Some(seconds to wait)` when the client has used up its budget in this minute.
    pub fn blocked(&self, ip: IpAddr, now_ms: i64) -> Option<u64> {
        let entry = self.clients.get(&client_key(ip))?;
        let (start, count) = entry.value();
        let start = start.load(Ordering::Relaxed);
        if now_ms - start >= WINDOW_MS || count.load(Ordering::Relaxed) < self.per_minute {
            return None;
        }
        Some(
            u64::try_from((start + WINDOW_MS - now_ms + 999) / 1000)
                .unwrap_or(1)
                .max(1),
        )
    }

    /// Counts one failure of the client.
    pub fn fail(&self, ip: IpAddr, now_ms: i64) {
        let entry = self
            .clients
            .entry(client_key(ip))
            .or_insert_with(|| (AtomicI64::new(now_ms), AtomicU32::new(0)));
        let (start, count) = entry.value();
        if now_ms - start.load(Ordering::Relaxed) >= WINDOW_MS {
            start.store(now_ms, Ordering::Relaxed);
            count.store(0, Ordering::Relaxed);
        }
        count.fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets clients whose minute has passed.
    pub fn prune(&self, now_ms: i64) {
        self.clients
            .retain(|_, (start, _)| now_ms - start.load(Ordering::Relaxed) < WINDOW_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_a_client_for_the_rest_of_its_minute() {
        let guessing = Guessing::new(3);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for t in 0..3 {
            assert_eq!(guessing.blocked(ip, t), None);
            guessing.fail(ip, t);
        }
        assert_eq!(guessing.blocked(ip, 30_000), Some(30));
        assert_eq!(guessing.blocked("192.0.2.8".parse().unwrap(), 30_000), None);
        assert_eq!(guessing.blocked(ip, 60_000), None);
        // One /64 is one client.
        for t in 0..3 {
            guessing.fail(format!("2001:db8::{t}").parse().unwrap(), 0);
        }
        assert!(
            guessing
                .blocked("2001:db8::ff".parse().unwrap(), 1)
                .is_some()
        );
        guessing.prune(61_000);
        assert_eq!(guessing.blocked("2001:db8::ff".parse().unwrap(), 1), None);
    }
}
