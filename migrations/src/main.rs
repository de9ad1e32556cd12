//! `lectern-migrate [up|down|status] DATABASE_URL`: the schema tool for operators who run
//! migrations apart from the services (the docker-compose one-shot uses `lectern migrate`).

use lectern_migrations::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::Database;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_else(|| "up".into());
    let url = args
        .next()
        .or_else(|| std::env::var("LECTERN_DATABASE_URL").ok())
        .ok_or(
            "usage: lectern-migrate [up|down|status] DATABASE_URL (or set LECTERN_DATABASE_URL)",
        )?;
    let db = Database::connect(&url).await?;
    match command.as_str() {
        "up" => Migrator::up(&db, None).await?,
        "down" => Migrator::down(&db, None).await?,
        "status" => {
            for m in Migrator::get_applied_migrations(&db).await? {
                println!("applied  {}", m.name());
            }
            for m in Migrator::get_pending_migrations(&db).await? {
                println!("pending  {}", m.name());
            }
        }
        other => return Err(format!("unknown command {other:?}; use up, down or status").into()),
    }
    Ok(())
}
