//! `a2v2 backup` of a running server under writes, and `a2v2 restore` into a fresh data
//! directory: every write acknowledged before the backup began is in it, and every key still
//! verifies — with the master key, which is kept apart from the backup.

use std::{
    collections::BTreeSet,
    process::Output,
    sync::{Arc, Mutex},
};

use reqwest::Method;
use serde_json::json;

use crate::harness::Server;

fn run(args: &[&str], data_dir: &std::path::Path) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_a2v2"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("RUST_LOG")
        .env_remove("A2V2_DATABASE_URL")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run a2v2")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_writes_restores_every_acknowledged_write() {
    let server = Server::start().await;
    if server.on_postgres() {
        let output = run(
            &[
                "backup",
                "--out",
                "/tmp/unused.db",
                "--database",
                &server.database_url,
            ],
            server.dir.path(),
        );
        assert!(!output.status.success());
        assert!(
            text(&output.stderr).contains("pg_dump"),
            "{}",
            text(&output.stderr)
        );
        return;
    }
    let owner = server.setup().await;
    let agent = owner.create_agent("backed up").await;
    let (_, key) = owner
        .create_key(&agent, &["contacts:create", "contacts:read"])
        .await;
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (url, key, acknowledged, stop) = (
            server.url.clone(),
            key.clone(),
            Arc::clone(&acknowledged),
            Arc::clone(&stop),
        );
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let reply = http
                    .post(format!("{url}/v1/contacts"))
                    .bearer_auth(&key)
                    .json(&json!({ "first_name": format!("Writer {n}") }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(reply.status(), 201);
                let body: serde_json::Value = reply.json().await.unwrap();
                acknowledged
                    .lock()
                    .unwrap()
                    .insert(body["id"].as_str().unwrap().to_owned());
                n += 1;
            }
        })
    };
    while acknowledged.lock().unwrap().len() < 50 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before = acknowledged.lock().unwrap().clone();
    let backup_file = server.dir.path().join("backup.db");
    let output = run(
        &["backup", "--out", backup_file.to_str().unwrap()],
        server.dir.path(),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("master key is not in the backup"));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();

    // A restore with another master key is refused.
    let wrong = tempfile::tempdir().unwrap();
    std::fs::write(wrong.path().join("master.key"), "ab".repeat(32)).unwrap();
    let refused = run(
        &["restore", "--from", backup_file.to_str().unwrap()],
        wrong.path(),
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("master key differs"),
        "{}",
        text(&refused.stderr)
    );
    assert!(
        !wrong.path().join("a2v2.db").exists(),
        "nothing was put in place"
    );

    // With the right one it restores; a second restore over it is refused.
    let fresh = tempfile::tempdir().unwrap();
    std::fs::copy(
        server.dir.path().join("master.key"),
        fresh.path().join("master.key"),
    )
    .unwrap();
    let restored = run(
        &["restore", "--from", backup_file.to_str().unwrap()],
        fresh.path(),
    );
    assert!(restored.status.success(), "{}", text(&restored.stderr));
    let again = run(
        &["restore", "--from", backup_file.to_str().unwrap()],
        fresh.path(),
    );
    assert!(!again.status.success());

    let copy = Server::start_in(fresh);
    for id in &before {
        let reply = copy
            .v1(Method::GET, &format!("/v1/contacts/{id}"), &key, None)
            .await;
        assert_eq!(
            reply.status, 200,
            "{id} acknowledged before the backup: {}",
            reply.text
        );
    }
    copy.v1(Method::GET, "/v1/key", &key, None)
        .await
        .expect(200, None);
    eprintln!(
        "{} writes acknowledged before the backup, {} in all",
        before.len(),
        acknowledged.lock().unwrap().len()
    );
}
