//! Liveness and readiness probes for load balancers and orchestrators.

use poem::web::Data;
use poem_openapi::{OpenApi, payload::Json};

use crate::{
    api::{
        ApiTags,
        schemas::{Health, Readiness},
    },
    error::ApiError,
    state::AppState,
};

pub struct HealthApi;

#[OpenApi(tag = "ApiTags::Operations")]
impl HealthApi {
    /// Liveness: the process is up.
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self) -> Json<Health> {
        Json(Health { status: "ok".into() })
    }

    /// Readiness: 200 when the database answers, 503 `database_unavailable` when it does not.
    #[oai(path = "/health/ready", method = "get", operation_id = "ready")]
    async fn ready(&self, state: Data<&AppState>) -> Result<Json<Readiness>, ApiError> {
        state.db.ping().await.map_err(ApiError::Unavailable)?;
        Ok(Json(Readiness { status: "ok".into(), database: "ok".into() }))
    }
}
