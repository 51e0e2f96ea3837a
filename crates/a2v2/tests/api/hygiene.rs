//! Living with keys: rate limits, pausing, the incident switch, rolling, the access
//! simulator, usage, leaked-key reports and the guessing throttle.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    harness::{Client, Server, now_ms, permission_body},
    members::member_with_role,
};

fn key_path(agent: &str, key_id: &str) -> String {
    format!("/api/agents/{agent}/api-keys/{key_id}")
}

fn header(reply: &crate::harness::Reply, name: &str) -> Option<u64> {
    reply.headers.get(name)?.to_str().ok()?.parse().ok()
}

async fn audit_actions(owner: &Client, action: &str) -> Vec<Value> {
    let reply = owner
        .get(&format!("/api/audit-logs?action={action}&limit=200"))
        .await;
    reply.expect(200, None);
    reply.body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_rate_limited_key_counts_down_and_answers_429() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let agent = owner.create_agent("a").await;
    let (key_id, key) = owner
        .create_key_with(
            &agent,
            json!({"name": "limited", "rate_limit": {"requests": 3, "per_seconds": 60}}),
        )
        .await;
    let shown = owner.get(&key_path(&agent, &key_id)).await;
    assert_eq!(
        shown.body["rate_limit"],
        json!({"requests": 3, "per_seconds": 60})
    );
    for remaining in [2, 1, 0] {
        // With several nodes (PostgreSQL) a node spends on credit only one second's share
        // (here one request) before its reservation arrives, 50 ms later.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let reply = server.v1(Method::GET, "/v1/key", &key, None).await;
        reply.expect(200, None);
        assert_eq!(header(&reply, "ratelimit-limit"), Some(3));
        assert_eq!(header(&reply, "ratelimit-remaining"), Some(remaining));
        // A counted request leaves the window after at most 1.1 windows (see DECISIONS).
        assert!(header(&reply, "ratelimit-reset").unwrap() <= 66);
    }
    let refused = server.v1(Method::GET, "/v1/key", &key, None).await;
    refused.expect(429, Some("rate_limited"));
    let retry = header(&refused, "retry-after").unwrap();
    assert!((1..=66).contains(&retry), "Retry-After {retry}");
    assert_eq!(header(&refused, "ratelimit-remaining"), Some(0));
    // A permission the key lacks is refused without spending budget, with the headers.
    let denied = server.v1(Method::GET, "/v1/contacts", &key, None).await;
    denied.expect(403, Some("permission_denied"));
    assert_eq!(header(&denied, "ratelimit-limit"), Some(3));

    // Lifting the limit takes effect for the very next request; keys without one carry no
    // headers.
    owner
        .patch(&key_path(&agent, &key_id), json!({"rate_limit": null}))
        .await
        .expect(200, None);
    let free = server.v1(Method::GET, "/v1/key", &key, None).await;
    free.expect(200, None);
    assert!(free.headers.get("ratelimit-limit").is_none());
    let events = audit_actions(&owner, "api_key.updated").await;
    assert_eq!(
        events[0]["details"]["changes"]["rate_limit"]["from"],
        json!({"requests": 3, "per_seconds": 60})
    );

    for bad in [
        json!({"requests": 0, "per_seconds": 1}),
        json!({"requests": 1_000_001, "per_seconds": 1}),
        json!({"requests": 1, "per_seconds": 86_401}),
        json!({"requests": 1}),
        json!(5),
    ] {
        let reply = owner
            .patch(&key_path(&agent, &key_id), json!({ "rate_limit": bad }))
            .await;
        reply.expect(422, Some("validation_failed"));
        assert!(reply.body["error"]["fields"]["rate_limit"].is_string());
    }
}

#[tokio::test]
async fn paused_keys_answer_like_deleted_ones_until_resumed() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let agent = owner.create_agent("a").await;
    let (key_id, key) = owner.create_key(&agent, &[]).await;
    let paused = owner
        .patch(&key_path(&agent, &key_id), json!({"enabled": false}))
        .await;
    paused.expect(200, None);
    assert_eq!(paused.body["enabled"], false);
    server
        .v1(Method::GET, "/v1/key", &key, None)
        .await
        .expect(401, Some("invalid_api_key"));
    owner
        .patch(&key_path(&agent, &key_id), json!({"enabled": true}))
        .await
        .expect(200, None);
    server
        .v1(Method::GET, "/v1/key", &key, None)
        .await
        .expect(200, None);
    let events = audit_actions(&owner, "api_key.updated").await;
    assert_eq!(
        events[1]["details"]["changes"]["enabled"],
        json!({"from": true, "to": false})
    );
    owner
        .patch(&key_path(&agent, &key_id), json!({"enabled": "no"}))
        .await
        .expect(422, Some("validation_failed"));
}

#[tokio::test]
async fn only_an_owner_suspends_and_resumes_every_key() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let (_, admin) = member_with_role(&server, &owner, "admin@example.com", "admin").await;
    let agent = owner.create_agent("a").await;
    let (_, key) = owner.create_key(&agent, &[]).await;
    admin
        .post("/api/keys/suspend-all", json!({}))
        .await
        .expect(403, Some("forbidden"));
    owner
        .post("/api/keys/suspend-all", json!({}))
        .await
        .expect(200, None);
    assert_eq!(
        owner.get("/api/keys/suspension").await.body["suspended"],
        true
    );
    server
        .v1(Method::GET, "/v1/key", &key, None)
        .await
        .expect(401, Some("invalid_api_key"));
    // A key made during the incident is suspended too.
    let (_, fresh) = owner.create_key(&agent, &[]).await;
    server
        .v1(Method::GET, "/v1/key", &fresh, None)
        .await
        .expect(401, Some("invalid_api_key"));
    admin
        .post("/api/keys/resume-all", json!({}))
        .await
        .expect(403, Some("forbidden"));
    owner
        .post("/api/keys/resume-all", json!({}))
        .await
        .expect(200, None);
    for key in [&key, &fresh] {
        server
            .v1(Method::GET, "/v1/key", key, None)
            .await
            .expect(200, None);
    }
    assert_eq!(audit_actions(&owner, "keys.suspended").await.len(), 1);
    let resumed = audit_actions(&owner, "keys.resumed").await;
    assert_eq!(resumed[0]["actor"]["label"], "owner@example.com");
}

#[tokio::test]
async fn rolling_replaces_the_secret_with_an_optional_grace_period() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let agent = owner.create_agent("a").await;
    let (key_id, old) = owner.create_key(&agent, &["contacts:read"]).await;
    let roll = |grace: Value| {
        let owner = &owner;
        let path = format!("{}/roll", key_path(&agent, &key_id));
        async move { owner.post(&path, json!({ "grace_seconds": grace })).await }
    };

    let rolled = roll(json!(60)).await;
    rolled.expect(200, None);
    assert_eq!(rolled.body["id"], json!(key_id), "same key");
    let new = rolled.body["key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rolled.body["previous_expires_at"].is_string());
    assert_eq!(rolled.body["permissions"]["contacts"], json!(["read"]));
    for secret in [&old, &new] {
        server
            .v1(Method::GET, "/v1/contacts", secret, None)
            .await
            .expect(200, None);
    }
    let copied = owner
        .post(&format!("{}/reveal", key_path(&agent, &key_id)), json!({}))
        .await;
    assert_eq!(
        copied.body["key"],
        json!(new),
        "Copy API Key gives the new secret"
    );

    // Without grace the previous secret (and the one before) stop at once.
    let again = roll(json!(0)).await;
    again.expect(200, None);
    assert!(again.body["previous_expires_at"].is_null());
    let newest = again.body["key"].as_str().unwrap().to_owned();
    for gone in [&old, &new] {
        server
            .v1(Method::GET, "/v1/key", gone, None)
            .await
            .expect(401, Some("invalid_api_key"));
    }
    server
        .v1(Method::GET, "/v1/key", &newest, None)
        .await
        .expect(200, None);
    let events = audit_actions(&owner, "api_key.rolled").await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["details"]["grace_seconds"], 60);
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(&new) && !text.contains(&newest));

    for bad in [json!(-1), json!(604_801), json!("60")] {
        roll(bad).await.expect(422, Some("validation_failed"));
    }
    owner
        .post(
            &format!("/api/agents/{agent}/api-keys/key_missing/roll"),
            json!({}),
        )
        .await
        .expect(404, Some("not_found"));
}

/// Every `/v1` route with the permission it needs (ids filled in).
const V1_REQUESTS: &[(&str, &str)] = &[
    ("GET", "/v1/key"),
    ("POST", "/v1/contacts"),
    ("GET", "/v1/contacts"),
    ("GET", "/v1/contacts/ct_missing"),
    ("PATCH", "/v1/contacts/ct_missing"),
    ("DELETE", "/v1/contacts/ct_missing"),
];

/// The simulator and the real guard agree on every combination of permissions, IP rule,
/// route and client address.
#[tokio::test]
async fn the_simulator_agrees_with_the_guard() {
    let server = Server::start_with(&["--trusted-proxies", "127.0.0.1/32"], &[]).await;
    let owner = server.setup().await;
    let agent = owner.create_agent("a").await;
    let permission_sets: &[&[&str]] = &[
        &[],
        &["contacts:read"],
        &["contacts:create", "contacts:update"],
        &["contacts:read", "contacts:delete", "documents:read"],
        &[
            "contacts:create",
            "contacts:read",
            "contacts:update",
            "contacts:delete",
        ],
    ];
    let ip_rules = ["", "10.0.0.0/8, 2001:db8::/32"];
    let clients = ["10.1.2.3", "192.0.2.9", "2001:db8::5", "2001:db9::5"];
    let http = reqwest::Client::new();
    let mut compared = 0;
    for permissions in permission_sets {
        for rule in ip_rules {
            let (key_id, key) = owner
                .create_key_with(
                    &agent,
                    json!({
                        "name": "matrix",
                        "permissions": permission_body(permissions),
                        "ip_addresses": rule,
                    }),
                )
                .await;
            for (method, path) in V1_REQUESTS {
                for client in clients {
                    let simulated = owner
                        .post(
                            &format!("{}/simulate", key_path(&agent, &key_id)),
                            json!({"method": method, "path": path, "ip": client}),
                        )
                        .await;
                    simulated.expect(200, None);
                    let verdict = &simulated.body;
                    let method = Method::from_bytes(method.as_bytes()).unwrap();
                    let mut request = http
                        .request(method.clone(), format!("{}{path}", server.url))
                        .bearer_auth(&key)
                        .header("x-forwarded-for", client);
                    if method == Method::POST || method == Method::PATCH {
                        request = request.json(&json!({}));
                    }
                    let real = request.send().await.unwrap();
                    let status = real.status().as_u16();
                    let body: Value = real.json().await.unwrap_or(Value::Null);
                    let context = format!("{permissions:?} {rule:?} {method} {path} {client}");
                    if verdict["allowed"] == true {
                        assert!(
                            ![401, 403, 405, 429, 503].contains(&status),
                            "{context}: simulator allowed, guard answered {status} {body}"
                        );
                    } else {
                        assert_eq!(status, verdict["status"], "{context}: {body}");
                        assert_eq!(body["error"]["code"], verdict["code"], "{context}");
                        if status == 403 && body["error"]["code"] == "permission_denied" {
                            assert_eq!(
                                body["error"]["required_permission"],
                                verdict["required_permission"]
                            );
                        }
                    }
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(compared, 5 * 2 * V1_REQUESTS.len() * 4);

    // Routes that do not exist answer like the router.
    let (key_id, _) = owner.create_key(&agent, &["contacts:read"]).await;
    let simulate = |method: &str, path: &str| {
        let owner = &owner;
        let url = format!("{}/simulate", key_path(&agent, &key_id));
        let body = json!({"method": method, "path": path, "ip": "127.0.0.1"});
        async move { owner.post(&url, body).await }
    };
    let wrong_method = simulate("PUT", "/v1/key").await;
    assert_eq!(wrong_method.body["status"], 405);
    let unknown = simulate("GET", "/v1/nothing").await;
    assert_eq!(unknown.body["status"], 404);
    let needed = simulate("POST", "/v1/contacts").await;
    assert_eq!(needed.body["required_permission"], "contacts:create");
    assert_eq!(needed.body["code"], "permission_denied");
    simulate("GET", "no slash")
        .await
        .expect(422, Some("validation_failed"));
    let (_, member) = member_with_role(&server, &owner, "m@example.com", "member").await;
    member
        .post(
            &format!("{}/simulate", key_path(&agent, &key_id)),
            json!({"method": "GET", "path": "/v1/contacts", "ip": "10.0.0.1"}),
        )
        .await
        .expect(200, None);
}

#[tokio::test]
async fn usage_shows_the_permissions_used_and_the_clients() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let agent = owner.create_agent("a").await;
    let (key_id, key) = owner
        .create_key(&agent, &["contacts:read", "contacts:delete"])
        .await;
    for _ in 0..3 {
        server
            .v1(Method::GET, "/v1/contacts", &key, None)
            .await
            .expect(200, None);
    }
    let usage = owner
        .get(&format!("{}/usage", key_path(&agent, &key_id)))
        .await;
    usage.expect(200, None);
    let permissions = usage.body["permissions"].as_array().unwrap();
    assert_eq!(permissions.len(), 2);
    let used = |name: &str| {
        permissions
            .iter()
            .find(|p| p["permission"] == name)
            .unwrap()["last_used_at"]
            .clone()
    };
    assert!(used("contacts:read").is_string());
    assert!(used("contacts:delete").is_null());
    assert_eq!(usage.body["clients"][0]["ip"], "127.0.0.1");
    assert_eq!(usage.body["clients"][0]["count"], 3);
    assert!(usage.body["last_used_at"].is_string());

    // Flushed to storage, the same answer survives a restart.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let mut server = server;
    server.terminate();
    server.restart();
    let owner = server
        .sign_in(crate::harness::OWNER_EMAIL, crate::harness::OWNER_PASSWORD)
        .await;
    let after = owner
        .get(&format!("{}/usage", key_path(&agent, &key_id)))
        .await;
    assert_eq!(after.body["clients"][0]["count"], 3);
    assert_eq!(after.body["permissions"], usage.body["permissions"]);
}

#[tokio::test]
async fn a_reported_leak_revokes_the_key_and_tells_nothing() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let agent = owner.create_agent("a").await;
    let (key_id, key) = owner.create_key(&agent, &[]).await;
    let http = reqwest::Client::new();
    let report = |body: Value| {
        let http = http.clone();
        let url = format!("{}/v1/leaked-keys", server.url);
        async move { http.post(url).json(&body).send().await.unwrap().status() }
    };
    for body in [
        json!({"key": "a2v2_not_a_key"}),
        json!({"key": crate::harness::USER_AGENT}),
    ] {
        assert_eq!(report(body).await, 202);
    }
    server
        .v1(Method::GET, "/v1/key", &key, None)
        .await
        .expect(200, None);
    assert_eq!(report(json!({ "key": key })).await, 202);
    server
        .v1(Method::GET, "/v1/key", &key, None)
        .await
        .expect(401, Some("invalid_api_key"));
    let shown = owner.get(&key_path(&agent, &key_id)).await;
    assert_eq!(shown.body["enabled"], false);
    assert!(shown.body["leak_reported_at"].is_string());
    assert_eq!(report(json!({ "key": key })).await, 202, "reported twice");
    let events = audit_actions(&owner, "api_key.leak_reported").await;
    assert_eq!(
        events.len(),
        2,
        "each report of the current secret is recorded"
    );
    assert_eq!(events[0]["ip"], "127.0.0.1");
    assert_eq!(events[0]["target"]["id"], json!(key_id));
    assert!(!serde_json::to_string(&events).unwrap().contains(&key));
    // Resuming does not bring the leaked secret back to life: a roll does, with a new one.
    owner
        .patch(&key_path(&agent, &key_id), json!({"enabled": true}))
        .await
        .expect(409, Some("conflict"));
    let rolled = owner
        .post(&format!("{}/roll", key_path(&agent, &key_id)), json!({}))
        .await;
    assert!(rolled.body["leak_reported_at"].is_null());
    owner
        .patch(&key_path(&agent, &key_id), json!({"enabled": true}))
        .await
        .expect(200, None);
    let new = rolled.body["key"].as_str().unwrap();
    server
        .v1(Method::GET, "/v1/key", new, None)
        .await
        .expect(200, None);
    server
        .v1(Method::GET, "/v1/key", &key, None)
        .await
        .expect(401, Some("invalid_api_key"));
}

#[tokio::test]
async fn a_client_sending_bad_keys_is_slowed_down() {
    let server = Server::start_with(&["--invalid-key-limit", "5"], &[]).await;
    let owner = server.setup().await;
    let agent = owner.create_agent("a").await;
    let (_, key) = owner.create_key(&agent, &[]).await;
    // A key this node has verified keeps working for the blocked client.
    server
        .v1(Method::GET, "/v1/key", &key, None)
        .await
        .expect(200, None);
    for _ in 0..5 {
        server
            .v1(Method::GET, "/v1/key", "a2v2_guess", None)
            .await
            .expect(401, Some("invalid_api_key"));
    }
    let blocked = server.v1(Method::GET, "/v1/key", "a2v2_guess", None).await;
    blocked.expect(429, Some("rate_limited"));
    assert!(header(&blocked, "retry-after").unwrap() <= 60);
    server
        .v1(Method::GET, "/v1/key", &key, None)
        .await
        .expect(200, None);
    assert!(server.metric("a2v2_guessing_refusals_total").await >= 1);
}

/// Two nodes on one PostgreSQL honour one limit: a key allowed 100 requests per 10 s,
/// hammered through both, gets close to 100 successes per window, never far above.
#[tokio::test]
async fn two_nodes_share_one_rate_limit() {
    let first = Server::start().await;
    if !first.on_postgres() {
        eprintln!("single-node SQLite run: the multi-node test runs in the PostgreSQL pass");
        return;
    }
    let second = first.second_node();
    let owner = first.setup().await;
    let agent = owner.create_agent("a").await;
    let (_, key) = owner
        .create_key_with(
            &agent,
            json!({"name": "hammered", "rate_limit": {"requests": 100, "per_seconds": 10}}),
        )
        .await;
    // Both nodes know the key before the clock starts.
    for node in [&first, &second] {
        let started = Instant::now();
        while node.v1(Method::GET, "/v1/key", &key, None).await.status != 200 {
            assert!(started.elapsed() < Duration::from_secs(5));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Two requests spent above; hammer for 21 s and record every success's time.
    let successes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..8 {
        let url = [&first, &second][worker % 2].url.clone();
        let (key, successes, stop) = (key.clone(), Arc::clone(&successes), Arc::clone(&stop));
        workers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                let status = http
                    .get(format!("{url}/v1/key"))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16();
                match status {
                    200 => successes.lock().unwrap().push(started.elapsed()),
                    429 => {}
                    other => panic!("unexpected status {other}"),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(21)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let mut times = successes.lock().unwrap().clone();
    times.sort();
    let mut worst = 0;
    for (i, start) in times.iter().enumerate() {
        let within = times[i..]
            .iter()
            .take_while(|at| **at < *start + Duration::from_secs(10))
            .count();
        worst = worst.max(within);
    }
    eprintln!(
        "two nodes, limit 100 per 10 s: {} successes in 21 s; worst 10 s window {worst} \
         (overshoot {})",
        times.len(),
        worst.saturating_sub(100)
    );
    // One second's share of the limit (10) per node is the documented bound.
    assert!(worst <= 100 + 2 * 10, "worst window held {worst}");
    assert!(times.len() >= 150, "only {} successes in 21 s", times.len());
}

/// A roll without grace takes the old secret away on every node for every request started
/// after the response; with grace both secrets work on both nodes.
#[tokio::test]
async fn a_roll_reaches_every_node() {
    let first = Server::start().await;
    if !first.on_postgres() {
        eprintln!("single-node SQLite run: the multi-node test runs in the PostgreSQL pass");
        return;
    }
    let second = first.second_node();
    let owner = first.setup().await;
    let agent = owner.create_agent("a").await;
    let (key_id, old) = owner.create_key(&agent, &[]).await;
    let until_200 = |node: &Server, key: String| {
        let url = node.url.clone();
        async move {
            let started = Instant::now();
            let http = reqwest::Client::new();
            loop {
                let reply = http
                    .get(format!("{url}/v1/key"))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap();
                if reply.status() == 200 {
                    return;
                }
                assert!(started.elapsed() < Duration::from_secs(5));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    until_200(&second, old.clone()).await;
    let graceful = owner
        .post(
            &format!("{}/roll", key_path(&agent, &key_id)),
            json!({"grace_seconds": 60}),
        )
        .await;
    graceful.expect(200, None);
    let new = graceful.body["key"].as_str().unwrap().to_owned();
    until_200(&second, new.clone()).await;
    for node in [&first, &second] {
        node.v1(Method::GET, "/v1/key", &old, None)
            .await
            .expect(200, None);
    }

    // Hammer the second node with the old secrets while rolling without grace on the first:
    // no request started after the roll returned may succeed.
    let rolled_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let leaks = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut hammers = Vec::new();
    for secret in [old.clone(), new.clone()] {
        let url = second.url.clone();
        let (rolled_at, leaks, stop) = (
            Arc::clone(&rolled_at),
            Arc::clone(&leaks),
            Arc::clone(&stop),
        );
        hammers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let ok = http
                    .get(format!("{url}/v1/key"))
                    .bearer_auth(&secret)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    == 200;
                let after = rolled_at.lock().unwrap().is_some_and(|at| sent > at);
                if ok && after {
                    leaks.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let abrupt = owner
        .post(
            &format!("{}/roll", key_path(&agent, &key_id)),
            json!({"grace_seconds": 0}),
        )
        .await;
    *rolled_at.lock().unwrap() = Some(Instant::now());
    abrupt.expect(200, None);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for hammer in hammers {
        hammer.await.unwrap();
    }
    assert_eq!(
        leaks.load(Ordering::Relaxed),
        0,
        "old secrets accepted after the roll"
    );
    let newest = abrupt.body["key"].as_str().unwrap().to_owned();
    second
        .v1(Method::GET, "/v1/key", &newest, None)
        .await
        .expect(200, None);
}

/// A key change returns only once every node that may still serve keys has applied it: a
/// node that has not reported it holds the change up until it does, or until its lease ends.
#[tokio::test]
async fn a_key_change_waits_until_every_node_applied_it() {
    sqlx::any::install_default_drivers();
    let server = Server::start().await;
    if !server.on_postgres() {
        eprintln!("single-node SQLite run: the multi-node test runs in the PostgreSQL pass");
        return;
    }
    let owner = server.setup().await;
    let agent = owner.create_agent("a").await;
    let (first_id, _) = owner.create_key(&agent, &[]).await;
    let (second_id, _) = owner.create_key(&agent, &[]).await;
    // Another node, with a lease of a minute, that has applied nothing yet.
    database(
        &server,
        &[&format!(
            "INSERT INTO key_nodes (node_id, applied_version, seen_at, lease_ms) \
             VALUES ('node_behind', 0, {}, 60000)",
            now_ms()
        )],
    )
    .await;
    let first_path = key_path(&agent, &first_id);
    let deletion = owner.delete(&first_path);
    tokio::pin!(deletion);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut deletion)
            .await
            .is_err(),
        "the deletion returned before the other node applied it"
    );
    database(
        &server,
        &["UPDATE key_nodes SET applied_version = 1000000 WHERE node_id = 'node_behind'"],
    )
    .await;
    let reported = Instant::now();
    deletion.await.expect(204, None);
    assert!(
        reported.elapsed() < Duration::from_secs(10),
        "the deletion went on waiting after the node reported"
    );

    // A node that never reports holds a change up for its lease, not longer.
    database(
        &server,
        &[&format!(
            "UPDATE key_nodes SET applied_version = 0, seen_at = {}, lease_ms = 1000 \
             WHERE node_id = 'node_behind'",
            now_ms()
        )],
    )
    .await;
    let started = Instant::now();
    owner
        .delete(&key_path(&agent, &second_id))
        .await
        .expect(204, None);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(30),
        "waited {waited:?} for a node with a lease of 1 s"
    );
    assert!(
        server
            .logs()
            .contains("nodes did not apply a key change within their lease"),
        "{}",
        server.logs()
    );
}

/// Runs a statement on the server's database directly, as an intruder with database access
/// (or a test setting up a past moment) would.
async fn database(server: &Server, statements: &[&str]) {
    use sqlx::Connection;
    let mut conn = sqlx::AnyConnection::connect(&server.database_url)
        .await
        .unwrap();
    for statement in statements {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
}

fn audit_verify(server: &Server) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_a2v2"))
        .args(["audit", "verify", "--data-dir"])
        .arg(server.dir.path())
        .arg("--database")
        .arg(&server.database_url)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[tokio::test]
async fn audit_verify_finds_an_event_edited_in_the_database() {
    sqlx::any::install_default_drivers();
    let server = Server::start().await;
    let owner = server.setup().await;
    for name in ["a", "b", "c"] {
        owner.create_agent(name).await;
    }
    let intact = audit_verify(&server);
    let out = String::from_utf8_lossy(&intact.stdout).into_owned();
    assert!(
        intact.status.success(),
        "{out} {}",
        String::from_utf8_lossy(&intact.stderr)
    );
    assert!(out.contains("audit log intact"), "{out}");
    let events = audit_actions(&owner, "agent.created").await;
    let victim = events[1]["id"].as_str().unwrap().to_owned();
    // The append-only trigger stops the server, not someone with the database's keys.
    let unlock = if server.on_postgres() {
        "ALTER TABLE audit_events DISABLE TRIGGER USER"
    } else {
        "DROP TRIGGER audit_events_append_only"
    };
    let edit =
        format!("UPDATE audit_events SET actor_label = 'someone else' WHERE id = '{victim}'");
    database(&server, &[unlock, &edit]).await;
    let broken = audit_verify(&server);
    assert!(!broken.status.success());
    let err = String::from_utf8_lossy(&broken.stderr).into_owned();
    assert!(err.contains(&victim) && err.contains("changed"), "{err}");
}

#[tokio::test]
async fn copying_a_key_needs_a_recent_password() {
    sqlx::any::install_default_drivers();
    let server = Server::start().await;
    let owner = server.setup().await;
    let agent = owner.create_agent("a").await;
    let (key_id, key) = owner.create_key(&agent, &[]).await;
    let reveal = format!("{}/reveal", key_path(&agent, &key_id));
    // Signing in counts as entering the password.
    owner.post(&reveal, json!({})).await.expect(200, None);
    // Eleven minutes later (moved back in the database) it no longer does.
    let past = crate::harness::now_ms() - 11 * 60 * 1000;
    database(
        &server,
        &[&format!(
            "UPDATE sessions SET created_at = {past}, confirmed_at = NULL"
        )],
    )
    .await;
    owner
        .post(&reveal, json!({}))
        .await
        .expect(403, Some("reauth_required"));
    owner
        .post(
            "/api/session/confirm",
            json!({"password": "wrong password!"}),
        )
        .await
        .expect(401, Some("invalid_credentials"));
    owner.get("/api/session").await.expect(200, None);
    owner
        .post(
            "/api/session/confirm",
            json!({"password": crate::harness::OWNER_PASSWORD}),
        )
        .await
        .expect(204, None);
    let copied = owner.post(&reveal, json!({})).await;
    copied.expect(200, None);
    assert_eq!(copied.body["key"], json!(key));
    let shown = owner.get(&key_path(&agent, &key_id)).await;
    assert_eq!(shown.body["reveal_count"], 2);
    assert!(shown.body["last_revealed_at"].is_string());
}
