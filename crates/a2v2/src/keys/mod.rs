//! API keys: the key format, what a client may set, the in-memory verification cache, the
//! service every change goes through, and the feed that keeps other processes' caches current.

pub mod cache;
pub mod format;
pub mod input;
pub mod limiter;
pub mod service;
pub mod sync;
pub mod usage;

pub use service::{KeyChange, Keys};
