//! The one error type handlers answer with, its codes ([`ErrorCode`]), the one map from every
//! failure below the handlers to it (`map`), and its one mapping to an HTTP response.
//!
//! Body: `{"error": {"code": "...", "message": "..."}}`. Codes are stable, machine-readable
//! snake_case; messages are for humans and never carry upstream internals or secrets. What the
//! log and the metrics learn of a failure travels as its [`Cause`] and is written once, by
//! [`ApiError::report`] at the edge that answers: building or converting an error does nothing.

use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;

use std::collections::BTreeSet;

use crate::config::StepUpFactor;
use crate::metrics::Metric;

mod code;
mod map;

pub use code::ErrorCode;
pub use map::{
    StytchRefusal, application_failure, code_check_failure, never_checked, resource_lookup_failure,
    session_check_failure, token_exchange_failure,
};

/// An error answer to a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code, e.g. `step_up_required`.
    pub code: ErrorCode,
    /// Human-readable message, safe to show.
    pub message: String,
    /// Seconds for a `Retry-After` header (429/503).
    pub retry_after: Option<u64>,
    /// Methods for an `Allow` header (405).
    pub allow: Option<String>,
    /// Per-field problems of a validation error: `[{"field": "...", "problem": "..."}]`.
    pub fields: Vec<FieldProblem>,
    /// What the log and the metrics get of the failure behind the answer (never the client).
    pub cause: Option<Box<Cause>>,
    /// What a `step_up_required` answer asks for (RFC 9470): the factors that count and the
    /// maximum age, in the body and in `WWW-Authenticate`.
    pub step_up: Option<Box<StepUpChallenge>>,
}

/// The step-up an RFC 9470 challenge asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepUpChallenge {
    /// The session factors that count as a step-up (`STEP_UP_FACTORS`, or the authenticator
    /// replacement's `totp` and `recovery_code`).
    pub factors: Vec<&'static str>,
    /// How long ago, at most, one of them may have been authenticated, in seconds.
    pub max_age: u64,
}

/// The failure behind an error answer, for the operator: logged and counted once, by
/// [`ApiError::report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// The log line's level.
    pub level: tracing::Level,
    /// The log line's message, stable for searches (the README's runbook names them).
    pub what: &'static str,
    /// The failure itself (an upstream's status and error type, a store's error), never a secret.
    pub detail: String,
    /// The metric the failure counts in.
    pub metric: Option<Metric>,
}

/// One invalid input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    /// The field, as the client named it (`address.postal_code`).
    pub field: String,
    /// What is wrong, safe to show (never echoes the value).
    pub problem: String,
}

impl FieldProblem {
    /// `field` is invalid because of `problem`.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl ApiError {
    /// An error with its code's usual status and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status: code.status(),
            code,
            message: message.into(),
            retry_after: None,
            allow: None,
            fields: Vec::new(),
            cause: None,
            step_up: None,
        }
    }

    /// Another of the statuses its code may carry (`openapi.yaml`); any other is refused in
    /// debug builds and replaced by the code's usual status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        debug_assert!(
            self.code.statuses().contains(&status),
            "{} is not answered with {status}",
            self.code
        );
        self.status = self.code.status_or_usual(status);
        self
    }

    /// The failure behind the answer, for the log and the metrics.
    pub fn with_cause(
        mut self,
        level: tracing::Level,
        what: &'static str,
        detail: impl std::fmt::Display,
    ) -> Self {
        self.cause = Some(Box::new(Cause {
            level,
            what,
            detail: detail.to_string(),
            metric: None,
        }));
        self
    }

    /// Counts the answer in `metric` when it is reported.
    pub fn counted(mut self, metric: Metric) -> Self {
        match &mut self.cause {
            Some(cause) => cause.metric = Some(metric),
            None => {
                self.cause = Some(Box::new(Cause {
                    level: tracing::Level::INFO,
                    what: "request refused",
                    detail: String::new(),
                    metric: Some(metric),
                }))
            }
        }
        self
    }

    /// Logs and counts the failure behind the answer: once per answer, by the edge that sends
    /// it ([`crate::lambda::serve`]). A server error without a cause is logged too.
    pub fn report(&self) {
        let code = self.code.as_str();
        let Some(cause) = &self.cause else {
            if self.status.is_server_error() {
                tracing::warn!(code, "request failed");
            }
            return;
        };
        if let Some(metric) = cause.metric {
            crate::metrics::emit(metric);
        }
        let (what, error) = (cause.what, cause.detail.as_str());
        match cause.level {
            tracing::Level::ERROR => tracing::error!(code, error, "{what}"),
            tracing::Level::WARN => tracing::warn!(code, error, "{what}"),
            _ => tracing::info!(code, error, "{what}"),
        }
    }

    /// 404 `not_found` for an unknown route.
    pub fn route_not_found(method: &str, path: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("no route for {method} {path}"))
    }

    /// 405 with the methods the path does take.
    pub fn method_not_allowed(method: &str, path: &str, allow: &str) -> Self {
        Self {
            allow: Some(allow.to_owned()),
            ..Self::new(
                ErrorCode::MethodNotAllowed,
                format!("{method} is not allowed on {path}; use {allow}"),
            )
        }
    }

    /// 500 `internal_error`: the details go to the log, never to the client.
    pub fn internal() -> Self {
        Self::new(
            ErrorCode::InternalError,
            "internal error; it has been logged",
        )
    }

    /// 400 `invalid_request` listing every invalid field.
    pub fn invalid_fields(fields: Vec<FieldProblem>) -> Self {
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        let message = format!("invalid fields: {}", names.join(", "));
        Self {
            fields,
            ..Self::new(ErrorCode::InvalidRequest, message)
        }
    }

    /// Adds a `Retry-After` header.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 413 `payload_too_large`: a body over the limit.
    pub fn payload_too_large() -> Self {
        Self::new(ErrorCode::PayloadTooLarge, "the request body is too large")
    }

    /// The HTTP response for this error.
    pub fn into_response(self) -> Response<Body> {
        #[derive(Serialize)]
        struct Envelope<'a> {
            error: Inner<'a>,
        }
        #[derive(Serialize)]
        struct Inner<'a> {
            code: ErrorCode,
            message: &'a str,
            #[serde(skip_serializing_if = "<[FieldProblem]>::is_empty")]
            fields: &'a [FieldProblem],
            #[serde(skip_serializing_if = "Option::is_none")]
            step_up: Option<&'a StepUpChallenge>,
        }
        let body = serde_json::to_vec(&Envelope {
            error: Inner {
                code: self.code,
                message: &self.message,
                fields: &self.fields,
                step_up: self.step_up.as_deref(),
            },
        })
        .unwrap_or_default();
        let mut response = json_response(self.status, body);
        let headers = response.headers_mut();
        if let Some(challenge) = self
            .www_authenticate()
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(allow) = self
            .allow
            .as_deref()
            .and_then(|a| HeaderValue::from_str(a).ok())
        {
            headers.insert(header::ALLOW, allow);
        }
        response
    }
}

impl ApiError {
    /// The `WWW-Authenticate` challenge of a 401 about the bearer session JWT (RFC 6750 §3,
    /// RFC 9470 §3): `insufficient_user_authentication` asks for a step-up and a retry,
    /// `invalid_token` for a new login or session; no header when no token was sent but
    /// `Bearer` itself. A 401 about a TOTP or recovery code, or a webhook's signature, is not
    /// about the bearer token and carries none.
    fn www_authenticate(&self) -> Option<String> {
        let quoted = |s: &str| s.replace(['"', '\\'], "'");
        let error = match self.code {
            ErrorCode::StepUpRequired => "insufficient_user_authentication",
            ErrorCode::MissingToken => return Some("Bearer".to_owned()),
            ErrorCode::InvalidToken
            | ErrorCode::TokenExpired
            | ErrorCode::SessionJwtExpiring
            | ErrorCode::SessionEnding
            | ErrorCode::SessionRejectedByUnit
            | ErrorCode::SessionRevoked => "invalid_token",
            _ => return None,
        };
        let mut challenge = format!(
            "Bearer error=\"{error}\", error_description=\"{}\"",
            quoted(&self.message)
        );
        if let Some(step_up) = &self.step_up {
            challenge.push_str(&format!(", max_age=\"{}\"", step_up.max_age));
        }
        Some(challenge)
    }
}

/// A JSON response with the given status and already-serialised body.
pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Body::Binary(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Serialises `value` as a JSON response; a serialisation failure is a 500.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => json_response(status, body),
        Err(e) => {
            tracing::error!(error = %e, "response serialisation failed");
            ApiError::internal().into_response()
        }
    }
}

/// The catalogue: every error our routes answer beyond the generic ones above, by code. A code
/// and its message are part of the API (`openapi.yaml` lists them per status); change neither
/// without changing the API.
impl ApiError {
    /// 401 `missing_token`: no usable `Authorization: Bearer` header.
    pub fn missing_token(message: &'static str) -> Self {
        Self::new(ErrorCode::MissingToken, message)
    }

    /// 401 `invalid_token`: a session JWT we refuse (the reason is safe to show).
    pub fn invalid_token(reason: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidToken, reason)
    }

    /// 401 `token_expired`: the session JWT is past `exp`.
    pub fn token_expired() -> Self {
        Self::new(
            ErrorCode::TokenExpired,
            "the session JWT has expired; refresh the session",
        )
    }

    /// 401 `invalid_token`: Stytch says the session has ended.
    pub fn session_ended() -> Self {
        Self::invalid_token("the session has ended; log in again")
    }

    /// 401 `session_jwt_expiring`: too little time left for Unit to accept the JWT.
    pub fn session_jwt_expiring() -> Self {
        Self::new(
            ErrorCode::SessionJwtExpiring,
            "the session JWT expires too soon to reach Unit; refresh the Stytch session and retry",
        )
    }

    /// 403 `authenticator_unconfirmed`: the user has a Unit customer, and the session's TOTP is
    /// not the authenticator enrolled through this service, or is not yet confirmed by a code
    /// sent to the e-mail address or phone number on the Unit customer.
    pub fn authenticator_unconfirmed(max_age: u64) -> Self {
        Self::new(
            ErrorCode::AuthenticatorUnconfirmed,
            format!(
                "confirm your authenticator: prove the e-mail address or phone number of your bank account (an e-mail or SMS code) in this session within {max_age} seconds of the request, with the authenticator enrolled through POST /mfa/totp"
            ),
        )
    }

    /// 401 `session_ending`: the Stytch session ends within a minute, so no token is minted
    /// from it (none outlives its session).
    pub fn session_ending() -> Self {
        Self::new(
            ErrorCode::SessionEnding,
            "the Stytch session ends in less than a minute; extend it (sessions.authenticate with session_duration_minutes) or log in again",
        )
    }

    /// 401 `session_rejected_by_unit`: Unit refused the session JWT at the token exchange.
    pub fn session_rejected_by_unit() -> Self {
        Self::new(
            ErrorCode::SessionRejectedByUnit,
            "Unit did not accept the session JWT; log in again (and check Unit's JWT settings if it persists)",
        )
    }

    /// 401 `invalid_signature`: a webhook whose signature does not verify.
    pub fn invalid_signature(detail: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorCode::InvalidSignature,
            format!("webhook signature check failed: {detail}"),
        )
    }

    /// 400 `invalid_payload`: a signed webhook whose body we cannot read.
    pub fn invalid_payload(message: &'static str) -> Self {
        Self::new(ErrorCode::InvalidPayload, message)
    }

    /// 400 `invalid_request`: a request body we cannot use.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// 400 `scope_not_allowed`: scopes outside `ALLOWED_SCOPES`.
    pub fn scope_not_allowed(scopes: &[&str]) -> Self {
        Self::new(
            ErrorCode::ScopeNotAllowed,
            format!("scopes not allowed: {}", scopes.join(" ")),
        )
    }

    /// 400 `scope_not_allowed`: upgradable scopes outside `UPGRADABLE_SCOPES` (empty, the
    /// default, refuses every one).
    pub fn upgradable_scope_not_allowed(scopes: &[&str]) -> Self {
        Self::new(
            ErrorCode::ScopeNotAllowed,
            format!(
                "upgradable scopes not allowed: {} (UPGRADABLE_SCOPES names those Unit's components may upgrade to)",
                scopes.join(" ")
            ),
        )
    }

    /// 401 `invalid_totp_code`.
    pub fn invalid_totp_code() -> Self {
        Self::new(
            ErrorCode::InvalidTotpCode,
            "the code is wrong, expired or already used",
        )
    }

    /// 401 `invalid_recovery_code`.
    pub fn invalid_recovery_code() -> Self {
        Self::new(
            ErrorCode::InvalidRecoveryCode,
            "the recovery code is wrong or already used",
        )
    }

    /// 401 `step_up_required` (RFC 9470's `insufficient_user_authentication`): sensitive scopes
    /// without a fresh step-up factor.
    pub fn step_up_required(
        sensitive: &[&str],
        factors: &BTreeSet<StepUpFactor>,
        max_age_seconds: u64,
    ) -> Self {
        let scopes = sensitive.join(" ");
        let names: Vec<&'static str> = factors.iter().map(|f| f.name()).collect();
        let message = if factors.iter().eq([StepUpFactor::Totp].iter()) {
            format!(
                "{scopes} need a TOTP step-up within the last {max_age_seconds} s: POST /mfa/totp/authenticate, then retry with the new session JWT"
            )
        } else {
            format!(
                "{scopes} need a step-up ({}) within the last {max_age_seconds} s, then retry with the new session JWT",
                names.join(", ")
            )
        };
        Self::new(ErrorCode::StepUpRequired, message).asking(names, max_age_seconds)
    }

    /// 401 `step_up_required`: replacing an authenticator needs a fresh second factor.
    pub fn second_factor_required(max_age_seconds: u64) -> Self {
        Self::new(
            ErrorCode::StepUpRequired,
            format!(
                "replacing the authenticator needs a TOTP or recovery-code login within the last {max_age_seconds} s: POST /mfa/totp/recover (or /mfa/totp/authenticate), then retry with the new session JWT"
            ),
        )
        .asking(vec!["totp", "recovery_code"], max_age_seconds)
    }

    fn asking(mut self, factors: Vec<&'static str>, max_age: u64) -> Self {
        self.step_up = Some(Box::new(StepUpChallenge { factors, max_age }));
        self
    }

    /// 404 `resource_not_found`: a card or account a token was to be limited to is not the
    /// caller's customer's; no other customer's card or account is told apart from none.
    pub fn resource_not_found(what: &str) -> Self {
        Self::new(
            ErrorCode::ResourceNotFound,
            format!("{what} is not one of your bank customer's"),
        )
    }

    /// 401 `session_revoked`: Stytch says the session was revoked or has ended.
    pub fn session_revoked() -> Self {
        Self::new(
            ErrorCode::SessionRevoked,
            "the session was revoked or has ended; log in again",
        )
    }

    /// 403 `account_locked`: Stytch locked the user after too many failed attempts.
    pub fn account_locked() -> Self {
        Self::new(
            ErrorCode::AccountLocked,
            "Stytch has locked this user after too many failed attempts; try again later",
        )
    }

    /// 429 `too_many_tokens`: the per-user limit of customer tokens (`TOKENS_PER_USER`).
    pub fn too_many_tokens(retry_after: u64) -> Self {
        Self::new(
            ErrorCode::TooManyTokens,
            "too many customer tokens for this user; wait before asking again",
        )
        .with_retry_after(retry_after)
    }

    /// 400 `identity_not_accepted`: Unit refused the application for the applicant's identity
    /// (a duplicate SSN or any identity reason). It names no field and carries no Unit text:
    /// which identities Unit knows is not ours to tell.
    pub fn identity_not_accepted() -> Self {
        Self::new(
            ErrorCode::IdentityNotAccepted,
            "the application could not be accepted with this identity; check it, or contact support",
        )
    }

    /// 503 `applications_paused`: today's deployment-wide cap of new applications
    /// (`DAILY_APPLICATIONS_CAP`) is reached; `Retry-After` is the next UTC midnight.
    pub fn applications_paused(retry_after: u64) -> Self {
        Self::new(
            ErrorCode::ApplicationsPaused,
            "new applications are paused until tomorrow; your place is kept",
        )
        .with_retry_after(retry_after)
    }

    /// 429 `too_many_enrolments`: the per-user limit of `POST /mfa/totp`
    /// (`TOTP_ENROLMENTS_PER_USER`).
    pub fn too_many_enrolments(retry_after: u64) -> Self {
        Self::new(
            ErrorCode::TooManyEnrolments,
            "too many authenticator enrolments for this user; wait before trying again",
        )
        .with_retry_after(retry_after)
    }

    /// 429 `too_many_applications`: the per-user limit of applications (`APPLICATIONS_PER_USER`).
    pub fn too_many_applications(retry_after: u64) -> Self {
        Self::new(
            ErrorCode::TooManyApplications,
            "too many applications for this user; wait before applying again",
        )
        .with_retry_after(retry_after)
    }

    /// 4xx `stytch_refused`: a Stytch refusal no other code names (its `error_type` is said).
    pub fn stytch_refused(status: u16, error_type: &str) -> Self {
        let refused = Self::new(
            ErrorCode::StytchRefused,
            format!("Stytch refused the request ({error_type})"),
        );
        // Stytch's status where openapi.yaml documents it for this code, else 400.
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        Self {
            status: refused.code.status_or_usual(status),
            ..refused
        }
    }

    /// 403 `unit_forbidden`: Unit refused the scopes for this customer.
    pub fn unit_forbidden() -> Self {
        Self::new(
            ErrorCode::UnitForbidden,
            "Unit refused these scopes for this customer",
        )
    }

    /// `customer_archived`: Unit archived the user's customer. The reason stays in the log.
    pub fn customer_archived() -> Self {
        Self::new(
            ErrorCode::CustomerArchived,
            "this bank account is closed: only read access remains",
        )
    }

    /// `account_deleted`: the Stytch user was deleted. 410 where the route is about the
    /// user's onboarding (it is gone), 403 at the token exchange (no token for it).
    pub fn account_deleted(status: StatusCode) -> Self {
        Self::new(ErrorCode::AccountDeleted, "this user has been deleted").with_status(status)
    }

    /// 404 `user_not_found`: Stytch no longer knows the user.
    pub fn user_not_found() -> Self {
        Self::new(ErrorCode::UserNotFound, "the Stytch user no longer exists")
    }

    /// 404 `totp_not_enrolled`.
    pub fn totp_not_enrolled() -> Self {
        Self::new(
            ErrorCode::TotpNotEnrolled,
            "no authenticator app is enrolled; POST /mfa/totp first",
        )
    }

    /// 409 `totp_already_enrolled`: Stytch allows one active TOTP.
    pub fn totp_already_enrolled() -> Self {
        Self::new(
            ErrorCode::TotpAlreadyEnrolled,
            "an authenticator app is already enrolled; step up with it, or recover with a recovery code",
        )
    }

    /// 409 `onboarding_incomplete`: no approved Unit customer yet.
    pub fn onboarding_incomplete() -> Self {
        Self::new(
            ErrorCode::OnboardingIncomplete,
            "this user has no approved Unit customer yet; see GET /onboarding",
        )
    }

    /// 409 `application_exists`: an application is in progress or approved.
    pub fn application_exists() -> Self {
        Self::new(
            ErrorCode::ApplicationExists,
            "an application is already in progress or approved; see GET /onboarding",
        )
    }

    /// 409 `application_bound_elsewhere`: the customer's application belongs to another user.
    pub fn application_bound_elsewhere(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::ApplicationBoundElsewhere, detail)
    }

    /// 429 `too_many_attempts`: the per-user TOTP lockout.
    pub fn too_many_attempts(retry_after: u64) -> Self {
        Self::new(
            ErrorCode::TooManyAttempts,
            "too many failed codes; wait before trying again",
        )
        .with_retry_after(retry_after)
    }

    /// 503 `secrets_unavailable`.
    pub fn secrets_unavailable() -> Self {
        Self::new(
            ErrorCode::SecretsUnavailable,
            "the service is misconfigured or starting; retry shortly",
        )
    }

    /// 503 `store_unavailable`.
    pub fn store_unavailable() -> Self {
        Self::new(
            ErrorCode::StoreUnavailable,
            "storage is unavailable; retry shortly",
        )
        .with_retry_after(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(r: &Response<Body>) -> serde_json::Value {
        serde_json::from_slice(r.body().as_ref()).unwrap()
    }

    #[test]
    fn the_body_and_headers_follow_the_contract() {
        let r = ApiError::new(ErrorCode::TooManyTokens, "slow down")
            .with_retry_after(7)
            .into_response();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "7");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(
            body(&r),
            serde_json::json!({"error": {"code": "too_many_tokens", "message": "slow down"}})
        );
    }

    #[test]
    fn a_step_up_challenge_follows_rfc_9470_and_a_dead_session_rfc_6750() {
        let factors = BTreeSet::from([StepUpFactor::Totp, StepUpFactor::Webauthn]);
        let r = ApiError::step_up_required(&["cards-write"], &factors, 300).into_response();
        assert_eq!(r.status(), 401);
        let challenge = r.headers()["www-authenticate"].to_str().unwrap();
        assert_eq!(
            challenge,
            "Bearer error=\"insufficient_user_authentication\", error_description=\"cards-write need a step-up (totp, webauthn) within the last 300 s, then retry with the new session JWT\", max_age=\"300\""
        );
        assert_eq!(
            body(&r)["error"]["step_up"],
            serde_json::json!({"factors": ["totp", "webauthn"], "max_age": 300})
        );
        let r = ApiError::session_revoked().into_response();
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\", error_description=\"the session was revoked or has ended; log in again\""
        );
        assert!(body(&r)["error"].get("step_up").is_none());
        let r = ApiError::missing_token("no bearer").into_response();
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        // A wrong TOTP code is no verdict on the bearer token: no challenge.
        let r = ApiError::invalid_totp_code().into_response();
        assert!(r.headers().get("www-authenticate").is_none());
        // A quote in a message cannot break out of the quoted string.
        let r = ApiError::invalid_token("bad \"kid\" \\ x").into_response();
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\", error_description=\"bad 'kid' ' x\""
        );
    }

    #[test]
    fn method_not_allowed_names_the_allowed_methods() {
        let r = ApiError::method_not_allowed("GET", "/webhooks/stytch", "POST").into_response();
        assert_eq!(r.status(), 405);
        assert_eq!(r.headers()["allow"], "POST");
        assert_eq!(body(&r)["error"]["code"], "method_not_allowed");
    }

    #[test]
    fn internal_errors_say_nothing_of_the_cause() {
        let r = ApiError::internal().into_response();
        assert_eq!(r.status(), 500);
        assert_eq!(
            body(&r)["error"]["message"],
            "internal error; it has been logged"
        );
    }
}
