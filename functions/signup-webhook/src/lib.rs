//! signup-webhook: Stytch and Unit webhooks and the onboarding routes. It binds the Stytch
//! `user_id` to the Unit customer through `jwtSubject`, in the three ways Stytch's guide names:
//! the application form prefill (on signup), the application itself
//! (`POST /onboarding/application`), and `PATCH /customers/{id}` for an existing customer (an
//! operator command of `bridge-admin`, [`shared::onboarding::link_existing_customer`]).

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use shared::http::{Route, route};
use shared::{ApiError, App};

pub mod application;
pub mod webhooks;

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
    match route(req, ROUTES)?.path {
        "/webhooks/stytch" => webhooks::stytch(app, req).await,
        "/webhooks/unit" => webhooks::unit(app, req).await,
        "/onboarding/application" => application::create(app, req).await,
        _ => {
            let session = app.authenticate(req).await?;
            let state =
                shared::onboarding::state(app, &session.user_id, shared::http::deadline(req))
                    .await?;
            Ok(shared::error::json(StatusCode::OK, &state))
        }
    }
}
