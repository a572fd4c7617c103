//! customer-token: a verified Stytch session JWT becomes a Unit customer bearer token, the last
//! step of Stytch's Unit guide.
//!
//! The JWT is verified locally (no Stytch call). Scopes outside `ALLOWED_SCOPES` are refused; a
//! scope on `SENSITIVE_SCOPES` needs a `totp` factor authenticated within `STEP_UP_MAX_AGE`
//! (else 403 `step_up_required`). A JWT about to expire is not sent to Unit, which verifies it
//! too. Per request: one store read, one Unit call, one audit write, and nothing logged that could
//! be replayed (no JWT, no token).

use std::collections::BTreeSet;

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use shared::error::FieldProblem;
use shared::http::{Route, route};
use shared::jwt::VerifiedSession;
use shared::secrets::SecretString;
use shared::store::{AuditEntry, UserRecord};
use shared::unit::{CreateCustomerToken, TokenResource, UnitError};
use shared::{ApiError, App};
use tokio::time::Instant;

/// The routes this function serves.
pub const ROUTES: &[Route] = &[Route::new(Method::POST, "/unit/customer-token", "POST")];

/// Unit's longest customer token.
pub const MAX_EXPIRES_IN: u32 = 86_400;

/// Handles one request.
pub async fn handle(app: &App, req: Request) -> Response<Body> {
    shared::lambda::respond(&req, dispatch(app, &req)).await
}

/// The request body; every field is optional.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    scope: Option<String>,
    expires_in: Option<i64>,
    resources: Option<Vec<TokenResource>>,
}

/// The answer.
#[derive(Serialize)]
struct Issued {
    token: SecretString,
    expires_in: u32,
    scope: String,
    customer_id: String,
}

fn field(field: &str, problem: impl Into<String>) -> FieldProblem {
    FieldProblem {
        field: field.into(),
        problem: problem.into(),
    }
}

/// The checked request: scopes, lifetime, resources.
struct Checked {
    scopes: BTreeSet<String>,
    expires_in: u32,
    resources: Option<Vec<TokenResource>>,
}

fn check_request(app: &App, body: TokenRequest) -> Result<Checked, ApiError> {
    let config = &app.config;
    let mut problems = Vec::new();
    let scopes: BTreeSet<String> = match body.scope.as_deref().map(str::trim) {
        None | Some("") => config.default_scopes.clone(),
        Some(s) => s
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    let outside: Vec<&str> = scopes
        .iter()
        .filter(|s| !config.allowed_scopes.contains(*s))
        .map(String::as_str)
        .collect();
    if !outside.is_empty() {
        return Err(ApiError::bad_request(
            "scope_not_allowed",
            format!("scopes not allowed: {}", outside.join(" ")),
        ));
    }
    let expires_in = match body.expires_in {
        None => config.default_token_expires_in,
        Some(n) if n >= 1 => u32::try_from(n)
            .unwrap_or(MAX_EXPIRES_IN)
            .min(MAX_EXPIRES_IN),
        Some(_) => {
            problems.push(field(
                "expires_in",
                "must be a positive number of seconds (at most 86400 are granted)",
            ));
            0
        }
    };
    if let Some(resources) = &body.resources {
        if resources.is_empty() {
            problems.push(field("resources", "must not be empty when given"));
        }
        for (i, r) in resources.iter().enumerate() {
            if !matches!(r.kind.as_str(), "card" | "account") {
                problems.push(field(
                    &format!("resources[{i}].type"),
                    "must be card or account",
                ));
            }
            let numeric = |id: &String| {
                !id.is_empty() && !id.starts_with('0') && id.chars().all(|c| c.is_ascii_digit())
            };
            if r.ids.is_empty() || !r.ids.iter().all(numeric) {
                problems.push(field(
                    &format!("resources[{i}].ids"),
                    "must be a non-empty list of Unit ids",
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid_fields(problems));
    }
    Ok(Checked {
        scopes,
        expires_in,
        resources: body.resources,
    })
}

/// The step-up rule: a sensitive scope needs a recent `totp` factor. A recovery-code login does
/// not count: the user should step up with the authenticator app again.
fn check_step_up(
    app: &App,
    session: &VerifiedSession,
    scopes: &BTreeSet<String>,
    now: i64,
) -> Result<(), ApiError> {
    let sensitive: Vec<&str> = scopes
        .iter()
        .filter(|s| app.config.sensitive_scopes.contains(*s))
        .map(String::as_str)
        .collect();
    if sensitive.is_empty() {
        return Ok(());
    }
    if session.has_recent_factor(
        "totp",
        app.config.step_up_max_age,
        app.config.jwt_leeway,
        now,
    ) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "step_up_required",
        format!(
            "{} need a TOTP step-up within the last {} s: POST /mfa/totp/authenticate, then retry with the new session JWT",
            sensitive.join(" "),
            app.config.step_up_max_age.as_secs()
        ),
    ))
}

fn onboarding_incomplete() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "onboarding_incomplete",
        "this user has no approved Unit customer yet; see GET /onboarding",
    )
}

/// The user's Unit customer: from the record, or, if only an application is known, from Unit
/// (an approval whose webhook has not arrived), recorded on the way.
async fn customer_of(
    app: &App,
    record: Option<UserRecord>,
    deadline: Instant,
) -> Result<String, ApiError> {
    let Some(record) = record else {
        return Err(onboarding_incomplete());
    };
    if record.deleted {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "account_deleted",
            "this user has been deleted",
        ));
    }
    if let Some(customer) = record.customer_id {
        return Ok(customer);
    }
    let Some(application_id) = record.application_id.clone() else {
        return Err(onboarding_incomplete());
    };
    if matches!(
        record.application_status.as_deref(),
        Some("Denied" | "Canceled")
    ) {
        return Err(onboarding_incomplete());
    }
    let secrets = app.secrets.current().await?;
    let application = app
        .unit
        .get_application(&secrets.unit_api_token, &application_id, Some(deadline))
        .await?;
    let customer = application.related_id("customer").map(str::to_owned);
    let status = application.attributes.status.clone();
    shared::store::modify(&*app.store, &record.user_id, false, |r| {
        r.apply_application(&application_id, &status, customer.as_deref())
    })
    .await?;
    customer.ok_or_else(onboarding_incomplete)
}

/// Maps Unit's refusals to our codes; Unit's own wording stays in the log.
fn unit_refused(e: UnitError) -> ApiError {
    match &e {
        UnitError::Api {
            status: 401,
            errors,
            ..
        } => {
            tracing::warn!(detail = ?errors.first().and_then(|x| x.detail.as_deref()), "Unit refused the session JWT");
            ApiError::unauthorized(
                "session_rejected_by_unit",
                "Unit did not accept the session JWT; log in again (and check Unit's JWT settings if it persists)",
            )
        }
        UnitError::Api { status: 403, .. } => ApiError::new(
            StatusCode::FORBIDDEN,
            "unit_forbidden",
            "Unit refused these scopes for this customer",
        ),
        UnitError::Api {
            status: 400,
            errors,
            ..
        } => {
            tracing::warn!(detail = ?errors.first().and_then(|x| x.detail.as_deref()), "Unit refused the token request");
            ApiError::bad_request(
                "invalid_request",
                "Unit refused the token request (check resources)",
            )
        }
        _ => e.into(),
    }
}

async fn dispatch(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    route(req, ROUTES)?;
    let session = app.authenticate(req).await?;
    let raw = req.body().as_ref();
    let body: TokenRequest = if raw.iter().all(u8::is_ascii_whitespace) {
        TokenRequest::default()
    } else {
        serde_json::from_slice(raw)
            .map_err(|e| ApiError::bad_request("invalid_request", format!("invalid body: {e}")))?
    };
    let checked = check_request(app, body)?;
    let now = shared::http::now_epoch();
    check_step_up(app, &session, &checked.scopes, now)?;
    let min_left = i64::try_from(app.config.jwt_min_remaining.as_secs()).unwrap_or(0);
    if session.seconds_left(now) < min_left {
        return Err(ApiError::unauthorized(
            "session_jwt_expiring",
            "the session JWT expires too soon to reach Unit; refresh the Stytch session and retry",
        ));
    }
    let deadline = shared::http::deadline(req);
    let record = app.store.get_user(&session.user_id).await?;
    let customer_id = customer_of(app, record, deadline).await?;
    let scope = checked.scopes.iter().cloned().collect::<Vec<_>>().join(" ");
    let secrets = app.secrets.current().await?;
    let request = CreateCustomerToken {
        scope: scope.clone(),
        jwt_token: session.token.clone(),
        expires_in: checked.expires_in,
        resources: checked.resources,
    };
    let issued = app
        .unit
        .create_customer_token(
            &secrets.unit_api_token,
            &customer_id,
            &request,
            Some(deadline),
        )
        .await
        .map_err(unit_refused)?;
    let expires_in = issued.expires_in.unwrap_or(checked.expires_in);
    // No audit, no token: a token we cannot account for is not handed out.
    app.store
        .put_audit(&AuditEntry {
            user_id: session.user_id.clone(),
            customer_id: customer_id.clone(),
            scopes: checked.scopes.iter().cloned().collect(),
            issued_at: shared::store::timestamp_millis(),
            request_id: shared::http::request_id(req),
            expires_in,
        })
        .await?;
    tracing::info!(customer_id, scope, expires_in, "issued a customer token");
    Ok(shared::error::json(
        StatusCode::OK,
        &Issued {
            token: issued.token,
            expires_in,
            scope,
            customer_id,
        },
    ))
}
