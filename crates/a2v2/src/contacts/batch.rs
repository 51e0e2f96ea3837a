//! Reads of single contacts by id, gathered into one statement when the database is shared.
//!
//! With PostgreSQL most of a read's cost is the round trip and each end's work per statement,
//! not the row. A read asked for while every runner has a statement in flight waits in a
//! queue; the next runner to come free takes everything queued (up to `MAX_BATCH`) and reads
//! all of it in one statement. With nothing in flight a read goes alone at once, so a quiet
//! server adds no wait. Each statement starts after every read it answers was asked for, so
//! like a statement of its own it sees every write committed before.

use std::sync::{Arc, OnceLock};

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::{
    model::contact::Contact,
    store::{self, Store, StoreError},
};

/// Statements in flight at once per process: half the cores, at least one and at most eight.
/// Few enough that reads queue and share statements under load (each statement costs both
/// ends a round trip and a wake-up, whatever its rows), enough to use a few database cores.
/// On two cores one runner served a fifth more reads than four, at a lower p99.
fn runners() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| (cores.get() / 2).clamp(1, 8))
}

const MAX_BATCH: usize = 64;

type Reply = oneshot::Sender<Result<Contact, StoreError>>;

struct Pending {
    agent_id: String,
    id: String,
    reply: Reply,
}

#[derive(Clone, Default)]
pub(super) struct Batcher {
    queue: Arc<OnceLock<mpsc::UnboundedSender<Pending>>>,
}

impl Batcher {
    /// The agent's contact `id`, read together with whatever other reads are waiting.
    pub(super) async fn get(
        &self,
        store: &Store,
        agent_id: &str,
        id: &str,
    ) -> Result<Contact, StoreError> {
        let queue = self.queue.get_or_init(|| start(store));
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            agent_id: agent_id.to_owned(),
            id: id.to_owned(),
            reply,
        };
        if queue.send(pending).is_err() {
            return read_alone(store, agent_id, id).await;
        }
        match answer.await {
            Ok(result) => result,
            // A runner stopped without answering (its task was torn down): read directly.
            Err(_) => read_alone(store, agent_id, id).await,
        }
    }
}

fn start(store: &Store) -> mpsc::UnboundedSender<Pending> {
    let (sender, receiver) = mpsc::unbounded_channel();
    let receiver = Arc::new(Mutex::new(receiver));
    for _ in 0..runners() {
        let receiver = Arc::clone(&receiver);
        let store = store.clone();
        tokio::spawn(async move {
            while let Some(batch) = next_batch(&receiver).await {
                answer(&store, batch).await;
            }
        });
    }
    sender
}

/// Waits for one read, then takes whatever else is already queued.
async fn next_batch(receiver: &Mutex<mpsc::UnboundedReceiver<Pending>>) -> Option<Vec<Pending>> {
    let mut receiver = receiver.lock().await;
    let first = receiver.recv().await?;
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match receiver.try_recv() {
            Ok(pending) => batch.push(pending),
            Err(_) => break,
        }
    }
    Some(batch)
}

async fn answer(store: &Store, batch: Vec<Pending>) {
    if let [single] = &batch[..] {
        let result = read_alone(store, &single.agent_id, &single.id).await;
        if let Some(pending) = batch.into_iter().next() {
            let _ = pending.reply.send(result);
        }
        return;
    }
    let ids: Vec<&str> = batch.iter().map(|pending| pending.id.as_str()).collect();
    let found = async {
        let mut conn = store.conn().await?;
        store::contacts::get_many(&mut conn, &ids).await
    }
    .await;
    match found {
        Ok(rows) => {
            for pending in batch {
                // Another agent's contact is the same as a missing one. The same contact may
                // be asked for more than once in a batch.
                let result = rows
                    .iter()
                    .find(|(agent_id, contact)| {
                        contact.id == pending.id && *agent_id == pending.agent_id
                    })
                    .map(|(_, contact)| contact.clone())
                    .ok_or(StoreError::NotFound);
                let _ = pending.reply.send(result);
            }
        }
        // Each read then goes alone, so that each gets the error it would have had.
        Err(_) => {
            for pending in batch {
                let result = read_alone(store, &pending.agent_id, &pending.id).await;
                let _ = pending.reply.send(result);
            }
        }
    }
}

async fn read_alone(store: &Store, agent_id: &str, id: &str) -> Result<Contact, StoreError> {
    let mut conn = store.conn().await?;
    store::contacts::get(&mut conn, agent_id, id).await
}
