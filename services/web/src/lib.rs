//! Lectern's web service: the server-rendered application people use: accounts, workspaces, upload, chat with citations.
//!
//! The library holds the routes and state so that its own binary and the all-in-one
//! `lectern serve` mount the same code; the binary only loads settings and runs.

use std::sync::Arc;

use actix_web::web;
use lectern_runtime::{Configure, Context};

/// The service's name in logs, metrics and `/ready`.
pub const NAME: &str = "web";

/// The service's routes, bound to the process's adapters.
pub fn configure(ctx: Arc<Context>) -> anyhow::Result<Configure> {
    Ok(Arc::new(move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::from(ctx.clone()));
    }))
}
