use sea_orm::entity::prelude::*;

/// A workspace. Its name is unique among its owner's workspaces, not across the site.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workspaces")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    /// The account whose names this one counts among: who created it. `None` for the
    /// workspaces the operator makes at the command line, which form one more namespace.
    pub owner_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
