//! All of Lectern's SQL: entities and the queries the services need, over sea-orm, on
//! SQLite (embedded default) or PostgreSQL (distributed shape), chosen by the URL.
//!
//! No other crate writes SQL. The key decision: one [`Store`] type with plain async
//! methods named for what they do (`claim_next_job`, `readable_workspaces`), returning
//! `lectern_core::Error` so callers can tell "retry later" from "your input is wrong".

mod access;
mod conversations;
pub mod documents;
pub mod entity;
mod error;
mod lease;
mod sources;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod trust;
mod web;

pub use access::{API_KEY_PREFIX, WorkspaceAccess, secret_hash};
pub use documents::{NewChunk, PagesRead, job_state, status};
pub use sea_orm::DatabaseBackend;
pub use sources::{
    MAX_SYNC_INTERVAL_SECS, MIN_SYNC_INTERVAL_SECS, NewSource, SourceChanges, SourceFile,
    source_kind, sync_state,
};
pub use store::{AuditEvent, EmailProof, NameScope, NewDocument, NewUser, Store, redact};
pub use trust::{EMAIL_VERIFICATION_TTL, INVITATION_TTL, Shared};
pub use web::{Member, SIGNUP_OPEN};
