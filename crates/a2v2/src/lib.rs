//! a2v2: a self-hosted server for AI-agent workspaces with scoped API keys.

pub mod access;
pub mod agents;
pub mod app;
pub mod audit;
pub mod cli;
pub mod config;
pub mod contacts;
pub mod crypto;
pub mod error;
pub mod extract;
pub mod keys;
pub mod members;
pub mod pagination;
pub mod request_id;
pub mod state;
pub mod store;
pub mod time_fmt;
pub mod validate;
pub mod web;
