//! `lectern-web`: the web service alone, for the distributed shape.

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    lectern_runtime::run_service(lectern_web::NAME, |ctx| async move {
        lectern_web::configure(ctx)
    })
    .await
}
