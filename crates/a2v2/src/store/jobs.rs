//! The `extraction_jobs` table: a durable queue that every node takes work from.
//!
//! A job is claimed by writing a fresh lease token and a lease end; a claim only takes a job
//! whose lease is absent or over, so a node that died leaves work that another takes again
//! once the lease runs out. On PostgreSQL claims skip rows other nodes are claiming
//! (`FOR UPDATE SKIP LOCKED`); SQLite serialises write transactions (`BEGIN IMMEDIATE`), so a
//! claim there is one step already. A job is finished by deleting its row under the caller's
//! token, so it is completed at most once.

use sqlx::{Row, any::AnyRow};

use super::{Backend, Db, StoreError};
use crate::model::document::{Job, JobActor};

const RETURNING: &str = "id, document_id, agent_id, attempts, lease_token, create_contacts, \
    actor_type, actor_id, actor_label, actor_ip, actor_user_agent";

fn from_row(row: &AnyRow) -> Result<Job, sqlx::Error> {
    Ok(Job {
        id: row.try_get("id")?,
        document_id: row.try_get("document_id")?,
        agent_id: row.try_get("agent_id")?,
        attempts: row.try_get("attempts")?,
        lease_token: row.try_get("lease_token")?,
        create_contacts: row.try_get::<i64, _>("create_contacts")? != 0,
        actor: JobActor {
            kind: row.try_get("actor_type")?,
            id: row.try_get("actor_id")?,
            label: row.try_get("actor_label")?,
            ip: row.try_get("actor_ip")?,
            user_agent: row.try_get("actor_user_agent")?,
        },
    })
}

/// A job to insert.
pub struct NewJob<'a> {
    pub id: &'a str,
    pub document_id: &'a str,
    pub agent_id: &'a str,
    pub create_contacts: bool,
    pub actor: &'a JobActor,
    /// A lease taken at once (token, end): the node queuing the job runs it itself.
    pub lease: Option<(&'a str, i64)>,
    pub now: i64,
}

/// Queues an extraction of the document; `Conflict(Unique)` when one is already queued.
pub async fn insert(db: &mut impl Db, job: &NewJob<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO extraction_jobs (id, document_id, agent_id, attempts, lease_token, \
         lease_until, create_contacts, actor_type, actor_id, actor_label, actor_ip, \
         actor_user_agent, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
         $12, $13)",
    )
    .bind(job.id)
    .bind(job.document_id)
    .bind(job.agent_id)
    .bind(i64::from(job.lease.is_some()))
    .bind(job.lease.map(|(token, _)| token))
    .bind(job.lease.map(|(_, until)| until))
    .bind(i64::from(job.create_contacts))
    .bind(&job.actor.kind)
    .bind(&job.actor.id)
    .bind(&job.actor.label)
    .bind(&job.actor.ip)
    .bind(&job.actor.user_agent)
    .bind(job.now)
    .execute(db.raw())
    .await?;
    Ok(())
}

/// What a claim asks for.
pub struct Claim<'a> {
    /// The new lease's token: only its holder can renew or finish the job.
    pub token: &'a str,
    pub now: i64,
    pub lease_until: i64,
    /// Jobs started this often are not claimed again (see [`abandoned`]).
    pub max_attempts: i64,
}

/// Whether some job is free to claim: a read, so that idle nodes poll without writing.
pub async fn any_free(db: &mut impl Db, now: i64, max_attempts: i64) -> Result<bool, StoreError> {
    let row = sqlx::query(
        "SELECT id FROM extraction_jobs WHERE (lease_until IS NULL OR lease_until < $1) \
         AND attempts < $2 LIMIT 1",
    )
    .bind(now)
    .bind(max_attempts)
    .fetch_optional(db.raw())
    .await?;
    Ok(row.is_some())
}

/// Claims the oldest job that is free (never leased, or its lease is over), if any.
pub async fn claim_next(db: &mut impl Db, claim: &Claim<'_>) -> Result<Option<Job>, StoreError> {
    let lock = match db.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE extraction_jobs SET lease_token = $1, lease_until = $2, attempts = attempts + 1 \
         WHERE id = (SELECT id FROM extraction_jobs \
           WHERE (lease_until IS NULL OR lease_until < $3) AND attempts < $4 \
           ORDER BY created_at, id LIMIT 1{lock}) \
         AND (lease_until IS NULL OR lease_until < $3) \
         RETURNING {RETURNING}"
    );
    let row = sqlx::query(&sql)
        .bind(claim.token)
        .bind(claim.lease_until)
        .bind(claim.now)
        .bind(claim.max_attempts)
        .fetch_optional(db.raw())
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// Extends a held lease; false when the lease is no longer the caller's.
pub async fn renew(
    db: &mut impl Db,
    job_id: &str,
    token: &str,
    lease_until: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE extraction_jobs SET lease_until = $1 WHERE id = $2 AND lease_token = $3",
    )
    .bind(lease_until)
    .bind(job_id)
    .bind(token)
    .execute(db.raw())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes a job whose lease the caller still holds; false when another node took it (or it
/// was deleted with its document): then the caller's result must be discarded.
pub async fn finish(db: &mut impl Db, job_id: &str, token: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM extraction_jobs WHERE id = $1 AND lease_token = $2")
        .bind(job_id)
        .bind(token)
        .execute(db.raw())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Lets go of a held lease at once, so that any node may take the job again.
pub async fn release(db: &mut impl Db, job_id: &str, token: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE extraction_jobs SET lease_token = NULL, lease_until = NULL \
         WHERE id = $1 AND lease_token = $2",
    )
    .bind(job_id)
    .bind(token)
    .execute(db.raw())
    .await?;
    Ok(())
}

/// Removes up to `limit` jobs that were started `max_attempts` times without finishing and
/// whose last lease is over, returning them (with `attempts`) so their documents can be
/// marked failed in the same transaction.
pub async fn take_abandoned(
    db: &mut impl Db,
    now: i64,
    max_attempts: i64,
    limit: i64,
) -> Result<Vec<Job>, StoreError> {
    let lock = match db.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let rows = sqlx::query(&format!(
        "SELECT {RETURNING} FROM extraction_jobs WHERE attempts >= $1 \
         AND lease_until IS NOT NULL AND lease_until < $2 ORDER BY created_at LIMIT $3{lock}"
    ))
    .bind(max_attempts)
    .bind(now)
    .bind(limit)
    .fetch_all(db.raw())
    .await?;
    let jobs = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
    for job in &jobs {
        sqlx::query("DELETE FROM extraction_jobs WHERE id = $1")
            .bind(&job.id)
            .execute(db.raw())
            .await?;
    }
    Ok(jobs)
}
