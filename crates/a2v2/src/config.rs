//! Configuration: flags win over environment, environment over the TOML file, the file over
//! built-in defaults. clap reads flags and `A2V2_*` variables; the file fills what they left unset.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use ipnet::IpNet;
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_MAX_UPLOAD_BYTES: usize = 26_214_400;
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 0;
pub const DEFAULT_INVALID_KEY_LIMIT: u32 = 1200;
pub const DEFAULT_KEY_LEASE_SECONDS: u64 = 5;
pub const DEFAULT_REQUEST_TIMEOUT_SECONDS: u64 = 60;
pub const DEFAULT_HEADER_TIMEOUT_SECONDS: u64 = 15;
pub const DEFAULT_BODY_TIMEOUT_SECONDS: u64 = 30;
pub const DEFAULT_IDLE_TIMEOUT_SECONDS: u64 = 75;
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub const DEFAULT_EXTRACTION_INLINE_BYTES: usize = 2 * 1024 * 1024;
pub const DEFAULT_EXTRACTION_INLINE_SECONDS: u64 = 10;
pub const DEFAULT_EXTRACTION_TIMEOUT_SECONDS: u64 = 120;
pub const DEFAULT_EXTRACTION_LEASE_SECONDS: u64 = 30;
pub const DEFAULT_OCR_LANGUAGES: &str = "eng";
/// Far above what one process can serve; keeps the count within the semaphore's range.
const MOST_CONNECTIONS: usize = 1_000_000;

/// One core is left to requests: with extraction on every core, a request that wakes up lands
/// on a core busy with extraction and, idle class or not, waits for it up to a scheduler tick
/// (key verification p99 3.5 ms against 2–2.9 ms with one worker fewer on two cores, for
/// about a quarter less document throughput; docs/PERFORMANCE.md).
fn default_extraction_workers(cores: usize) -> usize {
    cores.saturating_sub(1).max(1)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// Settings shared by every subcommand that touches the server's data.
#[derive(Args, Clone, Debug, Default)]
pub struct ConfigArgs {
    /// TOML file with any of the settings below (snake_case keys)
    #[arg(long, env = "A2V2_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080]; port 0 picks a free port
    #[arg(long, env = "A2V2_LISTEN", global = true)]
    pub listen: Option<SocketAddr>,
    /// Database URL: sqlite://PATH or postgres://… [default: sqlite://<data-dir>/a2v2.db]
    #[arg(
        long = "database",
        env = "A2V2_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Directory for the embedded database and the generated master key [default: ./data]
    #[arg(long, env = "A2V2_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Master key, 64 hex characters (prefer A2V2_MASTER_KEY_FILE: flags show in `ps`)
    #[arg(long, env = "A2V2_MASTER_KEY", global = true, hide_env_values = true)]
    pub master_key: Option<String>,
    /// File holding the master key [default: <data-dir>/master.key, generated]
    #[arg(long, env = "A2V2_MASTER_KEY_FILE", global = true)]
    pub master_key_file: Option<PathBuf>,
    /// Comma-separated CIDRs of reverse proxies whose X-Forwarded-For is trusted [default: none]
    #[arg(long, env = "A2V2_TRUSTED_PROXIES", global = true)]
    pub trusted_proxies: Option<String>,
    /// Largest accepted upload in bytes [default: 26214400]
    #[arg(long, env = "A2V2_MAX_UPLOAD_BYTES", global = true)]
    pub max_upload_bytes: Option<usize>,
    /// Keep an encrypted copy of each API key so the dashboard can copy it again [default: true]
    #[arg(long, env = "A2V2_KEY_REVEAL", global = true)]
    pub key_reveal: Option<bool>,
    /// Log format [default: pretty]
    #[arg(long, env = "A2V2_LOG_FORMAT", global = true)]
    pub log_format: Option<LogFormat>,
    /// Public URL of the dashboard; an https:// URL marks session cookies Secure
    #[arg(long, env = "A2V2_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// Days audit events are kept before the background purge removes them; 0 keeps them forever [default: 0]
    #[arg(long, env = "A2V2_AUDIT_RETENTION_DAYS", global = true)]
    pub audit_retention_days: Option<u32>,
    /// Seconds this node keeps serving /v1 without confirming that its key cache is current;
    /// past that it answers 503 until it catches up [default: 5]
    #[arg(long, env = "A2V2_KEY_LEASE_SECONDS", global = true)]
    pub key_lease_seconds: Option<u64>,
    /// Longest time a request may take before it is answered 503, except uploads and exports
    /// [default: 60]
    #[arg(long, env = "A2V2_REQUEST_TIMEOUT_SECONDS", global = true)]
    pub request_timeout_seconds: Option<u64>,
    /// Serve /metrics on this address instead of the main one (e.g. 127.0.0.1:9090)
    /// [default: /metrics on the main address]
    #[arg(long, env = "A2V2_METRICS_LISTEN", global = true)]
    pub metrics_listen: Option<SocketAddr>,
    /// Seconds a client has to send a request's headers, from the connection's start or the
    /// request's first byte [default: 15]
    #[arg(long, env = "A2V2_HEADER_TIMEOUT_SECONDS", global = true)]
    pub header_timeout_seconds: Option<u64>,
    /// Seconds a request body may stall (no bytes arriving) before the request fails with 408 [default: 30]
    #[arg(long, env = "A2V2_BODY_TIMEOUT_SECONDS", global = true)]
    pub body_timeout_seconds: Option<u64>,
    /// Seconds a connection may stay silent between requests before it is closed [default: 75]
    #[arg(long, env = "A2V2_IDLE_TIMEOUT_SECONDS", global = true)]
    pub idle_timeout_seconds: Option<u64>,
    /// Most client connections open at once; further ones are answered 503 and closed [default: 10000]
    #[arg(long, env = "A2V2_MAX_CONNECTIONS", global = true)]
    pub max_connections: Option<usize>,
    /// /v1 requests with a missing or invalid key (and leaked-key reports) one client address
    /// (IPv6: one /64) may make per minute; further requests are answered 429 [default: 1200]
    #[arg(long, env = "A2V2_INVALID_KEY_LIMIT", global = true)]
    pub invalid_key_limit: Option<u32>,
    /// Documents extracted at once by this node [default: one less than the number of CPU
    /// cores, at least 1]
    #[arg(long, env = "A2V2_EXTRACTION_WORKERS", global = true)]
    pub extraction_workers: Option<usize>,
    /// Uploads up to this many bytes are extracted while the client waits (201); larger ones
    /// are queued (202) [default: 2097152]
    #[arg(long, env = "A2V2_EXTRACTION_INLINE_BYTES", global = true)]
    pub extraction_inline_bytes: Option<usize>,
    /// Seconds an upload waits for its extraction before answering 202 `processing`
    /// [default: 10]
    #[arg(long, env = "A2V2_EXTRACTION_INLINE_SECONDS", global = true)]
    pub extraction_inline_seconds: Option<u64>,
    /// Seconds one document's extraction may take before it fails with `timeout` [default: 120]
    #[arg(long, env = "A2V2_EXTRACTION_TIMEOUT_SECONDS", global = true)]
    pub extraction_timeout_seconds: Option<u64>,
    /// Seconds a node holds a queued extraction without renewing it; a job of a node that
    /// stopped is taken again after this [default: 30]
    #[arg(long, env = "A2V2_EXTRACTION_LEASE_SECONDS", global = true)]
    pub extraction_lease_seconds: Option<u64>,
    /// Languages OCR reads, as Tesseract codes joined by `+` [default: eng]
    #[arg(long, env = "A2V2_OCR_LANGUAGES", global = true)]
    pub ocr_languages: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    database_url: Option<String>,
    data_dir: Option<PathBuf>,
    master_key: Option<String>,
    master_key_file: Option<PathBuf>,
    trusted_proxies: Option<TrustedProxies>,
    max_upload_bytes: Option<usize>,
    key_reveal: Option<bool>,
    log_format: Option<LogFormat>,
    public_url: Option<String>,
    audit_retention_days: Option<u32>,
    key_lease_seconds: Option<u64>,
    request_timeout_seconds: Option<u64>,
    metrics_listen: Option<SocketAddr>,
    header_timeout_seconds: Option<u64>,
    body_timeout_seconds: Option<u64>,
    idle_timeout_seconds: Option<u64>,
    max_connections: Option<usize>,
    invalid_key_limit: Option<u32>,
    extraction_workers: Option<usize>,
    extraction_inline_bytes: Option<usize>,
    extraction_inline_seconds: Option<u64>,
    extraction_timeout_seconds: Option<u64>,
    extraction_lease_seconds: Option<u64>,
    ocr_languages: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TrustedProxies {
    List(Vec<String>),
    Joined(String),
}

/// The resolved configuration.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub data_dir: PathBuf,
    pub master_key: MasterKeySource,
    pub trusted_proxies: Vec<IpNet>,
    pub max_upload_bytes: usize,
    pub key_reveal: bool,
    pub log_format: LogFormat,
    pub secure_cookies: bool,
    pub audit_retention_days: u32,
    pub key_lease: Duration,
    pub request_timeout: Duration,
    pub metrics_listen: Option<SocketAddr>,
    pub connections: ConnectionLimits,
    pub invalid_key_limit: u32,
    pub extraction: ExtractionSettings,
}

/// How documents are extracted: how many at once, which wait for the client, how long each
/// may take, and how long a queued job's lease lasts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtractionSettings {
    pub workers: usize,
    pub inline_max_bytes: usize,
    pub inline_wait: Duration,
    pub timeout: Duration,
    pub lease: Duration,
    pub ocr_languages: String,
}

/// How long a client may take and how many may be connected at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From a connection's start, or a request's first byte, to the end of its headers.
    pub header_timeout: Duration,
    /// Longest wait for the next bytes of a request body.
    pub body_timeout: Duration,
    /// Longest silence (nothing read or written) while no request is being handled.
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

#[derive(Clone)]
pub enum MasterKeySource {
    Inline(String),
    File(PathBuf),
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database", &redact_url(&self.database_url))
            .field("data_dir", &self.data_dir)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("key_reveal", &self.key_reveal)
            .field("connections", &self.connections)
            .finish_non_exhaustive()
    }
}

/// The URL without its password, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

impl ConfigArgs {
    pub fn resolve(self) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let data_dir = self
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));
        let database_url = self
            .database_url
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("a2v2.db").display()));
        let master_key = match (
            self.master_key.or(file.master_key),
            self.master_key_file.or(file.master_key_file),
        ) {
            (Some(inline), _) => MasterKeySource::Inline(inline),
            (None, Some(path)) => MasterKeySource::File(path),
            (None, None) => MasterKeySource::File(data_dir.join("master.key")),
        };
        let trusted_proxies = match self.trusted_proxies {
            Some(joined) => parse_proxies(joined.split(','))?,
            None => match file.trusted_proxies {
                Some(TrustedProxies::List(list)) => parse_proxies(list.iter().map(String::as_str))?,
                Some(TrustedProxies::Joined(joined)) => parse_proxies(joined.split(','))?,
                None => Vec::new(),
            },
        };
        let public_url = self.public_url.or(file.public_url);
        let listen = match self.listen.or(file.listen) {
            Some(listen) => listen,
            None => DEFAULT_LISTEN.parse()?,
        };
        let max_upload_bytes = self
            .max_upload_bytes
            .or(file.max_upload_bytes)
            .unwrap_or(DEFAULT_MAX_UPLOAD_BYTES);
        if max_upload_bytes == 0 {
            bail!("max_upload_bytes must be positive");
        }
        let connections = ConnectionLimits {
            header_timeout: seconds(
                "header_timeout_seconds",
                self.header_timeout_seconds.or(file.header_timeout_seconds),
                DEFAULT_HEADER_TIMEOUT_SECONDS,
            )?,
            body_timeout: seconds(
                "body_timeout_seconds",
                self.body_timeout_seconds.or(file.body_timeout_seconds),
                DEFAULT_BODY_TIMEOUT_SECONDS,
            )?,
            idle_timeout: seconds(
                "idle_timeout_seconds",
                self.idle_timeout_seconds.or(file.idle_timeout_seconds),
                DEFAULT_IDLE_TIMEOUT_SECONDS,
            )?,
            max_connections: self
                .max_connections
                .or(file.max_connections)
                .unwrap_or(DEFAULT_MAX_CONNECTIONS),
        };
        if !(1..=MOST_CONNECTIONS).contains(&connections.max_connections) {
            bail!("max_connections must be between 1 and {MOST_CONNECTIONS}");
        }
        let extraction = ExtractionSettings {
            workers: match self.extraction_workers.or(file.extraction_workers) {
                Some(0) => bail!("extraction_workers must be at least 1"),
                Some(n) => n,
                None => default_extraction_workers(
                    std::thread::available_parallelism().map_or(1, usize::from),
                ),
            },
            inline_max_bytes: self
                .extraction_inline_bytes
                .or(file.extraction_inline_bytes)
                .unwrap_or(DEFAULT_EXTRACTION_INLINE_BYTES),
            inline_wait: seconds(
                "extraction_inline_seconds",
                self.extraction_inline_seconds
                    .or(file.extraction_inline_seconds),
                DEFAULT_EXTRACTION_INLINE_SECONDS,
            )?,
            timeout: seconds(
                "extraction_timeout_seconds",
                self.extraction_timeout_seconds
                    .or(file.extraction_timeout_seconds),
                DEFAULT_EXTRACTION_TIMEOUT_SECONDS,
            )?,
            lease: seconds(
                "extraction_lease_seconds",
                self.extraction_lease_seconds
                    .or(file.extraction_lease_seconds),
                DEFAULT_EXTRACTION_LEASE_SECONDS,
            )?,
            ocr_languages: self
                .ocr_languages
                .or(file.ocr_languages)
                .map(|languages| languages.trim().to_owned())
                .filter(|languages| !languages.is_empty())
                .unwrap_or_else(|| DEFAULT_OCR_LANGUAGES.to_owned()),
        };
        Ok(Config {
            listen,
            database_url,
            data_dir,
            master_key,
            trusted_proxies,
            max_upload_bytes,
            key_reveal: self.key_reveal.or(file.key_reveal).unwrap_or(true),
            log_format: self.log_format.or(file.log_format).unwrap_or_default(),
            secure_cookies: public_url.is_some_and(|url| url.starts_with("https://")),
            audit_retention_days: self
                .audit_retention_days
                .or(file.audit_retention_days)
                .unwrap_or(DEFAULT_AUDIT_RETENTION_DAYS),
            key_lease: seconds(
                "key_lease_seconds",
                self.key_lease_seconds.or(file.key_lease_seconds),
                DEFAULT_KEY_LEASE_SECONDS,
            )?,
            request_timeout: seconds(
                "request_timeout_seconds",
                self.request_timeout_seconds
                    .or(file.request_timeout_seconds),
                DEFAULT_REQUEST_TIMEOUT_SECONDS,
            )?,
            metrics_listen: self.metrics_listen.or(file.metrics_listen),
            connections,
            invalid_key_limit: match self
                .invalid_key_limit
                .or(file.invalid_key_limit)
                .unwrap_or(DEFAULT_INVALID_KEY_LIMIT)
            {
                0 => bail!("invalid_key_limit must be at least 1"),
                n => n,
            },
            extraction,
        })
    }
}

/// A positive number of seconds, or the default.
fn seconds(name: &str, value: Option<u64>, default: u64) -> anyhow::Result<Duration> {
    match value.unwrap_or(default) {
        0 => bail!("{name} must be at least 1"),
        n => Ok(Duration::from_secs(n)),
    }
}

fn parse_proxies<'a>(entries: impl Iterator<Item = &'a str>) -> anyhow::Result<Vec<IpNet>> {
    entries
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            crate::model::ip::parse_entry(entry).ok_or_else(|| {
                anyhow::anyhow!("trusted proxy {entry:?} is not an IP address or CIDR range")
            })
        })
        .collect()
}

/// Creates the data directory with owner-only permissions if it is missing.
pub fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_password_is_redacted() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db:5432/a2v2"),
            "postgres://app:***@db:5432/a2v2"
        );
        assert_eq!(redact_url("sqlite://data/a2v2.db"), "sqlite://data/a2v2.db");
    }

    #[test]
    fn extraction_leaves_a_core_to_requests() {
        assert_eq!(default_extraction_workers(1), 1);
        assert_eq!(default_extraction_workers(2), 1);
        assert_eq!(default_extraction_workers(8), 7);
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a2v2.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nkey_reveal = false\ntrusted_proxies = [\"10.0.0.0/8\"]\n",
        )
        .unwrap();
        let config = ConfigArgs {
            config: Some(path),
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..ConfigArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(config.listen.port(), 9100);
        assert!(!config.key_reveal);
        assert_eq!(config.trusted_proxies.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn the_data_dir_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/data");
        ensure_dir(&data).unwrap();
        let mode = std::fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn connection_limits_come_from_the_file_and_refuse_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a2v2.toml");
        std::fs::write(
            &path,
            "header_timeout_seconds = 5\nidle_timeout_seconds = 20\nmax_connections = 300\n",
        )
        .unwrap();
        let config = ConfigArgs {
            config: Some(path.clone()),
            body_timeout_seconds: Some(7),
            ..ConfigArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(
            config.connections,
            ConnectionLimits {
                header_timeout: Duration::from_secs(5),
                body_timeout: Duration::from_secs(7),
                idle_timeout: Duration::from_secs(20),
                max_connections: 300,
            }
        );
        let defaults = ConfigArgs::default().resolve().unwrap().connections;
        assert_eq!(defaults.header_timeout, Duration::from_secs(15));
        assert_eq!(defaults.body_timeout, Duration::from_secs(30));
        assert_eq!(defaults.idle_timeout, Duration::from_secs(75));
        assert_eq!(defaults.max_connections, 10_000);
        for args in [
            ConfigArgs {
                idle_timeout_seconds: Some(0),
                ..ConfigArgs::default()
            },
            ConfigArgs {
                max_connections: Some(0),
                ..ConfigArgs::default()
            },
        ] {
            assert!(args.resolve().is_err());
        }
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a2v2.toml");
        std::fs::write(&path, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        let result = ConfigArgs {
            config: Some(path),
            ..ConfigArgs::default()
        }
        .resolve();
        assert!(result.is_err());
    }
}
