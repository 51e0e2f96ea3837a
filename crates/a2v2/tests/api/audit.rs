//! The audit log: every action recorded with who, what and where; denials bounded; nothing
//! secret inside; append-only through the API; consistent across crashes; read, filtered,
//! exported and purged.

use std::{
    collections::{BTreeMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    harness::{Client, OWNER_EMAIL, OWNER_PASSWORD, Server, USER_AGENT, permission_body},
    members::{PASSWORD, add_member, member_with_role},
};

const V1_AGENT: &str = "integration-bot/2.3";

/// Every event matching `query` (e.g. `action=api_key.created`), newest first, all pages.
async fn events(client: &Client, query: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/audit-logs?limit=200&{query}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = client.get(&path).await;
        page.expect(200, None);
        all.extend(page.body["data"].as_array().expect("data").iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return all,
        }
    }
}

/// The one event with `action` whose target is `target_id`.
async fn event_for(client: &Client, action: &str, target_id: &str) -> Value {
    let found: Vec<Value> = events(client, &format!("action={action}"))
        .await
        .into_iter()
        .filter(|e| e["target"]["id"] == target_id)
        .collect();
    assert_eq!(found.len(), 1, "{action} for {target_id}: {found:?}");
    found.into_iter().next().unwrap_or_default()
}

fn v1_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(V1_AGENT)
        .build()
        .expect("http client")
}

async fn v1_status(http: &reqwest::Client, server: &Server, key: &str) -> u16 {
    http.get(format!("{}/v1/key", server.url))
        .bearer_auth(key)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// Polls `check` (about every 200 ms) until it returns `Some`, for at most `within`.
async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(found) = check().await {
            return Some(found);
        }
        if start.elapsed() > within {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn session_member_id(client: &Client) -> String {
    client.get("/api/session").await.body["member"]["id"]
        .as_str()
        .expect("member id")
        .to_owned()
}

#[track_caller]
fn assert_from_dashboard(event: &Value, actor_id: &str, actor_label: &str) {
    assert_eq!(event["actor"]["type"], "member", "{event}");
    assert_eq!(event["actor"]["id"], actor_id, "{event}");
    assert_eq!(event["actor"]["label"], actor_label, "{event}");
    assert_eq!(event["ip"], "127.0.0.1", "{event}");
    assert_eq!(event["user_agent"], USER_AGENT, "{event}");
    assert!(event["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(
        event["occurred_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{event}"
    );
    assert!(event["details"].is_object(), "{event}");
}

#[tokio::test]
async fn every_action_is_recorded_with_actor_target_ip_and_user_agent() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let owner_id = session_member_id(&owner).await;

    let setup = events(&owner, "action=workspace.setup").await;
    assert_eq!(setup.len(), 1);
    assert_from_dashboard(&setup[0], &owner_id, OWNER_EMAIL);
    assert_eq!(setup[0]["target"]["type"], "workspace");
    assert_eq!(setup[0]["target"]["label"], "Acme");

    let signed_in = events(&owner, "action=session.created").await;
    assert_eq!(signed_in.len(), 1);
    assert_from_dashboard(&signed_in[0], &owner_id, OWNER_EMAIL);
    assert_eq!(signed_in[0]["target"]["id"], owner_id.as_str());

    server
        .client()
        .post(
            "/api/session",
            json!({ "email": OWNER_EMAIL, "password": "not the password" }),
        )
        .await
        .expect(401, Some("invalid_credentials"));
    let failed = events(&owner, "action=session.failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["actor"]["label"], OWNER_EMAIL);
    assert_eq!(failed[0]["ip"], "127.0.0.1");
    assert_eq!(failed[0]["user_agent"], USER_AGENT);
    assert_eq!(failed[0]["details"]["reason"], "invalid_credentials");

    // Members.
    let member_id = add_member(&owner, "colleague@example.com", "member").await;
    let created = event_for(&owner, "member.created", &member_id).await;
    assert_from_dashboard(&created, &owner_id, OWNER_EMAIL);
    assert_eq!(
        created["target"],
        json!({ "type": "member", "id": member_id, "label": "colleague@example.com" })
    );
    assert_eq!(created["details"]["role"], "member");
    owner
        .patch(
            &format!("/api/members/{member_id}"),
            json!({ "role": "admin", "password": "reset password 123" }),
        )
        .await
        .expect(200, None);
    let updated = event_for(&owner, "member.updated", &member_id).await;
    assert_from_dashboard(&updated, &owner_id, OWNER_EMAIL);
    assert_eq!(
        updated["details"]["role"],
        json!({ "from": "member", "to": "admin" })
    );
    assert_eq!(updated["details"]["password_reset"], true);
    owner
        .delete(&format!("/api/members/{member_id}"))
        .await
        .expect(204, None);
    let deleted = event_for(&owner, "member.deleted", &member_id).await;
    assert_from_dashboard(&deleted, &owner_id, OWNER_EMAIL);
    assert_eq!(deleted["details"]["role"], "admin");

    // Agents.
    let agent = owner.create_agent("Support bot").await;
    owner
        .patch(
            &format!("/api/agents/{agent}"),
            json!({ "name": "Sales bot" }),
        )
        .await
        .expect(200, None);
    for action in ["agent.created", "agent.updated"] {
        let event = event_for(&owner, action, &agent).await;
        assert_from_dashboard(&event, &owner_id, OWNER_EMAIL);
        assert_eq!(event["agent_id"], agent.as_str());
        assert_eq!(event["target"]["type"], "agent");
    }

    // API keys.
    let (key_id, secret) = owner.create_key(&agent, &["contacts:read"]).await;
    let key_path = format!("/api/agents/{agent}/api-keys/{key_id}");
    owner
        .patch(
            &key_path,
            json!({ "name": "Renamed", "permissions": permission_body(&["contacts:create"]) }),
        )
        .await
        .expect(200, None);
    owner
        .post(&format!("{key_path}/reveal"), json!({}))
        .await
        .expect(200, None);
    for action in ["api_key.created", "api_key.updated", "api_key.revealed"] {
        let event = event_for(&owner, action, &key_id).await;
        assert_from_dashboard(&event, &owner_id, OWNER_EMAIL);
        assert_eq!(event["agent_id"], agent.as_str());
        assert_eq!(event["target"]["type"], "api_key");
    }
    let updated = event_for(&owner, "api_key.updated", &key_id).await;
    let changed = updated["details"]["changed"].as_array().unwrap();
    assert!(
        changed.contains(&json!("name")) && changed.contains(&json!("permissions")),
        "{updated}"
    );

    // A denied /v1 request, from the integration's own user agent.
    let http = v1_client();
    let (limited_id, limited) = owner
        .create_key_with(
            &agent,
            json!({ "name": "office only", "ip_addresses": "10.1.2.3", "permissions": permission_body(&[]) }),
        )
        .await;
    assert_eq!(v1_status(&http, &server, &limited).await, 403);
    let denied = eventually(Duration::from_secs(10), || async {
        events(&owner, "action=api_request.denied")
            .await
            .into_iter()
            .next()
    })
    .await
    .expect("api_request.denied is written");
    assert_eq!(denied["actor"]["type"], "api_key");
    assert_eq!(denied["actor"]["id"], limited_id.as_str());
    assert_eq!(denied["target"]["id"], limited_id.as_str());
    assert_eq!(denied["agent_id"], agent.as_str());
    assert_eq!(denied["ip"], "127.0.0.1");
    assert_eq!(denied["user_agent"], V1_AGENT);
    assert_eq!(denied["details"]["reason"], "ip_not_allowed");
    assert_eq!(denied["details"]["count"], 1);
    assert!(!denied.to_string().contains(&limited));

    owner.delete(&key_path).await.expect(204, None);
    let event = event_for(&owner, "api_key.deleted", &key_id).await;
    assert_from_dashboard(&event, &owner_id, OWNER_EMAIL);
    owner
        .delete(&format!("/api/agents/{agent}"))
        .await
        .expect(204, None);
    let event = event_for(&owner, "agent.deleted", &agent).await;
    assert_from_dashboard(&event, &owner_id, OWNER_EMAIL);
    assert_eq!(
        event["details"]["revoked_api_keys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        !events(&owner, "")
            .await
            .iter()
            .any(|e| e.to_string().contains(&secret))
    );
}

#[tokio::test]
async fn a_flood_of_denied_requests_is_counted_not_copied() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let http = v1_client();
    let bad_key = "a2v2_thisKeyDoesNotExistAnywhere0000000000000000000";
    let sent = 1000;
    let mut pending = futures_like::Pending::default();
    for _ in 0..sent {
        let http = http.clone();
        let url = format!("{}/v1/key", server.url);
        pending.push(tokio::spawn(async move {
            http.get(url)
                .bearer_auth(bad_key)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
        if pending.len() >= 16 {
            assert_eq!(pending.next().await, 401);
        }
    }
    while !pending.is_empty() {
        assert_eq!(pending.next().await, 401);
    }

    let counted = eventually(Duration::from_secs(10), || async {
        let denied = events(&owner, "action=api_request.denied").await;
        let total: u64 = denied
            .iter()
            .map(|e| e["details"]["count"].as_u64().unwrap_or(0))
            .sum();
        (total == sent).then_some(denied)
    })
    .await
    .expect("the counts add up to every denied request within 10 s");
    let rejected = server
        .metric("a2v2_api_key_verifications_total{outcome=\"malformed\"}")
        .await
        + server
            .metric("a2v2_api_key_verifications_total{outcome=\"unknown\"}")
            .await;
    assert_eq!(rejected, sent);
    // One row per kind and minute: two if the flood crossed a minute boundary.
    assert!((1..=2).contains(&counted.len()), "{counted:?}");
    for event in &counted {
        assert_eq!(event["details"]["reason"], "invalid_api_key");
        assert_eq!(event["actor"]["type"], "api_key");
        assert_eq!(event["actor"]["id"], Value::Null);
        assert_eq!(event["ip"], "127.0.0.1");
        assert!(!event.to_string().contains(bad_key));
    }
}

/// A small bounded set of in-flight requests without pulling in a futures crate.
mod futures_like {
    use std::collections::VecDeque;

    type Job = tokio::task::JoinHandle<Result<u16, reqwest::Error>>;

    #[derive(Default)]
    pub struct Pending(VecDeque<Job>);

    impl Pending {
        pub fn push(&mut self, job: Job) {
            self.0.push_back(job);
        }
        pub fn len(&self) -> usize {
            self.0.len()
        }
        pub fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
        pub async fn next(&mut self) -> u16 {
            let job = self.0.pop_front().expect("a pending request");
            job.await.expect("task").expect("request")
        }
    }
}

#[tokio::test]
async fn secrets_and_passwords_never_reach_the_log() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let agent = owner.create_agent("bot").await;
    let (key_id, secret) = owner.create_key(&agent, &["contacts:read"]).await;
    let revealed = owner
        .post(
            &format!("/api/agents/{agent}/api-keys/{key_id}/reveal"),
            json!({}),
        )
        .await;
    assert_eq!(revealed.body["key"], secret.as_str());
    let member_id = add_member(&owner, "someone@example.com", "member").await;
    let reset = "the reset password 42";
    owner
        .patch(
            &format!("/api/members/{member_id}"),
            json!({ "password": reset }),
        )
        .await
        .expect(200, None);
    let wrong = "a wrong password tried";
    server
        .client()
        .post(
            "/api/session",
            json!({ "email": "someone@example.com", "password": wrong }),
        )
        .await
        .expect(401, None);
    server.sign_in("someone@example.com", reset).await;
    server
        .v1(Method::GET, "/v1/key", &secret, None)
        .await
        .expect(200, None);
    let last = if secret.ends_with('x') { 'y' } else { 'x' };
    let typo = format!("{}{last}", &secret[..secret.len() - 1]);
    assert_eq!(v1_status(&v1_client(), &server, &typo).await, 401);
    eventually(Duration::from_secs(10), || async {
        (!events(&owner, "action=api_request.denied").await.is_empty()).then_some(())
    })
    .await
    .expect("the denial is written");

    let secrets = [
        secret.as_str(),
        &secret[5..],
        typo.as_str(),
        OWNER_PASSWORD,
        PASSWORD,
        reset,
        wrong,
    ];
    for format in ["csv", "jsonl"] {
        let export = owner
            .get(&format!("/api/audit-logs/export?format={format}"))
            .await;
        export.expect(200, None);
        assert!(export.text.contains("api_key.revealed"));
        assert!(export.text.contains("member.updated"));
        for needle in secrets {
            assert!(
                !export.text.contains(needle),
                "{format} export holds {needle:?}"
            );
        }
    }
    let listed = serde_json::to_string(&events(&owner, "").await).unwrap();
    for needle in secrets {
        assert!(!listed.contains(needle), "the list holds {needle:?}");
    }
}

#[tokio::test]
async fn the_log_cannot_be_changed_through_the_api() {
    let server = Server::start().await;
    let owner = server.setup().await;
    owner.create_agent("bot").await;
    let before = events(&owner, "").await;
    let some_id = before[0]["id"].as_str().unwrap().to_owned();
    let paths = [
        "/api/audit-logs".to_owned(),
        format!("/api/audit-logs/{some_id}"),
        "/api/audit-logs/export".to_owned(),
    ];
    for path in &paths {
        for method in [Method::PATCH, Method::PUT, Method::DELETE, Method::POST] {
            let reply = owner
                .send(
                    method.clone(),
                    path,
                    Some(json!({ "action": "nothing.happened" })),
                )
                .await;
            let status = reply.status.as_u16();
            assert!(
                status == 404 || status == 405,
                "{method} {path}: {}",
                reply.text
            );
            let code = if status == 404 {
                "not_found"
            } else {
                "method_not_allowed"
            };
            reply.expect(status, Some(code));
            if status == 405 {
                assert_eq!(reply.headers["allow"], "GET", "{method} {path}");
            }
        }
    }
    assert_eq!(events(&owner, "").await, before);
}

/// Every key either exists with its `api_key.created` event, or is gone with its
/// `api_key.deleted` event too; nothing in between survives a SIGKILL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_changes_and_their_events_survive_a_crash_together() {
    let mut server = Server::start().await;
    let owner = server.setup().await;
    let agent = owner.create_agent("crash test").await;
    let confirmed_created = Arc::new(Mutex::new(HashSet::new()));
    let confirmed_deleted = Arc::new(Mutex::new(HashSet::new()));
    let started = Instant::now();
    for round in 0u64..5 {
        let http = owner.http.clone();
        let csrf = owner.csrf.clone().unwrap_or_default();
        let base = format!("{}/api/agents/{agent}/api-keys", server.url);
        let (created, deleted) = (
            Arc::clone(&confirmed_created),
            Arc::clone(&confirmed_deleted),
        );
        let churn = tokio::spawn(async move {
            let mut previous: Option<String> = None;
            for n in 0u64.. {
                let body = json!({ "name": format!("k{round}-{n}"), "permissions": { "contacts": ["read"] } });
                let Ok(reply) = http
                    .post(&base)
                    .header("x-csrf-token", &csrf)
                    .json(&body)
                    .send()
                    .await
                else {
                    return;
                };
                if reply.status().as_u16() != 201 {
                    return;
                }
                let Ok(key) = reply.json::<Value>().await else {
                    return;
                };
                let id = key["id"].as_str().unwrap_or_default().to_owned();
                created.lock().unwrap().insert(id.clone());
                if let Some(old) = previous.take().filter(|_| n % 2 == 1) {
                    let Ok(reply) = http
                        .delete(format!("{base}/{old}"))
                        .header("x-csrf-token", &csrf)
                        .send()
                        .await
                    else {
                        return;
                    };
                    if reply.status().as_u16() != 204 {
                        return;
                    }
                    deleted.lock().unwrap().insert(old);
                } else {
                    previous = Some(id);
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(250 + (round * 97) % 300)).await;
        server.kill9();
        let _ = churn.await;
        server.restart();

        let listed = owner.get(&format!("/api/agents/{agent}/api-keys")).await;
        listed.expect(200, None);
        let alive: HashSet<String> = listed.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap().to_owned())
            .collect();
        let ids = |events: Vec<Value>| -> HashSet<String> {
            events
                .iter()
                .map(|e| e["target"]["id"].as_str().unwrap_or_default().to_owned())
                .collect()
        };
        let created_events =
            ids(events(&owner, &format!("action=api_key.created&agent_id={agent}")).await);
        let deleted_events =
            ids(events(&owner, &format!("action=api_key.deleted&agent_id={agent}")).await);
        for id in &alive {
            assert!(
                created_events.contains(id),
                "round {round}: key {id} exists without its created event"
            );
            assert!(
                !deleted_events.contains(id),
                "round {round}: key {id} exists after its deleted event"
            );
        }
        for id in created_events.difference(&alive) {
            assert!(
                deleted_events.contains(id),
                "round {round}: key {id} vanished without a deleted event"
            );
        }
        for id in confirmed_created.lock().unwrap().iter() {
            assert!(
                created_events.contains(id),
                "round {round}: confirmed key {id} has no created event"
            );
        }
        for id in confirmed_deleted.lock().unwrap().iter() {
            assert!(
                deleted_events.contains(id) && !alive.contains(id),
                "round {round}: confirmed delete of {id} lost"
            );
        }
    }
    assert!(
        !confirmed_created.lock().unwrap().is_empty(),
        "no key was created before the crashes"
    );
    assert!(
        !confirmed_deleted.lock().unwrap().is_empty(),
        "no key was deleted before the crashes"
    );
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_log_is_paginated_newest_first_and_filtered() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let owner_id = session_member_id(&owner).await;
    let (admin_id, admin) = member_with_role(&server, &owner, "admin@example.com", "admin").await;
    let first = owner.create_agent("first").await;
    let second = admin.create_agent("second").await;
    owner.create_key(&first, &["contacts:read"]).await;
    admin.create_key(&second, &[]).await;
    let (doomed, _) = admin.create_key(&second, &[]).await;
    admin
        .delete(&format!("/api/agents/{second}/api-keys/{doomed}"))
        .await
        .expect(204, None);

    let all = events(&owner, "").await;
    let mut ids: Vec<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");
    let times: Vec<i128> = all.iter().map(occurred_at).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    // Small pages walk the same list without gaps or repeats.
    let mut paged = Vec::new();
    let mut path = "/api/audit-logs?limit=3".to_owned();
    loop {
        let page = owner.get(&path).await;
        page.expect(200, None);
        let data = page.body["data"].as_array().unwrap();
        assert!(data.len() <= 3);
        paged.extend(data.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/audit-logs?limit=3&cursor={cursor}"),
            None => {
                assert_eq!(page.body["has_more"], false);
                break;
            }
        }
    }
    ids.dedup();
    assert_eq!(paged, ids);

    let actions = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        actions(&events(&owner, "action=api_key.*").await),
        [
            "api_key.deleted",
            "api_key.created",
            "api_key.created",
            "api_key.created"
        ]
    );
    assert_eq!(
        actions(&events(&owner, "action=api_key.created").await).len(),
        3
    );
    assert_eq!(actions(&events(&owner, "action=api_key").await).len(), 0);
    assert_eq!(actions(&events(&owner, "action=apikey.*").await).len(), 0);
    assert_eq!(
        actions(&events(&owner, &format!("agent_id={second}")).await),
        [
            "api_key.deleted",
            "api_key.created",
            "api_key.created",
            "agent.created"
        ]
    );
    let by_admin = events(&owner, &format!("actor_id={admin_id}")).await;
    assert!(
        by_admin
            .iter()
            .all(|e| e["actor"]["id"] == admin_id.as_str())
    );
    assert_eq!(
        actions(&by_admin),
        [
            "api_key.deleted",
            "api_key.created",
            "api_key.created",
            "agent.created",
            "session.created"
        ]
    );
    let combined = events(&owner, &format!("actor_id={owner_id}&action=agent.*")).await;
    assert_eq!(actions(&combined), ["agent.created"]);
    assert_eq!(combined[0]["agent_id"], first.as_str());

    // Time windows: `since` inclusive, `until` exclusive.
    let pivot = all
        .iter()
        .find(|e| e["action"] == "agent.created" && e["agent_id"] == second.as_str())
        .unwrap();
    let at = occurred_at(pivot);
    let encoded = pivot["occurred_at"].as_str().unwrap().replace('+', "%2B");
    let since = events(&owner, &format!("since={encoded}")).await;
    assert!(since.iter().all(|e| occurred_at(e) >= at));
    assert!(since.iter().any(|e| e["id"] == pivot["id"]));
    let until = events(&owner, &format!("until={encoded}")).await;
    assert!(until.iter().all(|e| occurred_at(e) < at));
    assert_eq!(since.len() + until.len(), all.len());
    assert!(
        events(
            &owner,
            "since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z"
        )
        .await
        .is_empty()
    );

    for bad in [
        "since=yesterday",
        "until=2025-13-01T00:00:00Z",
        "since=2025-01-01",
        "limit=0",
        "limit=500",
        "cursor=%27%3B%20DROP%20TABLE",
    ] {
        owner
            .get(&format!("/api/audit-logs?{bad}"))
            .await
            .expect(400, Some("bad_request"));
    }
}

/// An event's time in nanoseconds since the epoch.
fn occurred_at(event: &Value) -> i128 {
    let text = event["occurred_at"].as_str().expect("occurred_at");
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339")
        .unix_timestamp_nanos()
}

/// Splits RFC 4180 CSV into records of fields.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        field.is_empty() && record.is_empty(),
        "CSV does not end with a line break"
    );
    records
}

#[tokio::test]
async fn the_log_exports_as_csv_and_json_lines() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let tricky = "Acme, \"Sales\"\nbot";
    let agent = owner.create_agent("plain").await;
    owner
        .patch(&format!("/api/agents/{agent}"), json!({ "name": tricky }))
        .await
        .expect(200, None);
    owner.create_key(&agent, &["contacts:read"]).await;
    owner
        .create_key_with(&agent, json!({ "name": "=HYPERLINK(\"x\")" }))
        .await;
    let listed = events(&owner, "").await;

    let csv = owner.get("/api/audit-logs/export?format=csv").await;
    csv.expect(200, None);
    let header = |name: &str| {
        csv.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(header("content-type").starts_with("text/csv"));
    let disposition = header("content-disposition");
    assert!(
        disposition.starts_with("attachment;") && disposition.contains(".csv\""),
        "{disposition}"
    );
    let records = parse_csv(&csv.text);
    assert_eq!(
        records[0],
        [
            "id",
            "occurred_at",
            "actor_type",
            "actor_id",
            "actor_label",
            "action",
            "agent_id",
            "target_type",
            "target_id",
            "target_label",
            "ip",
            "user_agent",
            "details"
        ]
    );
    let rows = &records[1..];
    assert!(rows.iter().all(|r| r.len() == 13), "{records:?}");
    // Everything listed before the export, oldest first, then the export itself.
    let exported: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    let mut expected: Vec<&str> = listed.iter().map(|e| e["id"].as_str().unwrap()).collect();
    expected.reverse();
    assert_eq!(&exported[..expected.len()], expected.as_slice());
    assert_eq!(rows.last().unwrap()[5], "audit.exported");
    let renamed = rows.iter().find(|r| r[5] == "agent.updated").unwrap();
    assert_eq!(renamed[9], tricky);
    let details: Value = serde_json::from_str(&renamed[12]).unwrap();
    assert_eq!(details["changes"]["name"]["to"], tricky);
    assert!(
        rows.iter().any(|r| r[9] == "'=HYPERLINK(\"x\")"),
        "formulas are neutralised"
    );
    assert!(
        rows.iter()
            .all(|r| r[10] == "127.0.0.1" || r[2] == "system")
    );

    let jsonl = owner
        .get("/api/audit-logs/export?format=jsonl&action=api_key.*")
        .await;
    jsonl.expect(200, None);
    assert!(
        jsonl.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains(".jsonl\"")
    );
    let lines: Vec<Value> = jsonl
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines
            .iter()
            .all(|e| e["action"] == "api_key.created" && e["actor"]["label"] == OWNER_EMAIL)
    );
    assert_eq!(lines[1]["target"]["label"], "=HYPERLINK(\"x\")");

    let future = owner
        .get("/api/audit-logs/export?format=jsonl&since=2999-01-01T00:00:00Z")
        .await;
    future.expect(200, None);
    assert_eq!(future.text, "");
    owner
        .get("/api/audit-logs/export?format=xml")
        .await
        .expect(400, Some("bad_request"));
    owner
        .get("/api/audit-logs/export?until=soon")
        .await
        .expect(400, Some("bad_request"));

    let exports = events(&owner, "action=audit.exported").await;
    assert_eq!(exports.len(), 3, "each successful export is recorded");
    assert_eq!(exports[0]["details"]["format"], "jsonl");
}

async fn database(server: &Server) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&server.database_url)
        .await
        .expect("open the database")
}

#[tokio::test]
async fn old_events_are_purged_after_the_retention_period() {
    let mut server = Server::start_with(&["--audit-retention-days", "30"], &[]).await;
    let owner = server.setup().await;
    owner.create_agent("recent").await;
    let recent = events(&owner, "").await;
    assert!(server.terminate().success());

    // Age some events the only way possible: write them directly, as if from long ago.
    let day = 24 * 60 * 60 * 1000_i64;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let pool = database(&server).await;
    let old = [
        ("evt_0old1", now - 400 * day),
        ("evt_0old2", now - 31 * day),
        ("evt_0old3", now - 45 * day),
    ];
    for (id, at) in old {
        sqlx::query(
            "INSERT INTO audit_events (id, occurred_at, actor_type, action, details) \
             VALUES ($1, $2, 'system', 'agent.created', '{}')",
        )
        .bind(id)
        .bind(at)
        .execute(&pool)
        .await
        .unwrap();
    }
    for (event, count) in [("evt_0old1", 12_i64), ("evt_orphan", 3)] {
        sqlx::query("INSERT INTO audit_event_counts (event_id, count) VALUES ($1, $2)")
            .bind(event)
            .bind(count)
            .execute(&pool)
            .await
            .unwrap();
    }
    // A month minus a day is kept.
    sqlx::query(
        "INSERT INTO audit_events (id, occurred_at, actor_type, action, details) \
         VALUES ('evt_0kept', $1, 'system', 'agent.created', '{}')",
    )
    .bind(now - 29 * day)
    .execute(&pool)
    .await
    .unwrap();

    server.restart();
    let purged = eventually(Duration::from_secs(10), || async {
        events(&owner, "action=audit.purged")
            .await
            .into_iter()
            .next()
    })
    .await
    .expect("the purge runs shortly after start");
    assert_eq!(purged["actor"]["type"], "system");
    assert_eq!(purged["details"]["count"], 3);
    assert_eq!(purged["details"]["retention_days"], 30);

    let left: HashSet<String> = events(&owner, "")
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    for (id, _) in old {
        assert!(!left.contains(id), "{id} should be purged");
    }
    assert!(left.contains("evt_0kept"));
    for event in &recent {
        assert!(left.contains(event["id"].as_str().unwrap()));
    }
    let counts: Vec<String> = sqlx::query_scalar("SELECT event_id FROM audit_event_counts")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(counts.is_empty(), "orphaned counts stay: {counts:?}");
    let purges: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = 'audit.purged'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(purges, 1);
}

#[tokio::test]
async fn retention_zero_keeps_everything() {
    let mut server = Server::start_with(&["--audit-retention-days", "0"], &[]).await;
    let owner = server.setup().await;
    server.kill9();
    let pool = database(&server).await;
    sqlx::query(
        "INSERT INTO audit_events (id, occurred_at, actor_type, action, details) \
         VALUES ('evt_0ancient', 1000, 'system', 'agent.created', '{}')",
    )
    .execute(&pool)
    .await
    .unwrap();
    server.restart();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = events(&owner, "").await;
    assert!(all.iter().any(|e| e["id"] == "evt_0ancient"));
    assert!(all.iter().all(|e| e["action"] != "audit.purged"));
    let mut by_action = BTreeMap::new();
    for event in &all {
        *by_action
            .entry(event["action"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    assert_eq!(by_action.get("workspace.setup"), Some(&1));
}
