//! Consistent copies of the embedded database, taken while the server runs.

use std::path::Path;

use super::{Backend, Store, StoreError};

impl Store {
    /// Writes a consistent copy of the SQLite database to `path` (which must not exist), while
    /// other connections keep reading and writing: `VACUUM INTO` reads one snapshot. `None`
    /// on PostgreSQL, whose own tools (`pg_dump`, base backups) do this.
    pub async fn snapshot_into(&self, path: &Path) -> Option<Result<(), StoreError>> {
        if self.backend != Backend::Sqlite {
            return None;
        }
        let result = sqlx::query("VACUUM INTO $1")
            .bind(path.display().to_string())
            .execute(&self.primary.pool())
            .await;
        Some(result.map(|_| ()).map_err(StoreError::from))
    }
}

/// The file an `sqlite:` URL names; `None` for other URLs.
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    if !url.starts_with("sqlite:") {
        return None;
    }
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse().ok()?;
    Some(options.get_filename().to_path_buf())
}
