//! An open-loop load generator: sends GET requests on a fixed schedule, whatever the server's
//! speed, and measures each one from when it was sent. A closed-loop client such as wrk
//! waits for answers before sending more, so when the server slows down it sends less and the
//! delay it causes goes unmeasured; a fixed schedule shows the latency a steady stream of
//! clients would see. Timing starts when a request is sent rather than when it was due
//! because the timer wakes at millisecond granularity: sending never waits for answers, so
//! the server's delays cannot push requests back.
//!
//! Usage: `cargo run --release --example open_loop -- URL RATE SECONDS [HEADER: VALUE]...`
//!
//! Prints one line: `requests=… errors=… p50_ms=… p90_ms=… p99_ms=… p999_ms=… max_ms=…`.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: open_loop URL RATE SECONDS [HEADER: VALUE]...";
    let url = args.next().context(usage)?;
    let rate: f64 = args.next().context(usage)?.parse()?;
    let seconds: f64 = args.next().context(usage)?.parse()?;
    if !(rate > 0.0 && seconds > 0.0) {
        bail!("{usage}: RATE and SECONDS must be positive");
    }
    let mut headers = reqwest::header::HeaderMap::new();
    for header in args {
        let (name, value) = header
            .split_once(':')
            .with_context(|| format!("not a header: {header}"))?;
        headers.insert(
            reqwest::header::HeaderName::from_bytes(name.trim().as_bytes())?,
            value.trim().parse()?,
        );
    }
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(256)
        .build()?;

    let total = (rate * seconds) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now() + Duration::from_millis(50);
    let mut tasks = tokio::task::JoinSet::new();
    let mut latencies = Vec::with_capacity(total);
    let mut errors = 0usize;
    let mut record = |(latency, ok): (Duration, bool)| {
        latencies.push(latency);
        errors += usize::from(!ok);
    };
    for i in 0..total {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let request = client.get(&url);
        let sent = Instant::now();
        tasks.spawn(async move {
            let ok = match request.send().await {
                Ok(response) => {
                    let success = response.status().is_success();
                    success && response.bytes().await.is_ok()
                }
                Err(_) => false,
            };
            (sent.elapsed(), ok)
        });
        // Collect finished requests as we go, so that finished tasks do not pile up.
        while let Some(done) = tasks.try_join_next() {
            record(done?);
        }
    }
    while let Some(done) = tasks.join_next().await {
        record(done?);
    }
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "requests={total} errors={errors} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} p999_ms={:.3} max_ms={:.3}",
        at(0.5),
        at(0.9),
        at(0.99),
        at(0.999),
        at(1.0),
    );
    Ok(())
}
