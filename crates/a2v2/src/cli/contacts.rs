//! `a2v2 contacts import|export`: CSV files in and out from the command line, through the same
//! importer and export as the dashboard, audited with the `cli` actor.

use std::{
    io::{IsTerminal, Write},
    path::Path,
};

use anyhow::Context;
use futures_util::StreamExt;

use super::keys::open_store;
use crate::{
    audit::export::Format,
    config::Config,
    contacts::{
        Contacts, ListQuery,
        import::{ImportFile, OnDuplicate},
    },
    error::DomainError,
    model::{audit::By, contact::ContactImport},
};

fn explain(err: DomainError, agent_id: &str) -> anyhow::Error {
    match err {
        DomainError::NotFound => anyhow::anyhow!("there is no agent with id {agent_id}"),
        DomainError::Validation(fields) => anyhow::anyhow!(
            "{}",
            fields
                .iter()
                .map(|(field, problem)| format!("{field} {problem}"))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        other => other.into(),
    }
}

/// Progress on standard error: a bar redrawn in place on a terminal, otherwise a plain line
/// at every tenth of the rows.
struct Progress {
    terminal: bool,
    last_tenth: u64,
}

impl Progress {
    fn show(&mut self, import: &ContactImport) {
        let (done, total) = (import.processed_rows, import.total_rows.max(1));
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let filled = (done * 30 / total) as usize;
            let _ = write!(
                err,
                "\r[{}{}] {done}/{} rows",
                "#".repeat(filled),
                " ".repeat(30 - filled.min(30)),
                import.total_rows
            );
            if import.state != "running" {
                let _ = writeln!(err);
            }
        } else {
            let tenth = done * 10 / total;
            if tenth > self.last_tenth || import.state != "running" {
                self.last_tenth = tenth;
                let _ = writeln!(err, "progress: {done}/{} rows", import.total_rows);
            }
        }
    }
}

/// Imports the CSV file at `path` into the agent's contacts; returns the report.
pub async fn import(
    config: &Config,
    agent_id: &str,
    path: &Path,
    on_duplicate: &str,
) -> anyhow::Result<ContactImport> {
    let on_duplicate =
        OnDuplicate::parse(Some(on_duplicate)).map_err(|err| explain(err, agent_id))?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = ImportFile::read(&bytes).map_err(|err| explain(err, agent_id))?;
    eprintln!(
        "{}: {} rows, {}; columns: {}",
        path.display(),
        file.rows.len(),
        file.encoding.name(),
        file.mapping()
            .iter()
            .map(|c| format!("{} → {}", c.header.trim(), c.field))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let store = open_store(config, false).await?;
    if !store.is_shared() && on_duplicate == OnDuplicate::Update {
        eprintln!(
            "note: a server running on this embedded database keeps recently read contacts in \
             memory; restart it after this import, or import through the dashboard, so that \
             it serves the updated contacts"
        );
    }
    let contacts = Contacts::new(store.clone());
    let by = By::cli();
    let result = async {
        let started = contacts
            .start_import(&by, agent_id, &file, on_duplicate)
            .await
            .map_err(|err| explain(err, agent_id))?;
        let mut progress = Progress {
            terminal: std::io::stderr().is_terminal(),
            last_tenth: 0,
        };
        contacts
            .run_import(&by, started, &file, true, &mut |import: &ContactImport| {
                progress.show(import)
            })
            .await
            .map_err(|err| explain(err, agent_id))
    }
    .await;
    store.close().await;
    result
}

/// The report as lines for people: the counts, then each skipped row.
pub fn summary(import: &ContactImport) -> String {
    let mut out = format!(
        "created {}, updated {}, unchanged {}, skipped {}\n",
        import.created,
        import.updated,
        import.unchanged,
        import.skipped.len()
    );
    for skipped in &import.skipped {
        out.push_str(&format!("row {}: {}\n", skipped.row, skipped.reason));
    }
    out
}

/// Writes the agent's contacts matching the filters to `out`; returns the bytes written.
pub async fn export(
    config: &Config,
    agent_id: &str,
    format: &str,
    query: ListQuery,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let format = Format::parse(Some(format)).map_err(|err| explain(err, agent_id))?;
    let store = open_store(config, false).await?;
    let contacts = Contacts::new(store.clone());
    let written = async {
        let mut chunks = contacts
            .export(&By::cli(), agent_id, query, format)
            .await
            .map_err(|err| explain(err, agent_id))?;
        let mut written = 0u64;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            out.write_all(&chunk)?;
            written += chunk.len() as u64;
        }
        out.flush()?;
        Ok::<_, anyhow::Error>(written)
    }
    .await;
    store.close().await;
    written
}
