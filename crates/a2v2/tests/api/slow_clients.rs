//! Slow and idle clients cannot hold the server: the header, body and idle timeouts close
//! them, and the connection limit answers at once when it is reached — while everyone else
//! keeps being served. Raw TCP streams play the slow clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use reqwest::Method;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::harness::{OWNER_EMAIL, OWNER_PASSWORD, Server};

const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
const BODY_TIMEOUT: Duration = Duration::from_secs(2);
/// Longer than the header timeout, so an idle close cannot be mistaken for a header one.
const IDLE_TIMEOUT: Duration = Duration::from_secs(4);
/// Room for a busy test machine between a deadline and the close being seen.
const SLACK: Duration = Duration::from_secs(4);
const SLOW_HEADER_CLIENTS: usize = 400;

/// Longest any step of these tests may wait, so that a server that never closes a
/// connection fails the test with a message instead of hanging it.
const GIVE_UP: Duration = Duration::from_secs(20);

async fn connect(server: &Server) -> TcpStream {
    tokio::time::timeout(
        GIVE_UP,
        TcpStream::connect(server.url.trim_start_matches("http://")),
    )
    .await
    .expect("connected in time")
    .expect("connect")
}

/// Reads until the server closes the connection (or resets it); returns what arrived.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let until = Instant::now() + GIVE_UP;
    loop {
        match tokio::time::timeout_at(until.into(), stream.read(&mut buffer)).await {
            Err(_) => panic!(
                "the server kept the connection open; it sent {:?}",
                String::from_utf8_lossy(&received)
            ),
            Ok(Ok(0) | Err(_)) => return String::from_utf8_lossy(&received).into_owned(),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

/// Reads one response with a `content-length` body and leaves the connection open.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(GIVE_UP, stream.read(&mut buffer))
            .await
            .expect("a response in time")
            .expect("read a response");
        assert!(n > 0, "closed before a whole response arrived");
        received.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length: usize = text[..head_end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("content-length");
            if received.len() >= head_end + 4 + length {
                return text;
            }
        }
    }
}

fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"))
}

fn json_body_of(response: &str) -> Value {
    let (_, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    serde_json::from_str(body).unwrap_or_else(|_| panic!("JSON body in {response:?}"))
}

fn header_of<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let (head, _) = response.split_once("\r\n\r\n")?;
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then_some(value.trim())
    })
}

/// A client that never finishes its headers: silent, or trickling a header line every half
/// second so that progress alone would keep it open. Returns how long the server kept it.
async fn slow_header_client(server: &Server, trickle: bool) -> Duration {
    let mut stream = connect(server).await;
    let opened = Instant::now();
    if trickle {
        let _ = stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: a2v2\r\n")
            .await;
    }
    let mut buffer = [0u8; 64];
    loop {
        assert!(
            opened.elapsed() < GIVE_UP,
            "a client without headers (trickling: {trickle}) was never closed"
        );
        tokio::select! {
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return opened.elapsed(),
                Ok(_) => panic!("a request without its headers was answered"),
            },
            () = tokio::time::sleep(Duration::from_millis(500)) => {
                if trickle && stream.write_all(b"X-Padding: still here\r\n").await.is_err() {
                    return opened.elapsed();
                }
            }
        }
    }
}

/// A normal client: authenticated reads on a keep-alive connection.
struct Prober {
    http: reqwest::Client,
    url: String,
    key: String,
}

impl Prober {
    async fn read(&self) -> Duration {
        let started = Instant::now();
        let response = self
            .http
            .get(format!("{}/v1/contacts?limit=5", self.url))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("a normal request is answered");
        assert_eq!(response.status(), 200);
        response.bytes().await.expect("its body");
        started.elapsed()
    }

    /// Latencies of reads sent back to back until `stop` is set.
    async fn until(self, stop: Arc<AtomicBool>) -> Vec<Duration> {
        let mut latencies = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            latencies.push(self.read().await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        latencies
    }
}

/// A contact body of exactly 100 bytes (JSON allows the trailing spaces).
fn contact_body() -> Vec<u8> {
    let mut body =
        br#"{"first_name": "Stalled", "last_name": "Upload", "email": "stalled@example.com"}"#
            .to_vec();
    body.resize(100, b' ');
    body
}

async fn contact_created_events(server: &Server) -> usize {
    let owner = server.sign_in(OWNER_EMAIL, OWNER_PASSWORD).await;
    let reply = owner
        .get("/api/audit-logs?action=contact.created&limit=200")
        .await;
    reply.expect(200, None);
    reply.body["data"].as_array().expect("data").len()
}

async fn contact_count(server: &Server, key: &str) -> usize {
    let reply = server
        .v1(Method::GET, "/v1/contacts?limit=200", key, None)
        .await;
    reply.expect(200, None);
    reply.body["data"].as_array().expect("data").len()
}

fn seconds(duration: Duration) -> String {
    duration.as_secs().to_string()
}

// Several threads, so the normal client is not queued behind hundreds of slow ones in the
// test process itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_closed_in_time_while_others_are_served() {
    let server = Server::start_with(
        &[
            "--header-timeout-seconds",
            &seconds(HEADER_TIMEOUT),
            "--body-timeout-seconds",
            &seconds(BODY_TIMEOUT),
            "--idle-timeout-seconds",
            &seconds(IDLE_TIMEOUT),
        ],
        &[],
    )
    .await;
    let owner = server.setup().await;
    let agent = owner.create_agent("Importer").await;
    let (_, key) = owner
        .create_key(&agent, &["contacts:create", "contacts:read"])
        .await;
    drop(owner);

    let prober = Prober {
        http: reqwest::Client::builder().timeout(GIVE_UP).build().unwrap(),
        url: server.url.clone(),
        key: key.clone(),
    };
    prober.read().await;
    let stop = Arc::new(AtomicBool::new(false));
    let prober = tokio::spawn(prober.until(Arc::clone(&stop)));
    let server = Arc::new(server);

    let slow_headers: Vec<_> = (0..SLOW_HEADER_CLIENTS)
        .map(|n| {
            let server = Arc::clone(&server);
            tokio::spawn(async move { slow_header_client(&server, n % 2 == 0).await })
        })
        .collect();

    let stalled_post = {
        let server = Arc::clone(&server);
        let key = key.clone();
        tokio::spawn(async move {
            let mut stream = connect(&server).await;
            let head = format!(
                "POST /v1/contacts HTTP/1.1\r\nHost: a2v2\r\nAuthorization: Bearer {key}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            // All but the last ten bytes: the body is complete enough to tempt a partial write.
            stream.write_all(&contact_body()[..90]).await.unwrap();
            let sent = Instant::now();
            let response = read_to_close(&mut stream).await;
            (sent.elapsed(), response)
        })
    };

    let idle_keep_alive = {
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            let mut stream = connect(&server).await;
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: a2v2\r\n\r\n")
                .await
                .unwrap();
            let response = read_response(&mut stream).await;
            assert_eq!(status_of(&response), 200);
            let answered = Instant::now();
            let rest = read_to_close(&mut stream).await;
            assert!(rest.is_empty(), "nothing more is sent: {rest:?}");
            answered.elapsed()
        })
    };

    for client in slow_headers {
        let kept = client.await.unwrap();
        assert!(
            kept >= HEADER_TIMEOUT - Duration::from_millis(500) && kept <= HEADER_TIMEOUT + SLACK,
            "a client without headers was kept {kept:?}; the header timeout is {HEADER_TIMEOUT:?}"
        );
    }

    let (waited, response) = stalled_post.await.unwrap();
    assert_eq!(status_of(&response), 408, "{response}");
    assert_eq!(json_body_of(&response)["error"]["code"], "request_timeout");
    assert!(json_body_of(&response)["error"]["request_id"].is_string());
    assert!(
        waited >= BODY_TIMEOUT - Duration::from_millis(500) && waited <= BODY_TIMEOUT + SLACK,
        "the stalled body was answered after {waited:?}; the body timeout is {BODY_TIMEOUT:?}"
    );

    let idle = idle_keep_alive.await.unwrap();
    assert!(
        idle >= IDLE_TIMEOUT - Duration::from_millis(500) && idle <= IDLE_TIMEOUT + SLACK,
        "an idle keep-alive connection was kept {idle:?}; the idle timeout is {IDLE_TIMEOUT:?}"
    );

    stop.store(true, Ordering::Relaxed);
    let mut latencies = prober.await.unwrap();
    latencies.sort();
    assert!(
        latencies.len() >= 20,
        "only {} normal requests were answered",
        latencies.len()
    );
    // Generous bounds: the test machine is shared, and a hiccup of its own is not the server's.
    let p95 = latencies[latencies.len() * 95 / 100];
    let slowest = latencies[latencies.len() - 1];
    assert!(
        p95 < Duration::from_millis(500) && slowest < Duration::from_secs(2),
        "normal requests slowed down: p95 {p95:?}, slowest {slowest:?} over {} requests",
        latencies.len()
    );

    // The stalled contact left nothing behind; the same body sent whole is created once.
    assert_eq!(contact_count(&server, &key).await, 0);
    assert_eq!(contact_created_events(&server).await, 0);
    let whole = reqwest::Client::new()
        .post(format!("{}/v1/contacts", server.url))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(contact_body())
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status(), 201);
    assert_eq!(contact_count(&server, &key).await, 1);
    assert_eq!(contact_created_events(&server).await, 1);

    let closed = |reason: &str| format!("a2v2_connections_closed_total{{reason=\"{reason}\"}}");
    assert!(server.metric(&closed("header_timeout")).await >= SLOW_HEADER_CLIENTS as u64);
    assert_eq!(server.metric(&closed("body_timeout")).await, 1);
    assert!(server.metric(&closed("idle_timeout")).await >= 1);
    assert!(
        server.metric("a2v2_connections_open").await < 10,
        "the slow clients' connections are no longer counted as open"
    );
}

#[tokio::test]
async fn at_the_connection_limit_new_connections_are_answered_503_at_once() {
    const LIMIT: usize = 4;
    let mut server = Server::start_with(&["--max-connections", &LIMIT.to_string()], &[]).await;

    // Silent connections hold every slot; the header timeout (15 s) is far away.
    let mut held = Vec::new();
    for _ in 0..LIMIT {
        held.push(connect(&server).await);
    }

    let refused: Vec<_> = (0..10)
        .map(|_| {
            let url = server.url.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let mut stream = TcpStream::connect(url.trim_start_matches("http://"))
                    .await
                    .unwrap();
                stream
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: a2v2\r\n\r\n")
                    .await
                    .unwrap();
                let response = read_to_close(&mut stream).await;
                (started.elapsed(), response)
            })
        })
        .collect();
    for refusal in refused {
        let (took, response) = refusal.await.unwrap();
        assert!(took < Duration::from_secs(2), "a refusal took {took:?}");
        assert_eq!(status_of(&response), 503, "{response}");
        assert_eq!(header_of(&response, "retry-after"), Some("1"));
        let body = json_body_of(&response);
        assert_eq!(body["error"]["code"], "unavailable");
        assert!(body["error"]["message"].is_string());
        assert_eq!(
            header_of(&response, "x-request-id"),
            body["error"]["request_id"].as_str()
        );
    }

    // One slot frees up: the next client is served as soon as the server has seen it close.
    drop(held.pop());
    let freed = Instant::now();
    loop {
        let mut stream = connect(&server).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: a2v2\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let response = read_to_close(&mut stream).await;
        if status_of(&response) == 200 {
            break;
        }
        assert_eq!(status_of(&response), 503, "{response}");
        assert!(
            freed.elapsed() < Duration::from_secs(2),
            "a freed slot was not reused"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A request whose headers are half sent does not hold up shutdown (nor does its slot).
    held[0]
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: a2v2\r\n")
        .await
        .unwrap();
    drop(held.split_off(1));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        server
            .metric("a2v2_connections_closed_total{reason=\"limit\"}")
            .await
            >= 10
    );
    let stopping = Instant::now();
    assert!(server.terminate().success());
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "shutdown waited {:?} for a request that never arrived",
        stopping.elapsed()
    );
}
