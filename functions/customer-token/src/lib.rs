//! customer-token: a verified Stytch session JWT becomes a Unit customer bearer token, the last
//! step of Stytch's Unit guide.
//!
//! The JWT is verified locally (no Stytch call). Scopes outside `ALLOWED_SCOPES` are refused; a
//! scope on `SENSITIVE_SCOPES` needs a `totp` factor authenticated within `STEP_UP_MAX_AGE`
//! (else 403 `step_up_required`). A JWT about to expire is not sent to Unit, which verifies it
//! too. Per request: one store call that reads the user's record and takes a slot of the
//! `TOKENS_PER_USER` limit, one Unit call, one audit write, and nothing logged that could be
//! replayed (no JWT, no token).

use std::collections::BTreeSet;

use std::sync::Arc;

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use shared::config::StepUpFactor;
use shared::error::FieldProblem;
use shared::jwt::{Freshness, VerifiedSession};
use shared::secrets::SecretString;
use shared::store::{AuditEntry, TokenSlot, UserRecord};
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

/// A session with less left than this (seconds) mints nothing: 401 `session_ending`, so the
/// frontend extends the Stytch session (or logs in again) instead of holding a token that
/// would outlive it by moments.
pub const SESSION_MIN_LEFT: i64 = 60;

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

/// The sensitive scopes among `scopes`.
fn sensitive<'a>(app: &App, scopes: &'a BTreeSet<String>) -> Vec<&'a str> {
    scopes
        .iter()
        .filter(|s| app.config.is_sensitive(s))
        .map(String::as_str)
        .collect()
}

/// The step-up rule: a sensitive scope needs a fresh `STEP_UP_FACTORS` factor beside another
/// one. A recovery-code login does not count: the user should step up with the factor again.
fn check_step_up(
    app: &App,
    session: &VerifiedSession,
    sensitive: &[&str],
    now: i64,
) -> Result<(), ApiError> {
    if sensitive.is_empty() {
        return Ok(());
    }
    let config = &app.config;
    let fresh = Freshness {
        max_age: config.step_up_max_age,
        leeway: config.jwt_leeway,
        now,
    };
    if session.has_step_up(&config.step_up_factors, fresh) {
        return Ok(());
    }
    Err(ApiError::step_up_required(
        sensitive,
        &config.step_up_factors,
        config.step_up_max_age.as_secs(),
    ))
}

/// Whether a step-up factor other than TOTP (a passkey, an SMS code, when `STEP_UP_FACTORS`
/// names them) satisfies the step-up on its own: then no TOTP binding is needed.
fn stepped_up_without_totp(app: &App, session: &VerifiedSession, now: i64) -> bool {
    let others: BTreeSet<StepUpFactor> = app
        .config
        .step_up_factors
        .iter()
        .copied()
        .filter(|f| *f != StepUpFactor::Totp)
        .collect();
    !others.is_empty()
        && session.has_step_up(&others, shared::authenticator::step_up_window(app, now))
}

/// A sensitive scope's session confirmed at Stytch: both we and Unit check the JWT locally, so
/// a session that was revoked (or ended) keeps a valid JWT for up to 5 minutes. Fails closed.
async fn confirm_session(
    app: &App,
    session: &VerifiedSession,
    deadline: Instant,
) -> Result<(), ApiError> {
    match app
        .stytch
        .authenticate_session(session.token.expose(), deadline)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.error_type() == Some("session_not_found") => {
            tracing::info!("the session was revoked or has ended at Stytch");
            Err(ApiError::session_revoked())
        }
        Err(e) => Err(e.into()),
    }
}

/// The user's Unit customer: from the record, or, if only an application is known, from Unit
/// (an approval whose webhook has not arrived), recorded on the way.
async fn customer_of(
    app: &App,
    record: &UserRecord,
    deadline: Instant,
) -> Result<String, ApiError> {
    if let Some(customer) = &record.customer_id {
        return Ok(customer.clone());
    }
    if record.application_id.is_none()
        || record
            .application_status
            .as_ref()
            .is_some_and(|s| s.is_closed())
    {
        return Err(ApiError::onboarding_incomplete());
    }
    shared::onboarding::customer_from_unit(app, record, deadline)
        .await?
        .ok_or_else(ApiError::onboarding_incomplete)
}

/// Gives back the user's token slot when no token was issued. A failure is only logged: the
/// slot then runs out with its window.
async fn give_back(app: &App, user_id: &str) {
    if let Err(e) = app.store.give_back_token_slot(user_id).await {
        tracing::warn!(error = %e, "could not give back a token slot");
    }
}

/// Maps Unit's refusals to our codes; Unit's own `status`, `title` and `code` go to the log.
///
/// How Unit refuses the JWT at the token call is undocumented (docs/unit-api.md §5), so a 401,
/// a 403 that does not name the scopes, and a 400 pointing at `/data/attributes/jwtToken` all
/// mean the session was not accepted: 401 `session_rejected_by_unit`.
fn unit_refused(e: UnitError) -> ApiError {
    let UnitError::Api { status, errors, .. } = &e else {
        return e.into();
    };
    let first = errors.first();
    tracing::warn!(
        status,
        unit_status = first.map(|x| x.status.as_str()),
        title = first.map(|x| x.title.as_str()),
        code = first.and_then(|x| x.code.as_deref()),
        "Unit refused the token request"
    );
    let about_jwt = errors
        .iter()
        .any(|x| x.source_pointer() == Some("/data/attributes/jwtToken"));
    let names_scopes = errors.iter().any(|x| {
        let text = format!(
            "{} {} {}",
            x.title,
            x.detail.as_deref().unwrap_or_default(),
            x.code.as_deref().unwrap_or_default()
        )
        .to_ascii_lowercase();
        text.contains("scope")
    });
    match status {
        403 if names_scopes => ApiError::unit_forbidden(),
        401 | 403 => ApiError::session_rejected_by_unit(),
        400 if about_jwt => ApiError::session_rejected_by_unit(),
        400 => ApiError::invalid_request("Unit refused the token request (check resources)"),
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
    let config = &app.config;
    let now = shared::http::now_epoch();
    let sensitive = sensitive(app, &checked.scopes);
    check_step_up(app, &session, &sensitive, now)?;
    let min_left = i64::try_from(config.jwt_min_remaining.as_secs()).unwrap_or(0);
    if session.seconds_left(now) < min_left {
        return Err(ApiError::session_jwt_expiring());
    }
    // No token outlives its session: Unit cannot revoke one, and the session's end is in the
    // signed claim (a claim without it is treated as ending now).
    let session_left = session.session_expires_at.map_or(0, |end| end - now).max(0);
    if session_left < SESSION_MIN_LEFT {
        return Err(ApiError::session_ending());
    }
    let deadline = shared::http::deadline(req);
    if config.session_check.confirms(!sensitive.is_empty()) {
        confirm_session(app, &session, deadline).await?;
    }
    // One store call reads the record and takes a slot of the user's token limit.
    let limit = config.tokens_per_user;
    let record = match app
        .store
        .take_token_slot(&session.user_id, limit.max, limit.window_secs(), now)
        .await?
    {
        TokenSlot::Taken(record) => record,
        TokenSlot::Full { retry_after } => {
            tracing::warn!("customer tokens limited for this user");
            return Err(ApiError::too_many_tokens(retry_after));
        }
        TokenSlot::NoUser => return Err(ApiError::onboarding_incomplete()),
        TokenSlot::Deleted => return Err(ApiError::account_deleted(StatusCode::FORBIDDEN)),
    };
    let customer_id = match customer_of(app, &record, deadline).await {
        Ok(customer_id) => customer_id,
        Err(e) => {
            give_back(app, &session.user_id).await;
            return Err(e);
        }
    };
    // A bank customer's TOTP step-up counts only with the authenticator bound to them.
    if !sensitive.is_empty()
        && !stepped_up_without_totp(app, &session, now)
        && let Err(e) =
            shared::authenticator::check_bound(app, &session, &record, &customer_id, deadline).await
    {
        give_back(app, &session.user_id).await;
        return Err(e);
    }
    // Unit cannot revoke a customer token: one that can move money lives briefly, and none
    // outlives the session it came from.
    let expires_in = if sensitive.is_empty() {
        checked.expires_in
    } else {
        checked
            .expires_in
            .min(config.sensitive_token_max_expires_in)
    }
    .min(u32::try_from(session_left).unwrap_or(u32::MAX));
    let scope = checked.scopes.iter().cloned().collect::<Vec<_>>().join(" ");
    let request = CreateCustomerToken {
        scope: scope.clone(),
        jwt_token: session.token.clone(),
        expires_in,
        resources: checked.resources,
    };
    let issued = match app
        .unit
        .create_customer_token(&customer_id, &request, deadline)
        .await
    {
        Ok(issued) => issued,
        Err(e) => {
            // No token, so it does not count against the user's limit.
            give_back(app, &session.user_id).await;
            return Err(unit_refused(e));
        }
    };
    let expires_in = issued.expires_in.unwrap_or(expires_in).min(expires_in);
    // No audit, no token: a token we cannot account for is not handed out.
    app.store
        .put_audit(&AuditEntry {
            event: None,
            user_id: session.user_id.clone(),
            customer_id: customer_id.clone(),
            scopes: checked.scopes.iter().cloned().collect(),
            issued_at: shared::store::timestamp_millis(),
            request_id: shared::http::request_id(req),
            expires_in,
        })
        .await?;
    tracing::info!(customer_id, scope, expires_in, "issued a customer token");
    shared::metrics::emit(shared::metrics::Metric::TokenIssued {
        sensitive: !sensitive.is_empty(),
    });
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

#[cfg(test)]
mod tests {
    use super::*;
    use shared::unit::UnitErrorItem;

    fn refusal(status: u16, title: &str, detail: &str, pointer: Option<&str>) -> UnitError {
        UnitError::Api {
            status,
            errors: vec![UnitErrorItem {
                status: status.to_string(),
                title: title.into(),
                code: None,
                detail: Some(detail.into()),
                source: pointer.map(|p| serde_json::json!({ "pointer": p })),
            }],
            retry_after: None,
        }
    }

    #[test]
    fn units_refusals_of_the_jwt_are_session_rejections_whatever_their_shape() {
        let cases = [
            (
                refusal(401, "Unauthorized", "jwt expired", None),
                401,
                "session_rejected_by_unit",
            ),
            (
                refusal(403, "Forbidden", "invalid token", None),
                401,
                "session_rejected_by_unit",
            ),
            (
                refusal(
                    400,
                    "Bad Request",
                    "invalid",
                    Some("/data/attributes/jwtToken"),
                ),
                401,
                "session_rejected_by_unit",
            ),
            (
                refusal(
                    403,
                    "Forbidden",
                    "the requested scopes need two-factor authentication",
                    None,
                ),
                403,
                "unit_forbidden",
            ),
            (
                refusal(
                    400,
                    "Bad Request",
                    "card not found",
                    Some("/data/attributes/resources"),
                ),
                400,
                "invalid_request",
            ),
            (
                refusal(503, "Unavailable", "later", None),
                502,
                "upstream_unavailable",
            ),
        ];
        for (e, status, code) in cases {
            let answer = unit_refused(e.clone());
            assert_eq!(
                (answer.status.as_u16(), answer.code),
                (status, code),
                "{e:?}"
            );
        }
    }
}
