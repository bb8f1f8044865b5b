//! The one error type of the API and its RFC 9457 problem document. Every
//! failure, including the ones poem and poem-openapi raise themselves, leaves
//! the server as `application/problem+json`. Error codes live only here.
//! Internal causes go to the log; the client only ever sees text written for it.

use poem::{Response, http::StatusCode};
use poem_openapi::{
    ApiResponse, Object,
    registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::{ToJSON, Type},
};
use sea_orm::DbErr;

mod transient;
pub use transient::is_transient;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// One invalid input field.
#[derive(Clone, Debug, PartialEq, Eq, Object)]
pub struct FieldError {
    /// The request field, e.g. `password`; empty for the body as a whole.
    pub field: String,
    /// What is wrong with it, in words a person can read.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// An RFC 9457 problem document.
#[derive(Clone, Debug, Object)]
pub struct Problem {
    /// Always `about:blank`: `code` identifies the problem.
    #[oai(rename = "type")]
    pub type_: String,
    /// Short, human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// Human-readable explanation of this occurrence, safe to show to a person.
    pub detail: String,
    /// Stable machine-readable snake_case code, e.g. `invalid_credentials`.
    pub code: String,
    /// The invalid fields, on validation failures.
    #[oai(skip_serializing_if_is_none)]
    pub errors: Option<Vec<FieldError>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not JSON, or not the content type the operation takes.
    #[error("malformed request: {0}")]
    BadRequest(String),
    /// 422: the input parsed but broke a rule; lists each field.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// 401: wrong email or password (the same answer for both).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// 401: no access token was sent.
    #[error("not authenticated")]
    NotAuthenticated,
    /// 401: the access token is malformed, forged or of the wrong type.
    #[error("invalid access token")]
    TokenInvalid,
    /// 401: the access token has expired; refresh and retry.
    #[error("access token expired")]
    TokenExpired,
    #[error("refresh token missing")]
    RefreshTokenMissing,
    #[error("refresh token invalid")]
    RefreshTokenInvalid,
    #[error("refresh token expired")]
    RefreshTokenExpired,
    /// 401: a rotated refresh token came back after the grace window: the session is revoked.
    #[error("refresh token reused")]
    RefreshTokenReused,
    #[error("session revoked")]
    SessionRevoked,
    /// 401: the session reached `SESSION_MAX_AGE`; log in again.
    #[error("session expired")]
    SessionExpired,
    /// 403: the account is deactivated.
    #[error("account disabled")]
    AccountDisabled,
    /// 403: `REQUIRE_VERIFIED_EMAIL` is on and the address is not verified yet.
    #[error("email not verified")]
    EmailNotVerified,
    /// 400: a mailed token that is unknown, used, expired or voided (all alike).
    #[error("invalid token")]
    InvalidToken,
    /// 401: a second-factor code (or recovery code) is wrong, used or missing.
    #[error("invalid code")]
    InvalidCode,
    /// 401: the account has a second factor and no code was sent.
    #[error("second factor required")]
    MfaRequired,
    /// 401: the `mfa_ticket` cookie is missing, used, expired or out of tries.
    #[error("mfa ticket invalid")]
    MfaTicketInvalid,
    /// 403: the session has not proved a credential recently enough.
    #[error("reauthentication required")]
    ReauthRequired,
    /// 409: a second factor is on already.
    #[error("second factor already enabled")]
    MfaAlreadyEnabled,
    /// 409: no second factor is on (or no setup was started).
    #[error("second factor not enabled")]
    MfaNotEnabled,
    /// 403: the caller's role is too low.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// 403: an unsafe cross-origin request from a browser.
    #[error("cross-origin request rejected")]
    CsrfRejected,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("email already registered")]
    EmailTaken,
    #[error("payload too large")]
    PayloadTooLarge,
    /// 429 with `Retry-After`.
    #[error("rate limited, retry after {retry_after_secs}s")]
    RateLimited { retry_after_secs: u64 },
    /// 503: too many logins queued for bcrypt; retry shortly.
    #[error("server busy")]
    Busy,
    /// 503: the database did not answer.
    #[error("database unavailable")]
    Unavailable(#[source] DbErr),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn field(field: &str, message: &str) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            BadRequest(_) | InvalidToken => StatusCode::BAD_REQUEST,
            Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            InvalidCredentials | InvalidCode | MfaRequired | MfaTicketInvalid | NotAuthenticated | TokenInvalid
            | TokenExpired | RefreshTokenMissing | RefreshTokenInvalid | RefreshTokenExpired | RefreshTokenReused
            | SessionRevoked | SessionExpired => StatusCode::UNAUTHORIZED,
            AccountDisabled | EmailNotVerified | ReauthRequired | Forbidden(_) | CsrfRejected => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            EmailTaken | MfaAlreadyEnabled | MfaNotEnabled => StatusCode::CONFLICT,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Unavailable(_) | Busy => StatusCode::SERVICE_UNAVAILABLE,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            BadRequest(_) => "malformed_request",
            Validation(_) => "validation_failed",
            InvalidCredentials => "invalid_credentials",
            NotAuthenticated => "not_authenticated",
            TokenInvalid => "token_invalid",
            TokenExpired => "token_expired",
            RefreshTokenMissing => "refresh_token_missing",
            RefreshTokenInvalid => "refresh_token_invalid",
            RefreshTokenExpired => "refresh_token_expired",
            RefreshTokenReused => "refresh_token_reused",
            SessionRevoked => "session_revoked",
            SessionExpired => "session_expired",
            AccountDisabled => "account_disabled",
            EmailNotVerified => "email_not_verified",
            InvalidToken => "invalid_token",
            InvalidCode => "invalid_code",
            MfaRequired => "mfa_required",
            MfaTicketInvalid => "mfa_ticket_invalid",
            ReauthRequired => "reauth_required",
            MfaAlreadyEnabled => "mfa_already_enabled",
            MfaNotEnabled => "mfa_not_enabled",
            Forbidden(_) => "forbidden",
            CsrfRejected => "csrf_rejected",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            EmailTaken => "email_taken",
            PayloadTooLarge => "payload_too_large",
            RateLimited { .. } => "rate_limited",
            Unavailable(_) => "database_unavailable",
            Busy => "server_busy",
            Internal(_) => "internal_error",
        }
    }

    fn detail(&self) -> String {
        use ApiError::*;
        match self {
            BadRequest(reason) => reason.clone(),
            Validation(_) => "One or more fields are invalid.".into(),
            InvalidCredentials => "The email or password is incorrect.".into(),
            NotAuthenticated => "Sign in to continue.".into(),
            TokenInvalid => "The access token is not valid.".into(),
            TokenExpired => "The access token has expired; refresh the session.".into(),
            RefreshTokenMissing => "No refresh token was sent.".into(),
            RefreshTokenInvalid => "The refresh token is not valid.".into(),
            RefreshTokenExpired => "The refresh token has expired; sign in again.".into(),
            RefreshTokenReused => "This refresh token was already used; the session has been revoked.".into(),
            SessionRevoked => "The session has been revoked; sign in again.".into(),
            SessionExpired => "The session reached its maximum age; sign in again.".into(),
            AccountDisabled => "This account is disabled.".into(),
            EmailNotVerified => "Confirm your email address first: follow the link we mailed you.".into(),
            InvalidToken => "This link is invalid, already used or expired; ask for a new one.".into(),
            InvalidCode => "The code is not valid.".into(),
            MfaRequired => "Enter a code from your authenticator app or a recovery code.".into(),
            MfaTicketInvalid => "This sign-in has expired or had too many tries; sign in again.".into(),
            ReauthRequired => "Confirm it is you: sign in again or re-enter your password.".into(),
            MfaAlreadyEnabled => "A second factor is already on.".into(),
            MfaNotEnabled => "No second factor is on.".into(),
            Forbidden(why) => (*why).into(),
            CsrfRejected => "Cross-origin requests that change state are not allowed.".into(),
            NotFound => "The requested resource does not exist.".into(),
            MethodNotAllowed => "This method is not allowed on this resource.".into(),
            EmailTaken => "An account with this email already exists.".into(),
            PayloadTooLarge => "The request body is too large.".into(),
            RateLimited { retry_after_secs } => {
                format!("Too many requests; retry in {retry_after_secs} seconds.")
            }
            Unavailable(_) => "The database is unavailable; retry shortly.".into(),
            Busy => "The server is busy; retry shortly.".into(),
            Internal(_) => "An unexpected error occurred.".into(),
        }
    }

    fn title(&self) -> &'static str {
        self.status().canonical_reason().unwrap_or("Error")
    }

    pub fn to_problem(&self) -> Problem {
        Problem {
            type_: "about:blank".into(),
            title: self.title().into(),
            status: self.status().as_u16(),
            detail: self.detail(),
            code: self.code().into(),
            errors: match self {
                ApiError::Validation(errors) => Some(errors.clone()),
                _ => None,
            },
        }
    }

    pub fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(_) => tracing::error!(error = ?self, "request failed"),
            ApiError::Unavailable(_) => tracing::warn!(error = ?self, "database unavailable"),
            _ => tracing::debug!(code = self.code(), "request refused"),
        }
        let mut builder = Response::builder().status(self.status()).content_type(PROBLEM_CONTENT_TYPE);
        if let ApiError::RateLimited { retry_after_secs } = self {
            builder = builder.header("Retry-After", retry_after_secs.max(1).to_string());
        }
        if matches!(self, ApiError::Unavailable(_) | ApiError::Busy) {
            builder = builder.header("Retry-After", "5");
        }
        let body = self.to_problem().to_json_string();
        builder.body(body)
    }
}

/// Where a `?` turned an error into a 500, for the log: the request span
/// names the route, this names the step.
#[track_caller]
fn at_caller(err: anyhow::Error) -> anyhow::Error {
    let at = std::panic::Location::caller();
    err.context(format!("failed at {}:{}", at.file(), at.line()))
}

impl From<DbErr> for ApiError {
    #[track_caller]
    fn from(err: DbErr) -> Self {
        // The row was deleted between our read and our write.
        if matches!(err, DbErr::RecordNotUpdated) {
            return ApiError::NotFound;
        }
        if is_transient(&err) { ApiError::Unavailable(err) } else { ApiError::Internal(at_caller(err.into())) }
    }
}

impl From<anyhow::Error> for ApiError {
    #[track_caller]
    fn from(err: anyhow::Error) -> Self {
        ApiError::Internal(at_caller(err))
    }
}

/// poem-openapi hands errors back to poem; the rendered problem travels inside.
impl From<ApiError> for poem::Error {
    fn from(err: ApiError) -> Self {
        poem::Error::from_response(err.into_response())
    }
}

/// The last stop for every error on its way out: turns what poem and
/// poem-openapi raise on their own (bad JSON, unknown route, wrong method, bad
/// parameter, body too large) into problem documents. Installed once, on the
/// root route, with `catch_all_error`.
pub async fn render_any_error(err: poem::Error) -> Response {
    // The matched route travels on the error; the request log reads it off the response.
    let route = err.data::<poem::PathPattern>().cloned();
    let mut response = render(err);
    if let Some(route) = route {
        response.set_data(route);
    }
    response
}

fn render(err: poem::Error) -> Response {
    use poem::error::{MethodNotAllowedError, NotFoundError};
    use poem_openapi::error::{
        AuthorizationError, ContentTypeError, ParseParamError, ParsePathError, ParseRequestPayloadError,
    };

    let api_error = if let Some(e) = err.downcast_ref::<ParseParamError>() {
        ApiError::Validation(vec![FieldError::new(e.name, "has an invalid value")])
    } else if err.is::<ParsePathError>() || err.is::<NotFoundError>() {
        ApiError::NotFound
    } else if err.is::<MethodNotAllowedError>() {
        ApiError::MethodNotAllowed
    } else if err.is::<ContentTypeError>() {
        ApiError::BadRequest("The request body must be JSON (Content-Type: application/json).".into())
    } else if err.is::<ParseRequestPayloadError>() {
        ApiError::BadRequest("The request body is not valid JSON.".into())
    } else if err.is::<AuthorizationError>() {
        ApiError::NotAuthenticated
    } else if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else if !err.has_source() {
        // Already a rendered response (our own `ApiError`s travel this way).
        let response = err.into_response();
        if response.content_type().is_some_and(|ct| ct.starts_with(PROBLEM_CONTENT_TYPE)) {
            return response;
        }
        from_status(response.status())
    } else {
        let status = err.status();
        if status.is_server_error() { ApiError::Internal(anyhow::anyhow!("{err}")) } else { from_status(status) }
    };
    api_error.into_response()
}

fn from_status(status: StatusCode) -> ApiError {
    match status.as_u16() {
        401 => ApiError::NotAuthenticated,
        403 => ApiError::Forbidden("This request is not allowed."),
        404 => ApiError::NotFound,
        405 => ApiError::MethodNotAllowed,
        413 => ApiError::PayloadTooLarge,
        s if (400..500).contains(&s) => ApiError::BadRequest("The request could not be processed.".into()),
        _ => ApiError::Internal(anyhow::anyhow!("unexpected status {status}")),
    }
}

/// Documents the error responses of every operation in `openapi.yaml`.
impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        let problem = |status: u16, description: &'static str| MetaResponse {
            description,
            status: Some(status),
            status_range: None,
            content: vec![MetaMediaType { content_type: PROBLEM_CONTENT_TYPE, schema: Problem::schema_ref() }],
            headers: if status == 429 || status == 503 {
                vec![MetaHeader {
                    name: "Retry-After".into(),
                    description: Some("Seconds to wait before retrying.".into()),
                    required: status == 429,
                    deprecated: false,
                    schema: u64::schema_ref(),
                }]
            } else {
                vec![]
            },
        };
        MetaResponses {
            responses: vec![
                problem(400, "The body is not valid JSON or has the wrong content type (`malformed_request`)."),
                problem(401, "Not authenticated, or bad credentials or tokens (see `code`)."),
                problem(403, "Authenticated but not allowed: `forbidden`, `account_disabled` or `csrf_rejected`."),
                problem(404, "The resource does not exist or belongs to someone else (`not_found`)."),
                problem(409, "Conflict with stored data, e.g. `email_taken`."),
                problem(413, "The body is larger than the server accepts (`payload_too_large`)."),
                problem(422, "Validation failed (`validation_failed`); `errors` lists the fields."),
                problem(429, "Rate limited (`rate_limited`); see `Retry-After`."),
                problem(
                    503,
                    "The database is unavailable (`database_unavailable`) or the server is overloaded (`server_busy`); see `Retry-After`.",
                ),
            ],
        }
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_code_pairing_is_stable() {
        let cases = [
            (ApiError::InvalidCredentials, 401, "invalid_credentials"),
            (ApiError::EmailTaken, 409, "email_taken"),
            (ApiError::AccountDisabled, 403, "account_disabled"),
            (ApiError::RateLimited { retry_after_secs: 3 }, 429, "rate_limited"),
            (ApiError::field("email", "bad"), 422, "validation_failed"),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status().as_u16(), status);
            assert_eq!(err.code(), code);
        }
    }

    #[test]
    fn internal_errors_never_reach_the_body() {
        let err = ApiError::Internal(anyhow::anyhow!("SELECT secret FROM users failed"));
        let body = err.to_problem().to_json_string();
        assert!(!body.contains("SELECT"), "{body}");
    }

    #[test]
    fn an_internal_error_names_the_step_that_failed() {
        let line = line!() + 2;
        fn step() -> Result<(), ApiError> {
            Err(DbErr::Custom("constraint blew up".into()))?;
            Ok(())
        }
        let logged = format!("{:?}", step().unwrap_err());
        assert!(logged.contains(&format!("failed at src/error/mod.rs:{line}")), "{logged}");
        assert!(logged.contains("constraint blew up"), "{logged}");
    }
}
