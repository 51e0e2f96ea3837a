//! Regression tests for failure modes found in review: a node cut off from its database, CPU
//! burn before authentication, invites outliving role changes, stored key copies with reveal
//! off, lost counts at shutdown, cookie tossing, and proxy headers with ports.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    harness::{OWNER_EMAIL, Server},
    netfault::NetFault,
};

const PASSWORD: &str = "another long password";

/// The database URL with its host and port replaced by `addr`.
fn via(database_url: &str, addr: std::net::SocketAddr) -> String {
    let (scheme, rest) = database_url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let user = authority
        .rsplit_once('@')
        .map(|(user, _)| format!("{user}@"))
        .unwrap_or_default();
    format!("{scheme}://{user}{addr}/{path}")
}

fn target_of(database_url: &str) -> std::net::SocketAddr {
    let rest = database_url.split_once("://").unwrap().1;
    let authority = rest.split_once('/').unwrap().0;
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    host.parse().unwrap()
}

async fn status_of(node: &Server, key: &str) -> Value {
    let reply = node.v1(Method::GET, "/v1/key", key, None).await;
    json!({ "status": reply.status.as_u16(), "code": reply.code(), "retry_after": reply.headers.get("retry-after").is_some() })
}

async fn ready(node: &Server) -> u16 {
    reqwest::get(format!("{}/readyz", node.url))
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A node whose database connection is silently cut (no error, no close) stops serving keys
/// once its lease has passed, so a key deleted elsewhere meanwhile is never accepted; when
/// the connection comes back, it catches up by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_its_database_fails_closed_and_recovers() {
    let first = Server::start().await;
    if !first.on_postgres() {
        eprintln!("single-node SQLite run: the partition test runs in the PostgreSQL pass");
        return;
    }
    let owner = first.setup().await;
    let agent = owner.create_agent("partitioned").await;
    let (doomed_id, doomed) = owner.create_key(&agent, &["contacts:read"]).await;
    let (_, kept) = owner.create_key(&agent, &["contacts:read"]).await;
    let proxy = NetFault::start(target_of(&first.database_url));
    let second = first.node_via(
        &via(&first.database_url, proxy.addr()),
        &["--key-lease-seconds", "2", "--request-timeout-seconds", "3"],
    );
    assert_eq!(status_of(&second, &doomed).await["status"], 200);
    assert_eq!(ready(&second).await, 200);

    proxy.blackhole();
    owner
        .delete(&format!("/api/agents/{agent}/api-keys/{doomed_id}"))
        .await
        .expect(204, None);
    let deleted_at = Instant::now();
    // Within the lease the node may still answer from its cache; after it, never 200.
    let mut refused_after = None;
    while deleted_at.elapsed() < Duration::from_secs(8) {
        let seen = status_of(&second, &doomed).await;
        let elapsed = deleted_at.elapsed();
        if elapsed > Duration::from_millis(3500) {
            assert_eq!(seen["status"], 503, "after the lease: {seen}");
            assert_eq!(seen["code"], "unavailable");
            assert_eq!(seen["retry_after"], true);
        }
        if seen["status"] == 503 && refused_after.is_none() {
            refused_after = Some(elapsed);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("the partitioned node refused keys {refused_after:?} after the deletion");
    assert_eq!(status_of(&second, &kept).await["status"], 503);
    assert_eq!(ready(&second).await, 503);
    // Storage calls on the dashboard side end too, rather than hanging.
    let started = Instant::now();
    let stuck = second.client().get("/api/setup").await;
    assert_eq!(
        stuck.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        stuck.text
    );
    assert_eq!(stuck.code(), "unavailable");
    assert!(started.elapsed() < Duration::from_secs(15));

    proxy.restore();
    let recovered = Instant::now();
    loop {
        if status_of(&second, &kept).await["status"] == 200 && ready(&second).await == 200 {
            break;
        }
        assert!(
            recovered.elapsed() < Duration::from_secs(20),
            "the node did not recover; logs:\n{}",
            second.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status_of(&second, &doomed).await["status"], 401);
}

/// Setup is throttled, refused before any password hashing once done, and the sign-in
/// throttle counts an IPv6 client by its /64.
#[tokio::test]
async fn unauthenticated_work_is_bounded() {
    let server = Server::start_with(&["--trusted-proxies", "127.0.0.1/32"], &[]).await;
    server.setup().await;
    let hashes = server.metric("a2v2_argon2_runs_total").await;
    let http = reqwest::Client::new();
    let attempt = |path: &'static str, ip: String, body: Value| {
        let request = http
            .post(format!("{}{path}", server.url))
            .header("x-forwarded-for", ip)
            .json(&body);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let setup = json!({ "email": "late@example.com", "password": PASSWORD });
    for _ in 0..10 {
        assert_eq!(
            attempt("/api/setup", "198.51.100.7".into(), setup.clone()).await,
            409
        );
    }
    assert_eq!(
        attempt("/api/setup", "198.51.100.7".into(), setup.clone()).await,
        429
    );
    assert_eq!(
        server.metric("a2v2_argon2_runs_total").await,
        hashes,
        "a refused setup hashes nothing"
    );

    let wrong = json!({ "email": OWNER_EMAIL, "password": "not the password at all" });
    for i in 0..10 {
        let ip = format!("2001:db8:7:7::{:x}", i + 1);
        let status = attempt(
            "/api/session",
            ip,
            json!({ "email": format!("u{i}@example.com"), "password": "nope nope nope" }),
        )
        .await;
        assert_eq!(status, 401);
    }
    let same_64 = attempt("/api/session", "2001:db8:7:7:abcd::1".into(), wrong.clone()).await;
    assert_eq!(
        same_64, 429,
        "another address of the same /64 is the same client"
    );
    let other_64 = attempt("/api/session", "2001:db8:7:8::1".into(), wrong).await;
    assert_eq!(other_64, 401);
}

/// An invite is for the member as they were: a role change or a password set voids it.
#[tokio::test]
async fn invites_do_not_survive_role_changes_or_new_passwords() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let changes = [json!({ "role": "owner" }), json!({ "password": PASSWORD })];
    for (i, change) in changes.iter().enumerate() {
        let email = format!("invited{i}@example.com");
        let invited = owner
            .post(
                "/api/members",
                json!({ "email": email, "role": "member", "invite": true }),
            )
            .await;
        invited.expect(201, None);
        let token = invited.body["invite_token"].as_str().unwrap().to_owned();
        let id = invited.body["id"].as_str().unwrap().to_owned();
        owner
            .patch(&format!("/api/members/{id}"), change.clone())
            .await
            .expect(200, None);
        server
            .client()
            .post(
                "/api/invites/accept",
                json!({ "token": token, "password": "the invitee's password" }),
            )
            .await
            .expect(404, Some("not_found"));
    }
}

/// With reveal turned off, the copies kept from before are deleted at start-up (and the
/// deletion recorded), so only hashes remain, as the setting promises.
#[tokio::test]
async fn turning_reveal_off_deletes_stored_copies() {
    let mut server = Server::start().await;
    let owner = server.setup().await;
    let agent = owner.create_agent("copies").await;
    let (key_id, secret) = owner.create_key(&agent, &["contacts:read"]).await;
    let reveal = format!("/api/agents/{agent}/api-keys/{key_id}/reveal");
    assert_eq!(owner.post(&reveal, json!({})).await.body["key"], secret);

    server.set_flag("--key-reveal", "false");
    server.restart();
    let owner = server
        .sign_in(OWNER_EMAIL, crate::harness::OWNER_PASSWORD)
        .await;
    let events = owner
        .get("/api/audit-logs?action=api_key.copies_cleared")
        .await;
    assert_eq!(
        events.body["data"][0]["details"]["count"], 1,
        "{}",
        events.text
    );
    assert_eq!(events.body["data"][0]["actor"]["type"], "system");

    server.set_flag("--key-reveal", "true");
    server.restart();
    let owner = server
        .sign_in(OWNER_EMAIL, crate::harness::OWNER_PASSWORD)
        .await;
    owner
        .post(&reveal, json!({}))
        .await
        .expect(409, Some("reveal_disabled"));
    assert_eq!(
        server
            .v1(Method::GET, "/v1/key", &secret, None)
            .await
            .status,
        200,
        "the key itself still works"
    );
}

/// Denials counted in memory reach storage before a graceful shutdown closes it.
#[tokio::test]
async fn denial_counts_survive_a_graceful_shutdown() {
    let mut server = Server::start().await;
    server.setup().await;
    let bogus = "a2v2_0000000000000000000000000000000000000000000000000";
    for _ in 0..7 {
        server.v1(Method::GET, "/v1/key", bogus, None).await;
    }
    assert!(server.terminate().success());
    server.restart();
    let owner = server
        .sign_in(OWNER_EMAIL, crate::harness::OWNER_PASSWORD)
        .await;
    let events = owner.get("/api/audit-logs?action=api_request.denied").await;
    let counts: i64 = events.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["details"]["count"].as_i64().unwrap())
        .sum();
    assert_eq!(counts, 7, "{}", events.text);
}

/// Exactly one session cookie is trusted; over https the cookie carries the `__Host-` prefix.
#[tokio::test]
async fn session_cookies_cannot_be_tossed() {
    let server = Server::start_with(&["--public-url", "https://a2v2.example.com"], &[]).await;
    let reply = reqwest::Client::new()
        .post(format!("{}/api/setup", server.url))
        .json(&json!({ "email": OWNER_EMAIL, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let cookie = reply.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("__Host-a2v2_session="), "{cookie}");
    assert!(cookie.contains("; Secure") && cookie.contains("Path=/"));
    let pair = cookie.split(';').next().unwrap().to_owned();
    let session = |cookies: &str| {
        reqwest::Client::new()
            .get(format!("{}/api/session", server.url))
            .header("cookie", cookies.to_owned())
            .send()
    };
    assert_eq!(session(&pair).await.unwrap().status(), 200);
    let tossed = format!("{pair}; __Host-a2v2_session=planted");
    assert_eq!(session(&tossed).await.unwrap().status(), 401);
    let plain = pair.replace("__Host-", "");
    assert_eq!(session(&plain).await.unwrap().status(), 401);
}

/// Proxy hops with ports or brackets are read as addresses, and IPv4-mapped IPv6 entries of
/// an IP list match the IPv4 client they name.
#[tokio::test]
async fn forwarded_addresses_with_ports_and_mapped_entries() {
    let server = Server::start_with(&["--trusted-proxies", "127.0.0.1/32"], &[]).await;
    let owner = server.setup().await;
    let agent = owner.create_agent("proxied").await;
    let created = owner
        .post(
            &format!("/api/agents/{agent}/api-keys"),
            json!({ "name": "mapped", "ip_addresses": ["::ffff:203.0.113.9"] }),
        )
        .await;
    created.expect(201, None);
    assert_eq!(created.body["ip_addresses"], json!(["203.0.113.9"]));
    let secret = created.body["key"].as_str().unwrap().to_owned();
    let through = |xff: &'static str| {
        reqwest::Client::new()
            .get(format!("{}/v1/key", server.url))
            .bearer_auth(secret.clone())
            .header("x-forwarded-for", xff)
            .send()
    };
    let reply = through("203.0.113.9:5678").await.unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(
        reply.json::<Value>().await.unwrap()["client_ip"],
        "203.0.113.9"
    );
    let v6 = through("[2001:db8::9]:443").await.unwrap();
    assert_eq!(v6.status(), 403, "a bracketed hop names its client");
}

/// Step 1 of the Add API Key dialog is checked with the server's rules, without creating.
#[tokio::test]
async fn key_fields_can_be_checked_without_creating() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let agent = owner.create_agent("checks").await;
    let validate = format!("/api/agents/{agent}/api-keys/validate");
    let too_long = owner
        .post(
            &validate,
            json!({ "name": "x".repeat(101), "ip_addresses": "1.2.3" }),
        )
        .await;
    too_long.expect(422, Some("validation_failed"));
    assert_eq!(
        too_long.body["error"]["fields"]["name"],
        "must be at most 100 characters"
    );
    assert!(too_long.body["error"]["fields"]["ip_addresses"].is_string());
    owner
        .post(
            &validate,
            json!({ "name": "fine", "description": null, "ip_addresses": [] }),
        )
        .await
        .expect(204, None);
    let keys = owner.get(&format!("/api/agents/{agent}/api-keys")).await;
    assert_eq!(keys.body["data"], json!([]), "nothing was created");
    let member_email = "viewer@example.com";
    owner
        .post(
            "/api/members",
            json!({ "email": member_email, "password": PASSWORD, "role": "member" }),
        )
        .await
        .expect(201, None);
    server
        .sign_in(member_email, PASSWORD)
        .await
        .post(&validate, json!({ "name": "fine" }))
        .await
        .expect(403, Some("forbidden"));
}

/// Sign-in failures are counted for the whole deployment: spread over two nodes, they lock
/// the next attempt on either.
#[tokio::test]
async fn sign_in_throttling_holds_across_nodes() {
    let first = Server::start().await;
    if !first.on_postgres() {
        eprintln!("single-node SQLite run: the two-node test runs in the PostgreSQL pass");
        return;
    }
    first.setup().await;
    let second = first.second_node();
    let wrong = json!({ "email": OWNER_EMAIL, "password": "not the password at all" });
    for i in 0..10 {
        let node = if i % 2 == 0 { &first } else { &second };
        node.client()
            .post("/api/session", wrong.clone())
            .await
            .expect(401, Some("invalid_credentials"));
    }
    for node in [&first, &second] {
        node.client()
            .post("/api/session", wrong.clone())
            .await
            .expect(429, Some("rate_limited"));
    }
}
