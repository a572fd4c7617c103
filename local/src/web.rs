//! The demo web page the local stack serves at `/demo` (plain HTML and JavaScript from
//! `local/web/`, no build step), `openapi.yaml` at `/openapi.yaml`, and the page's own small login
//! backend under `/demo/api/`: password sign-up, login and session refresh against Stytch with the
//! project secret, as a backend-integrated Stytch app does. Local only: none of it is deployed;
//! in production the frontend logs in with Stytch's own SDK or the app's backend.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::App;

const PAGE: &str = include_str!("../web/index.html");
const SCRIPT: &str = include_str!("../web/demo.js");
/// The frontend helper (`frontend/unit-token.mjs`), which the page imports.
const TOKENS: &str = include_str!("../../frontend/unit-token.mjs");
const OPENAPI: &str = include_str!("../../openapi.yaml");

/// The routes, merged into the local stack's router ahead of the functions' fallback.
pub fn routes() -> axum::Router<Arc<App>> {
    axum::Router::new()
        .route("/", get(|| async { axum::response::Redirect::to("/demo") }))
        .route(
            "/demo",
            get(|| async { text(PAGE, "text/html; charset=utf-8") }),
        )
        .route(
            "/demo/demo.js",
            get(|| async { text(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/demo/unit-token.mjs",
            get(|| async { text(TOKENS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/openapi.yaml",
            get(|| async { text(OPENAPI, "application/yaml; charset=utf-8") }),
        )
        .route("/demo/config.json", get(config))
        .route("/demo/api/signup", post(signup))
        .route("/demo/api/login", post(login))
        .route("/demo/api/refresh", post(refresh))
        .route("/demo/api/email-code", post(email_code))
        .route("/demo/api/email-code/verify", post(verify_email_code))
}

fn text(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// What the page needs to know: where Unit is (it calls Unit itself with the customer token, as
/// a frontend does) and which scopes need a step-up.
async fn config(State(app): State<Arc<App>>) -> Json<Value> {
    let c = &app.config;
    Json(json!({
        "unit_api_url": c.unit_api_url,
        "stytch_project_id": c.stytch_project_id,
        "stytch_api_url": c.stytch_api_url,
        "allowed_scopes": c.tokens.allowed_scopes.iter().collect::<Vec<_>>(),
        "sensitive_scopes": c.tokens.allowed_scopes.iter().filter(|s| c.tokens.is_sensitive(s)).collect::<Vec<_>>(),
        "step_up_max_age_seconds": c.step_up.max_age.as_secs(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    email: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Refresh {
    session_token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailCode {
    email: String,
    session_jwt: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailCodeCheck {
    method_id: String,
    code: String,
    session_jwt: String,
}

/// Minutes of the demo's Stytch sessions.
const SESSION_MINUTES: u32 = 60;

async fn signup(State(app): State<Arc<App>>, Json(c): Json<Credentials>) -> Response {
    stytch(
        &app,
        "/v1/passwords",
        json!({"email": c.email, "password": c.password, "session_duration_minutes": SESSION_MINUTES}),
    )
    .await
}

async fn login(State(app): State<Arc<App>>, Json(c): Json<Credentials>) -> Response {
    stytch(
        &app,
        "/v1/passwords/authenticate",
        json!({"email": c.email, "password": c.password, "session_duration_minutes": SESSION_MINUTES}),
    )
    .await
}

async fn refresh(State(app): State<Arc<App>>, Json(r): Json<Refresh>) -> Response {
    stytch(
        &app,
        "/v1/sessions/authenticate",
        json!({"session_token": r.session_token, "session_duration_minutes": SESSION_MINUTES}),
    )
    .await
}

/// Sends a Stytch e-mail passcode to the user's address, in their session: `{"method_id"}`.
async fn email_code(State(app): State<Arc<App>>, Json(c): Json<EmailCode>) -> Response {
    match stytch_call(
        &app,
        "/v1/otps/email/send",
        json!({"email": c.email, "session_jwt": c.session_jwt}),
    )
    .await
    {
        Ok(reply) => Json(json!({"method_id": reply["email_id"]})).into_response(),
        Err(refused) => refused,
    }
}

/// Checks the passcode into the session: the session's new JWT carries an `otp`/`email` factor.
async fn verify_email_code(State(app): State<Arc<App>>, Json(c): Json<EmailCodeCheck>) -> Response {
    stytch(
        &app,
        "/v1/otps/authenticate",
        json!({"method_id": c.method_id, "code": c.code, "session_jwt": c.session_jwt}),
    )
    .await
}

/// Calls Stytch with the project's credentials; answers the session (user id, JWT, token) or
/// Stytch's error (its status, `error_type` and `error_message`).
async fn stytch(app: &App, path: &str, body: Value) -> Response {
    match stytch_call(app, path, body).await {
        Ok(reply) => Json(json!({
            "user_id": reply.get("user_id").unwrap_or(&reply["session"]["user_id"]),
            "session_jwt": reply["session_jwt"],
            "session_token": reply["session_token"],
            "email": reply["user"]["emails"][0]["email"],
        }))
        .into_response(),
        Err(refused) => refused,
    }
}

/// Calls Stytch with the project's credentials: its answer, or Stytch's error as our answer
/// (its status, `error_type` and `error_message`).
async fn stytch_call(app: &App, path: &str, body: Value) -> Result<Value, Response> {
    static HTTP: std::sync::LazyLock<reqwest::Client> = std::sync::LazyLock::new(|| {
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap_or_default()
    });
    let fail = |status: StatusCode, code: &str, message: String| {
        (
            status,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response()
    };
    let secrets = match app.secrets.current().await {
        Ok(s) => s,
        Err(e) => {
            return Err(fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "secrets_unavailable",
                e.to_string(),
            ));
        }
    };
    let answer = HTTP
        .post(format!("{}{path}", app.config.stytch_api_url))
        .basic_auth(
            &app.config.stytch_project_id,
            Some(secrets.stytch_secret.expose()),
        )
        .json(&body)
        .send()
        .await;
    let (status, reply) = match answer {
        Ok(r) => (r.status(), r.json::<Value>().await.unwrap_or(Value::Null)),
        Err(e) => {
            return Err(fail(
                StatusCode::BAD_GATEWAY,
                "upstream_unavailable",
                format!("Stytch: {e}"),
            ));
        }
    };
    if !status.is_success() {
        let code = reply["error_type"].as_str().unwrap_or("stytch_error");
        let message = reply["error_message"].as_str().unwrap_or("Stytch refused");
        return Err(fail(status, code, message.to_owned()));
    }
    Ok(reply)
}
