//! Start-up and shutdown: opens storage, builds the services, runs the background tasks and
//! the HTTP server, and drains everything on SIGTERM.

use std::{future::Future, net::SocketAddr};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::{
    audit::{self, denials::Denials},
    config::Config,
    contacts::Contacts,
    crypto::{KeySecrets, MasterKey},
    http,
    keys::{self, Keys},
    members::throttle::SignInThrottle,
    state::{AppState, Inner, Metrics},
    store::Store,
};

/// How often last-used times gathered in memory are written.
const FLUSH_LAST_USED_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens storage (migrating unless told not to) and builds the shared state.
pub async fn open(config: Config, migrate: bool) -> anyhow::Result<AppState> {
    crate::config::ensure_dir(&config.data_dir)?;
    let master = MasterKey::load(&config.master_key)?;
    let store = Store::connect(&config.database_url).await?;
    if migrate {
        store.migrate().await?;
    }
    let keys = Keys::new(store.clone(), KeySecrets::new(&master), config.key_reveal);
    let loaded = keys.load_all().await.context("loading the API key cache")?;
    tracing::info!(keys = loaded, "API key cache loaded");
    Ok(AppState::new(Inner {
        denials: Denials::start(store.clone()),
        contacts: Contacts::new(store.clone()),
        keys,
        throttle: SignInThrottle::default(),
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
    let retention = tokio::spawn(audit::retention::run(
        state.store.clone(),
        state.config.audit_retention_days,
    ));
    println!("a2v2 listening on http://{addr}");
    tracing::info!(%addr, "listening");
    axum::serve(
        listener,
        http::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("serving HTTP")?;
    flusher.abort();
    follower.abort();
    poller.abort();
    retention.abort();
    state.keys.flush_last_used().await;
    state.store.close().await;
    tracing::info!("stopped");
    Ok(())
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
