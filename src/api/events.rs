//! Security events, as the signed-in user (`GET /auth/events`) and admins
//! (`GET /users/{id}/events`) see them: one shared page builder.

use poem_openapi::{ApiResponse, payload::Json};
use uuid::Uuid;

use crate::{
    api::{
        pagination::Page,
        schemas::{SecurityEvent, SecurityEventPage},
    },
    audit,
    error::ApiError,
    state::AppState,
};

#[derive(ApiResponse)]
pub enum EventPage {
    /// One page of events, newest first.
    #[oai(status = 200)]
    Ok(Json<SecurityEventPage>),
}

/// The page of `user_id`'s events after `cursor`; 422 for a bad limit or cursor.
pub async fn page(
    state: &AppState,
    user_id: Uuid,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<EventPage, ApiError> {
    let limit = Page::parse(limit, None)?.limit;
    let (events, next_cursor) = audit::page(&state.db, user_id, limit, cursor).await?;
    let events = events.into_iter().map(SecurityEvent::from).collect();
    Ok(EventPage::Ok(Json(SecurityEventPage { events, next_cursor })))
}
