//! A TCP proxy that breaks the network on command, to put between a server node and its
//! database (the database URL points at the proxy) and watch the node fail closed.
//!
//! - [`NetFault::blackhole`]: nothing moves any more, in either direction, on existing and new
//!   connections, and nothing is closed: peers see no error, no EOF, their reads just hang —
//!   a silent loss like a dropped NAT/conntrack entry or a partition. New connections are
//!   accepted (the kernel completes the handshake of a listening socket) but never forwarded.
//!   One difference from a real partition: bytes a peer sends are acknowledged by the proxy's
//!   kernel, so TCP keepalive does not notice the outage; only timeouts of the peers do.
//! - [`NetFault::resume`]: the outage was short: everything held flows again, connections carry on.
//! - [`NetFault::restore`]: the outage was long: connections that lived through it are reset
//!   (RST), as when the NAT/conntrack state is gone and the next packet meets a stranger; new
//!   connections work. After [`NetFault::cut`] it listens again on the same address.
//! - [`NetFault::cut`]: every connection is reset and new ones are refused, as if the target
//!   host went away.
//!
//! The proxy runs on a thread and runtime of its own, so that it keeps forwarding while a
//! test blocks its own thread (the harness waits for a starting server synchronously, and
//! that server may be connecting to its database through the proxy).

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpListener, TcpStream,
        tcp::{ReadHalf, WriteHalf},
    },
    runtime::Handle,
    sync::{oneshot, watch},
    task::JoinHandle,
};

pub struct NetFault {
    addr: SocketAddr,
    target: SocketAddr,
    state: watch::Sender<State>,
    /// The accepting task; `None` while cut (the listener is closed then).
    acceptor: Mutex<Option<JoinHandle<()>>>,
    runtime: Handle,
    /// Connections being carried, so that dropping the proxy can wait for their resets.
    live: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Forward,
    Blackhole,
    Cut,
}

#[derive(Clone, Copy, Debug)]
struct State {
    mode: Mode,
    /// Bumped when connections must not outlive the change (restore after an outage, cut):
    /// a connection accepted in an earlier epoch is reset.
    epoch: u64,
}

impl NetFault {
    /// Listens on 127.0.0.1 (random port) and forwards to `target`.
    pub fn start(target: SocketAddr) -> Self {
        let (state, _) = watch::channel(State {
            mode: Mode::Forward,
            epoch: 0,
        });
        let live = Arc::new(AtomicUsize::new(0));
        let (runtime_tx, runtime_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let counter = Arc::clone(&live);
        let thread = std::thread::Builder::new()
            .name("netfault".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime_tx.send(runtime.handle().clone()).unwrap();
                runtime.block_on(async move {
                    let _ = stopped.await;
                    // Resets were ordered before the stop: let them go out before the
                    // runtime drops the sockets (which would close them with a FIN).
                    let deadline = Instant::now() + Duration::from_secs(2);
                    while counter.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                });
            })
            .unwrap();
        let listener = bind("127.0.0.1:0".parse().unwrap());
        let fault = Self {
            addr: listener.local_addr().unwrap(),
            target,
            state,
            acceptor: Mutex::new(None),
            runtime: runtime_rx.recv().unwrap(),
            live,
            stop: Some(stop),
            thread: Some(thread),
        };
        fault.listen(listener);
        fault
    }

    /// Where clients connect instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn blackhole(&self) {
        self.state.send_modify(|state| {
            if state.mode == Mode::Forward {
                state.mode = Mode::Blackhole;
            }
        });
    }

    /// Ends a blackhole as a short outage: held connections carry on where they stopped.
    pub fn resume(&self) {
        self.state.send_modify(|state| {
            if state.mode == Mode::Blackhole {
                state.mode = Mode::Forward;
            }
        });
    }

    /// Ends a blackhole or a cut as a long outage: connections that lived through it are
    /// reset; new ones are forwarded.
    pub fn restore(&self) {
        let reopen = self.acceptor.lock().unwrap().is_none();
        if reopen {
            self.listen(bind(self.addr));
        }
        self.state.send_modify(|state| {
            if state.mode != Mode::Forward {
                state.mode = Mode::Forward;
                state.epoch += 1;
            }
        });
    }

    /// Resets every connection and closes the listener: new connections are refused once
    /// this returns.
    pub async fn cut(&self) {
        self.state.send_modify(|state| {
            state.mode = Mode::Cut;
            state.epoch += 1;
        });
        let acceptor = self.acceptor.lock().unwrap().take();
        if let Some(acceptor) = acceptor {
            acceptor.abort();
            // Awaiting the aborted task waits until its listener has been dropped.
            let _ = acceptor.await;
        }
    }

    fn listen(&self, listener: std::net::TcpListener) {
        let listener = {
            let _runtime = self.runtime.enter();
            TcpListener::from_std(listener).unwrap()
        };
        let task = self.runtime.spawn(accept(
            listener,
            self.target,
            self.state.subscribe(),
            Arc::clone(&self.live),
        ));
        *self.acceptor.lock().unwrap() = Some(task);
    }
}

impl Drop for NetFault {
    /// Resets every connection and closes the listener, like [`NetFault::cut`].
    fn drop(&mut self) {
        self.state.send_modify(|state| {
            state.mode = Mode::Cut;
            state.epoch += 1;
        });
        if let Some(acceptor) = self.acceptor.lock().unwrap().take() {
            acceptor.abort();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn bind(addr: SocketAddr) -> std::net::TcpListener {
    let listener = std::net::TcpListener::bind(addr)
        .unwrap_or_else(|err| panic!("netfault: cannot listen on {addr}: {err}"));
    listener.set_nonblocking(true).unwrap();
    listener
}

async fn accept(
    listener: TcpListener,
    target: SocketAddr,
    state: watch::Receiver<State>,
    live: Arc<AtomicUsize>,
) {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                let epoch = state.borrow().epoch;
                let counted = Live::new(&live);
                let state = state.clone();
                tokio::spawn(async move {
                    carry(client, target, state, epoch).await;
                    drop(counted);
                });
            }
            // Out of file descriptors and the like: let it pass rather than spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Counts a connection as carried until dropped.
struct Live(Arc<AtomicUsize>);

impl Live {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(count))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// The sender closed its side; the close was passed on.
    Eof,
    /// The connection must die with a reset (ordered, or an error on either side).
    Reset,
}

async fn carry(
    mut client: TcpStream,
    target: SocketAddr,
    mut state: watch::Receiver<State>,
    epoch: u64,
) {
    // A connection accepted during a blackhole does not reach the target until forwarding
    // resumes.
    let upstream = match open(&mut state, epoch).await {
        true => TcpStream::connect(target).await.ok(),
        false => None,
    };
    let Some(mut upstream) = upstream else {
        reset(client);
        return;
    };
    let end = {
        let (client_read, client_write) = client.split();
        let (upstream_read, upstream_write) = upstream.split();
        let mut outbound = std::pin::pin!(pump(client_read, upstream_write, state.clone(), epoch));
        let mut inbound = std::pin::pin!(pump(upstream_read, client_write, state, epoch));
        let (first, outbound_first) = tokio::select! {
            end = &mut outbound => (end, true),
            end = &mut inbound => (end, false),
        };
        // One direction closed cleanly: the other may still have data to carry (half-close).
        match (first, outbound_first) {
            (End::Eof, true) => inbound.await,
            (End::Eof, false) => outbound.await,
            (End::Reset, _) => End::Reset,
        }
    };
    if end == End::Reset {
        reset(client);
        reset(upstream);
    }
}

/// Copies one direction while forwarding is on; holds while blackholed.
async fn pump(
    mut from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    mut state: watch::Receiver<State>,
    epoch: u64,
) -> End {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        if !open(&mut state, epoch).await {
            return End::Reset;
        }
        // Nothing is read during a blackhole: a change of mode interrupts the wait.
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            changed = state.changed() => match changed {
                Ok(()) => continue,
                Err(_) => return End::Reset,
            },
        };
        let n = match read {
            Ok(0) => {
                let _ = to.shutdown().await;
                return End::Eof;
            }
            Ok(n) => n,
            Err(_) => return End::Reset,
        };
        // Read just as a blackhole began: hold the bytes like a link holds its queue.
        if !open(&mut state, epoch).await {
            return End::Reset;
        }
        tokio::select! {
            written = to.write_all(&buffer[..n]) => if written.is_err() {
                return End::Reset;
            },
            () = reset_ordered(&mut state, epoch) => return End::Reset,
        }
    }
}

/// Waits until bytes may move: true when forwarding, false when this connection must be reset.
async fn open(state: &mut watch::Receiver<State>, epoch: u64) -> bool {
    loop {
        let now = *state.borrow_and_update();
        if now.epoch != epoch || now.mode == Mode::Cut {
            return false;
        }
        if now.mode == Mode::Forward {
            return true;
        }
        if state.changed().await.is_err() {
            return false;
        }
    }
}

async fn reset_ordered(state: &mut watch::Receiver<State>, epoch: u64) {
    loop {
        let now = *state.borrow_and_update();
        if now.epoch != epoch || now.mode == Mode::Cut || state.changed().await.is_err() {
            return;
        }
    }
}

/// Closes with RST rather than FIN, like a host or middlebox that forgot the connection.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

#[cfg(test)]
mod tests {
    use std::{
        io::ErrorKind,
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
    };

    use super::*;

    const QUIET: Duration = Duration::from_millis(300);
    const PROMPT: Duration = Duration::from_secs(5);

    /// Echoes every byte back and closes when the client does; counts connections.
    async fn echo_server() -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let (mut read, mut write) = stream.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                    let _ = write.shutdown().await;
                });
            }
        });
        (addr, connections)
    }

    async fn round_trip(stream: &mut TcpStream, message: &[u8]) {
        stream.write_all(message).await.unwrap();
        let mut echoed = vec![0u8; message.len()];
        tokio::time::timeout(PROMPT, stream.read_exact(&mut echoed))
            .await
            .expect("echo in time")
            .unwrap();
        assert_eq!(echoed, message);
    }

    /// The read neither returns data nor EOF nor an error for a while.
    async fn assert_silent(stream: &mut TcpStream) {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(QUIET, stream.read(&mut byte)).await;
        assert!(read.is_err(), "expected silence, got {read:?}");
    }

    async fn assert_reset(stream: &mut TcpStream) {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(PROMPT, stream.read(&mut byte))
            .await
            .expect("the reset arrives promptly");
        assert_eq!(
            read.map_err(|err| err.kind()),
            Err(ErrorKind::ConnectionReset)
        );
    }

    #[tokio::test]
    async fn forwards_both_ways_and_passes_on_a_close() {
        let (echo, _) = echo_server().await;
        let fault = NetFault::start(echo);
        let mut first = TcpStream::connect(fault.addr()).await.unwrap();
        let mut second = TcpStream::connect(fault.addr()).await.unwrap();
        round_trip(&mut first, b"hello").await;
        round_trip(&mut second, &[7u8; 100_000]).await;
        first.shutdown().await.unwrap();
        let mut rest = Vec::new();
        tokio::time::timeout(PROMPT, first.read_to_end(&mut rest))
            .await
            .expect("EOF in time")
            .unwrap();
        assert!(rest.is_empty());
        round_trip(&mut second, b"still here").await;
    }

    #[tokio::test]
    async fn a_blackhole_silences_existing_and_new_connections_until_restored() {
        let (echo, connections) = echo_server().await;
        let fault = NetFault::start(echo);
        let mut old = TcpStream::connect(fault.addr()).await.unwrap();
        round_trip(&mut old, b"before").await;

        fault.blackhole();
        old.write_all(b"lost?").await.unwrap();
        assert_silent(&mut old).await;
        let mut during = TcpStream::connect(fault.addr()).await.unwrap();
        during.write_all(b"anyone?").await.unwrap();
        assert_silent(&mut during).await;
        assert_eq!(
            connections.load(Ordering::SeqCst),
            1,
            "nothing reached the target"
        );

        fault.restore();
        assert_reset(&mut old).await;
        assert_reset(&mut during).await;
        let mut after = TcpStream::connect(fault.addr()).await.unwrap();
        round_trip(&mut after, b"after").await;
    }

    #[tokio::test]
    async fn a_short_outage_resumes_held_connections() {
        let (echo, _) = echo_server().await;
        let fault = NetFault::start(echo);
        let mut old = TcpStream::connect(fault.addr()).await.unwrap();
        round_trip(&mut old, b"before").await;

        fault.blackhole();
        old.write_all(b"held").await.unwrap();
        assert_silent(&mut old).await;
        let mut during = TcpStream::connect(fault.addr()).await.unwrap();

        fault.resume();
        let mut held = [0u8; 4];
        tokio::time::timeout(PROMPT, old.read_exact(&mut held))
            .await
            .expect("held bytes delivered")
            .unwrap();
        assert_eq!(&held, b"held");
        round_trip(&mut during, b"late but fine").await;
    }

    #[tokio::test]
    async fn a_cut_resets_connections_and_refuses_new_ones_until_restored() {
        let (echo, _) = echo_server().await;
        let fault = NetFault::start(echo);
        let mut old = TcpStream::connect(fault.addr()).await.unwrap();
        round_trip(&mut old, b"before").await;

        fault.cut().await;
        assert_reset(&mut old).await;
        let refused = TcpStream::connect(fault.addr()).await.map(|_| ());
        assert_eq!(
            refused.map_err(|err| err.kind()),
            Err(ErrorKind::ConnectionRefused)
        );

        fault.restore();
        let mut after = TcpStream::connect(fault.addr()).await.unwrap();
        round_trip(&mut after, b"back on the same address").await;
    }

    /// No runtime on the caller's side and blocking I/O on its thread: the proxy still works.
    #[test]
    fn forwards_while_the_caller_blocks() {
        use std::io::{Read, Write};
        let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = echo.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = echo.accept().unwrap();
            let mut buffer = [0u8; 64];
            let n = stream.read(&mut buffer).unwrap();
            stream.write_all(&buffer[..n]).unwrap();
        });
        let fault = NetFault::start(target);
        let mut client = std::net::TcpStream::connect(fault.addr()).unwrap();
        client.set_read_timeout(Some(PROMPT)).unwrap();
        client.write_all(b"blocking").unwrap();
        let mut echoed = [0u8; 8];
        client.read_exact(&mut echoed).unwrap();
        assert_eq!(&echoed, b"blocking");
    }

    #[tokio::test]
    async fn dropping_the_proxy_resets_its_connections() {
        let (echo, _) = echo_server().await;
        let fault = NetFault::start(echo);
        let mut old = TcpStream::connect(fault.addr()).await.unwrap();
        round_trip(&mut old, b"before").await;
        drop(fault);
        assert_reset(&mut old).await;
    }
}
