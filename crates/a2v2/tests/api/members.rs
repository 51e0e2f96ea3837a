//! Members and roles: the role matrix over every management endpoint, the owner rules, and
//! that removals and role changes take effect at once.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Client, OWNER_EMAIL, OWNER_PASSWORD, Server, permission_body};

pub const PASSWORD: &str = "a long enough password";

/// Adds a member through the API as `by`; returns the new member's id.
pub async fn add_member(by: &Client, email: &str, role: &str) -> String {
    let reply = by
        .post(
            "/api/members",
            json!({ "email": email, "password": PASSWORD, "role": role }),
        )
        .await;
    reply.expect(201, None);
    assert_eq!(reply.body["email"], email);
    assert_eq!(reply.body["role"], role);
    reply.body["id"].as_str().expect("member id").to_owned()
}

/// Adds a member with `role` and returns their id and signed-in client.
pub async fn member_with_role(
    server: &Server,
    owner: &Client,
    email: &str,
    role: &str,
) -> (String, Client) {
    let id = add_member(owner, email, role).await;
    (id, server.sign_in(email, PASSWORD).await)
}

async fn owner_id(owner: &Client) -> String {
    let reply = owner.get("/api/session").await;
    reply.expect(200, None);
    reply.body["member"]["id"]
        .as_str()
        .expect("owner id")
        .to_owned()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    Member,
    Admin,
    Owner,
}

#[tokio::test]
async fn every_role_against_every_management_endpoint() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let (_, admin) = member_with_role(&server, &owner, "admin@example.com", "admin").await;
    let (_, member) = member_with_role(&server, &owner, "member@example.com", "member").await;
    let callers = [
        (Role::Owner, &owner),
        (Role::Admin, &admin),
        (Role::Member, &member),
    ];

    let key_body = json!({ "name": "matrix", "permissions": permission_body(&["contacts:read"]) });
    // (method, path with placeholders, body, least role allowed, success status)
    let table: Vec<(Method, &str, Option<Value>, Role, u16)> = vec![
        (Method::GET, "/api/session", None, Role::Member, 200),
        (Method::GET, "/api/agents", None, Role::Member, 200),
        (
            Method::POST,
            "/api/agents",
            Some(json!({ "name": "new" })),
            Role::Admin,
            201,
        ),
        (Method::GET, "/api/agents/{agent}", None, Role::Member, 200),
        (
            Method::PATCH,
            "/api/agents/{agent}",
            Some(json!({ "name": "renamed" })),
            Role::Admin,
            200,
        ),
        (
            Method::DELETE,
            "/api/agents/{spare_agent}",
            None,
            Role::Admin,
            204,
        ),
        (
            Method::GET,
            "/api/agents/{agent}/api-keys",
            None,
            Role::Member,
            200,
        ),
        (
            Method::POST,
            "/api/agents/{agent}/api-keys",
            Some(key_body),
            Role::Admin,
            201,
        ),
        (
            Method::GET,
            "/api/agents/{agent}/api-keys/{key}",
            None,
            Role::Member,
            200,
        ),
        (
            Method::PATCH,
            "/api/agents/{agent}/api-keys/{key}",
            Some(json!({ "name": "edited" })),
            Role::Admin,
            200,
        ),
        (
            Method::POST,
            "/api/agents/{agent}/api-keys/{key}/reveal",
            None,
            Role::Admin,
            200,
        ),
        (
            Method::DELETE,
            "/api/agents/{agent}/api-keys/{spare_key}",
            None,
            Role::Admin,
            204,
        ),
        (Method::GET, "/api/members", None, Role::Member, 200),
        (
            Method::POST,
            "/api/members",
            Some(json!({ "email": "{new_email}", "password": PASSWORD, "role": "member" })),
            Role::Admin,
            201,
        ),
        (
            Method::PATCH,
            "/api/members/{target}",
            Some(json!({ "role": "admin" })),
            Role::Admin,
            200,
        ),
        (
            Method::PATCH,
            "/api/members/{target}",
            Some(json!({ "password": "another long password" })),
            Role::Admin,
            200,
        ),
        (
            Method::DELETE,
            "/api/members/{spare_member}",
            None,
            Role::Admin,
            204,
        ),
        (Method::GET, "/api/audit-logs", None, Role::Admin, 200),
        (
            Method::GET,
            "/api/audit-logs/export?format=csv",
            None,
            Role::Admin,
            200,
        ),
        (
            Method::GET,
            "/api/audit-logs/export?format=jsonl",
            None,
            Role::Admin,
            200,
        ),
    ];

    for (round, (role, client)) in callers.iter().enumerate() {
        // Fresh things to act on for each caller, made by the owner.
        let agent = owner.create_agent(&format!("agent {round}")).await;
        let spare_agent = owner.create_agent(&format!("spare {round}")).await;
        let (key, _) = owner.create_key(&agent, &["contacts:read"]).await;
        let (spare_key, _) = owner.create_key(&agent, &[]).await;
        let target = add_member(&owner, &format!("target{round}@example.com"), "member").await;
        let spare_member = add_member(&owner, &format!("spare{round}@example.com"), "member").await;
        let fill = |text: &str| {
            text.replace("{agent}", &agent)
                .replace("{spare_agent}", &spare_agent)
                .replace("{spare_key}", &spare_key)
                .replace("{key}", &key)
                .replace("{target}", &target)
                .replace("{spare_member}", &spare_member)
                .replace("{new_email}", &format!("new{round}@example.com"))
        };
        for (method, path, body, least, status) in &table {
            let path = fill(path);
            let body = body
                .as_ref()
                .map(|b| serde_json::from_str(&fill(&b.to_string())).unwrap());
            let reply = client.send(method.clone(), &path, body).await;
            let what = format!("{role:?} {method} {path}: {}", reply.text);
            if role >= least {
                assert_eq!(reply.status.as_u16(), *status, "{what}");
            } else {
                assert_eq!(reply.status.as_u16(), 403, "{what}");
                reply.expect(403, Some("forbidden"));
            }
        }
    }
}

#[tokio::test]
async fn the_last_owner_can_be_neither_removed_nor_demoted() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let first = owner_id(&owner).await;

    owner
        .delete(&format!("/api/members/{first}"))
        .await
        .expect(409, Some("last_owner"));
    for role in ["admin", "member"] {
        owner
            .patch(&format!("/api/members/{first}"), json!({ "role": role }))
            .await
            .expect(409, Some("last_owner"));
    }
    // Keeping the role, or resetting the password, is fine.
    owner
        .patch(&format!("/api/members/{first}"), json!({ "role": "owner" }))
        .await
        .expect(200, None);

    // With a second owner the first may step down, and then the second is the last one.
    let (second, other) = member_with_role(&server, &owner, "second@example.com", "owner").await;
    owner
        .patch(&format!("/api/members/{first}"), json!({ "role": "admin" }))
        .await
        .expect(200, None);
    other
        .delete(&format!("/api/members/{second}"))
        .await
        .expect(409, Some("last_owner"));
    other
        .patch(
            &format!("/api/members/{second}"),
            json!({ "role": "member" }),
        )
        .await
        .expect(409, Some("last_owner"));

    // An owner may remove another owner while one remains.
    other
        .patch(&format!("/api/members/{first}"), json!({ "role": "owner" }))
        .await
        .expect(200, None);
    other
        .delete(&format!("/api/members/{first}"))
        .await
        .expect(204, None);
    let members = other.get("/api/members").await;
    let owners: Vec<&Value> = members.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "owner")
        .collect();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0]["id"], second.as_str());
}

#[tokio::test]
async fn admins_may_not_act_on_owners_or_make_them() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let owner_member = owner_id(&owner).await;
    let (admin_id, admin) = member_with_role(&server, &owner, "admin@example.com", "admin").await;
    let plain = add_member(&owner, "plain@example.com", "member").await;

    let at_owner = format!("/api/members/{owner_member}");
    admin
        .patch(&at_owner, json!({ "role": "member" }))
        .await
        .expect(403, Some("forbidden"));
    admin
        .patch(&at_owner, json!({ "password": "hijacked password" }))
        .await
        .expect(403, Some("forbidden"));
    admin
        .patch(&at_owner, json!({ "role": "owner" }))
        .await
        .expect(403, Some("forbidden"));
    admin.delete(&at_owner).await.expect(403, Some("forbidden"));
    admin
        .post(
            "/api/members",
            json!({ "email": "boss@example.com", "password": PASSWORD, "role": "owner" }),
        )
        .await
        .expect(403, Some("forbidden"));
    admin
        .patch(&format!("/api/members/{plain}"), json!({ "role": "owner" }))
        .await
        .expect(403, Some("forbidden"));
    admin
        .patch(
            &format!("/api/members/{admin_id}"),
            json!({ "role": "owner" }),
        )
        .await
        .expect(403, Some("forbidden"));

    // Nothing changed: the owner still signs in with the old password and is still owner.
    let again = server.sign_in(OWNER_EMAIL, OWNER_PASSWORD).await;
    let me = again.get("/api/session").await;
    assert_eq!(me.body["member"]["role"], "owner");

    // Admins manage admins and members.
    admin
        .patch(&format!("/api/members/{plain}"), json!({ "role": "admin" }))
        .await
        .expect(200, None);
    admin
        .patch(
            &format!("/api/members/{plain}"),
            json!({ "password": "a new long password" }),
        )
        .await
        .expect(200, None);
    admin
        .delete(&format!("/api/members/{plain}"))
        .await
        .expect(204, None);
    add_member(&admin, "helper@example.com", "admin").await;
}

#[tokio::test]
async fn a_removed_member_is_signed_out_at_once() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let (id, member) = member_with_role(&server, &owner, "leaving@example.com", "member").await;
    let second_device = server.sign_in("leaving@example.com", PASSWORD).await;
    member.get("/api/session").await.expect(200, None);

    owner
        .delete(&format!("/api/members/{id}"))
        .await
        .expect(204, None);
    member
        .get("/api/session")
        .await
        .expect(401, Some("unauthenticated"));
    second_device
        .get("/api/agents")
        .await
        .expect(401, Some("unauthenticated"));
    member
        .post(
            "/api/session",
            json!({ "email": "leaving@example.com", "password": PASSWORD }),
        )
        .await
        .expect(401, Some("invalid_credentials"));
    owner
        .delete(&format!("/api/members/{id}"))
        .await
        .expect(404, Some("not_found"));
}

#[tokio::test]
async fn a_role_change_applies_to_the_next_request() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let (id, member) = member_with_role(&server, &owner, "rising@example.com", "member").await;
    member
        .post("/api/agents", json!({ "name": "x" }))
        .await
        .expect(403, Some("forbidden"));

    let promoted = owner
        .patch(&format!("/api/members/{id}"), json!({ "role": "admin" }))
        .await;
    promoted.expect(200, None);
    assert_eq!(promoted.body["role"], "admin");
    member
        .post("/api/agents", json!({ "name": "x" }))
        .await
        .expect(201, None);
    member.get("/api/audit-logs").await.expect(200, None);

    owner
        .patch(&format!("/api/members/{id}"), json!({ "role": "member" }))
        .await
        .expect(200, None);
    member
        .post("/api/agents", json!({ "name": "y" }))
        .await
        .expect(403, Some("forbidden"));
    member
        .get("/api/audit-logs")
        .await
        .expect(403, Some("forbidden"));
}

#[tokio::test]
async fn a_password_reset_ends_the_members_sessions() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let (id, member) = member_with_role(&server, &owner, "forgetful@example.com", "member").await;
    let new_password = "a brand new password";
    let reply = owner
        .patch(
            &format!("/api/members/{id}"),
            json!({ "password": new_password }),
        )
        .await;
    reply.expect(200, None);
    assert!(reply.body.get("password").is_none() && reply.body.get("password_hash").is_none());
    member
        .get("/api/session")
        .await
        .expect(401, Some("unauthenticated"));
    let fresh = server.client();
    fresh
        .post(
            "/api/session",
            json!({ "email": "forgetful@example.com", "password": PASSWORD }),
        )
        .await
        .expect(401, Some("invalid_credentials"));
    server.sign_in("forgetful@example.com", new_password).await;

    // Resetting one's own password keeps the session it was done from.
    let me = owner_id(&owner).await;
    owner
        .patch(
            &format!("/api/members/{me}"),
            json!({ "password": "owner's new password" }),
        )
        .await
        .expect(200, None);
    owner.get("/api/session").await.expect(200, None);
    server.sign_in(OWNER_EMAIL, "owner's new password").await;
}

#[tokio::test]
async fn member_input_is_validated() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let cases = [
        (
            json!({ "email": "not-an-email", "password": PASSWORD, "role": "member" }),
            "email",
        ),
        (
            json!({ "email": "a@example.com", "password": "short", "role": "member" }),
            "password",
        ),
        (
            json!({ "email": "a@example.com", "password": PASSWORD, "role": "root" }),
            "role",
        ),
        (
            json!({ "email": "a@example.com", "password": PASSWORD }),
            "role",
        ),
        (
            json!({ "email": "a@example.com", "role": "member" }),
            "password",
        ),
        (
            json!({ "email": 5, "password": PASSWORD, "role": "member" }),
            "email",
        ),
        (
            json!({ "email": "a@example.com", "password": PASSWORD, "role": "member", "admin": true }),
            "admin",
        ),
    ];
    for (body, field) in cases {
        let reply = owner.post("/api/members", body.clone()).await;
        reply.expect(422, Some("validation_failed"));
        assert!(
            reply.body["error"]["fields"][field].is_string(),
            "{body}: {}",
            reply.text
        );
    }
    add_member(&owner, "Taken@Example.com", "member").await;
    owner
        .post(
            "/api/members",
            json!({ "email": "taken@example.COM", "password": PASSWORD, "role": "admin" }),
        )
        .await
        .expect(409, Some("conflict"));
    owner
        .post(
            "/api/members",
            json!({ "email": OWNER_EMAIL, "password": PASSWORD, "role": "admin" }),
        )
        .await
        .expect(409, Some("conflict"));
    owner
        .send(Method::POST, "/api/members", None)
        .await
        .expect(415, Some("unsupported_media_type"));

    let me = owner_id(&owner).await;
    owner
        .patch(&format!("/api/members/{me}"), json!({}))
        .await
        .expect(422, Some("validation_failed"));
    owner
        .patch(&format!("/api/members/{me}"), json!({ "role": 1 }))
        .await
        .expect(422, Some("validation_failed"));
    owner
        .patch(
            &format!("/api/members/{me}"),
            json!({ "password": "short" }),
        )
        .await
        .expect(422, Some("validation_failed"));
    owner
        .patch(
            &format!("/api/members/{me}"),
            json!({ "email": "x@example.com" }),
        )
        .await
        .expect(422, Some("validation_failed"));
    owner
        .patch("/api/members/mem_nope", json!({ "role": "admin" }))
        .await
        .expect(404, Some("not_found"));
    owner
        .send(Method::PUT, &format!("/api/members/{me}"), Some(json!({})))
        .await
        .expect(405, Some("method_not_allowed"));
    owner
        .get(&format!("/api/members/{me}"))
        .await
        .expect(405, Some("method_not_allowed"));
}

#[tokio::test]
async fn the_member_list_is_paginated() {
    let server = Server::start().await;
    let owner = server.setup().await;
    for n in 0..4 {
        add_member(&owner, &format!("m{n}@example.com"), "member").await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/members?limit=2".to_owned();
    loop {
        let page = owner.get(&path).await;
        page.expect(200, None);
        for member in page.body["data"].as_array().unwrap() {
            assert!(member["created_at"].is_string());
            assert!(member.get("password_hash").is_none());
            seen.push(member["email"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(cursor) => {
                assert_eq!(page.body["has_more"], true);
                path = format!("/api/members?limit=2&cursor={cursor}");
            }
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            OWNER_EMAIL,
            "m0@example.com",
            "m1@example.com",
            "m2@example.com",
            "m3@example.com"
        ]
    );
    owner
        .get("/api/members?limit=0")
        .await
        .expect(400, Some("bad_request"));
    owner
        .get("/api/members?cursor=%27%20OR%201%3D1")
        .await
        .expect(400, Some("bad_request"));
}

fn cli(server: &Server, email: &str, role: &str, password: &str) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_a2v2"));
    command
        .args(["members", "add", "--email", email, "--role", role])
        .arg("--data-dir")
        .arg(server.dir.path())
        .env("A2V2_MEMBER_PASSWORD", password)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null());
    command.arg("--database").arg(&server.database_url);
    command.output().expect("run a2v2 members add")
}

#[tokio::test]
async fn members_are_added_on_the_command_line_even_before_setup() {
    let server = Server::start().await;
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();

    let refused = cli(&server, "first@example.com", "member", PASSWORD);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("--role owner"),
        "{}",
        text(&refused.stderr)
    );

    let added = cli(&server, "first@example.com", "owner", PASSWORD);
    assert!(added.status.success(), "{}", text(&added.stderr));
    assert!(
        text(&added.stdout).contains("member added: first@example.com (owner"),
        "{}",
        text(&added.stdout)
    );

    // The workspace now exists: setup is closed, and the new owner signs in.
    let reply = server.client().get("/api/setup").await;
    assert_eq!(reply.body["needs_setup"], false);
    server
        .client()
        .post(
            "/api/setup",
            json!({ "email": "x@example.com", "password": PASSWORD, "workspace_name": "W" }),
        )
        .await
        .expect(409, Some("already_set_up"));
    let owner = server.sign_in("first@example.com", PASSWORD).await;

    let short = cli(&server, "second@example.com", "admin", "short");
    assert!(!short.status.success());
    assert!(text(&short.stderr).contains("password must be at least 12 characters"));
    let taken = cli(&server, "FIRST@example.com", "admin", PASSWORD);
    assert!(!taken.status.success());
    assert!(
        cli(&server, "second@example.com", "admin", PASSWORD)
            .status
            .success()
    );
    server.sign_in("second@example.com", PASSWORD).await;

    let events = owner.get("/api/audit-logs?action=member.created").await;
    let data = events.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{}", events.text);
    for event in data {
        assert_eq!(event["actor"]["type"], "system");
        assert_eq!(event["target"]["type"], "member");
    }
    assert_eq!(data[0]["target"]["label"], "second@example.com");
    assert_eq!(data[0]["details"]["role"], "admin");
    let setup = owner.get("/api/audit-logs?action=workspace.setup").await;
    assert_eq!(setup.body["data"][0]["actor"]["type"], "system");
}

#[tokio::test]
async fn invited_members_choose_their_own_password() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let (_, admin) = member_with_role(&server, &owner, "admin@example.com", "admin").await;
    let reply = admin
        .post(
            "/api/members",
            json!({ "email": "invited@example.com", "role": "member", "invite": true }),
        )
        .await;
    reply.expect(201, None);
    let token = reply.body["invite_token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 32);
    assert!(reply.body["invite_expires_at"].is_string());
    let invited_id = reply.body["id"].as_str().unwrap().to_owned();

    // Not usable before the invite is accepted.
    server
        .client()
        .post(
            "/api/session",
            json!({ "email": "invited@example.com", "password": token }),
        )
        .await
        .expect(401, Some("invalid_credentials"));
    admin
        .post(
            "/api/members",
            json!({ "email": "boss@example.com", "role": "owner", "invite": true }),
        )
        .await
        .expect(403, Some("forbidden"));
    admin
        .post(
            "/api/members",
            json!({ "email": "x@example.com", "role": "member", "invite": true, "password": PASSWORD }),
        )
        .await
        .expect(422, Some("validation_failed"));
    admin
        .post(
            "/api/members",
            json!({ "email": "x@example.com", "role": "member", "invite": "yes" }),
        )
        .await
        .expect(422, Some("validation_failed"));

    let public = server.client();
    public
        .post(
            "/api/invites/accept",
            json!({ "token": token, "password": "short" }),
        )
        .await
        .expect(422, Some("validation_failed"));
    public
        .post(
            "/api/invites/accept",
            json!({ "token": "not-a-token", "password": PASSWORD }),
        )
        .await
        .expect(404, Some("not_found"));
    let mut invited = server.client();
    let accepted = invited
        .post(
            "/api/invites/accept",
            json!({ "token": token, "password": PASSWORD }),
        )
        .await;
    accepted.expect(200, None);
    assert_eq!(accepted.body["member"]["id"], invited_id.as_str());
    invited.csrf = accepted.body["csrf_token"].as_str().map(str::to_owned);
    let me = invited.get("/api/session").await;
    me.expect(200, None);
    assert_eq!(me.body["member"]["role"], "member");
    server.sign_in("invited@example.com", PASSWORD).await;
    // One use only.
    public
        .post(
            "/api/invites/accept",
            json!({ "token": token, "password": "another long password" }),
        )
        .await
        .expect(404, Some("not_found"));

    let log = owner.get("/api/audit-logs/export?format=jsonl").await;
    assert!(
        !log.text.contains(&token),
        "the invite token is never logged"
    );
    let accepted_event = log
        .text
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|e| e["action"] == "member.updated" && e["target"]["id"] == invited_id.as_str())
        .expect("member.updated for the accepted invite");
    assert_eq!(accepted_event["details"]["invite_accepted"], true);
    assert_eq!(accepted_event["actor"]["id"], invited_id.as_str());
}
