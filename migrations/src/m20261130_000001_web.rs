//! What the web app keeps: sign-in sessions (server-side, so that signing out, a password
//! change or disabling a user ends them), feedback on answers, and site settings an
//! administrator changes at run time (whether sign-up is open).

use sea_orm_migration::prelude::*;

use crate::columns::{cascade, id, text, text_null, time, uuid};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    /// sha256 of the cookie's session key, hex: a copy of the table signs no one in.
    KeyHash,
    /// The signed-in user, if any (a visitor's session holds only its CSRF token).
    UserId,
    /// The session's values, as a JSON object of strings.
    State,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Feedback {
    Table,
    Id,
    /// The answer (a message of the query service's conversations).
    MessageId,
    UserId,
    Helpful,
    Comment,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SiteSettings {
    Table,
    Key,
    Value,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(
                        ColumnDef::new(Sessions::KeyHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Sessions::UserId).uuid().null())
                    .col(ColumnDef::new(Sessions::State).text().not_null())
                    .col(time(Sessions::ExpiresAt))
                    .foreign_key(&mut cascade(
                        (Sessions::Table, Sessions::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_user")
                    .table(Sessions::Table)
                    .col(Sessions::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Feedback::Table)
                    .col(id(Feedback::Id))
                    .col(uuid(Feedback::MessageId))
                    .col(uuid(Feedback::UserId))
                    .col(ColumnDef::new(Feedback::Helpful).boolean().not_null())
                    .col(text_null(Feedback::Comment))
                    .col(time(Feedback::CreatedAt))
                    .foreign_key(&mut cascade(
                        (Feedback::Table, Feedback::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_feedback_message_user")
                    .table(Feedback::Table)
                    .col(Feedback::MessageId)
                    .col(Feedback::UserId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SiteSettings::Table)
                    .col(
                        ColumnDef::new(SiteSettings::Key)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(text(SiteSettings::Value))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SiteSettings::Table.into_iden(),
            Feedback::Table.into_iden(),
            Sessions::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
