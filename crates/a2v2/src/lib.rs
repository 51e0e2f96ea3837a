//! a2v2: a self-hosted server for AI-agent workspaces with scoped API keys.
//!
//! Layers point one way: `http` (and `cli`) → features (`agents`, `keys`, `access`,
//! `members`, `contacts`, `documents`, `audit`) → `store` → `model`. `server` wires them together.

pub mod access;
pub mod agents;
pub mod audit;
pub mod cli;
pub mod config;
pub mod contacts;
pub mod crypto;
pub mod documents;
pub mod error;
pub mod http;
pub mod keys;
#[cfg(test)]
mod layers;
pub mod members;
pub mod model;
pub mod server;
pub mod state;
pub mod store;
pub mod validate;
