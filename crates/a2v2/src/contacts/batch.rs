//! Reads of single contacts by id, gathered into one statement when the database is shared.
//!
//! With PostgreSQL most of a read's cost is the round trip and each end's work per statement,
//! not the row. While fewer than `RUNNERS` statements are in flight, a read runs its own
//! statement on the request's task, taking along whatever reads are queued; with `RUNNERS`
//! in flight it queues. A runner that finishes with reads queued hands them to a task of
//! their own, which keeps taking the queue until it is empty. So a quiet server adds no
//! wait and no task switch, and a busy one shares statements. Each statement starts after
//! every read it answers was asked for, so like a statement of its own it sees every write
//! committed before.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::{
    model::contact::Contact,
    store::{self, Store, StoreError},
};

/// Statements in flight at once per process: enough to keep a few database cores busy, few
/// enough that reads queue and share statements under load.
const RUNNERS: usize = 4;
const MAX_BATCH: usize = 64;

type Reply = oneshot::Sender<Result<Contact, StoreError>>;

struct Pending {
    agent_id: String,
    id: String,
    reply: Reply,
}

#[derive(Default)]
struct Queue {
    running: usize,
    waiting: Vec<Pending>,
}

#[derive(Clone, Default)]
pub(super) struct Batcher {
    queue: Arc<Mutex<Queue>>,
}

impl Batcher {
    /// The agent's contact `id`, read together with whatever other reads are waiting.
    pub(super) async fn get(
        &self,
        store: &Store,
        agent_id: &str,
        id: &str,
    ) -> Result<Contact, StoreError> {
        let (reply, answer) = oneshot::channel();
        let taken = {
            let mut queue = self.lock();
            if queue.running < RUNNERS {
                queue.running += 1;
                Some(take(&mut queue.waiting, MAX_BATCH - 1))
            } else {
                queue.waiting.push(Pending {
                    agent_id: agent_id.to_owned(),
                    id: id.to_owned(),
                    reply,
                });
                None
            }
        };
        let Some(others) = taken else {
            return match answer.await {
                Ok(result) => result,
                // Its runner was torn down before answering: read directly.
                Err(_) => read_alone(store, agent_id, id).await,
            };
        };
        // Hands the queue on even if this request is dropped mid-statement.
        let _runner = Runner {
            batcher: self.clone(),
            store: store.clone(),
        };
        read_with(store, others, agent_id, id).await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// After a statement: the next batch for this runner, or none (and one runner fewer).
    fn next_batch(&self) -> Option<Vec<Pending>> {
        let mut queue = self.lock();
        if queue.waiting.is_empty() {
            queue.running -= 1;
            None
        } else {
            Some(take(&mut queue.waiting, MAX_BATCH))
        }
    }
}

/// A running statement's claim on one of the `RUNNERS`; when the statement is done, it
/// serves what queued meanwhile on a task of its own, or gives the claim back.
struct Runner {
    batcher: Batcher,
    store: Store,
}

impl Drop for Runner {
    fn drop(&mut self) {
        let Some(batch) = self.batcher.next_batch() else {
            return;
        };
        let (batcher, store) = (self.batcher.clone(), self.store.clone());
        let serve = async move {
            let mut batch = batch;
            loop {
                if let Some(last) = batch.pop() {
                    let result = read_with(&store, batch, &last.agent_id, &last.id).await;
                    let _ = last.reply.send(result);
                }
                match batcher.next_batch() {
                    Some(next) => batch = next,
                    None => break,
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(serve)),
            // Shutting down: the queued reads see their reply dropped and read directly.
            Err(_) => {
                self.batcher.lock().running -= 1;
            }
        }
    }
}

fn take(waiting: &mut Vec<Pending>, most: usize) -> Vec<Pending> {
    let keep = waiting.len().saturating_sub(most);
    waiting.split_off(keep)
}

/// The agent's contact `id`, read in one statement with the reads of `others`, which are
/// answered on their way.
async fn read_with(
    store: &Store,
    others: Vec<Pending>,
    agent_id: &str,
    id: &str,
) -> Result<Contact, StoreError> {
    if others.is_empty() {
        return read_alone(store, agent_id, id).await;
    }
    let mut ids: Vec<&str> = others.iter().map(|pending| pending.id.as_str()).collect();
    ids.push(id);
    let found = async {
        let mut conn = store.conn().await?;
        store::contacts::get_many(&mut conn, &ids).await
    }
    .await;
    match found {
        Ok(rows) => {
            // Another agent's contact is the same as a missing one. The same contact may be
            // asked for more than once in a batch.
            let pick = |agent_id: &str, id: &str| {
                rows.iter()
                    .find(|(owner, contact)| contact.id == id && owner == agent_id)
                    .map(|(_, contact)| contact.clone())
                    .ok_or(StoreError::NotFound)
            };
            for pending in others {
                let _ = pending.reply.send(pick(&pending.agent_id, &pending.id));
            }
            pick(agent_id, id)
        }
        // Each read then goes alone, so that each gets the error it would have had.
        Err(_) => {
            for pending in others {
                let result = read_alone(store, &pending.agent_id, &pending.id).await;
                let _ = pending.reply.send(result);
            }
            read_alone(store, agent_id, id).await
        }
    }
}

async fn read_alone(store: &Store, agent_id: &str, id: &str) -> Result<Contact, StoreError> {
    let mut conn = store.conn().await?;
    store::contacts::get(&mut conn, agent_id, id).await
}
