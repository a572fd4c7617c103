//! totp-stepup: TOTP enrolment, step-up and recovery through Stytch, so the caller's session JWT
//! carries a fresh `totp` factor (what customer-token asks of sensitive scopes).
//!
//! Every route takes the caller's Stytch session JWT, verified locally; the user id always comes
//! from it, never from the body. Secrets, codes and recovery codes are never logged or stored.
//! Beyond Stytch's own limits, failed checks are counted per user in the store (an atomic,
//! conditional counter with a TTL): after `TOTP_MAX_FAILURES` in `TOTP_LOCKOUT_SECONDS` the user
//! gets 429 until the window ends; a success clears it.

use std::sync::Arc;

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use shared::jwt::VerifiedSession;
use shared::secrets::SecretString;
use shared::store::Attempt;
use shared::stytch::{Authenticated, StytchError};
use shared::{ApiError, App};
use tokio::time::Instant;

/// The routes this function serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /mfa/totp`: enrol an authenticator app.
    Enrol,
    /// `POST /mfa/totp/authenticate`: step up with a TOTP code.
    Authenticate,
    /// `POST /mfa/totp/recover`: step up with a recovery code.
    Recover,
}

impl shared::http::Routes for Route {
    const ALL: &'static [Self] = &[Self::Enrol, Self::Authenticate, Self::Recover];

    fn method(self) -> Method {
        Method::POST
    }

    fn path(self) -> &'static str {
        match self {
            Self::Enrol => "/mfa/totp",
            Self::Authenticate => "/mfa/totp/authenticate",
            Self::Recover => "/mfa/totp/recover",
        }
    }
}

/// Handles one request (through [`shared::lambda::serve`]).
pub async fn handle(app: Arc<App>, req: Request) -> Result<Response<Body>, ApiError> {
    let (app, req) = (&*app, &req);
    let route = shared::http::route::<Route>(req)?;
    let session = app.authenticate(req).await?;
    let deadline = shared::http::deadline(req);
    match route {
        Route::Enrol => enrol(app, &session, deadline).await,
        Route::Authenticate => {
            let body: CodeIn = parse(req)?;
            let code = body.totp_code.unwrap_or_default();
            if !(code.len() == 6 && code.chars().all(|c| c.is_ascii_digit())) {
                return Err(field_error("totp_code", "must be exactly 6 digits"));
            }
            check(app, &session, Check::Totp(&code), deadline).await
        }
        Route::Recover => {
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
    serde_json::from_slice(body)
        .map_err(|_| ApiError::invalid_request("the body must be a JSON object with the code"))
}

fn field_error(field: &str, problem: &str) -> ApiError {
    ApiError::invalid_fields(vec![shared::error::FieldProblem::new(field, problem)])
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
    let user_id = &session.user_id;
    let mut replaced_pending = false;
    loop {
        match app.stytch.create_totp(user_id, deadline).await {
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
                return Err(ApiError::totp_already_enrolled());
            }
            Err(e) if stytch_error_type(&e) == "pending_totp_exists" && !replaced_pending => {
                let user = app.stytch.get_user(user_id, deadline).await?;
                for pending in user.totps.iter().filter(|t| !t.verified) {
                    app.stytch.delete_totp(&pending.totp_id, deadline).await?;
                }
                replaced_pending = true;
            }
            Err(e) if stytch_error_type(&e) == "user_not_found" => {
                return Err(ApiError::user_not_found());
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
        return Err(ApiError::too_many_attempts(retry_after));
    }
    let minutes = Some(config.step_up_session_minutes);
    let jwt = session.token.expose();
    let result = match code {
        Check::Totp(c) => {
            app.stytch
                .authenticate_totp(&session.user_id, c, jwt, minutes, deadline)
                .await
        }
        Check::Recovery(c) => {
            app.stytch
                .recover_totp(&session.user_id, c, jwt, minutes, deadline)
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
            Check::Totp(_) => ApiError::invalid_totp_code(),
            Check::Recovery(_) => ApiError::invalid_recovery_code(),
        };
    }
    if let Err(release) = app.store.release_attempt(key).await {
        tracing::warn!(error = %release, "could not give back an attempt");
    }
    match kind.as_str() {
        "totp_not_found" | "totps_not_found_for_user" | "recovery_codes_not_found" => {
            ApiError::totp_not_enrolled()
        }
        "session_not_found" => ApiError::session_ended(),
        _ => e.into(),
    }
}
