//! # livebaton-admin
//!
//! The admin/CMS server behind the `livebaton` binary: configuration, the content and account store (SQLite or
//! PostgreSQL), accounts and sign-in, the content service that validates, stores and announces changes after commit,
//! the JSON API, the live transport and the live admin pages.

pub mod accounts;
pub mod allocator;
pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod content;
pub mod http;
pub mod live;
pub mod metrics;
pub mod pages;
pub mod proxy;
pub mod secret;
pub mod seed;
pub mod server;
pub mod storage;
pub mod views;
