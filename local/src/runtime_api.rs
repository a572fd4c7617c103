//! A local Lambda Runtime API (the 2018-06-01 interface a `bootstrap` polls): hands out queued
//! events and collects the answers, so the real function binaries can be driven as on Lambda
//! (the end-to-end tests of the binaries and the cold-start benchmark use it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

#[derive(Default)]
struct Inner {
    waiting: HashMap<String, oneshot::Sender<Result<Value, Value>>>,
    init_error: Option<Value>,
    /// When the function first asked for an event: its init is over.
    first_poll: Option<std::time::Instant>,
    /// Invocations handed out and not yet answered, and the most there were at once.
    in_flight: usize,
    max_in_flight: usize,
}

impl Inner {
    fn answered(&mut self, id: &str) -> Option<oneshot::Sender<Result<Value, Value>>> {
        let waiting = self.waiting.remove(id)?;
        self.in_flight = self.in_flight.saturating_sub(1);
        Some(waiting)
    }
}

#[derive(Clone)]
struct RuntimeState {
    queue: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, String)>>>,
    inner: Arc<Mutex<Inner>>,
}

/// A running Runtime API.
pub struct RuntimeApi {
    /// `host:port`, for `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    sender: mpsc::UnboundedSender<(String, String)>,
    inner: Arc<Mutex<Inner>>,
}

async fn next(State(s): State<RuntimeState>) -> (HeaderMap, String) {
    s.inner
        .lock()
        .expect("lock")
        .first_poll
        .get_or_insert_with(std::time::Instant::now);
    let (id, event) = s.queue.lock().await.recv().await.unwrap_or_default();
    {
        let mut inner = s.inner.lock().expect("lock");
        inner.in_flight += 1;
        inner.max_in_flight = inner.max_in_flight.max(inner.in_flight);
    }
    let mut headers = HeaderMap::new();
    let deadline = (std::time::SystemTime::now() + std::time::Duration::from_secs(15))
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    for (k, v) in [
        ("lambda-runtime-aws-request-id", id.clone()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:smoke".into(),
        ),
        (
            "lambda-runtime-trace-id",
            "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1".into(),
        ),
    ] {
        headers.insert(k, v.parse().expect("header"));
    }
    (headers, event)
}

async fn respond(
    State(s): State<RuntimeState>,
    Path(id): Path<String>,
    body: String,
) -> StatusCode {
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    if let Some(tx) = s.inner.lock().expect("lock").answered(&id) {
        let _ = tx.send(Ok(value));
    }
    StatusCode::ACCEPTED
}

async fn error(State(s): State<RuntimeState>, Path(id): Path<String>, body: String) -> StatusCode {
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    if let Some(tx) = s.inner.lock().expect("lock").answered(&id) {
        let _ = tx.send(Err(value));
    }
    StatusCode::ACCEPTED
}

async fn init_error(State(s): State<RuntimeState>, body: String) -> StatusCode {
    s.inner.lock().expect("lock").init_error =
        Some(serde_json::from_str(&body).unwrap_or(Value::String(body)));
    StatusCode::ACCEPTED
}

impl RuntimeApi {
    /// Starts the Runtime API on a free loopback port.
    pub async fn start() -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        let inner = Arc::new(Mutex::new(Inner::default()));
        let state = RuntimeState {
            queue: Arc::new(tokio::sync::Mutex::new(receiver)),
            inner: inner.clone(),
        };
        let router = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            address,
            sender,
            inner,
        }
    }

    /// Invokes the function with `event` and waits (up to 30 s) for its answer.
    pub async fn invoke(&self, event: String) -> Result<Value, Value> {
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.inner
            .lock()
            .expect("lock")
            .waiting
            .insert(id.clone(), tx);
        self.sender.send((id, event)).expect("queue");
        tokio::time::timeout(std::time::Duration::from_secs(30), rx)
            .await
            .expect("the function answers within 30 s")
            .expect("answered")
    }

    /// When the function first polled for an event (the end of its init).
    pub fn first_poll(&self) -> Option<std::time::Instant> {
        self.inner.lock().expect("lock").first_poll
    }

    /// The most invocations the function held at once (handed out, not yet answered): 1 for
    /// a function serving one at a time.
    pub fn max_in_flight(&self) -> usize {
        self.inner.lock().expect("lock").max_in_flight
    }

    /// The init error the function reported, if any.
    pub fn init_error(&self) -> Option<Value> {
        self.inner.lock().expect("lock").init_error.clone()
    }
}

/// The variables that make a process act on the deployment `config` describes (which must read
/// Secrets Manager and DynamoDB): AWS at `aws_endpoint` (moto) with dummy credentials, and the
/// functions' own settings. A function's `bootstrap` and the operator CLI both run with them.
pub fn deployment_env(
    config: &shared::config::Config,
    aws_endpoint: &str,
) -> Result<Vec<(&'static str, String)>, String> {
    let shared::config::SecretsLocation::SecretsManager { secret_id, .. } = &config.secrets else {
        return Err("the function must read Secrets Manager (SECRET_ID)".into());
    };
    let shared::config::StoreLocation::DynamoDb { table_name } = &config.store else {
        return Err("the function must use DynamoDB (TABLE_NAME)".into());
    };
    Ok(vec![
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_ENDPOINT_URL", aws_endpoint.into()),
        ("STYTCH_PROJECT_ID", config.stytch_project_id.clone()),
        ("STYTCH_API_URL", config.stytch_api_url.clone()),
        ("UNIT_API_URL", config.unit_api_url.clone()),
        ("SECRET_ID", secret_id.clone()),
        ("TABLE_NAME", table_name.clone()),
    ])
}

/// The command that runs a function's `bootstrap` on `runtime` as Lambda would: the Lambda
/// variables, AWS at `aws_endpoint` (moto) with dummy credentials, and the function's own
/// configuration taken from `config` (which must read Secrets Manager and DynamoDB). Callers add
/// their own extras (log level, output) and spawn it.
pub fn bootstrap_command(
    path: &std::path::Path,
    function: &str,
    runtime: &RuntimeApi,
    config: &shared::config::Config,
    aws_endpoint: &str,
) -> Result<tokio::process::Command, String> {
    let env = deployment_env(config, aws_endpoint)?;
    let mut command = tokio::process::Command::new(path);
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", &runtime.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        )
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .envs(env)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    Ok(command)
}
