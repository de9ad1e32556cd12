//! `lectern-query`: the query service alone, for the distributed shape.

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    lectern_runtime::run_service(lectern_query::NAME, lectern_query::open).await
}
