//! `a2v2 backup` and `a2v2 restore`: a consistent copy of the embedded database, taken while
//! the server runs, and putting one back into a data directory.
//!
//! The master key is not part of a backup: a backup that held it would hand over every API
//! key to whoever reads it. Keep the master key file apart (or supply it with
//! `A2V2_MASTER_KEY_FILE`); a restore checks that the key given fits the backup.

use std::path::Path;

use anyhow::{Context, bail};

use super::keys::secrets;
use crate::{
    config::Config,
    keys::Keys,
    store::{self, Store},
};

const POSTGRES_ADVICE: &str = "a2v2 backup copies the embedded SQLite database; with \
    PostgreSQL use its own tools, for example `pg_dump --format=custom --file a2v2.dump \
    \"$A2V2_DATABASE_URL\"` and `pg_restore` (see docs/OPERATIONS.md)";

/// Writes a consistent copy of the database to `out` while the server keeps running.
pub async fn backup(config: &Config, out: &Path) -> anyhow::Result<u64> {
    if out.exists() {
        bail!("{} exists already; choose a new file", out.display());
    }
    let store = Store::connect(&config.database_url).await?;
    let written = match store.snapshot_into(out).await {
        Some(result) => result.with_context(|| format!("writing {}", out.display())),
        None => Err(anyhow::anyhow!(POSTGRES_ADVICE)),
    };
    store.close().await;
    written?;
    Ok(std::fs::metadata(out)?.len())
}

/// Puts the backup `from` in place as the database of the data directory, after checking
/// that the master key given fits it. Refuses to overwrite an existing database.
pub async fn restore(config: &Config, from: &Path) -> anyhow::Result<()> {
    if !config.database_url.starts_with("sqlite:") {
        bail!("{POSTGRES_ADVICE}");
    }
    let secrets = secrets(config)?;
    crate::config::ensure_dir(&config.data_dir)?;
    let target_file =
        store::sqlite_path(&config.database_url).context("reading the SQLite database URL")?;
    if target_file.exists() {
        bail!(
            "{} exists already; move it away (or use a new --data-dir) before restoring into \
             it",
            target_file.display()
        );
    }
    // Check the copy where it is, then move it into place atomically.
    let staged = target_file.with_extension("restoring");
    std::fs::copy(from, &staged).with_context(|| format!("reading {}", from.display()))?;
    let checked = async {
        let store = Store::connect(&format!("sqlite://{}", staged.display())).await?;
        store.migrate().await?;
        let keys = Keys::new(store.clone(), secrets, false, config.key_lease);
        let fits = keys.check_master_key().await;
        store.close().await;
        fits.map_err(|err| anyhow::anyhow!("{err}"))
    }
    .await;
    if let Err(err) = checked {
        let _ = std::fs::remove_file(&staged);
        return Err(err);
    }
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", target_file.display()));
    }
    std::fs::rename(&staged, &target_file)
        .with_context(|| format!("moving the backup to {}", target_file.display()))?;
    #[cfg(unix)]
    std::fs::set_permissions(
        &target_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )?;
    Ok(())
}
