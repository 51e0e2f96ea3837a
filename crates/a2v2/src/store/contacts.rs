//! The `contacts` and `contact_tags` tables. Every statement filters by the owning agent, so
//! another agent's contact is indistinguishable from a missing one. Tags are also kept one per
//! row in `contact_tags`, so the `tag` filter walks an index in id order.

use serde_json::{Map, Value};
use sqlx::{Row, any::AnyRow};

use super::{Backend, Db, StoreError};
use crate::model::{
    audit::ActorRef,
    contact::{Contact, ContactFields, ContactFilter},
};

/// The actor stored in the `<prefix>_type`, `<prefix>_id` and `<prefix>_label` columns.
pub(super) fn actor_from_row(row: &AnyRow, prefix: &str) -> Result<ActorRef, sqlx::Error> {
    Ok(ActorRef {
        kind: row
            .try_get::<String, _>(format!("{prefix}_type").as_str())?
            .into(),
        id: row.try_get(format!("{prefix}_id").as_str())?,
        label: row.try_get(format!("{prefix}_label").as_str())?,
    })
}

const COLUMNS: &str = "c.id, c.first_name, c.last_name, c.email, c.phone, c.phone_e164, \
    c.company, c.job_title, c.notes, c.tags, c.attributes, c.version, c.created_at, c.updated_at, \
    c.created_by_type, c.created_by_id, c.created_by_label, \
    c.updated_by_type, c.updated_by_id, c.updated_by_label";

pub(super) fn decode<T: serde::de::DeserializeOwned>(
    column: &str,
    text: &str,
) -> Result<T, sqlx::Error> {
    serde_json::from_str(text).map_err(|err| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(err),
    })
}

fn from_row(row: &AnyRow) -> Result<Contact, sqlx::Error> {
    let tags: Vec<String> = decode("tags", &row.try_get::<String, _>("tags")?)?;
    let attributes: Map<String, Value> =
        decode("attributes", &row.try_get::<String, _>("attributes")?)?;
    Ok(Contact {
        id: row.try_get("id")?,
        fields: ContactFields {
            first_name: row.try_get("first_name")?,
            last_name: row.try_get("last_name")?,
            email: row.try_get("email")?,
            phone: row.try_get("phone")?,
            phone_e164: row.try_get("phone_e164")?,
            company: row.try_get("company")?,
            job_title: row.try_get("job_title")?,
            notes: row.try_get("notes")?,
            tags,
            attributes,
        },
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        created_by: actor_from_row(row, "created_by")?,
        updated_by: actor_from_row(row, "updated_by")?,
    })
}

pub(super) fn json_text(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|err| StoreError::Other(sqlx::Error::Encode(Box::new(err))))
}

/// The agent's contact `id`, or `NotFound`.
pub async fn get(db: &mut impl Db, agent_id: &str, id: &str) -> Result<Contact, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM contacts c WHERE c.id = $1 AND c.agent_id = $2"
    ))
    .bind(id)
    .bind(agent_id)
    .fetch_optional(db.raw())
    .await?
    .ok_or(StoreError::NotFound)?;
    Ok(from_row(&row)?)
}

/// The contacts with these ids, of whichever agents, each with its agent's id: the caller
/// matches them to the agents that asked. The ids travel as one JSON array parameter.
pub async fn get_many(
    db: &mut impl Db,
    ids: &[&str],
) -> Result<Vec<(String, Contact)>, StoreError> {
    // As an array, PostgreSQL walks the primary key for each id; as `IN (SELECT …)` it may
    // plan a hash join over the whole table.
    let matches = match db.backend() {
        Backend::Sqlite => "IN (SELECT value FROM json_each($1))",
        Backend::Postgres => "= ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))",
    };
    let rows = sqlx::query(&format!(
        "SELECT c.agent_id, {COLUMNS} FROM contacts c WHERE c.id {matches}"
    ))
    .bind(json_text(&ids)?)
    .fetch_all(db.raw())
    .await?;
    Ok(rows
        .iter()
        .map(|row| Ok((row.try_get("agent_id")?, from_row(row)?)))
        .collect::<Result<_, sqlx::Error>>()?)
}

/// The id of the agent's contact with this email (case-insensitively).
pub async fn id_by_email(
    db: &mut impl Db,
    agent_id: &str,
    email_lower: &str,
) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT id FROM contacts WHERE agent_id = $1 AND email_lower = $2")
        .bind(agent_id)
        .bind(email_lower)
        .fetch_optional(db.raw())
        .await?;
    Ok(row.map(|r| r.try_get("id")).transpose()?)
}

/// The ids of the agent's contacts with these emails (lowercased), by email.
pub async fn ids_by_email(
    db: &mut impl Db,
    agent_id: &str,
    emails_lower: &[String],
) -> Result<std::collections::HashMap<String, String>, StoreError> {
    let mut found = std::collections::HashMap::new();
    for chunk in emails_lower.chunks(500) {
        let list = (0..chunk.len())
            .map(|i| format!("${}", i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT id, email_lower FROM contacts WHERE agent_id = $1 AND email_lower IN ({list})"
        );
        let mut query = sqlx::query(&sql).bind(agent_id);
        for email in chunk {
            query = query.bind(email);
        }
        for row in query.fetch_all(db.raw()).await? {
            found.insert(row.try_get("email_lower")?, row.try_get("id")?);
        }
    }
    Ok(found)
}

/// Inserts new contacts and their tags with a few statements; `Conflict(Unique)` when one's
/// email is taken.
pub async fn insert_many(
    db: &mut impl Db,
    agent_id: &str,
    contacts: &[Contact],
) -> Result<(), StoreError> {
    for chunk in contacts.chunks(super::rows_per_insert(db, 22)) {
        let values = (0..chunk.len())
            .map(|i| {
                let n = i * 22;
                let params = (1..=22)
                    .map(|k| format!("${}", n + k + 1))
                    .collect::<Vec<_>>();
                format!("($1, {})", params.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO contacts (agent_id, id, first_name, last_name, email, email_lower, \
             phone, phone_e164, company, job_title, notes, tags, attributes, search_text, \
             version, created_at, updated_at, created_by_type, created_by_id, created_by_label, \
             updated_by_type, updated_by_id, updated_by_label) VALUES {values}"
        );
        let mut query = sqlx::query(&sql).bind(agent_id);
        for contact in chunk {
            let f = &contact.fields;
            query = query
                .bind(&contact.id)
                .bind(&f.first_name)
                .bind(&f.last_name)
                .bind(&f.email)
                .bind(f.email_lower())
                .bind(&f.phone)
                .bind(&f.phone_e164)
                .bind(&f.company)
                .bind(&f.job_title)
                .bind(&f.notes)
                .bind(json_text(&f.tags)?)
                .bind(json_text(&f.attributes)?)
                .bind(f.search_text())
                .bind(contact.version)
                .bind(contact.created_at)
                .bind(contact.updated_at)
                .bind(contact.created_by.kind.as_ref())
                .bind(&contact.created_by.id)
                .bind(&contact.created_by.label)
                .bind(contact.updated_by.kind.as_ref())
                .bind(&contact.updated_by.id)
                .bind(&contact.updated_by.label);
        }
        query.execute(db.raw()).await?;
    }
    let tags: Vec<(&str, &str)> = contacts
        .iter()
        .flat_map(|c| c.fields.tags.iter().map(|t| (c.id.as_str(), t.as_str())))
        .collect();
    for chunk in tags.chunks(super::rows_per_insert(db, 2)) {
        let values = (0..chunk.len())
            .map(|i| format!("(${}, $1, ${})", 2 * i + 2, 2 * i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("INSERT INTO contact_tags (contact_id, agent_id, tag) VALUES {values}");
        let mut query = sqlx::query(&sql).bind(agent_id);
        for (contact_id, tag) in chunk {
            query = query.bind(*contact_id).bind(*tag);
        }
        query.execute(db.raw()).await?;
    }
    Ok(())
}

/// Inserts a new contact and its tags; `Conflict(Unique)` when the agent already has a
/// contact with this email.
pub async fn insert(db: &mut impl Db, agent_id: &str, contact: &Contact) -> Result<(), StoreError> {
    let f = &contact.fields;
    sqlx::query(
        "INSERT INTO contacts (id, agent_id, first_name, last_name, email, email_lower, phone, \
         phone_e164, company, job_title, notes, tags, attributes, search_text, version, \
         created_at, updated_at, created_by_type, created_by_id, created_by_label, \
         updated_by_type, updated_by_id, updated_by_label) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19, $20, $21, $22, $23)",
    )
    .bind(&contact.id)
    .bind(agent_id)
    .bind(&f.first_name)
    .bind(&f.last_name)
    .bind(&f.email)
    .bind(f.email_lower())
    .bind(&f.phone)
    .bind(&f.phone_e164)
    .bind(&f.company)
    .bind(&f.job_title)
    .bind(&f.notes)
    .bind(json_text(&f.tags)?)
    .bind(json_text(&f.attributes)?)
    .bind(f.search_text())
    .bind(contact.version)
    .bind(contact.created_at)
    .bind(contact.updated_at)
    .bind(contact.created_by.kind.as_ref())
    .bind(&contact.created_by.id)
    .bind(&contact.created_by.label)
    .bind(contact.updated_by.kind.as_ref())
    .bind(&contact.updated_by.id)
    .bind(&contact.updated_by.label)
    .execute(db.raw())
    .await?;
    insert_tags(db, agent_id, &contact.id, &f.tags).await
}

async fn insert_tags(
    db: &mut impl Db,
    agent_id: &str,
    contact_id: &str,
    tags: &[String],
) -> Result<(), StoreError> {
    if tags.is_empty() {
        return Ok(());
    }
    let values = (0..tags.len())
        .map(|i| format!("($1, $2, ${})", i + 3))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("INSERT INTO contact_tags (contact_id, agent_id, tag) VALUES {values}");
    let mut query = sqlx::query(&sql).bind(contact_id).bind(agent_id);
    for tag in tags {
        query = query.bind(tag);
    }
    query.execute(db.raw()).await?;
    Ok(())
}

/// Writes `contact` over the stored row if that row is still at `expected_version`.
/// Returns false when it is not (changed or deleted meanwhile): nothing was written.
/// The UPDATE comes first so that, on SQLite, the transaction takes the write lock at once.
pub async fn update_if_version(
    db: &mut impl Db,
    agent_id: &str,
    contact: &Contact,
    expected_version: i64,
    tags_changed: bool,
) -> Result<bool, StoreError> {
    let f = &contact.fields;
    let done = sqlx::query(
        "UPDATE contacts SET first_name = $1, last_name = $2, email = $3, email_lower = $4, \
         phone = $5, phone_e164 = $6, company = $7, job_title = $8, notes = $9, tags = $10, \
         attributes = $11, search_text = $12, version = $13, updated_at = $14, \
         updated_by_type = $15, updated_by_id = $16, updated_by_label = $17 \
         WHERE id = $18 AND agent_id = $19 AND version = $20",
    )
    .bind(&f.first_name)
    .bind(&f.last_name)
    .bind(&f.email)
    .bind(f.email_lower())
    .bind(&f.phone)
    .bind(&f.phone_e164)
    .bind(&f.company)
    .bind(&f.job_title)
    .bind(&f.notes)
    .bind(json_text(&f.tags)?)
    .bind(json_text(&f.attributes)?)
    .bind(f.search_text())
    .bind(contact.version)
    .bind(contact.updated_at)
    .bind(contact.updated_by.kind.as_ref())
    .bind(&contact.updated_by.id)
    .bind(&contact.updated_by.label)
    .bind(&contact.id)
    .bind(agent_id)
    .bind(expected_version)
    .execute(db.raw())
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    if tags_changed {
        sqlx::query("DELETE FROM contact_tags WHERE contact_id = $1 AND agent_id = $2")
            .bind(&contact.id)
            .bind(agent_id)
            .execute(db.raw())
            .await?;
        insert_tags(db, agent_id, &contact.id, &f.tags).await?;
    }
    Ok(true)
}

/// Deletes the contact if it is still at `expected_version`; false when it is not.
pub async fn delete_if_version(
    db: &mut impl Db,
    agent_id: &str,
    id: &str,
    expected_version: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM contacts WHERE id = $1 AND agent_id = $2 AND version = $3")
        .bind(id)
        .bind(agent_id)
        .bind(expected_version)
        .execute(db.raw())
        .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    // Also removed by the foreign key's cascade; explicit so it never depends on that pragma.
    sqlx::query("DELETE FROM contact_tags WHERE contact_id = $1 AND agent_id = $2")
        .bind(id)
        .bind(agent_id)
        .execute(db.raw())
        .await?;
    Ok(true)
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Fewer candidates than this from the trigram index: start from them (see `list`).
const RARE: i64 = 2_000;

/// Contacts a search first looks through in id order before it asks the trigram index.
const PROBE: i64 = 2_000;

/// An FTS5 query asking for every distinct trigram of `q` (each a quoted string, so no
/// character is query syntax); `None` when `q` has fewer than three characters.
fn trigram_terms(q: &str) -> Option<String> {
    let chars: Vec<char> = q.chars().collect();
    let mut seen = std::collections::HashSet::new();
    let terms: Vec<String> = chars
        .windows(3)
        .map(|w| w.iter().collect::<String>())
        .filter(|t| seen.insert(t.clone()))
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" AND "))
}

enum Bind {
    Text(String),
    Int(i64),
}

/// How a list statement finds its rows.
enum Path {
    /// The statement as it is: contacts (or the tag index) in id order, testing each; on
    /// PostgreSQL, whatever its planner picks.
    Plain,
    /// Only the first `PROBE` contacts in id order.
    Probe,
    /// The contacts holding every trigram (SQLite's FTS5 query), sorted.
    Trigrams(String),
    /// PostgreSQL: many contacts hold the trigrams; the walk, with the planner kept off the
    /// trigram index.
    CommonSubstring,
}

/// Up to `limit` of the agent's contacts in id order after `after`.
///
/// A search of three or more characters first looks through the next `PROBE` contacts in
/// id order: a common substring fills a page there, at the cost of reading a few hundred
/// rows. Otherwise it counts the contacts holding every trigram of the query, up to `RARE`:
/// few are read through the trigram index and sorted; many means matches are dense enough
/// that walking in id order finds a page soon. PostgreSQL's planner cannot tell these apart
/// (it guesses the same selectivity for every substring) and, for a common one, reads and
/// sorts every match: so it is told, by the same count.
pub async fn list(
    db: &mut impl Db,
    agent_id: &str,
    filter: &ContactFilter,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Contact>, StoreError> {
    let terms = filter.q.as_deref().and_then(trigram_terms);
    let Some(terms) = terms else {
        return select(db, agent_id, filter, after, limit, Path::Plain).await;
    };
    if filter.tag.is_none() {
        let probed = select(db, agent_id, filter, after, limit, Path::Probe).await?;
        if probed.len() as i64 >= limit {
            return Ok(probed);
        }
    }
    let path = match db.backend() {
        Backend::Sqlite => {
            let candidates: i64 = sqlx::query_scalar(&format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM contacts_search \
                 WHERE contacts_search MATCH $1 LIMIT {RARE})"
            ))
            .bind(&terms)
            .fetch_one(db.raw())
            .await?;
            if candidates < RARE {
                Path::Trigrams(terms)
            } else {
                Path::Plain
            }
        }
        Backend::Postgres => {
            let candidates: i64 = sqlx::query_scalar(&format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM contacts \
                 WHERE agent_id = $1 AND search_text LIKE $2 ESCAPE '\\' LIMIT {RARE}) AS found"
            ))
            .bind(agent_id)
            .bind(like_pattern(filter))
            .fetch_one(db.raw())
            .await?;
            if candidates < RARE {
                Path::Plain
            } else {
                Path::CommonSubstring
            }
        }
    };
    select(db, agent_id, filter, after, limit, path).await
}

fn like_pattern(filter: &ContactFilter) -> Option<String> {
    filter.q.as_deref().map(|q| format!("%{}%", like_escape(q)))
}

async fn select(
    db: &mut impl Db,
    agent_id: &str,
    filter: &ContactFilter,
    after: Option<&str>,
    limit: i64,
    path: Path,
) -> Result<Vec<Contact>, StoreError> {
    let mut binds = vec![Bind::Text(agent_id.to_owned())];
    let mut push = |bind: Bind| {
        binds.push(bind);
        binds.len()
    };
    // With a tag, walk the tag index in contact-id order and look each contact up (CROSS JOIN
    // keeps SQLite from starting at contacts, which would scan every contact for a rare tag).
    // From the trigram index, the unary `+` keeps SQLite off the id-ordered indexes.
    let after_bind = after.map(|after| push(Bind::Text(after.to_owned())));
    let probe_from;
    let (from, order, agent_column) = match (&filter.tag, &path) {
        (Some(_), _) => (
            "contact_tags t CROSS JOIN contacts c",
            "t.contact_id",
            "c.agent_id",
        ),
        (None, Path::Trigrams(_)) => ("contacts c", "+c.id", "+c.agent_id"),
        (None, Path::Probe) => {
            let after = after_bind.map_or(String::new(), |n| format!(" AND id > ${n}"));
            probe_from = format!(
                "(SELECT * FROM contacts WHERE agent_id = $1{after} ORDER BY id LIMIT {PROBE}) c"
            );
            (probe_from.as_str(), "c.id", "c.agent_id")
        }
        (None, _) => ("contacts c", "c.id", "c.agent_id"),
    };
    let mut conditions = vec![format!("{agent_column} = $1")];
    if let Some(tag) = &filter.tag {
        let n = push(Bind::Text(tag.clone()));
        conditions.push(format!(
            "t.agent_id = $1 AND t.tag = ${n} AND c.id = t.contact_id"
        ));
    }
    if let Some(n) = after_bind {
        conditions.push(format!("{order} > ${n}"));
    }
    if let Some(email) = &filter.email_lower {
        let n = push(Bind::Text(email.clone()));
        conditions.push(format!("c.email_lower = ${n}"));
    }
    if let Some(since) = filter.updated_since {
        let n = push(Bind::Int(since));
        conditions.push(format!("c.updated_at >= ${n}"));
    }
    if let Some(actor) = &filter.written_by {
        let n = push(Bind::Text(actor.clone()));
        conditions.push(format!(
            "(c.created_by_id = ${n} OR c.updated_by_id = ${n})"
        ));
    }
    if let Path::Trigrams(terms) = &path {
        let n = push(Bind::Text(terms.clone()));
        conditions.push(format!(
            "c.rowid IN (SELECT rowid FROM contacts_search WHERE contacts_search MATCH ${n})"
        ));
    }
    // The substring test always decides, so results are exactly those of a scan. For a
    // common substring on PostgreSQL it tests an expression the trigram index does not
    // cover, which leaves the planner the walk in id order.
    if let Some(pattern) = like_pattern(filter) {
        let n = push(Bind::Text(pattern));
        let text = match path {
            Path::CommonSubstring => "(c.search_text || '')",
            _ => "c.search_text",
        };
        conditions.push(format!("{text} LIKE ${n} ESCAPE '\\'"));
    }
    let n = push(Bind::Int(limit));
    let sql = format!(
        "SELECT {COLUMNS} FROM {from} WHERE {} ORDER BY {order} LIMIT ${n}",
        conditions.join(" AND ")
    );
    let mut query = sqlx::query(&sql);
    for bind in binds {
        query = match bind {
            Bind::Text(text) => query.bind(text),
            Bind::Int(int) => query.bind(int),
        };
    }
    let rows = query.fetch_all(db.raw()).await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(like_escape("50%_off\\"), "50\\%\\_off\\\\");
    }

    /// A searched workspace big enough for every path of `list`: a substring that fills a
    /// page within the probe, one that is rare in the probe's window and dense after it (more
    /// than `RARE` matches), and one that is rare throughout. Each equals a scan, page by page.
    async fn search_paths_match_a_scan(url: &str) {
        use crate::{
            model::{audit::ActorRef, contact::ContactFields},
            store::sealed::Raw as _,
        };
        let store = super::super::Store::connect(url).await.unwrap();
        store.migrate().await.unwrap();
        let mut conn = store.conn().await.unwrap();
        sqlx::query(
            "INSERT INTO agents (id, name, created_at, updated_at) VALUES ('agt_1', 'A', 0, 0)",
        )
        .execute(conn.raw())
        .await
        .unwrap();
        let writer = ActorRef::api_key("key_1", "Sync");
        let contacts: Vec<Contact> = (0..7_000)
            .map(|i| {
                let dense_later = if i < 2_500 { i % 500 == 0 } else { i % 2 == 0 };
                Contact {
                    id: format!("ct_{i:06}"),
                    fields: ContactFields {
                        first_name: Some(format!("Person{i}")),
                        last_name: Some(if dense_later { "Needle" } else { "Hay" }.into()),
                        company: Some(if i % 3 == 0 { "Acme" } else { "Initech" }.into()),
                        email: (i % 1_000 == 7).then(|| format!("zyx{i}@example.com")),
                        ..Default::default()
                    },
                    version: 1,
                    created_at: 0,
                    updated_at: 0,
                    created_by: writer.clone(),
                    updated_by: writer.clone(),
                }
            })
            .collect();
        insert_many(&mut conn, "agt_1", &contacts).await.unwrap();
        for q in ["acm", "eedl", "zyx", "person69"] {
            let expected: Vec<&str> = contacts
                .iter()
                .filter(|c| c.fields.search_text().contains(q))
                .map(|c| c.id.as_str())
                .collect();
            let filter = ContactFilter {
                q: Some(q.into()),
                ..Default::default()
            };
            let mut found: Vec<String> = Vec::new();
            loop {
                let page = list(
                    &mut conn,
                    "agt_1",
                    &filter,
                    found.last().map(|s| s.as_str()),
                    50,
                )
                .await
                .unwrap();
                let full = page.len() == 50;
                found.extend(page.into_iter().map(|c| c.id));
                if !full {
                    break;
                }
            }
            assert_eq!(found, expected, "q={q:?}");
        }
        drop(conn);
        store.close().await;
    }

    #[tokio::test]
    async fn search_paths_match_a_scan_on_sqlite() {
        super::super::scratch::on_sqlite(
            |url| async move { search_paths_match_a_scan(&url).await },
        )
        .await;
    }

    /// On PostgreSQL too, with `TEST_POSTGRES_URL` set (an admin connection URL).
    #[tokio::test]
    async fn search_paths_match_a_scan_on_postgres() {
        super::super::scratch::on_postgres(
            |url| async move { search_paths_match_a_scan(&url).await },
        )
        .await;
    }

    #[test]
    fn trigram_queries_quote_every_trigram_once() {
        assert_eq!(trigram_terms("ab"), None);
        assert_eq!(trigram_terms("é\"ß"), Some("\"é\"\"ß\"".into()));
        assert_eq!(trigram_terms("aaaab"), Some("\"aaa\" AND \"aab\"".into()));
    }
}
