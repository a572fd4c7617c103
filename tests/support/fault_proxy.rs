//! A fault-injecting HTTP proxy in front of moto: DynamoDB calls through it can be refused (an
//! outage, or a share of calls answered `500 InternalServerError` before they reach the table), or
//! applied and their answer lost (`500` after the write), as the AWS SDK sees such failures on the
//! wire. Secrets Manager calls pass untouched.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

/// What the proxy does to DynamoDB calls.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mode {
    /// Refuse every call.
    pub outage: bool,
    /// Share of calls refused before they reach the table.
    pub fail_ratio: f64,
    /// Share of calls applied whose answer is then lost.
    pub lost_ratio: f64,
}

struct Inner {
    target: String,
    http: reqwest::Client,
    mode: Mutex<Mode>,
    rng: Mutex<u64>,
    refused: AtomicU64,
    lost: AtomicU64,
    passed: AtomicU64,
}

/// The running proxy.
pub struct FaultProxy {
    /// Its URL (the AWS endpoint to give the stack).
    pub url: String,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `target` on a free port, with a seeded random source.
    pub async fn start(target: &str, seed: u64) -> Self {
        let inner = Arc::new(Inner {
            target: target.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            mode: Mutex::new(Mode::default()),
            rng: Mutex::new(seed | 1),
            refused: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            passed: AtomicU64::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, inner, task }
    }

    /// Sets what happens to the next calls.
    pub fn set(&self, mode: Mode) {
        *self.inner.mode.lock().unwrap() = mode;
    }

    /// (refused, applied but answer lost, passed) DynamoDB calls so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.inner.refused.load(Ordering::Relaxed),
            self.inner.lost.load(Ordering::Relaxed),
            self.inner.passed.load(Ordering::Relaxed),
        )
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Inner {
    fn roll(&self) -> f64 {
        let mut x = self.rng.lock().unwrap();
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        (*x >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn internal_error() -> Response {
    (
        http::StatusCode::INTERNAL_SERVER_ERROR,
        [("content-type", "application/x-amz-json-1.0")],
        r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected by the test's fault proxy"}"#,
    )
        .into_response()
}

async fn forward(State(p): State<Arc<Inner>>, req: http::Request<axum::body::Body>) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let dynamo = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("DynamoDB_"));
    let mode = *p.mode.lock().unwrap();
    if dynamo && (mode.outage || p.roll() < mode.fail_ratio) {
        p.refused.fetch_add(1, Ordering::Relaxed);
        return internal_error();
    }
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut out = p
        .http
        .request(parts.method.clone(), format!("{}{path}", p.target))
        .body(body);
    for (k, v) in &parts.headers {
        if k != http::header::HOST && k != http::header::CONTENT_LENGTH {
            out = out.header(k, v);
        }
    }
    let Ok(answer) = out.send().await else {
        return internal_error();
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    if dynamo && p.roll() < mode.lost_ratio {
        p.lost.fetch_add(1, Ordering::Relaxed);
        return internal_error();
    }
    if dynamo {
        p.passed.fetch_add(1, Ordering::Relaxed);
    }
    let mut response = (status, bytes).into_response();
    for (k, v) in &headers {
        if k != http::header::CONTENT_LENGTH && k != http::header::TRANSFER_ENCODING {
            response.headers_mut().insert(k, v.clone());
        }
    }
    response
}
