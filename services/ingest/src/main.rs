//! `lectern-ingest`: the ingest service alone, for the distributed shape.

fn main() -> anyhow::Result<()> {
    // First, before any thread starts: this binary is also the parse worker.
    lectern_ingest::parse::serve_if_worker();
    actix_web::rt::System::new().block_on(lectern_runtime::run_service(
        lectern_ingest::NAME,
        lectern_ingest::open,
    ))
}
