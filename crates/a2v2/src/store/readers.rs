//! Connections for reads outside transactions on PostgreSQL, kept apart from the pool.
//!
//! sqlx's pool pings every connection handed back to it (and, by default, every one handed
//! out): two round trips more per read, which cost more than the read itself. These
//! connections skip both. A slot checks its connection only when something suggests it may
//! be broken: a lost connection was seen anywhere in the process since the slot last
//! checked, the connection sat idle long enough for a server or proxy to drop it, or the
//! store moved to a new primary. A pending reply of a query whose request was cancelled is
//! drained by the driver before the next statement, so a connection stays usable.
//!
//! Reads see every write committed before they start, as they would through the pool: each
//! statement runs on the primary in its own implicit transaction.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use sqlx::{AnyConnection, Connection};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::primary::{ACQUIRE_TIMEOUT, Primary};

/// Connection failures seen by this process (lost connections, a server shutting down, a
/// standby refusing writes). Counted where errors are sorted, in `store::error`.
static CONNECTION_FAILURES: AtomicU64 = AtomicU64::new(0);

pub(super) fn connection_failed() {
    CONNECTION_FAILURES.fetch_add(1, Ordering::Relaxed);
}

/// A connection idle this long is pinged before use.
const IDLE_CHECK: Duration = Duration::from_secs(10);

pub(super) struct Readers {
    slots: Box<[Arc<Mutex<Slot>>]>,
    next: AtomicUsize,
}

struct Slot {
    conn: Option<AnyConnection>,
    generation: u64,
    failures_seen: u64,
    last_used: Instant,
}

/// A reader connection, returned to its slot on drop.
pub(super) struct Reader {
    slot: OwnedMutexGuard<Slot>,
}

impl Reader {
    pub(super) fn connection(&mut self) -> &mut AnyConnection {
        match self.slot.conn.as_mut() {
            Some(conn) => conn,
            None => unreachable!("a reader is handed out connected"),
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.slot.last_used = Instant::now();
    }
}

impl Readers {
    pub(super) fn new(size: usize) -> Self {
        let slots = (0..size.max(1))
            .map(|_| {
                Arc::new(Mutex::new(Slot {
                    conn: None,
                    generation: 0,
                    failures_seen: 0,
                    last_used: Instant::now(),
                }))
            })
            .collect();
        Self {
            slots,
            next: AtomicUsize::new(0),
        }
    }

    /// A free slot that holds a connection if there is one (so that connections are opened
    /// only when more reads run at once than are open), else a free slot, else the next
    /// slot in turn once it is free.
    pub(super) async fn acquire(&self, primary: &Primary) -> Result<Reader, sqlx::Error> {
        let mut unconnected = None;
        let mut connected = None;
        for slot in self.slots.iter() {
            let Ok(guard) = Arc::clone(slot).try_lock_owned() else {
                continue;
            };
            if guard.conn.is_some() {
                connected = Some(guard);
                break;
            }
            unconnected.get_or_insert(guard);
        }
        let slot = match connected.or(unconnected) {
            Some(slot) => slot,
            None => {
                let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
                tokio::time::timeout(ACQUIRE_TIMEOUT, Arc::clone(&self.slots[turn]).lock_owned())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)?
            }
        };
        let mut reader = Reader { slot };
        reader.ready(primary).await?;
        Ok(reader)
    }

    /// Closes every connection not in use.
    pub(super) async fn close(&self) {
        for slot in self.slots.iter() {
            if let Ok(mut slot) = slot.try_lock()
                && let Some(conn) = slot.conn.take()
            {
                let _ = conn.close().await;
            }
        }
    }
}

impl Reader {
    async fn ready(&mut self, primary: &Primary) -> Result<(), sqlx::Error> {
        let generation = primary.generation();
        let failures = CONNECTION_FAILURES.load(Ordering::Relaxed);
        let slot = &mut *self.slot;
        if slot.generation != generation {
            slot.conn = None;
        }
        if let Some(conn) = slot.conn.as_mut()
            && (slot.failures_seen != failures || slot.last_used.elapsed() >= IDLE_CHECK)
            && conn.ping().await.is_err()
        {
            slot.conn = None;
        }
        if slot.conn.is_none() {
            let conn = primary.connect_one().await.inspect_err(|err| {
                primary.report(err);
            })?;
            slot.conn = Some(conn);
            slot.generation = generation;
        }
        slot.failures_seen = failures;
        Ok(())
    }
}
