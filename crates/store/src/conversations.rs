//! Conversations and their messages: each question and each answer with the citations it
//! carried, so that a conversation can be reopened and continued.

use lectern_core::{Error, Result, WorkspaceId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::Store;
use crate::entity::{conversation, message};
use crate::error::db_error;

impl Store {
    pub async fn create_conversation(
        &self,
        user: Uuid,
        title: &str,
        workspaces: &[WorkspaceId],
    ) -> Result<conversation::Model> {
        let now = self.now();
        let title: String = title.trim().chars().take(120).collect();
        conversation::ActiveModel {
            id: Set(Uuid::new_v4()),
            user_id: Set(user),
            title: Set(if title.is_empty() {
                "Conversation".into()
            } else {
                title
            }),
            workspace_ids: Set(serde_json::json!(workspaces)),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&self.db)
        .await
        .map_err(|e| db_error("create conversation", e))
    }

    /// The user's conversation; another user's is "not found".
    pub async fn conversation(&self, user: Uuid, id: Uuid) -> Result<conversation::Model> {
        conversation::Entity::find_by_id(id)
            .filter(conversation::Column::UserId.eq(user))
            .one(&self.db)
            .await
            .map_err(|e| db_error("find conversation", e))?
            .ok_or_else(|| Error::NotFound("no such conversation".into()))
    }

    /// The user's conversations, the latest first.
    pub async fn conversations_of(
        &self,
        user: Uuid,
        limit: u64,
    ) -> Result<Vec<conversation::Model>> {
        conversation::Entity::find()
            .filter(conversation::Column::UserId.eq(user))
            .order_by_desc(conversation::Column::UpdatedAt)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(|e| db_error("list conversations", e))
    }

    pub async fn messages_of(&self, conversation: Uuid) -> Result<Vec<message::Model>> {
        message::Entity::find()
            .filter(message::Column::ConversationId.eq(conversation))
            .order_by_asc(message::Column::Position)
            .all(&self.db)
            .await
            .map_err(|e| db_error("list messages", e))
    }

    /// Appends a question and its answer to a conversation, in one transaction.
    pub async fn add_exchange(
        &self,
        conversation: Uuid,
        question: &str,
        answer: &str,
        details: serde_json::Value,
    ) -> Result<message::Model> {
        let now = self.now();
        let txn = self.db.begin().await.map_err(|e| db_error("begin", e))?;
        // The write comes first: in SQLite a transaction that reads and then writes fails
        // at once with "database is locked" when another writer committed in between
        // (its snapshot is stale, so the busy timeout cannot help); one that starts with a
        // write waits its turn for the lock, and its reads then see the latest rows.
        conversation::Entity::update_many()
            .col_expr(conversation::Column::UpdatedAt, Expr::value(now))
            .filter(conversation::Column::Id.eq(conversation))
            .exec(&txn)
            .await
            .map_err(|e| db_error("touch conversation", e))?;
        let position = message::Entity::find()
            .filter(message::Column::ConversationId.eq(conversation))
            .count(&txn)
            .await
            .map_err(|e| db_error("count messages", e))? as i32;
        message::ActiveModel {
            id: Set(Uuid::new_v4()),
            conversation_id: Set(conversation),
            position: Set(position),
            role: Set("user".into()),
            content: Set(question.to_owned()),
            details: Set(None),
            created_at: Set(now),
        }
        .insert(&txn)
        .await
        .map_err(|e| db_error("store the question", e))?;
        let answer = message::ActiveModel {
            id: Set(Uuid::new_v4()),
            conversation_id: Set(conversation),
            position: Set(position + 1),
            role: Set("assistant".into()),
            content: Set(answer.to_owned()),
            details: Set(Some(details)),
            created_at: Set(now),
        }
        .insert(&txn)
        .await
        .map_err(|e| db_error("store the answer", e))?;
        txn.commit()
            .await
            .map_err(|e| db_error("store exchange", e))?;
        Ok(answer)
    }

    pub async fn delete_conversation(&self, user: Uuid, id: Uuid) -> Result<()> {
        let result = conversation::Entity::delete_many()
            .filter(conversation::Column::Id.eq(id))
            .filter(conversation::Column::UserId.eq(user))
            .exec(&self.db)
            .await
            .map_err(|e| db_error("delete conversation", e))?;
        if result.rows_affected == 0 {
            return Err(Error::NotFound("no such conversation".into()));
        }
        Ok(())
    }
}
