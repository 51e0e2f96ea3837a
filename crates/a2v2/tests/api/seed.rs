//! `a2v2 seed`: the rows it writes are real — the server lists the contacts, seeded keys
//! verify after a restart (loaded page by page), and the audit chain still verifies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;

use reqwest::Method;

use crate::harness::Server;

fn cli(server: &Server, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_a2v2"))
        .args(args)
        .arg("--data-dir")
        .arg(server.dir.path())
        .arg("--database")
        .arg(&server.database_url)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run a2v2")
}

fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}; stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The value after `prefix` on the line that starts with it.
fn line_value<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find_map(|line| line.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in {text}"))
        .trim()
}

#[tokio::test]
async fn seeded_rows_are_served_and_seeded_keys_verify() {
    let mut server = Server::start().await;
    let owner = server.setup().await;
    // More keys than one loading page, so that start-up walks several pages.
    let out = succeeded(&cli(
        &server,
        &[
            "seed",
            "--contacts",
            "300",
            "--keys",
            "12001",
            "--audit-events",
            "400",
            "--agents",
            "3",
        ],
    ));
    assert!(out.contains("contacts: 300/300"), "{out}");
    assert!(out.contains("keys: 12001/12001"), "{out}");
    assert!(out.contains("audit events: 400/400"), "{out}");
    let first = line_value(&out, "first seeded key:").to_owned();
    let last = line_value(&out, "last seeded key:").to_owned();
    let agent = line_value(&out, "agent ")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();

    server.restart();
    for key in [&first, &last] {
        let reply = server.v1(Method::GET, "/v1/key", key, None).await;
        reply.expect(200, None);
    }
    let reply = server
        .v1(Method::GET, "/v1/key", &format!("{first}x"), None)
        .await;
    assert_eq!(reply.status.as_u16(), 401, "{}", reply.text);

    // The first key belongs to the agent holding the contacts.
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/v1/contacts?limit=200".to_owned();
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let reply = server.v1(Method::GET, &path, &first, None).await;
        reply.expect(200, None);
        for contact in reply.body["data"].as_array().unwrap() {
            for field in [
                "first_name",
                "last_name",
                "email",
                "phone",
                "phone_e164",
                "company",
            ] {
                assert!(contact[field].is_string(), "{field} in {contact}");
            }
            assert_eq!(contact["created_by"]["type"], "system");
        }
        seen += reply.body["data"].as_array().unwrap().len();
        match reply.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, 300);
    let reply = server
        .v1(
            Method::GET,
            "/v1/contacts?q=lovelace&limit=200",
            &first,
            None,
        )
        .await;
    reply.expect(200, None);
    assert!(!reply.body["data"].as_array().unwrap().is_empty());

    let keys = owner.get(&format!("/api/agents/{agent}/api-keys")).await;
    keys.expect(200, None);
    assert_eq!(keys.body["data"].as_array().unwrap().len(), 4001);

    let events = owner.get("/api/audit-logs?limit=200&action=agent.*").await;
    events.expect(200, None);
    assert_eq!(
        events.body["data"].as_array().unwrap().len(),
        400 / 6 + 3,
        "seeded agent.updated and the three agent.created"
    );
    succeeded(&cli(&server, &["audit", "verify"]));
}
