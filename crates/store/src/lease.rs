//! Work claimed under a lease, one rule for ingest jobs and source syncs: the oldest row
//! that is queued and due, or running with a lease that ran out (its worker died), is
//! claimed in one transaction (`SKIP LOCKED` on PostgreSQL, an immediate transaction on
//! SQLite), so two workers never hold the same one. A row whose lease ran out on its last
//! allowed claim ([`MAX_LOST_LEASES`]) is set aside instead, and the next one is claimed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lectern_core::Result;
use sea_orm::sea_query::{LockBehavior, LockType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, DatabaseTransaction, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

use crate::documents::{MAX_LOST_LEASES, secs};
use crate::error::db_error;

/// States every leased kind stores.
pub(crate) const QUEUED: &str = "queued";
pub(crate) const RUNNING: &str = "running";

/// A table of work claimed under a lease.
pub(crate) trait Leased: EntityTrait
where
    Self::Model: IntoActiveModel<Self::ActiveModel> + Send + Sync,
    Self::ActiveModel: ActiveModelTrait<Entity = Self> + Send,
{
    /// What is claimed, for errors ("claim job").
    const CLAIM: &'static str;
    fn state() -> Self::Column;
    fn run_after() -> Self::Column;
    fn lease_until() -> Self::Column;
    fn is_running(m: &Self::Model) -> bool;
    /// Times its lease ran out and it was claimed again.
    fn lost_leases(m: &Self::Model) -> i32;
    /// The row as claimed: running, one claim more (and one lost lease more when it was
    /// running), leased until `until`.
    fn claimed(m: Self::Model, until: DateTime<Utc>, now: DateTime<Utc>) -> Self::ActiveModel;
    /// Ends a row whose lease ran out on its last allowed claim, with the reason.
    fn set_aside<'a>(
        txn: &'a DatabaseTransaction,
        m: &'a Self::Model,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<()>> + Send + 'a;
}

/// Claims the oldest runnable row of `E` for `lease`.
pub(crate) async fn claim_next<E>(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    lease: Duration,
) -> Result<Option<E::Model>>
where
    E: Leased,
    E::Model: IntoActiveModel<E::ActiveModel> + Send + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await
        .map_err(|e| db_error("begin claim", e))?;
    let found = loop {
        let runnable = Condition::any()
            .add(
                Condition::all()
                    .add(E::state().eq(QUEUED))
                    .add(E::run_after().lte(now)),
            )
            .add(
                Condition::all()
                    .add(E::state().eq(RUNNING))
                    .add(E::lease_until().lt(now)),
            );
        let next = E::find()
            .filter(runnable)
            .order_by_asc(E::run_after())
            .limit(1)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .one(&txn)
            .await
            .map_err(|e| db_error(E::CLAIM, e))?;
        let Some(found) = next else {
            txn.commit().await.map_err(|e| db_error(E::CLAIM, e))?;
            return Ok(None);
        };
        if !E::is_running(&found) || E::lost_leases(&found) + 1 < MAX_LOST_LEASES {
            break found;
        }
        E::set_aside(&txn, &found, now).await?;
    };
    let claimed = E::claimed(found, now + secs(lease), now)
        .update(&txn)
        .await
        .map_err(|e| db_error(E::CLAIM, e))?;
    txn.commit().await.map_err(|e| db_error(E::CLAIM, e))?;
    Ok(Some(claimed))
}
