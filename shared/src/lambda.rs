//! What every function's `main` does: JSON tracing, the state built once per cold start, then
//! the Lambda runtime loop calling the handler with that state.

use std::convert::Infallible;
use std::future::Future;
use std::time::Instant;

use lambda_http::{Body, Request, Response};
use tracing::Instrument;

use crate::app::App;
use crate::error::ApiError;

/// A request handler borrowing the state: an `async fn(&App, Request) -> Response<Body>`.
pub trait Handler<'a>: Sync {
    /// The handler's future.
    type Future: Future<Output = Response<Body>> + Send + 'a;
    /// Calls the handler.
    fn call(&self, app: &'a App, req: Request) -> Self::Future;
}

impl<'a, F, Fut> Handler<'a> for F
where
    F: Fn(&'a App, Request) -> Fut + Sync,
    Fut: Future<Output = Response<Body>> + Send + 'a,
{
    type Future = Fut;
    fn call(&self, app: &'a App, req: Request) -> Fut {
        self(app, req)
    }
}

/// Runs `handler` on Lambda. A start-up error is logged as one line and the process exits 1,
/// which Lambda reports as an init failure.
pub async fn run<H: for<'a> Handler<'a>>(handler: H) -> Result<(), lambda_http::Error> {
    crate::telemetry::init_lambda();
    let app = match App::from_env().await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("start-up failed: {e}");
            std::process::exit(1);
        }
    };
    let (app, handler) = (&app, &handler);
    lambda_http::run(lambda_http::service_fn(move |req| async move {
        Ok::<_, Infallible>(handler.call(app, req).await)
    }))
    .await
}

/// Wraps one request: a span with the request id, the error mapped to its response in one place,
/// and one access-log line (method, path, status, duration; never headers or bodies).
pub async fn respond<F>(req: &Request, work: F) -> Response<Body>
where
    F: Future<Output = Result<Response<Body>, ApiError>>,
{
    let started = Instant::now();
    let span = tracing::info_span!("request", request_id = %crate::http::request_id(req));
    let response = async {
        match work.await {
            Ok(response) => response,
            Err(error) => {
                if error.status.is_server_error() {
                    tracing::warn!(code = error.code, "request failed");
                }
                error.into_response()
            }
        }
    }
    .instrument(span.clone())
    .await;
    span.in_scope(|| {
        tracing::info!(
            method = %req.method(),
            path = crate::http::path(req),
            status = response.status().as_u16(),
            micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "handled"
        );
    });
    response
}
