use sea_orm_migration::prelude::*;

use crate::columns::{cascade, id, int, text, text_null, time, uuid};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    DisplayName,
    PasswordHash,
    IsAdmin,
    Disabled,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Workspaces {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    WorkspaceId,
    UserId,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Documents {
    Table,
    Id,
    WorkspaceId,
    Title,
    FileName,
    MediaType,
    Sha256,
    SizeBytes,
    Pages,
    Status,
    ErrorMessage,
    CurrentVersion,
    StorageKey,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Chunks {
    Table,
    Id,
    DocumentId,
    Version,
    ChunkIndex,
    PageStart,
    PageEnd,
    CharStart,
    CharEnd,
    TokenCount,
}

#[derive(DeriveIden)]
enum IngestJobs {
    Table,
    Id,
    DocumentId,
    Version,
    State,
    Attempts,
    RunAfter,
    LeaseUntil,
    LastError,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    At,
    ActorUserId,
    Action,
    WorkspaceId,
    Target,
    Detail,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// All or nothing on SQLite too (PostgreSQL runs migrations in a transaction anyway).
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(id(Users::Id))
                    .col(text(Users::Email).unique_key())
                    .col(text_null(Users::DisplayName))
                    .col(text_null(Users::PasswordHash))
                    .col(
                        ColumnDef::new(Users::IsAdmin)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(Users::Disabled)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(time(Users::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Workspaces::Table)
                    .col(id(Workspaces::Id))
                    .col(text(Workspaces::Name).unique_key())
                    .col(time(Workspaces::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Memberships::Table)
                    .col(uuid(Memberships::WorkspaceId))
                    .col(uuid(Memberships::UserId))
                    .col(ColumnDef::new(Memberships::Role).string_len(16).not_null())
                    .col(time(Memberships::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Memberships::WorkspaceId)
                            .col(Memberships::UserId),
                    )
                    .foreign_key(&mut cascade(
                        (Memberships::Table, Memberships::WorkspaceId),
                        (Workspaces::Table, Workspaces::Id),
                    ))
                    .foreign_key(&mut cascade(
                        (Memberships::Table, Memberships::UserId),
                        (Users::Table, Users::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_memberships_user")
                    .table(Memberships::Table)
                    .col(Memberships::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Documents::Table)
                    .col(id(Documents::Id))
                    .col(uuid(Documents::WorkspaceId))
                    .col(text(Documents::Title))
                    .col(text(Documents::FileName))
                    .col(text(Documents::MediaType))
                    .col(ColumnDef::new(Documents::Sha256).string_len(64).not_null())
                    .col(
                        ColumnDef::new(Documents::SizeBytes)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Documents::Pages).integer().null())
                    .col(ColumnDef::new(Documents::Status).string_len(16).not_null())
                    .col(text_null(Documents::ErrorMessage))
                    .col(int(Documents::CurrentVersion))
                    .col(text(Documents::StorageKey))
                    .col(time(Documents::CreatedAt))
                    .col(time(Documents::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (Documents::Table, Documents::WorkspaceId),
                        (Workspaces::Table, Workspaces::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_documents_workspace_file", Documents::FileName),
            ("idx_documents_workspace_sha", Documents::Sha256),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Documents::Table)
                        .col(Documents::WorkspaceId)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Chunks::Table)
                    .col(id(Chunks::Id))
                    .col(uuid(Chunks::DocumentId))
                    .col(int(Chunks::Version))
                    .col(int(Chunks::ChunkIndex))
                    .col(int(Chunks::PageStart))
                    .col(int(Chunks::PageEnd))
                    .col(ColumnDef::new(Chunks::CharStart).big_integer().not_null())
                    .col(ColumnDef::new(Chunks::CharEnd).big_integer().not_null())
                    .col(int(Chunks::TokenCount))
                    .foreign_key(&mut cascade(
                        (Chunks::Table, Chunks::DocumentId),
                        (Documents::Table, Documents::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_chunks_document_version_index")
                    .table(Chunks::Table)
                    .col(Chunks::DocumentId)
                    .col(Chunks::Version)
                    .col(Chunks::ChunkIndex)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IngestJobs::Table)
                    .col(id(IngestJobs::Id))
                    .col(uuid(IngestJobs::DocumentId))
                    .col(int(IngestJobs::Version))
                    .col(ColumnDef::new(IngestJobs::State).string_len(16).not_null())
                    .col(
                        ColumnDef::new(IngestJobs::Attempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(time(IngestJobs::RunAfter))
                    .col(
                        ColumnDef::new(IngestJobs::LeaseUntil)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(text_null(IngestJobs::LastError))
                    .col(time(IngestJobs::CreatedAt))
                    .col(time(IngestJobs::UpdatedAt))
                    .foreign_key(&mut cascade(
                        (IngestJobs::Table, IngestJobs::DocumentId),
                        (Documents::Table, Documents::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_ingest_jobs_document_version")
                    .table(IngestJobs::Table)
                    .col(IngestJobs::DocumentId)
                    .col(IngestJobs::Version)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_ingest_jobs_claim")
                    .table(IngestJobs::Table)
                    .col(IngestJobs::State)
                    .col(IngestJobs::RunAfter)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(id(AuditEvents::Id))
                    .col(time(AuditEvents::At))
                    .col(ColumnDef::new(AuditEvents::ActorUserId).uuid().null())
                    .col(
                        ColumnDef::new(AuditEvents::Action)
                            .string_len(48)
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuditEvents::WorkspaceId).uuid().null())
                    .col(text_null(AuditEvents::Target))
                    .col(ColumnDef::new(AuditEvents::Detail).json().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_at")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children before parents, so foreign keys never block a drop.
        for table in [
            AuditEvents::Table.into_iden(),
            IngestJobs::Table.into_iden(),
            Chunks::Table.into_iden(),
            Documents::Table.into_iden(),
            Memberships::Table.into_iden(),
            Workspaces::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
