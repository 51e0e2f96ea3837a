//! Throttling of failed sign-ins: 10 failures for one email or from one IP within 15 minutes
//! block further attempts until the oldest failure leaves the window.

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
    /// `Err(seconds)` when either the email or the IP is blocked.
    pub fn check(&self, email: &str, ip: &str, now_ms: i64) -> Result<(), u64> {
        let wait = [email_subject(email), ip_subject(ip)]
            .iter()
            .filter_map(|subject| {
                let mut entry = self.failures.get_mut(subject)?;
                entry.retain(|at| now_ms - at < WINDOW_MS);
                (entry.len() >= MAX_FAILURES).then(|| {
                    entry
                        .front()
                        .map_or(0, |oldest| oldest + WINDOW_MS - now_ms)
                })
            })
            .max();
        match wait {
            Some(ms) => Err(u64::try_from(ms.max(1000) / 1000).unwrap_or(1)),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, email: &str, ip: &str, now_ms: i64) {
        if self.failures.len() > PRUNE_ABOVE {
            self.failures
                .retain(|_, times| times.back().is_some_and(|last| now_ms - last < WINDOW_MS));
        }
        for subject in [email_subject(email), ip_subject(ip)] {
            let mut entry = self.failures.entry(subject).or_default();
            entry.push_back(now_ms);
            while entry.len() > MAX_FAILURES {
                entry.pop_front();
            }
        }
    }

    pub fn record_success(&self, email: &str) {
        self.failures.remove(&email_subject(email));
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
            assert!(throttle.check("a@b.co", "1.1.1.1", i).is_ok());
            throttle.record_failure("a@b.co", "1.1.1.1", i);
        }
        let wait = throttle.check("A@b.co", "2.2.2.2", 10).unwrap_err();
        assert!(wait > 800 && wait <= 900, "{wait}");
        assert!(throttle.check("other@b.co", "1.1.1.1", 10).is_err());
        assert!(throttle.check("other@b.co", "2.2.2.2", 10).is_ok());
        assert!(throttle.check("a@b.co", "2.2.2.2", WINDOW_MS + 10).is_ok());
    }
}
