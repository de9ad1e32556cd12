//! `lectern-query`: the query service alone, for the distributed shape.

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    lectern_runtime::run_services(&[(lectern_query::NAME, lectern_query::configure)]).await
}
