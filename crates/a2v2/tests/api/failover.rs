//! Two nodes on a pg_auto_failover formation (scripts/pg-ha) through its multi-host URL:
//! the primary is killed under steady writes and key checks. Both nodes must write again
//! within 30 s, lose no acknowledged write, and never accept a key deleted before the kill.
//!
//! Needs `A2V2_TEST_PG_HA_URL` (the formation's URL, from `scripts/pg-ha up`) and
//! `A2V2_TEST_PG_HA_DIR` (its directory); without them the test says so and passes.

use std::{
    collections::BTreeSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::json;

use crate::harness::Server;

/// The formation's URL with `database` in place of its database.
fn with_database(url: &str, database: &str) -> String {
    let (before, after) = url.split_once("://").unwrap();
    let (authority, rest) = after.split_once('/').unwrap();
    let query = rest
        .split_once('?')
        .map_or(String::new(), |(_, q)| format!("?{q}"));
    format!("{before}://{authority}/{database}{query}")
}

/// Creates a database on whichever host is the primary now.
async fn create_database(url: &str, name: &str) {
    let (scheme, after) = url.split_once("://").unwrap();
    let (authority, rest) = after.split_once('/').unwrap();
    let (user, hosts) = authority.rsplit_once('@').unwrap_or(("", authority));
    let database = rest.split('?').next().unwrap();
    // A formation may still be electing its primary (e.g. after an earlier test's failover).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while std::time::Instant::now() < deadline {
        if try_create_database(scheme, user, hosts, database, name).await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    panic!("no primary among {hosts}");
}

async fn try_create_database(
    scheme: &str,
    user: &str,
    hosts: &str,
    database: &str,
    name: &str,
) -> bool {
    use sqlx::{Connection, Executor};
    for host in hosts.split(',') {
        let single = format!("{scheme}://{user}@{host}/{database}");
        let Ok(mut conn) = sqlx::PgConnection::connect(&single).await else {
            continue;
        };
        let Ok((in_recovery,)) = sqlx::query_as::<_, (bool,)>("SELECT pg_is_in_recovery()")
            .fetch_one(&mut conn)
            .await
        else {
            continue;
        };
        if !in_recovery
            && conn
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .is_ok()
        {
            return true;
        }
    }
    false
}

fn pg_ha(args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/pg-ha");
    let output = std::process::Command::new(script)
        .args(args)
        .output()
        .expect("run scripts/pg-ha");
    assert!(
        output.status.success(),
        "pg-ha {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

struct Writes {
    acknowledged: Mutex<BTreeSet<String>>,
    /// Milliseconds from the kill to the first acknowledged write sent after it, per node
    /// (0: none yet).
    back_after_ms: [AtomicU64; 2],
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_follow_a_failover_without_losing_writes() {
    let (Ok(formation), Ok(dir)) = (
        std::env::var("A2V2_TEST_PG_HA_URL"),
        std::env::var("A2V2_TEST_PG_HA_DIR"),
    ) else {
        eprintln!(
            "SKIPPED: no pg_auto_failover formation (set A2V2_TEST_PG_HA_URL and \
             A2V2_TEST_PG_HA_DIR, see scripts/pg-ha)"
        );
        return;
    };
    // Another test may have just failed the formation over: start from primary + secondary.
    pg_ha(&["wait-healthy", &dir]);
    let database = format!("a2v2_failover_{}", uuid::Uuid::now_v7().simple());
    create_database(&formation, &database).await;
    let url = with_database(&formation, &database);
    let first = Server::start_on(&url, &[]);
    let owner = first.setup().await;
    let agent = owner.create_agent("failover").await;
    let (_, writer_key) = owner
        .create_key(&agent, &["contacts:create", "contacts:read"])
        .await;
    let (doomed_id, doomed) = owner.create_key(&agent, &["contacts:read"]).await;
    let second = first.second_node();
    let nodes = [first.url.clone(), second.url.clone()];

    owner
        .delete(&format!("/api/agents/{agent}/api-keys/{doomed_id}"))
        .await
        .expect(204, None);
    for node in &nodes {
        let started = Instant::now();
        while status(node, &doomed).await != 401 {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{node} still accepts the key"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let writes = Arc::new(Writes {
        acknowledged: Mutex::new(BTreeSet::new()),
        back_after_ms: [AtomicU64::new(0), AtomicU64::new(0)],
    });
    let killed_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let leaked = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (index, node) in nodes.iter().enumerate() {
        let (target, key, writes, killed_at, stopping) = (
            node.clone(),
            writer_key.clone(),
            Arc::clone(&writes),
            Arc::clone(&killed_at),
            Arc::clone(&stop),
        );
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let mut n = 0u64;
            while !stopping.load(Ordering::Relaxed) {
                n += 1;
                let sent_at = Instant::now();
                let sent = http
                    .post(format!("{target}/v1/contacts"))
                    .bearer_auth(&key)
                    .json(&json!({ "first_name": format!("node {index} write {n}") }))
                    .send()
                    .await;
                let Ok(reply) = sent else { continue };
                if reply.status() != 201 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                let Ok(body) = reply.json::<serde_json::Value>().await else {
                    continue;
                };
                writes
                    .acknowledged
                    .lock()
                    .unwrap()
                    .insert(body["id"].as_str().unwrap().to_owned());
                let killed = *killed_at.lock().unwrap();
                // Only a write sent after the kill shows that the node writes again.
                if let Some(killed) = killed.filter(|killed| sent_at > *killed) {
                    let ms = killed.elapsed().as_millis().max(1) as u64;
                    let _ = writes.back_after_ms[index].compare_exchange(
                        0,
                        ms,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
            }
        }));
        let (node, doomed, stop, leaked) = (
            node.clone(),
            doomed.clone(),
            Arc::clone(&stop),
            Arc::clone(&leaked),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if status(&node, &doomed).await == 200 {
                    leaked.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
    let before_kill = writes.acknowledged.lock().unwrap().len();
    let old_port = pg_ha(&["kill-primary", &dir]);
    *killed_at.lock().unwrap() = Some(Instant::now());
    let deadline = Instant::now() + Duration::from_secs(30);
    while writes
        .back_after_ms
        .iter()
        .any(|ms| ms.load(Ordering::Relaxed) == 0)
    {
        assert!(
            Instant::now() < deadline,
            "the nodes did not write again within 30 s of the kill; logs:\n{}\n{}",
            first.logs(),
            second.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }

    let acknowledged = writes.acknowledged.lock().unwrap().clone();
    let mut lost = 0;
    for id in &acknowledged {
        let reply = first
            .v1(
                reqwest::Method::GET,
                &format!("/v1/contacts/{id}"),
                &writer_key,
                None,
            )
            .await;
        if reply.status != 200 {
            lost += 1;
            eprintln!("lost {id}: {}", reply.status);
        }
    }
    let outage: Vec<f64> = writes
        .back_after_ms
        .iter()
        .map(|ms| ms.load(Ordering::Relaxed) as f64 / 1000.0)
        .collect();
    eprintln!(
        "failover: killed the primary on port {old_port}; writes resumed after {:.1} s (node 1) \
         and {:.1} s (node 2); {} writes acknowledged ({before_kill} before the kill), {lost} \
         lost; a deleted key was accepted {} times",
        outage[0],
        outage[1],
        acknowledged.len(),
        leaked.load(Ordering::Relaxed)
    );
    assert_eq!(lost, 0, "acknowledged writes were lost");
    assert_eq!(
        leaked.load(Ordering::Relaxed),
        0,
        "a deleted key was accepted"
    );
    pg_ha(&["wait-healthy", &dir]);
}

async fn status(node: &str, key: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{node}/v1/key"))
        .bearer_auth(key)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}
