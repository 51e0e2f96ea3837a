//! CSV import of contacts, shared by the management API and `a2v2 contacts import`.
//!
//! The header row is mapped to fields by name, forgiving the usual spellings ("E-mail",
//! "First Name", "Mobile", "Organisation"…); other columns go into `attributes` under their
//! header. Each row is validated like a `POST /v1/contacts` body. A row whose email the agent
//! already has is skipped or updates that contact (`on_duplicate`); on update, empty cells
//! leave the stored value alone and attributes are merged. Rows are written in batches, each
//! in one transaction with the import's progress, so a reader polling the import sees counts
//! that match what is stored.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::{
    Contacts,
    csv::{self, Encoding},
    validation::{ContactPatch, NewContact},
};
use crate::{
    audit,
    error::{DomainError, Result},
    model::{
        FieldErrors,
        audit::{By, NewEvent},
        contact::{ColumnMapping, Contact, ContactFields, ContactImport, SkippedRow},
        new_id, now_ms,
    },
    store::{self, Constraint, StoreError},
    validate,
};

/// Rows written per transaction.
const BATCH: usize = 250;
/// A batch that loses a race for an email with another writer is tried again this often.
const BATCH_ATTEMPTS: usize = 3;
/// Files with at most this many rows are imported while the request waits; larger ones in
/// the background.
pub const INLINE_ROWS: usize = 1_000;
/// A running import whose progress has not moved for this long was cut short (the server
/// stopped); it is reported as failed.
pub const STALE_MS: i64 = 60_000;
/// Rows shown by a preview.
const PREVIEW_ROWS: usize = 5;

/// What a row whose email is taken does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDuplicate {
    Skip,
    Update,
}

impl OnDuplicate {
    pub fn parse(text: Option<&str>) -> Result<Self> {
        match text.map(str::trim) {
            None | Some("") | Some("skip") => Ok(Self::Skip),
            Some("update") => Ok(Self::Update),
            Some(_) => Err(DomainError::BadRequest(
                "`on_duplicate` must be `skip` or `update`.".into(),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::Update => "update",
        }
    }
}

/// Where a column goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Column {
    Field(&'static str),
    /// "Name", "Full name": split into first and last name at the first space.
    FullName,
    /// A JSON object of attributes (as `a2v2 contacts export` writes it).
    Attributes,
    Attribute(String),
    /// Read-only values of an export (`id`, `version`, times, provenance).
    Ignored,
}

impl Column {
    fn describe(&self) -> String {
        match self {
            Self::Field(name) => (*name).to_owned(),
            Self::FullName => "first_name + last_name".to_owned(),
            Self::Attributes => "attributes".to_owned(),
            Self::Attribute(name) => format!("attributes.{name}"),
            Self::Ignored => "ignored".to_owned(),
        }
    }
}

/// The column a header names, by its letters and digits, lowercased.
fn column_for(header: &str) -> Column {
    let key: String = header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    let field = match key.as_str() {
        "firstname" | "first" | "givenname" | "forename" | "fname" | "vorname" | "prenom" => {
            "first_name"
        }
        "lastname" | "last" | "surname" | "familyname" | "lname" | "nachname" => "last_name",
        "email" | "emailaddress" | "mail" | "email1" | "primaryemail" | "workemail"
        | "emailaddress1" => "email",
        "phone" | "phonenumber" | "mobile" | "mobilephone" | "mobilenumber" | "cell"
        | "cellphone" | "telephone" | "tel" | "phone1" | "primaryphone" | "workphone"
        | "businessphone" => "phone",
        "company" | "companyname" | "organization" | "organisation" | "org" | "employer"
        | "account" | "accountname" | "firma" => "company",
        "jobtitle" | "title" | "position" | "role" | "job" => "job_title",
        "notes" | "note" | "comments" | "comment" | "description" => "notes",
        "tags" | "tag" | "labels" | "label" | "groups" | "categories" => "tags",
        "name" | "fullname" | "contactname" | "displayname" => return Column::FullName,
        "attributes" => return Column::Attributes,
        "id" | "version" | "createdat" | "updatedat" | "createdby" | "updatedby" | "phonee164" => {
            return Column::Ignored;
        }
        _ => return Column::Attribute(header.trim().to_owned()),
    };
    Column::Field(field)
}

/// The columns of a header row. A field named by two columns takes the first; the second
/// becomes an attribute, so no value is lost.
pub fn map_header(headers: &[String]) -> Vec<Column> {
    let mut taken: Vec<Column> = Vec::new();
    headers
        .iter()
        .enumerate()
        .map(|(i, header)| {
            let mut column = column_for(header);
            if matches!(
                column,
                Column::Field(_) | Column::FullName | Column::Attributes
            ) && taken.contains(&column)
            {
                column = Column::Attribute(header.trim().to_owned());
            }
            if let Column::Attribute(name) = &column
                && name.is_empty()
            {
                column = Column::Attribute(format!("column {}", i + 1));
            }
            taken.push(column.clone());
            column
        })
        .collect()
}

/// A file read and mapped, ready to import.
pub struct ImportFile {
    pub encoding: Encoding,
    pub headers: Vec<String>,
    pub columns: Vec<Column>,
    /// The data rows, numbered from 1 in the report.
    pub rows: Vec<Vec<String>>,
    /// The row where a quoted field is never closed (it ran to the end of the file).
    pub unterminated: Option<u64>,
}

impl ImportFile {
    /// Reads the file: 422 `validation_failed` on `file` when it has no header row or no
    /// column that can name a person.
    pub fn read(bytes: &[u8]) -> Result<Self> {
        let (text, encoding) = csv::decode(bytes);
        let delimiter = csv::sniff_delimiter(&text);
        let (mut records, unterminated) = csv::records(&text, delimiter);
        if records.is_empty() || records[0].iter().all(|h| h.trim().is_empty()) {
            return Err(DomainError::field(
                "file",
                "is empty; its first row must name the columns, such as Email, First Name",
            ));
        }
        let headers: Vec<String> = records.remove(0);
        // The record with the unclosed quote swallowed the rest of the file: it is reported,
        // not imported.
        if unterminated.is_some() {
            records.pop();
        }
        let columns = map_header(&headers);
        let names_someone = columns.iter().any(|c| match c {
            Column::Field(name) => super::validation::IDENTITY_FIELDS.contains(name),
            Column::FullName => true,
            _ => false,
        });
        if !names_someone {
            return Err(DomainError::field(
                "file",
                format!(
                    "has no column for a name, email or phone; its columns are: {}",
                    headers
                        .iter()
                        .take(20)
                        .map(|h| h.trim())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(Self {
            encoding,
            headers,
            columns,
            rows: records,
            unterminated: unterminated.map(|u| u.record as u64),
        })
    }

    pub fn mapping(&self) -> Vec<ColumnMapping> {
        self.headers
            .iter()
            .zip(&self.columns)
            .map(|(header, column)| ColumnMapping {
                header: header.clone(),
                field: column.describe(),
            })
            .collect()
    }

    /// The mapping and the first rows as they would be imported, without writing anything.
    pub fn preview(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .take(PREVIEW_ROWS)
            .enumerate()
            .map(|(i, cells)| match row_body(&self.columns, cells) {
                Ok(body) => json!({ "row": i + 1, "values": body }),
                Err(reason) => json!({ "row": i + 1, "error": reason }),
            })
            .collect();
        json!({
            "encoding": self.encoding.name(),
            "columns": self.mapping(),
            "total_rows": self.rows.len(),
            "rows": rows,
        })
    }
}

/// A cell as written by a spreadsheet, without the `'` an export puts before text that a
/// spreadsheet would run as a formula.
fn cell_value(cell: &str) -> &str {
    let cell = cell.trim();
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest,
        _ => cell,
    }
}

/// The request body a row stands for; empty cells are left out. `Err` with the reason
/// when the row cannot be read.
pub fn row_body(
    columns: &[Column],
    cells: &[String],
) -> std::result::Result<Map<String, Value>, String> {
    if cells.iter().all(|c| c.trim().is_empty()) {
        return Err("the row is empty".into());
    }
    let extra = cells
        .iter()
        .skip(columns.len())
        .filter(|c| !c.trim().is_empty())
        .count();
    if extra > 0 {
        return Err(format!(
            "the row has {} values but the header names {} columns",
            cells.len(),
            columns.len()
        ));
    }
    let mut body = Map::new();
    let mut attributes = Map::new();
    for (column, cell) in columns.iter().zip(cells) {
        let value = cell_value(cell);
        if value.is_empty() {
            continue;
        }
        match column {
            Column::Field("tags") => {
                let tags: Vec<Value> = value
                    .split([',', ';'])
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(Value::from)
                    .collect();
                body.insert("tags".into(), Value::Array(tags));
            }
            Column::Field(name) => {
                body.insert((*name).to_owned(), Value::from(value));
            }
            Column::FullName => {
                let (first, last) = match value.split_once(char::is_whitespace) {
                    Some((first, last)) => (first, Some(last.trim())),
                    None => (value, None),
                };
                body.entry("first_name")
                    .or_insert_with(|| Value::from(first));
                if let Some(last) = last {
                    body.entry("last_name").or_insert_with(|| Value::from(last));
                }
            }
            Column::Attributes => match serde_json::from_str::<Value>(value) {
                Ok(Value::Object(object)) => attributes.extend(object),
                _ => return Err("the attributes column must hold a JSON object".into()),
            },
            Column::Attribute(name) => {
                attributes.insert(name.clone(), Value::from(value));
            }
            Column::Ignored => {}
        }
    }
    if !attributes.is_empty() {
        body.insert("attributes".into(), Value::Object(attributes));
    }
    Ok(body)
}

/// The field errors of a row as one sentence for the report.
fn reason(errors: &FieldErrors) -> String {
    errors
        .iter()
        .map(|(field, problem)| format!("{field} {problem}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A new import's record, before any row is written.
pub fn new_import(
    by: &By,
    agent_id: &str,
    file: &ImportFile,
    on_duplicate: OnDuplicate,
) -> ContactImport {
    let now = now_ms();
    ContactImport {
        id: new_id("imp"),
        agent_id: agent_id.to_owned(),
        state: "running".into(),
        on_duplicate: on_duplicate.name().into(),
        encoding: file.encoding.name().into(),
        columns: file.mapping(),
        total_rows: file.rows.len() as u64 + u64::from(file.unterminated.is_some()),
        processed_rows: 0,
        created: 0,
        updated: 0,
        unchanged: 0,
        skipped_count: 0,
        skipped: Vec::new(),
        error: None,
        created_by: by.actor.clone(),
        created_at: now,
        updated_at: now,
    }
}

impl Contacts {
    /// Records a new import, to be run with [`Self::run_import`].
    pub async fn start_import(
        &self,
        by: &By,
        agent_id: &str,
        file: &ImportFile,
        on_duplicate: OnDuplicate,
    ) -> Result<ContactImport> {
        self.ensure_agent(agent_id).await?;
        let import = new_import(by, agent_id, file, on_duplicate);
        let mut conn = self.store.conn().await?;
        store::contact_imports::insert(&mut conn, &import).await?;
        Ok(import)
    }

    /// The agent's import `id`. A running import that has not moved for a minute was cut
    /// short by a stopped server and is reported as failed.
    pub async fn get_import(&self, agent_id: &str, id: &str) -> Result<ContactImport> {
        let mut conn = self.store.conn().await?;
        let mut import = store::contact_imports::get(&mut conn, agent_id, id).await?;
        if import.state == "running" && now_ms() - import.updated_at > STALE_MS {
            import.state = "failed".into();
            import.error = Some(
                "The import was interrupted when the server stopped. Import the file again: \
                 rows already imported are recognised by their email."
                    .into(),
            );
        }
        Ok(import)
    }

    /// Imports every row of `file`, writing the progress of `import` with each batch (when
    /// `record` is true) and calling `progress` after it. On a storage failure the import
    /// is recorded as failed, with the rows written so far kept.
    pub async fn run_import(
        &self,
        by: &By,
        mut import: ContactImport,
        file: &ImportFile,
        record: bool,
        progress: &mut (dyn FnMut(&ContactImport) + Send),
    ) -> Result<ContactImport> {
        let on_duplicate = OnDuplicate::parse(Some(&import.on_duplicate))?;
        match self
            .import_rows(by, &mut import, file, on_duplicate, record, progress)
            .await
        {
            Ok(()) => {
                import.state = "done".into();
                import.updated_at = now_ms();
                let mut tx = self.store.begin().await?;
                if record {
                    store::contact_imports::finish(&mut tx, &import).await?;
                }
                audit::record(
                    &mut tx,
                    by,
                    NewEvent {
                        action: "contact.imported",
                        agent_id: Some(&import.agent_id),
                        target: None,
                        details: json!({
                            "import_id": import.id,
                            "rows": import.total_rows,
                            "created": import.created,
                            "updated": import.updated,
                            "unchanged": import.unchanged,
                            "skipped": import.skipped.len(),
                            "on_duplicate": import.on_duplicate,
                            "encoding": import.encoding,
                        }),
                    },
                )
                .await?;
                tx.commit().await?;
                progress(&import);
                Ok(import)
            }
            Err(err) => {
                import.state = "failed".into();
                import.error = Some(format!(
                    "The import stopped after {} rows: {err}",
                    import.processed_rows
                ));
                import.updated_at = now_ms();
                if record && let Ok(mut conn) = self.store.conn().await {
                    let _ = store::contact_imports::finish(&mut conn, &import).await;
                }
                Err(err)
            }
        }
    }

    async fn import_rows(
        &self,
        by: &By,
        import: &mut ContactImport,
        file: &ImportFile,
        on_duplicate: OnDuplicate,
        record: bool,
        progress: &mut (dyn FnMut(&ContactImport) + Send),
    ) -> Result<()> {
        // The first row of this file with each email, to name it when a later row repeats it.
        let mut first_rows: HashMap<String, u64> = HashMap::new();
        for (batch_index, batch) in file.rows.chunks(BATCH).enumerate() {
            let first_row = (batch_index * BATCH) as u64 + 1;
            let mut attempt = 0;
            loop {
                attempt += 1;
                let mut next = import.clone();
                let mut rows_seen = first_rows.clone();
                match self
                    .import_batch(
                        by,
                        &mut next,
                        file,
                        batch,
                        first_row,
                        on_duplicate,
                        &mut rows_seen,
                        record,
                    )
                    .await
                {
                    Ok(updated_ids) => {
                        for id in updated_ids {
                            self.cache.invalidate(&id);
                        }
                        *import = next;
                        first_rows = rows_seen;
                        break;
                    }
                    Err(BatchError::Raced) if attempt < BATCH_ATTEMPTS => continue,
                    Err(BatchError::Raced) => {
                        return Err(DomainError::Conflict(
                            "Other requests kept changing the same contacts; import the file \
                             again."
                                .into(),
                        ));
                    }
                    Err(BatchError::Failed(err)) => return Err(err),
                }
            }
            progress(import);
        }
        if let Some(row) = file.unterminated {
            import.processed_rows += 1;
            import.skipped_count += 1;
            import.skipped.push(SkippedRow {
                row,
                reason: "a quoted field starts here and is never closed; the rest of the file \
                         was not read"
                    .into(),
            });
        }
        Ok(())
    }

    /// One batch in one transaction; returns the ids of updated contacts. The emails of the
    /// batch are looked up in one query and its new contacts written in one statement, so a
    /// batch costs a few round trips, not a few per row.
    #[allow(clippy::too_many_arguments)]
    async fn import_batch(
        &self,
        by: &By,
        import: &mut ContactImport,
        file: &ImportFile,
        batch: &[Vec<String>],
        first_row: u64,
        on_duplicate: OnDuplicate,
        first_rows: &mut HashMap<String, u64>,
        record: bool,
    ) -> std::result::Result<Vec<String>, BatchError> {
        let agent_id = import.agent_id.clone();
        let prepared: Vec<_> = batch
            .iter()
            .map(|cells| prepare(&file.columns, cells))
            .collect();
        let emails: Vec<String> = prepared
            .iter()
            .filter_map(|p| p.as_ref().ok()?.1.email_lower())
            .collect();
        let mut tx = self.store.begin().await?;
        let existing = store::contacts::ids_by_email(&mut tx, &agent_id, &emails).await?;
        let now = now_ms();
        let mut new_contacts: Vec<Contact> = Vec::new();
        // Emails of this batch's new contacts: a later row with the same email updates them.
        let mut pending: HashMap<String, usize> = HashMap::new();
        let mut updated_ids = Vec::new();
        for (offset, prepared) in prepared.into_iter().enumerate() {
            let row = first_row + offset as u64;
            import.processed_rows += 1;
            let (mut body, fields) = match prepared {
                Ok(ready) => ready,
                Err(reason) => {
                    import.skipped.push(SkippedRow { row, reason });
                    continue;
                }
            };
            let new_contact = |fields: ContactFields| Contact {
                id: new_id("ct"),
                fields,
                version: 1,
                created_at: now,
                updated_at: now,
                created_by: by.actor.clone(),
                updated_by: by.actor.clone(),
            };
            let Some(email) = fields.email_lower() else {
                new_contacts.push(new_contact(fields));
                import.created += 1;
                continue;
            };
            if let Some(&earlier) = first_rows.get(&email)
                && on_duplicate == OnDuplicate::Skip
            {
                import.skipped.push(SkippedRow {
                    row,
                    reason: format!("the email {email} is already in row {earlier}"),
                });
                continue;
            }
            first_rows.entry(email.clone()).or_insert(row);
            if let Some(&index) = pending.get(&email) {
                // A repeat of a row of this batch (update mode): applied to the new contact.
                let current = &new_contacts[index];
                match changes(&mut body, current) {
                    Ok(patch) => {
                        let contact = &mut new_contacts[index];
                        if contact.fields.apply(&patch).is_empty() {
                            import.unchanged += 1;
                        } else {
                            import.updated += 1;
                        }
                    }
                    Err(reason) => import.skipped.push(SkippedRow { row, reason }),
                }
                continue;
            }
            let Some(existing_id) = existing.get(&email) else {
                pending.insert(email, new_contacts.len());
                new_contacts.push(new_contact(fields));
                import.created += 1;
                continue;
            };
            if on_duplicate == OnDuplicate::Skip {
                import.skipped.push(SkippedRow {
                    row,
                    reason: format!(
                        "a contact with the email {email} already exists ({existing_id})"
                    ),
                });
                continue;
            }
            let current = store::contacts::get(&mut tx, &agent_id, existing_id).await?;
            let patch = match changes(&mut body, &current) {
                Ok(patch) => patch,
                Err(reason) => {
                    import.skipped.push(SkippedRow { row, reason });
                    continue;
                }
            };
            let mut next = current.clone();
            let changed = next.fields.apply(&patch);
            if changed.is_empty() {
                import.unchanged += 1;
                continue;
            }
            next.version = current.version + 1;
            next.updated_at = now.max(current.updated_at);
            next.updated_by = by.actor.clone();
            let written = store::contacts::update_if_version(
                &mut tx,
                &agent_id,
                &next,
                current.version,
                changed.contains(&"tags"),
            )
            .await?;
            if !written {
                return Err(BatchError::Raced);
            }
            import.updated += 1;
            updated_ids.push(next.id);
        }
        store::contacts::insert_many(&mut tx, &agent_id, &new_contacts).await?;
        import.updated_at = now_ms();
        import.skipped_count = import.skipped.len() as u64;
        if record {
            store::contact_imports::progress(&mut tx, import).await?;
        }
        tx.commit().await?;
        Ok(updated_ids)
    }
}

/// A row read and validated as a new contact: its body and fields, or why it is skipped.
fn prepare(
    columns: &[Column],
    cells: &[String],
) -> std::result::Result<(Map<String, Value>, ContactFields), String> {
    let body = row_body(columns, cells)?;
    match validate::parse::<NewContact>(&body) {
        Ok(NewContact(fields)) => Ok((body, fields)),
        Err(errors) => Err(reason(&errors)),
    }
}

/// The row as changes to `current`: its non-empty cells, attributes merged into the stored
/// ones; why not when the merged contact breaks a rule (too many attributes).
fn changes(
    body: &mut Map<String, Value>,
    current: &Contact,
) -> std::result::Result<ContactPatch, String> {
    if let Some(Value::Object(new)) = body.remove("attributes") {
        let mut merged = current.fields.attributes.clone();
        merged.extend(new);
        body.insert("attributes".into(), Value::Object(merged));
    }
    validate::parse(body).map_err(|errors| reason(&errors))
}

/// Why a batch did not commit.
enum BatchError {
    /// Another writer took an email or changed a contact meanwhile: the batch is tried again.
    Raced,
    Failed(DomainError),
}

impl From<StoreError> for BatchError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(Constraint::Unique) => Self::Raced,
            err => Self::Failed(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn common_headers_are_recognised() {
        let headers = strings(&[
            "E-mail",
            "First Name",
            "last_name",
            "Mobile",
            "Organisation",
            "Job Title",
            "Phone",
            "Lead source",
            "id",
            "",
        ]);
        let described: Vec<String> = map_header(&headers).iter().map(Column::describe).collect();
        assert_eq!(
            described,
            [
                "email",
                "first_name",
                "last_name",
                "phone",
                "company",
                "job_title",
                "attributes.Phone",
                "attributes.Lead source",
                "ignored",
                "attributes.column 10",
            ]
        );
    }

    #[test]
    fn rows_become_bodies() {
        let columns = map_header(&strings(&["Name", "Email", "Tags", "Source", "attributes"]));
        let body = row_body(
            &columns,
            &strings(&[
                "Ada King Lovelace",
                " ada@example.com ",
                "vip; beta,",
                "fair",
                "{\"n\": 2}",
            ]),
        )
        .unwrap();
        assert_eq!(
            Value::Object(body),
            json!({
                "first_name": "Ada",
                "last_name": "King Lovelace",
                "email": "ada@example.com",
                "tags": ["vip", "beta"],
                "attributes": {"Source": "fair", "n": 2},
            })
        );
        assert_eq!(
            row_body(&columns, &strings(&["", " "])),
            Err("the row is empty".into())
        );
        assert!(row_body(&columns, &strings(&["a", "b", "c", "d", "{}", "extra"])).is_err());
        assert!(row_body(&columns, &strings(&["a", "", "", "", "[1]"])).is_err());
        // Fewer cells than columns: spreadsheets drop trailing empty cells.
        assert!(row_body(&columns, &strings(&["Ada"])).is_ok());
    }

    #[test]
    fn exported_formula_guards_are_removed() {
        assert_eq!(cell_value("'+14155550123"), "+14155550123");
        assert_eq!(cell_value("'quoted"), "'quoted");
        assert_eq!(cell_value(" x "), "x");
    }

    #[test]
    fn files_without_a_person_column_are_refused() {
        assert!(ImportFile::read(b"").is_err());
        assert!(ImportFile::read(b"Source,Score\nfair,1\n").is_err());
        let file = ImportFile::read(b"\xEF\xBB\xBFE-mail;Name\r\na@b.co;Ann\r\n").unwrap();
        assert_eq!(file.encoding, Encoding::Utf8Bom);
        assert_eq!(file.rows, [strings(&["a@b.co", "Ann"])]);
        assert_eq!(file.preview()["columns"][0]["field"], "email");
    }
}
