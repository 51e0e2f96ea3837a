//! In-process cost of verifying one `/v1` request: parse + keyed hash + cache lookup + IP
//! check + permission check, with 1,000 / 100,000 / 1,000,000 keys loaded.

#![allow(clippy::expect_used)]

use std::{hint::black_box, net::IpAddr, sync::Arc, time::Duration};

use a2v2::{
    access::authorize,
    config::MasterKeySource,
    crypto::{KeySecrets, MasterKey},
    keys::{
        cache::{CachedKey, KeyCache},
        format,
        limiter::Limiter,
    },
    model::{
        ip,
        key::RateLimit,
        permissions::{Action, Area, Permission, Permissions},
    },
};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const READ: Permission = Permission(Area::Contacts, Action::Read);

fn loaded_cache(count: usize) -> (KeyCache, Vec<String>) {
    let master = MasterKey::load(&MasterKeySource::Inline("5a".repeat(32))).expect("master key");
    let cache = KeyCache::new(KeySecrets::new(&master));
    let allow = ip::parse_list(&serde_json::json!([
        "10.0.0.0/8",
        "192.168.1.1",
        "2001:db8::/32"
    ]))
    .expect("ip list");
    let mut sample = Vec::with_capacity(1024);
    for n in 0..count {
        let secret = format::generate();
        cache.put(CachedKey::new(
            format!("key_{n}"),
            format!("agt_{}", n % 1000).into(),
            "bench".into(),
            cache.secrets().lookup_hash(&secret),
            Permissions::default().with(READ),
            allow.clone(),
            None,
            None,
        ));
        if sample.len() < 1024 && n % (count / 1024).max(1) == 0 {
            sample.push(secret);
        }
    }
    (cache, sample)
}

fn verification(c: &mut Criterion) {
    let client: IpAddr = "10.20.30.40".parse().expect("ip");
    let mut group = c.benchmark_group("verify");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for count in [1_000usize, 100_000, 1_000_000] {
        let (cache, sample) = loaded_cache(count);
        let mut next = 0usize;
        group.bench_with_input(BenchmarkId::new("valid_key", count), &count, |b, _| {
            b.iter(|| {
                next = (next + 1) % sample.len();
                let key = authorize(&cache, Some(&sample[next]), client, Some(READ), 0);
                black_box(key.is_ok())
            })
        });
    }
    group.finish();

    let (cache, sample) = loaded_cache(1_000);
    let mut flipped = sample[0].clone();
    let last = flipped.pop().unwrap_or('A');
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    c.bench_function("verify/bad_checksum", |b| {
        b.iter(|| black_box(authorize(&cache, Some(&flipped), client, Some(READ), 0).is_err()))
    });
    let unknown = format::generate();
    c.bench_function("verify/unknown_key", |b| {
        b.iter(|| black_box(authorize(&cache, Some(&unknown), client, Some(READ), 0).is_err()))
    });
    // The same valid-key path for a key with a rate limit: verification, then the limiter.
    let limited = format::generate();
    let mut entry = CachedKey::new(
        "key_limited".into(),
        "agt_0".into(),
        "bench".into(),
        cache.secrets().lookup_hash(&limited),
        Permissions::default().with(READ),
        Vec::new(),
        None,
        None,
    );
    entry.limiter = Some(Arc::new(Limiter::new(
        RateLimit {
            requests: 1_000_000,
            per_seconds: 1,
        },
        false,
    )));
    cache.put(entry);
    let mut now = 0i64;
    c.bench_function("verify/valid_key_rate_limited", |b| {
        b.iter(|| {
            now += 1;
            let key = authorize(&cache, Some(&limited), client, Some(READ), now).expect("valid");
            let quota = key.limiter.as_ref().map(|limiter| limiter.admit(now));
            black_box(quota.is_some_and(|q| q.is_ok()))
        })
    });
    c.bench_function("verify/parts/keyed_hash", |b| {
        b.iter(|| black_box(cache.secrets().lookup_hash(black_box(&sample[1]))))
    });
}

criterion_group!(benches, verification);
criterion_main!(benches);
