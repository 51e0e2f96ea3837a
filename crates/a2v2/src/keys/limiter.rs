//! Per-key rate limits on the hot path: no storage I/O, no allocation, one lock per key.
//!
//! A window of `per_seconds` is cut into [`BUCKETS`] buckets. A request is counted in the
//! bucket of its time; it is admitted when the buckets that any window of `per_seconds`
//! ending now can touch — the current one and the [`BUCKETS`] before it — hold fewer than
//! `requests`. Counting one bucket more than a window covers makes the limit strict (no
//! window of `per_seconds` ever holds more) at the price of refusing up to one bucket
//! (a tenth of the window) early.
//!
//! With one process (SQLite) that is all. Several nodes on one PostgreSQL share the budget
//! through the database: in the background, each node reserves budget for the current
//! bucket (`store::rate_limits::reserve`, which hands out at most `requests` over the same
//! buckets, whichever node asks), and the hot path spends what its node holds. A node that
//! holds nothing yet — a key's first request, a new bucket before the reservation arrived —
//! may spend on credit, at most one second's share of the limit (`requests / per_seconds`)
//! of not yet granted requests at a time; the next reservation asks for them too. So the
//! deployment exceeds a limit by at most that credit per node.

use std::sync::{
    Mutex, PoisonError,
    atomic::{AtomicBool, Ordering},
};

use crate::model::key::RateLimit;

/// Buckets per window.
pub const BUCKETS: i64 = 10;
/// Slots of the ring: the current bucket and the [`BUCKETS`] before it.
const SLOTS: usize = BUCKETS as usize + 1;

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    bucket: i64,
    used: u32,
    /// Requests the database granted this node in this bucket (coordinated only).
    granted: u32,
}

#[derive(Debug)]
struct Window {
    slots: [Slot; SLOTS],
    /// Budget the other nodes held in the window at the last reservation.
    others: u32,
}

/// What the hot path tells the client about a limited key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until some budget frees up (`RateLimit-Reset`, and `Retry-After` on a 429).
    pub reset_seconds: u64,
}

/// One key's limiter.
#[derive(Debug)]
pub struct Limiter {
    pub limit: RateLimit,
    bucket_ms: i64,
    coordinated: bool,
    credit: u32,
    window: Mutex<Window>,
    /// Set while the key is on its cache's list of keys in use, whose budget the background
    /// task reserves.
    listed: AtomicBool,
}

/// A reservation to ask the database for: `(bucket, requests)` pairs.
pub type Wanted = [(i64, u32); SLOTS];

impl Limiter {
    /// `coordinated`: other nodes share the limit through the database.
    pub fn new(limit: RateLimit, coordinated: bool) -> Self {
        let bucket_ms = (i64::from(limit.per_seconds) * 1000 / BUCKETS).max(1);
        let credit = limit.requests.div_ceil(limit.per_seconds).max(1);
        Self {
            limit,
            bucket_ms,
            coordinated,
            credit,
            window: Mutex::new(Window {
                slots: [Slot::default(); SLOTS],
                others: 0,
            }),
            listed: AtomicBool::new(false),
        }
    }

    /// Puts a coordinated limiter on its cache's list of keys in use; true when this call
    /// did (the caller then adds the key), false when it was listed already. One atomic load
    /// on the hot path once listed.
    pub fn list(&self) -> bool {
        self.coordinated
            && !self.listed.load(Ordering::Relaxed)
            && !self.listed.swap(true, Ordering::AcqRel)
    }

    /// Takes the limiter off the list (the background task, for a key gone idle).
    pub fn unlist(&self) {
        self.listed.store(false, Ordering::Release);
    }

    pub fn bucket_of(&self, now_ms: i64) -> i64 {
        now_ms.div_euclid(self.bucket_ms)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a request at `now_ms` if the limit allows it: `Ok` with the quota left, or
    /// `Err` with the quota (nothing left) when the request must be refused.
    pub fn admit(&self, now_ms: i64) -> Result<Quota, Quota> {
        let current = self.bucket_of(now_ms);
        let mut window = self.lock();
        let slot = slot_of(current);
        if window.slots[slot].bucket != current {
            window.slots[slot] = Slot {
                bucket: current,
                used: 0,
                granted: 0,
            };
        }
        let (used, overdraft) = self.totals(&window, current);
        let limit = self.limit.requests;
        let fits = if self.coordinated {
            let own = window.slots[slot];
            own.used < own.granted
                || (overdraft < self.credit && used.saturating_add(window.others) < limit)
        } else {
            used < limit
        };
        let quota = |used: u32, window: &Window| Quota {
            limit,
            remaining: limit
                .saturating_sub(used)
                .saturating_sub(if self.coordinated { window.others } else { 0 }),
            reset_seconds: self.reset_seconds(window, current, now_ms),
        };
        if !fits {
            return Err(Quota {
                remaining: 0,
                ..quota(used, &window)
            });
        }
        window.slots[slot].used += 1;
        Ok(quota(used + 1, &window))
    }

    /// Requests counted and requests spent beyond the grants, over the window ending in
    /// bucket `current`.
    fn totals(&self, window: &Window, current: i64) -> (u32, u32) {
        window
            .slots
            .iter()
            .filter(|s| in_window(s.bucket, current))
            .fold((0, 0), |(used, over), s| {
                (
                    used + s.used,
                    over + s.used.saturating_sub(s.granted) * u32::from(self.coordinated),
                )
            })
    }

    /// Seconds until the oldest counted bucket leaves the window (at least 1 when something
    /// is counted).
    fn reset_seconds(&self, window: &Window, current: i64, now_ms: i64) -> u64 {
        let oldest = window
            .slots
            .iter()
            .filter(|s| s.used > 0 && in_window(s.bucket, current))
            .map(|s| s.bucket)
            .min();
        match oldest {
            None if window.others == 0 => 0,
            None => u64::try_from(self.bucket_ms.div_euclid(1000))
                .unwrap_or(0)
                .max(1),
            Some(bucket) => {
                let frees_at = (bucket + BUCKETS + 1) * self.bucket_ms;
                u64::try_from((frees_at - now_ms + 999) / 1000)
                    .unwrap_or(1)
                    .max(1)
            }
        }
    }

    /// What this node should ask the database for now, if anything: the requests it spent
    /// on credit, per bucket, and for the current bucket as much again as it used in the
    /// previous or this one (at least one), less what it still holds.
    pub fn wanted(&self, now_ms: i64) -> Option<Wanted> {
        if !self.coordinated {
            return None;
        }
        let current = self.bucket_of(now_ms);
        let window = self.lock();
        let mut wanted: Wanted = [(0, 0); SLOTS];
        let mut any = false;
        let previous = window.slots[slot_of(current - 1)];
        let now_used = window.slots[slot_of(current)];
        let recent = (if previous.bucket == current - 1 {
            previous.used
        } else {
            0
        })
        .max(if now_used.bucket == current {
            now_used.used
        } else {
            0
        });
        for (i, s) in window.slots.iter().enumerate() {
            if !in_window(s.bucket, current) {
                continue;
            }
            let mut want = s.used.saturating_sub(s.granted);
            if s.bucket == current && recent > 0 {
                let held = s.granted.saturating_sub(s.used);
                want += recent.max(1).saturating_sub(held);
            }
            if want > 0 {
                wanted[i] = (s.bucket, want);
                any = true;
            }
        }
        any.then_some(wanted)
    }

    /// Applies the database's answer: `granted` per bucket as asked in `wanted`, and the
    /// budget the whole deployment holds in the window, `total`.
    pub fn granted(&self, wanted: &Wanted, granted: &[u32], total: u32) {
        let mut window = self.lock();
        for ((bucket, _), given) in wanted.iter().zip(granted) {
            let slot = &mut window.slots[slot_of(*bucket)];
            if slot.bucket == *bucket {
                slot.granted += given;
            }
        }
        let current = wanted.iter().map(|(b, _)| *b).max().unwrap_or_default();
        let own: u32 = window
            .slots
            .iter()
            .filter(|s| in_window(s.bucket, current))
            .map(|s| s.granted)
            .sum();
        window.others = total.saturating_sub(own);
    }

    /// The quota without counting anything (for responses that do not spend budget).
    pub fn peek(&self, now_ms: i64) -> Quota {
        let current = self.bucket_of(now_ms);
        let window = self.lock();
        let (used, _) = self.totals(&window, current);
        Quota {
            limit: self.limit.requests,
            remaining: self
                .limit
                .requests
                .saturating_sub(used)
                .saturating_sub(window.others),
            reset_seconds: self.reset_seconds(&window, current, now_ms),
        }
    }

    /// Whether anything was counted in the window ending now (the background task skips
    /// idle keys).
    pub fn active(&self, now_ms: i64) -> bool {
        let current = self.bucket_of(now_ms);
        let window = self.lock();
        window
            .slots
            .iter()
            .any(|s| s.used > 0 && in_window(s.bucket, current))
    }
}

fn slot_of(bucket: i64) -> usize {
    usize::try_from(bucket.rem_euclid(SLOTS as i64)).unwrap_or(0)
}

fn in_window(bucket: i64, current: i64) -> bool {
    bucket <= current && bucket >= current - BUCKETS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(requests: u32, per_seconds: u32) -> RateLimit {
        RateLimit {
            requests,
            per_seconds,
        }
    }

    #[test]
    fn no_window_of_the_period_holds_more_than_the_limit() {
        // Requests every 7 ms for a minute; check every 10 s window of the admitted ones.
        let limiter = Limiter::new(limit(100, 10), false);
        let mut admitted = Vec::new();
        let mut t = 1_000_000;
        while t < 1_060_000 {
            if limiter.admit(t).is_ok() {
                admitted.push(t);
            }
            t += 7;
        }
        for (i, start) in admitted.iter().enumerate() {
            let within = admitted[i..]
                .iter()
                .take_while(|at| **at < start + 10_000)
                .count();
            assert!(
                within <= 100,
                "{within} requests in the window from {start}"
            );
        }
        // Close to the limit over time: at least 100 per 11 s.
        assert!(admitted.len() >= 500, "{}", admitted.len());
    }

    #[test]
    fn refusals_say_when_to_retry_and_headers_count_down() {
        let limiter = Limiter::new(limit(2, 10), false);
        let first = limiter.admit(5_000).unwrap();
        assert_eq!((first.limit, first.remaining), (2, 1));
        assert_eq!(limiter.admit(5_001).unwrap().remaining, 0);
        let refused = limiter.admit(6_000).unwrap_err();
        assert_eq!(refused.remaining, 0);
        // The bucket of 5 s (5.0–6.0 s) leaves the window at 16 s.
        assert_eq!(refused.reset_seconds, 10);
        assert!(limiter.admit(15_999).is_err());
        assert!(limiter.admit(16_000).is_ok());
    }

    #[test]
    fn a_coordinated_node_spends_grants_and_at_most_its_credit() {
        let limiter = Limiter::new(limit(100, 10), true);
        // Credit is one second's share: 10 requests before any grant.
        let admitted = (0..50).filter(|i| limiter.admit(1_000 + i).is_ok()).count();
        assert_eq!(admitted, 10);
        let wanted = limiter.wanted(1_100).unwrap();
        let asked: u32 = wanted.iter().map(|(_, n)| n).sum();
        assert_eq!(
            asked, 20,
            "the 10 spent on credit and 10 more for this bucket"
        );
        let mut granted = [0u32; SLOTS];
        for (i, (_, n)) in wanted.iter().enumerate() {
            granted[i] = *n;
        }
        limiter.granted(&wanted, &granted, 60);
        let more = (0..50).filter(|i| limiter.admit(1_200 + i).is_ok()).count();
        assert_eq!(more, 10 + 10, "the grant, then credit again");
        assert!(limiter.peek(1_300).remaining <= 100 - 40 - 20);
    }

    #[test]
    fn a_full_deployment_refuses_credit() {
        let limiter = Limiter::new(limit(100, 10), true);
        assert!(limiter.admit(1_000).is_ok());
        let wanted = limiter.wanted(1_000).unwrap();
        // Other nodes hold all 100.
        limiter.granted(&wanted, &[0; SLOTS], 100);
        assert!(limiter.admit(1_001).is_err());
    }
}
