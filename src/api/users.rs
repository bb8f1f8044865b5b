//! `/api/v1/users`: user administration for `admin` and above. The rules of
//! the role hierarchy live in `authz`, the use cases in `flows::admin`.

use poem::web::Data;
use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Path, Query},
    payload::Json,
    types::MaybeUndefined,
};
use uuid::Uuid;

use crate::{
    api::{
        ApiTags,
        events::{self, EventPage},
        json_body::JsonBody,
        pagination::Page,
        schemas::{MailAccepted, RoleChange, User, UserUpdate},
    },
    auth::CurrentUser,
    client::ClientInfo,
    error::ApiError,
    flows::admin::{self, Edit, ProfileEdit},
    state::AppState,
};

pub struct UsersApi;

#[derive(ApiResponse)]
pub enum UserList {
    /// One page of users, oldest first.
    #[oai(status = 200)]
    Ok(
        Json<Vec<User>>,
        /// How many users there are in all pages.
        #[oai(header = "X-Total-Count")]
        u64,
    ),
}

#[derive(ApiResponse)]
pub enum UserFound {
    /// The user.
    #[oai(status = 200)]
    Ok(Json<User>),
}

#[derive(ApiResponse)]
pub enum ResetMailed {
    /// A password-reset link is on its way to the user (at most 3 an hour per address).
    #[oai(status = 202)]
    Accepted(Json<MailAccepted>),
}

#[derive(ApiResponse)]
pub enum UserDeleted {
    /// Done (for a deletion: the user, their sessions and their tasks are gone).
    #[oai(status = 204)]
    NoContent,
}

/// A `PATCH` field as the flow takes it.
fn edit<T>(field: MaybeUndefined<T>) -> Edit<T> {
    match field {
        MaybeUndefined::Undefined => Edit::Keep,
        MaybeUndefined::Null => Edit::Clear,
        MaybeUndefined::Value(value) => Edit::Set(value),
    }
}

#[OpenApi(prefix_path = "/api/v1/users", tag = "ApiTags::Users")]
impl UsersApi {
    /// List users (admin), oldest first, with `X-Total-Count`.
    #[oai(path = "/", method = "get", operation_id = "listUsers")]
    async fn list(
        &self,
        state: Data<&AppState>,
        current: CurrentUser,
        /// Page size, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<i64>>,
        /// Users to skip (default 0).
        #[oai(validator(minimum(value = "0")))]
        offset: Query<Option<i64>>,
    ) -> Result<UserList, ApiError> {
        let page = Page::parse(limit.0, offset.0)?;
        let (users, total) = admin::list(&state, &current, page.limit, page.offset).await?;
        Ok(UserList::Ok(Json(users.into_iter().map(User::from).collect()), total))
    }

    /// A user's security events, newest first (admin, for yourself and users
    /// below your role); 404 for an unknown id. Unlike the user's own list,
    /// events an admin caused keep that admin's address and browser.
    #[oai(path = "/:id/events", method = "get", operation_id = "listUserEvents")]
    async fn events(
        &self,
        state: Data<&AppState>,
        current: CurrentUser,
        id: Path<Uuid>,
        /// Page size, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<i64>>,
        /// `next_cursor` from the previous page; omit it for the newest events.
        #[oai(validator(max_length = 100))]
        cursor: Query<Option<String>>,
    ) -> Result<EventPage, ApiError> {
        let target = admin::viewable(&state, &current, id.0).await?;
        events::page(&state, target.id, events::Reader::Admin, limit.0, cursor.0.as_deref()).await
    }

    /// Get a user (admin).
    #[oai(path = "/:id", method = "get", operation_id = "getUser")]
    async fn get(&self, state: Data<&AppState>, current: CurrentUser, id: Path<Uuid>) -> Result<UserFound, ApiError> {
        Ok(UserFound::Ok(Json(admin::find(&state, &current, id.0).await?.into())))
    }

    /// Change a user's name or active flag (admin, for users below your role).
    ///
    /// Deactivating revokes every session of the user at once; a deactivated
    /// user cannot sign in, refresh, or use a still-valid access token.
    #[oai(path = "/:id", method = "patch", operation_id = "updateUser")]
    async fn update(
        &self,
        state: Data<&AppState>,
        client: ClientInfo,
        current: CurrentUser,
        id: Path<Uuid>,
        body: JsonBody<UserUpdate>,
    ) -> Result<UserFound, ApiError> {
        let body = body.0;
        let change = ProfileEdit { full_name: edit(body.full_name), is_active: edit(body.is_active) };
        Ok(UserFound::Ok(Json(admin::update(&state, &current, &client, id.0, change).await?.into())))
    }

    /// Set a user's role (admin, for users below your role, to a role below yours).
    #[oai(path = "/:id/role", method = "put", operation_id = "setUserRole")]
    async fn set_role(
        &self,
        state: Data<&AppState>,
        client: ClientInfo,
        current: CurrentUser,
        id: Path<Uuid>,
        body: JsonBody<RoleChange>,
    ) -> Result<UserFound, ApiError> {
        Ok(UserFound::Ok(Json(admin::set_role(&state, &current, &client, id.0, body.0.role).await?.into())))
    }

    /// Mail a user a password-reset link (admin, for users below your role).
    ///
    /// Admins never see or set a password: the user chooses a new one through
    /// the link. Audited with the admin as actor.
    #[oai(path = "/:id/password-reset", method = "post", operation_id = "sendPasswordReset")]
    async fn send_password_reset(
        &self,
        state: Data<&AppState>,
        client: ClientInfo,
        current: CurrentUser,
        id: Path<Uuid>,
    ) -> Result<ResetMailed, ApiError> {
        admin::send_password_reset(&state, &current, &client, id.0).await?;
        let message = "A password-reset link is on its way to the user.".to_owned();
        Ok(ResetMailed::Accepted(Json(MailAccepted { message })))
    }

    /// Turn off a user's second factor (admin, for users below your role),
    /// for someone who lost their device and recovery codes. Audited, and the
    /// user is mailed. 409 `mfa_not_enabled` when none is on.
    #[oai(path = "/:id/mfa", method = "delete", operation_id = "resetUserMfa")]
    async fn reset_mfa(
        &self,
        state: Data<&AppState>,
        client: ClientInfo,
        current: CurrentUser,
        id: Path<Uuid>,
    ) -> Result<UserDeleted, ApiError> {
        admin::reset_mfa(&state, &current, &client, id.0).await?;
        Ok(UserDeleted::NoContent)
    }

    /// Delete a user with their sessions and tasks (admin, for users below your role).
    #[oai(path = "/:id", method = "delete", operation_id = "deleteUser")]
    async fn delete(
        &self,
        state: Data<&AppState>,
        client: ClientInfo,
        current: CurrentUser,
        id: Path<Uuid>,
    ) -> Result<UserDeleted, ApiError> {
        admin::delete(&state, &current, &client, id.0).await?;
        Ok(UserDeleted::NoContent)
    }
}
