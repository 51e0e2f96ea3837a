//! Contacts over `/v1` (API keys) and the dashboard's read-only views (SPEC §3, §4).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Client, Reply, Server};

const ALL: &[&str] = &[
    "contacts:create",
    "contacts:read",
    "contacts:update",
    "contacts:delete",
];

struct World {
    server: Server,
    owner: Client,
    agent: String,
    key: String,
}

async fn world() -> World {
    let server = Server::start().await;
    let owner = server.setup().await;
    let agent = owner.create_agent("Sales bot").await;
    let (_, key) = owner.create_key(&agent, ALL).await;
    World {
        server,
        owner,
        agent,
        key,
    }
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

/// A `/v1` request with extra headers and a raw body (sent as `application/json`).
async fn send(
    server: &Server,
    method: Method,
    path: &str,
    key: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Reply {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", server.url))
        .bearer_auth(key);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    read(request.send().await.expect("request")).await
}

fn bytes(value: &Value) -> Option<Vec<u8>> {
    Some(serde_json::to_vec(value).unwrap())
}

async fn create(w: &World, body: Value) -> Value {
    create_as(w, &w.key, body).await
}

async fn create_as(w: &World, key: &str, body: Value) -> Value {
    let reply = w
        .server
        .v1(Method::POST, "/v1/contacts", key, Some(body))
        .await;
    reply.expect(201, None);
    reply.body
}

/// A key with every permission of a second agent of the same workspace.
async fn other_agents_key(w: &World) -> String {
    let agent = w.owner.create_agent("Other bot").await;
    w.owner.create_key(&agent, ALL).await.1
}

fn id(contact: &Value) -> String {
    contact["id"].as_str().expect("contact id").to_owned()
}

fn etag(reply: &Reply) -> String {
    reply.headers["etag"].to_str().unwrap().to_owned()
}

/// Every id the list returns, walking all pages.
async fn all_ids(w: &World, query: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/contacts?limit=200{query}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let reply = w.server.v1(Method::GET, &path, &w.key, None).await;
        reply.expect(200, None);
        ids.extend(reply.body["data"].as_array().unwrap().iter().map(id));
        match reply.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
}

/// Audit events of `action`, oldest first, flattened for easy comparison.
async fn audit_events(
    server: &Server,
    action: &str,
) -> Option<Vec<BTreeMap<String, Option<String>>>> {
    let owner = server
        .sign_in(crate::harness::OWNER_EMAIL, crate::harness::OWNER_PASSWORD)
        .await;
    let reply = owner
        .get(&format!("/api/audit-logs?action={action}&limit=200"))
        .await;
    reply.expect(200, None);
    let text = |value: &Value| value.as_str().map(str::to_owned);
    let mut events: Vec<BTreeMap<String, Option<String>>> = reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| {
            BTreeMap::from([
                ("actor_type".to_owned(), text(&event["actor"]["type"])),
                ("actor_id".to_owned(), text(&event["actor"]["id"])),
                ("actor_label".to_owned(), text(&event["actor"]["label"])),
                ("agent_id".to_owned(), text(&event["agent_id"])),
                ("target_type".to_owned(), text(&event["target"]["type"])),
                ("target_id".to_owned(), text(&event["target"]["id"])),
                ("target_label".to_owned(), text(&event["target"]["label"])),
                ("ip".to_owned(), text(&event["ip"])),
                ("details".to_owned(), Some(event["details"].to_string())),
            ])
        })
        .collect();
    events.reverse();
    Some(events)
}

#[tokio::test]
async fn create_returns_the_contact_with_location_and_etag() {
    let w = world().await;
    let reply = w
        .server
        .v1(
            Method::POST,
            "/v1/contacts",
            &w.key,
            Some(json!({
                "first_name": "Ada",
                "last_name": "Lovelace 🦀",
                "email": "Ada@Example.com",
                "phone": "+44 20 7946 0958",
                "company": "Analytical Engines",
                "job_title": "Programmer",
                "notes": "Met at the exhibition.\nLikes 🚀 and ünïcödé.",
                "tags": ["vip", "vip", "math"],
                "attributes": {"score": 9.5, "active": true, "tier": "gold"},
            })),
        )
        .await;
    reply.expect(201, None);
    let contact = reply.body.clone();
    let contact_id = id(&contact);
    assert!(contact_id.starts_with("ct_"));
    assert_eq!(
        reply.headers["location"].to_str().unwrap(),
        format!("/v1/contacts/{contact_id}")
    );
    assert_eq!(etag(&reply), "\"1\"");
    assert_eq!(contact["version"], 1);
    assert_eq!(contact["phone_e164"], "+442079460958");
    assert_eq!(contact["email"], "Ada@Example.com");
    assert_eq!(contact["tags"], json!(["vip", "math"]));
    assert_eq!(
        contact["attributes"],
        json!({"score": 9.5, "active": true, "tier": "gold"})
    );
    assert!(contact["created_at"].as_str().unwrap().ends_with('Z'));

    let got = w
        .server
        .v1(
            Method::GET,
            &format!("/v1/contacts/{contact_id}"),
            &w.key,
            None,
        )
        .await;
    got.expect(200, None);
    assert_eq!(got.body, contact, "emoji and text round-trip unchanged");
    assert_eq!(etag(&got), "\"1\"");

    // A national number is kept as written, without E.164.
    let national = create(&w, json!({"phone": "(415) 555-2671"})).await;
    assert_eq!(national["phone"], "(415) 555-2671");
    assert_eq!(national["phone_e164"], Value::Null);
    assert_eq!(national["tags"], json!([]));
    assert_eq!(national["attributes"], json!({}));

    if let Some(events) = audit_events(&w.server, "contact.created").await {
        assert_eq!(events.len(), 2);
        let event = &events[0];
        assert_eq!(event["actor_type"].as_deref(), Some("api_key"));
        assert_eq!(event["actor_label"].as_deref(), Some("test key"));
        assert_eq!(event["agent_id"].as_deref(), Some(w.agent.as_str()));
        assert_eq!(event["target_type"].as_deref(), Some("contact"));
        assert_eq!(event["target_id"].as_deref(), Some(contact_id.as_str()));
        assert_eq!(event["target_label"].as_deref(), Some("Ada Lovelace 🦀"));
        assert_eq!(event["ip"].as_deref(), Some("127.0.0.1"));
    }
}

#[tokio::test]
async fn bad_input_is_refused_whole_and_stores_nothing() {
    let w = world().await;
    create(&w, json!({"first_name": "Existing"})).await;
    let post = |body: Value| {
        w.server
            .v1(Method::POST, "/v1/contacts", &w.key, Some(body))
    };

    let reply = post(json!({"first_name": "A", "favourite_colour": "blue", "id": "ct_x"})).await;
    reply.expect(422, Some("validation_failed"));
    assert_eq!(
        reply.body["error"]["fields"]["favourite_colour"],
        "is not a known field"
    );
    assert!(reply.body["error"]["fields"]["id"].is_string());

    // Wrong types, every error at once.
    let reply = post(json!({
        "first_name": 42,
        "last_name": ["x"],
        "email": "not-an-email",
        "phone": "call me maybe",
        "tags": "vip",
        "attributes": {"nested": {"a": 1}},
    }))
    .await;
    reply.expect(422, Some("validation_failed"));
    let fields = reply.body["error"]["fields"].as_object().unwrap();
    for name in [
        "first_name",
        "last_name",
        "email",
        "phone",
        "tags",
        "attributes.nested",
    ] {
        assert!(fields.contains_key(name), "{name} missing in {fields:?}");
    }

    // Nobody to name.
    let reply = post(json!({"company": "Acme", "first_name": "   "})).await;
    reply.expect(422, Some("validation_failed"));
    assert!(reply.body["error"]["fields"]["email"].is_string());

    // Control characters, except newlines and tabs in notes.
    post(json!({"first_name": "A\u{0007}"}))
        .await
        .expect(422, Some("validation_failed"));
    post(json!({"first_name": "A", "notes": "bell\u{0007}"}))
        .await
        .expect(422, Some("validation_failed"));
    post(json!({"first_name": "A", "tags": ["ok", "x".repeat(256)]}))
        .await
        .expect(422, Some("validation_failed"));
    post(json!({"first_name": "A", "tags": (0..51).map(|i| i.to_string()).collect::<Vec<_>>()}))
        .await
        .expect(422, Some("validation_failed"));
    post(json!({"first_name": "x".repeat(256)}))
        .await
        .expect(422, Some("validation_failed"));

    // 10 MB of notes hits the 1 MiB body limit.
    let huge = json!({"first_name": "A", "notes": "n".repeat(10 * 1024 * 1024)});
    post(huge).await.expect(413, Some("payload_too_large"));
    // Notes just over their own limit are a validation error.
    post(json!({"first_name": "A", "notes": "n".repeat(10_001)}))
        .await
        .expect(422, Some("validation_failed"));

    // Not JSON, not UTF-8, not an object.
    let raw = |body: &[u8]| {
        send(
            &w.server,
            Method::POST,
            "/v1/contacts",
            &w.key,
            &[],
            Some(body.to_vec()),
        )
    };
    raw(b"{\"first_name\": \"\xff\xfe\"}")
        .await
        .expect(400, Some("bad_request"));
    raw(b"{\"first_name\": ")
        .await
        .expect(400, Some("bad_request"));
    raw(b"[1, 2]").await.expect(400, Some("bad_request"));
    let no_type = reqwest::Client::new()
        .post(format!("{}/v1/contacts", w.server.url))
        .bearer_auth(&w.key)
        .body("{\"first_name\": \"A\"}")
        .send()
        .await
        .unwrap();
    read(no_type)
        .await
        .expect(415, Some("unsupported_media_type"));

    assert_eq!(all_ids(&w, "").await.len(), 1, "nothing stored partially");
}

#[tokio::test]
async fn emails_are_unique_per_agent_case_insensitively() {
    let w = world().await;
    let first = create(&w, json!({"email": "Sam@Example.com"})).await;
    let reply = w
        .server
        .v1(
            Method::POST,
            "/v1/contacts",
            &w.key,
            Some(json!({"email": "sam@EXAMPLE.com"})),
        )
        .await;
    reply.expect(409, Some("contact_exists"));
    assert_eq!(reply.body["error"]["existing_id"], first["id"]);

    // Contacts without email may repeat.
    create(&w, json!({"first_name": "No mail"})).await;
    create(&w, json!({"first_name": "No mail either", "email": null})).await;

    // Changing another contact to a taken email is refused too.
    let other = create(&w, json!({"email": "other@example.com"})).await;
    let reply = w
        .server
        .v1(
            Method::PATCH,
            &format!("/v1/contacts/{}", id(&other)),
            &w.key,
            Some(json!({"email": "SAM@example.com"})),
        )
        .await;
    reply.expect(409, Some("contact_exists"));
    assert_eq!(reply.body["error"]["existing_id"], first["id"]);

    // Another agent may hold the same email.
    let key_b = other_agents_key(&w).await;
    create_as(&w, &key_b, json!({"email": "sam@example.com"})).await;
    assert_eq!(all_ids(&w, "").await.len(), 4);
}

#[tokio::test]
async fn patch_updates_partially_and_honours_if_match() {
    let w = world().await;
    let contact = create(
        &w,
        json!({"first_name": "Grace", "last_name": "Hopper", "company": "Navy", "tags": ["a"]}),
    )
    .await;
    let path = format!("/v1/contacts/{}", id(&contact));
    let patch = |headers: Vec<(&'static str, String)>, body: Value| {
        let path = path.clone();
        let key = w.key.clone();
        let server = &w.server;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            send(server, Method::PATCH, &path, &key, &headers, bytes(&body)).await
        }
    };

    let reply = patch(
        vec![],
        json!({"company": null, "job_title": "Rear Admiral"}),
    )
    .await;
    reply.expect(200, None);
    assert_eq!(reply.body["company"], Value::Null);
    assert_eq!(reply.body["job_title"], "Rear Admiral");
    assert_eq!(reply.body["first_name"], "Grace", "untouched fields stay");
    assert_eq!(reply.body["version"], 2);
    assert_eq!(etag(&reply), "\"2\"");

    // A stale If-Match changes nothing.
    let reply = patch(
        vec![("if-match", "\"1\"".into())],
        json!({"first_name": "Nope"}),
    )
    .await;
    reply.expect(412, Some("precondition_failed"));
    let got = w.server.v1(Method::GET, &path, &w.key, None).await;
    assert_eq!(got.body["first_name"], "Grace");
    assert_eq!(got.body["version"], 2);

    // A weak tag never matches.
    patch(
        vec![("if-match", "W/\"2\"".into())],
        json!({"notes": "weak"}),
    )
    .await
    .expect(412, Some("precondition_failed"));
    // Accepted spellings of the current version.
    for (i, spelling) in ["\"2\"", "3", "\"1\", \"4\"", "*"].into_iter().enumerate() {
        let reply = patch(
            vec![("if-match", spelling.into())],
            json!({"notes": format!("edit {i}")}),
        )
        .await;
        reply.expect(200, None);
        assert_eq!(reply.body["version"], 3 + i as i64, "{spelling}");
    }

    // Sending the same values again is not a change.
    let reply = patch(vec![], json!({"notes": "edit 3"})).await;
    reply.expect(200, None);
    assert_eq!(reply.body["version"], 6);

    // Clearing every identifying field is refused.
    let reply = patch(vec![], json!({"first_name": null, "last_name": ""})).await;
    reply.expect(422, Some("validation_failed"));
    let reply = patch(vec![], json!({"version": 99, "colour": 1})).await;
    reply.expect(422, Some("validation_failed"));
    assert_eq!(
        reply.body["error"]["fields"]["colour"],
        "is not a known field"
    );

    let reply = patch(
        vec![],
        json!({"tags": ["b", "c"], "phone": "+1 415 555 2671"}),
    )
    .await;
    reply.expect(200, None);
    assert_eq!(reply.body["phone_e164"], "+14155552671");
    assert_eq!(reply.body["version"], 7);
    let tagged = all_ids(&w, "&tag=b").await;
    assert_eq!(tagged, vec![id(&contact)]);
    assert!(all_ids(&w, "&tag=a").await.is_empty());

    if let Some(events) = audit_events(&w.server, "contact.updated").await {
        assert_eq!(events.len(), 6);
        let details: Value =
            serde_json::from_str(events[0]["details"].as_deref().unwrap()).unwrap();
        assert_eq!(details["changed"], json!(["company", "job_title"]));
        assert_eq!(events[0]["target_label"].as_deref(), Some("Grace Hopper"));
    }
}

#[tokio::test]
async fn concurrent_patches_with_the_same_if_match_have_one_winner() {
    let w = world().await;
    let contact = create(&w, json!({"first_name": "Start"})).await;
    let path = format!("/v1/contacts/{}", id(&contact));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let url = format!("{}{path}", w.server.url);
        let key = w.key.clone();
        tasks.push(tokio::spawn(async move {
            let response = reqwest::Client::new()
                .patch(url)
                .bearer_auth(key)
                .header("if-match", "\"1\"")
                .json(&json!({"first_name": format!("Writer {i}"), "tags": [format!("t{i}")]}))
                .send()
                .await
                .unwrap();
            (i, read(response).await)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (i, reply) = task.await.unwrap();
        match reply.status {
            StatusCode::OK => winners.push((i, reply.body)),
            StatusCode::PRECONDITION_FAILED => {
                reply.expect(412, Some("precondition_failed"));
            }
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one PATCH may win");
    let (winner, written) = &winners[0];
    let got = w.server.v1(Method::GET, &path, &w.key, None).await;
    assert_eq!(&got.body, written);
    assert_eq!(got.body["first_name"], format!("Writer {winner}"));
    assert_eq!(got.body["version"], 2);
    assert_eq!(all_ids(&w, &format!("&tag=t{winner}")).await.len(), 1);
}

#[tokio::test]
async fn concurrent_patches_without_if_match_all_apply() {
    let w = world().await;
    let contact = create(&w, json!({"first_name": "Start"})).await;
    let path = format!("/v1/contacts/{}", id(&contact));
    let mut tasks = Vec::new();
    for i in 0..10 {
        let url = format!("{}{path}", w.server.url);
        let key = w.key.clone();
        tasks.push(tokio::spawn(async move {
            let response = reqwest::Client::new()
                .patch(url)
                .bearer_auth(key)
                .json(&json!({"notes": format!("note {i}")}))
                .send()
                .await
                .unwrap();
            read(response).await
        }));
    }
    for task in tasks {
        task.await.unwrap().expect(200, None);
    }
    let got = w.server.v1(Method::GET, &path, &w.key, None).await;
    assert_eq!(got.body["version"], 11, "no update was lost");
}

#[tokio::test]
async fn another_agents_contacts_do_not_exist() {
    let w = world().await;
    let mine = create(&w, json!({"first_name": "Mine"})).await;
    let key_b = other_agents_key(&w).await;
    let theirs = create_as(&w, &key_b, json!({"first_name": "Theirs"})).await;
    let their_path = format!("/v1/contacts/{}", id(&theirs));
    // Their own read first, so that a cached copy exists when the other agent asks.
    w.server
        .v1(Method::GET, &their_path, &key_b, None)
        .await
        .expect(200, None);
    let missing = "/v1/contacts/ct_0190000000007000800000000000000";

    for path in [their_path.as_str(), missing] {
        let get = w.server.v1(Method::GET, path, &w.key, None).await;
        get.expect(404, Some("not_found"));
        let patch = w
            .server
            .v1(
                Method::PATCH,
                path,
                &w.key,
                Some(json!({"first_name": "Hijacked"})),
            )
            .await;
        patch.expect(404, Some("not_found"));
        let delete = w.server.v1(Method::DELETE, path, &w.key, None).await;
        delete.expect(404, Some("not_found"));
        assert_eq!(
            get.body["error"]["message"], delete.body["error"]["message"],
            "indistinguishable from a missing contact"
        );
    }
    assert_eq!(all_ids(&w, "").await, vec![id(&mine)]);
    let theirs_now = w.server.v1(Method::GET, &their_path, &key_b, None).await;
    theirs_now.expect(200, None);
    assert_eq!(theirs_now.body["first_name"], "Theirs");
    assert_eq!(theirs_now.body["version"], 1);
}

/// Many reads at once (on PostgreSQL they share statements): each key sees exactly its own
/// agent's contacts, repeated ids included, and another agent's are missing.
#[tokio::test]
async fn concurrent_reads_answer_each_agent_with_its_own_contacts() {
    let w = world().await;
    let key_b = other_agents_key(&w).await;
    let mut contacts = Vec::new();
    for n in 0..8 {
        let mine = create(&w, json!({"first_name": format!("Mine {n}")})).await;
        let theirs = create_as(&w, &key_b, json!({"first_name": format!("Theirs {n}")})).await;
        contacts.push((
            id(&mine),
            format!("Mine {n}"),
            id(&theirs),
            format!("Theirs {n}"),
        ));
    }
    let http = reqwest::Client::new();
    let mut reads = Vec::new();
    for round in 0..25 {
        for (mine, mine_name, theirs, theirs_name) in &contacts {
            // Every (key, contact) pair, in a different order each round.
            let pairs = [
                (w.key.clone(), mine.clone(), Some(mine_name.clone())),
                (w.key.clone(), theirs.clone(), None),
                (key_b.clone(), theirs.clone(), Some(theirs_name.clone())),
                (key_b.clone(), mine.clone(), None),
            ];
            for (key, contact, expected) in pairs.into_iter().cycle().skip(round % 4).take(4) {
                let url = format!("{}/v1/contacts/{contact}", w.server.url);
                let http = http.clone();
                reads.push(tokio::spawn(async move {
                    let reply = read(
                        http.get(url)
                            .bearer_auth(key)
                            .send()
                            .await
                            .expect("request"),
                    )
                    .await;
                    (reply, contact, expected)
                }));
            }
        }
    }
    assert_eq!(reads.len(), 800);
    for read in reads {
        let (reply, contact, expected) = read.await.unwrap();
        match expected {
            Some(name) => {
                reply.expect(200, None);
                assert_eq!(reply.body["id"], contact.as_str());
                assert_eq!(reply.body["first_name"], name.as_str());
            }
            None => {
                reply.expect(404, Some("not_found"));
            }
        }
    }
}

#[tokio::test]
async fn reads_after_writes_see_the_write() {
    let w = world().await;
    let contact = create(&w, json!({"first_name": "Fresh"})).await;
    let path = format!("/v1/contacts/{}", id(&contact));
    for round in 1..=5 {
        let before = w.server.v1(Method::GET, &path, &w.key, None).await;
        before.expect(200, None);
        assert_eq!(etag(&before), format!("\"{round}\""));
        assert_eq!(before.headers["content-type"], "application/json");
        let patched = w
            .server
            .v1(
                Method::PATCH,
                &path,
                &w.key,
                Some(json!({"notes": format!("round {round}")})),
            )
            .await;
        patched.expect(200, None);
        let after = w.server.v1(Method::GET, &path, &w.key, None).await;
        assert_eq!(after.body, patched.body);
        assert_eq!(etag(&after), format!("\"{}\"", round + 1));
    }
    w.server
        .v1(Method::DELETE, &path, &w.key, None)
        .await
        .expect(204, None);
    w.server
        .v1(Method::GET, &path, &w.key, None)
        .await
        .expect(404, Some("not_found"));
}

#[tokio::test]
async fn delete_removes_the_contact() {
    let w = world().await;
    let contact = create(&w, json!({"email": "gone@example.com", "tags": ["x"]})).await;
    let path = format!("/v1/contacts/{}", id(&contact));
    let stale = send(
        &w.server,
        Method::DELETE,
        &path,
        &w.key,
        &[("if-match", "\"7\"")],
        None,
    )
    .await;
    stale.expect(412, Some("precondition_failed"));
    let reply = w.server.v1(Method::DELETE, &path, &w.key, None).await;
    reply.expect(204, None);
    w.server
        .v1(Method::GET, &path, &w.key, None)
        .await
        .expect(404, Some("not_found"));
    w.server
        .v1(Method::DELETE, &path, &w.key, None)
        .await
        .expect(404, Some("not_found"));
    assert!(all_ids(&w, "&tag=x").await.is_empty());
    // The email is free again.
    create(&w, json!({"email": "gone@example.com"})).await;
    if let Some(events) = audit_events(&w.server, "contact.deleted").await {
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0]["target_label"].as_deref(),
            Some("gone@example.com")
        );
    }
}

#[tokio::test]
async fn pagination_sees_every_existing_contact_once_while_others_are_added() {
    let w = world().await;
    let mut existing = BTreeSet::new();
    for i in 0..45 {
        existing.insert(id(&create(&w, json!({"first_name": format!("P{i}")})).await));
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/v1/contacts?limit=7".to_owned();
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let reply = w.server.v1(Method::GET, &path, &w.key, None).await;
        reply.expect(200, None);
        assert!(reply.body["data"].as_array().unwrap().len() <= 7);
        seen.extend(reply.body["data"].as_array().unwrap().iter().map(id));
        // Insert while walking.
        create(&w, json!({"first_name": format!("New {pages}")})).await;
        pages += 1;
        assert!(pages < 100, "pagination does not end");
        match reply.body["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(reply.body["has_more"], true);
                cursor = Some(next.to_owned());
            }
            None => {
                assert_eq!(reply.body["has_more"], false);
                break;
            }
        }
    }
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no contact twice");
    assert!(
        existing.is_subset(&unique),
        "every pre-existing contact seen"
    );
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, seen, "ordered by id");

    for bad in [
        "limit=0",
        "limit=201",
        "limit=x",
        "cursor=%27%20OR%201%3D1",
        "colour=red",
        "updated_since=yesterday",
    ] {
        let reply = w
            .server
            .v1(Method::GET, &format!("/v1/contacts?{bad}"), &w.key, None)
            .await;
        reply.expect(400, Some("bad_request"));
    }
    let reply = w.server.v1(Method::GET, "/v1/contacts", &w.key, None).await;
    assert_eq!(
        reply.body["data"].as_array().unwrap().len(),
        50,
        "default limit"
    );
}

#[tokio::test]
async fn list_filters() {
    let w = world().await;
    let ada = create(
        &w,
        json!({"first_name": "Ada", "last_name": "Lovelace", "email": "ada@engines.io", "tags": ["vip"]}),
    )
    .await;
    let grace = create(
        &w,
        json!({"first_name": "Grace", "company": "100% Navy_Corp", "tags": ["vip", "navy"]}),
    )
    .await;
    let alan = create(
        &w,
        json!({"first_name": "Alan", "email": "ALAN@turing.org"}),
    )
    .await;
    let [ada, grace, alan] = [id(&ada), id(&grace), id(&alan)];

    assert_eq!(all_ids(&w, "&q=LOVE").await, vec![ada.clone()]);
    assert_eq!(
        all_ids(&w, "&q=ada%20love").await,
        vec![ada.clone()],
        "full name"
    );
    assert_eq!(all_ids(&w, "&q=engines").await, vec![ada.clone()], "email");
    assert_eq!(all_ids(&w, "&q=navy").await, vec![grace.clone()], "company");
    assert_eq!(
        all_ids(&w, "&q=100%25").await,
        vec![grace.clone()],
        "literal %"
    );
    assert_eq!(
        all_ids(&w, "&q=y_c").await,
        vec![grace.clone()],
        "literal _"
    );
    assert!(all_ids(&w, "&q=%25%25%25").await.is_empty());
    assert!(
        all_ids(&w, "&q=a_a").await.is_empty(),
        "_ is not a wildcard"
    );
    assert_eq!(
        all_ids(&w, "&email=alan@TURING.org").await,
        vec![alan.clone()]
    );
    assert!(
        all_ids(&w, "&email=alan").await.is_empty(),
        "email is exact"
    );
    assert_eq!(
        all_ids(&w, "&tag=vip").await,
        vec![ada.clone(), grace.clone()]
    );
    assert_eq!(all_ids(&w, "&tag=vip&q=grace").await, vec![grace.clone()]);
    assert!(
        all_ids(&w, "&tag=VIP").await.is_empty(),
        "tags match exactly"
    );

    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let since = w
        .server
        .v1(Method::GET, &format!("/v1/contacts/{alan}"), &w.key, None)
        .await;
    let mark = since.body["updated_at"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    w.server
        .v1(
            Method::PATCH,
            &format!("/v1/contacts/{ada}"),
            &w.key,
            Some(json!({"notes": "x"})),
        )
        .await
        .expect(200, None);
    let encode = |t: &str| t.replace('+', "%2B").replace(':', "%3A");
    assert_eq!(
        all_ids(&w, &format!("&updated_since={}", encode(&now))).await,
        vec![ada.clone()]
    );
    assert_eq!(
        all_ids(&w, &format!("&updated_since={}", encode(&mark))).await,
        vec![ada.clone(), alan.clone()]
    );
    assert_eq!(
        all_ids(&w, "&updated_since=2000-01-01T00%3A00%3A00%2B02%3A00")
            .await
            .len(),
        3
    );
}

#[tokio::test]
async fn idempotency_keys_replay_the_first_response() {
    let w = world().await;
    let body = br#"{"first_name": "Idem", "email": "idem@example.com", "tags": ["a", "b"]}"#;
    let same_reordered = br#"{"tags":["a","b"],"email":"idem@example.com","first_name":"Idem"}"#;
    let post = |key: &'static str, body: &[u8]| {
        let body = body.to_vec();
        let w = &w;
        async move {
            let headers = [("idempotency-key", key)];
            send(
                &w.server,
                Method::POST,
                "/v1/contacts",
                &w.key,
                &headers,
                Some(body),
            )
            .await
        }
    };
    let first = post("order-1", body).await;
    first.expect(201, None);
    let again = post("order-1", same_reordered).await;
    again.expect(201, None);
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers["location"], first.headers["location"]);
    assert_eq!(etag(&again), "\"1\"");
    assert_eq!(all_ids(&w, "").await.len(), 1, "nothing new created");

    let other = post("order-1", br#"{"first_name": "Different"}"#).await;
    other.expect(422, Some("validation_failed"));
    assert!(other.body["error"]["fields"]["idempotency_key"].is_string());
    assert!(
        other.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("different")
    );

    // Keys must be printable ASCII of at most 255 characters.
    let long: &'static str = Box::leak("k".repeat(256).into_boxed_str());
    post(long, br#"{"first_name": "X"}"#)
        .await
        .expect(400, Some("bad_request"));

    // A failed request stores nothing under its key.
    post("order-2", br#"{"email": "idem@example.com"}"#)
        .await
        .expect(409, Some("contact_exists"));
    post("order-2", br#"{"email": "second@example.com"}"#)
        .await
        .expect(201, None);

    // Keys are per agent.
    let key_b = other_agents_key(&w).await;
    let theirs = send(
        &w.server,
        Method::POST,
        "/v1/contacts",
        &key_b,
        &[("idempotency-key", "order-1")],
        Some(body.to_vec()),
    )
    .await;
    theirs.expect(201, None);
    assert_ne!(theirs.body["id"], first.body["id"]);
    assert_eq!(all_ids(&w, "").await.len(), 2);
}

#[tokio::test]
async fn concurrent_retries_with_one_idempotency_key_create_one_contact() {
    let w = world().await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let url = format!("{}/v1/contacts", w.server.url);
        let key = w.key.clone();
        tasks.push(tokio::spawn(async move {
            let response = reqwest::Client::new()
                .post(url)
                .bearer_auth(key)
                .header("idempotency-key", "retry-storm")
                .json(&json!({"email": "storm@example.com"}))
                .send()
                .await
                .unwrap();
            read(response).await
        }));
    }
    let mut ids = BTreeSet::new();
    for task in tasks {
        let reply = task.await.unwrap();
        reply.expect(201, None);
        ids.insert(id(&reply.body));
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(all_ids(&w, "").await.len(), 1);
}

#[tokio::test]
async fn each_route_needs_its_permission() {
    let w = world().await;
    let contact = create(&w, json!({"first_name": "Perm"})).await;
    let path = format!("/v1/contacts/{}", id(&contact));
    let (_, read_only) = w.owner.create_key(&w.agent, &["contacts:read"]).await;

    let reply = w
        .server
        .v1(
            Method::POST,
            "/v1/contacts",
            &read_only,
            Some(json!({"first_name": "X"})),
        )
        .await;
    reply.expect(403, Some("permission_denied"));
    assert_eq!(
        reply.body["error"]["required_permission"],
        "contacts:create"
    );
    assert_eq!(
        reply.body["error"]["granted_permissions"],
        json!(["contacts:read"])
    );

    let reply = w
        .server
        .v1(
            Method::PATCH,
            &path,
            &read_only,
            Some(json!({"first_name": "X"})),
        )
        .await;
    reply.expect(403, Some("permission_denied"));
    assert_eq!(
        reply.body["error"]["required_permission"],
        "contacts:update"
    );
    let reply = w.server.v1(Method::DELETE, &path, &read_only, None).await;
    reply.expect(403, Some("permission_denied"));
    assert_eq!(
        reply.body["error"]["required_permission"],
        "contacts:delete"
    );
    w.server
        .v1(Method::GET, &path, &read_only, None)
        .await
        .expect(200, None);
    w.server
        .v1(Method::GET, "/v1/contacts", &read_only, None)
        .await
        .expect(200, None);

    let (_, create_only) = w.owner.create_key(&w.agent, &["contacts:create"]).await;
    let reply = w.server.v1(Method::GET, &path, &create_only, None).await;
    reply.expect(403, Some("permission_denied"));
    assert_eq!(reply.body["error"]["required_permission"], "contacts:read");

    // A key with no permission cannot see whether the contact exists.
    let (_, documents_only) = w.owner.create_key(&w.agent, &["documents:read"]).await;
    let reply = w
        .server
        .v1(
            Method::GET,
            "/v1/contacts/ct_missing",
            &documents_only,
            None,
        )
        .await;
    reply.expect(403, Some("permission_denied"));
    w.server
        .v1(Method::GET, &path, "a2v2_bogus", None)
        .await
        .expect(401, Some("invalid_api_key"));
    let nothing = read(
        reqwest::get(format!("{}{path}", w.server.url))
            .await
            .unwrap(),
    )
    .await;
    nothing.expect(401, Some("missing_api_key"));
}

#[tokio::test]
async fn the_dashboard_reads_an_agents_contacts() {
    let w = world().await;
    let contact = create(&w, json!({"first_name": "Dash", "tags": ["vip"]})).await;
    create(&w, json!({"first_name": "Board"})).await;
    let base = format!("/api/agents/{}/contacts", w.agent);

    let list = w.owner.get(&base).await;
    list.expect(200, None);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(list.body["has_more"], false);
    let filtered = w.owner.get(&format!("{base}?tag=vip&limit=1")).await;
    filtered.expect(200, None);
    assert_eq!(filtered.body["data"][0], contact);

    let one = w.owner.get(&format!("{base}/{}", id(&contact))).await;
    one.expect(200, None);
    assert_eq!(one.body, contact);

    w.owner
        .get("/api/agents/agt_missing/contacts")
        .await
        .expect(404, Some("not_found"));
    w.owner
        .get(&format!(
            "/api/agents/agt_missing/contacts/{}",
            id(&contact)
        ))
        .await
        .expect(404, Some("not_found"));
    w.owner
        .get(&format!("{base}/ct_missing"))
        .await
        .expect(404, Some("not_found"));
    w.owner
        .get(&format!("{base}?limit=500"))
        .await
        .expect(400, Some("bad_request"));

    // Another agent's contact is not reachable through this agent's path.
    let agent_b = w.owner.create_agent("Other bot").await;
    w.owner
        .get(&format!("/api/agents/{agent_b}/contacts/{}", id(&contact)))
        .await
        .expect(404, Some("not_found"));

    // Without a session: 401.
    let anonymous = w.server.client();
    anonymous
        .get(&base)
        .await
        .expect(401, Some("unauthenticated"));
}

/// With several nodes no node answers a contact from memory: a read that starts after a
/// write returned, on any node, shows that write, also when reads share one statement.
/// (On SQLite there is one node; the test needs `TEST_POSTGRES_URL`.)
#[tokio::test]
async fn a_read_on_another_node_shows_the_write_that_returned() {
    let first = Server::start().await;
    if !first.on_postgres() {
        eprintln!("single-node SQLite run: the two-node test runs in the PostgreSQL pass");
        return;
    }
    let second = first.second_node();
    let owner = first.setup().await;
    let agent = owner.create_agent("Sales bot").await;
    let (_, key) = owner.create_key(&agent, ALL).await;
    let created = first
        .v1(
            Method::POST,
            "/v1/contacts",
            &key,
            Some(json!({"first_name": "Ada", "company": "v0"})),
        )
        .await;
    created.expect(201, None);
    let path = format!("/v1/contacts/{}", created.body["id"].as_str().unwrap());
    for round in 1..=20 {
        // Half the rounds write on one node and read on the other, half the other way round,
        // so each reader has answered the contact before and seen none of the writes.
        let (writer, reader) = if round <= 10 {
            (&first, &second)
        } else {
            (&second, &first)
        };
        let company = format!("v{round}");
        let written = writer
            .v1(
                Method::PATCH,
                &path,
                &key,
                Some(json!({"company": company})),
            )
            .await;
        written.expect(200, None);
        let version = written.body["version"].as_i64().unwrap();
        let mut reads = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (url, path, key) = (reader.url.clone(), path.clone(), key.clone());
            reads.spawn(async move {
                let read = reqwest::Client::new()
                    .get(format!("{url}{path}"))
                    .bearer_auth(key)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(read.status(), StatusCode::OK);
                read.json::<Value>().await.unwrap()
            });
        }
        while let Some(read) = reads.join_next().await {
            let read = read.unwrap();
            assert_eq!(read["version"].as_i64(), Some(version), "round {round}");
            assert_eq!(read["company"], company, "round {round}");
        }
    }
}
