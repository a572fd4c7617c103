//! customer-token: a verified Stytch session JWT becomes a Unit customer bearer token, the last
//! step of Stytch's Unit guide.
//!
//! The JWT is verified locally (no Stytch call). Scopes outside `ALLOWED_SCOPES` are refused; a
//! scope on `SENSITIVE_SCOPES` needs a `totp` factor authenticated within `STEP_UP_MAX_AGE`
//! (else 403 `step_up_required`). A JWT about to expire is not sent to Unit, which verifies it
//! too. Per request: one store read, one Unit call, one audit write, and nothing logged that could
//! be replayed (no JWT, no token).

use std::collections::BTreeSet;

use std::sync::Arc;

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use shared::error::FieldProblem;
use shared::jwt::VerifiedSession;
use shared::secrets::SecretString;
use shared::store::{AuditEntry, UserRecord};
use shared::unit::{CreateCustomerToken, TokenResource, UnitError};
use shared::{ApiError, App};
use tokio::time::Instant;

/// The routes this function serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /unit/customer-token`: a Unit customer token for the caller.
    CustomerToken,
}

impl shared::http::Routes for Route {
    const ALL: &'static [Self] = &[Self::CustomerToken];

    fn method(self) -> Method {
        Method::POST
    }

    fn path(self) -> &'static str {
        match self {
            Self::CustomerToken => "/unit/customer-token",
        }
    }
}

/// Unit's longest customer token.
pub const MAX_EXPIRES_IN: u32 = 86_400;

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
        return Err(ApiError::scope_not_allowed(&outside));
    }
    let expires_in = match body.expires_in {
        None => config.default_token_expires_in,
        Some(n) if n >= 1 => u32::try_from(n)
            .unwrap_or(MAX_EXPIRES_IN)
            .min(MAX_EXPIRES_IN),
        Some(_) => {
            problems.push(FieldProblem::new(
                "expires_in",
                "must be a positive number of seconds (at most 86400 are granted)",
            ));
            0
        }
    };
    if let Some(resources) = &body.resources {
        if resources.is_empty() {
            problems.push(FieldProblem::new(
                "resources",
                "must not be empty when given",
            ));
        }
        for (i, r) in resources.iter().enumerate() {
            if !matches!(r.kind.as_str(), "card" | "account") {
                problems.push(FieldProblem::new(
                    format!("resources[{i}].type"),
                    "must be card or account",
                ));
            }
            let numeric = |id: &String| {
                !id.is_empty() && !id.starts_with('0') && id.chars().all(|c| c.is_ascii_digit())
            };
            if r.ids.is_empty() || !r.ids.iter().all(numeric) {
                problems.push(FieldProblem::new(
                    format!("resources[{i}].ids"),
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
    Err(ApiError::step_up_required(
        &sensitive,
        app.config.step_up_max_age.as_secs(),
    ))
}

/// The user's Unit customer: from the record, or, if only an application is known, from Unit
/// (an approval whose webhook has not arrived), recorded on the way.
async fn customer_of(
    app: &App,
    record: Option<UserRecord>,
    deadline: Instant,
) -> Result<String, ApiError> {
    let Some(record) = record else {
        return Err(ApiError::onboarding_incomplete());
    };
    if record.deleted {
        return Err(ApiError::account_deleted(StatusCode::FORBIDDEN));
    }
    if let Some(customer) = record.customer_id {
        return Ok(customer);
    }
    if record.application_id.is_none()
        || record
            .application_status
            .as_ref()
            .is_some_and(|s| s.is_closed())
    {
        return Err(ApiError::onboarding_incomplete());
    }
    shared::onboarding::customer_from_unit(app, &record, deadline)
        .await?
        .ok_or_else(ApiError::onboarding_incomplete)
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
            ApiError::session_rejected_by_unit()
        }
        UnitError::Api { status: 403, .. } => ApiError::unit_forbidden(),
        UnitError::Api {
            status: 400,
            errors,
            ..
        } => {
            tracing::warn!(detail = ?errors.first().and_then(|x| x.detail.as_deref()), "Unit refused the token request");
            ApiError::invalid_request("Unit refused the token request (check resources)")
        }
        _ => e.into(),
    }
}

/// Handles one request (through [`shared::lambda::serve`]).
pub async fn handle(app: Arc<App>, req: Request) -> Result<Response<Body>, ApiError> {
    let (app, req) = (&*app, &req);
    match shared::http::route::<Route>(req)? {
        Route::CustomerToken => issue(app, req).await,
    }
}

/// `POST /unit/customer-token`.
async fn issue(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let session = app.authenticate(req).await?;
    let raw = req.body().as_ref();
    let body: TokenRequest = if raw.iter().all(u8::is_ascii_whitespace) {
        TokenRequest::default()
    } else {
        serde_json::from_slice(raw)
            .map_err(|e| ApiError::invalid_request(format!("invalid body: {e}")))?
    };
    let checked = check_request(app, body)?;
    let now = shared::http::now_epoch();
    check_step_up(app, &session, &checked.scopes, now)?;
    let min_left = i64::try_from(app.config.jwt_min_remaining.as_secs()).unwrap_or(0);
    if session.seconds_left(now) < min_left {
        return Err(ApiError::session_jwt_expiring());
    }
    let deadline = shared::http::deadline(req);
    let record = app.store.get_user(&session.user_id).await?;
    let customer_id = customer_of(app, record, deadline).await?;
    let scope = checked.scopes.iter().cloned().collect::<Vec<_>>().join(" ");
    let request = CreateCustomerToken {
        scope: scope.clone(),
        jwt_token: session.token.clone(),
        expires_in: checked.expires_in,
        resources: checked.resources,
    };
    let issued = app
        .unit
        .create_customer_token(&customer_id, &request, deadline)
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
