//! Both sandboxes on free ports, wired as the local stack wires them (Unit's JWT settings point
//! at the Stytch sandbox's JWKS), with Unit's webhooks going to a receiver that checks their
//! signature with our own verifier.
#![allow(dead_code)] // each test file uses part of it

use std::sync::Arc;
use std::time::Duration;

use sandboxes::Running;
use sandboxes::stytch::{Stytch, StytchSettings};
use sandboxes::unit::{Unit, UnitSettings};
use serde_json::{Value, json};

pub const PROJECT_ID: &str = "project-test-00000000-0000-0000-0000-000000000000";
pub const STYTCH_SECRET: &str = "secret-test-contract";
pub const SVIX_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const UNIT_TOKEN: &str = "v2.public.contract";
pub const UNIT_WEBHOOK_TOKEN: &str = "unit-webhook-token-contract-0123456789";

/// The two sandboxes.
pub struct Sandboxes {
    pub http: reqwest::Client,
    pub stytch: Arc<Stytch>,
    pub stytch_running: Running,
    pub unit: Arc<Unit>,
    pub unit_running: Running,
}

/// A user logged in at the Stytch sandbox.
pub struct Login {
    pub user_id: String,
    pub session_jwt: String,
    pub session_token: String,
}

async fn listener() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port")
}

impl Sandboxes {
    /// Starts both; Stytch sends no webhooks, Unit's go to a signature-checking receiver.
    pub async fn start() -> Self {
        let stytch_listener = listener().await;
        let stytch_url = format!("http://{}", stytch_listener.local_addr().unwrap());
        let (stytch, stytch_running) = sandboxes::stytch::start(
            StytchSettings {
                project_id: PROJECT_ID.into(),
                secret: STYTCH_SECRET.into(),
                webhook: None,
                webhook_schedule: vec![Duration::from_millis(50); 3],
            },
            stytch_listener,
        )
        .expect("the Stytch sandbox starts");
        let hook = receiver(|headers, body| {
            match shared::webhook::verify_unit(UNIT_WEBHOOK_TOKEN, &headers, &body) {
                Ok(()) => 200,
                Err(_) => 401,
            }
        })
        .await;
        let (unit, unit_running) = sandboxes::unit::start(
            UnitSettings {
                org_token: UNIT_TOKEN.into(),
                webhook: Some((hook, UNIT_WEBHOOK_TOKEN.into())),
                webhook_schedule: vec![Duration::from_millis(50); 3],
                jwt: Some((
                    format!("{stytch_url}/v1/sessions/jwks/{PROJECT_ID}"),
                    format!("stytch.com/{PROJECT_ID}"),
                )),
                public_url: String::new(),
            },
            listener().await,
        )
        .expect("the Unit sandbox starts");
        Self {
            http: reqwest::Client::new(),
            stytch,
            stytch_running,
            unit,
            unit_running,
        }
    }

    pub fn stytch_url(&self) -> &str {
        &self.stytch_running.url
    }

    pub fn unit_url(&self) -> &str {
        &self.unit_running.url
    }

    /// `stytch sandbox + path`.
    pub fn stytch(&self, path: &str) -> String {
        format!("{}{path}", self.stytch_url())
    }

    /// `unit sandbox + path`.
    pub fn unit(&self, path: &str) -> String {
        format!("{}{path}", self.unit_url())
    }

    pub fn project_id(&self) -> String {
        PROJECT_ID.into()
    }

    /// A Stytch API call with the project's Basic auth.
    pub fn stytch_call(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.stytch(path))
            .basic_auth(PROJECT_ID, Some(STYTCH_SECRET))
    }

    /// A Unit API call with the org token.
    pub fn unit_call(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.unit(path))
            .bearer_auth(UNIT_TOKEN)
            .header("content-type", "application/vnd.api+json")
    }

    /// Signs up `email` with a password at the Stytch sandbox.
    pub async fn sign_up(&self, email: &str) -> Login {
        let (status, reply) = json_of(
            self.stytch_call(reqwest::Method::POST, "/v1/passwords")
                .json(&json!({"email": email, "password": "correct horse battery staple"})),
        )
        .await;
        assert_eq!(status, 200, "{reply}");
        let text = |field: &str| reply[field].as_str().expect(field).to_owned();
        Login {
            user_id: text("user_id"),
            session_jwt: text("session_jwt"),
            session_token: text("session_token"),
        }
    }

    /// A JWT signed with the Stytch sandbox's current key: the standard claims for `user_id`
    /// issued at `iat`, with `edit` applied.
    pub fn forge(&self, user_id: &str, iat: i64, edit: impl FnOnce(&mut Value)) -> String {
        let mut claims = json!({
            "aud": [PROJECT_ID], "iss": format!("stytch.com/{PROJECT_ID}"), "sub": user_id,
            "iat": iat, "nbf": iat, "exp": iat + 300,
            "https://stytch.com/session": {
                "id": "session-test-forged", "started_at": "2026-11-25T09:00:00Z",
                "last_accessed_at": "2026-11-25T09:00:00Z", "expires_at": "2026-12-25T09:00:00Z",
                "attributes": {"ip_address": "", "user_agent": ""}, "roles": ["stytch_user"],
                "authentication_factors": [{"type": "password", "delivery_method": "knowledge",
                    "last_authenticated_at": "2026-11-25T09:00:00Z"}]
            }
        });
        edit(&mut claims);
        self.stytch.signer().sign(&claims)
    }

    /// Our session verifier against the Stytch sandbox's JWKS, refetching on every unknown key.
    pub fn verifier(&self) -> shared::jwt::SessionVerifier {
        shared::jwt::SessionVerifier::new(
            Box::new(self.stytch_client(shared::upstream::RetryPolicy::new(
                3,
                Duration::from_secs(2),
            ))),
            shared::jwt::VerifierSettings {
                project_id: PROJECT_ID.into(),
                extra_issuers: Vec::new(),
                leeway: Duration::from_secs(10),
                refetch_interval: Duration::ZERO,
                ttl: Duration::from_secs(300),
            },
        )
    }

    /// Our Stytch client against the sandbox.
    pub fn stytch_client(
        &self,
        policy: shared::upstream::RetryPolicy,
    ) -> shared::stytch::StytchClient {
        shared::stytch::StytchClient::new(
            shared::upstream::Upstream::new(
                "stytch",
                shared::upstream::http_client(Duration::from_secs(1)),
                self.stytch_url(),
                policy,
            ),
            PROJECT_ID,
            secrets(),
        )
    }

    /// Our Unit client against the sandbox.
    pub fn unit_client(&self) -> shared::unit::UnitClient {
        shared::unit::UnitClient::new(
            shared::upstream::Upstream::new(
                "unit",
                shared::upstream::http_client(Duration::from_secs(1)),
                self.unit_url(),
                shared::upstream::RetryPolicy::new(3, Duration::from_secs(2)),
            ),
            secrets(),
        )
    }

    /// Waits (up to 10 s) until `check` holds.
    pub async fn eventually<F: FnMut() -> bool>(&self, what: &str, mut check: F) {
        for _ in 0..200 {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}");
    }
}

/// The credentials of both sandboxes, as our clients read them.
pub fn secrets() -> Arc<dyn shared::secrets::SecretSource> {
    let json = json!({
        "stytch_secret": STYTCH_SECRET, "stytch_webhook_secret": SVIX_SECRET,
        "unit_api_token": UNIT_TOKEN, "unit_webhook_token": UNIT_WEBHOOK_TOKEN,
    });
    let secrets = shared::secrets::Secrets::parse(&json.to_string(), "test", PROJECT_ID)
        .expect("the test secrets parse");
    Arc::new(shared::secrets::StaticSecrets::new(secrets))
}

/// A deadline for one client call.
pub fn soon() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(10)
}

/// Status and JSON body (`null` if none) of a request.
pub async fn json_of(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("the request is answered");
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("a body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Now, epoch seconds.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The current TOTP code of a base32 secret.
pub fn totp(secret_base32: &str, unix_time: i64) -> String {
    let key = sandboxes::totp::base32_decode(secret_base32).expect("a base32 secret");
    sandboxes::totp::code_at(&key, unix_time)
}

/// A request a receiver got: headers and body.
pub type Received = (http::HeaderMap, Vec<u8>);

/// A webhook receiver on a free port answering `respond(headers, body)`'s status; its URL.
pub async fn receiver(
    respond: impl Fn(http::HeaderMap, Vec<u8>) -> u16 + Send + Sync + 'static,
) -> String {
    let respond = Arc::new(respond);
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: http::HeaderMap, body: axum::body::Bytes| {
            let respond = respond.clone();
            async move {
                http::StatusCode::from_u16(respond(headers, body.to_vec()))
                    .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
            }
        }),
    );
    let listener = listener().await;
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// A Stytch sandbox (`project_id`, `secret`) whose webhooks go, Svix-signed and retried on the
/// `schedule`, to a receiver that keeps every request and answers the n-th (from 1) with
/// `respond(n)`: what the receiver got, the Svix secret, the sandbox and its server.
pub async fn stytch_with_webhooks(
    project_id: &str,
    secret: &str,
    schedule: Vec<Duration>,
    respond: impl Fn(usize) -> u16 + Send + Sync + 'static,
) -> (
    Arc<std::sync::Mutex<Vec<Received>>>,
    shared::webhook::SvixSecret,
    Arc<Stytch>,
    Running,
) {
    let seen: Arc<std::sync::Mutex<Vec<Received>>> = Arc::default();
    let recorder = seen.clone();
    let receiver = receiver(move |headers, body| {
        let mut seen = recorder.lock().unwrap();
        seen.push((headers, body));
        respond(seen.len())
    })
    .await;
    let svix = shared::webhook::SvixSecret::parse(SVIX_SECRET).unwrap();
    let settings = StytchSettings {
        project_id: project_id.into(),
        secret: secret.into(),
        webhook: Some((receiver, svix.clone())),
        webhook_schedule: schedule,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stytch, running) = sandboxes::stytch::start(settings, listener).unwrap();
    (seen, svix, stytch, running)
}

/// The header and claims of a JWT, decoded (signature not checked).
pub fn claims_of(jwt: &str) -> (Value, Value) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = jwt.split('.');
    let header = serde_json::from_slice(&b64.decode(parts.next().unwrap()).unwrap()).unwrap();
    let claims = serde_json::from_slice(&b64.decode(parts.next().unwrap()).unwrap()).unwrap();
    (header, claims)
}

/// A Stytch error body: its status and type, with a request id, a message and a URL.
pub fn assert_stytch_error(body: &Value, status: u16, error_type: &str) {
    assert_eq!(body["status_code"], status, "{body}");
    assert_eq!(body["error_type"], error_type, "{body}");
    for field in ["request_id", "error_message", "error_url"] {
        assert!(
            body[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field} in {body}"
        );
    }
}

/// Holds `value` to the schema at `reference` of Unit's OpenAPI spec (converted as the gate
/// converts request schemas).
pub fn assert_on_spec(reference: &str, value: &Value) {
    let schema = sandboxes::unit_spec::Schema::load(reference).unwrap();
    if let Err(problems) = schema.check(value) {
        panic!("{value} is off {reference}: {problems:?}");
    }
}

/// Archives Unit customer `customer` (200).
pub async fn archive_customer(stack: &Sandboxes, customer: &str) {
    let (status, _) = json_of(
        stack
            .unit_call(
                reqwest::Method::POST,
                &format!("/customers/{customer}/archive"),
            )
            .json(
                &json!({"data": {"type": "archiveCustomer", "attributes": {"reason": "Inactive"}}}),
            ),
    )
    .await;
    assert_eq!(status, 200);
}
