//! User administration by `admin` and above, under the role rules in
//! `authz`: each change re-claims the target inside its transaction, so a
//! concurrent promotion cannot slip between the check and the write.

use uuid::Uuid;

use crate::{
    accounts::{self, ProfileChange},
    audit::{Entry, Event},
    auth::{CurrentUser, mfa, ratelimit::Limit, sessions},
    authz::{self, USER_ADMIN},
    client::ClientInfo,
    domain::{Role, parse_full_name},
    entity::user,
    error::ApiError,
    flows::{Tx, email},
    mail::templates,
    state::AppState,
};

/// The user `id`, for an admin; 404 when there is none.
pub async fn find(state: &AppState, current: &CurrentUser, id: Uuid) -> Result<user::Model, ApiError> {
    current.require_role(USER_ADMIN)?;
    accounts::find(&state.db, id).await?.ok_or(ApiError::NotFound)
}

/// The user `id`, for an admin allowed to manage them.
async fn manageable(state: &AppState, current: &CurrentUser, id: Uuid) -> Result<user::Model, ApiError> {
    let target = find(state, current, id).await?;
    authz::may_manage(&current.user, &target)?;
    Ok(target)
}

/// The transaction of a change to `target`, which first claims the target's
/// row: still below the caller's role, and locked against a concurrent promotion.
async fn claimed<'a>(state: &'a AppState, current: &CurrentUser, target: &user::Model) -> Result<Tx<'a>, ApiError> {
    let tx = Tx::begin(state).await?;
    accounts::claim_manageable(tx.db(), current.user.role, target.id).await?;
    Ok(tx)
}

/// The user `id`, for an admin allowed to read their record.
pub async fn viewable(state: &AppState, current: &CurrentUser, id: Uuid) -> Result<user::Model, ApiError> {
    let target = find(state, current, id).await?;
    authz::may_view(&current.user, &target)?;
    Ok(target)
}

/// One page of users, oldest first, and how many there are.
pub async fn list(
    state: &AppState,
    current: &CurrentUser,
    limit: u64,
    offset: u64,
) -> Result<(Vec<user::Model>, u64), ApiError> {
    current.require_role(USER_ADMIN)?;
    accounts::list(&state.db, limit, offset).await
}

/// A field of a `PATCH`: absent, `null`, or a value.
pub enum Edit<T> {
    Keep,
    Clear,
    Set(T),
}

/// What an admin asks to change of a user, unchecked.
pub struct ProfileEdit {
    pub full_name: Edit<String>,
    pub is_active: Edit<bool>,
}

impl ProfileEdit {
    fn parse(self) -> Result<ProfileChange, ApiError> {
        let full_name = match self.full_name {
            Edit::Keep => None,
            Edit::Clear => Some(None),
            Edit::Set(name) => Some(parse_full_name(Some(&name)).map_err(|e| ApiError::Validation(vec![e]))?),
        };
        let is_active = match self.is_active {
            Edit::Keep => None,
            Edit::Clear => return Err(ApiError::field("is_active", "must not be null")),
            Edit::Set(flag) => Some(flag),
        };
        Ok(ProfileChange { full_name, is_active })
    }
}

/// Changes a user's name or active flag; deactivating revokes every session.
pub async fn update(
    state: &AppState,
    current: &CurrentUser,
    client: &ClientInfo,
    id: Uuid,
    edit: ProfileEdit,
) -> Result<user::Model, ApiError> {
    let target = manageable(state, current, id).await?;
    let change = edit.parse()?;
    let was_active = target.is_active;
    let mut tx = claimed(state, current, &target).await?;
    let updated = accounts::update_profile(tx.db(), target, change).await?;
    let event = match (was_active, updated.is_active) {
        (true, false) => {
            sessions::revoke_all(tx.db(), updated.id, None).await?;
            Event::Deactivated
        }
        (false, true) => Event::Reactivated,
        _ => Event::UserUpdated,
    };
    Entry::new(event, updated.id, client).by(current.user.id).record(tx.db()).await?;
    tx.changed(updated.id);
    tx.commit().await?;
    Ok(updated)
}

/// Gives a user below the caller's role a role below it.
pub async fn set_role(
    state: &AppState,
    current: &CurrentUser,
    client: &ClientInfo,
    id: Uuid,
    role: Role,
) -> Result<user::Model, ApiError> {
    let target = manageable(state, current, id).await?;
    authz::may_grant(&current.user, role)?;
    let before = target.role;
    let mut tx = claimed(state, current, &target).await?;
    let updated = accounts::set_role(tx.db(), target, role).await?;
    Entry::new(Event::RoleChanged, updated.id, client)
        .by(current.user.id)
        .detail(format!("{} -> {}", before.as_str(), role.as_str()))
        .record(tx.db())
        .await?;
    tx.changed(updated.id);
    tx.commit().await?;
    Ok(updated)
}

/// Mails a user a password-reset link; admins never see or set a password.
pub async fn send_password_reset(
    state: &AppState,
    current: &CurrentUser,
    client: &ClientInfo,
    id: Uuid,
) -> Result<(), ApiError> {
    current.require_role(USER_ADMIN)?;
    state.limiters.check(Limit::Mail, client.ip).await?;
    let target = manageable(state, current, id).await?;
    let mut tx = claimed(state, current, &target).await?;
    email::queue_reset(state, &mut tx, &target, client, Some(current.user.id)).await?;
    tx.commit().await
}

/// Turns off the second factor of a user who lost their device and codes.
/// Stripping one is as sensitive as changing one's own: a recent sign-in.
pub async fn reset_mfa(state: &AppState, current: &CurrentUser, client: &ClientInfo, id: Uuid) -> Result<(), ApiError> {
    current.require_role(USER_ADMIN)?;
    current.require_recent(state.config.reauth_max_age)?;
    state.limiters.check(Limit::Mail, client.ip).await?;
    let target = manageable(state, current, id).await?;
    if !target.mfa_enabled {
        return Err(ApiError::MfaNotEnabled);
    }
    let mut tx = claimed(state, current, &target).await?;
    mfa::disable(tx.db(), target.id).await?;
    let ctx = templates::Context::new(&state.config, client.ip);
    tx.notify(templates::mfa_disabled(&target.email, &ctx, true)).await?;
    Entry::new(Event::MfaReset, target.id, client).by(current.user.id).record(tx.db()).await?;
    tx.changed(target.id);
    tx.commit().await
}

/// Deletes a user below the caller's role, with everything that is theirs.
pub async fn delete(state: &AppState, current: &CurrentUser, client: &ClientInfo, id: Uuid) -> Result<(), ApiError> {
    let target = manageable(state, current, id).await?;
    let mut tx = claimed(state, current, &target).await?;
    accounts::delete(tx.db(), target.id).await?;
    Entry::new(Event::Deleted, target.id, client)
        .by(current.user.id)
        .detail(format!("role {}", target.role.as_str()))
        .record(tx.db())
        .await?;
    tx.changed(target.id);
    tx.commit().await
}
