//! In-process emulators of Stytch and Unit for the local stack and the end-to-end tests, faithful
//! to `docs/stytch-api.md` and `docs/unit-api.md` on the paths we use. Each listens at the root of its own
//! port, like the real hosts, so official SDKs (which drop base-URL paths) can use them too.
//!
//! Test controls live under `/_sandbox/`, a prefix neither real API has:
//! - `POST /_sandbox/faults` `{"route": "POST /v1/totps/authenticate", "status": 503,
//!   "retry_after": 2, "latency_ms": 100, "drop": false, "times": 2, "ratio": 0.5}` injects a
//!   fault (route `*` for all; `times` = the next N matching calls; `ratio` = that share of calls;
//!   `retry_after` may also be an HTTP date string; `"body": "<html>..."` answers that text, as
//!   a proxy or WAF in front of the vendor would, instead of the service's error JSON);
//!   `DELETE /_sandbox/faults` clears them.
//! - `GET /_sandbox/requests` lists the calls received (method, path, status, JSON body with
//!   secrets masked); `DELETE /_sandbox/requests` clears the list.
//! - `GET /_sandbox/webhooks` lists webhook deliveries and their attempts.
//! - `GET /_sandbox/connections` counts accepted TCP connections (to check connection reuse).
//! - Unit's only: `POST /_sandbox/customers/{id}/card` opens a deposit account and a virtual debit
//!   card for a customer (`{"accountId", "cardId"}`, the same ids on a repeat), as a bank program
//!   does after approval.

// Sandbox handlers return ready error responses as `Err`; their size is irrelevant in an emulator.
#![allow(clippy::result_large_err)]

pub mod qr;
pub mod stytch;
pub mod totp;
pub mod unit;
pub mod unit_spec;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A fault to inject.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Fault {
    /// `"METHOD /path/template"` (as routed, e.g. `GET /v1/users/{user_id}`), `"METHOD /concrete/path"`,
    /// `"METHOD *"`, or `"*"`.
    pub route: String,
    /// Answer this status (with the service's error body) instead of handling the call.
    #[serde(default)]
    pub status: Option<u16>,
    /// `Retry-After` on that answer: seconds, or an HTTP date (a string, sent as is).
    #[serde(default)]
    pub retry_after: Option<RetryAfter>,
    /// That answer's body as this text (`text/html`), not the service's error JSON.
    #[serde(default)]
    pub body: Option<String>,
    /// Delay before handling (or before the injected answer).
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Drop the connection: headers are sent, then the body fails mid-way.
    #[serde(default)]
    pub drop: bool,
    /// Apply to the next N matching calls only (default: every matching call).
    #[serde(default)]
    pub times: Option<u32>,
    /// Apply to this share of matching calls (0..=1; default 1).
    #[serde(default)]
    pub ratio: Option<f64>,
}

/// The two forms of `Retry-After` (RFC 9110 §10.2.3).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum RetryAfter {
    Seconds(u64),
    HttpDate(String),
}

impl Fault {
    fn matches(&self, method: &str, template: &str, path: &str) -> bool {
        if self.route == "*" {
            return true;
        }
        let Some((m, p)) = self.route.split_once(' ') else {
            return false;
        };
        m.eq_ignore_ascii_case(method) && (p == "*" || p == template || p == path)
    }
}

/// One call a sandbox received.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoggedRequest {
    /// Order of arrival.
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The route template it matched.
    pub route: String,
    pub status: u16,
    /// The JSON body, with secret-bearing fields masked.
    pub body: Value,
    /// Whether an injected fault answered it.
    pub faulted: bool,
    /// The caller's `User-Agent` (ours is `stytch-unit-bridge/<version>`).
    #[serde(default)]
    pub user_agent: String,
}

/// Fault rules, the request log and the connection count of one sandbox.
#[derive(Default)]
pub struct Controls {
    faults: Mutex<Vec<Fault>>,
    log: Mutex<Vec<LoggedRequest>>,
    seq: AtomicU64,
    connections: Arc<AtomicU64>,
}

/// Fields never kept in the request log.
const MASKED: &[&str] = &[
    "jwtToken",
    "ssn",
    "passport",
    "session_jwt",
    "session_token",
    "totp_code",
    "recovery_code",
    "password",
    // Stytch B2B: the TOTP code, a migrated password's hash, the MFA step's token.
    "code",
    "hash",
    "intermediate_session_token",
];

fn mask(mut value: Value) -> Value {
    match &mut value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if MASKED.contains(&k.as_str()) && !v.is_null() {
                    *v = Value::String("[masked]".into());
                } else {
                    *v = mask(std::mem::take(v));
                }
            }
        }
        Value::Array(items) => {
            for v in items.iter_mut() {
                *v = mask(std::mem::take(v));
            }
        }
        _ => {}
    }
    value
}

impl Controls {
    /// Takes the fault for this call, if one applies (consuming one of its `times`).
    fn take_fault(&self, method: &str, template: &str, path: &str) -> Option<Fault> {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        let index = faults.iter().position(|f| {
            f.matches(method, template, path) && f.ratio.is_none_or(|r| fastrand::f64() < r)
        })?;
        let fault = faults[index].clone();
        if let Some(times) = &mut faults[index].times {
            *times = times.saturating_sub(1);
            if *times == 0 {
                faults.remove(index);
            }
        }
        Some(fault)
    }

    /// The calls received so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Adds a fault rule.
    pub fn add_fault(&self, fault: Fault) {
        self.faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(fault);
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

/// How a sandbox renders an error in its own API's shape.
pub type ErrorBody = fn(StatusCode, &str) -> Response;

/// Middleware: faults, then the handler, then the request log.
pub async fn observe(
    State((controls, error_body)): State<(Arc<Controls>, ErrorBody)>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let user_agent = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let template = matched
        .as_ref()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| path.clone());
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1024 * 1024)
        .await
        .unwrap_or_default();
    let logged_body = serde_json::from_slice(&bytes)
        .map(mask)
        .unwrap_or(Value::Null);
    let fault = controls.take_fault(&method, &template, &path);
    let latency = fault
        .as_ref()
        .and_then(|f| f.latency_ms)
        .map(Duration::from_millis);
    let injected = fault.as_ref().is_some_and(|f| f.drop || f.status.is_some());
    if let Some(delay) = latency.filter(|_| injected) {
        tokio::time::sleep(delay).await;
    }
    let entry = LoggedRequest {
        seq: 0,
        method,
        path,
        query,
        route: template,
        status: 0,
        body: logged_body,
        faulted: false,
        user_agent,
    };
    match fault {
        Some(f) if f.drop => controls.logged(entry, dropped_response(), true),
        Some(Fault {
            status: Some(code),
            retry_after,
            body,
            ..
        }) => {
            let response = injected_response(code, retry_after, body, error_body);
            controls.logged(entry, response, true)
        }
        _ => {
            let request = Request::from_parts(parts, axum::body::Body::from(bytes));
            handle_detached(controls, entry, request, latency, next).await
        }
    }
}

/// The answer of an injected `status` fault: the service's error body (or the fault's own
/// `text/html` body), with its `Retry-After` if it has one.
fn injected_response(
    code: u16,
    retry_after: Option<RetryAfter>,
    body: Option<String>,
    error_body: ErrorBody,
) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match body {
        Some(text) => (
            status,
            [(http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
            text,
        )
            .into_response(),
        None => error_body(status, "injected fault"),
    };
    let value = match retry_after {
        Some(RetryAfter::Seconds(s)) => Some(http::HeaderValue::from(s)),
        Some(RetryAfter::HttpDate(date)) => http::HeaderValue::from_str(&date).ok(),
        None => None,
    };
    if let Some(value) = value {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, value);
    }
    response
}

/// Runs the handler after `latency` and logs its answer.
///
/// Like a real server, the sandbox finishes (and logs) what it accepted even when the client
/// stops waiting (a slow KYC past the caller's timeout): the handler runs on a task of its own,
/// after the injected latency.
async fn handle_detached(
    controls: Arc<Controls>,
    entry: LoggedRequest,
    request: Request,
    latency: Option<Duration>,
    next: Next,
) -> Response {
    let handled = tokio::spawn(async move {
        if let Some(delay) = latency {
            tokio::time::sleep(delay).await;
        }
        let response = next.run(request).await;
        controls.logged(entry, response, false)
    });
    handled
        .await
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

impl Controls {
    /// Logs a call with its answer's status, and passes the answer on.
    fn logged(&self, mut entry: LoggedRequest, response: Response, faulted: bool) -> Response {
        entry.seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        entry.status = response.status().as_u16();
        entry.faulted = faulted;
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(entry);
        response
    }
}

/// A 200 whose body fails after the headers: the client sees the connection drop mid-response.
fn dropped_response() -> Response {
    let stream = futures_lite_error_stream();
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_LENGTH, "1024")
        .body(axum::body::Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn futures_lite_error_stream()
-> impl futures_core::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send {
    struct Failing(bool);
    impl futures_core::Stream for Failing {
        type Item = Result<bytes::Bytes, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            if self.0 {
                return std::task::Poll::Ready(None);
            }
            self.0 = true;
            std::task::Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "dropped",
            ))))
        }
    }
    Failing(false)
}

/// The `/_sandbox/` routes every sandbox has.
pub fn control_routes<S: Clone + Send + Sync + 'static>(
    controls: Arc<Controls>,
) -> axum::Router<S> {
    axum::Router::new()
        .route(
            "/_sandbox/faults",
            axum::routing::post(add_fault).delete(clear_faults),
        )
        .route(
            "/_sandbox/requests",
            get(list_requests).delete(clear_requests),
        )
        .route("/_sandbox/connections", get(connections))
        .with_state(controls)
}

async fn add_fault(State(c): State<Arc<Controls>>, Json(fault): Json<Fault>) -> StatusCode {
    c.add_fault(fault);
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(c): State<Arc<Controls>>) -> StatusCode {
    c.faults.lock().unwrap_or_else(|p| p.into_inner()).clear();
    StatusCode::NO_CONTENT
}

async fn list_requests(State(c): State<Arc<Controls>>) -> Json<Vec<LoggedRequest>> {
    Json(c.requests())
}

async fn clear_requests(State(c): State<Arc<Controls>>) -> StatusCode {
    c.log.lock().unwrap_or_else(|p| p.into_inner()).clear();
    StatusCode::NO_CONTENT
}

async fn connections(State(c): State<Arc<Controls>>) -> Json<Value> {
    Json(serde_json::json!({"accepted": c.connections()}))
}

/// A TCP listener that counts the connections it accepts.
pub struct CountingListener {
    inner: tokio::net::TcpListener,
    count: Arc<AtomicU64>,
}

impl axum::serve::Listener for CountingListener {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let accepted = axum::serve::Listener::accept(&mut self.inner).await;
        self.count.fetch_add(1, Ordering::SeqCst);
        accepted
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A sandbox serving in the background.
pub struct Running {
    /// Its base URL, e.g. `http://127.0.0.1:3001`.
    pub url: String,
    /// Its fault rules, request log and connection count.
    pub controls: Arc<Controls>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `router` on `inner` with `controls` counting connections.
pub fn serve(
    router: axum::Router,
    inner: tokio::net::TcpListener,
    controls: Arc<Controls>,
) -> std::io::Result<Running> {
    let local = inner.local_addr()?;
    let listener = CountingListener {
        inner,
        count: controls.connections.clone(),
    };
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(Running {
        url: format!("http://{local}"),
        controls,
        task,
    })
}

/// Current time as RFC 3339 with second precision and `Z`.
pub fn rfc3339(at: time::OffsetDateTime) -> String {
    let at = at.replace_nanosecond(0).unwrap_or(at);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Now, UTC.
pub fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Random lowercase hex, for ids that only need to be unique.
pub fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", fastrand::u8(..)))
        .collect()
}

/// A random UUID v4 string.
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_match_templates_paths_and_wildcards() {
        let f = |route: &str| Fault {
            route: route.into(),
            ..Default::default()
        };
        assert!(f("*").matches("GET", "/v1/users/{user_id}", "/v1/users/u1"));
        assert!(f("GET /v1/users/{user_id}").matches("GET", "/v1/users/{user_id}", "/v1/users/u1"));
        assert!(f("get /v1/users/u1").matches("GET", "/v1/users/{user_id}", "/v1/users/u1"));
        assert!(f("POST *").matches("POST", "/x", "/x"));
        assert!(!f("POST /v1/users/{user_id}").matches(
            "GET",
            "/v1/users/{user_id}",
            "/v1/users/u1"
        ));
    }

    #[test]
    fn times_are_consumed_and_secrets_masked() {
        let c = Controls::default();
        c.add_fault(Fault {
            route: "*".into(),
            status: Some(503),
            times: Some(2),
            ..Default::default()
        });
        assert!(c.take_fault("GET", "/a", "/a").is_some());
        assert!(c.take_fault("GET", "/a", "/a").is_some());
        assert!(c.take_fault("GET", "/a", "/a").is_none());
        let masked = mask(
            serde_json::json!({"data": {"attributes": {"jwtToken": "eyJ", "scope": "customers", "ssn": "123"}}}),
        );
        assert_eq!(masked["data"]["attributes"]["jwtToken"], "[masked]");
        assert_eq!(masked["data"]["attributes"]["scope"], "customers");
        assert_eq!(masked["data"]["attributes"]["ssn"], "[masked]");
    }

    /// The open-question numbers each contract defines: the items of its "Open questions" list.
    fn defined_questions(contract: &str) -> std::collections::BTreeSet<u32> {
        let list = contract
            .split("Open questions")
            .nth(1)
            .expect("an open questions section");
        let list = list.split("\n---").next().unwrap_or(list);
        list.lines()
            .filter_map(|l| l.split_once(". ").and_then(|(n, _)| n.parse().ok()))
            .collect()
    }

    /// The open-question numbers a source cites, as `(OQn)` or `OQn`.
    fn cited_questions(source: &str) -> Vec<u32> {
        source
            .match_indices("OQ")
            .filter_map(|(i, _)| {
                let digits: String = source[i + 2..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                digits.parse().ok()
            })
            .collect()
    }

    #[test]
    fn every_open_question_the_sandboxes_cite_is_defined_in_its_contract() {
        for (source, contract) in [
            (
                include_str!("stytch/mod.rs"),
                include_str!("../../docs/stytch-api.md"),
            ),
            (
                include_str!("unit/mod.rs"),
                include_str!("../../docs/unit-api.md"),
            ),
        ] {
            let defined = defined_questions(contract);
            assert!(defined.len() >= 9, "{defined:?}");
            for n in cited_questions(source) {
                assert!(defined.contains(&n), "OQ{n} is cited but not defined");
            }
        }
    }
}
