//! Documents over `/v1` (API keys) and the dashboard (SPEC §3 "Documents and extraction",
//! §4, §6): uploads, extraction inline and through the job queue, corrections, permissions
//! and tenant isolation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::PathBuf, time::Duration};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::{Client, Reply, Server};

pub(crate) const DOCS: &[&str] = &[
    "documents:create",
    "documents:read",
    "documents:update",
    "documents:delete",
];

pub(crate) const INVOICE: &str = "ACME Supplies Ltd\n\
Invoice Number: INV-0042\n\
Date: 12 March 2026\n\
Bill to: Jane Doe, jane.doe@example.com\n\
Questions? Visit https://acme.example.com/help\n\
Total: EUR 1,234.50\n";

pub(crate) struct World {
    pub server: Server,
    pub owner: Client,
    pub agent: String,
    pub key: String,
}

pub(crate) async fn world_with(args: &[&str]) -> World {
    // Small uploads wait for their extraction; on a loaded test machine a debug build may
    // need more than the default budget for that.
    let mut all = vec!["--extraction-inline-seconds", "60"];
    all.extend_from_slice(args);
    let server = Server::start_with(&all, &[]).await;
    let owner = server.setup().await;
    let agent = owner.create_agent("Paperwork bot").await;
    let (_, key) = owner.create_key(&agent, DOCS).await;
    World {
        server,
        owner,
        agent,
        key,
    }
}

pub(crate) async fn world() -> World {
    world_with(&[]).await
}

async fn read(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
        text,
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// `POST {path}` with the file as the raw body.
pub(crate) async fn upload_raw(
    server: &Server,
    key: &str,
    path: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> Reply {
    read(
        http()
            .post(format!("{}{path}", server.url))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A `multipart/form-data` body with the given parts: (name, file name, bytes).
pub(crate) fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "a2v2-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, filename, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(file) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub(crate) async fn upload_text(server: &Server, key: &str, name: &str, text: &str) -> Reply {
    upload_raw(
        server,
        key,
        &format!("/v1/documents?filename={name}"),
        "text/plain",
        text.as_bytes().to_vec(),
    )
    .await
}

/// A real document from `tests/fixtures/documents`.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/documents")
        .join(name);
    std::fs::read(&file).unwrap_or_else(|err| panic!("fixture {}: {err}", file.display()))
}

/// A ZIP archive with one stored (uncompressed) file: a container that is not a Word document.
fn zip_with(name: &str, content: &[u8]) -> Vec<u8> {
    let crc = crc32fast::hash(content);
    let size = u32::try_from(content.len()).unwrap();
    let name_len = u16::try_from(name.len()).unwrap();
    let mut out = Vec::new();
    out.extend_from_slice(b"PK\x03\x04");
    out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&name_len.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(content);
    let central_at = u32::try_from(out.len()).unwrap();
    out.extend_from_slice(b"PK\x01\x02");
    out.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&name_len.to_le_bytes());
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    let central_len = u32::try_from(out.len()).unwrap() - central_at;
    out.extend_from_slice(b"PK\x05\x06");
    out.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
    out.extend_from_slice(&central_len.to_le_bytes());
    out.extend_from_slice(&central_at.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

/// Polls the document until its extraction has ended.
pub(crate) async fn wait_done(server: &Server, key: &str, id: &str, within: Duration) -> Reply {
    let started = std::time::Instant::now();
    loop {
        let reply = server
            .v1(Method::GET, &format!("/v1/documents/{id}"), key, None)
            .await;
        reply.expect(200, None);
        if reply.body["status"] != "processing" {
            return reply;
        }
        assert!(
            started.elapsed() < within,
            "document {id} still processing after {within:?}: {}",
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn emails(doc: &Value) -> Vec<String> {
    doc["fields"]["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap().to_owned())
        .collect()
}

pub(crate) async fn audit_actions(owner: &Client, agent: &str) -> Vec<Value> {
    let reply = owner
        .get(&format!("/api/audit-logs?agent_id={agent}&limit=200"))
        .await;
    reply.expect(200, None);
    reply.body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn small_uploads_are_extracted_at_once_and_read_back() {
    let w = world().await;
    let reply = upload_text(&w.server, &w.key, "invoice.txt", INVOICE).await;
    reply.expect(201, None);
    let doc = &reply.body;
    let id = doc["id"].as_str().unwrap();
    assert_eq!(doc["status"], "succeeded", "{}", reply.text);
    assert_eq!(doc["error"], Value::Null);
    assert_eq!(doc["filename"], "invoice.txt");
    assert_eq!(doc["content_type"], "text/plain");
    assert_eq!(doc["size_bytes"], INVOICE.len());
    let digest: String = Sha256::digest(INVOICE.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(doc["sha256"], digest);
    assert_eq!(doc["page_count"], 1);
    assert_eq!(doc["ocr"], false);
    assert!(doc["text"].as_str().unwrap().contains("INV-0042"));
    assert_eq!(emails(doc), ["jane.doe@example.com"]);
    assert_eq!(
        doc["fields"]["urls"][0]["value"],
        "https://acme.example.com/help"
    );
    assert_eq!(doc["fields"]["dates"][0]["value"], "2026-03-12");
    assert_eq!(doc["fields"]["amounts"][0]["value"], "1234.50");
    assert_eq!(doc["fields"]["amounts"][0]["currency"], "EUR");
    assert_eq!(doc["fields"]["emails"][0]["page"], 1);
    assert_eq!(doc["metadata"], json!({}));
    assert_eq!(
        reply.headers["location"].to_str().unwrap(),
        format!("/v1/documents/{id}")
    );
    assert_eq!(reply.headers["etag"].to_str().unwrap(), "\"2\"");

    let got = w
        .server
        .v1(Method::GET, &format!("/v1/documents/{id}"), &w.key, None)
        .await;
    got.expect(200, None);
    assert_eq!(got.body, reply.body);

    let file = http()
        .get(format!("{}/v1/documents/{id}/file", w.server.url))
        .bearer_auth(&w.key)
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(file.headers()["content-type"], "text/plain");
    assert!(
        file.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("invoice.txt")
    );
    assert_eq!(file.bytes().await.unwrap(), INVOICE.as_bytes());

    let list = w
        .server
        .v1(Method::GET, "/v1/documents", &w.key, None)
        .await;
    list.expect(200, None);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["data"][0]["id"], id);
    assert!(list.body["data"][0].get("text").is_none());
    assert_eq!(list.body["has_more"], false);

    let dashboard = w
        .owner
        .get(&format!("/api/agents/{}/documents/{id}", w.agent))
        .await;
    dashboard.expect(200, None);
    assert!(
        dashboard.body["pages"][0]["text"]
            .as_str()
            .unwrap()
            .contains("INV-0042")
    );
    let listed = w
        .owner
        .get(&format!(
            "/api/agents/{}/documents?status=succeeded",
            w.agent
        ))
        .await;
    listed.expect(200, None);
    assert_eq!(listed.body["data"][0]["id"], id);

    let created = audit_actions(&w.owner, &w.agent).await;
    let event = created
        .iter()
        .find(|e| e["action"] == "document.created")
        .expect("document.created event");
    assert_eq!(event["actor"]["type"], "api_key");
    assert_eq!(event["target"]["id"], id);
}

#[tokio::test]
async fn multipart_uploads_carry_a_schema_and_metadata() {
    let w = world().await;
    let schema = json!({"fields": [
        {"name": "invoice_number", "type": "string", "labels": ["Invoice Number"]},
        {"name": "total", "type": "money", "labels": ["Total"]},
        {"name": "po_number", "type": "string", "labels": ["PO Number"]}
    ]})
    .to_string();
    let (content_type, body) = multipart(&[
        ("file", Some("scans/invoice-42.txt"), INVOICE.as_bytes()),
        ("schema", None, schema.as_bytes()),
        ("metadata", None, br#"{"source": "mailroom", "batch": 7}"#),
    ]);
    let reply = upload_raw(&w.server, &w.key, "/v1/documents", &content_type, body).await;
    reply.expect(201, None);
    assert_eq!(reply.body["filename"], "invoice-42.txt");
    assert_eq!(
        reply.body["metadata"],
        json!({"source": "mailroom", "batch": 7})
    );
    assert_eq!(reply.body["schema_fields"]["invoice_number"], "INV-0042");
    assert_eq!(reply.body["schema_fields"]["po_number"], Value::Null);
    assert!(reply.body["schema_fields"].get("total").is_some());

    // A bad schema, unknown part or missing file are refused before anything is stored.
    let (content_type, body) = multipart(&[
        ("file", Some("a.txt"), b"hello"),
        (
            "schema",
            None,
            br#"{"fields": [{"name": "x", "type": "colour"}]}"#,
        ),
    ]);
    upload_raw(&w.server, &w.key, "/v1/documents", &content_type, body)
        .await
        .expect(422, Some("validation_failed"));
    let (content_type, body) = multipart(&[("metadata", None, br#"{"a": 1}"#)]);
    let reply = upload_raw(&w.server, &w.key, "/v1/documents", &content_type, body).await;
    reply.expect(422, Some("validation_failed"));
    assert!(reply.body["error"]["fields"]["file"].is_string());
    let (content_type, body) = multipart(&[("picture", Some("a.txt"), b"hello")]);
    upload_raw(&w.server, &w.key, "/v1/documents", &content_type, body)
        .await
        .expect(400, Some("bad_request"));
    let list = w
        .server
        .v1(Method::GET, "/v1/documents", &w.key, None)
        .await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn unsupported_and_oversized_files_are_refused() {
    let w = world_with(&["--max-upload-bytes", "4096"]).await;
    let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    elf.extend((0..600u32).map(|i| (i % 7) as u8));
    let mut random = vec![0u8; 1024];
    for (i, byte) in random.iter_mut().enumerate() {
        *byte = (i.wrapping_mul(2_654_435_761) >> 7) as u8;
    }
    random[10] = 0;
    random[11] = 0;
    for (name, bytes) in [
        ("elf", elf),
        ("random", random),
        ("zip", zip_with("notes.txt", b"not a word document")),
    ] {
        let reply = upload_raw(
            &w.server,
            &w.key,
            "/v1/documents?filename=upload.bin",
            "application/pdf",
            bytes,
        )
        .await;
        reply.expect(415, Some("unsupported_media_type"));
        assert!(!reply.text.contains(name));
    }
    upload_raw(
        &w.server,
        &w.key,
        "/v1/documents?filename=big.txt",
        "text/plain",
        vec![b'a'; 5000],
    )
    .await
    .expect(413, Some("payload_too_large"));
    let (content_type, body) = multipart(&[("file", Some("big.txt"), &[b'a'; 5000])]);
    upload_raw(&w.server, &w.key, "/v1/documents", &content_type, body)
        .await
        .expect(413, Some("payload_too_large"));
    upload_raw(
        &w.server,
        &w.key,
        "/v1/documents?filename=a.txt&colour=red",
        "text/plain",
        b"hello".to_vec(),
    )
    .await
    .expect(400, Some("bad_request"));
    let list = w
        .server
        .v1(Method::GET, "/v1/documents", &w.key, None)
        .await;
    assert_eq!(list.body["data"], json!([]));
    // Exactly at the limit is fine.
    upload_raw(
        &w.server,
        &w.key,
        "/v1/documents?filename=full.txt",
        "text/plain",
        vec![b'a'; 4096],
    )
    .await
    .expect(201, None);
}

#[tokio::test]
async fn corrupt_and_encrypted_files_fail_cleanly_and_empty_files_succeed() {
    let w = world().await;
    let corrupt =
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nstream\x00\x01garbage\n%%EOF"
            .to_vec();
    let reply = upload_raw(
        &w.server,
        &w.key,
        "/v1/documents?filename=broken.pdf",
        "application/pdf",
        corrupt,
    )
    .await;
    reply.expect(201, None);
    assert_eq!(reply.body["status"], "failed", "{}", reply.text);
    assert_eq!(reply.body["content_type"], "application/pdf");
    assert!(reply.body["error"]["code"].is_string());
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with('.')
    );

    let reply = upload_raw(
        &w.server,
        &w.key,
        "/v1/documents?filename=password.pdf",
        "application/pdf",
        fixture("password.pdf"),
    )
    .await;
    reply.expect(201, None);
    assert_eq!(reply.body["status"], "failed");
    assert_eq!(reply.body["error"]["code"], "encrypted");

    let reply = upload_text(&w.server, &w.key, "empty.txt", "").await;
    reply.expect(201, None);
    assert_eq!(reply.body["status"], "succeeded", "{}", reply.text);
    assert_eq!(reply.body["text"], "");

    let reply = upload_raw(
        &w.server,
        &w.key,
        "/v1/documents?filename=memo.pdf",
        "application/pdf",
        fixture("fake-memo.pdf"),
    )
    .await;
    reply.expect(201, None);
    assert_eq!(reply.body["status"], "succeeded", "{}", reply.text);
    assert!(reply.body["page_count"].as_i64().unwrap() >= 1);
    assert!(!reply.body["text"].as_str().unwrap().trim().is_empty());

    let reply = upload_raw(
        &w.server,
        &w.key,
        "/v1/documents?filename=handbook.docx",
        "application/octet-stream",
        fixture("handbook-1p.docx"),
    )
    .await;
    reply.expect(201, None);
    assert_eq!(
        reply.body["content_type"],
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    );
    assert_eq!(reply.body["status"], "succeeded", "{}", reply.text);

    let failed = w
        .server
        .v1(Method::GET, "/v1/documents?status=failed", &w.key, None)
        .await;
    failed.expect(200, None);
    assert_eq!(failed.body["data"].as_array().unwrap().len(), 2);
    let health = reqwest::get(format!("{}/healthz", w.server.url))
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn keys_need_the_documents_permissions_and_see_only_their_agent() {
    let w = world().await;
    let (_, contacts_only) = w
        .owner
        .create_key(&w.agent, &["contacts:create", "contacts:read"])
        .await;
    let (_, read_only) = w.owner.create_key(&w.agent, &["documents:read"]).await;
    let doc = upload_text(&w.server, &w.key, "a.txt", INVOICE).await;
    doc.expect(201, None);
    let id = doc.body["id"].as_str().unwrap().to_owned();

    let reply = w
        .server
        .v1(Method::GET, "/v1/documents", &contacts_only, None)
        .await;
    reply.expect(403, Some("permission_denied"));
    assert_eq!(reply.body["error"]["required_permission"], "documents:read");
    let reply = upload_text(&w.server, &contacts_only, "b.txt", "hello").await;
    reply.expect(403, Some("permission_denied"));
    assert_eq!(
        reply.body["error"]["required_permission"],
        "documents:create"
    );
    for (method, path, permission) in [
        (Method::GET, format!("/v1/documents/{id}"), "documents:read"),
        (
            Method::GET,
            format!("/v1/documents/{id}/file"),
            "documents:read",
        ),
        (
            Method::PATCH,
            format!("/v1/documents/{id}"),
            "documents:update",
        ),
        (
            Method::POST,
            format!("/v1/documents/{id}/extract"),
            "documents:update",
        ),
        (
            Method::DELETE,
            format!("/v1/documents/{id}"),
            "documents:delete",
        ),
    ] {
        let key = if permission == "documents:read" {
            &contacts_only
        } else {
            &read_only
        };
        let body = (method == Method::PATCH).then(|| json!({"filename": "x.txt"}));
        let reply = w.server.v1(method.clone(), &path, key, body).await;
        reply.expect(403, Some("permission_denied"));
        assert_eq!(
            reply.body["error"]["required_permission"], permission,
            "{method} {path}"
        );
    }
    // create_contacts also needs contacts:create.
    let reply = upload_raw(
        &w.server,
        &w.key,
        "/v1/documents?filename=c.txt&create_contacts=true",
        "text/plain",
        INVOICE.as_bytes().to_vec(),
    )
    .await;
    reply.expect(403, Some("permission_denied"));
    assert_eq!(
        reply.body["error"]["required_permission"],
        "contacts:create"
    );

    // Another agent's key: the document does not exist for it.
    let other_agent = w.owner.create_agent("Other bot").await;
    let (_, other) = w.owner.create_key(&other_agent, DOCS).await;
    for (method, path) in [
        (Method::GET, format!("/v1/documents/{id}")),
        (Method::GET, format!("/v1/documents/{id}/file")),
        (Method::PATCH, format!("/v1/documents/{id}")),
        (Method::POST, format!("/v1/documents/{id}/extract")),
        (Method::DELETE, format!("/v1/documents/{id}")),
    ] {
        let body = (method == Method::PATCH).then(|| json!({"filename": "stolen.txt"}));
        w.server
            .v1(method, &path, &other, body)
            .await
            .expect(404, Some("not_found"));
    }
    let list = w
        .server
        .v1(Method::GET, "/v1/documents", &other, None)
        .await;
    list.expect(200, None);
    assert_eq!(list.body["data"], json!([]));
    w.owner
        .get(&format!("/api/agents/{other_agent}/documents/{id}"))
        .await
        .expect(404, Some("not_found"));
    let mine = w
        .server
        .v1(
            Method::GET,
            &format!("/v1/documents/{id}"),
            &read_only,
            None,
        )
        .await;
    mine.expect(200, None);
    assert_eq!(mine.body["filename"], "a.txt");
}

#[tokio::test]
async fn corrections_are_kept_marked_and_survive_extraction_again() {
    let w = world().await;
    let doc = upload_text(&w.server, &w.key, "invoice.txt", INVOICE).await;
    doc.expect(201, None);
    let id = doc.body["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/documents/{id}");
    let version = doc.body["version"].as_i64().unwrap();

    let reply = w
        .server
        .v1(
            Method::PATCH,
            &path,
            &w.key,
            Some(json!({
                "filename": "invoice-0042.txt",
                "metadata": {"reviewed": true},
                "fields": {"emails": [{"value": "billing@acme.example.com", "page": 1}]},
                "schema_fields": {"invoice_number": "INV-0042-A"}
            })),
        )
        .await;
    reply.expect(200, None);
    assert_eq!(reply.body["filename"], "invoice-0042.txt");
    assert_eq!(reply.body["metadata"], json!({"reviewed": true}));
    assert_eq!(emails(&reply.body), ["billing@acme.example.com"]);
    assert_eq!(reply.body["schema_fields"]["invoice_number"], "INV-0042-A");
    assert_eq!(reply.body["edited"]["fields"], json!(["emails"]));
    assert_eq!(
        reply.body["edited"]["schema_fields"],
        json!(["invoice_number"])
    );
    assert_eq!(reply.body["version"], version + 1);

    // A stale If-Match changes nothing.
    let stale = http()
        .patch(format!("{}{path}", w.server.url))
        .bearer_auth(&w.key)
        .header("if-match", format!("\"{version}\""))
        .json(&json!({"filename": "late.txt"}))
        .send()
        .await
        .unwrap();
    read(stale).await.expect(412, Some("precondition_failed"));
    let errors = w
        .server
        .v1(
            Method::PATCH,
            &path,
            &w.key,
            Some(json!({"status": "succeeded", "fields": {"colours": []}})),
        )
        .await;
    errors.expect(422, Some("validation_failed"));

    let again = w
        .server
        .v1(Method::POST, &format!("{path}/extract"), &w.key, None)
        .await;
    again.expect(200, None);
    assert_eq!(again.body["status"], "succeeded");
    assert_eq!(emails(&again.body), ["billing@acme.example.com"]);
    assert_eq!(
        again.body["fields"]["urls"][0]["value"],
        "https://acme.example.com/help"
    );
    assert_eq!(again.body["edited"]["fields"], json!(["emails"]));

    // Taking the correction back shows what extraction found again.
    let back = w
        .server
        .v1(
            Method::PATCH,
            &path,
            &w.key,
            Some(json!({"fields": {"emails": null}})),
        )
        .await;
    back.expect(200, None);
    assert_eq!(emails(&back.body), ["jane.doe@example.com"]);
    assert_eq!(back.body["edited"]["fields"], json!([]));

    let actions: Vec<String> = audit_actions(&w.owner, &w.agent)
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "document.updated").count(),
        3,
        "{actions:?}"
    );
}

#[tokio::test]
async fn deleting_removes_the_file_text_and_fields() {
    let w = world().await;
    let doc = upload_text(&w.server, &w.key, "a.txt", INVOICE).await;
    let id = doc.body["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/documents/{id}");
    w.server
        .v1(Method::DELETE, &path, &w.key, None)
        .await
        .expect(204, None);
    for path in [path.clone(), format!("{path}/file")] {
        w.server
            .v1(Method::GET, &path, &w.key, None)
            .await
            .expect(404, Some("not_found"));
    }
    w.server
        .v1(Method::DELETE, &path, &w.key, None)
        .await
        .expect(404, Some("not_found"));
    let events = audit_actions(&w.owner, &w.agent).await;
    let deleted = events
        .iter()
        .find(|e| e["action"] == "document.deleted")
        .expect("document.deleted");
    assert_eq!(deleted["actor"]["type"], "api_key");
    assert_eq!(deleted["target"]["label"], "a.txt");
}

#[tokio::test]
async fn contacts_found_are_written_once_per_email() {
    let w = world().await;
    let (_, key) = w
        .owner
        .create_key(
            &w.agent,
            &[
                "documents:create",
                "documents:read",
                "contacts:create",
                "contacts:read",
            ],
        )
        .await;
    let card =
        "Jane Doe\nHead of Purchasing\nACME Supplies Ltd\njane.doe@example.com\n+44 20 7946 0958\n";
    for _ in 0..2 {
        let reply = upload_raw(
            &w.server,
            &key,
            "/v1/documents?filename=card.txt&create_contacts=true",
            "text/plain",
            card.as_bytes().to_vec(),
        )
        .await;
        reply.expect(201, None);
        assert_eq!(
            reply.body["contacts"][0]["email"], "jane.doe@example.com",
            "{}",
            reply.text
        );
    }
    let contacts = w.server.v1(Method::GET, "/v1/contacts", &key, None).await;
    contacts.expect(200, None);
    let data = contacts.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{}", contacts.text);
    assert_eq!(data[0]["email"], "jane.doe@example.com");
    let created: Vec<Value> = audit_actions(&w.owner, &w.agent)
        .await
        .into_iter()
        .filter(|e| e["action"] == "contact.created")
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["actor"]["type"], "api_key");
}

#[tokio::test]
async fn large_uploads_are_queued_and_finished_in_the_background() {
    let w = world_with(&["--extraction-inline-bytes", "16"]).await;
    let other_agent = w.owner.create_agent("Other bot").await;
    let (_, other) = w.owner.create_key(&other_agent, DOCS).await;
    let mut ids = Vec::new();
    for (key, text) in [
        (&w.key, INVOICE),
        (&other, "Write to other@example.org today."),
    ] {
        let reply = upload_text(&w.server, key, "queued.txt", text).await;
        reply.expect(202, None);
        assert_eq!(reply.body["status"], "processing");
        ids.push(reply.body["id"].as_str().unwrap().to_owned());
    }
    let mine = wait_done(&w.server, &w.key, &ids[0], Duration::from_secs(30)).await;
    assert_eq!(mine.body["status"], "succeeded");
    assert_eq!(emails(&mine.body), ["jane.doe@example.com"]);
    let theirs = wait_done(&w.server, &other, &ids[1], Duration::from_secs(30)).await;
    assert_eq!(emails(&theirs.body), ["other@example.org"]);
    // Each job wrote only its own agent's document.
    w.server
        .v1(
            Method::GET,
            &format!("/v1/documents/{}", ids[1]),
            &w.key,
            None,
        )
        .await
        .expect(404, Some("not_found"));
    // The dashboard uploads through the same queue.
    let reply = w
        .owner
        .http
        .post(format!(
            "{}/api/agents/{}/documents?filename=admin.txt",
            w.server.url, w.agent
        ))
        .header("x-csrf-token", w.owner.csrf.clone().unwrap())
        .header("content-type", "text/plain")
        .body(INVOICE)
        .send()
        .await
        .unwrap();
    let reply = read(reply).await;
    reply.expect(202, None);
    let id = reply.body["id"].as_str().unwrap();
    wait_done(&w.server, &w.key, id, Duration::from_secs(30)).await;
    let metrics = reqwest::get(format!("{}/metrics", w.server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("a2v2_extraction_jobs_total{outcome=\"succeeded\"} 3"),
        "{metrics}"
    );
}

/// A big text file with many fields: its extraction takes a while.
fn slow_text() -> Vec<u8> {
    let mut text = String::new();
    for i in 0..4_000 {
        text.push_str(&format!(
            "Line {i}: contact person{i}@example.com on 12 March 2026, total EUR {i}.50, see https://example.com/{i}\n"
        ));
    }
    text.into_bytes()
}

/// Whether the queue row of `document_id` is leased (a node is running it).
async fn leased(database_url: &str, document_id: &str) -> Option<bool> {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(database_url).await.unwrap();
    let row = sqlx::query("SELECT lease_token FROM extraction_jobs WHERE document_id = $1")
        .bind(document_id)
        .fetch_optional(&mut conn)
        .await
        .unwrap()?;
    Some(
        row.try_get::<Option<String>, _>("lease_token")
            .unwrap()
            .is_some(),
    )
}

#[tokio::test]
async fn a_job_of_a_node_that_died_is_taken_again_when_its_lease_ends() {
    let args = [
        "--extraction-inline-bytes",
        "16",
        "--extraction-lease-seconds",
        "2",
    ];
    let mut w = world_with(&args).await;
    let mut attempt = 0;
    let id = loop {
        attempt += 1;
        assert!(attempt <= 5, "never caught the node in the middle of a job");
        let reply = upload_raw(
            &w.server,
            &w.key,
            "/v1/documents?filename=big.txt",
            "text/plain",
            slow_text(),
        )
        .await;
        reply.expect(202, None);
        let id = reply.body["id"].as_str().unwrap().to_owned();
        // Wait for the node to take the job, then kill it in the middle.
        let mut taken = false;
        for _ in 0..200 {
            match leased(&w.server.database_url, &id).await {
                Some(true) => {
                    taken = true;
                    break;
                }
                Some(false) => tokio::time::sleep(Duration::from_millis(5)).await,
                None => break,
            }
        }
        if !taken {
            continue;
        }
        w.server.kill9();
        if leased(&w.server.database_url, &id).await == Some(true) {
            break id;
        }
        w.server.restart();
    };
    w.server.restart();
    let done = wait_done(&w.server, &w.key, &id, Duration::from_secs(60)).await;
    assert_eq!(done.body["status"], "succeeded", "{}", done.text);
    assert!(emails(&done.body).contains(&"person7@example.com".to_owned()));
    assert_eq!(leased(&w.server.database_url, &id).await, None);
}

#[tokio::test]
async fn extraction_again_may_bring_a_new_schema() {
    let w = world().await;
    let schema = json!({"fields": [
        {"name": "invoice_number", "type": "string", "labels": ["Invoice Number"]}
    ]})
    .to_string();
    let (content_type, body) = multipart(&[
        ("file", Some("invoice.txt"), INVOICE.as_bytes()),
        ("schema", None, schema.as_bytes()),
    ]);
    let doc = upload_raw(&w.server, &w.key, "/v1/documents", &content_type, body).await;
    doc.expect(201, None);
    assert_eq!(
        doc.body["schema_fields"],
        json!({"invoice_number": "INV-0042"})
    );
    let id = doc.body["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/documents/{id}/extract");

    let again = w
        .server
        .v1(
            Method::POST,
            &path,
            &w.key,
            Some(json!({"schema": {"fields": [
                {"name": "total", "type": "money", "labels": ["Total"]},
                {"name": "customer_email", "type": "email", "labels": ["Bill to"]}
            ]}})),
        )
        .await;
    again.expect(200, None);
    assert_eq!(again.body["status"], "succeeded", "{}", again.text);
    let fields = again.body["schema_fields"].as_object().unwrap();
    assert!(fields.get("invoice_number").is_none(), "{}", again.text);
    assert!(
        fields["total"].to_string().contains("1234.50"),
        "{}",
        again.text
    );
    assert_eq!(
        fields["customer_email"], "jane.doe@example.com",
        "{}",
        again.text
    );

    // Without a body the stored (new) schema is used again.
    let same = w.server.v1(Method::POST, &path, &w.key, None).await;
    same.expect(200, None);
    assert_eq!(same.body["schema_fields"], again.body["schema_fields"]);

    // A schema that does not parse, or anything else in the body, changes nothing.
    let version = same.body["version"].as_i64().unwrap();
    for body in [
        json!({"schema": {"fields": [{"name": "x", "type": "colour"}]}}),
        json!({"schema": "total"}),
        json!({"fields": {}}),
    ] {
        let reply = w.server.v1(Method::POST, &path, &w.key, Some(body)).await;
        reply.expect(422, Some("validation_failed"));
    }
    let raw = http()
        .post(format!("{}{path}", w.server.url))
        .bearer_auth(&w.key)
        .body("schema=total")
        .send()
        .await
        .unwrap();
    read(raw).await.expect(415, Some("unsupported_media_type"));
    let unchanged = w
        .server
        .v1(Method::GET, &format!("/v1/documents/{id}"), &w.key, None)
        .await;
    assert_eq!(unchanged.body["version"], version);
    assert_eq!(unchanged.body["status"], "succeeded");

    // `null` extracts without a schema.
    let none = w
        .server
        .v1(Method::POST, &path, &w.key, Some(json!({"schema": null})))
        .await;
    none.expect(200, None);
    assert_eq!(none.body["schema_fields"], json!({}), "{}", none.text);

    let changes: Vec<Value> = audit_actions(&w.owner, &w.agent)
        .await
        .into_iter()
        .filter(|e| e["action"] == "document.updated")
        .map(|e| e["details"]["changed"].clone())
        .collect();
    assert_eq!(
        changes,
        [
            json!(["extraction", "schema"]),
            json!(["extraction"]),
            json!(["extraction", "schema"])
        ],
        "newest first"
    );
}
