//! `/api/v1/users`: user administration for `admin` and above. The rules of
//! the role hierarchy live in [`check_manage`] and [`check_grant`].

use poem::web::Data;
use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Path, Query},
    payload::Json,
    types::MaybeUndefined,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, Iterable, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait, sea_query::Expr,
};
use uuid::Uuid;

use crate::{
    accounts,
    api::{
        ApiTags, email,
        events::{self, EventPage},
        json_body::JsonBody,
        pagination::Page,
        schemas::{MailAccepted, RoleChange, User, UserUpdate},
    },
    audit::{Entry, Event},
    auth::{CurrentUser, ratelimit::Limit, sessions},
    client::ClientInfo,
    clock::now,
    domain::{Role, parse_full_name},
    entity::user,
    error::ApiError,
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

const BELOW_YOUR_ROLE: &str = "You can only manage users below your own role.";

/// The user administration API is for `admin` and above.
const MIN_ROLE: Role = Role::Admin;

/// An actor may manage only users below their own role, and never themselves.
pub fn check_manage(actor: &user::Model, target: &user::Model) -> Result<(), ApiError> {
    if actor.id == target.id {
        return Err(ApiError::Forbidden("You cannot change your own account here."));
    }
    if target.role >= actor.role {
        return Err(ApiError::Forbidden(BELOW_YOUR_ROLE));
    }
    Ok(())
}

/// An actor may read what is recorded about themselves, and about users below their own role.
pub fn check_view(actor: &user::Model, target: &user::Model) -> Result<(), ApiError> {
    if actor.id != target.id && target.role >= actor.role {
        return Err(ApiError::Forbidden(BELOW_YOUR_ROLE));
    }
    Ok(())
}

/// An actor may grant only roles below their own (so only a super_admin grants admin).
pub fn check_grant(actor: &user::Model, role: Role) -> Result<(), ApiError> {
    if role >= actor.role {
        return Err(ApiError::Forbidden("You can only grant roles below your own."));
    }
    Ok(())
}

/// Re-checks, inside the write transaction, that the target is still below the
/// actor's role, and takes the row's write lock: a concurrent promotion of the
/// target cannot slip between our check and our change.
async fn claim_manageable(txn: &impl ConnectionTrait, actor: &user::Model, target: Uuid) -> Result<(), ApiError> {
    let below: Vec<Role> = Role::iter().filter(|r| *r < actor.role).collect();
    let claimed = user::Entity::update_many()
        .col_expr(user::Column::UpdatedAt, Expr::value(now()))
        .filter(user::Column::Id.eq(target))
        .filter(user::Column::Role.is_in(below))
        .exec(txn)
        .await?
        .rows_affected;
    if claimed == 0 {
        return Err(ApiError::Forbidden(BELOW_YOUR_ROLE));
    }
    Ok(())
}

async fn find_user(state: &AppState, id: Uuid) -> Result<user::Model, ApiError> {
    user::Entity::find_by_id(id).one(&state.db).await?.ok_or(ApiError::NotFound)
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
        current.require_role(MIN_ROLE)?;
        let page = Page::parse(limit.0, offset.0)?;
        let total = user::Entity::find().count(&state.db).await?;
        let users = user::Entity::find()
            .order_by_asc(user::Column::CreatedAt)
            .order_by_asc(user::Column::Id)
            .limit(page.limit)
            .offset(page.offset)
            .all(&state.db)
            .await?;
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
        current.require_role(MIN_ROLE)?;
        let target = find_user(&state, id.0).await?;
        check_view(&current.user, &target)?;
        events::page(&state, target.id, events::Reader::Admin, limit.0, cursor.0.as_deref()).await
    }

    /// Get a user (admin).
    #[oai(path = "/:id", method = "get", operation_id = "getUser")]
    async fn get(&self, state: Data<&AppState>, current: CurrentUser, id: Path<Uuid>) -> Result<UserFound, ApiError> {
        current.require_role(MIN_ROLE)?;
        Ok(UserFound::Ok(Json(find_user(&state, id.0).await?.into())))
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
        current.require_role(MIN_ROLE)?;
        let target = find_user(&state, id.0).await?;
        check_manage(&current.user, &target)?;
        let body = body.0;
        let full_name = match body.full_name {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(name) => {
                Some(parse_full_name(Some(&name)).map_err(|e| ApiError::Validation(vec![e]))?)
            }
        };
        let is_active = match body.is_active {
            MaybeUndefined::Null => return Err(ApiError::field("is_active", "must not be null")),
            other => other.take(),
        };

        let was_active = target.is_active;
        let txn = state.writer.begin().await?;
        claim_manageable(&txn, &current.user, target.id).await?;
        let mut active: user::ActiveModel = target.into();
        if let Some(name) = full_name {
            active.full_name = Set(name);
        }
        if let Some(flag) = is_active {
            active.is_active = Set(flag);
        }
        active.updated_at = Set(now());
        let updated = active.update(&txn).await?;
        let event = match (was_active, updated.is_active) {
            (true, false) => {
                sessions::revoke_all(&txn, updated.id, None).await?;
                Event::Deactivated
            }
            (false, true) => Event::Reactivated,
            _ => Event::UserUpdated,
        };
        Entry::new(event, updated.id, &client).by(current.user.id).record(&txn).await?;
        txn.commit().await?;
        state.sessions.changed(updated.id);
        Ok(UserFound::Ok(Json(updated.into())))
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
        current.require_role(MIN_ROLE)?;
        let target = find_user(&state, id.0).await?;
        check_manage(&current.user, &target)?;
        let role = body.0.role;
        check_grant(&current.user, role)?;

        let before = target.role;
        let txn = state.writer.begin().await?;
        claim_manageable(&txn, &current.user, target.id).await?;
        let mut active: user::ActiveModel = target.into();
        active.role = Set(role);
        active.updated_at = Set(now());
        let updated = active.update(&txn).await?;
        Entry::new(Event::RoleChanged, updated.id, &client)
            .by(current.user.id)
            .detail(format!("{} -> {}", role_name(before), role_name(role)))
            .record(&txn)
            .await?;
        txn.commit().await?;
        state.sessions.changed(updated.id);
        Ok(UserFound::Ok(Json(updated.into())))
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
        current.require_role(MIN_ROLE)?;
        state.limiters.check(Limit::Mail, client.ip).await?;
        let target = find_user(&state, id.0).await?;
        check_manage(&current.user, &target)?;
        let txn = state.writer.begin().await?;
        claim_manageable(&txn, &current.user, target.id).await?;
        email::queue_reset(&state, &txn, &target, &client, Some(current.user.id)).await?;
        txn.commit().await?;
        state.outbox.wake();
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
        current.require_role(MIN_ROLE)?;
        // Stripping a second factor is as sensitive as changing one's own.
        current.require_recent(state.config.reauth_max_age)?;
        state.limiters.check(Limit::Mail, client.ip).await?;
        let target = find_user(&state, id.0).await?;
        check_manage(&current.user, &target)?;
        if !target.mfa_enabled {
            return Err(ApiError::MfaNotEnabled);
        }
        let txn = state.writer.begin().await?;
        claim_manageable(&txn, &current.user, target.id).await?;
        crate::auth::mfa::disable(&txn, target.id).await?;
        let ctx = crate::mail::templates::Context::new(&state.config, client.ip);
        crate::mail::notify(&txn, &state.limiters, crate::mail::templates::mfa_disabled(&target.email, &ctx, true))
            .await?;
        Entry::new(Event::MfaReset, target.id, &client).by(current.user.id).record(&txn).await?;
        txn.commit().await?;
        state.sessions.changed(target.id);
        state.outbox.wake();
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
        current.require_role(MIN_ROLE)?;
        let target = find_user(&state, id.0).await?;
        check_manage(&current.user, &target)?;
        let txn = state.writer.begin().await?;
        claim_manageable(&txn, &current.user, target.id).await?;
        accounts::delete(&txn, target.id).await?;
        Entry::new(Event::Deleted, target.id, &client)
            .by(current.user.id)
            .detail(format!("role {}", role_name(target.role)))
            .record(&txn)
            .await?;
        txn.commit().await?;
        state.sessions.changed(target.id);
        Ok(UserDeleted::NoContent)
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::User => "user",
        Role::Moderator => "moderator",
        Role::Admin => "admin",
        Role::SuperAdmin => "super_admin",
    }
}
