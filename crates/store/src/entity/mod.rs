//! sea-orm entities, one module per table (see `lectern-migrations` for the schema).

pub mod api_key;
pub mod audit_event;
pub mod chunk;
pub mod conversation;
pub mod document;
pub mod email_verification;
pub mod feedback;
pub mod ingest_job;
pub mod invitation;
pub mod membership;
pub mod message;
pub mod session;
pub mod site_setting;
pub mod source;
pub mod user;
pub mod workspace;
