//! signup-webhook: Stytch and Unit webhooks and the onboarding routes. It binds the Stytch
//! `user_id` to the Unit customer through `jwtSubject`, in the three ways Stytch's guide names:
//! the application form prefill (on signup), the application itself
//! (`POST /onboarding/application`), and `PATCH /customers/{id}` for an existing customer (an
//! operator command of `bridge-admin`, [`shared::onboarding::link_existing_customer`]).

use std::sync::Arc;

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use shared::{ApiError, App};

pub mod application;
pub mod webhooks;

/// The routes this function serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /webhooks/stytch`: Svix-signed Stytch user events.
    StytchWebhook,
    /// `POST /webhooks/unit`: Unit's signed onboarding events.
    UnitWebhook,
    /// `GET /onboarding`: the caller's onboarding state.
    Onboarding,
    /// `POST /onboarding/application`: the caller's application with their KYC data.
    Application,
}

impl shared::http::Routes for Route {
    const ALL: &'static [Self] = &[
        Self::StytchWebhook,
        Self::UnitWebhook,
        Self::Onboarding,
        Self::Application,
    ];

    fn method(self) -> Method {
        match self {
            Self::Onboarding => Method::GET,
            Self::StytchWebhook | Self::UnitWebhook | Self::Application => Method::POST,
        }
    }

    fn path(self) -> &'static str {
        match self {
            Self::StytchWebhook => "/webhooks/stytch",
            Self::UnitWebhook => "/webhooks/unit",
            Self::Onboarding => "/onboarding",
            Self::Application => "/onboarding/application",
        }
    }
}

/// Handles one request (through [`shared::lambda::serve`]).
pub async fn handle(app: Arc<App>, req: Request) -> Result<Response<Body>, ApiError> {
    let app = &*app;
    match shared::http::route::<Route>(&req)? {
        Route::StytchWebhook => webhooks::stytch(app, &req).await,
        Route::UnitWebhook => webhooks::unit(app, &req).await,
        Route::Application => application::create(app, &req).await,
        Route::Onboarding => {
            let session = app.authenticate(&req).await?;
            let state =
                shared::onboarding::state(app, &session.user_id, shared::http::deadline(&req))
                    .await?;
            let mut response = shared::error::json(StatusCode::OK, &state);
            if let Some(seconds) = state.retry_after {
                response
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
            }
            Ok(response)
        }
    }
}
