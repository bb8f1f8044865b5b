//! The extractors handlers take as arguments: [`CurrentUser`] (the access
//! token, checked against a live session) and [`ClientInfo`] (the client IP
//! through `TRUSTED_PROXIES`, and the user agent). They are the HTTP edge of
//! `auth` and `client`, so those stay free of the app's state.

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaSecurityScheme, Registry},
};

use crate::{
    auth::{
        BEARER_SCHEME, COOKIE_SCHEME, CurrentUser, access_token, cookies,
        tokens::{TokenError, TokenType},
    },
    client::ClientInfo,
    error::ApiError,
    state::AppState,
};

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

impl<'a> FromRequest<'a> for ClientInfo {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let state = req.data::<AppState>().expect("BUG: AppState is installed on the route");
        Ok(ClientInfo::from_request(req, &state.config.trusted_proxies, state.config.forwarded_header))
    }
}
