//! Signing out: one session of one's own, or all of them.

use uuid::Uuid;

use crate::{
    audit::{Entry, Event},
    auth::{CurrentUser, devices, sessions},
    client::ClientInfo,
    error::ApiError,
    flows::Tx,
    state::AppState,
};

/// Revokes every session of the signed-in user and voids every device
/// cookie (each browser's own failed-login budget).
pub async fn sign_out_everywhere(state: &AppState, current: &CurrentUser, client: &ClientInfo) -> Result<(), ApiError> {
    let mut tx = Tx::begin(state).await?;
    let revoked = sessions::revoke_all(tx.db(), current.user.id, None).await?;
    devices::forget_all(tx.db(), current.user.id).await?;
    Entry::new(Event::LogoutAll, current.user.id, client).detail(format!("{revoked} sessions")).record(tx.db()).await?;
    tx.changed(current.user.id);
    tx.commit().await
}

/// Revokes one of the signed-in user's sessions; 404 for an unknown id, an
/// already revoked session, or another user's.
pub async fn revoke_own(
    state: &AppState,
    current: &CurrentUser,
    client: &ClientInfo,
    session_id: Uuid,
) -> Result<(), ApiError> {
    let mut tx = Tx::begin(state).await?;
    if !sessions::revoke_own(tx.db(), current.user.id, session_id).await? {
        return Err(ApiError::NotFound);
    }
    Entry::new(Event::SessionRevoked, current.user.id, client)
        .detail(format!("session {session_id}"))
        .record(tx.db())
        .await?;
    tx.changed(current.user.id);
    tx.commit().await
}
