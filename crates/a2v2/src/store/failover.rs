//! Multi-host PostgreSQL URLs (`postgres://h1:p1,h2:p2/db?target_session_attrs=read-write`).
//!
//! sqlx accepts one host per URL, so the hosts are tried here, in order, the way libpq does:
//! the first server that accepts a connection and — when read-write is asked for — is neither
//! a standby nor fenced read-only is the one to open a pool on. After a failover the pool's
//! connections fail with the errors [`is_primary_lost`] recognises; the caller then looks for
//! the primary again and swaps its pool.

use std::{fmt, str::FromStr, time::Duration};

use sqlx::{
    Connection,
    postgres::{PgConnectOptions, PgConnection},
};

/// Which server of the list is acceptable (libpq's parameter of the same name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetSessionAttrs {
    /// A server that accepts writes: not in recovery, `transaction_read_only` off.
    ReadWrite,
    /// Any server that accepts a connection.
    Any,
}

impl fmt::Display for TargetSessionAttrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ReadWrite => "read-write",
            Self::Any => "any",
        })
    }
}

/// One `host:port` of the list. IPv6 addresses are kept without their brackets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    name: String,
    port: u16,
}

// Accessors the tests read; the store only needs the list as a whole.
#[cfg(test)]
impl Host {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.contains(':') {
            write!(f, "[{}]:{}", self.name, self.port)
        } else {
            write!(f, "{}:{}", self.name, self.port)
        }
    }
}

/// A PostgreSQL URL with one or more hosts. Everything but the host list and
/// `target_session_attrs` is carried over verbatim (still percent-encoded) into the
/// single-host URLs, so sqlx decodes user, password, database and parameters itself.
#[derive(Clone, PartialEq, Eq)]
pub struct HostList {
    scheme: String,
    user: Option<String>,
    password: Option<String>,
    hosts: Vec<Host>,
    database: String,
    params: Vec<String>,
    target: TargetSessionAttrs,
}

pub const DEFAULT_PORT: u16 = 5432;

#[derive(Debug, thiserror::Error)]
pub enum FailoverError {
    /// The URL could not be read. The message never repeats the password.
    #[error("invalid PostgreSQL URL: {0}")]
    InvalidUrl(String),
    #[error("no {target} PostgreSQL server among {}", list_failures(.failures))]
    NoServer {
        target: TargetSessionAttrs,
        failures: Vec<HostFailure>,
    },
}

/// Why one host of the list was passed over.
#[derive(Debug)]
pub struct HostFailure {
    pub host: Host,
    pub reason: HostFailureReason,
}

#[derive(Debug, thiserror::Error)]
pub enum HostFailureReason {
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    #[error("cannot connect: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot check its role: {0}")]
    Check(#[source] sqlx::Error),
    #[error("a standby (in recovery)")]
    InRecovery,
    /// Out of recovery but read-only: a standby being promoted while the old primary is not
    /// fenced yet, or a server configured with `default_transaction_read_only`.
    #[error("read-only")]
    ReadOnly,
}

fn list_failures(failures: &[HostFailure]) -> String {
    failures
        .iter()
        .map(|failure| format!("{}: {}", failure.host, failure.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

impl HostList {
    pub fn parse(url: &str) -> Result<Self, FailoverError> {
        let invalid = |message: &str| FailoverError::InvalidUrl(message.to_owned());
        let (scheme, rest) = url
            .split_once("://")
            .filter(|(scheme, _)| matches!(*scheme, "postgres" | "postgresql"))
            .ok_or_else(|| invalid("expected postgres:// or postgresql://"))?;
        if rest.contains('#') {
            return Err(invalid(
                "a fragment (#) is not allowed; percent-encode it as %23",
            ));
        }
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(authority_end);
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));

        let (userinfo, host_spec) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (Some(userinfo), hosts),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(userinfo) => {
                let (user, password) = match userinfo.split_once(':') {
                    Some((user, password)) => (user, Some(password)),
                    None => (userinfo, None),
                };
                check_encoding(user, "user name")?;
                if let Some(password) = password {
                    check_encoding(password, "password")?;
                }
                (
                    Some(user.to_owned()).filter(|user| !user.is_empty()),
                    password.map(str::to_owned),
                )
            }
        };

        let hosts = host_spec
            .split(',')
            .map(parse_host)
            .collect::<Result<Vec<_>, _>>()?;

        let database = path.strip_prefix('/').unwrap_or(path);
        check_encoding(database, "database name")?;

        let mut target = None;
        let mut params = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            check_encoding(pair, "query parameter")?;
            let key = percent_decode(key).unwrap_or_default();
            if matches!(key.as_str(), "host" | "hostaddr" | "port") {
                // sqlx would let these override the host of every single-host URL.
                return Err(FailoverError::InvalidUrl(format!(
                    "the {key} parameter is not supported: list the hosts as host:port before the path"
                )));
            }
            if key == "target_session_attrs" {
                target = Some(match percent_decode(value).as_deref() {
                    Some("read-write") => TargetSessionAttrs::ReadWrite,
                    Some("any") => TargetSessionAttrs::Any,
                    _ => {
                        return Err(invalid(
                            "target_session_attrs must be read-write or any (the others are not supported)",
                        ));
                    }
                });
            } else {
                params.push(pair.to_owned());
            }
        }
        // A list of hosts is there to follow the primary; one host is taken as it is.
        let target = target.unwrap_or(if hosts.len() > 1 {
            TargetSessionAttrs::ReadWrite
        } else {
            TargetSessionAttrs::Any
        });

        Ok(Self {
            scheme: scheme.to_owned(),
            user,
            password,
            hosts,
            database: database.to_owned(),
            params,
            target,
        })
    }

    #[cfg(test)]
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    #[cfg(test)]
    pub fn target_session_attrs(&self) -> TargetSessionAttrs {
        self.target
    }

    /// One single-host URL per host, in the list's order, with an explicit port. They carry
    /// the password: do not log them.
    #[cfg(test)]
    pub fn urls(&self) -> Vec<String> {
        self.hosts.iter().map(|host| self.url_for(host)).collect()
    }

    fn url_for(&self, host: &Host) -> String {
        let mut url = format!("{}://", self.scheme);
        if self.user.is_some() || self.password.is_some() {
            url.push_str(self.user.as_deref().unwrap_or_default());
            if let Some(password) = &self.password {
                url.push(':');
                url.push_str(password);
            }
            url.push('@');
        }
        url.push_str(&host.to_string());
        url.push('/');
        url.push_str(&self.database);
        if !self.params.is_empty() {
            url.push('?');
            url.push_str(&self.params.join("&"));
        }
        url
    }
}

impl FromStr for HostList {
    type Err = FailoverError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Self::parse(url)
    }
}

impl fmt::Debug for HostList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if percent_decode(key).as_deref() == Some("password") => {
                    format!("{key}=<redacted>")
                }
                _ => pair.clone(),
            })
            .collect();
        f.debug_struct("HostList")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("hosts", &self.hosts)
            .field("database", &self.database)
            .field("params", &params)
            .field("target_session_attrs", &self.target)
            .finish()
    }
}

fn parse_host(spec: &str) -> Result<Host, FailoverError> {
    let invalid = |message: String| FailoverError::InvalidUrl(message);
    let (name, port) = if let Some(bracketed) = spec.strip_prefix('[') {
        let (address, after) = bracketed
            .split_once(']')
            .ok_or_else(|| invalid(format!("unclosed [ in host {spec:?}")))?;
        if address.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid(format!("{address:?} is not an IPv6 address")));
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(|| {
                invalid(format!(
                    "unexpected {after:?} after the address in {spec:?}"
                ))
            })?),
        };
        (address, port)
    } else {
        let (name, port) = match spec.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (spec, None),
        };
        if port.is_some_and(|port| port.contains(':')) {
            return Err(invalid(format!(
                "IPv6 addresses must be written in brackets: {spec:?}"
            )));
        }
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '%');
        if !name.chars().all(valid) {
            return Err(invalid(format!("{name:?} is not a host name")));
        }
        check_encoding(name, "host name")?;
        (name, port)
    };
    if name.is_empty() {
        return Err(invalid(format!(
            "empty host in {spec:?}: every host of the list needs a name or address"
        )));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| invalid(format!("invalid port number {port:?}")))?,
    };
    Ok(Host {
        name: name.to_owned(),
        port,
    })
}

/// Rejects a malformed `%` escape here, with a message naming the part, rather than as an
/// opaque error from sqlx later.
fn check_encoding(text: &str, what: &str) -> Result<(), FailoverError> {
    match percent_decode(text) {
        Some(_) => Ok(()),
        None => Err(FailoverError::InvalidUrl(format!(
            "the {what} has a malformed percent-encoding (a % must be followed by two hex digits, and the result be UTF-8)"
        ))),
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// Tries the hosts in order and returns the single-host URL of the first one that fits the
/// list's `target_session_attrs`, or every host's reason for being passed over.
/// `per_host_timeout` bounds connecting and checking each host.
pub async fn find_primary(
    list: &HostList,
    per_host_timeout: Duration,
) -> Result<String, FailoverError> {
    let mut failures = Vec::new();
    for host in &list.hosts {
        let url = list.url_for(host);
        let probe = probe(&url, list.target);
        let reason = match tokio::time::timeout(per_host_timeout, probe).await {
            Ok(Ok(())) => return Ok(url),
            Ok(Err(reason)) => reason,
            Err(_) => HostFailureReason::TimedOut(per_host_timeout),
        };
        failures.push(HostFailure {
            host: host.clone(),
            reason,
        });
    }
    Err(FailoverError::NoServer {
        target: list.target,
        failures,
    })
}

async fn probe(url: &str, target: TargetSessionAttrs) -> Result<(), HostFailureReason> {
    let options = PgConnectOptions::from_str(url).map_err(HostFailureReason::Connect)?;
    let mut connection = PgConnection::connect_with(&options)
        .await
        .map_err(HostFailureReason::Connect)?;
    let verdict = match target {
        TargetSessionAttrs::Any => Ok(()),
        TargetSessionAttrs::ReadWrite => {
            // pg_auto_failover promotes a standby with default_transaction_read_only on and
            // lifts it once the old primary is fenced: the promoted node is not in recovery
            // any more but must not be written to yet, so both are checked (as libpq does).
            let state: Result<(bool, String), _> = sqlx::query_as(
                "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')",
            )
            .fetch_one(&mut connection)
            .await;
            match state {
                Err(err) => Err(HostFailureReason::Check(err)),
                Ok((true, _)) => Err(HostFailureReason::InRecovery),
                Ok((false, read_only)) if read_only != "off" => Err(HostFailureReason::ReadOnly),
                Ok(_) => Ok(()),
            }
        }
    };
    // Closing politely is a courtesy to the server; the verdict stands either way.
    let _ = connection.close().await;
    verdict
}

/// Whether an error from a pooled connection means its server is gone or is no longer a
/// writable primary, so the pool must be replaced after [`find_primary`] (SQLSTATEs as seen
/// during a pg_auto_failover failover, see `docs/HA-notes.md`):
/// - I/O errors: connection refused, reset, or closed mid-query;
/// - class 08 (connection exception) and 57P01–57P03: shut down, crashed, not accepting
///   connections now (starting, stopping, in recovery);
/// - 25006 `read_only_sql_transaction`: a write reached a standby — the old primary came back
///   as one, or the pool reconnected to a host that was demoted;
/// - `PoolTimedOut`: no new connection could be made in time; if the primary is in fact
///   still there, [`find_primary`] returns it again and the pool can stay.
pub fn is_primary_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "25006" | "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> HostList {
        HostList::parse(url).unwrap_or_else(|err| panic!("{url}: {err}"))
    }

    fn error(url: &str) -> String {
        match HostList::parse(url) {
            Ok(list) => panic!("{url} parsed as {list:?}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn splits_a_formation_url_into_single_host_urls() {
        let list = parse(
            "postgres://postgres@127.0.0.1:5433,127.0.0.1:5434/app?target_session_attrs=read-write&sslmode=require",
        );
        assert_eq!(
            list.urls(),
            [
                "postgres://postgres@127.0.0.1:5433/app?sslmode=require",
                "postgres://postgres@127.0.0.1:5434/app?sslmode=require",
            ]
        );
        assert_eq!(list.target_session_attrs(), TargetSessionAttrs::ReadWrite);
        assert_eq!(list.hosts()[1].port(), 5434);
    }

    #[test]
    fn several_hosts_want_read_write_unless_told_otherwise() {
        let list = parse("postgres://a,b/db");
        assert_eq!(list.target_session_attrs(), TargetSessionAttrs::ReadWrite);
        let list = parse("postgres://a,b/db?target_session_attrs=any");
        assert_eq!(list.target_session_attrs(), TargetSessionAttrs::Any);
        assert_eq!(
            list.urls(),
            ["postgres://a:5432/db", "postgres://b:5432/db"]
        );
    }

    #[test]
    fn a_single_host_is_taken_as_it_is() {
        let list = parse("postgresql://db.internal/app");
        assert_eq!(list.target_session_attrs(), TargetSessionAttrs::Any);
        assert_eq!(list.urls(), ["postgresql://db.internal:5432/app"]);
    }

    #[test]
    fn the_default_port_is_5432_for_each_host_without_one() {
        let list = parse("postgres://a:6000,b,[::1]/db");
        let ports: Vec<u16> = list.hosts().iter().map(Host::port).collect();
        assert_eq!(ports, [6000, 5432, 5432]);
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets_in_urls() {
        let list = parse("postgres://u@[::1]:5433,[fe80::1]/db");
        assert_eq!(list.hosts()[0].name(), "::1");
        assert_eq!(
            list.urls()[0],
            "postgres://u@[::1]:5433/db",
            "sqlx strips the brackets before connecting"
        );
        assert!(error("postgres://::1:5432/db").contains("brackets"));
        assert!(error("postgres://[::1/db").contains("unclosed"));
        assert!(error("postgres://[::1]x/db").contains("unexpected"));
        assert!(error("postgres://[not-v6]/db").contains("IPv6"));
    }

    #[test]
    fn percent_encoded_passwords_pass_through_and_are_never_shown() {
        let list = parse("postgres://app:p%40ss%3Aw%2Fo%25rd@h1,h2/db?password=other");
        assert_eq!(
            list.urls()[0],
            "postgres://app:p%40ss%3Aw%2Fo%25rd@h1:5432/db?password=other"
        );
        let options = PgConnectOptions::from_str(&list.urls()[0]).unwrap();
        assert_eq!(options.get_username(), "app");
        let shown = format!("{list:?}");
        assert!(
            !shown.contains("p%40ss") && !shown.contains("other"),
            "{shown}"
        );
        assert!(
            shown.contains("<redacted>") && shown.contains("h2"),
            "{shown}"
        );
    }

    #[test]
    fn a_password_with_an_at_sign_splits_at_the_last_one() {
        let list = parse("postgres://app:a@b@h1,h2/db");
        assert_eq!(list.urls()[1], "postgres://app:a@b@h2:5432/db");
    }

    #[test]
    fn other_parameters_are_kept_in_order() {
        let list = parse(
            "postgres://h1,h2/db?sslmode=verify-full&target_session_attrs=read-write&application_name=a2v2&options=-c%20statement_timeout%3D5s",
        );
        assert_eq!(
            list.urls()[0],
            "postgres://h1:5432/db?sslmode=verify-full&application_name=a2v2&options=-c%20statement_timeout%3D5s"
        );
    }

    #[test]
    fn an_empty_database_or_user_is_allowed() {
        assert_eq!(parse("postgres://h1,h2").urls()[0], "postgres://h1:5432/");
        assert_eq!(
            parse("postgres://:pw@h/d").urls()[0],
            "postgres://:pw@h:5432/d"
        );
    }

    #[test]
    fn malformed_urls_are_errors_without_the_password() {
        for (url, expected) in [
            ("mysql://h/db", "postgres://"),
            ("postgres://h1,,h2/db", "empty host"),
            ("postgres:///db", "empty host"),
            ("postgres://h:0/db", "invalid port"),
            ("postgres://h:70000/db", "invalid port"),
            ("postgres://h:/db", "invalid port"),
            ("postgres://h:x/db", "invalid port"),
            ("postgres://h w/db", "not a host name"),
            ("postgres://u:secret%zz@h/db", "password"),
            ("postgres://h/d%ff", "database"),
            (
                "postgres://h/db?target_session_attrs=standby",
                "target_session_attrs",
            ),
            ("postgres://u:secret@h/db#x", "fragment"),
            ("postgres://h1,h2/db?host=h3", "host parameter"),
            ("postgres://h1/db?port=5433", "port parameter"),
        ] {
            let message = error(url);
            assert!(message.contains(expected), "{url}: {message}");
            assert!(!message.contains("secret"), "{url}: {message}");
        }
    }

    #[test]
    fn io_errors_and_shutdown_codes_mean_the_primary_is_lost() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(is_primary_lost(&sqlx::Error::Io(refused)));
        assert!(is_primary_lost(&sqlx::Error::PoolTimedOut));
        assert!(!is_primary_lost(&sqlx::Error::RowNotFound));
        assert!(!is_primary_lost(&sqlx::Error::PoolClosed));
    }

    #[tokio::test]
    async fn reports_every_host_that_was_passed_over() {
        // Two ports nothing listens on: bound, then released.
        let ports = [free_port(), free_port()];
        let list = parse(&format!(
            "postgres://u@127.0.0.1:{},127.0.0.1:{}/db",
            ports[0], ports[1]
        ));
        let err = find_primary(&list, Duration::from_secs(5))
            .await
            .unwrap_err();
        let FailoverError::NoServer { failures, target } = &err else {
            panic!("{err}");
        };
        assert_eq!(*target, TargetSessionAttrs::ReadWrite);
        assert_eq!(failures.len(), 2);
        assert!(
            failures
                .iter()
                .all(|f| matches!(&f.reason, HostFailureReason::Connect(e) if is_primary_lost(e))),
            "{err}"
        );
        assert!(err.to_string().contains(&format!("127.0.0.1:{}", ports[1])));
    }

    #[tokio::test]
    async fn a_host_that_never_answers_times_out() {
        // Accepts TCP but never speaks: like a host behind a dropped network path.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let list = parse(&format!("postgres://u@127.0.0.1:{port}/db"));
        let started = std::time::Instant::now();
        let err = find_primary(&list, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(err.to_string().contains("no answer within 300ms"), "{err}");
    }

    /// Against a live pg_auto_failover formation (`scripts/pg-ha up` prints the URL to put in
    /// `A2V2_TEST_PG_HA_URL`; `PG_HA_DIR` if it is not in the default place): kills the
    /// primary, checks what an existing pooled connection reports, follows the failover, and
    /// checks that a write acknowledged before the kill survived it.
    #[tokio::test]
    async fn follows_a_failover_of_a_live_formation() {
        let Ok(url) = std::env::var("A2V2_TEST_PG_HA_URL") else {
            eprintln!(
                "SKIPPED follows_a_failover_of_a_live_formation: no formation \
                 (run scripts/pg-ha up and set A2V2_TEST_PG_HA_URL to the URL it prints)"
            );
            return;
        };
        let list = parse(&url);
        let per_host = Duration::from_secs(2);
        let before = find_primary(&list, per_host).await.unwrap();
        let old_port = port_of(&list, &before);

        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(3))
            .connect(&before)
            .await
            .unwrap();
        let marker = format!(
            "{:?}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
        );
        sqlx::query("CREATE TABLE IF NOT EXISTS failover_probe (marker TEXT PRIMARY KEY)")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO failover_probe (marker) VALUES ($1)")
            .bind(&marker)
            .execute(&pool)
            .await
            .unwrap();
        let mut held = pool.acquire().await.unwrap();

        let killed = pg_ha("kill-primary").await;
        assert_eq!(
            killed,
            old_port.to_string(),
            "the script killed the primary"
        );

        let err = sqlx::query("SELECT 1")
            .execute(&mut *held)
            .await
            .unwrap_err();
        eprintln!("existing connection to the killed primary: {err:?}");
        assert!(is_primary_lost(&err), "{err:?}");
        drop(held);

        // The monitor usually promotes the standby within seconds; on a loaded machine its
        // health checks have been seen to take more than 90 s.
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        let after = loop {
            match find_primary(&list, per_host).await {
                // The old primary's keeper restarts it before it learns it was demoted:
                // for a moment it answers as a primary again (its commits wait for the
                // standby that left), so only another host counts.
                Ok(found) if port_of(&list, &found) != old_port => break found,
                Ok(_) | Err(_) => {}
            }
            assert!(std::time::Instant::now() < deadline, "no new primary");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let new_pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&after)
            .await
            .unwrap();
        let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM failover_probe WHERE marker = $1")
            .bind(&marker)
            .fetch_one(&new_pool)
            .await
            .unwrap();
        assert_eq!(
            kept, 1,
            "a write acknowledged before the failover is on the new primary"
        );

        // The old primary rejoins as a standby on the same port: the old pool reconnects
        // to it happily, and only a write tells.
        pg_ha("wait-healthy").await;
        let err = sqlx::query("INSERT INTO failover_probe (marker) VALUES ('late')")
            .execute(&pool)
            .await
            .unwrap_err();
        eprintln!("old pool after the old primary rejoined as a standby: {err:?}");
        assert!(is_primary_lost(&err), "{err:?}");
    }

    fn port_of(list: &HostList, url: &str) -> u16 {
        let index = list.urls().iter().position(|candidate| candidate == url);
        list.hosts()[index.unwrap()].port()
    }

    async fn pg_ha(command: &str) -> String {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/pg-ha");
        let output = tokio::process::Command::new(script)
            .arg(command)
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "pg-ha {command}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        stdout.lines().last().unwrap_or_default().trim().to_owned()
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}
