//! `a2v2 keys create|list|delete` against the database of a running server: the server
//! applies the changes within about a second, also on SQLite where no notification exists.

use std::{
    process::Output,
    time::{Duration, Instant},
};

use reqwest::Method;
use serde_json::Value;

use crate::harness::Server;

/// How soon a running server must see a change made on the command line.
const PROMPTLY: Duration = Duration::from_millis(2500);

/// Runs `a2v2 keys …` on the server's database and data directory (thus its master key).
fn cli(server: &Server, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_a2v2"))
        .arg("keys")
        .args(args)
        .arg("--data-dir")
        .arg(server.dir.path())
        .arg("--database")
        .arg(&server.database_url)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run a2v2 keys")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}; stderr: {}",
        output.status,
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Asks `GET /v1/key` with `key` until it answers `status`; how long that took.
async fn until_status(server: &Server, key: &str, status: u16) -> Duration {
    let started = Instant::now();
    loop {
        let reply = server.v1(Method::GET, "/v1/key", key, None).await;
        if reply.status.as_u16() == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < PROMPTLY,
            "the server still answers {} after {:?}: {}",
            reply.status,
            started.elapsed(),
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn keys_made_on_the_command_line_work_at_once_and_deleting_revokes_them() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let agent = owner.create_agent("Sales bot").await;

    let created = cli(
        &server,
        &[
            "create",
            "--agent",
            &agent,
            "--name",
            "Nightly sync",
            "--description",
            "Exports contacts",
            "--ip",
            "127.0.0.1, 10.1.2.3/8",
            "--permission",
            "contacts:read",
            "--permission",
            "documents:create,documents:read",
        ],
    );
    let stdout = succeeded(&created);
    let secret = stdout.trim().to_owned();
    assert_eq!(stdout.lines().count(), 1, "only the secret: {stdout}");
    assert!(secret.starts_with("a2v2_"), "{stdout}");
    assert!(text(&created.stderr).contains("shown only once"));

    until_status(&server, &secret, 200).await;
    let reply = server.v1(Method::GET, "/v1/key", &secret, None).await;
    assert_eq!(reply.body["name"], "Nightly sync");
    assert_eq!(reply.body["agent_id"], agent.as_str());
    assert_eq!(reply.body["ip_addresses"][1], "10.0.0.0/8");
    assert_eq!(
        reply.body["permissions"],
        serde_json::json!({"contacts": ["read"], "documents": ["create", "read"]})
    );
    let key_id = reply.body["id"].as_str().unwrap().to_owned();

    // The listing shows the key, never the secret.
    let table = succeeded(&cli(&server, &["list", "--agent", &agent]));
    assert!(!table.contains(&secret), "{table}");
    let header = table.lines().next().unwrap();
    for column in ["ID", "NAME", "ACCESS", "PREVIEW", "CREATED", "LAST USED"] {
        assert!(header.contains(column), "{header}");
    }
    let row = table.lines().nth(1).unwrap();
    assert!(row.starts_with(&key_id), "{table}");
    assert!(row.contains("Nightly sync") && row.contains("contacts, documents"));
    let listed: Value = serde_json::from_str(&succeeded(&cli(
        &server,
        &["list", "--agent", &agent, "--json"],
    )))
    .unwrap();
    let data = listed["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["id"], key_id.as_str());
    assert!(data[0].get("key").is_none());
    assert!(!listed.to_string().contains(&secret));
    assert!(row.contains(data[0]["preview"].as_str().unwrap()));

    // The dashboard's API lists it too, without a member as creator.
    let api = owner.get(&format!("/api/agents/{agent}/api-keys")).await;
    assert_eq!(api.body["data"][0]["id"], key_id.as_str());
    assert_eq!(api.body["data"][0]["created_by"], Value::Null);

    // Deleting on the command line revokes the key on the running server.
    let deleted = cli(&server, &["delete", "--agent", &agent, &key_id]);
    assert!(succeeded(&deleted).contains("deleted"));
    until_status(&server, &secret, 401).await;
    let again = cli(&server, &["delete", "--agent", &agent, &key_id]);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("no API key"));

    // Both changes are in the audit log, done by the system from the command line.
    for action in ["api_key.created", "api_key.deleted"] {
        let events = owner.get(&format!("/api/audit-logs?action={action}")).await;
        let data = events.body["data"].as_array().unwrap();
        assert_eq!(data.len(), 1, "{}", events.text);
        assert_eq!(data[0]["actor"]["type"], "system");
        assert_eq!(data[0]["actor"]["label"], "cli");
        assert_eq!(data[0]["agent_id"], agent.as_str());
        assert_eq!(data[0]["target"]["id"], key_id.as_str());
        assert!(!events.text.contains(&secret));
    }
}

#[tokio::test]
async fn json_output_carries_the_whole_key_with_its_secret() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let agent = owner.create_agent("a").await;
    let created = cli(
        &server,
        &[
            "create",
            "--agent",
            &agent,
            "--name",
            "  padded  ",
            "--expires-at",
            "2099-01-01T00:00:00Z",
            "--json",
        ],
    );
    let body: Value = serde_json::from_str(&succeeded(&created)).unwrap();
    assert_eq!(body["name"], "padded");
    assert_eq!(body["agent_id"], agent.as_str());
    assert_eq!(body["access"], serde_json::json!([]));
    assert_eq!(body["ip_addresses"], serde_json::json!([]));
    assert_eq!(body["expires_at"], "2099-01-01T00:00:00Z");
    let secret = body["key"].as_str().unwrap();
    assert!(body["preview"].as_str().unwrap().starts_with("a2v2_"));
    until_status(&server, secret, 200).await;

    // Copy API Key works for it, as for keys made in the dashboard.
    let id = body["id"].as_str().unwrap();
    let revealed = owner
        .post(
            &format!("/api/agents/{agent}/api-keys/{id}/reveal"),
            serde_json::json!({}),
        )
        .await;
    revealed.expect(200, None);
    assert_eq!(revealed.body["key"], secret);
}

#[tokio::test]
async fn bad_arguments_fail_with_the_field_messages_and_change_nothing() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let agent = owner.create_agent("a").await;
    let long_name = "x".repeat(101);

    let too_long = cli(
        &server,
        &["create", "--agent", &agent, "--name", &long_name],
    );
    assert!(!too_long.status.success());
    let stderr = text(&too_long.stderr);
    assert!(
        stderr.contains("name (--name) must be at most 100 characters"),
        "{stderr}"
    );
    assert!(too_long.stdout.is_empty());

    let bad_ip = cli(
        &server,
        &[
            "create",
            "--agent",
            &agent,
            "--name",
            "k",
            "--ip",
            "10.0.0.1, 300.1.1.1",
        ],
    );
    assert!(!bad_ip.status.success());
    let stderr = text(&bad_ip.stderr);
    assert!(
        stderr.contains("ip_addresses (--ip) entry 2 (\"300.1.1.1\") is not a valid IP address"),
        "{stderr}"
    );

    let bad_permission = cli(
        &server,
        &[
            "create",
            "--agent",
            &agent,
            "--name",
            "k",
            "--permission",
            "contacts:fly",
        ],
    );
    assert!(!bad_permission.status.success());
    assert!(text(&bad_permission.stderr).contains("unknown action"));

    let no_agent = cli(
        &server,
        &["create", "--agent", "agt_missing", "--name", "k"],
    );
    assert!(!no_agent.status.success());
    assert!(text(&no_agent.stderr).contains("no agent with id agt_missing"));
    assert!(
        !cli(&server, &["list", "--agent", "agt_missing"])
            .status
            .success()
    );

    let listed = owner.get(&format!("/api/agents/{agent}/api-keys")).await;
    assert_eq!(listed.body["data"], serde_json::json!([]));
    let events = owner.get("/api/audit-logs?action=api_key.created").await;
    assert_eq!(events.body["data"], serde_json::json!([]));
}

#[tokio::test]
async fn a_key_is_not_made_under_a_master_key_the_server_does_not_have() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let agent = owner.create_agent("a").await;
    owner.create_key(&agent, &[]).await;
    let elsewhere = tempfile::tempdir().unwrap();
    let run = |master_key_file: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_a2v2"))
            .args(["keys", "create", "--agent", &agent, "--name", "k"])
            .arg("--data-dir")
            .arg(elsewhere.path())
            .arg("--master-key-file")
            .arg(master_key_file)
            .arg("--database")
            .arg(&server.database_url)
            .env_remove("RUST_LOG")
            .output()
            .unwrap()
    };
    let missing = run(&elsewhere.path().join("master.key"));
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("no master key"));
    assert!(!elsewhere.path().join("master.key").exists());

    let other = elsewhere.path().join("other.key");
    std::fs::write(&other, format!("{}\n", "44".repeat(32))).unwrap();
    let wrong = run(&other);
    assert!(!wrong.status.success());
    assert!(text(&wrong.stderr).contains("master key differs"));
    let listed = owner.get(&format!("/api/agents/{agent}/api-keys")).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
}

/// `a2v2 keys roll` prints the new secret once; the running server takes it (and ends the old
/// one) within about a second, on both back ends.
#[tokio::test]
async fn roll_on_the_command_line_reaches_the_running_server() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let agent = owner.create_agent("a").await;
    let (key_id, old) = owner.create_key(&agent, &[]).await;
    let rolled = succeeded(&cli(
        &server,
        &["roll", "--agent", &agent, &key_id, "--grace-seconds", "0"],
    ));
    let new = rolled.trim();
    assert!(new.starts_with("a2v2_") && new != old);
    until_status(&server, new, 200).await;
    until_status(&server, &old, 401).await;
    let json: Value = serde_json::from_str(&succeeded(&cli(
        &server,
        &[
            "roll",
            "--agent",
            &agent,
            &key_id,
            "--grace-seconds",
            "600",
            "--json",
        ],
    )))
    .unwrap();
    assert_eq!(json["id"], key_id.as_str());
    assert!(json["previous_expires_at"].is_string());
    let newest = json["key"].as_str().unwrap();
    until_status(&server, newest, 200).await;
    until_status(&server, new, 200).await;
    let refused = cli(
        &server,
        &[
            "roll",
            "--agent",
            &agent,
            &key_id,
            "--grace-seconds",
            "604801",
        ],
    );
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("--grace-seconds"));
    let missing = cli(&server, &["roll", "--agent", &agent, "key_nope"]);
    assert!(text(&missing.stderr).contains("has no API key with id key_nope"));
}
