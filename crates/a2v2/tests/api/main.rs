//! Black-box tests: the real binary, a temp data directory, HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod foundation;
mod harness;
mod keys;
