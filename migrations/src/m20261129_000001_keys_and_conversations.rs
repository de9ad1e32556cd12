//! API keys (for programs calling the HTTP APIs) and conversations with their messages
//! (for the query service's answers and the citations they carried).

use sea_orm_migration::prelude::*;

use crate::columns::{cascade, id, int, text, time, uuid};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    UserId,
    Name,
    /// sha256 of the secret, hex; the secret itself is shown once and never stored.
    KeyHash,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum Conversations {
    Table,
    Id,
    UserId,
    Title,
    /// The workspaces asked, as a JSON array of ids.
    WorkspaceIds,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    ConversationId,
    Position,
    Role,
    Content,
    /// For answers: citations, sentence support, abstention, timings (JSON).
    Details,
    CreatedAt,
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
                    .table(ApiKeys::Table)
                    .col(id(ApiKeys::Id))
                    .col(uuid(ApiKeys::UserId))
                    .col(text(ApiKeys::Name))
                    .col(
                        ColumnDef::new(ApiKeys::KeyHash)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(time(ApiKeys::CreatedAt))
                    .col(
                        ColumnDef::new(ApiKeys::LastUsedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(&mut cascade(
                        (ApiKeys::Table, ApiKeys::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Conversations::Table)
                    .col(id(Conversations::Id))
                    .col(uuid(Conversations::UserId))
                    .col(text(Conversations::Title))
                    .col(
                        ColumnDef::new(Conversations::WorkspaceIds)
                            .json()
                            .not_null(),
                    )
                    .col(time(Conversations::CreatedAt))
                    .col(time(Conversations::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (Conversations::Table, Conversations::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_conversations_user")
                    .table(Conversations::Table)
                    .col(Conversations::UserId)
                    .col(Conversations::UpdatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .col(id(Messages::Id))
                    .col(uuid(Messages::ConversationId))
                    .col(int(Messages::Position))
                    .col(ColumnDef::new(Messages::Role).string_len(16).not_null())
                    .col(ColumnDef::new(Messages::Content).text().not_null())
                    .col(ColumnDef::new(Messages::Details).json().null())
                    .col(time(Messages::CreatedAt))
                    .foreign_key(&mut cascade(
                        (Messages::Table, Messages::ConversationId),
                        (Conversations::Table, Conversations::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_conversation")
                    .table(Messages::Table)
                    .col(Messages::ConversationId)
                    .col(Messages::Position)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Messages::Table.into_iden(),
            Conversations::Table.into_iden(),
            ApiKeys::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
