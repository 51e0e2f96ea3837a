//! A bare axum server for load comparisons: `GET /` answers a constant JSON object.
//!
//! Usage: `cargo run --release --example baseline -- <port>` (listens on 127.0.0.1).

use axum::{Json, Router, routing::get};
use serde_json::{Value, json};

async fn constant() -> Json<Value> {
    Json(json!({
        "id": "ct_0190a0b0c0d07e8f9a0b1c2d3e4f5a6b",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "version": 1,
    }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: baseline <port>"))?
        .parse()?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("baseline listening on http://{}", listener.local_addr()?);
    axum::serve(listener, Router::new().route("/", get(constant))).await?;
    Ok(())
}
