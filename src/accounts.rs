//! User accounts: the one module that creates users, checks their passwords
//! and writes their credentials (password, email, verification). Register,
//! login, password change and reset, email verification and change,
//! `create-admin` and user deletion all go through here.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Set, SqlErr,
    sea_query::{Expr, Query},
};
use uuid::Uuid;

use crate::{
    auth::password::PasswordHasher,
    clock::now,
    domain::{Email, Role},
    entity::{refresh_token, session, task, user},
    error::ApiError,
};

/// What a new account starts with.
pub struct NewAccount<'a> {
    pub email: &'a Email,
    pub password_hash: String,
    pub full_name: Option<String>,
    pub role: Role,
    pub is_active: bool,
    pub email_verified: bool,
    /// Registration signs the user in at once.
    pub signed_in: bool,
}

/// Creates a user; 409 `email_taken` when the address has an account (the
/// unique index decides races between concurrent registrations).
pub async fn create(db: &impl ConnectionTrait, new: NewAccount<'_>) -> Result<user::Model, ApiError> {
    let now = now();
    user::ActiveModel {
        // Time-ordered, so "oldest first" holds within one millisecond too.
        id: Set(Uuid::now_v7()),
        email: Set(new.email.as_str().to_owned()),
        password_hash: Set(new.password_hash),
        full_name: Set(new.full_name),
        role: Set(new.role),
        is_active: Set(new.is_active),
        created_at: Set(now),
        updated_at: Set(now),
        last_login_at: Set(new.signed_in.then_some(now)),
        email_verified: Set(new.email_verified),
        mfa_enabled: Set(false),
    }
    .insert(db)
    .await
    .map_err(email_conflict)
}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<user::Model>, ApiError> {
    Ok(user::Entity::find_by_id(id).one(db).await?)
}

pub async fn find_by_email(db: &impl ConnectionTrait, email: &Email) -> Result<Option<user::Model>, ApiError> {
    Ok(user::Entity::find().filter(user::Column::Email.eq(email.as_str())).one(db).await?)
}

/// Checks `candidate` against the user's password. Always pays for one bcrypt
/// verify, also for an unknown user, or timing reveals which emails exist.
pub async fn check_password(
    hasher: &PasswordHasher,
    user: Option<&user::Model>,
    candidate: &str,
) -> Result<bool, ApiError> {
    hasher.verify(candidate, user.map(|u| u.password_hash.as_str())).await
}

/// Records a successful login, and a rehashed password when `BCRYPT_COST` changed.
pub async fn record_login(
    db: &impl ConnectionTrait,
    user: user::Model,
    new_hash: Option<String>,
) -> Result<user::Model, ApiError> {
    let mut active: user::ActiveModel = user.into();
    active.last_login_at = Set(Some(now()));
    if let Some(hash) = new_hash {
        active.password_hash = Set(hash);
    }
    Ok(active.update(db).await?)
}

/// Replaces the password hash (the caller revokes sessions and voids tokens).
pub async fn set_password(db: &impl ConnectionTrait, user_id: Uuid, hash: String) -> Result<(), ApiError> {
    write(db, user_id, |u| {
        u.password_hash = Set(hash);
    })
    .await
}

pub async fn mark_verified(db: &impl ConnectionTrait, user_id: Uuid) -> Result<(), ApiError> {
    write(db, user_id, |u| {
        u.email_verified = Set(true);
    })
    .await
}

/// Moves the account to `new_email`, which counts as verified (its owner
/// followed the link). 409 `email_taken` if another account has it by now.
pub async fn change_email(db: &impl ConnectionTrait, user_id: Uuid, new_email: &str) -> Result<(), ApiError> {
    let result = user::Entity::update_many()
        .col_expr(user::Column::Email, Expr::value(new_email))
        .col_expr(user::Column::EmailVerified, Expr::value(true))
        .col_expr(user::Column::UpdatedAt, Expr::value(now()))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await
        .map_err(email_conflict)?;
    if result.rows_affected == 0 {
        return Err(ApiError::NotFound);
    }
    Ok(())
}

/// One page of users, oldest first, and how many there are in all.
pub async fn list(db: &impl ConnectionTrait, limit: u64, offset: u64) -> Result<(Vec<user::Model>, u64), ApiError> {
    let total = user::Entity::find().count(db).await?;
    let users = user::Entity::find()
        .order_by_asc(user::Column::CreatedAt)
        .order_by_asc(user::Column::Id)
        .limit(limit)
        .offset(offset)
        .all(db)
        .await?;
    Ok((users, total))
}

/// Re-checks, inside the caller's write transaction, that `target` is still
/// below `actor_role`, and takes the row's write lock: a concurrent
/// promotion of the target cannot slip between the check and the change.
pub async fn claim_manageable(db: &impl ConnectionTrait, actor_role: Role, target: Uuid) -> Result<(), ApiError> {
    let claimed = user::Entity::update_many()
        .col_expr(user::Column::UpdatedAt, Expr::value(now()))
        .filter(user::Column::Id.eq(target))
        .filter(user::Column::Role.is_in(crate::authz::roles_below(actor_role)))
        .exec(db)
        .await?
        .rows_affected;
    if claimed == 0 {
        return Err(crate::authz::not_below());
    }
    Ok(())
}

/// What an admin may change of a user: `Some` fields change.
pub struct ProfileChange {
    pub full_name: Option<Option<String>>,
    pub is_active: Option<bool>,
}

/// Applies `change` to `user`; returns the row as written.
pub async fn update_profile(
    db: &impl ConnectionTrait,
    user: user::Model,
    change: ProfileChange,
) -> Result<user::Model, ApiError> {
    let mut active: user::ActiveModel = user.into();
    if let Some(name) = change.full_name {
        active.full_name = Set(name);
    }
    if let Some(flag) = change.is_active {
        active.is_active = Set(flag);
    }
    active.updated_at = Set(now());
    Ok(active.update(db).await?)
}

/// Gives `user` the platform role `role`; returns the row as written.
pub async fn set_role(db: &impl ConnectionTrait, user: user::Model, role: Role) -> Result<user::Model, ApiError> {
    let mut active: user::ActiveModel = user.into();
    active.role = Set(role);
    active.updated_at = Set(now());
    Ok(active.update(db).await?)
}

/// Makes `email` a super_admin with `password_hash`: creates the account, or
/// promotes, re-activates and re-passwords an existing one. `true` if created.
pub async fn upsert_super_admin(
    db: &impl ConnectionTrait,
    email: &Email,
    password_hash: String,
) -> Result<bool, ApiError> {
    match find_by_email(db, email).await? {
        Some(found) => {
            let mut active: user::ActiveModel = found.into();
            active.role = Set(Role::SuperAdmin);
            active.is_active = Set(true);
            active.password_hash = Set(password_hash);
            active.updated_at = Set(now());
            active.update(db).await?;
            Ok(false)
        }
        None => {
            let new = NewAccount {
                email,
                password_hash,
                full_name: None,
                role: Role::SuperAdmin,
                is_active: true,
                email_verified: true,
                signed_in: false,
            };
            create(db, new).await?;
            Ok(true)
        }
    }
}

/// Deletes a user with every row that is theirs: sessions, refresh tokens,
/// tasks, mailed tokens, device cookies and the second factor (secret,
/// recovery codes, login tickets). Security events stay: they are the
/// record of what happened, kept for `AUDIT_RETENTION`. Explicit
/// deletes in the caller's transaction, not only `ON DELETE CASCADE`: the
/// outcome must not depend on a backend's foreign-key settings.
pub async fn delete(db: &impl ConnectionTrait, user_id: Uuid) -> Result<(), ApiError> {
    // A subquery, not a list of ids: a user with very many sessions must not
    // exceed the database's parameter limit.
    let sessions_of_user = Query::select()
        .column(session::Column::Id)
        .from(session::Entity)
        .and_where(session::Column::UserId.eq(user_id))
        .to_owned();
    refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::SessionId.in_subquery(sessions_of_user))
        .exec(db)
        .await?;
    session::Entity::delete_many().filter(session::Column::UserId.eq(user_id)).exec(db).await?;
    task::Entity::delete_many().filter(task::Column::UserId.eq(user_id)).exec(db).await?;
    crate::entity::email_token::Entity::delete_many()
        .filter(crate::entity::email_token::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    crate::auth::devices::forget_all(db, user_id).await?;
    crate::auth::mfa::forget_user(db, user_id).await?;
    user::Entity::delete_by_id(user_id).exec(db).await?;
    Ok(())
}

async fn write(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    edit: impl FnOnce(&mut user::ActiveModel),
) -> Result<(), ApiError> {
    let mut active = user::ActiveModel { id: sea_orm::Unchanged(user_id), ..Default::default() };
    edit(&mut active);
    active.updated_at = Set(now());
    active.update(db).await?;
    Ok(())
}

fn email_conflict(e: sea_orm::DbErr) -> ApiError {
    match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => ApiError::EmailTaken,
        _ => e.into(),
    }
}
