//! rectus: an open data platform in one binary. Follow the names from `main.rs`: `cli` for
//! the commands, `config` for settings, `db` for the databases, `services` for the business
//! rules, `http` for the API, `auth` for passwords and (later) sessions.

pub mod allocator;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod logging;
pub mod planner;
pub mod runtime;
pub mod services;
