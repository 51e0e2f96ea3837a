//! `/metrics`: requests by route template and status with latency histograms, pool and cache
//! numbers, and a listener of its own when `--metrics-listen` is set.

use reqwest::Method;

use crate::harness::Server;

async fn scrape(url: &str) -> String {
    reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn requests_are_counted_by_route_template_and_status() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let agent = owner.create_agent("measured").await;
    let (_, key) = owner.create_key(&agent, &["contacts:read"]).await;
    for _ in 0..3 {
        server.v1(Method::GET, "/v1/key", &key, None).await;
    }
    server
        .v1(Method::GET, "/v1/contacts/ct_missing", &key, None)
        .await
        .expect(404, Some("not_found"));
    server.v1(Method::GET, "/v1/key", "a2v2_bogus", None).await;
    let text = scrape(&server.url).await;
    for line in [
        "a2v2_http_requests_total{route=\"/v1/key\",method=\"GET\",status=\"200\"} 3",
        "a2v2_http_requests_total{route=\"/v1/key\",method=\"GET\",status=\"401\"} 1",
        "a2v2_http_requests_total{route=\"/v1/contacts/{id}\",method=\"GET\",status=\"404\"} 1",
        "a2v2_http_request_duration_seconds_count{route=\"/v1/key\",method=\"GET\"} 4",
        "a2v2_http_request_duration_seconds_bucket{route=\"/v1/key\",method=\"GET\",le=\"+Inf\"} 4",
    ] {
        assert!(text.contains(line), "missing {line} in:\n{text}");
    }
    for family in [
        "a2v2_db_connections{state=\"idle\"}",
        "a2v2_db_acquire_wait_seconds_total",
        "a2v2_audit_events_written_total",
        "a2v2_denied_requests_total 1",
        "a2v2_contact_cache_bytes",
        "a2v2_api_keys_cached 1",
    ] {
        assert!(text.contains(family), "missing {family} in:\n{text}");
    }
}

#[tokio::test]
async fn metrics_can_have_a_listener_of_their_own() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let server = Server::start_with(&["--metrics-listen", &address], &[]).await;
    let own = scrape(&format!("http://{address}")).await;
    assert!(own.contains("a2v2_api_keys_cached"), "{own}");
    let main = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap();
    assert_ne!(main.status(), 200, "not on the main address any more");
}
