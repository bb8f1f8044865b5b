//! Who may do what. Platform roles, lowest to highest: `user`, `moderator`,
//! `admin`, `super_admin` (their derived `Ord` is the hierarchy). User
//! administration is for `admin` and above, and an actor acts only on users
//! below their own role and grants only roles below it. Organization roles
//! (`viewer` < `developer` < `admin`, per organization) will sit beside
//! these; a platform role grants nothing inside an organization.

use crate::{domain::Role, entity::user, error::ApiError};

/// The lowest platform role that administers users.
pub const USER_ADMIN: Role = Role::Admin;

const BELOW_YOUR_ROLE: &str = "You can only manage users below your own role.";

/// 403 `forbidden` unless `role` is at least `min`.
pub fn require_role(role: Role, min: Role) -> Result<(), ApiError> {
    if role >= min { Ok(()) } else { Err(ApiError::Forbidden("Your role does not allow this.")) }
}

/// An actor may manage only users below their own role, and never themselves.
pub fn may_manage(actor: &user::Model, target: &user::Model) -> Result<(), ApiError> {
    if actor.id == target.id {
        return Err(ApiError::Forbidden("You cannot change your own account here."));
    }
    if target.role >= actor.role {
        return Err(ApiError::Forbidden(BELOW_YOUR_ROLE));
    }
    Ok(())
}

/// An actor may read what is recorded about themselves, and about users below their own role.
pub fn may_view(actor: &user::Model, target: &user::Model) -> Result<(), ApiError> {
    if actor.id != target.id && target.role >= actor.role {
        return Err(ApiError::Forbidden(BELOW_YOUR_ROLE));
    }
    Ok(())
}

/// An actor may grant only roles below their own (so only a super_admin grants admin).
pub fn may_grant(actor: &user::Model, role: Role) -> Result<(), ApiError> {
    if role >= actor.role {
        return Err(ApiError::Forbidden("You can only grant roles below your own."));
    }
    Ok(())
}

/// The roles an actor of `role` manages: every role below it.
pub fn roles_below(role: Role) -> Vec<Role> {
    use sea_orm::Iterable;
    Role::iter().filter(|r| *r < role).collect()
}

/// What `accounts::claim_manageable` answers when the target
/// was promoted meanwhile.
pub fn not_below() -> ApiError {
    ApiError::Forbidden(BELOW_YOUR_ROLE)
}
