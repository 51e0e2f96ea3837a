//! The contacts service: create, read, update and delete an agent's contacts, with their
//! audit events, `If-Match` versions, `Idempotency-Key` replays and the read cache.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;

use super::{
    ListQuery, Precondition,
    batch::Batcher,
    cache::{ContactCache, Entry},
    idempotency::{self, Idempotency},
    validation::ContactPatch,
};
use crate::{
    audit,
    error::{DomainError, Result},
    model::{
        audit::{By, NewEvent, Target},
        contact::{Contact, ContactFields},
        new_id, now_ms,
        page::Page,
    },
    store::{self, Constraint, Store, StoreError, Tx, idempotency::StoredResponse},
};

/// Unconditional writes that lose a race re-read and try again at most this often.
const WRITE_ATTEMPTS: usize = 50;

/// What a create did: a new contact, or the replay of an earlier response.
pub enum Created {
    New(Box<Contact>),
    Replayed(StoredResponse),
}

#[derive(Clone)]
pub struct Contacts {
    pub(super) store: Store,
    pub(super) cache: ContactCache,
    /// Reads by id share statements where each costs a round trip (several nodes).
    batch: Option<Batcher>,
}

fn target(contact: &Contact) -> Target {
    let label = contact.fields.label();
    Target::new(
        "contact",
        &contact.id,
        if label.is_empty() {
            &contact.id
        } else {
            &label
        },
    )
}

fn body_of(contact: &Contact) -> Result<String> {
    serde_json::to_string(contact).map_err(DomainError::internal)
}

impl Contacts {
    /// The read cache is on only where this server is the sole writer (SQLite): with
    /// PostgreSQL other nodes change the same rows.
    pub fn new(store: Store) -> Self {
        let cache = ContactCache::new(!store.is_shared());
        let batch = store.is_shared().then(Batcher::default);
        Self {
            store,
            cache,
            batch,
        }
    }

    /// Entries and bytes held by the read cache.
    pub fn cache_size(&self) -> (usize, usize) {
        self.cache.size()
    }

    /// The answer to a taken email: 409 naming the contact that has it.
    async fn contact_exists(&self, agent_id: &str, fields: &ContactFields) -> DomainError {
        let Some(email_lower) = fields.email_lower() else {
            return DomainError::internal(anyhow::anyhow!(
                "unique violation on a contact without email"
            ));
        };
        let found = async {
            let mut conn = self.store.conn().await?;
            store::contacts::id_by_email(&mut conn, agent_id, &email_lower).await
        }
        .await;
        match found {
            Ok(Some(existing_id)) => DomainError::ContactExists { existing_id },
            // The other contact went away meanwhile; the client may simply retry.
            Ok(None) => DomainError::Conflict(
                "Another contact had this email a moment ago; retry the request.".into(),
            ),
            Err(err) => err.into(),
        }
    }

    /// The response stored under a request's idempotency key, if one is younger than 24
    /// hours; a validation error when the key was first used with another body.
    pub async fn stored_response(
        &self,
        agent_id: &str,
        request: &Idempotency,
    ) -> Result<Option<StoredResponse>> {
        let since = now_ms() - idempotency::WINDOW_MS;
        let mut conn = self.store.conn().await?;
        store::idempotency::find(&mut conn, agent_id, &request.key, since)
            .await?
            .map(|stored| idempotency::replay(stored, &request.request_hash))
            .transpose()
    }

    /// Creates a contact. With an idempotency key, the response is stored with it; a
    /// concurrent request with the same key replays this one's response.
    /// `location` gives the URL of the new contact from its id, for the replayed response.
    pub async fn create(
        &self,
        by: &By,
        agent_id: &str,
        fields: ContactFields,
        idempotency: Option<Idempotency>,
        location: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<Created> {
        let now = now_ms();
        let since = now - idempotency::WINDOW_MS;
        let contact = Contact {
            id: new_id("ct"),
            fields,
            version: 1,
            created_at: now,
            updated_at: now,
            created_by: by.actor.clone(),
            updated_by: by.actor.clone(),
        };
        let mut tx = self.store.begin().await?;
        if let Some(request) = &idempotency {
            let stored = StoredResponse {
                request_hash: request.request_hash.clone(),
                status: 201,
                body: body_of(&contact)?,
                location: Some(location(&contact.id)),
            };
            // First in the transaction: a concurrent request with the same key waits here and
            // then replays this one's response instead of reporting a duplicate email.
            match store::idempotency::insert(&mut tx, agent_id, &request.key, &stored, now, since)
                .await
            {
                Ok(()) => {}
                Err(StoreError::Conflict(Constraint::Unique)) => {
                    drop(tx);
                    let mut conn = self.store.conn().await?;
                    return match store::idempotency::find(&mut conn, agent_id, &request.key, since)
                        .await?
                    {
                        Some(stored) => idempotency::replay(stored, &request.request_hash)
                            .map(Created::Replayed),
                        None => Err(DomainError::Conflict(
                            "Another request with this Idempotency-Key is in progress; retry \
                             shortly."
                                .into(),
                        )),
                    };
                }
                Err(err) => return Err(err.into()),
            }
        }
        match store::contacts::insert(&mut tx, agent_id, &contact).await {
            Ok(()) => {}
            Err(StoreError::Conflict(Constraint::Unique)) => {
                drop(tx);
                return Err(self.contact_exists(agent_id, &contact.fields).await);
            }
            Err(err) => return Err(err.into()),
        }
        audit::record(
            &mut tx,
            by,
            NewEvent {
                action: "contact.created",
                agent_id: Some(agent_id),
                target: Some(target(&contact)),
                details: json!({}),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Created::New(Box::new(contact)))
    }

    /// One page of the agent's contacts in creation order.
    pub async fn list(&self, agent_id: &str, query: &ListQuery) -> Result<Page<Contact>> {
        let page = query.page()?;
        let filter = query.filter()?;
        let mut conn = self.store.conn().await?;
        let contacts = store::contacts::list(
            &mut conn,
            agent_id,
            &filter,
            page.after.as_deref(),
            page.limit + 1,
        )
        .await?;
        Ok(Page::from_fetched(contacts, page.limit, |c| c.id.clone()))
    }

    /// Like [`Self::list`], for the dashboard: `NotFound` for an unknown agent.
    pub async fn list_of_agent(&self, agent_id: &str, query: &ListQuery) -> Result<Page<Contact>> {
        self.ensure_agent(agent_id).await?;
        self.list(agent_id, query).await
    }

    /// `NotFound` unless the agent exists: the dashboard names the agent in its paths.
    pub async fn ensure_agent(&self, agent_id: &str) -> Result<()> {
        let mut conn = self.store.conn().await?;
        store::agents::get(&mut conn, agent_id).await?;
        Ok(())
    }

    pub async fn get(&self, agent_id: &str, id: &str) -> Result<Contact> {
        if let Some(batch) = &self.batch {
            return Ok(batch.get(&self.store, agent_id, id).await?);
        }
        let mut conn = self.store.conn().await?;
        Ok(store::contacts::get(&mut conn, agent_id, id).await?)
    }

    /// The contact as `GET` returns it, serialised, from the read cache when it holds it.
    pub async fn get_serialized(&self, agent_id: &str, id: &str) -> Result<Arc<Entry>> {
        if let Some(entry) = self.cache.get(agent_id, id) {
            return Ok(entry);
        }
        let generation = self.cache.generation();
        let contact = self.get(agent_id, id).await?;
        let entry = Arc::new(Entry {
            agent_id: agent_id.to_owned(),
            version: contact.version,
            body: Bytes::from(body_of(&contact)?),
        });
        self.cache
            .put_if_unchanged(generation, id, Arc::clone(&entry));
        Ok(entry)
    }

    /// Applies a partial update. With a precondition that does not name the current version:
    /// `PreconditionFailed` and nothing changes. The write is conditional on the version read,
    /// so of concurrent PATCHes with the same `If-Match` exactly one succeeds.
    pub async fn update(
        &self,
        by: &By,
        agent_id: &str,
        id: &str,
        patch: &ContactPatch,
        precondition: Option<&Precondition>,
    ) -> Result<Contact> {
        for _ in 0..WRITE_ATTEMPTS {
            let current = self.get(agent_id, id).await?;
            if precondition.is_some_and(|p| !p.allows(current.version)) {
                return Err(DomainError::PreconditionFailed);
            }
            let mut next = current.clone();
            let changed = next.fields.apply(patch);
            if changed.is_empty() {
                return Ok(current);
            }
            if let Some(errors) = next.fields.identity_error() {
                return Err(DomainError::Validation(errors));
            }
            next.version = current.version + 1;
            next.updated_at = now_ms().max(current.updated_at);
            next.updated_by = by.actor.clone();
            let tags_changed = changed.contains(&"tags");
            let mut tx = self.store.begin().await?;
            let written = match store::contacts::update_if_version(
                &mut tx,
                agent_id,
                &next,
                current.version,
                tags_changed,
            )
            .await
            {
                Ok(written) => written,
                Err(StoreError::Conflict(Constraint::Unique)) => {
                    drop(tx);
                    return Err(self.contact_exists(agent_id, &next.fields).await);
                }
                Err(err) => return Err(err.into()),
            };
            if !written {
                // Changed or deleted since it was read: the next round answers 412 or 404
                // with a precondition, or applies the patch to the newer version otherwise.
                continue;
            }
            audit::record(
                &mut tx,
                by,
                NewEvent {
                    action: "contact.updated",
                    agent_id: Some(agent_id),
                    target: Some(target(&next)),
                    details: json!({ "changed": changed, "version": next.version }),
                },
            )
            .await?;
            self.commit_and_forget(tx, id).await?;
            return Ok(next);
        }
        Err(DomainError::Conflict(
            "The contact is being changed by many requests at once; retry shortly.".into(),
        ))
    }

    /// Deletes the contact; `PreconditionFailed` when a precondition does not name the
    /// current version.
    pub async fn delete(
        &self,
        by: &By,
        agent_id: &str,
        id: &str,
        precondition: Option<&Precondition>,
    ) -> Result<()> {
        for _ in 0..WRITE_ATTEMPTS {
            let current = self.get(agent_id, id).await?;
            if precondition.is_some_and(|p| !p.allows(current.version)) {
                return Err(DomainError::PreconditionFailed);
            }
            let mut tx = self.store.begin().await?;
            if !store::contacts::delete_if_version(&mut tx, agent_id, id, current.version).await? {
                continue;
            }
            audit::record(
                &mut tx,
                by,
                NewEvent {
                    action: "contact.deleted",
                    agent_id: Some(agent_id),
                    target: Some(target(&current)),
                    details: json!({ "version": current.version }),
                },
            )
            .await?;
            self.commit_and_forget(tx, id).await?;
            return Ok(());
        }
        Err(DomainError::Conflict(
            "The contact is being changed by many requests at once; retry shortly.".into(),
        ))
    }

    /// Commits, then drops the contact from the read cache, as one step that a client hanging
    /// up cannot cut short: a commit that lands must never leave the old contact cached.
    async fn commit_and_forget(&self, tx: Tx, id: &str) -> Result<()> {
        let (cache, id) = (self.cache.clone(), id.to_owned());
        tokio::spawn(async move {
            let committed = tx.commit().await;
            cache.invalidate(&id);
            committed
        })
        .await
        .map_err(DomainError::internal)??;
        Ok(())
    }
}
