//! The extraction queue across restarts and nodes (SPEC §3: "a job queue that any node can
//! take work from"): queued documents are finished after a graceful restart, and two nodes on
//! one PostgreSQL database finish everything between them when one is killed. A document's
//! `version` is 1 when uploaded and goes up by one each time an extraction's outcome is
//! stored, so `version == 2` shows it was completed exactly once.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::documents::{fixture, upload_raw, world_with};
use crate::documents_ocr::scanned_pdf;
use crate::harness::Server;

const SUCCEEDED: &str = "a2v2_extraction_jobs_total{outcome=\"succeeded\"}";
const SUPERSEDED: &str = "a2v2_extraction_jobs_total{outcome=\"superseded\"}";
const RUNNING: &str = "a2v2_extraction_jobs_running";

/// All of the agent's documents (at most 200), oldest first.
async fn all_documents(server: &Server, key: &str) -> Vec<Value> {
    let reply = server
        .v1(Method::GET, "/v1/documents?limit=200", key, None)
        .await;
    reply.expect(200, None);
    reply.body["data"].as_array().unwrap().clone()
}

/// Waits until none of the agent's documents is `processing`; returns them.
async fn wait_all_done(server: &Server, key: &str, within: Duration) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let docs = all_documents(server, key).await;
        let processing = docs.iter().filter(|d| d["status"] == "processing").count();
        if processing == 0 {
            return docs;
        }
        assert!(
            started.elapsed() < within,
            "{processing} documents still processing after {within:?}; logs:\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn documents_queued_before_a_graceful_stop_are_finished_after_the_restart() {
    // One worker, so the queue is still long when the server stops; a lease far longer than
    // the test may wait, so only a stop that hands its running job back lets that job finish.
    let mut w = world_with(&[
        "--extraction-inline-bytes",
        "16",
        "--extraction-workers",
        "1",
        "--extraction-lease-seconds",
        "300",
    ])
    .await;
    // First a scan that takes longer than the server's grace at a stop, then photos.
    let reply = upload_raw(
        &w.server,
        &w.key,
        "/v1/documents?filename=scan-40.pdf",
        "application/pdf",
        scanned_pdf(&[&fixture("card-small.jpg")], &[0; 40]),
    )
    .await;
    reply.expect(202, None);
    const COUNT: usize = 6;
    for n in 1..COUNT {
        let reply = upload_raw(
            &w.server,
            &w.key,
            &format!("/v1/documents?filename=card-{n}.png"),
            "image/png",
            fixture("card.png"),
        )
        .await;
        reply.expect(202, None);
    }
    let started = Instant::now();
    while w.server.metric(RUNNING).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the queue did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopping = Instant::now();
    let status = w.server.terminate();
    assert!(status.success(), "{status:?}; logs:\n{}", w.server.logs());
    println!("stopped in {:?}", stopping.elapsed());
    assert!(
        w.server
            .logs()
            .contains("released the extraction jobs still running"),
        "the scan was not running at the stop; logs:\n{}",
        w.server.logs()
    );

    w.server.restart();
    let docs = wait_all_done(&w.server, &w.key, Duration::from_secs(240)).await;
    assert_eq!(docs.len(), COUNT);
    for doc in &docs {
        assert_eq!(doc["status"], "succeeded", "{doc}");
        assert_eq!(doc["ocr"], true, "{doc}");
        assert_eq!(doc["version"], 2, "completed more than once: {doc}");
    }
    assert_eq!(docs[0]["page_count"], 40);
    // Everything was done after the restart, by the restarted server, once.
    assert_eq!(w.server.metric(SUCCEEDED).await, COUNT as u64);
    assert_eq!(w.server.metric(SUPERSEDED).await, 0);
}

/// A text of `lines` lines full of fields: a document whose extraction takes a moment.
fn busy_text(n: usize, lines: usize) -> Vec<u8> {
    let mut text = format!("Batch document {n}\n");
    for i in 0..lines {
        text.push_str(&format!(
            "Line {i}: write to person{i}.{n}@example.com by 12 March 2026, total EUR {i}.50, see https://example.com/{n}/{i}\n"
        ));
    }
    text.into_bytes()
}

#[tokio::test]
async fn documents_two_nodes_share_the_queue_and_one_is_killed_midway() {
    if std::env::var("TEST_POSTGRES_URL").is_err() {
        eprintln!(
            "SKIPPED documents_two_nodes_share_the_queue_and_one_is_killed_midway: \
             set TEST_POSTGRES_URL to run it (two nodes need a shared PostgreSQL)"
        );
        return;
    }
    let args = [
        "--extraction-inline-bytes",
        "16",
        "--extraction-workers",
        "2",
        "--extraction-lease-seconds",
        "3",
    ];
    let w = world_with(&args).await;
    let mut second = w.server.node_via(&w.server.database_url, &args);
    let started_all = Instant::now();
    const COUNT: usize = 200;
    // Uploaded faster than extracted, so the queue builds up and both nodes take from it.
    const UPLOADERS: usize = 8;
    let mut uploads = tokio::task::JoinSet::new();
    for first in 0..UPLOADERS {
        let (url, key) = (w.server.url.clone(), w.key.clone());
        uploads.spawn(async move {
            let http = reqwest::Client::new();
            for n in (first..COUNT).step_by(UPLOADERS) {
                let response = http
                    .post(format!("{url}/v1/documents?filename=batch-{n}.txt"))
                    .bearer_auth(&key)
                    .header("content-type", "text/plain")
                    .body(busy_text(n, 20))
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                // Queued: 202, or 201 when a worker was done before the answer was written.
                assert!(
                    status == StatusCode::ACCEPTED || status == StatusCode::CREATED,
                    "{status}: {body}"
                );
            }
        });
    }
    // Kill the second node in the middle of a job, once it has done some of the work, while
    // uploads go on.
    let started = Instant::now();
    loop {
        let done = second.metric(SUCCEEDED).await;
        if done >= 1 && second.metric(RUNNING).await >= 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the second node never took work ({done} done); logs:\n{}",
            second.logs()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    second.kill9();
    let first_at_kill = w.server.metric(SUCCEEDED).await;
    uploads.join_all().await;

    let docs = wait_all_done(&w.server, &w.key, Duration::from_secs(240)).await;
    assert_eq!(docs.len(), COUNT);
    let mut succeeded = 0;
    for doc in &docs {
        assert!(
            doc["status"] == "succeeded" || doc["status"] == "failed",
            "{doc}"
        );
        succeeded += usize::from(doc["status"] == "succeeded");
        assert_eq!(doc["version"], 2, "completed more than once: {doc}");
    }
    assert_eq!(succeeded, COUNT, "text documents do not fail");
    // The killed node's job went back to the queue and was finished by the other.
    assert!(
        w.server.metric(SUCCEEDED).await > first_at_kill,
        "the surviving node finished nothing after the kill"
    );
    // Each document holds its own text.
    let last = &docs[COUNT - 1];
    let n = last["filename"]
        .as_str()
        .unwrap()
        .trim_start_matches("batch-")
        .trim_end_matches(".txt");
    let doc = w
        .server
        .v1(
            Method::GET,
            &format!("/v1/documents/{}", last["id"].as_str().unwrap()),
            &w.key,
            None,
        )
        .await;
    let text = doc.body["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("person7.{n}@example.com")),
        "{n}: {text}"
    );
    println!(
        "{COUNT} documents on two nodes, one killed, in {:?}",
        started_all.elapsed()
    );
}
