//! customer-token: a verified Stytch session JWT becomes a Unit customer bearer token.
//!
//! Until the exchange lands, the route verifies the caller's Stytch session JWT exactly as it
//! will and then answers 501.

use http::Method;
use lambda_http::{Body, Request, Response};
use shared::http::{Route, route};
use shared::{ApiError, App};

/// The routes this function serves.
pub const ROUTES: &[Route] = &[Route::new(Method::POST, "/unit/customer-token", "POST")];

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    shared::lambda::respond(&req, dispatch(app, &req)).await
}

async fn dispatch(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let route = route(req, ROUTES)?;
    app.authenticate(req).await?;
    Err(ApiError::not_implemented(route.method.as_str(), route.path))
}
