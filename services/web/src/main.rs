//! `lectern-web`: the web service alone, for the distributed shape.

fn main() -> anyhow::Result<()> {
    // First, before any thread starts: this binary is also the worker that draws pages.
    lectern_runtime::worker::serve_if_worker(&[lectern_web::render::RENDER_JOB]);
    actix_web::rt::System::new().block_on(lectern_runtime::run_service(
        lectern_web::NAME,
        |ctx| async move { lectern_web::configure(ctx) },
    ))
}
