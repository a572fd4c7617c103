//! Helpers of the end-to-end tests: moto, a local stack on a free port, signed requests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use shared::App;
use shared::config::Config;
use shared::jwt::signer::Signer;

/// The project id the tests use.
pub const PROJECT_ID: &str = "project-test-e2e00000-0000-0000-0000-000000000000";

/// The Svix secret the tests put in Secrets Manager (the official test vector's).
pub const SVIX_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The Unit webhook token the tests put in Secrets Manager.
pub const UNIT_WEBHOOK_TOKEN: &str = "unit-webhook-token-e2e";

/// moto's URL from the test command; the tests need it (in CI its absence is a failure).
pub fn moto_url() -> Option<String> {
    match std::env::var("MOTO_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("MOTO_URL must be set in CI (the test command starts moto)")
        }
        _ => {
            eprintln!("skipped: MOTO_URL is not set (run `make test`, which starts moto)");
            None
        }
    }
}

/// AWS SDK configuration pointing at moto with dummy credentials.
pub async fn aws(moto: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await
}

/// The secret JSON the stack reads from Secrets Manager.
pub fn secret_json() -> serde_json::Value {
    serde_json::json!({
        "stytch_project_id": PROJECT_ID,
        "stytch_secret": "secret-test-e2e",
        "stytch_webhook_secret": SVIX_SECRET,
        "unit_api_token": "v2.public.e2e",
        "unit_webhook_token": UNIT_WEBHOOK_TOKEN,
    })
}

/// Creates a secret in moto with a unique name; returns the name.
pub async fn create_secret(aws: &aws_config::SdkConfig, value: &serde_json::Value) -> String {
    let name = format!("bridge-e2e-{}", uuid::Uuid::new_v4());
    aws_sdk_secretsmanager::Client::new(aws)
        .create_secret()
        .name(&name)
        .secret_string(value.to_string())
        .send()
        .await
        .expect("create the secret in moto");
    name
}

/// A signing key served as the Stytch project's JWKS by a minimal HTTP server: the one Stytch
/// endpoint the foundation's routes call (the full Stytch sandbox is a separate piece).
pub struct Jwks {
    pub signer: Signer,
    pub url: String,
    pub fetches: Arc<std::sync::atomic::AtomicUsize>,
}

impl Jwks {
    /// Starts the JWKS server on a free port.
    pub async fn start() -> Self {
        use std::sync::atomic::Ordering;
        let signer = Signer::generate("jwk-test-e2e");
        let body = serde_json::json!({"keys": [signer.jwk()], "request_id": "request-id-test-e2e", "status_code": 200});
        let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = fetches.clone();
        let path = format!("/v1/sessions/jwks/{PROJECT_ID}");
        let router = axum::Router::new().route(
            &path,
            axum::routing::get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let body = body.clone();
                async move { axum::Json(body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            signer,
            url: format!("http://{addr}"),
            fetches,
        }
    }

    /// A Stytch-shaped session JWT for `user_id`, issued `age` seconds ago.
    pub fn session_jwt(&self, user_id: &str, issued_at: i64) -> String {
        self.signer.sign(&serde_json::json!({
            "aud": [PROJECT_ID], "iss": format!("stytch.com/{PROJECT_ID}"), "sub": user_id,
            "iat": issued_at, "nbf": issued_at, "exp": issued_at + 300,
            "https://stytch.com/session": {
                "id": "session-test-e2e", "started_at": "2026-11-25T09:00:00Z",
                "last_accessed_at": "2026-11-25T09:00:00Z", "expires_at": "2026-12-25T09:00:00Z",
                "attributes": {"ip_address": "", "user_agent": ""}, "roles": ["stytch_user"],
                "authentication_factors": [{"type": "password", "delivery_method": "knowledge",
                    "last_authenticated_at": "2026-11-25T09:00:00Z"}]
            }
        }))
    }
}

/// Environment for the stack: Secrets Manager and DynamoDB in moto, Stytch at `stytch_url`.
pub fn env(secret_id: &str, table: &str, stytch_url: &str) -> HashMap<String, String> {
    [
        ("STYTCH_PROJECT_ID", PROJECT_ID),
        ("STYTCH_API_URL", stytch_url),
        // Nothing listens here: no foundation route calls Unit yet.
        ("UNIT_API_URL", "http://127.0.0.1:9"),
        ("SECRET_ID", secret_id),
        ("TABLE_NAME", table),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A running local stack.
pub struct Stack {
    pub base: String,
    pub http: reqwest::Client,
    pub app: Arc<App>,
    pub jwks: Jwks,
}

impl Stack {
    /// Starts the stack in process against moto, with a fresh secret and table.
    pub async fn start(moto: &str) -> Self {
        let aws = aws(moto).await;
        let secret = create_secret(&aws, &secret_json()).await;
        let table = format!("bridge-e2e-{}", uuid::Uuid::new_v4());
        shared::store::DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &table)
            .create_table_if_missing()
            .await
            .expect("create the table in moto");
        let jwks = Jwks::start().await;
        let vars = env(&secret, &table, &jwks.url);
        let config = Config::from_lookup(|k| vars.get(k).cloned()).expect("config");
        let app = Arc::new(App::build(config, Some(aws)).await.expect("app"));
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let (addr, _task) = local_stack::spawn(app.clone(), addr)
            .await
            .expect("spawn the stack");
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            app,
            jwks,
        }
    }

    /// `base + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A workspace binary built by the test command (`cargo build --workspace --bins`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/debug/deps/<test> -> target/debug/<name>
    let path = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (make test does)",
        path.display()
    );
    path
}

/// Now in epoch seconds.
pub fn now() -> i64 {
    shared::http::now_epoch()
}
