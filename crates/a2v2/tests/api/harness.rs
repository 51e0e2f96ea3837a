//! Starts the real `a2v2` binary on a random port with a fresh data directory and talks HTTP
//! to it like any client. Each test gets its own server (nextest runs tests as processes).

use std::{
    io::{BufRead, BufReader, Read},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};

pub const OWNER_EMAIL: &str = "owner@example.com";
pub const OWNER_PASSWORD: &str = "correct horse battery staple";
/// The User-Agent every dashboard client sends, so tests can find it in the audit log.
pub const USER_AGENT: &str = "a2v2-test-client/1.0";

pub struct Server {
    pub url: String,
    /// The database the server uses: a PostgreSQL test database or the SQLite file.
    pub database_url: String,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    logs: Arc<Mutex<String>>,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
            text,
        }
    }

    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    /// Asserts the status and, for errors, the contract's error shape and code.
    #[track_caller]
    pub fn expect(&self, status: u16, code: Option<&str>) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        if let Some(code) = code {
            assert_eq!(self.code(), code, "body: {}", self.text);
            assert!(
                self.body["error"]["message"].is_string(),
                "body: {}",
                self.text
            );
            let request_id = self.body["error"]["request_id"]
                .as_str()
                .unwrap_or_default();
            assert!(
                !request_id.is_empty(),
                "error without request_id: {}",
                self.text
            );
            assert_eq!(
                self.headers
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok()),
                Some(request_id)
            );
        }
        self
    }
}

impl Server {
    pub async fn start() -> Self {
        Self::start_with(&[], &[]).await
    }

    pub async fn start_with(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = match fresh_postgres_database().await {
            Some(url) => url,
            None => format!("sqlite://{}", dir.path().join("a2v2.db").display()),
        };
        args.push("--database".into());
        args.push(database_url.clone());
        let mut server = Self {
            url: String::new(),
            database_url,
            dir,
            child: None,
            args,
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            logs: Arc::new(Mutex::new(String::new())),
        };
        server.launch(None);
        server
    }

    /// A server on the database at `database_url`, with extra arguments.
    pub fn start_on(database_url: &str, args: &[&str]) -> Self {
        let mut all_args = vec!["--database".to_owned(), database_url.to_owned()];
        all_args.extend(args.iter().map(|arg| arg.to_string()));
        let mut server = Self {
            url: String::new(),
            database_url: database_url.to_owned(),
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
            args: all_args,
            envs: Vec::new(),
            logs: Arc::new(Mutex::new(String::new())),
        };
        server.launch(None);
        server
    }

    /// A server on the embedded database of an existing data directory.
    pub fn start_in(dir: tempfile::TempDir) -> Self {
        let database_url = format!("sqlite://{}", dir.path().join("a2v2.db").display());
        let mut server = Self {
            url: String::new(),
            args: vec!["--database".into(), database_url.clone()],
            database_url,
            dir,
            child: None,
            envs: Vec::new(),
            logs: Arc::new(Mutex::new(String::new())),
        };
        server.launch(None);
        server
    }

    /// Another node of the same deployment: same database and master key, own data dir.
    pub fn second_node(&self) -> Self {
        self.node_via(&self.database_url, &[])
    }

    /// Another node of the same deployment reaching the database at `database_url` (for
    /// example through a fault-injection proxy), with extra arguments.
    pub fn node_via(&self, database_url: &str, args: &[&str]) -> Self {
        let master = self.dir.path().join("master.key");
        let mut all_args = vec![
            "--database".to_owned(),
            database_url.to_owned(),
            "--master-key-file".to_owned(),
            master.display().to_string(),
        ];
        all_args.extend(args.iter().map(|arg| arg.to_string()));
        let mut node = Self {
            url: String::new(),
            database_url: database_url.to_owned(),
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
            args: all_args,
            envs: self.envs.clone(),
            logs: Arc::new(Mutex::new(String::new())),
        };
        node.launch(None);
        node
    }

    /// Sets `flag` to `value` for the next (re)start, replacing an earlier value.
    pub fn set_flag(&mut self, flag: &str, value: &str) {
        if let Some(at) = self.args.iter().position(|arg| arg == flag) {
            self.args.drain(at..=at + 1);
        }
        self.args.push(flag.to_owned());
        self.args.push(value.to_owned());
    }

    pub fn on_postgres(&self) -> bool {
        self.database_url.starts_with("postgres")
    }

    /// Starts the process; `listen` reuses a known address across restarts.
    fn launch(&mut self, listen: Option<&str>) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_a2v2"));
        command
            .arg("serve")
            .arg("--listen")
            .arg(listen.unwrap_or("127.0.0.1:0"))
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(&self.args)
            .env_remove("RUST_LOG")
            .env("A2V2_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in &self.envs {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start a2v2");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let logs = Arc::clone(&self.logs);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                logs.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(at) = line.find("listening on ") {
                        break line[at + "listening on ".len()..].trim().to_owned();
                    }
                }
                _ => panic!("a2v2 exited before listening; logs:\n{}", self.logs()),
            }
        };
        std::thread::spawn(move || for _ in lines {});
        self.url = url;
        self.child = Some(child);
    }

    /// Everything the server wrote to its log so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// Stops the server with SIGKILL: no graceful shutdown.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server with SIGTERM and waits for it to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("server is running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        for _ in 0..200 {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        panic!("a2v2 did not stop within 10 s of SIGTERM");
    }

    /// Starts the server again on the same data directory and address.
    pub fn restart(&mut self) {
        self.kill9();
        let address = self.url.trim_start_matches("http://").to_owned();
        let mut tries = 0;
        loop {
            // The port may linger briefly; retry on a fresh one if needed.
            let listen = if tries < 20 {
                Some(address.as_str())
            } else {
                None
            };
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.launch(listen);
            }));
            if result.is_ok() {
                return;
            }
            tries += 1;
            assert!(tries < 40, "could not restart a2v2");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn client(&self) -> Client {
        Client {
            url: self.url.clone(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .user_agent(USER_AGENT)
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
            csrf: None,
        }
    }

    /// Creates the workspace and returns the owner's signed-in client.
    pub async fn setup(&self) -> Client {
        let mut client = self.client();
        let reply = client
            .send(
                Method::POST,
                "/api/setup",
                Some(json!({
                    "email": OWNER_EMAIL,
                    "password": OWNER_PASSWORD,
                    "workspace_name": "Acme",
                })),
            )
            .await;
        reply.expect(201, None);
        client.csrf = reply.body["csrf_token"].as_str().map(str::to_owned);
        client
    }

    /// Signs in as `email` with a fresh client.
    pub async fn sign_in(&self, email: &str, password: &str) -> Client {
        let mut client = self.client();
        let reply = client
            .send(
                Method::POST,
                "/api/session",
                Some(json!({ "email": email, "password": password })),
            )
            .await;
        reply.expect(200, None);
        client.csrf = reply.body["csrf_token"].as_str().map(str::to_owned);
        client
    }

    /// A `/v1` request with `key` as Bearer token.
    pub async fn v1(&self, method: Method, path: &str, key: &str, body: Option<Value>) -> Reply {
        let http = reqwest::Client::new();
        let request = http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(key);
        send_with_body(request, body).await
    }

    /// The value of one counter on `/metrics`.
    pub async fn metric(&self, name: &str) -> u64 {
        let text = reqwest::get(format!("{}/metrics", self.url))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body");
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("metric {name} missing in:\n{text}"))
    }
}

/// With `TEST_POSTGRES_URL` set (an admin connection URL), each server gets a new database
/// on that PostgreSQL; without it, the default embedded SQLite in the temp data directory.
async fn fresh_postgres_database() -> Option<String> {
    use sqlx::{Connection, Executor};
    let admin_url = std::env::var("TEST_POSTGRES_URL").ok()?;
    let name = format!("a2v2_test_{}", uuid::Uuid::now_v7().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("connect to TEST_POSTGRES_URL");
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create a test database");
    let base = admin_url
        .rsplit_once('/')
        .map(|(base, _)| base)
        .expect("TEST_POSTGRES_URL names a database");
    Some(format!("{base}/{name}"))
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A dashboard client with its cookie jar and CSRF token.
pub struct Client {
    pub url: String,
    pub http: reqwest::Client,
    pub csrf: Option<String>,
}

impl Client {
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(csrf) = &self.csrf {
            request = request.header("x-csrf-token", csrf);
        }
        send_with_body(request, body).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    pub async fn create_agent(&self, name: &str) -> String {
        let reply = self.post("/api/agents", json!({ "name": name })).await;
        reply.expect(201, None);
        reply.body["id"].as_str().expect("agent id").to_owned()
    }

    /// Creates a key with `permissions` like `["contacts:read"]`; returns (id, secret).
    pub async fn create_key(&self, agent_id: &str, permissions: &[&str]) -> (String, String) {
        self.create_key_with(
            agent_id,
            json!({ "name": "test key", "permissions": permission_body(permissions) }),
        )
        .await
    }

    pub async fn create_key_with(&self, agent_id: &str, body: Value) -> (String, String) {
        let reply = self
            .post(&format!("/api/agents/{agent_id}/api-keys"), body)
            .await;
        reply.expect(201, None);
        (
            reply.body["id"].as_str().expect("key id").to_owned(),
            reply.body["key"].as_str().expect("secret").to_owned(),
        )
    }
}

/// Sends `request` with `body` as JSON. The server answers an oversized body with 413 before
/// reading it and closes the connection, which the client may notice while still writing;
/// such a request is sent again until the answer is read.
async fn send_with_body(request: reqwest::RequestBuilder, body: Option<Value>) -> Reply {
    let Some(body) = body else {
        return Reply::read(request.send().await.expect("request")).await;
    };
    let bytes = serde_json::to_vec(&body).expect("serialise body");
    let oversized = bytes.len() > 1024 * 1024;
    for _ in 0..20 {
        let attempt = request
            .try_clone()
            .expect("clonable request")
            .header("content-type", "application/json")
            .body(bytes.clone())
            .send()
            .await;
        match attempt {
            Ok(response) => return Reply::read(response).await,
            Err(err) if oversized && err.is_request() => continue,
            Err(err) => panic!("request: {err:?}"),
        }
    }
    panic!("never read the answer to an oversized request");
}

/// `["contacts:read", "documents:create"]` → `{"contacts": ["read"], "documents": ["create"]}`.
pub fn permission_body(permissions: &[&str]) -> Value {
    let mut body = json!({ "contacts": [], "documents": [] });
    for permission in permissions {
        let (area, action) = permission.split_once(':').expect("area:action");
        body[area]
            .as_array_mut()
            .expect("known area")
            .push(json!(action));
    }
    body
}

/// Now, in unix milliseconds, as the server stores times.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("milliseconds fit")
}
