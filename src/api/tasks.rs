//! `/api/v1/tasks`: the example resource API behind the session, over the
//! caller's own tasks (`crate::tasks` scopes every query to them).

use crate::{
    api::{
        ApiTags,
        json_body::JsonBody,
        pagination::Page,
        schemas::{NewTask, Task, TaskCompletion, TaskUpdate},
    },
    auth::CurrentUser,
    domain::{parse_task_description, parse_task_title},
    error::{ApiError, FieldError},
    state::AppState,
    tasks::{self, TaskChange},
};
use poem::web::Data;
use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Path, Query},
    payload::Json,
    types::MaybeUndefined,
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
        let (tasks, total) = tasks::list(&state.db, current.user.id, completed.0, page.limit, page.offset).await?;
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
        let created = tasks::create(&state.writer, current.user.id, title, description).await?;
        Ok(TaskCreated::Created(Json(created.into())))
    }

    /// Get one of the caller's tasks.
    #[oai(path = "/:id", method = "get", operation_id = "getTask")]
    async fn get(&self, state: Data<&AppState>, current: CurrentUser, id: Path<i64>) -> Result<TaskFound, ApiError> {
        Ok(TaskFound::Ok(Json(tasks::find(&state.db, current.user.id, id.0).await?.into())))
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
        let mut change = TaskChange::default();
        let mut errors = Vec::new();
        match body.title {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => errors.push(FieldError::new("title", "must not be null")),
            MaybeUndefined::Value(t) => match parse_task_title(&t) {
                Ok(t) => change.title = Some(t),
                Err(e) => errors.push(e),
            },
        }
        match body.description {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => change.description = Some(None),
            MaybeUndefined::Value(d) => match parse_task_description(Some(&d)) {
                Ok(d) => change.description = Some(d),
                Err(e) => errors.push(e),
            },
        }
        match body.completed {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => errors.push(FieldError::new("completed", "must not be null")),
            MaybeUndefined::Value(c) => change.completed = Some(c),
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(TaskFound::Ok(Json(tasks::update(&state.writer, current.user.id, id.0, change).await?.into())))
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
        let change = TaskChange { completed: Some(body.0.completed), ..TaskChange::default() };
        Ok(TaskFound::Ok(Json(tasks::update(&state.writer, current.user.id, id.0, change).await?.into())))
    }

    /// Delete a task.
    #[oai(path = "/:id", method = "delete", operation_id = "deleteTask")]
    async fn delete(
        &self,
        state: Data<&AppState>,
        current: CurrentUser,
        id: Path<i64>,
    ) -> Result<TaskDeleted, ApiError> {
        tasks::delete(&state.writer, current.user.id, id.0).await?;
        Ok(TaskDeleted::NoContent)
    }
}
