//! Trusted addresses: workspace access was granted by email, and sign-up never checked that
//! the address belonged to whoever typed it, so whoever registered an address first received
//! every workspace later shared with it.
//!
//! `users.email_verified_at` says when the address was shown to be the account's: by an
//! administrator, by the identity provider of single sign-on, or by a link sent to it
//! (`email_verifications`: the sha256 of each link's secret, for 24 hours). Sharing a
//! workspace by email reaches only verified addresses at once; every other address gets an
//! invitation (`invitations`: the sha256 of its link's secret, single use, for 7 days),
//! which the owner passes on.
//!
//! Existing accounts: one without a password was made at the command line or by single
//! sign-on (whose provider vouched for the address at every sign-in), so it counts as
//! verified. One with a password counts as verified only when no self sign-up of it is on
//! record (the web app records `account.sign_up` in the audit log; `lectern user create`
//! records nothing): an administrator made it. Every account that signed itself up stays
//! unverified until its owner follows a link or an administrator runs
//! `lectern user verify EMAIL`. Memberships that exist are kept as they are.

use sea_orm_migration::prelude::*;

use crate::columns::{cascade, id, text, time, uuid};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    EmailVerifiedAt,
}

#[derive(DeriveIden)]
enum Workspaces {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum EmailVerifications {
    Table,
    /// sha256 of the link's secret, hex: a copy of the table verifies no one.
    TokenHash,
    UserId,
    /// The address the link was sent to: it verifies that address only.
    Email,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Invitations {
    Table,
    Id,
    WorkspaceId,
    Role,
    /// The address the owner typed (where the link is mailed); whoever opens the link,
    /// signed in, becomes the member.
    Email,
    /// sha256 of the link's secret, hex.
    TokenHash,
    CreatedBy,
    CreatedAt,
    ExpiresAt,
    /// When it was used (or spent on a verified account at once); it works only once.
    AcceptedAt,
}

/// Accounts an administrator or an identity provider vouched for (see the module doc).
const BACKFILL: &str = "UPDATE users SET email_verified_at = created_at \
     WHERE email_verified_at IS NULL AND (password_hash IS NULL OR NOT EXISTS \
     (SELECT 1 FROM audit_events e WHERE e.actor_user_id = users.id \
     AND e.action = 'account.sign_up'))";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(
                        ColumnDef::new(Users::EmailVerifiedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(BACKFILL)
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(EmailVerifications::Table)
                    .col(
                        ColumnDef::new(EmailVerifications::TokenHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(uuid(EmailVerifications::UserId))
                    .col(text(EmailVerifications::Email))
                    .col(time(EmailVerifications::ExpiresAt))
                    .col(time(EmailVerifications::CreatedAt))
                    .foreign_key(&mut cascade(
                        (EmailVerifications::Table, EmailVerifications::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_email_verifications_user")
                    .table(EmailVerifications::Table)
                    .col(EmailVerifications::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Invitations::Table)
                    .col(id(Invitations::Id))
                    .col(uuid(Invitations::WorkspaceId))
                    .col(ColumnDef::new(Invitations::Role).string_len(16).not_null())
                    .col(text(Invitations::Email))
                    .col(
                        ColumnDef::new(Invitations::TokenHash)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(uuid(Invitations::CreatedBy))
                    .col(time(Invitations::CreatedAt))
                    .col(time(Invitations::ExpiresAt))
                    .col(
                        ColumnDef::new(Invitations::AcceptedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(&mut cascade(
                        (Invitations::Table, Invitations::WorkspaceId),
                        (Workspaces::Table, Workspaces::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (Invitations::Table, Invitations::CreatedBy),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_invitations_workspace")
                    .table(Invitations::Table)
                    .col(Invitations::WorkspaceId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Invitations::Table.into_iden(),
            EmailVerifications::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        // Plain SQL: both PostgreSQL and SQLite (3.35 and later) drop a column in place.
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE users DROP COLUMN email_verified_at")
            .await
            .map(drop)
    }
}
