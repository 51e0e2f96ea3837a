//! Throttling of password and invite guessing: after 10 failures for one email or from one
//! client within 15 minutes, further attempts are refused until the oldest failure leaves the
//! window.
//!
//! - The counts live in the database, so every node of a deployment sees the same failures
//!   and a restart forgets none. An attempt is counted before the password is checked (and
//!   taken back when it succeeds), in one transaction that checks and counts together, with
//!   the subjects locked on PostgreSQL: parallel requests, on any nodes, cannot slip past the
//!   limit while Argon2 runs.
//! - A client is its IPv4 address or its IPv6 /64: one host controls a whole /64, so counting
//!   single IPv6 addresses would give it unlimited budgets.
//! - Each client may have at most [`MAX_IN_FLIGHT`] attempts running at once on a node: a
//!   flood from one source cannot fill the Argon2 queue in front of everyone else. This part
//!   is per node and in memory; it bounds concurrency, not counts.
//! - Failures that left the window are pruned every minute.

use std::{collections::HashMap, net::IpAddr, sync::Mutex};

use crate::{
    error::{DomainError, Result},
    store::{self, Store, throttle::Attempted},
};

pub const WINDOW_MS: i64 = 15 * 60 * 1000;
pub const MAX_FAILURES: i64 = 10;
pub const MAX_IN_FLIGHT: usize = 2;

#[derive(Default)]
pub struct SignInThrottle {
    in_flight: Mutex<HashMap<String, usize>>,
}

/// A counted attempt; while it lives, it holds one of its client's in-flight places.
pub struct Attempt<'a> {
    throttle: &'a SignInThrottle,
    store: &'a Store,
    email: Option<String>,
    client: String,
    /// The counted rows: the email's (when given) and the client's, in that order.
    counted: Vec<String>,
}

impl Attempt<'_> {
    /// Takes the attempt back: the email starts afresh, the client loses this count.
    pub async fn succeeded(self) -> Result<()> {
        let mut tx = self.store.begin().await?;
        if let Some(email) = &self.email {
            store::throttle::clear(&mut tx, email).await?;
        }
        let ids: Vec<&str> = self.counted.iter().map(String::as_str).collect();
        store::throttle::forget(&mut tx, &ids).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.throttle.leave(&self.client);
    }
}

impl SignInThrottle {
    fn places(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        // A panic while holding the lock leaves counts that are still valid numbers.
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn leave(&self, client: &str) {
        let mut places = self.places();
        if let Some(count) = places.get_mut(client) {
            *count -= 1;
            if *count == 0 {
                places.remove(client);
            }
        }
    }

    /// Counts an attempt for the email (when given) and the client. `RateLimited` when either
    /// is at its limit or the client has too many attempts running; nothing is counted then.
    pub async fn attempt<'a>(
        &'a self,
        store: &'a Store,
        email: Option<&str>,
        ip: &str,
        now_ms: i64,
    ) -> Result<Attempt<'a>> {
        let email = email.map(email_subject);
        let client = client_subject(ip);
        {
            let mut places = self.places();
            let place = places.entry(client.clone()).or_default();
            if *place >= MAX_IN_FLIGHT {
                return Err(DomainError::RateLimited { retry_after: 1 });
            }
            *place += 1;
        }
        // From here on, dropping `attempt` gives the place back, also on an error.
        let mut attempt = Attempt {
            throttle: self,
            store,
            email,
            client,
            counted: Vec::new(),
        };
        let subjects: Vec<&str> = attempt
            .email
            .iter()
            .chain([&attempt.client])
            .map(String::as_str)
            .collect();
        let mut tx = store.begin().await?;
        let attempted =
            store::throttle::attempt(&mut tx, &subjects, now_ms, WINDOW_MS, MAX_FAILURES).await?;
        tx.commit().await?;
        match attempted {
            Attempted::Counted { ids } => {
                attempt.counted = ids;
                Ok(attempt)
            }
            Attempted::Blocked { wait_ms } => Err(DomainError::RateLimited {
                retry_after: u64::try_from(wait_ms.max(1000) / 1000).unwrap_or(1),
            }),
        }
    }

    /// Deletes failures that left the window; run periodically.
    pub async fn prune(&self, store: &Store, now_ms: i64) -> Result<u64> {
        let mut conn = store.conn().await?;
        Ok(store::throttle::prune(&mut conn, now_ms - WINDOW_MS).await?)
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

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        (dir, store)
    }

    fn retry_after(result: Result<Attempt<'_>>) -> Option<u64> {
        match result {
            Err(DomainError::RateLimited { retry_after }) => Some(retry_after),
            _ => None,
        }
    }

    #[tokio::test]
    async fn blocks_after_ten_failures_until_the_window_passes() {
        let (_dir, store) = store().await;
        let throttle = SignInThrottle::default();
        for i in 0..10 {
            assert!(
                throttle
                    .attempt(&store, Some("a@b.co"), "1.1.1.1", i)
                    .await
                    .is_ok()
            );
        }
        let wait = retry_after(
            throttle
                .attempt(&store, Some("A@b.co"), "2.2.2.2", 10)
                .await,
        );
        assert!(wait.is_some_and(|w| w > 800 && w <= 900), "{wait:?}");
        let other = throttle
            .attempt(&store, Some("other@b.co"), "1.1.1.1", 10)
            .await;
        assert!(other.is_err(), "the client is at its limit too");
        assert!(
            throttle
                .attempt(&store, Some("other@b.co"), "2.2.2.2", 10)
                .await
                .is_ok()
        );
        let later = throttle
            .attempt(&store, Some("a@b.co"), "3.3.3.3", WINDOW_MS + 10)
            .await;
        assert!(later.is_ok());
    }

    #[tokio::test]
    async fn successes_are_taken_back() {
        let (_dir, store) = store().await;
        let throttle = SignInThrottle::default();
        for i in 0..30 {
            let attempt = throttle
                .attempt(&store, Some("a@b.co"), "1.1.1.1", i)
                .await
                .unwrap();
            attempt.succeeded().await.unwrap();
        }
        assert!(throttle.attempt(&store, None, "1.1.1.1", 31).await.is_ok());
    }

    #[tokio::test]
    async fn an_ipv6_client_is_its_64() {
        let (_dir, store) = store().await;
        let throttle = SignInThrottle::default();
        for i in 0..10 {
            let address = format!("2001:db8:1:2::{:x}", i + 1);
            assert!(throttle.attempt(&store, None, &address, i).await.is_ok());
        }
        let same = throttle
            .attempt(&store, None, "2001:db8:1:2:ffff::9", 11)
            .await;
        assert!(same.is_err());
        let next = throttle.attempt(&store, None, "2001:db8:1:3::1", 11).await;
        assert!(next.is_ok());
        assert_eq!(client_subject("::ffff:10.0.0.1"), "ip:10.0.0.1");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_attempts_never_pass_the_limit() {
        let (_dir, store) = store().await;
        let throttle = std::sync::Arc::new(SignInThrottle::default());
        let mut attempts = tokio::task::JoinSet::new();
        for i in 0..40 {
            let (throttle, store) = (std::sync::Arc::clone(&throttle), store.clone());
            attempts.spawn(async move {
                // Distinct clients, one email: only the email's limit applies.
                let ip = format!("10.0.0.{i}");
                throttle
                    .attempt(&store, Some("victim@b.co"), &ip, 0)
                    .await
                    .is_ok()
            });
        }
        let passed = attempts
            .join_all()
            .await
            .into_iter()
            .filter(|ok| *ok)
            .count();
        assert_eq!(passed, MAX_FAILURES as usize);
    }

    #[tokio::test]
    async fn a_client_has_few_attempts_in_flight() {
        let (_dir, store) = store().await;
        let throttle = SignInThrottle::default();
        let first = throttle.attempt(&store, None, "1.1.1.1", 0).await.unwrap();
        let second = throttle.attempt(&store, None, "1.1.1.1", 0).await.unwrap();
        assert_eq!(
            retry_after(throttle.attempt(&store, None, "1.1.1.1", 0).await),
            Some(1)
        );
        assert!(throttle.attempt(&store, None, "2.2.2.2", 0).await.is_ok());
        drop(first);
        assert!(throttle.attempt(&store, None, "1.1.1.1", 0).await.is_ok());
        drop(second);
    }

    #[tokio::test]
    async fn old_failures_are_pruned() {
        let (_dir, store) = store().await;
        let throttle = SignInThrottle::default();
        for i in 0..10 {
            drop(
                throttle
                    .attempt(&store, None, &format!("10.0.0.{i}"), 0)
                    .await,
            );
        }
        assert_eq!(throttle.prune(&store, WINDOW_MS + 1).await.unwrap(), 10);
        assert_eq!(throttle.prune(&store, WINDOW_MS + 1).await.unwrap(), 0);
    }
}
