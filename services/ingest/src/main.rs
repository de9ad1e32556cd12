//! `lectern-ingest`: the ingest service alone, for the distributed shape.

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    lectern_runtime::run_service(lectern_ingest::NAME, lectern_ingest::open).await
}
