//! totp-stepup: TOTP enrolment, step-up and recovery through Stytch, so the caller's session JWT
//! carries a fresh `totp` factor (what customer-token asks of sensitive scopes).
//!
//! Every route takes the caller's Stytch session JWT, verified locally; the user id always comes
//! from it, never from the body. Secrets, codes and recovery codes are never logged or stored.
//! Beyond Stytch's own limits, failed checks are counted per user in the store (an atomic,
//! conditional counter with a TTL): after `TOTP_MAX_FAILURES` in `TOTP_LOCKOUT_SECONDS` the user
//! gets 429 until the window ends; a success clears it.

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use shared::http::{Route, route};
use shared::jwt::VerifiedSession;
use shared::secrets::SecretString;
use shared::store::Attempt;
use shared::stytch::{Authenticated, StytchError};
use shared::{ApiError, App};
use tokio::time::Instant;

/// The routes this function serves.
pub const ROUTES: &[Route] = &[
    Route::new(Method::POST, "/mfa/totp", "POST"),
    Route::new(Method::POST, "/mfa/totp/authenticate", "POST"),
    Route::new(Method::POST, "/mfa/totp/recover", "POST"),
];

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    shared::lambda::respond(&req, dispatch(app, &req)).await
}

async fn dispatch(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let route = route(req, ROUTES)?;
    let session = app.authenticate(req).await?;
    let deadline = shared::http::deadline(req);
    match route.path {
        "/mfa/totp" => enrol(app, &session, deadline).await,
        "/mfa/totp/authenticate" => {
            let body: CodeIn = parse(req)?;
            let code = body.totp_code.unwrap_or_default();
            if !(code.len() == 6 && code.chars().all(|c| c.is_ascii_digit())) {
                return Err(field_error("totp_code", "must be exactly 6 digits"));
            }
            check(app, &session, Check::Totp(&code), deadline).await
        }
        _ => {
            let body: CodeIn = parse(req)?;
            let code = body.recovery_code.unwrap_or_default().to_ascii_lowercase();
            let shaped = code.len() == 14
                && code.split('-').count() == 3
                && code
                    .split('-')
                    .all(|p| p.len() == 4 && p.chars().all(|c| c.is_ascii_alphanumeric()));
            if !shaped {
                return Err(field_error(
                    "recovery_code",
                    "must look like xxxx-xxxx-xxxx",
                ));
            }
            check(app, &session, Check::Recovery(&code), deadline).await
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CodeIn {
    totp_code: Option<String>,
    recovery_code: Option<String>,
}

fn parse(req: &Request) -> Result<CodeIn, ApiError> {
    let body = req.body().as_ref();
    if body.is_empty() {
        return Ok(CodeIn::default());
    }
    serde_json::from_slice(body).map_err(|_| {
        ApiError::bad_request(
            "invalid_request",
            "the body must be a JSON object with the code",
        )
    })
}

fn field_error(field: &str, problem: &str) -> ApiError {
    ApiError::invalid_fields(vec![shared::error::FieldProblem {
        field: field.into(),
        problem: problem.into(),
    }])
}

/// What enrolment answers; the secret and recovery codes are shown this once.
#[derive(Serialize)]
struct Enrolled {
    totp_id: String,
    secret: SecretString,
    qr_code: String,
    recovery_codes: Vec<SecretString>,
}

fn stytch_error_type(e: &StytchError) -> &str {
    e.error_type().unwrap_or("")
}

/// `POST /mfa/totp`: a new TOTP registration for the caller. An unverified one left from an
/// abandoned enrolment is replaced; a verified one is a 409.
async fn enrol(
    app: &App,
    session: &VerifiedSession,
    deadline: Instant,
) -> Result<Response<Body>, ApiError> {
    let secrets = app.secrets.current().await?;
    let secret = &secrets.stytch_secret;
    let user_id = &session.user_id;
    let mut replaced_pending = false;
    loop {
        match app
            .stytch
            .create_totp(secret, user_id, Some(deadline))
            .await
        {
            Ok(created) => {
                tracing::info!(totp_id = %created.totp_id, "TOTP enrolment started");
                let body = Enrolled {
                    totp_id: created.totp_id,
                    secret: created.secret,
                    qr_code: created.qr_code,
                    recovery_codes: created.recovery_codes,
                };
                return Ok(shared::error::json(StatusCode::CREATED, &body));
            }
            Err(e) if stytch_error_type(&e) == "active_totp_exists" => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "totp_already_enrolled",
                    "an authenticator app is already enrolled; step up with it, or recover with a recovery code",
                ));
            }
            Err(e) if stytch_error_type(&e) == "pending_totp_exists" && !replaced_pending => {
                let user = app.stytch.get_user(secret, user_id, Some(deadline)).await?;
                for pending in user.totps.iter().filter(|t| !t.verified) {
                    app.stytch
                        .delete_totp(secret, &pending.totp_id, Some(deadline))
                        .await?;
                }
                replaced_pending = true;
            }
            Err(e) if stytch_error_type(&e) == "user_not_found" => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "user_not_found",
                    "the Stytch user no longer exists",
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

enum Check<'a> {
    Totp(&'a str),
    Recovery(&'a str),
}

/// What a step-up answers.
#[derive(Serialize)]
struct SteppedUp {
    user_id: String,
    session_jwt: SecretString,
    session_token: SecretString,
    session_expires_at: Option<String>,
}

/// `POST /mfa/totp/authenticate` and `/recover`: checks the code through Stytch against the
/// caller's session, so the factor joins it, under the per-user attempt limit.
async fn check(
    app: &App,
    session: &VerifiedSession,
    code: Check<'_>,
    deadline: Instant,
) -> Result<Response<Body>, ApiError> {
    let key = format!("totp:{}", session.user_id);
    let config = &app.config;
    let window = u32::try_from(config.totp_lockout.as_secs()).unwrap_or(u32::MAX);
    if let Attempt::Refused { retry_after } = app
        .store
        .reserve_attempt(
            &key,
            config.totp_max_failures,
            window,
            shared::http::now_epoch(),
        )
        .await?
    {
        tracing::warn!("TOTP checks locked for this user");
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "too many failed codes; wait before trying again",
        )
        .with_retry_after(retry_after));
    }
    let secrets = app.secrets.current().await?;
    let minutes = Some(config.step_up_session_minutes);
    let jwt = session.token.expose();
    let result = match code {
        Check::Totp(c) => {
            app.stytch
                .authenticate_totp(
                    &secrets.stytch_secret,
                    &session.user_id,
                    c,
                    jwt,
                    minutes,
                    Some(deadline),
                )
                .await
        }
        Check::Recovery(c) => {
            app.stytch
                .recover_totp(
                    &secrets.stytch_secret,
                    &session.user_id,
                    c,
                    jwt,
                    minutes,
                    Some(deadline),
                )
                .await
        }
    };
    match result {
        Ok(authenticated) => {
            // The step-up is done at Stytch (the code is spent, the factor is in the session):
            // answering an error now would lose the new session JWT. The failure counter is
            // housekeeping; left uncleared, it expires with its window.
            if let Err(e) = app.store.clear_attempts(&key).await {
                tracing::warn!(error = %e, "could not clear the failed-attempt counter");
            }
            Ok(shared::error::json(
                StatusCode::OK,
                &stepped_up(session, authenticated),
            ))
        }
        Err(e) => Err(failed_check(app, &key, &code, e).await),
    }
}

fn stepped_up(session: &VerifiedSession, a: Authenticated) -> SteppedUp {
    SteppedUp {
        user_id: session.user_id.clone(),
        session_expires_at: a.session.and_then(|s| s.expires_at),
        session_jwt: a.session_jwt,
        session_token: a.session_token,
    }
}

/// Maps a failed check; a wrong code keeps its attempt slot, anything else gives it back.
async fn failed_check(app: &App, key: &str, code: &Check<'_>, e: StytchError) -> ApiError {
    let kind = stytch_error_type(&e).to_owned();
    let wrong_code = match code {
        Check::Totp(_) => matches!(
            kind.as_str(),
            "unable_to_authenticate_totp"
                | "totp_code_already_authenticated"
                | "invalid_totp_code"
                | "recovery_code_used_as_totp_code"
        ),
        Check::Recovery(_) => matches!(
            kind.as_str(),
            "unable_to_authenticate_recovery_code"
                | "invalid_recovery_code"
                | "totp_code_used_as_recovery_code"
        ),
    };
    if wrong_code {
        tracing::info!(error_type = %kind, "code refused");
        return match code {
            Check::Totp(_) => ApiError::unauthorized(
                "invalid_totp_code",
                "the code is wrong, expired or already used",
            ),
            Check::Recovery(_) => ApiError::unauthorized(
                "invalid_recovery_code",
                "the recovery code is wrong or already used",
            ),
        };
    }
    if let Err(release) = app.store.release_attempt(key).await {
        tracing::warn!(error = %release, "could not give back an attempt");
    }
    match kind.as_str() {
        "totp_not_found" | "totps_not_found_for_user" | "recovery_codes_not_found" => {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "totp_not_enrolled",
                "no authenticator app is enrolled; POST /mfa/totp first",
            )
        }
        "session_not_found" => {
            ApiError::unauthorized("invalid_token", "the session has ended; log in again")
        }
        _ => e.into(),
    }
}
