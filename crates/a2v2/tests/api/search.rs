//! The contacts `q` search answers exactly what a scan would: a case-insensitive substring of
//! "first last", email or company, through the trigram index for queries of three or more
//! characters and a scan for shorter ones, in id order across pages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::Server;

const ALL: &[&str] = &[
    "contacts:create",
    "contacts:read",
    "contacts:update",
    "contacts:delete",
];

/// Name, company and job parts to combine; the job title and notes are not searched.
const FIRST: &[&str] = &[
    "Ada",
    "ANNA",
    "josé",
    "Zoë",
    "Straße",
    "東京",
    "O'Brien",
    "Ann-Marie",
    "Ωmega",
    "li",
    "\"Quoted\"",
    "50%",
    "a_b",
    "İlkay",
    "Søren",
];
const LAST: &[&str] = &[
    "Lovelace",
    "von Neumann",
    "MÜLLER",
    "Grüße",
    "株式会社",
    "d'Arc",
    "x",
    "Back\\slash",
    "100%_off",
    "Ng",
];
const COMPANY: &[&str] = &[
    "Acme",
    "ÉCOLE Polytechnique",
    "東京都庁",
    "Ann & Co",
    "it's",
    "100% Navy_Corp",
    "",
    "Straße GmbH",
];

/// A deterministic sequence, so a failure can be replayed.
struct Lcg(u64);

impl Lcg {
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        from[((self.0 >> 33) as usize) % from.len()]
    }
}

/// What the `q` filter searches, computed from the contact as the server returns it.
fn searched(contact: &Value) -> String {
    let part = |name: &str| contact[name].as_str().unwrap_or_default().to_lowercase();
    format!(
        "{} {}\n{}\n{}",
        part("first_name"),
        part("last_name"),
        part("email"),
        part("company")
    )
}

fn query_string(q: &str, limit: u32, cursor: Option<&str>) -> String {
    let mut params = vec![("q", q.to_owned()), ("limit", limit.to_string())];
    if let Some(cursor) = cursor {
        params.push(("cursor", cursor.to_owned()));
    }
    let url = reqwest::Url::parse_with_params("http://x/v1/contacts", &params).unwrap();
    format!("/v1/contacts?{}", url.query().unwrap())
}

/// Every id `q` finds, walking pages of `limit`.
async fn search(server: &Server, key: &str, q: &str, limit: u32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let reply = server
            .v1(
                Method::GET,
                &query_string(q, limit, cursor.as_deref()),
                key,
                None,
            )
            .await;
        reply.expect(200, None);
        let page = reply.body["data"].as_array().unwrap();
        assert!(page.len() <= limit as usize);
        ids.extend(page.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        match reply.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
}

fn expected(contacts: &[Value], q: &str) -> Vec<String> {
    let needle = q.trim().to_lowercase();
    let mut ids: Vec<String> = contacts
        .iter()
        .filter(|c| searched(c).contains(&needle))
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

const QUERIES: &[&str] = &[
    // One and two characters: no trigram, scanned.
    "a",
    "É",
    "ß",
    "東",
    "%",
    "_",
    "'",
    "\"",
    "\\",
    "an",
    "AN",
    "%_",
    "'s",
    "ö",
    // Three characters and more.
    "ann",
    "ANN",
    "Ann",
    "é'",
    "ßE",
    "東京都",
    "京都庁",
    "100",
    "0%_",
    "%_o",
    "a_b",
    "n-m",
    "\"qu",
    "'br",
    "k\\s",
    "ada love",
    " Ann ",
    "@ex",
    "ample.c",
    "ümü",
    "İlk",
    "i̇lk",
    "søren",
    "zoë",
    "ωmega",
    "grüße",
    "straße",
    "strasse",
    "株式会社",
    "'Arc",
    "& co",
    "lovelace",
    "ëco",
    "nobody here at all",
    "a rather long query that is longer than any searched text and so can never match",
    // Text the contacts have only in fields the search does not read.
    "engineer",
    "secret note",
];

async fn check_every_query(server: &Server, key: &str, contacts: &[Value]) {
    for q in QUERIES {
        let want = expected(contacts, q);
        assert_eq!(search(server, key, q, 200).await, want, "q={q:?}");
        // A small page size walks the same results through many cursors.
        if want.len() > 7 {
            assert_eq!(
                search(server, key, q, 7).await,
                want,
                "q={q:?} in pages of 7"
            );
        }
    }
}

#[tokio::test]
async fn search_equals_a_scan_over_generated_contacts() {
    let server = Server::start().await;
    let owner = server.setup().await;
    let agent = owner.create_agent("Search bot").await;
    let (_, key) = owner.create_key(&agent, ALL).await;
    // Another agent's contacts match too, but must never be returned.
    let other = owner.create_agent("Other").await;
    let (_, other_key) = owner.create_key(&other, ALL).await;
    server
        .v1(
            Method::POST,
            "/v1/contacts",
            &other_key,
            Some(json!({"first_name": "Ann", "company": "Acme"})),
        )
        .await
        .expect(201, None);

    let mut rng = Lcg(7);
    let mut contacts = Vec::new();
    for i in 0..300 {
        let mut body = json!({
            "first_name": format!("{}{}", rng.pick(FIRST), rng.pick(&["", "", " Jr", "x"])),
            "last_name": rng.pick(LAST),
            "job_title": "Engineer",
            "notes": "secret note",
        });
        match i % 4 {
            0 => body["email"] = json!(format!("User{i}.{}@Example.COM", rng.pick(&["a", "B"]))),
            1 => body["company"] = json!(rng.pick(COMPANY)),
            2 => {
                body["email"] = json!(format!("x{i}@acme.io"));
                body["company"] = json!(rng.pick(COMPANY));
            }
            _ => {}
        }
        let reply = server
            .v1(Method::POST, "/v1/contacts", &key, Some(body))
            .await;
        reply.expect(201, None);
        contacts.push(reply.body);
    }
    check_every_query(&server, &key, &contacts).await;

    // Edits and deletions reach the index: rename some, delete others, search again.
    for i in (0..contacts.len()).step_by(9) {
        let id = contacts[i]["id"].as_str().unwrap().to_owned();
        let reply = server
            .v1(
                Method::PATCH,
                &format!("/v1/contacts/{id}"),
                &key,
                Some(json!({"last_name": "Renamed Straße", "company": "NEWCO 東京"})),
            )
            .await;
        reply.expect(200, None);
        contacts[i] = reply.body;
    }
    let mut kept = Vec::new();
    for (i, contact) in contacts.into_iter().enumerate() {
        if i % 10 == 3 {
            let id = contact["id"].as_str().unwrap();
            server
                .v1(Method::DELETE, &format!("/v1/contacts/{id}"), &key, None)
                .await
                .expect(204, None);
        } else {
            kept.push(contact);
        }
    }
    assert!(!expected(&kept, "renamed").is_empty());
    assert!(!expected(&kept, "newco 東").is_empty());
    check_every_query(&server, &key, &kept).await;
    for q in ["renamed", "newco 東", "d straße"] {
        assert_eq!(
            search(&server, &key, q, 5).await,
            expected(&kept, q),
            "q={q:?}"
        );
    }
}
