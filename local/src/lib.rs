//! The local stack: every route of the three functions on one localhost port, calling the very
//! handlers the Lambda binaries run. A dev tool, never deployed.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::IntoResponse;
use http::Method;
use shared::App;
use shared::http::Routes;

pub mod demo;
pub mod runtime_api;
pub mod sample_events;
pub mod settings;
pub mod stack;
pub mod web;

/// Largest request body accepted: Lambda's synchronous payload limit.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// The function that owns a path, as API Gateway would route it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    SignupWebhook,
    TotpStepup,
    CustomerToken,
}

impl Function {
    /// Every function.
    pub const ALL: [Function; 3] = [
        Function::SignupWebhook,
        Function::TotpStepup,
        Function::CustomerToken,
    ];

    /// Its name, as in `template.yaml`.
    pub fn name(self) -> &'static str {
        match self {
            Function::SignupWebhook => "signup-webhook",
            Function::TotpStepup => "totp-stepup",
            Function::CustomerToken => "customer-token",
        }
    }

    /// The function called `name`.
    pub fn named(name: &str) -> Option<Function> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Its routes, from the function's own table: `(method, path)`.
    pub fn routes(self) -> Vec<(Method, &'static str)> {
        fn table<R: Routes>() -> Vec<(Method, &'static str)> {
            R::ALL.iter().map(|r| (r.method(), r.path())).collect()
        }
        match self {
            Function::SignupWebhook => table::<signup_webhook::Route>(),
            Function::TotpStepup => table::<totp_stepup::Route>(),
            Function::CustomerToken => table::<customer_token::Route>(),
        }
    }

    /// The function serving `path`, if any.
    pub fn for_path(path: &str) -> Option<Function> {
        let path = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        };
        Self::ALL
            .into_iter()
            .find(|f| f.routes().iter().any(|(_, p)| *p == path))
    }

    /// Serves `req` as this function's Lambda would.
    pub async fn serve(
        self,
        app: Arc<App>,
        req: lambda_http::Request,
    ) -> lambda_http::Response<lambda_http::Body> {
        use shared::lambda::serve;
        match self {
            Function::SignupWebhook => serve(app, &signup_webhook::handle, req).await,
            Function::TotpStepup => serve(app, &totp_stepup::handle, req).await,
            Function::CustomerToken => serve(app, &customer_token::handle, req).await,
        }
    }
}

/// Serves the stack on `listener` until the future is dropped.
pub async fn serve(app: Arc<App>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let router = web::routes()
        .fallback(dispatch)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app);
    axum::serve(listener, router).await
}

/// Binds `addr` and serves in a background task; returns the bound address.
pub async fn spawn(
    app: Arc<App>,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(e) = serve(app, listener).await {
            tracing::error!(error = %e, "local stack stopped");
        }
    });
    Ok((local, task))
}

async fn dispatch(
    State(app): State<Arc<App>>,
    req: http::Request<axum::body::Body>,
) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return to_axum(shared::ApiError::payload_too_large().into_response());
        }
    };
    let body = if bytes.is_empty() {
        lambda_http::Body::Empty
    } else {
        lambda_http::Body::Binary(bytes.to_vec())
    };
    let req = lambda_http::Request::from_parts(parts, body);
    let exchange = recorder().map(|_| Exchange::of(&req));
    let response = match Function::for_path(req.uri().path()) {
        Some(function) => function.serve(app, req).await,
        // What API Gateway answers for an unknown route, in our error format.
        None => shared::ApiError::route_not_found(req.method().as_str(), req.uri().path())
            .into_response(),
    };
    let (parts, bytes) = into_bytes(response);
    if let (Some(exchange), Some(file)) = (exchange, recorder()) {
        exchange.record(file, &parts, &bytes);
    }
    (parts, bytes).into_response()
}

fn to_axum(response: lambda_http::Response<lambda_http::Body>) -> axum::response::Response {
    into_bytes(response).into_response()
}

fn into_bytes(
    response: lambda_http::Response<lambda_http::Body>,
) -> (http::response::Parts, Vec<u8>) {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        lambda_http::Body::Empty => Vec::new(),
        lambda_http::Body::Text(text) => text.into_bytes(),
        lambda_http::Body::Binary(bytes) => bytes,
        _ => Vec::new(),
    };
    (parts, bytes)
}

/// Where every exchange on our routes is appended as one JSON line when `LOCAL_STACK_RECORD`
/// names a file: the test command checks them all against `openapi.yaml`
/// (`tools/check_openapi.py`). Test tooling only; off unless the variable is set.
fn recorder() -> Option<&'static std::sync::Mutex<std::fs::File>> {
    static FILE: std::sync::OnceLock<Option<std::sync::Mutex<std::fs::File>>> =
        std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        let path = std::env::var_os("LOCAL_STACK_RECORD")?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .inspect_err(|e| tracing::error!(error = %e, "cannot open LOCAL_STACK_RECORD"))
            .ok()?;
        Some(std::sync::Mutex::new(file))
    })
    .as_ref()
}

/// The request half of a recorded exchange. Its credentials and body are kept too:
/// `tools/check_logs.py` takes the secrets to look for in the logs from them (the file is a
/// test artifact under `target/`).
struct Exchange {
    method: String,
    path: String,
    query: String,
    content_type: Option<String>,
    authorization: Option<String>,
    body: String,
}

impl Exchange {
    fn of(req: &lambda_http::Request) -> Self {
        Self {
            method: req.method().to_string(),
            path: req.uri().path().to_owned(),
            query: req.uri().query().unwrap_or_default().to_owned(),
            content_type: header_text(req.headers(), http::header::CONTENT_TYPE),
            authorization: header_text(req.headers(), http::header::AUTHORIZATION),
            body: String::from_utf8_lossy(req.body().as_ref()).into_owned(),
        }
    }

    fn record(
        self,
        file: &std::sync::Mutex<std::fs::File>,
        parts: &http::response::Parts,
        body: &[u8],
    ) {
        use std::io::Write as _;
        let headers: serde_json::Map<String, serde_json::Value> = parts
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.into())))
            .collect();
        let line = serde_json::json!({
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "request_content_type": self.content_type,
            "request_authorization": self.authorization,
            "request_body": self.body,
            "status": parts.status.as_u16(),
            "headers": headers,
            "body": String::from_utf8_lossy(body),
        });
        // Under the lock: lines from concurrent requests never interleave.
        let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(file, "{line}");
    }
}

fn header_text(headers: &http::HeaderMap, name: http::header::HeaderName) -> Option<String> {
    headers.get(name)?.to_str().ok().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_design_route_has_one_function() {
        let expected = [
            ("/webhooks/stytch", Function::SignupWebhook),
            ("/webhooks/unit", Function::SignupWebhook),
            ("/onboarding", Function::SignupWebhook),
            ("/onboarding/application", Function::SignupWebhook),
            ("/mfa/totp", Function::TotpStepup),
            ("/mfa/totp/authenticate", Function::TotpStepup),
            ("/mfa/totp/recover", Function::TotpStepup),
            ("/unit/customer-token", Function::CustomerToken),
        ];
        for (path, function) in expected {
            assert_eq!(Function::for_path(path), Some(function), "{path}");
        }
        assert_eq!(Function::for_path("/mfa"), None);
        let total: usize = Function::ALL.iter().map(|f| f.routes().len()).sum();
        assert_eq!(
            total,
            expected.len(),
            "a route was added without updating this test"
        );
    }
}
