//! Lectern's wire contract, shared by the services that answer it and every client that
//! calls them (the web app, the `lectern` command, the end-to-end tests):
//!
//! - [`ingest`] and [`query`]: the request and response types of the two HTTP APIs, one
//!   definition each, so a client deserialises exactly what the server serialised;
//! - [`ErrorBody`]: the JSON body of every error, `{code, message}`, and its inverse;
//! - [`Client`]: a typed client of both APIs that turns error answers back into the
//!   [`lectern_core::Error`] they were (by `code`, not by guessing from the status);
//! - [`sse`]: the one writer and the one reader of Server-Sent Events;
//! - [`markers`]: the one parser of the `[n]` citation markers in answers.
//!
//! It must not depend on any service, store or engine crate: the web app links it without
//! linking an inference engine, an index or an embedding runtime.

mod client;
mod error;
pub mod ingest;
pub mod markers;
pub mod openai;
pub mod query;
pub mod sse;

pub use client::{Auth, Client, Original, OriginalStream};
pub use error::ErrorBody;

/// The header in which a service-token caller (the web app) names the person it acts for.
pub const ACT_AS_HEADER: &str = "x-lectern-user";
