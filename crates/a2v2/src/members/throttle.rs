//! Throttling of sign-in attempts: after 10 failures for one email or from one IP within 15
//! minutes, further attempts are refused until the oldest failure leaves the window.
//!
//! An attempt is counted before the password is checked (and taken back when it succeeds), so
//! parallel requests cannot slip past the limit while Argon2 runs.

use std::collections::VecDeque;

use dashmap::DashMap;

const WINDOW_MS: i64 = 15 * 60 * 1000;
const MAX_FAILURES: usize = 10;
const PRUNE_ABOVE: usize = 10_000;

#[derive(Default)]
pub struct SignInThrottle {
    failures: DashMap<String, VecDeque<i64>>,
}

impl SignInThrottle {
    /// Counts an attempt for the email (when given) and the IP; `Err(seconds)` when either is
    /// blocked, in which case nothing is counted.
    pub fn attempt(&self, email: Option<&str>, ip: &str, now_ms: i64) -> Result<(), u64> {
        if self.failures.len() > PRUNE_ABOVE {
            self.failures
                .retain(|_, times| times.back().is_some_and(|last| now_ms - last < WINDOW_MS));
        }
        let subjects: Vec<String> = email
            .map(email_subject)
            .into_iter()
            .chain([ip_subject(ip)])
            .collect();
        let wait = subjects
            .iter()
            .filter_map(|subject| {
                let mut times = self.failures.get_mut(subject)?;
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
        for subject in subjects {
            let mut times = self.failures.entry(subject).or_default();
            times.push_back(now_ms);
            while times.len() > MAX_FAILURES {
                times.pop_front();
            }
        }
        Ok(())
    }

    /// Takes back a successful attempt: the email starts afresh, the IP loses one count.
    pub fn succeeded(&self, email: Option<&str>, ip: &str) {
        if let Some(email) = email {
            self.failures.remove(&email_subject(email));
        }
        if let Some(mut times) = self.failures.get_mut(&ip_subject(ip)) {
            times.pop_back();
        }
    }
}

fn email_subject(email: &str) -> String {
    format!("email:{}", email.trim().to_lowercase())
}

fn ip_subject(ip: &str) -> String {
    format!("ip:{ip}")
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
        let wait = throttle.attempt(Some("A@b.co"), "2.2.2.2", 10).unwrap_err();
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
            assert!(throttle.attempt(Some("a@b.co"), "1.1.1.1", i).is_ok());
            throttle.succeeded(Some("a@b.co"), "1.1.1.1");
        }
        assert!(throttle.attempt(None, "1.1.1.1", 31).is_ok());
    }
}
