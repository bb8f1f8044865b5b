//! The server-side record of device cookies (`login_devices`). A
//! `device_token` cookie is a signed claim naming a row here; the cookie
//! gives its browser a failed-login budget of its own only while the row
//! exists. A password change or reset and `logout-all` delete every row of
//! the user, so collected old cookies are no fresh budgets; each user keeps
//! at most [`MAX_PER_USER`] (the least recently created go first).

use std::time::Duration;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use uuid::Uuid;

use crate::{clock::now, entity::login_device, error::ApiError};

/// Live device cookies a user may have.
pub const MAX_PER_USER: u64 = 20;

/// Whether `device_id` is a live device of `user_id`.
pub async fn is_live(db: &impl ConnectionTrait, user_id: Uuid, device_id: Uuid) -> Result<bool, ApiError> {
    let found =
        login_device::Entity::find_by_id(device_id).filter(login_device::Column::UserId.eq(user_id)).one(db).await?;
    Ok(found.is_some())
}

/// Records a sign-in from a browser: the device it carried when that is
/// still live (its budget stays its own), else a new one. Returns the id the
/// browser's new cookie names.
pub async fn remember(db: &impl ConnectionTrait, user_id: Uuid, device: Option<Uuid>) -> Result<Uuid, ApiError> {
    let now = now();
    if let Some(id) = device {
        let touched = login_device::Entity::update_many()
            .col_expr(login_device::Column::LastUsedAt, sea_orm::sea_query::Expr::value(now))
            .filter(login_device::Column::Id.eq(id))
            .filter(login_device::Column::UserId.eq(user_id))
            .exec(db)
            .await?
            .rows_affected;
        if touched == 1 {
            return Ok(id);
        }
    }
    let id = Uuid::new_v4();
    login_device::Entity::insert(login_device::ActiveModel {
        id: Set(id),
        user_id: Set(user_id),
        created_at: Set(now),
        last_used_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    // Read, then delete by id: MySQL takes no LIMIT inside an IN subquery.
    let beyond: Vec<Uuid> = login_device::Entity::find()
        .select_only()
        .column(login_device::Column::Id)
        .filter(login_device::Column::UserId.eq(user_id))
        .order_by_desc(login_device::Column::CreatedAt)
        .order_by_desc(login_device::Column::Id)
        .offset(MAX_PER_USER)
        .limit(1000)
        .into_tuple()
        .all(db)
        .await?;
    // The one just made is the newest; with ties on the millisecond, never drop it.
    let beyond: Vec<Uuid> = beyond.into_iter().filter(|old| *old != id).collect();
    if !beyond.is_empty() {
        login_device::Entity::delete_many().filter(login_device::Column::Id.is_in(beyond)).exec(db).await?;
    }
    Ok(id)
}

/// Voids every device cookie of `user_id`; returns how many.
pub async fn forget_all(db: &impl ConnectionTrait, user_id: Uuid) -> Result<u64, ApiError> {
    let result = login_device::Entity::delete_many().filter(login_device::Column::UserId.eq(user_id)).exec(db).await?;
    Ok(result.rows_affected)
}

/// Deletes devices whose newest cookie has expired (`DEVICE_COOKIE_TTL` after
/// their last sign-in).
pub async fn purge_expired(db: &impl ConnectionTrait, ttl: Duration) -> Result<u64, sea_orm::DbErr> {
    let age = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    let cutoff = now().checked_sub_signed(age).unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    let result =
        login_device::Entity::delete_many().filter(login_device::Column::LastUsedAt.lt(cutoff)).exec(db).await?;
    Ok(result.rows_affected)
}
