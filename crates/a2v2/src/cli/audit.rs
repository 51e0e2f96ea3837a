//! `a2v2 audit export`: the audit log as CSV or JSON Lines, like the dashboard's export,
//! recorded in the log itself with the `cli` actor; `a2v2 audit verify`: its hash chain.

use std::io::Write;

use futures_util::StreamExt;

use super::keys::open_store;
use crate::{audit, config::Config, model::audit::By};

/// Writes every event matching the filters to `out`, oldest first; returns the bytes written.
pub async fn export(
    config: &Config,
    query: &audit::query::AuditQuery,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let store = open_store(config, false).await?;
    let written = async {
        let (_, mut chunks) = audit::export(&store, &By::cli(), query).await?;
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

/// Walks the audit log's hash chain.
pub async fn verify(config: &Config) -> anyhow::Result<audit::chain::Verdict> {
    let store = open_store(config, false).await?;
    let verdict = audit::chain::verify(&store).await;
    store.close().await;
    Ok(verdict?)
}
