//! `lectern-ingest`: the ingest service alone, for the distributed shape.

fn main() -> anyhow::Result<()> {
    // First, before any thread starts: this binary is also the parse worker.
    lectern_runtime::worker::serve_if_worker(&[lectern_ingest::parse::PARSE_JOB]);
    actix_web::rt::System::new().block_on(lectern_runtime::run_service(
        lectern_ingest::NAME,
        lectern_ingest::open,
    ))
}
