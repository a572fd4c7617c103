//! What every function's `main` does: JSON tracing, the state built once per cold start, then
//! the Lambda runtime loop; and the one wrapper every request goes through, on Lambda and in the
//! local runner alike.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use lambda_http::{Body, Request, Response};
use tracing::Instrument;

use crate::app::App;
use crate::error::ApiError;

/// A function's request handler: `async fn(Arc<App>, Request) -> Result<Response<Body>, ApiError>`.
/// It owns what it gets, so its future is `'static` and the runtime may run several at once.
pub trait Handler: Clone + Send + Sync + 'static {
    /// The handler's future.
    type Future: Future<Output = Result<Response<Body>, ApiError>> + Send + 'static;
    /// Calls the handler.
    fn call(&self, app: Arc<App>, req: Request) -> Self::Future;
}

impl<F, Fut> Handler for F
where
    F: Fn(Arc<App>, Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Body>, ApiError>> + Send + 'static,
{
    type Future = Fut;
    fn call(&self, app: Arc<App>, req: Request) -> Fut {
        self(app, req)
    }
}

/// The process's entry point: a Tokio runtime shaped by how Lambda invokes the function, then
/// [`run`]. Classic Lambda hands an execution environment one invocation at a time, so one thread
/// serves it: every upstream call's I/O is driven where the handler runs, with no wake-up of
/// another thread per call (on a 2-core VM that halved the bootstrap's CPU per token exchange;
/// BENCHMARKS.md). With `AWS_LAMBDA_MAX_CONCURRENCY` above 1 (Lambda Managed Instances), a
/// multi-threaded runtime with a worker per vCPU serves that many invocations at once.
pub fn start<H: Handler>(handler: H) -> Result<(), lambda_http::Error> {
    let concurrent =
        max_concurrency(std::env::var("AWS_LAMBDA_MAX_CONCURRENCY").ok().as_deref()) > 1;
    let mut builder = if concurrent {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build()?.block_on(run(handler))
}

/// The invocations Lambda may hand the environment at once: `AWS_LAMBDA_MAX_CONCURRENCY`, 1
/// when unset or unreadable (classic Lambda).
pub fn max_concurrency(var: Option<&str>) -> usize {
    var.and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(1)
}

/// Runs `handler` on Lambda, each request through [`serve`]. A start-up error is logged as one
/// line and the process exits 1, which Lambda reports as an init failure.
pub async fn run<H: Handler>(handler: H) -> Result<(), lambda_http::Error> {
    crate::telemetry::init_lambda();
    let app = match App::from_env().await {
        Ok(app) => Arc::new(app),
        Err(e) => {
            tracing::error!("start-up failed: {e}");
            std::process::exit(1);
        }
    };
    // One invocation at a time on classic Lambda; with AWS_LAMBDA_MAX_CONCURRENCY (Lambda
    // Managed Instances) that many at once, on the same state: the JWKS and secrets caches
    // are behind locks and the attempt counters are atomic writes in DynamoDB.
    lambda_http::run_concurrent(lambda_http::service_fn(move |req| {
        let (app, handler) = (app.clone(), handler.clone());
        async move { Ok::<_, Infallible>(serve(app, &handler, req).await) }
    }))
    .await
}

/// One request: a span with the request id, the handler's error logged, counted and mapped to
/// its response in one place, and one access-log line (method, path, status, duration; never headers or bodies).
pub async fn serve<H: Handler>(app: Arc<App>, handler: &H, req: Request) -> Response<Body> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = crate::http::path(&req).to_owned();
    let span = tracing::info_span!("request", request_id = %crate::http::request_id(&req));
    let response = async {
        match handler.call(app, req).await {
            Ok(response) => response,
            Err(error) => {
                error.report();
                error.into_response()
            }
        }
    }
    .instrument(span.clone())
    .await;
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            path,
            status = response.status().as_u16(),
            micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "handled"
        );
    });
    response
}

#[cfg(test)]
mod tests {
    use super::max_concurrency;

    #[test]
    fn max_concurrency_is_one_unless_lambda_says_more() {
        assert_eq!(max_concurrency(None), 1);
        assert_eq!(max_concurrency(Some("")), 1);
        assert_eq!(max_concurrency(Some("0")), 1);
        assert_eq!(max_concurrency(Some("eight")), 1);
        assert_eq!(max_concurrency(Some("1")), 1);
        assert_eq!(max_concurrency(Some(" 8 ")), 8);
    }
}
