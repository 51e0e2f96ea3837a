//! Request metrics: counts by route, method and status, and latency histograms, kept in
//! atomics per route (each route's layer holds its own slot: no lookup, no lock, no
//! allocation per request) and rendered in the Prometheus text format.

use std::{
    fmt::Write,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The statuses counted one by one; any other lands in the last slot under its class.
const STATUSES: [u16; 20] = [
    200, 201, 202, 204, 400, 401, 403, 404, 405, 408, 409, 412, 413, 415, 422, 429, 500, 502, 503,
    504,
];

/// The numbers of one route and method.
pub struct RouteMetrics {
    method: &'static str,
    route: &'static str,
    by_status: [AtomicU64; STATUSES.len() + 1],
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl RouteMetrics {
    fn new(method: &'static str, route: &'static str) -> Self {
        Self {
            method,
            route,
            by_status: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub(super) fn observe(&self, status: u16, seconds: f64) {
        let slot = STATUSES
            .iter()
            .position(|s| *s == status)
            .unwrap_or(STATUSES.len());
        self.by_status[slot].fetch_add(1, Ordering::Relaxed);
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }
}

/// Every route's numbers, for rendering.
#[derive(Default)]
pub struct Registry {
    routes: Mutex<Vec<Arc<RouteMetrics>>>,
}

impl Registry {
    /// A slot for one route and method; called while the router is built.
    pub fn register(&self, method: &'static str, route: &'static str) -> Arc<RouteMetrics> {
        let slot = Arc::new(RouteMetrics::new(method, route));
        self.routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Arc::clone(&slot));
        slot
    }

    /// The request families in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let routes = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        out.push_str(
            "# HELP a2v2_http_requests_total HTTP requests by route template, method and status.\n\
             # TYPE a2v2_http_requests_total counter\n",
        );
        for route in &routes {
            for (slot, count) in route.by_status.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count == 0 {
                    continue;
                }
                let status = STATUSES
                    .get(slot)
                    .map_or("other".to_owned(), u16::to_string);
                let _ = writeln!(
                    out,
                    "a2v2_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {count}",
                    route.route, route.method
                );
            }
        }
        out.push_str(
            "# HELP a2v2_http_request_duration_seconds Time to the response headers, by route template and method.\n\
             # TYPE a2v2_http_request_duration_seconds histogram\n",
        );
        for route in &routes {
            let count = route.count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let labels = format!("route=\"{}\",method=\"{}\"", route.route, route.method);
            let mut cumulative = 0;
            for (bound, bucket) in BUCKETS.iter().zip(&route.buckets) {
                cumulative += bucket.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "a2v2_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let sum = route.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "a2v2_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}\n\
                 a2v2_http_request_duration_seconds_sum{{{labels}}} {sum}\n\
                 a2v2_http_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let registry = Registry::default();
        let route = registry.register("GET", "/v1/contacts/{id}");
        route.observe(200, 0.0003);
        route.observe(200, 0.02);
        route.observe(404, 0.002);
        route.observe(418, 20.0);
        let mut out = String::new();
        registry.render(&mut out);
        assert!(out.contains(
            "a2v2_http_requests_total{route=\"/v1/contacts/{id}\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(out.contains("status=\"404\"} 1"));
        assert!(out.contains("status=\"other\"} 1"));
        assert!(out.contains("le=\"0.0005\"} 1\n"));
        assert!(out.contains("le=\"0.0025\"} 2\n"));
        assert!(out.contains("le=\"0.025\"} 3\n"));
        assert!(out.contains("le=\"10\"} 3\n"));
        assert!(out.contains("le=\"+Inf\"} 4\n"));
        assert!(out.contains("_count{route=\"/v1/contacts/{id}\",method=\"GET\"} 4"));
    }
}
