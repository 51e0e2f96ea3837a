//! `GET /openapi.json`: served by the real binary without credentials, and what it promises
//! matches what the server answers.

use reqwest::Method;
use serde_json::Value;

use crate::harness::Server;

async fn document(url: &str) -> Value {
    let response = reqwest::get(format!("{url}/openapi.json")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_document_is_public_and_its_error_examples_are_what_the_server_sends() {
    let server = Server::start().await;
    let doc = document(&server.url).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["paths"]["/v1/contacts"]["post"]["security"][0]["bearer"],
        serde_json::json!([])
    );
    assert!(doc["components"]["securitySchemes"]["csrf"].is_object());

    let owner = server.setup().await;
    let agent = owner.create_agent("documented").await;
    let (_, key) = owner.create_key(&agent, &["contacts:read"]).await;
    let examples = |path: &str, method: &str, status: &str| {
        doc["paths"][path][method]["responses"][status]["content"]["application/json"]["examples"]
            .clone()
    };

    let missing = server
        .v1(Method::GET, "/v1/contacts/ct_missing", &key, None)
        .await;
    missing.expect(404, Some("not_found"));
    let example = &examples("/v1/contacts/{id}", "get", "404")["not_found"]["value"]["error"];
    assert_eq!(example["message"], missing.body["error"]["message"]);

    let denied = server
        .v1(
            Method::POST,
            "/v1/contacts",
            &key,
            Some(serde_json::json!({"first_name": "Ada"})),
        )
        .await;
    denied.expect(403, Some("permission_denied"));
    let example = &examples("/v1/contacts", "post", "403")["permission_denied"]["value"]["error"];
    assert_eq!(
        example["required_permission"],
        denied.body["error"]["required_permission"]
    );
    assert_eq!(example["message"], denied.body["error"]["message"]);

    // A key is not needed to read the document, and a session is not either.
    let unauthenticated = server.client().get("/api/agents").await;
    unauthenticated.expect(401, Some("unauthenticated"));
    let example = &examples("/api/agents", "get", "401")["unauthenticated"]["value"]["error"];
    assert_eq!(example["message"], unauthenticated.body["error"]["message"]);
}
