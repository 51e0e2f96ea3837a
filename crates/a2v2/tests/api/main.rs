//! Black-box tests: the real binary, a temp data directory, HTTP.

// Test helpers fail loudly on anything unexpected; that is their job.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod backup;
mod contacts;
mod contacts_crm;
mod documents;
mod documents_ocr;
mod documents_queue;
mod failover;
mod foundation;
mod hardening;
mod harness;
mod hygiene;
mod keys;
mod keys_cli;
mod members;
mod metrics;
mod netfault;
mod openapi;
mod search;
mod seed;
mod slow_clients;
