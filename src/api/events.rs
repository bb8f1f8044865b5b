//! Security events, as the signed-in user (`GET /auth/events`) and admins
//! (`GET /users/{id}/events`) see them: one shared page builder.

use poem_openapi::{ApiResponse, payload::Json};
use uuid::Uuid;

use crate::{
    api::{
        pagination::Page,
        schemas::{EventActor, SecurityEvent, SecurityEventPage},
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

/// Who is reading a user's events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    /// The user: an admin's or the system's address and browser are not theirs to see.
    Owner,
    Admin,
}

/// The page of `user_id`'s events after `cursor`; 422 for a bad limit or cursor.
pub async fn page(
    state: &AppState,
    user_id: Uuid,
    reader: Reader,
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<EventPage, ApiError> {
    let limit = Page::parse(limit, None)?.limit;
    let (events, next_cursor) = audit::page(&state.db, user_id, limit, cursor).await?;
    let events = events
        .into_iter()
        .map(|event| {
            let mut event = SecurityEvent::from(event);
            if reader == Reader::Owner && event.actor != EventActor::Owner {
                event.ip = None;
                event.user_agent = None;
            }
            event
        })
        .collect();
    Ok(EventPage::Ok(Json(SecurityEventPage { events, next_cursor })))
}
