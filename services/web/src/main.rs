//! `lectern-web`: the web service alone, for the distributed shape.

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    lectern_runtime::run_services(&[(lectern_web::NAME, lectern_web::configure)]).await
}
