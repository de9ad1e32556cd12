//! End-to-end: the services of `lectern serve` in one process on the embedded defaults
//! (SQLite, the embedded Qdrant engine, the real embedding model), over real HTTP.

mod browser;
mod eval;
mod helpers;
mod ingest_api;
mod oidc;
mod query_api;
mod serve;
mod sources_api;
mod sources_web;
mod web;
