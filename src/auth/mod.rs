//! Who is calling: the access-token extractor ([`CurrentUser`]), and the
//! pieces behind it (passwords, tokens, cookies, sessions, rate limits).

pub mod bcrypt_impl;
pub mod cookies;
pub mod crypto;
pub mod devices;
pub mod email_tokens;
pub mod hash_pool;
pub mod limiter_store;
pub mod mfa;
pub mod password;
pub mod ratelimit;
pub mod redis_limit;
pub mod session_bus;
pub mod session_cache;
pub mod sessions;
pub mod signing_keys;
pub mod tokens;

use poem::{Request, RequestBody};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaSecurityScheme, Registry},
};
use uuid::Uuid;

use crate::{
    auth::tokens::{TokenError, TokenType},
    domain::Role,
    entity::user,
    error::ApiError,
    state::AppState,
};

pub const COOKIE_SCHEME: &str = "AccessCookie";
pub const BEARER_SCHEME: &str = "BearerAuth";

/// The signed-in user of a request. Taking it as a handler argument makes the
/// operation require an access token (cookie or `Authorization: Bearer`) and
/// documents both schemes in the spec.
pub struct CurrentUser {
    pub user: user::Model,
    pub session_id: Uuid,
    /// When the session last proved a credential (login, second factor, reauth).
    pub authenticated_at: chrono::DateTime<chrono::Utc>,
}

impl CurrentUser {
    /// 403 `forbidden` unless the caller's role is at least `min`.
    pub fn require_role(&self, min: Role) -> Result<(), ApiError> {
        if self.user.role >= min { Ok(()) } else { Err(ApiError::Forbidden("Your role does not allow this.")) }
    }

    /// 403 `reauth_required` unless the session proved a credential within `max_age`.
    pub fn require_recent(&self, max_age: std::time::Duration) -> Result<(), ApiError> {
        let max_age = chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
        if crate::clock::now() - self.authenticated_at <= max_age { Ok(()) } else { Err(ApiError::ReauthRequired) }
    }
}

/// The access token a request carries: an explicit `Authorization: Bearer`
/// header wins over the cookie.
pub fn access_token(req: &Request) -> Option<String> {
    bearer_token(req).or_else(|| cookies::read(req, cookies::ACCESS_COOKIE))
}

fn bearer_token(req: &Request) -> Option<String> {
    let value = req.headers().get(poem::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

impl<'a> ApiExtractor<'a> for CurrentUser {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            COOKIE_SCHEME,
            MetaSecurityScheme {
                ty: "apiKey",
                description: Some(
                    "The httpOnly `access_token` cookie set by register, login and refresh. \
                     Browsers send it by themselves (`credentials: 'include'`).",
                ),
                name: Some(cookies::ACCESS_COOKIE),
                key_in: Some("cookie"),
                scheme: None,
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
        registry.create_security_scheme(
            BEARER_SCHEME,
            MetaSecurityScheme {
                ty: "http",
                description: Some("The same access token in `Authorization: Bearer`, for non-browser clients."),
                name: None,
                key_in: None,
                scheme: Some("bearer"),
                bearer_format: Some("JWT"),
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec![COOKIE_SCHEME, BEARER_SCHEME]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let state = req.data::<AppState>().expect("BUG: AppState is installed on the route");
        let token = access_token(req).ok_or(ApiError::NotAuthenticated)?;
        let claims = state.tokens.verify_reloading(&token, TokenType::Access, true).await.map_err(|e| match e {
            TokenError::Expired => ApiError::TokenExpired,
            TokenError::Invalid | TokenError::UnknownKey => ApiError::TokenInvalid,
        })?;
        let live = state.sessions.authenticate(&claims).await?;
        crate::middleware::request_log::record_session(live.user.id, live.session_id);
        Ok(CurrentUser { user: live.user, session_id: live.session_id, authenticated_at: live.authenticated_at })
    }
}
