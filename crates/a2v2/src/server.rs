//! Start-up and shutdown: opens storage, builds the services, runs the background tasks and
//! the HTTP server, and drains everything on SIGTERM.

use std::{future::Future, io, net::SocketAddr, sync::Arc};

use anyhow::Context;
use tokio::net::{TcpListener, TcpSocket};

use crate::{
    access::guessing::Guessing,
    audit::{self, denials::Denials},
    config::{Config, ConnectionLimits},
    contacts::Contacts,
    crypto::{KeySecrets, MasterKey},
    documents::Documents,
    http::{self, metrics::Registry},
    keys::{self, Keys},
    members::{self, throttle::SignInThrottle},
    model::now_ms,
    state::{AppState, Inner, Metrics},
    store::Store,
};

/// How often last-used times gathered in memory are written.
const FLUSH_LAST_USED_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// How often a node sharing the database reserves rate-limit budget for the keys it serves.
const RESERVE_BUDGET_EVERY: std::time::Duration = std::time::Duration::from_millis(50);
/// How long running extractions may take to finish when the server stops; the jobs of those
/// still running are then handed back to the queue.
const EXTRACTION_GRACE: std::time::Duration = std::time::Duration::from_secs(3);
/// Connections the kernel may hold ready for `accept` (capped by `net.core.somaxconn`). The
/// usual 128 overflows under a burst of connections: the kernel then drops handshakes, and
/// clients wait a second or more to retry — or, with SYN cookies, believe they are connected
/// to a server that never saw them. The accept loop answers past `max_connections` at once,
/// so a deep queue is drained quickly.
const LISTEN_BACKLOG: u32 = 1024;
/// File descriptors kept for everything but client connections: the database pool, the
/// listener, logs and files.
const RESERVED_FILES: usize = 128;

/// Listens on `addr` with a backlog deep enough for bursts of new connections.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As the standard listener does: a restart can bind while old connections linger.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Opens storage (migrating unless told not to) and builds the shared state.
pub async fn open(config: Config, migrate: bool) -> anyhow::Result<AppState> {
    crate::config::ensure_dir(&config.data_dir)?;
    let master = MasterKey::load(&config.master_key)?;
    let store = Store::connect(&config.database_url).await?;
    if migrate {
        store.migrate().await?;
    }
    let keys = Keys::new(
        store.clone(),
        KeySecrets::new(&master),
        config.key_reveal,
        config.key_lease,
    );
    keys.check_master_key()
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let cleared = keys
        .clear_copies_if_off()
        .await
        .context("clearing stored key copies")?;
    if cleared > 0 {
        tracing::info!(
            keys = cleared,
            "key reveal is off: deleted the stored copies of existing keys"
        );
    }
    keys.join().await.context("joining the key nodes")?;
    let loaded = keys.load_all().await.context("loading the API key cache")?;
    tracing::info!(keys = loaded, "API key cache loaded");
    let contacts = Contacts::new(store.clone());
    let documents = Documents::new(
        store.clone(),
        contacts.clone(),
        config.extraction.clone(),
        load_ocr(&config.extraction.ocr_languages),
    );
    Ok(AppState::new(Inner {
        denials: Denials::start(store.clone()),
        contacts,
        documents,
        keys,
        throttle: SignInThrottle::default(),
        guessing: Guessing::new(config.invalid_key_limit),
        metrics: Metrics::default(),
        store,
        config,
    }))
}

/// Runs the server on `listener` until `shutdown` resolves, then drains and flushes.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let flusher = {
        let keys = state.keys.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_LAST_USED_EVERY);
            loop {
                tick.tick().await;
                keys.flush_last_used().await;
            }
        })
    };
    let follower = tokio::spawn(keys::sync::follow(state.keys.clone(), state.store.clone()));
    let poller = tokio::spawn(keys::sync::poll(state.keys.clone(), state.store.clone()));
    let budgets = {
        let keys = state.keys.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RESERVE_BUDGET_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                keys.reserve_budgets().await;
            }
        })
    };
    let retention = tokio::spawn(audit::retention::run(
        state.store.clone(),
        state.config.audit_retention_days,
    ));
    let housekeeping = tokio::spawn(housekeeping(state.clone()));
    let sealer = tokio::spawn(audit::chain::run(state.store.clone()));
    let extraction = tokio::spawn(state.documents.clone().work());
    let registry = Arc::new(Registry::default());
    let metrics_server = match state.config.metrics_listen {
        Some(metrics_addr) => {
            let metrics_listener = TcpListener::bind(metrics_addr)
                .await
                .with_context(|| format!("cannot listen for metrics on {metrics_addr}"))?;
            tracing::info!(addr = %metrics_listener.local_addr()?, "serving metrics");
            let app = http::metrics_router(state.clone(), Arc::clone(&registry));
            Some(tokio::spawn(async move {
                axum::serve(
                    metrics_listener,
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .await
            }))
        }
        None => None,
    };
    let limits = fit_open_file_limit(state.config.connections);
    println!("a2v2 listening on http://{addr}");
    tracing::info!(%addr, max_connections = limits.max_connections, "listening");
    let app = http::router(
        state.clone(),
        registry,
        state.config.metrics_listen.is_none(),
    );
    http::connections::serve(listener, app, state.clone(), limits, shutdown).await;
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    flusher.abort();
    follower.abort();
    poller.abort();
    budgets.abort();
    retention.abort();
    housekeeping.abort();
    sealer.abort();
    extraction.abort();
    state.documents.stop(EXTRACTION_GRACE).await;
    state.keys.leave().await;
    // Everything gathered in memory is written before storage closes.
    state.keys.flush_last_used().await;
    state.denials.shutdown().await;
    state.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Prunes the sign-in throttle every minute and deletes expired sessions and invites every
/// hour.
async fn housekeeping(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    let mut rounds = 0u64;
    loop {
        tick.tick().await;
        state.guessing.prune(now_ms());
        if let Err(err) = state.throttle.prune(&state.store, now_ms()).await {
            tracing::warn!(error = %err, "pruning the sign-in throttle failed");
        }
        if rounds.is_multiple_of(60) {
            match members::sessions::purge_expired(&state.store).await {
                Ok((0, 0)) => {}
                Ok((sessions, invites)) => {
                    tracing::info!(sessions, invites, "deleted expired sessions and invites")
                }
                Err(err) => tracing::warn!(error = %err, "deleting expired sessions failed"),
            }
        }
        rounds += 1;
    }
}

/// Raises the open-file limit as far as `max_connections` needs and the hard limit allows,
/// and lowers `max_connections` to what fits: at its limit the server should answer 503, not
/// fail to accept for want of file descriptors.
fn fit_open_file_limit(mut limits: ConnectionLimits) -> ConnectionLimits {
    let overhead = RESERVED_FILES + http::connections::REFUSALS_AT_ONCE;
    let needed = limits.max_connections + overhead;
    match rlimit::increase_nofile_limit(u64::try_from(needed).unwrap_or(u64::MAX)) {
        Ok(allowed) => {
            let allowed = usize::try_from(allowed).unwrap_or(usize::MAX);
            if allowed < needed {
                let fitting = allowed.saturating_sub(overhead).max(1);
                tracing::warn!(
                    max_connections = limits.max_connections,
                    open_file_limit = allowed,
                    using = fitting,
                    "the open-file limit is too low for max_connections; raise it \
                     (ulimit -n, LimitNOFILE=) or lower max_connections"
                );
                limits.max_connections = fitting;
            }
        }
        Err(err) => tracing::warn!(error = %err, "cannot read or raise the open-file limit"),
    }
    limits
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// The OCR engine for images and scanned pages. A server without Tesseract still starts: such
/// uploads then fail with `ocr_unavailable`, and the log says why at start-up.
fn load_ocr(languages: &str) -> Option<std::sync::Arc<dyn a2v2_extract::Ocr>> {
    match a2v2_extract::ocr::Tesseract::load(languages) {
        Ok(engine) => {
            tracing::info!(languages, "OCR is available");
            Some(std::sync::Arc::new(engine))
        }
        Err(err) => {
            tracing::warn!(error = %err, "OCR is unavailable: images and scanned pages will fail with ocr_unavailable");
            None
        }
    }
}
