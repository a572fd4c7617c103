//! signup-webhook: Stytch and Unit webhooks and the onboarding routes.
//!
//! Until the onboarding flow lands, each route authenticates its caller exactly as it will (Svix
//! signature, `X-Unit-Signature`, or the Stytch session JWT) and then answers 501: a webhook
//! sender retries a 5xx, so no signup event is lost meanwhile.

use http::Method;
use lambda_http::{Body, Request, Response};
use shared::http::{Route, route};
use shared::{ApiError, App};

/// The routes this function serves.
pub const ROUTES: &[Route] = &[
    Route::new(Method::POST, "/webhooks/stytch", "POST"),
    Route::new(Method::POST, "/webhooks/unit", "POST"),
    Route::new(Method::GET, "/onboarding", "GET"),
    Route::new(Method::POST, "/onboarding/application", "POST"),
];

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    shared::lambda::respond(&req, dispatch(app, &req)).await
}

async fn dispatch(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let route = route(req, ROUTES)?;
    match route.path {
        "/webhooks/stytch" => {
            let secrets = app.secrets.current().await?;
            let delivery = shared::webhook::verify_svix(
                &secrets.stytch_webhook_secret,
                req.headers(),
                req.body().as_ref(),
                shared::http::now_epoch(),
            )
            .map_err(webhook_refused)?;
            tracing::info!(svix_id = %delivery.id, "verified Stytch webhook");
        }
        "/webhooks/unit" => {
            let secrets = app.secrets.current().await?;
            shared::webhook::verify_unit(
                secrets.unit_webhook_token.expose(),
                req.headers(),
                req.body().as_ref(),
            )
            .map_err(webhook_refused)?;
        }
        _ => {
            app.authenticate(req).await?;
        }
    }
    Err(ApiError::not_implemented(route.method.as_str(), route.path))
}

fn webhook_refused(e: shared::webhook::WebhookError) -> ApiError {
    tracing::warn!(reason = %e, "webhook refused");
    ApiError::unauthorized(
        "invalid_signature",
        format!("webhook signature check failed: {e}"),
    )
}
