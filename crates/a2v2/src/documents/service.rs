//! The documents service: upload, read, correct, re-extract and delete an agent's documents,
//! with their audit events and `If-Match` versions.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use a2v2_extract::{Ocr, Schema};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, Semaphore};

use super::{ListQuery, input::DocumentPatch, worker::ExtractionMetrics};
use crate::{
    audit,
    config::ExtractionSettings,
    contacts::{Contacts, Precondition},
    error::{DomainError, Result},
    model::{
        audit::{By, NewEvent, Target},
        document::{Corrections, Document, Extracted, Job, JobActor, Status},
        new_id, now_ms,
        page::Page,
    },
    store::{self, Constraint, Store, StoreError, jobs::NewJob},
};

/// Unconditional writes that lose a race re-read and try again at most this often.
const WRITE_ATTEMPTS: usize = 50;

/// An upload, read and checked by the HTTP layer.
pub struct Upload {
    pub bytes: Bytes,
    pub filename: Option<String>,
    /// The parsed schema and the JSON as sent.
    pub schema: Option<(Schema, Value)>,
    pub metadata: Map<String, Value>,
    /// Also write the contacts found into the agent's CRM.
    pub create_contacts: bool,
}

#[derive(Clone)]
pub struct Documents(pub(super) Arc<Inner>);

pub(super) struct Inner {
    pub store: Store,
    pub contacts: Contacts,
    pub settings: ExtractionSettings,
    pub ocr: Option<Arc<dyn Ocr>>,
    /// One permit per extraction running on this node.
    pub permits: Arc<Semaphore>,
    /// Wakes this node's queue loop when it queued work itself.
    pub wake: Notify,
    pub metrics: ExtractionMetrics,
    /// The leases of the jobs running on this node (job id → token), let go at shutdown.
    pub held: Mutex<HashMap<String, String>>,
}

fn target(doc: &Document) -> Target {
    Target::new("document", &doc.id, doc.label())
}

fn job_actor(by: &By) -> JobActor {
    JobActor {
        kind: by.actor.kind.to_string(),
        id: by.actor.id.clone(),
        label: by.actor.label.clone(),
        ip: by.origin.ip.clone(),
        user_agent: by.origin.user_agent.clone(),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Documents {
    /// `ocr` reads images and scanned pages; `None` where OCR is unavailable.
    pub fn new(
        store: Store,
        contacts: Contacts,
        settings: ExtractionSettings,
        ocr: Option<Arc<dyn Ocr>>,
    ) -> Self {
        Self(Arc::new(Inner {
            store,
            contacts,
            permits: Arc::new(Semaphore::new(settings.workers)),
            settings,
            ocr,
            wake: Notify::new(),
            metrics: ExtractionMetrics::default(),
            held: Mutex::new(HashMap::new()),
        }))
    }

    /// Stores an upload and extracts it: small files while the caller waits (the document
    /// comes back `succeeded` or `failed`), others in the background (`processing`).
    /// `UnsupportedMediaType` when the bytes are of no supported format.
    pub async fn create(&self, by: &By, agent_id: &str, upload: Upload) -> Result<Document> {
        let format =
            a2v2_extract::detect(&upload.bytes, upload.filename.as_deref()).ok_or_else(|| {
                DomainError::UnsupportedMediaType(
                    "The file is not a supported format: send a PDF, DOCX, HTML, plain text, CSV, \
                     e-mail (.eml) or image (PNG, JPEG, TIFF, WebP) file."
                        .into(),
                )
            })?;
        let now = now_ms();
        let doc = Document {
            id: new_id("doc"),
            filename: upload.filename,
            content_type: format.content_type().to_owned(),
            size_bytes: i64::try_from(upload.bytes.len()).unwrap_or(i64::MAX),
            sha256: sha256_hex(&upload.bytes),
            status: Status::Processing,
            error: None,
            extracted: Extracted::default(),
            schema: upload.schema.map(|(_, value)| value),
            corrections: Corrections::default(),
            metadata: upload.metadata,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let inline = upload.bytes.len() <= self.0.settings.inline_max_bytes;
        let job = self.new_job(&doc.id, agent_id, by, upload.create_contacts, inline);
        let mut tx = self.0.store.begin().await?;
        store::documents::insert(&mut tx, agent_id, &doc, &upload.bytes).await?;
        self.insert_job(&mut tx, &job, now).await?;
        audit::record(
            &mut tx,
            by,
            NewEvent {
                action: "document.created",
                agent_id: Some(agent_id),
                target: Some(target(&doc)),
                details: json!({
                    "content_type": doc.content_type,
                    "size_bytes": doc.size_bytes,
                    "sha256": doc.sha256,
                    "create_contacts": upload.create_contacts,
                }),
            },
        )
        .await?;
        tx.commit().await?;
        self.start(job, inline).await;
        self.get(agent_id, &doc.id).await
    }

    /// A job for `document_id`; with `leased`, this node holds its lease from the start.
    fn new_job(
        &self,
        document_id: &str,
        agent_id: &str,
        by: &By,
        create_contacts: bool,
        leased: bool,
    ) -> Job {
        Job {
            id: new_id("job"),
            document_id: document_id.to_owned(),
            agent_id: agent_id.to_owned(),
            attempts: i64::from(leased),
            lease_token: if leased {
                new_id("lease")
            } else {
                String::new()
            },
            create_contacts,
            actor: job_actor(by),
        }
    }

    async fn insert_job(&self, tx: &mut store::Tx, job: &Job, now: i64) -> Result<()> {
        let lease = (job.attempts > 0).then(|| (job.lease_token.as_str(), now + self.lease_ms()));
        let inserted = store::jobs::insert(
            tx,
            &NewJob {
                id: &job.id,
                document_id: &job.document_id,
                agent_id: &job.agent_id,
                create_contacts: job.create_contacts,
                actor: &job.actor,
                lease,
                now,
            },
        )
        .await;
        match inserted {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict(Constraint::Unique)) => Err(DomainError::Conflict(
                "The document is already being extracted; wait until its status is no longer \
                 `processing`."
                    .into(),
            )),
            Err(err) => Err(err.into()),
        }
    }

    /// Runs a job this node leased while the caller waits, up to the inline budget; hands
    /// anything else to the queue.
    async fn start(&self, job: Job, inline: bool) {
        if !inline {
            self.0.wake.notify_one();
            return;
        }
        let deadline = tokio::time::Instant::now() + self.0.settings.inline_wait;
        match tokio::time::timeout_at(deadline, Arc::clone(&self.0.permits).acquire_owned()).await {
            Ok(Ok(permit)) => {
                let this = self.clone();
                // A task of its own: the extraction finishes even if the client hangs up or
                // the budget runs out first.
                let running = tokio::spawn(async move { this.run_job(job, permit).await });
                let _ = tokio::time::timeout_at(deadline, running).await;
            }
            _ => {
                // Every worker is busy: let any node take it.
                let released = async {
                    let mut conn = self.0.store.conn().await?;
                    store::jobs::release(&mut conn, &job.id, &job.lease_token).await
                }
                .await;
                if let Err(err) = released {
                    tracing::warn!(error = %err, job = %job.id, "releasing an extraction job failed; it is retaken when its lease ends");
                }
                self.0.wake.notify_one();
            }
        }
    }

    pub(super) fn lease_ms(&self) -> i64 {
        i64::try_from(self.0.settings.lease.as_millis()).unwrap_or(i64::MAX)
    }

    /// One page of the agent's documents in creation order, without their text.
    pub async fn list(&self, agent_id: &str, query: &ListQuery) -> Result<Page<Document>> {
        let page = query.page()?;
        let filter = query.filter()?;
        let mut conn = self.0.store.conn().await?;
        let docs = store::documents::list(
            &mut conn,
            agent_id,
            &filter,
            page.after.as_deref(),
            page.limit + 1,
        )
        .await?;
        Ok(Page::from_fetched(docs, page.limit, |d| d.id.clone()))
    }

    /// Like [`Self::list`], for the dashboard: `NotFound` for an unknown agent.
    pub async fn list_of_agent(&self, agent_id: &str, query: &ListQuery) -> Result<Page<Document>> {
        {
            let mut conn = self.0.store.conn().await?;
            store::agents::get(&mut conn, agent_id).await?;
        }
        self.list(agent_id, query).await
    }

    pub async fn get(&self, agent_id: &str, id: &str) -> Result<Document> {
        let mut conn = self.0.store.conn().await?;
        Ok(store::documents::get(&mut conn, agent_id, id).await?)
    }

    /// The document and its original bytes.
    pub async fn file(&self, agent_id: &str, id: &str) -> Result<(Document, Vec<u8>)> {
        let mut conn = self.0.store.conn().await?;
        let doc = store::documents::get(&mut conn, agent_id, id).await?;
        let bytes = store::documents::bytes(&mut conn, agent_id, id).await?;
        Ok((doc, bytes))
    }

    /// Applies a PATCH: file name, metadata and corrections. With a precondition that does
    /// not name the current version: `PreconditionFailed` and nothing changes.
    pub async fn update(
        &self,
        by: &By,
        agent_id: &str,
        id: &str,
        patch: &DocumentPatch,
        precondition: Option<&Precondition>,
    ) -> Result<Document> {
        for _ in 0..WRITE_ATTEMPTS {
            let current = self.get(agent_id, id).await?;
            if precondition.is_some_and(|p| !p.allows(current.version)) {
                return Err(DomainError::PreconditionFailed);
            }
            let mut next = current.clone();
            let changed = apply(&mut next, patch);
            if changed.is_empty() {
                return Ok(current);
            }
            next.version = current.version + 1;
            next.updated_at = now_ms().max(current.updated_at);
            let mut tx = self.0.store.begin().await?;
            if !store::documents::update_if_version(&mut tx, agent_id, &next, current.version)
                .await?
            {
                continue;
            }
            audit::record(
                &mut tx,
                by,
                NewEvent {
                    action: "document.updated",
                    agent_id: Some(agent_id),
                    target: Some(target(&next)),
                    details: json!({ "changed": changed, "version": next.version }),
                },
            )
            .await?;
            tx.commit().await?;
            return Ok(next);
        }
        Err(DomainError::Conflict(
            "The document is being changed by many requests at once; retry shortly.".into(),
        ))
    }

    /// Runs the extraction again, keeping the corrections: with the stored schema, or with
    /// `schema` when given (`Some(None)`: without one), which is stored for later runs.
    /// Answers like an upload: done, or still `processing`.
    pub async fn extract_again(
        &self,
        by: &By,
        agent_id: &str,
        id: &str,
        create_contacts: bool,
        schema: Option<Option<(Schema, Value)>>,
    ) -> Result<Document> {
        let now = now_ms();
        let mut tx = self.0.store.begin().await?;
        let doc = store::documents::get(&mut tx, agent_id, id).await?;
        let inline = usize::try_from(doc.size_bytes).unwrap_or(usize::MAX)
            <= self.0.settings.inline_max_bytes;
        let job = self.new_job(id, agent_id, by, create_contacts, inline);
        if !store::documents::reset_for_extraction(&mut tx, agent_id, id, now).await? {
            return Err(DomainError::NotFound);
        }
        let mut changed = vec!["extraction"];
        if let Some(schema) = schema {
            let schema = schema.map(|(_, value)| value);
            if schema != doc.schema {
                store::documents::set_schema(&mut tx, agent_id, id, schema.as_ref()).await?;
                changed.push("schema");
            }
        }
        self.insert_job(&mut tx, &job, now).await?;
        audit::record(
            &mut tx,
            by,
            NewEvent {
                action: "document.updated",
                agent_id: Some(agent_id),
                target: Some(target(&doc)),
                details: json!({ "changed": changed, "create_contacts": create_contacts }),
            },
        )
        .await?;
        tx.commit().await?;
        self.start(job, inline).await;
        self.get(agent_id, id).await
    }

    /// Deletes the document, its bytes, text and fields; `PreconditionFailed` when a
    /// precondition does not name the current version.
    pub async fn delete(
        &self,
        by: &By,
        agent_id: &str,
        id: &str,
        precondition: Option<&Precondition>,
    ) -> Result<()> {
        let mut tx = self.0.store.begin().await?;
        let current = store::documents::get(&mut tx, agent_id, id).await?;
        if precondition.is_some_and(|p| !p.allows(current.version)) {
            return Err(DomainError::PreconditionFailed);
        }
        if !store::documents::delete(&mut tx, agent_id, id).await? {
            return Err(DomainError::NotFound);
        }
        audit::record(
            &mut tx,
            by,
            NewEvent {
                action: "document.deleted",
                agent_id: Some(agent_id),
                target: Some(target(&current)),
                details: json!({ "sha256": current.sha256, "size_bytes": current.size_bytes }),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Applies `patch` to `doc`; returns what changed, for the audit event.
fn apply(doc: &mut Document, patch: &DocumentPatch) -> Vec<String> {
    let mut changed = Vec::new();
    if let Some(filename) = &patch.filename
        && doc.filename != *filename
    {
        doc.filename.clone_from(filename);
        changed.push("filename".to_owned());
    }
    if let Some(metadata) = &patch.metadata
        && doc.metadata != *metadata
    {
        doc.metadata.clone_from(metadata);
        changed.push("metadata".to_owned());
    }
    for (category, value) in &patch.fields {
        let before = doc.corrections.fields.get(category).cloned();
        if value.is_null() {
            doc.corrections.fields.remove(category);
        } else {
            doc.corrections
                .fields
                .insert(category.clone(), value.clone());
        }
        if doc.corrections.fields.get(category).cloned() != before {
            changed.push(format!("fields.{category}"));
        }
    }
    for (name, value) in &patch.schema_fields {
        if doc.corrections.schema_fields.get(name) != Some(value) {
            doc.corrections
                .schema_fields
                .insert(name.clone(), value.clone());
            changed.push(format!("schema_fields.{name}"));
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_lowercase_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
