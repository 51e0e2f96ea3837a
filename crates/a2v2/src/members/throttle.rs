//! Throttling of password and invite guessing: after 10 failures for one email or from one
//! client within 15 minutes, further attempts are refused until the oldest failure leaves the
//! window.
//!
//! - An attempt is counted before the password is checked (and taken back when it succeeds),
//!   in one step under one lock, so parallel requests cannot slip past the limit while Argon2
//!   runs.
//! - A client is its IPv4 address or its IPv6 /64: one host controls a whole /64, so counting
//!   single IPv6 addresses would give it unlimited budgets.
//! - Each client may have at most [`MAX_IN_FLIGHT`] attempts running at once: a flood from one
//!   source cannot fill the Argon2 queue in front of everyone else.
//! - At most [`MAX_SUBJECTS`] emails and clients are tracked; expired entries are pruned on a
//!   timer, and when the map is still full the entry with the oldest last failure makes room.

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::Mutex,
};

const WINDOW_MS: i64 = 15 * 60 * 1000;
const MAX_FAILURES: usize = 10;
pub const MAX_SUBJECTS: usize = 100_000;
pub const MAX_IN_FLIGHT: usize = 2;

#[derive(Default)]
struct State {
    failures: HashMap<String, VecDeque<i64>>,
    in_flight: HashMap<String, usize>,
}

#[derive(Default)]
pub struct SignInThrottle {
    state: Mutex<State>,
}

/// A counted attempt; while it lives, it holds one of its client's in-flight places.
pub struct Attempt<'a> {
    throttle: &'a SignInThrottle,
    email: Option<String>,
    client: String,
}

impl Attempt<'_> {
    /// Takes the attempt back: the email starts afresh, the client loses one count.
    pub fn succeeded(self) {
        let mut state = self.throttle.lock();
        if let Some(email) = &self.email {
            state.failures.remove(email);
        }
        if let Some(times) = state.failures.get_mut(&self.client) {
            times.pop_back();
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let mut state = self.throttle.lock();
        if let Some(count) = state.in_flight.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                state.in_flight.remove(&self.client);
            }
        }
    }
}

impl SignInThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves counts that are still valid numbers.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts an attempt for the email (when given) and the client; `Err(seconds)` when either
    /// is blocked or the client has too many attempts running, in which case nothing is
    /// counted.
    pub fn attempt(&self, email: Option<&str>, ip: &str, now_ms: i64) -> Result<Attempt<'_>, u64> {
        let email = email.map(email_subject);
        let client = client_subject(ip);
        let mut state = self.lock();
        if state.in_flight.get(&client).copied().unwrap_or(0) >= MAX_IN_FLIGHT {
            return Err(1);
        }
        let wait = email
            .iter()
            .chain([&client])
            .filter_map(|subject| {
                let times = state.failures.get_mut(subject)?;
                times.retain(|at| now_ms - at < WINDOW_MS);
                (times.len() >= MAX_FAILURES).then(|| {
                    times
                        .front()
                        .map_or(0, |oldest| oldest + WINDOW_MS - now_ms)
                })
            })
            .max();
        if let Some(ms) = wait {
            return Err(u64::try_from(ms.max(1000) / 1000).unwrap_or(1));
        }
        for subject in email.iter().chain([&client]) {
            if !state.failures.contains_key(subject) && state.failures.len() >= MAX_SUBJECTS {
                make_room(&mut state.failures);
            }
            let times = state.failures.entry(subject.clone()).or_default();
            times.push_back(now_ms);
            while times.len() > MAX_FAILURES {
                times.pop_front();
            }
        }
        *state.in_flight.entry(client.clone()).or_default() += 1;
        Ok(Attempt {
            throttle: self,
            email,
            client,
        })
    }

    /// Drops entries whose failures have all left the window; run periodically.
    pub fn prune(&self, now_ms: i64) {
        self.lock()
            .failures
            .retain(|_, times| times.back().is_some_and(|last| now_ms - last < WINDOW_MS));
    }

    pub fn len(&self) -> usize {
        self.lock().failures.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Evicts the entry whose last failure is oldest.
fn make_room(failures: &mut HashMap<String, VecDeque<i64>>) {
    let oldest = failures
        .iter()
        .min_by_key(|(_, times)| times.back().copied().unwrap_or(i64::MIN))
        .map(|(subject, _)| subject.clone());
    if let Some(subject) = oldest {
        failures.remove(&subject);
    }
}

fn email_subject(email: &str) -> String {
    format!("email:{}", email.trim().to_lowercase())
}

/// An IPv4 client by its address, an IPv6 client by its /64.
fn client_subject(ip: &str) -> String {
    match ip.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(IpAddr::V6(v6)) => {
            let net = ipnet::Ipv6Net::new(v6, 64).map(|net| net.trunc());
            format!(
                "ip:{}",
                net.map_or_else(|_| ip.to_owned(), |n| n.to_string())
            )
        }
        Ok(IpAddr::V4(v4)) => format!("ip:{v4}"),
        Err(_) => format!("ip:{ip}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_ten_failures_until_the_window_passes() {
        let throttle = SignInThrottle::default();
        for i in 0..10 {
            assert!(throttle.attempt(Some("a@b.co"), "1.1.1.1", i).is_ok());
        }
        let wait = throttle
            .attempt(Some("A@b.co"), "2.2.2.2", 10)
            .err()
            .unwrap();
        assert!(wait > 800 && wait <= 900, "{wait}");
        assert!(throttle.attempt(Some("other@b.co"), "1.1.1.1", 10).is_err());
        assert!(throttle.attempt(Some("other@b.co"), "2.2.2.2", 10).is_ok());
        assert!(
            throttle
                .attempt(Some("a@b.co"), "3.3.3.3", WINDOW_MS + 10)
                .is_ok()
        );
    }

    #[test]
    fn successes_are_taken_back() {
        let throttle = SignInThrottle::default();
        for i in 0..30 {
            let attempt = throttle.attempt(Some("a@b.co"), "1.1.1.1", i).unwrap();
            attempt.succeeded();
        }
        assert!(throttle.attempt(None, "1.1.1.1", 31).is_ok());
    }

    #[test]
    fn an_ipv6_client_is_its_64() {
        let throttle = SignInThrottle::default();
        for i in 0..10 {
            let address = format!("2001:db8:1:2::{:x}", i + 1);
            assert!(throttle.attempt(None, &address, i).is_ok());
        }
        assert!(throttle.attempt(None, "2001:db8:1:2:ffff::9", 11).is_err());
        assert!(throttle.attempt(None, "2001:db8:1:3::1", 11).is_ok());
        assert!(throttle.attempt(None, "::ffff:10.0.0.1", 11).is_ok());
        assert_eq!(client_subject("::ffff:10.0.0.1"), "ip:10.0.0.1");
    }

    #[test]
    fn parallel_attempts_never_pass_the_limit() {
        let throttle = SignInThrottle::default();
        let passed = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for t in 0..8 {
                let (throttle, passed) = (&throttle, &passed);
                scope.spawn(move || {
                    for i in 0..50 {
                        // Distinct clients, one email: only the email's limit applies.
                        let ip = format!("10.0.{t}.{i}");
                        if throttle.attempt(Some("victim@b.co"), &ip, 0).is_ok() {
                            passed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(passed.into_inner(), MAX_FAILURES);
    }

    #[test]
    fn a_client_has_few_attempts_in_flight() {
        let throttle = SignInThrottle::default();
        let first = throttle.attempt(None, "1.1.1.1", 0).unwrap();
        let second = throttle.attempt(None, "1.1.1.1", 0).unwrap();
        assert_eq!(throttle.attempt(None, "1.1.1.1", 0).err(), Some(1));
        assert!(throttle.attempt(None, "2.2.2.2", 0).is_ok());
        drop(first);
        assert!(throttle.attempt(None, "1.1.1.1", 0).is_ok());
        drop(second);
    }

    #[test]
    fn the_map_is_pruned_and_capped() {
        let throttle = SignInThrottle::default();
        for i in 0..MAX_SUBJECTS + 50 {
            let ip = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 0xff, i & 0xff);
            let now = i64::try_from(i).unwrap();
            assert!(throttle.attempt(None, &ip, now).is_ok());
        }
        assert!(throttle.len() <= MAX_SUBJECTS, "{}", throttle.len());
        throttle.prune(WINDOW_MS + i64::try_from(MAX_SUBJECTS).unwrap() + 100);
        assert!(throttle.is_empty());
    }
}
