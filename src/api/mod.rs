//! The HTTP API, one `#[OpenApi]` struct per tag, combined into one service
//! whose spec is the committed `openapi.yaml`.

pub mod auth;
pub mod email;
pub mod events;
pub mod extract;
pub mod health;
pub mod json_body;
pub mod jwks;
pub mod mfa;
pub mod pagination;
pub mod schemas;
pub mod session_cookies;
pub mod tasks;
pub mod users;

use poem_openapi::{OpenApiService, Tags};

#[derive(Tags)]
pub enum ApiTags {
    /// Register, sign in, refresh and sign out; the signed-in user's profile; email verification, password reset and email change.
    Auth,
    /// The example resource API: each user's own tasks.
    Tasks,
    /// User administration, for `admin` and above.
    Users,
    /// Health probes, and the public keys other services verify access tokens with.
    Operations,
}

pub type Apis =
    (auth::AuthApi, email::EmailApi, mfa::MfaApi, tasks::TasksApi, users::UsersApi, health::HealthApi, jwks::JwksApi);

pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            auth::AuthApi,
            email::EmailApi,
            mfa::MfaApi,
            tasks::TasksApi,
            users::UsersApi,
            health::HealthApi,
            jwks::JwksApi,
        ),
        "Latchkey",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Cookie-session authentication for browser single-page apps. Tokens travel only in \
             httpOnly `SameSite=Strict` cookies; every error is an RFC 9457 problem document.",
    )
}

/// The spec as committed in `openapi.yaml`.
pub fn spec_yaml() -> String {
    service().spec_yaml()
}
