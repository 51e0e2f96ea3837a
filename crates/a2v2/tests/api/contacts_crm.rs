//! The dashboard's CRM: contact editing under `/api` by role, provenance (`created_by`,
//! `updated_by`, the `written_by` filter), CSV import (mapping, encodings, duplicates, bad
//! rows, limits, background progress), export, and the `a2v2 contacts` command line.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    harness::{Client, OWNER_EMAIL, Reply, Server},
    members::member_with_role,
};

struct World {
    server: Server,
    owner: Client,
    owner_id: String,
    agent: String,
}

async fn world_with(args: &[&str]) -> World {
    let server = Server::start_with(args, &[]).await;
    let owner = server.setup().await;
    let agent = owner.create_agent("Sales bot").await;
    let owner_id = owner.get("/api/session").await.body["member"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    World {
        server,
        owner,
        owner_id,
        agent,
    }
}

async fn world() -> World {
    world_with(&[]).await
}

fn contacts_path(w: &World) -> String {
    format!("/api/agents/{}/contacts", w.agent)
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

/// A dashboard request with extra headers and a raw body of `content_type`.
async fn raw(
    client: &Client,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, Vec<u8>)>,
) -> Reply {
    let mut request = client.http.request(method, format!("{}{path}", client.url));
    if let Some(csrf) = &client.csrf {
        request = request.header("x-csrf-token", csrf);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some((content_type, bytes)) = body {
        request = request.header("content-type", content_type).body(bytes);
    }
    read(request.send().await.expect("request")).await
}

async fn import(w: &World, client: &Client, query: &str, csv: &[u8]) -> Reply {
    raw(
        client,
        Method::POST,
        &format!("{}/import{query}", contacts_path(w)),
        &[],
        Some(("text/csv", csv.to_vec())),
    )
    .await
}

/// Polls an import until it is no longer running.
async fn finished(w: &World, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let reply = w
            .owner
            .get(&format!("{}/imports/{id}", contacts_path(w)))
            .await;
        reply.expect(200, None);
        if reply.body["state"] != "running" {
            return reply.body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "import still running: {}",
            reply.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every contact of the agent.
async fn all_contacts(w: &World, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let reply = w
            .owner
            .get(&format!("{}?limit=200{query}{cursor}", contacts_path(w)))
            .await;
        reply.expect(200, None);
        out.extend(reply.body["data"].as_array().unwrap().iter().cloned());
        match reply.body["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return out,
        }
    }
}

async fn audit_events(w: &World, action: &str) -> Vec<Value> {
    let reply = w
        .owner
        .get(&format!("/api/audit-logs?action={action}&limit=200"))
        .await;
    reply.expect(200, None);
    reply.body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn admins_edit_contacts_through_the_same_rules_as_the_api() {
    let w = world().await;
    let path = contacts_path(&w);

    let created = w
        .owner
        .post(
            &path,
            json!({ "first_name": "Ada", "email": "ada@example.com" }),
        )
        .await;
    created.expect(201, None);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.headers["location"].to_str().unwrap(),
        format!("{path}/{id}")
    );
    assert_eq!(created.headers["etag"].to_str().unwrap(), "\"1\"");
    let me = json!({ "type": "member", "id": w.owner_id, "label": OWNER_EMAIL });
    assert_eq!(created.body["created_by"], me);
    assert_eq!(created.body["updated_by"], me);

    // Validation, uniqueness and unknown fields answer exactly as on /v1.
    let invalid = w
        .owner
        .post(
            &path,
            json!({ "email": "not-an-email", "tags": "x", "colour": 1 }),
        )
        .await;
    invalid.expect(422, Some("validation_failed"));
    let fields = &invalid.body["error"]["fields"];
    assert!(fields["email"].is_string(), "{}", invalid.text);
    assert!(fields["tags"].is_string(), "{}", invalid.text);
    assert_eq!(fields["colour"], "is not a known field");
    w.owner
        .post(&path, json!({ "notes": "nobody" }))
        .await
        .expect(422, Some("validation_failed"));
    let taken = w
        .owner
        .post(&path, json!({ "email": "ADA@example.com" }))
        .await;
    taken.expect(409, Some("contact_exists"));
    assert_eq!(taken.body["error"]["existing_id"], id.as_str());
    w.owner
        .post(
            "/api/agents/agt_missing/contacts",
            json!({ "first_name": "Nobody" }),
        )
        .await
        .expect(404, Some("not_found"));
    let bad_json = raw(
        &w.owner,
        Method::POST,
        &path,
        &[],
        Some(("application/json", b"{".to_vec())),
    )
    .await;
    bad_json.expect(400, Some("bad_request"));

    // PATCH: If-Match, partial update, null clears, 404 elsewhere.
    let one = format!("{path}/{id}");
    let stale = raw(
        &w.owner,
        Method::PATCH,
        &one,
        &[("if-match", "\"7\"")],
        Some(("application/json", br#"{"company":"Acme"}"#.to_vec())),
    )
    .await;
    stale.expect(412, Some("precondition_failed"));
    let patched = raw(
        &w.owner,
        Method::PATCH,
        &one,
        &[("if-match", "\"1\"")],
        Some((
            "application/json",
            br#"{"company":"Acme","first_name":null,"last_name":"Lovelace"}"#.to_vec(),
        )),
    )
    .await;
    patched.expect(200, None);
    assert_eq!(patched.body["version"], 2);
    assert_eq!(patched.body["company"], "Acme");
    assert_eq!(patched.body["first_name"], Value::Null);
    assert_eq!(patched.headers["etag"].to_str().unwrap(), "\"2\"");
    w.owner
        .patch(&one, json!({ "version": 9 }))
        .await
        .expect(422, Some("validation_failed"));
    w.owner
        .patch(&format!("{path}/ct_missing"), json!({ "company": "X" }))
        .await
        .expect(404, Some("not_found"));
    let other_agent = w.owner.create_agent("Other").await;
    w.owner
        .patch(
            &format!("/api/agents/{other_agent}/contacts/{id}"),
            json!({ "company": "X" }),
        )
        .await
        .expect(404, Some("not_found"));
    let second = w
        .owner
        .post(&path, json!({ "email": "grace@example.com" }))
        .await;
    second.expect(201, None);
    let second_id = second.body["id"].as_str().unwrap();
    let clash = w
        .owner
        .patch(
            &format!("{path}/{second_id}"),
            json!({ "email": "ada@example.com" }),
        )
        .await;
    clash.expect(409, Some("contact_exists"));
    assert_eq!(clash.body["error"]["existing_id"], id.as_str());

    // DELETE: a stale If-Match changes nothing; then 204 and gone.
    raw(
        &w.owner,
        Method::DELETE,
        &one,
        &[("if-match", "\"1\"")],
        None,
    )
    .await
    .expect(412, Some("precondition_failed"));
    raw(
        &w.owner,
        Method::DELETE,
        &one,
        &[("if-match", "\"2\"")],
        None,
    )
    .await
    .expect(204, None);
    w.owner.get(&one).await.expect(404, Some("not_found"));
    w.owner.delete(&one).await.expect(404, Some("not_found"));

    // Every write is in the audit log with the member as actor.
    for action in ["contact.created", "contact.updated", "contact.deleted"] {
        let events = audit_events(&w, action).await;
        let event = events
            .iter()
            .find(|e| e["target"]["id"] == id.as_str())
            .unwrap_or_else(|| panic!("no {action} event for {id}: {events:?}"));
        assert_eq!(event["actor"], me, "{action}");
        assert_eq!(event["agent_id"], w.agent.as_str());
    }
}

#[tokio::test]
async fn members_read_contacts_but_cannot_change_them() {
    let w = world().await;
    let path = contacts_path(&w);
    let created = w.owner.post(&path, json!({ "first_name": "Ada" })).await;
    created.expect(201, None);
    let one = format!("{path}/{}", created.body["id"].as_str().unwrap());

    let (_, member) = member_with_role(&w.server, &w.owner, "m@example.com", "member").await;
    member.get(&path).await.expect(200, None);
    member.get(&one).await.expect(200, None);
    member
        .post(&path, json!({ "first_name": "Eve" }))
        .await
        .expect(403, Some("forbidden"));
    member
        .patch(&one, json!({ "first_name": "Eve" }))
        .await
        .expect(403, Some("forbidden"));
    member.delete(&one).await.expect(403, Some("forbidden"));
    import(&w, &member, "", b"Email\na@b.co\n")
        .await
        .expect(403, Some("forbidden"));
    let export = raw(&member, Method::GET, &format!("{path}/export"), &[], None).await;
    export.expect(200, None);

    let (_, admin) = member_with_role(&w.server, &w.owner, "a@example.com", "admin").await;
    admin
        .patch(&one, json!({ "company": "Acme" }))
        .await
        .expect(200, None);

    // No CSRF token, no session.
    let mut no_csrf = w
        .server
        .sign_in("a@example.com", crate::members::PASSWORD)
        .await;
    no_csrf.csrf = None;
    no_csrf
        .post(&path, json!({ "first_name": "Eve" }))
        .await
        .expect(403, Some("csrf_failed"));
    w.server
        .client()
        .post(&path, json!({ "first_name": "Eve" }))
        .await
        .expect(401, Some("unauthenticated"));
    // Nothing was created by the refused requests.
    assert_eq!(all_contacts(&w, "").await.len(), 1);
}

#[tokio::test]
async fn provenance_names_the_key_and_the_member_that_wrote_a_contact() {
    let w = world().await;
    let (key_a, secret_a) = w
        .owner
        .create_key_with(
            &w.agent,
            json!({
                "name": "Zapier sync",
                "permissions": { "contacts": ["create", "read", "update"] },
            }),
        )
        .await;
    let (bob_id, bob) = member_with_role(&w.server, &w.owner, "bob@example.com", "admin").await;

    let created = w
        .server
        .v1(
            Method::POST,
            "/v1/contacts",
            &secret_a,
            Some(json!({ "email": "lin@example.com" })),
        )
        .await;
    created.expect(201, None);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let key = json!({ "type": "api_key", "id": key_a, "label": "Zapier sync" });
    assert_eq!(created.body["created_by"], key);
    assert_eq!(created.body["updated_by"], key);

    let patched = bob
        .patch(
            &format!("{}/{id}", contacts_path(&w)),
            json!({ "first_name": "Lin" }),
        )
        .await;
    patched.expect(200, None);
    let bob_ref = json!({ "type": "member", "id": bob_id, "label": "bob@example.com" });
    assert_eq!(patched.body["created_by"], key);
    assert_eq!(patched.body["updated_by"], bob_ref);

    // Both APIs show both actors.
    let via_key = w
        .server
        .v1(Method::GET, &format!("/v1/contacts/{id}"), &secret_a, None)
        .await;
    via_key.expect(200, None);
    assert_eq!(via_key.body["created_by"], key);
    assert_eq!(via_key.body["updated_by"], bob_ref);

    // "Contacts this key wrote": created or last changed by it.
    w.owner
        .post(&contacts_path(&w), json!({ "first_name": "Other" }))
        .await
        .expect(201, None);
    let by_key = all_contacts(&w, &format!("&written_by={key_a}")).await;
    assert_eq!(by_key.len(), 1);
    assert_eq!(by_key[0]["id"], id.as_str());
    let by_bob = all_contacts(&w, &format!("&written_by={bob_id}")).await;
    assert_eq!(by_bob.len(), 1);
    let by_owner = all_contacts(&w, &format!("&written_by={}", w.owner_id)).await;
    assert_eq!(by_owner.len(), 1);
    assert_eq!(by_owner[0]["first_name"], "Other");
    assert!(all_contacts(&w, "&written_by=key_nobody").await.is_empty());
}

#[tokio::test]
async fn a_csv_import_maps_headers_and_reports_every_skipped_row() {
    let w = world().await;
    let csv = "\u{feff}E-mail,First Name,Last Name,Mobile,Organisation,Tags,Lead source\r\n\
        ada@example.com,Ada,Lovelace,+44 20 7946 0958,Analytical,\"vip; math\",fair\r\n\
        not-an-email,Bad,Row,,,,\r\n\
        ,,,,,,\r\n\
        grace@example.com,Grace,Hopper,,Navy,,\r\n\
        ADA@example.com,Ada,Again,,,,\r\n\
        ,Linus,,,,,\r\n\
        x@example.com,Too,Many,,,,,surplus\r\n";
    let reply = import(&w, &w.owner, "", csv.as_bytes()).await;
    reply.expect(200, None);
    let report = &reply.body;
    assert_eq!(report["state"], "done");
    assert_eq!(report["encoding"], "utf-8-bom");
    assert_eq!(report["created"], 3, "{report}");
    assert_eq!(report["updated"], 0);
    assert_eq!(report["total_rows"], 7);
    assert_eq!(report["processed_rows"], 7);
    let skipped = report["skipped"].as_array().unwrap();
    let rows: Vec<u64> = skipped.iter().map(|s| s["row"].as_u64().unwrap()).collect();
    assert_eq!(rows, [2, 3, 5, 7], "{report}");
    assert!(skipped[0]["reason"].as_str().unwrap().starts_with("email "));
    assert_eq!(skipped[1]["reason"], "the row is empty");
    assert!(
        skipped[2]["reason"].as_str().unwrap().contains("row 1"),
        "{report}"
    );
    let columns: Vec<&str> = report["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "email",
            "first_name",
            "last_name",
            "phone",
            "company",
            "tags",
            "attributes.Lead source"
        ]
    );

    let ada = all_contacts(&w, "&email=ada@example.com").await;
    assert_eq!(ada.len(), 1);
    let ada = &ada[0];
    assert_eq!(ada["first_name"], "Ada");
    assert_eq!(ada["phone_e164"], "+442079460958");
    assert_eq!(ada["company"], "Analytical");
    assert_eq!(ada["tags"], json!(["vip", "math"]));
    assert_eq!(ada["attributes"], json!({ "Lead source": "fair" }));
    assert_eq!(ada["created_by"]["type"], "member");
    assert_eq!(ada["created_by"]["id"], w.owner_id.as_str());

    // One audit event for the import, not one per row.
    let events = audit_events(&w, "contact.imported").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["details"]["created"], 3);
    assert_eq!(events[0]["actor"]["id"], w.owner_id.as_str());

    // Again with update: rows that change something update, the rest are unchanged.
    let again = "Email,Company,Lead source\nada@example.com,Analytical Engines,\n\
        grace@example.com,Navy,web\nlinus@example.com,,\n";
    let reply = import(&w, &w.owner, "?on_duplicate=update", again.as_bytes()).await;
    reply.expect(200, None);
    assert_eq!(reply.body["created"], 1, "{}", reply.text);
    assert_eq!(reply.body["updated"], 2, "{}", reply.text);
    let ada = &all_contacts(&w, "&email=ada@example.com").await[0];
    assert_eq!(ada["company"], "Analytical Engines");
    assert_eq!(
        ada["first_name"], "Ada",
        "empty cells keep the stored value"
    );
    assert_eq!(ada["version"], 2);
    let grace = &all_contacts(&w, "&email=grace@example.com").await[0];
    assert_eq!(grace["attributes"], json!({ "Lead source": "web" }));
    let reply = import(&w, &w.owner, "?on_duplicate=update", again.as_bytes()).await;
    reply.expect(200, None);
    assert_eq!(reply.body["created"], 0);
    assert_eq!(reply.body["updated"], 0);
    assert_eq!(reply.body["unchanged"], 3);

    // A fetched import reads the same.
    let id = reply.body["id"].as_str().unwrap();
    let fetched = w
        .owner
        .get(&format!("{}/imports/{id}", contacts_path(&w)))
        .await;
    fetched.expect(200, None);
    assert_eq!(fetched.body, reply.body);
}

#[tokio::test]
async fn imports_read_windows_1252_semicolons_and_multipart_forms() {
    let w = world().await;
    // "Renée Müller" and "Zoë" in Windows-1252, as Excel writes them, with semicolons.
    let mut csv = b"Vorname;Name;E-Mail;Firma\r\n".to_vec();
    csv.extend_from_slice(b"Ren\xe9e;Ren\xe9e M\xfcller;renee@example.com;Caf\xe9 \x80 GmbH\r\n");
    let reply = import(&w, &w.owner, "", &csv).await;
    reply.expect(200, None);
    assert_eq!(reply.body["encoding"], "windows-1252");
    assert_eq!(reply.body["created"], 1, "{}", reply.text);
    let renee = &all_contacts(&w, "&email=renee@example.com").await[0];
    assert_eq!(renee["first_name"], "Renée");
    assert_eq!(renee["last_name"], "Müller");
    assert_eq!(renee["company"], "Café € GmbH");
    assert_eq!(renee["attributes"], json!({}));

    let boundary = "----a2v2test";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
         filename=\"people.csv\"\r\nContent-Type: text/csv\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice("Email,Name\r\nzoe@example.com,Zoë\r\n".as_bytes());
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let reply = raw(
        &w.owner,
        Method::POST,
        &format!("{}/import", contacts_path(&w)),
        &[],
        Some((&content_type, body)),
    )
    .await;
    reply.expect(200, None);
    assert_eq!(reply.body["created"], 1, "{}", reply.text);
    let missing_part = raw(
        &w.owner,
        Method::POST,
        &format!("{}/import", contacts_path(&w)),
        &[],
        Some((&content_type, format!("--{boundary}--\r\n").into_bytes())),
    )
    .await;
    missing_part.expect(422, Some("validation_failed"));
    assert!(missing_part.body["error"]["fields"]["file"].is_string());

    // The preview shows the mapping and the first rows, and imports nothing.
    let preview = raw(
        &w.owner,
        Method::POST,
        &format!("{}/import/preview", contacts_path(&w)),
        &[],
        Some((
            "text/csv",
            b"Mail,Cell\nnew@example.com,+1 415 555 0123\nbad,\n".to_vec(),
        )),
    )
    .await;
    preview.expect(200, None);
    assert_eq!(preview.body["total_rows"], 2);
    assert_eq!(preview.body["columns"][1]["field"], "phone");
    assert_eq!(
        preview.body["rows"][0]["values"]["email"],
        "new@example.com"
    );
    assert!(all_contacts(&w, "&email=new@example.com").await.is_empty());
}

#[tokio::test]
async fn bad_imports_are_refused_with_the_contract_errors() {
    let w = world_with(&["--max-upload-bytes", "2000"]).await;
    let path = format!("{}/import", contacts_path(&w));
    let big = format!("Email\n{}", "someone@example.com\n".repeat(200));
    import(&w, &w.owner, "", big.as_bytes())
        .await
        .expect(413, Some("payload_too_large"));
    raw(
        &w.owner,
        Method::POST,
        &path,
        &[],
        Some(("application/json", b"{}".to_vec())),
    )
    .await
    .expect(415, Some("unsupported_media_type"));
    let empty = import(&w, &w.owner, "", b"").await;
    empty.expect(422, Some("validation_failed"));
    assert!(empty.body["error"]["fields"]["file"].is_string());
    let nobody = import(&w, &w.owner, "", b"Score,Source\n1,web\n").await;
    nobody.expect(422, Some("validation_failed"));
    import(&w, &w.owner, "?on_duplicate=merge", b"Email\na@b.co\n")
        .await
        .expect(400, Some("bad_request"));
    import(&w, &w.owner, "?colour=red", b"Email\na@b.co\n")
        .await
        .expect(400, Some("bad_request"));
    raw(
        &w.owner,
        Method::POST,
        "/api/agents/agt_missing/contacts/import",
        &[],
        Some(("text/csv", b"Email\na@b.co\n".to_vec())),
    )
    .await
    .expect(404, Some("not_found"));
    w.owner
        .get(&format!("{}/imports/imp_missing", contacts_path(&w)))
        .await
        .expect(404, Some("not_found"));
    // A quote that is never closed: the rows before it are imported, the rest reported.
    let reply = import(
        &w,
        &w.owner,
        "",
        b"Email,Notes\na@b.co,fine\nc@d.co,\"open\ne@f.co,x\n",
    )
    .await;
    reply.expect(200, None);
    assert_eq!(reply.body["created"], 1, "{}", reply.text);
    assert_eq!(reply.body["skipped"][0]["row"], 2, "{}", reply.text);
    assert!(all_contacts(&w, "").await.len() == 1);
}

/// A 10,000-row file with 50 bad rows: imported in the background with progress, exactly
/// those 50 reported; imported again, nothing new is created.
#[tokio::test]
async fn a_large_import_runs_in_the_background_and_is_idempotent_by_email() {
    let w = world().await;
    let mut csv = String::from("First Name,Last Name,Email,Phone,Company\n");
    let mut bad_rows = Vec::new();
    for i in 1..=10_000u64 {
        if i % 200 == 0 {
            bad_rows.push(i);
            csv.push_str(&format!("Bad,{i},bad-email-{i},,\n"));
        } else {
            csv.push_str(&format!(
                "Person,{i},p{i}@example.com,415-555-{:04},Co {}\n",
                i,
                i % 7
            ));
        }
    }
    let reply = import(&w, &w.owner, "", csv.as_bytes()).await;
    reply.expect(202, None);
    let id = reply.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        reply.headers["location"].to_str().unwrap(),
        format!("{}/imports/{id}", contacts_path(&w))
    );
    assert_eq!(reply.body["total_rows"], 10_000);
    let done = finished(&w, &id).await;
    assert_eq!(done["state"], "done", "{done}");
    assert_eq!(done["created"], 9_950);
    assert_eq!(done["processed_rows"], 10_000);
    let skipped: Vec<u64> = done["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["row"].as_u64().unwrap())
        .collect();
    assert_eq!(skipped, bad_rows);
    assert_eq!(all_contacts(&w, "").await.len(), 9_950);

    let reply = import(&w, &w.owner, "", csv.as_bytes()).await;
    reply.expect(202, None);
    let again = finished(&w, reply.body["id"].as_str().unwrap()).await;
    assert_eq!(again["state"], "done", "{again}");
    assert_eq!(again["created"], 0);
    assert_eq!(again["skipped"].as_array().unwrap().len(), 10_000);
    assert_eq!(all_contacts(&w, "").await.len(), 9_950);
}

#[tokio::test]
async fn an_export_reads_back_as_an_import() {
    let w = world().await;
    let path = contacts_path(&w);
    for body in [
        json!({ "first_name": "Ada", "email": "ada@example.com", "phone": "+442079460958",
                "company": "=cmd()", "tags": ["vip", "math"],
                "attributes": { "score": 3, "source": "fair" } }),
        json!({ "first_name": "Grace", "notes": "line one\nline, two \"quoted\"", "tags": ["vip"] }),
        json!({ "last_name": "Solo", "company": "Acme" }),
    ] {
        w.owner.post(&path, body).await.expect(201, None);
    }
    let export = raw(
        &w.owner,
        Method::GET,
        &format!("{path}/export?tag=vip"),
        &[],
        None,
    )
    .await;
    export.expect(200, None);
    assert!(
        export.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(export.text.contains("'=cmd()"), "{}", export.text);
    let jsonl = raw(
        &w.owner,
        Method::GET,
        &format!("{path}/export?format=jsonl"),
        &[],
        None,
    )
    .await;
    assert_eq!(jsonl.text.lines().count(), 3);
    raw(
        &w.owner,
        Method::GET,
        &format!("{path}/export?format=xml"),
        &[],
        None,
    )
    .await
    .expect(400, Some("bad_request"));

    let copy = w.owner.create_agent("Copy").await;
    let reply = raw(
        &w.owner,
        Method::POST,
        &format!("/api/agents/{copy}/contacts/import"),
        &[],
        Some(("text/csv", export.text.clone().into_bytes())),
    )
    .await;
    reply.expect(200, None);
    assert_eq!(reply.body["created"], 2, "{}", reply.text);
    let copied = w
        .owner
        .get(&format!(
            "/api/agents/{copy}/contacts?email=ada@example.com"
        ))
        .await;
    let ada = &copied.body["data"][0];
    assert_eq!(ada["phone_e164"], "+442079460958");
    assert_eq!(ada["tags"], json!(["vip", "math"]));
    assert_eq!(ada["attributes"], json!({ "score": 3, "source": "fair" }));
    assert_eq!(ada["company"], "=cmd()");
    let grace = w
        .owner
        .get(&format!("/api/agents/{copy}/contacts?q=grace"))
        .await;
    assert_eq!(
        grace.body["data"][0]["notes"],
        "line one\nline, two \"quoted\""
    );
    assert_eq!(audit_events(&w, "contact.exported").await.len(), 2);
}

fn cli(server: &Server, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_a2v2"))
        .arg("contacts")
        .args(args)
        .arg("--data-dir")
        .arg(server.dir.path())
        .arg("--database")
        .arg(&server.database_url)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run a2v2 contacts")
}

#[tokio::test]
async fn contacts_are_imported_and_exported_on_the_command_line() {
    let w = world().await;
    let file = w.server.dir.path().join("people.csv");
    std::fs::write(
        &file,
        "Email,Full Name,Mobile\nada@example.com,Ada Lovelace,+44 20 7946 0958\nbad,Bad Row,\n",
    )
    .unwrap();
    let output = cli(
        &w.server,
        &["import", "--agent", &w.agent, file.to_str().unwrap()],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.contains("created 1, updated 0, unchanged 0, skipped 1"),
        "{stdout}"
    );
    assert!(stdout.contains("row 2: email "), "{stdout}");
    assert!(
        stderr.contains("Full Name → first_name + last_name"),
        "{stderr}"
    );
    assert!(stderr.contains("progress: 2/2 rows"), "{stderr}");

    let ada = &all_contacts(&w, "").await[0];
    assert_eq!(ada["last_name"], "Lovelace");
    assert_eq!(
        ada["created_by"],
        json!({ "type": "system", "id": null, "label": "cli" })
    );
    let events = audit_events(&w, "contact.imported").await;
    assert_eq!(events[0]["actor"]["label"], "cli");

    let again = cli(
        &w.server,
        &[
            "import",
            "--agent",
            &w.agent,
            "--json",
            "--on-duplicate",
            "update",
            file.to_str().unwrap(),
        ],
    );
    assert!(again.status.success());
    let report: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["created"], 0);
    assert_eq!(report["unchanged"], 1);

    let export = cli(
        &w.server,
        &["export", "--agent", &w.agent, "--format", "jsonl"],
    );
    assert!(export.status.success());
    let line: Value =
        serde_json::from_slice(export.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["email"], "ada@example.com");

    let missing = cli(
        &w.server,
        &["import", "--agent", "agt_missing", file.to_str().unwrap()],
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no agent with id agt_missing"));
}
