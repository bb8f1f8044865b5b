//! `/api/v1/tasks`: the example resource API behind the session. Every query
//! is scoped to the caller in SQL (`WHERE user_id = ?`), never filtered
//! afterwards, so another user's task is a 404 exactly like a missing one.

use poem::web::Data;
use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Path, Query},
    payload::Json,
    types::MaybeUndefined,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select,
    Set, sea_query::Expr,
};

use crate::{
    api::{
        ApiTags,
        json_body::JsonBody,
        pagination::Page,
        schemas::{NewTask, Task, TaskCompletion, TaskUpdate},
    },
    auth::CurrentUser,
    clock::now,
    domain::{parse_task_description, parse_task_title},
    entity::task,
    error::{ApiError, FieldError},
    state::AppState,
};

pub struct TasksApi;

#[derive(ApiResponse)]
pub enum TaskList {
    /// One page of the caller's tasks, newest first.
    #[oai(status = 200)]
    Ok(
        Json<Vec<Task>>,
        /// How many tasks match the filter in all pages.
        #[oai(header = "X-Total-Count")]
        u64,
    ),
}

#[derive(ApiResponse)]
pub enum TaskCreated {
    /// The task was created.
    #[oai(status = 201)]
    Created(Json<Task>),
}

#[derive(ApiResponse)]
pub enum TaskFound {
    /// The task.
    #[oai(status = 200)]
    Ok(Json<Task>),
}

#[derive(ApiResponse)]
pub enum TaskDeleted {
    /// The task was deleted.
    #[oai(status = 204)]
    NoContent,
}

fn owned(user: &CurrentUser) -> Select<task::Entity> {
    task::Entity::find().filter(task::Column::UserId.eq(user.user.id))
}

async fn find_owned(state: &AppState, user: &CurrentUser, id: i64) -> Result<task::Model, ApiError> {
    owned(user).filter(task::Column::Id.eq(id)).one(&state.db).await?.ok_or(ApiError::NotFound)
}

#[OpenApi(prefix_path = "/api/v1/tasks", tag = "ApiTags::Tasks")]
impl TasksApi {
    /// List the caller's tasks, newest first.
    ///
    /// `limit` is 1 to 200 (default 50) and `offset` at least 0; anything else
    /// is a 422. `X-Total-Count` gives the number of matching tasks.
    #[oai(path = "/", method = "get", operation_id = "listTasks")]
    async fn list(
        &self,
        state: Data<&AppState>,
        current: CurrentUser,
        /// Only completed (`true`) or open (`false`) tasks.
        completed: Query<Option<bool>>,
        /// Page size, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<i64>>,
        /// Tasks to skip (default 0).
        #[oai(validator(minimum(value = "0")))]
        offset: Query<Option<i64>>,
    ) -> Result<TaskList, ApiError> {
        let page = Page::parse(limit.0, offset.0)?;
        let mut query = owned(&current);
        if let Some(done) = completed.0 {
            query = query.filter(task::Column::Completed.eq(done));
        }
        let total = query.clone().count(&state.db).await?;
        let tasks = query
            .order_by_desc(task::Column::CreatedAt)
            .order_by_desc(task::Column::Id)
            .limit(page.limit)
            .offset(page.offset)
            .all(&state.db)
            .await?;
        Ok(TaskList::Ok(Json(tasks.into_iter().map(Task::from).collect()), total))
    }

    /// Create a task.
    #[oai(path = "/", method = "post", operation_id = "createTask")]
    async fn create(
        &self,
        state: Data<&AppState>,
        current: CurrentUser,
        body: JsonBody<NewTask>,
    ) -> Result<TaskCreated, ApiError> {
        let body = body.0;
        let mut errors = Vec::new();
        let title = parse_task_title(&body.title).map_err(|e| errors.push(e)).ok();
        let description = parse_task_description(body.description.as_deref()).map_err(|e| errors.push(e)).ok();
        let (Some(title), Some(description)) = (title, description) else {
            return Err(ApiError::Validation(errors));
        };
        let now = now();
        let created = task::ActiveModel {
            id: NotSet,
            user_id: Set(current.user.id),
            title: Set(title),
            description: Set(description),
            completed: Set(false),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&state.writer)
        .await?;
        Ok(TaskCreated::Created(Json(created.into())))
    }

    /// Get one of the caller's tasks.
    #[oai(path = "/:id", method = "get", operation_id = "getTask")]
    async fn get(&self, state: Data<&AppState>, current: CurrentUser, id: Path<i64>) -> Result<TaskFound, ApiError> {
        Ok(TaskFound::Ok(Json(find_owned(&state, &current, id.0).await?.into())))
    }

    /// Change a task: absent fields stay as they are, `description: null` clears it.
    ///
    /// Only the fields sent are written, in one statement, so concurrent
    /// updates of different fields never undo each other.
    #[oai(path = "/:id", method = "put", operation_id = "updateTask")]
    async fn update(
        &self,
        state: Data<&AppState>,
        current: CurrentUser,
        id: Path<i64>,
        body: JsonBody<TaskUpdate>,
    ) -> Result<TaskFound, ApiError> {
        let body = body.0;
        let mut update = task::Entity::update_many()
            .col_expr(task::Column::UpdatedAt, Expr::value(now()))
            .filter(task::Column::Id.eq(id.0))
            .filter(task::Column::UserId.eq(current.user.id));
        let mut errors = Vec::new();
        match body.title {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => errors.push(FieldError::new("title", "must not be null")),
            MaybeUndefined::Value(t) => match parse_task_title(&t) {
                Ok(t) => update = update.col_expr(task::Column::Title, Expr::value(t)),
                Err(e) => errors.push(e),
            },
        }
        match body.description {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => {
                update = update.col_expr(task::Column::Description, Expr::value(Option::<String>::None))
            }
            MaybeUndefined::Value(d) => match parse_task_description(Some(&d)) {
                Ok(d) => update = update.col_expr(task::Column::Description, Expr::value(d)),
                Err(e) => errors.push(e),
            },
        }
        match body.completed {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => errors.push(FieldError::new("completed", "must not be null")),
            MaybeUndefined::Value(c) => update = update.col_expr(task::Column::Completed, Expr::value(c)),
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        if update.exec(&state.writer).await?.rows_affected == 0 {
            // MySQL counts only changed rows; tell "unchanged" from "not yours" by reading.
            find_owned(&state, &current, id.0).await?;
        }
        Ok(TaskFound::Ok(Json(find_owned(&state, &current, id.0).await?.into())))
    }

    /// Mark a task completed or not.
    #[oai(path = "/:id/complete", method = "patch", operation_id = "setTaskCompleted")]
    async fn complete(
        &self,
        state: Data<&AppState>,
        current: CurrentUser,
        id: Path<i64>,
        body: JsonBody<TaskCompletion>,
    ) -> Result<TaskFound, ApiError> {
        task::Entity::update_many()
            .col_expr(task::Column::Completed, Expr::value(body.0.completed))
            .col_expr(task::Column::UpdatedAt, Expr::value(now()))
            .filter(task::Column::Id.eq(id.0))
            .filter(task::Column::UserId.eq(current.user.id))
            .exec(&state.writer)
            .await?;
        Ok(TaskFound::Ok(Json(find_owned(&state, &current, id.0).await?.into())))
    }

    /// Delete a task.
    #[oai(path = "/:id", method = "delete", operation_id = "deleteTask")]
    async fn delete(
        &self,
        state: Data<&AppState>,
        current: CurrentUser,
        id: Path<i64>,
    ) -> Result<TaskDeleted, ApiError> {
        let result = task::Entity::delete_many()
            .filter(task::Column::Id.eq(id.0))
            .filter(task::Column::UserId.eq(current.user.id))
            .exec(&state.writer)
            .await?;
        if result.rows_affected == 0 {
            return Err(ApiError::NotFound);
        }
        Ok(TaskDeleted::NoContent)
    }
}
