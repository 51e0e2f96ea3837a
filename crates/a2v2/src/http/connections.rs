//! Client connections: the accept loop, the limit on how many are open at once, and the
//! timeouts that keep slow or silent clients from holding one.
//!
//! hyper serves HTTP/1.1 on each connection. Beside it runs a watchdog that knows what the
//! connection is waiting for — a request's headers, a handler, or nothing — and closes it
//! when the client takes longer than `header_timeout` for its headers or stays silent for
//! `idle_timeout` between requests. Request bodies are wrapped so that a read that gets no
//! bytes for `body_timeout` fails, which the body extractors turn into 408 before any
//! handler logic runs.

use std::{
    convert::Infallible,
    future::Future,
    io,
    net::SocketAddr,
    pin::{Pin, pin},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    extract::ConnectInfo,
    http::{Request, Response},
};
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{Notify, Semaphore, watch},
    time::{Instant, Sleep},
};
use tower::ServiceExt;

use crate::{config::ConnectionLimits, state::AppState};

/// How many refused connections may wait at once for their 503 to be read; past that a
/// connection over the limit is closed without an answer.
pub const REFUSALS_AT_ONCE: usize = 64;
/// How long a refused connection is kept open for the client to read its 503.
const REFUSAL_GRACE: Duration = Duration::from_secs(1);
/// The `Retry-After` of a refusal: connections free up quickly.
const REFUSAL_RETRY_AFTER_SECONDS: u64 = 1;
/// Pause after an accept error that is not the client's (such as running out of file
/// descriptors), so the loop does not spin while it lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Reading a request body failed: no bytes arrived for the body timeout while a handler was
/// waiting for them.
#[derive(Debug, thiserror::Error)]
#[error("the client sent no part of the request body within the body timeout")]
pub struct BodyStalled;

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, lets the
/// requests being handled finish, and returns once every connection has closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    state: AppState,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let refusing = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    if !is_connection_error(&err) {
                        tracing::warn!(error = %err, "accepting a connection failed");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                    continue;
                }
            },
        };
        match Arc::clone(&open).try_acquire_owned() {
            Ok(permit) => {
                let connection = Connection {
                    app: app.clone(),
                    state: state.clone(),
                    limits,
                    peer,
                };
                let stopping = stopping.clone();
                tokio::spawn(async move {
                    connection.run(stream, stopping).await;
                    drop(permit);
                });
            }
            Err(_) => refuse(stream, &refusing, &state),
        }
    }
    drop(listener);
    let _ = stop.send(true);
    // Each connection holds a permit until it has closed: with all of them back, none is open.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = open.acquire_many(all).await;
}

/// Errors about one connection that went away before it was accepted; the next accept works.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Answers a connection over the limit with a 503 in the contract's error shape and closes
/// it, without waiting for its request: a client learns at once to come back later.
fn refuse(stream: TcpStream, refusing: &Arc<Semaphore>, state: &AppState) {
    state
        .metrics
        .connections
        .refused_at_limit
        .fetch_add(1, Ordering::Relaxed);
    let Ok(permit) = Arc::clone(refusing).try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _ = tokio::time::timeout(REFUSAL_GRACE, answer_unavailable(stream)).await;
        drop(permit);
    });
}

async fn answer_unavailable(mut stream: TcpStream) -> io::Result<()> {
    let id = super::request_id::generate();
    let request_id = id.to_str().unwrap_or_default();
    let body = serde_json::json!({
        "error": {
            "code": "unavailable",
            "message": "The server has as many connections open as it allows; retry in a second.",
            "request_id": request_id,
        }
    })
    .to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\n\
         content-type: application/json\r\n\
         content-length: {}\r\n\
         retry-after: {REFUSAL_RETRY_AFTER_SECONDS}\r\n\
         x-request-id: {request_id}\r\n\
         cache-control: no-store\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    // Reading what the client sent until it closes ends the connection cleanly; closing with
    // unread data would reset it, and the client could lose the answer.
    let mut discard = [0u8; 4096];
    while stream.read(&mut discard).await? > 0 {}
    Ok(())
}

/// One accepted connection and what serving it needs.
struct Connection {
    app: Router,
    state: AppState,
    limits: ConnectionLimits,
    peer: SocketAddr,
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Normal,
    HeaderTimeout,
    BodyTimeout,
    IdleTimeout,
}

impl Connection {
    async fn run(self, stream: TcpStream, mut stopping: watch::Receiver<bool>) {
        let metrics = &self.state.metrics.connections;
        metrics.open.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new());
        let service = {
            let activity = Arc::clone(&activity);
            let (app, peer, body_timeout) = (self.app.clone(), self.peer, self.limits.body_timeout);
            hyper::service::service_fn(move |request: Request<Incoming>| {
                let activity = Arc::clone(&activity);
                let app = app.clone();
                async move {
                    activity.enter(Phase::Handling);
                    let mut request = request.map(|body| {
                        Body::new(StallGuard::new(body, body_timeout, Arc::clone(&activity)))
                    });
                    request.extensions_mut().insert(ConnectInfo(peer));
                    let response: Result<Response<Body>, Infallible> = app.oneshot(request).await;
                    activity.enter(Phase::Idle);
                    response
                }
            })
        };
        let io = TokioIo::new(Watched {
            stream,
            activity: Arc::clone(&activity),
        });
        let mut connection = pin!(
            hyper::server::conn::http1::Builder::new()
                // The watchdog below keeps the header and idle timeouts apart; hyper's own
                // header timer would also run while the connection waits between requests.
                .header_read_timeout(None::<Duration>)
                .serve_connection(io, service)
        );
        let mut timer = pin!(tokio::time::sleep_until(Instant::now()));
        let mut draining = *stopping.borrow();
        if draining {
            connection.as_mut().graceful_shutdown();
        }
        // When the timer is set to go off. It is moved only to an earlier deadline: one that
        // moved later (the usual case, as requests come and go) is found when the timer goes
        // off early, which costs less than moving the timer on every request.
        let mut armed: Option<Instant> = None;
        let ending = loop {
            if let Some((at, _)) = activity.deadline(&self.limits, draining)
                && armed.is_none_or(|armed| at < armed)
            {
                timer.as_mut().reset(at);
                armed = Some(at);
            }
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(err) = served {
                        tracing::debug!(error = %err, peer = %self.peer, "connection failed");
                    }
                    break Ending::Normal;
                }
                () = timer.as_mut(), if armed.is_some() => {
                    armed = None;
                    // The deadline may have moved since the timer was set; only a due one counts.
                    if let Some((at, ending)) = activity.deadline(&self.limits, draining)
                        && at <= Instant::now()
                    {
                        break ending;
                    }
                }
                () = activity.changed.notified() => {}
                _ = stopping.changed(), if !draining => {
                    draining = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        };
        let ending = match ending {
            Ending::Normal if activity.body_stalled.load(Ordering::Relaxed) => Ending::BodyTimeout,
            ending => ending,
        };
        if ending != Ending::Normal {
            tracing::debug!(peer = %self.peer, ?ending, "connection closed by a timeout");
        }
        let closed = match ending {
            Ending::Normal => &metrics.closed_normally,
            Ending::HeaderTimeout => &metrics.closed_header_timeout,
            Ending::BodyTimeout => &metrics.closed_body_timeout,
            Ending::IdleTimeout => &metrics.closed_idle_timeout,
        };
        closed.fetch_add(1, Ordering::Relaxed);
        metrics.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a connection is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    /// A request's headers: from the connection's start or the request's first byte.
    Head,
    /// A handler: its request's headers are in and its response is not yet handed over.
    Handling,
    /// Nothing: between requests, or writing out a response.
    Idle,
}

/// What the watchdog of one connection knows, kept up to date by the socket wrapper, the
/// service and the body wrapper. Times are milliseconds since the connection started.
struct Activity {
    started: Instant,
    phase: AtomicU8,
    phase_since: AtomicU64,
    last_transfer: AtomicU64,
    body_stalled: AtomicBool,
    /// Woken when the phase changes, so the watchdog picks the deadline of the new phase.
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            phase: AtomicU8::new(Phase::Head as u8),
            phase_since: AtomicU64::new(0),
            last_transfer: AtomicU64::new(0),
            body_stalled: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, millis: u64) -> Instant {
        self.started + Duration::from_millis(millis)
    }

    fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Head,
            1 => Phase::Handling,
            _ => Phase::Idle,
        }
    }

    fn enter(&self, phase: Phase) {
        self.phase_since.store(self.now(), Ordering::Relaxed);
        self.phase.store(phase as u8, Ordering::Relaxed);
        self.changed.notify_one();
    }

    /// Bytes came in: the first of a new request starts its header clock.
    fn received(&self) {
        self.transferred();
        if self.phase() == Phase::Idle {
            self.enter(Phase::Head);
        }
    }

    fn transferred(&self) {
        self.last_transfer.store(self.now(), Ordering::Relaxed);
    }

    /// When the connection is to be closed, and why, if nothing changes until then.
    fn deadline(&self, limits: &ConnectionLimits, draining: bool) -> Option<(Instant, Ending)> {
        match self.phase() {
            Phase::Handling => None,
            // At shutdown a request that has not fully arrived is not waited for.
            Phase::Head if draining => Some((self.started, Ending::Normal)),
            Phase::Head => Some((
                self.at(self.phase_since.load(Ordering::Relaxed)) + limits.header_timeout,
                Ending::HeaderTimeout,
            )),
            Phase::Idle => Some((
                self.at(self.last_transfer.load(Ordering::Relaxed)) + limits.idle_timeout,
                Ending::IdleTimeout,
            )),
        }
    }
}

/// The client's socket, noting every transfer on the connection's [`Activity`].
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.received();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            self.activity.transferred();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(written)) if written > 0) {
            self.activity.transferred();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A request body that fails with [`BodyStalled`] when a read waits `timeout` without
/// getting a byte. Only waiting counts: time the handler spends elsewhere does not, and an
/// upload that is slow but keeps coming is never cut off.
struct StallGuard {
    inner: Incoming,
    timeout: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    waiting: bool,
    activity: Arc<Activity>,
}

impl StallGuard {
    fn new(inner: Incoming, timeout: Duration, activity: Arc<Activity>) -> Self {
        Self {
            inner,
            timeout,
            timer: None,
            waiting: false,
            activity,
        }
    }
}

impl hyper::body::Body for StallGuard {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
            }
            Poll::Pending => {
                let timer = match (&mut this.timer, this.waiting) {
                    (Some(timer), true) => timer,
                    (timer, _) => {
                        let deadline = Instant::now() + this.timeout;
                        this.waiting = true;
                        match timer {
                            Some(timer) => {
                                timer.as_mut().reset(deadline);
                                timer
                            }
                            None => timer.insert(Box::pin(tokio::time::sleep_until(deadline))),
                        }
                    }
                };
                if timer.as_mut().poll(cx).is_ready() {
                    this.activity.body_stalled.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(Box::new(BodyStalled))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ConnectionLimits = ConnectionLimits {
        header_timeout: Duration::from_secs(15),
        body_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(75),
        max_connections: 10,
    };

    #[tokio::test]
    async fn each_phase_has_its_own_deadline() {
        let activity = Activity::new();
        let started = activity.started;
        assert_eq!(
            activity.deadline(&LIMITS, false),
            Some((started + LIMITS.header_timeout, Ending::HeaderTimeout)),
            "a new connection has the header timeout for its first request"
        );
        activity.received();
        assert_eq!(
            activity.deadline(&LIMITS, false),
            Some((started + LIMITS.header_timeout, Ending::HeaderTimeout)),
            "header lines arriving do not extend it"
        );
        activity.enter(Phase::Handling);
        assert_eq!(activity.deadline(&LIMITS, false), None);
        assert_eq!(
            activity.deadline(&LIMITS, true),
            None,
            "draining waits for handlers"
        );
        activity.enter(Phase::Idle);
        let (idle_until, ending) = activity.deadline(&LIMITS, false).unwrap();
        assert_eq!(ending, Ending::IdleTimeout);
        assert!(idle_until >= started + LIMITS.idle_timeout);
        activity.received();
        let (header_until, ending) = activity.deadline(&LIMITS, false).unwrap();
        assert_eq!(ending, Ending::HeaderTimeout, "a new request's first byte");
        assert!(header_until >= started + LIMITS.header_timeout);
        assert_eq!(
            activity.deadline(&LIMITS, true),
            Some((started, Ending::Normal)),
            "at shutdown a request still arriving is not waited for"
        );
    }
}
