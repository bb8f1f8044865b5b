//! The `tasks` table's owner: each user's own tasks. Every query is scoped to
//! the owner in SQL (`WHERE user_id = ?`), never filtered afterwards, so
//! another user's task is a 404 exactly like a missing one.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, NotSet, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select, Set, sea_query::Expr,
};
use uuid::Uuid;

use crate::{clock::now, entity::task, error::ApiError};

fn owned(user_id: Uuid) -> Select<task::Entity> {
    task::Entity::find().filter(task::Column::UserId.eq(user_id))
}

/// `user_id`'s task `id`; 404 for a missing task or another user's.
pub async fn find(db: &impl ConnectionTrait, user_id: Uuid, id: i64) -> Result<task::Model, ApiError> {
    owned(user_id).filter(task::Column::Id.eq(id)).one(db).await?.ok_or(ApiError::NotFound)
}

/// One page of `user_id`'s tasks, newest first, and how many match in all.
pub async fn list(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    completed: Option<bool>,
    limit: u64,
    offset: u64,
) -> Result<(Vec<task::Model>, u64), ApiError> {
    let mut query = owned(user_id);
    if let Some(done) = completed {
        query = query.filter(task::Column::Completed.eq(done));
    }
    let total = query.clone().count(db).await?;
    let tasks = query
        .order_by_desc(task::Column::CreatedAt)
        .order_by_desc(task::Column::Id)
        .limit(limit)
        .offset(offset)
        .all(db)
        .await?;
    Ok((tasks, total))
}

pub async fn create(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    title: String,
    description: Option<String>,
) -> Result<task::Model, ApiError> {
    let now = now();
    let created = task::ActiveModel {
        id: NotSet,
        user_id: Set(user_id),
        title: Set(title),
        description: Set(description),
        completed: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(created)
}

/// Fields of a task to change; `None` stays as it is.
#[derive(Default)]
pub struct TaskChange {
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub completed: Option<bool>,
}

/// Writes only the fields given, in one statement, so concurrent updates of
/// different fields never undo each other; returns the task as it is now.
pub async fn update(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    id: i64,
    change: TaskChange,
) -> Result<task::Model, ApiError> {
    let mut update = task::Entity::update_many()
        .col_expr(task::Column::UpdatedAt, Expr::value(now()))
        .filter(task::Column::Id.eq(id))
        .filter(task::Column::UserId.eq(user_id));
    if let Some(title) = change.title {
        update = update.col_expr(task::Column::Title, Expr::value(title));
    }
    if let Some(description) = change.description {
        update = update.col_expr(task::Column::Description, Expr::value(description));
    }
    if let Some(completed) = change.completed {
        update = update.col_expr(task::Column::Completed, Expr::value(completed));
    }
    // MySQL counts only changed rows, so "unchanged" and "not yours" both
    // read 0 here: the read below tells them apart (404 for the latter).
    update.exec(db).await?;
    find(db, user_id, id).await
}

/// Deletes `user_id`'s task `id`; 404 for a missing task or another user's.
pub async fn delete(db: &impl ConnectionTrait, user_id: Uuid, id: i64) -> Result<(), ApiError> {
    let result = task::Entity::delete_many()
        .filter(task::Column::Id.eq(id))
        .filter(task::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Err(ApiError::NotFound);
    }
    Ok(())
}
