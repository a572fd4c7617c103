//! The one error type handlers answer with, and its one mapping to an HTTP response.
//!
//! Body: `{"error": {"code": "...", "message": "..."}}`. Codes are stable, machine-readable
//! snake_case; messages are for humans and never carry upstream internals or secrets.

use http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;

use std::collections::BTreeSet;

use crate::config::StepUpFactor;
use crate::jwt::JwtError;
use crate::secrets::SecretError;
use crate::store::StoreError;
use crate::stytch::StytchError;
use crate::unit::UnitError;
use crate::upstream::TransportError;

/// An error answer to a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code, e.g. `step_up_required`.
    pub code: &'static str,
    /// Human-readable message, safe to show.
    pub message: String,
    /// Seconds for a `Retry-After` header (429/503).
    pub retry_after: Option<u64>,
    /// Methods for an `Allow` header (405).
    pub allow: Option<String>,
    /// Per-field problems of a validation error: `[{"field": "...", "problem": "..."}]`.
    pub fields: Vec<FieldProblem>,
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
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            allow: None,
            fields: Vec::new(),
        }
    }

    /// 400 `bad_request`-style errors.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401 with the given code.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 404 `not_found` for an unknown route.
    pub fn route_not_found(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {method} {path}"),
        )
    }

    /// 405 with the methods the path does take.
    pub fn method_not_allowed(method: &str, path: &str, allow: &str) -> Self {
        Self {
            allow: Some(allow.to_owned()),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{method} is not allowed on {path}; use {allow}"),
            )
        }
    }

    /// 500 `internal_error`: the details go to the log, never to the client.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error; it has been logged",
        )
    }

    /// 400 `invalid_request` listing every invalid field.
    pub fn invalid_fields(fields: Vec<FieldProblem>) -> Self {
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        let message = format!("invalid fields: {}", names.join(", "));
        Self {
            fields,
            ..Self::bad_request("invalid_request", message)
        }
    }

    /// Adds a `Retry-After` header.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The HTTP response for this error.
    pub fn into_response(self) -> Response<Body> {
        #[derive(Serialize)]
        struct Envelope<'a> {
            error: Inner<'a>,
        }
        #[derive(Serialize)]
        struct Inner<'a> {
            code: &'a str,
            message: &'a str,
            #[serde(skip_serializing_if = "<[FieldProblem]>::is_empty")]
            fields: &'a [FieldProblem],
        }
        let body = serde_json::to_vec(&Envelope {
            error: Inner {
                code: self.code,
                message: &self.message,
                fields: &self.fields,
            },
        })
        .unwrap_or_default();
        let mut response = json_response(self.status, body);
        let headers = response.headers_mut();
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
        Self::unauthorized("missing_token", message)
    }

    /// 401 `invalid_token`: a session JWT we refuse (the reason is safe to show).
    pub fn invalid_token(reason: impl Into<String>) -> Self {
        Self::unauthorized("invalid_token", reason)
    }

    /// 401 `token_expired`: the session JWT is past `exp`.
    pub fn token_expired() -> Self {
        Self::unauthorized(
            "token_expired",
            "the session JWT has expired; refresh the session",
        )
    }

    /// 401 `invalid_token`: Stytch says the session has ended.
    pub fn session_ended() -> Self {
        Self::invalid_token("the session has ended; log in again")
    }

    /// 401 `session_jwt_expiring`: too little time left for Unit to accept the JWT.
    pub fn session_jwt_expiring() -> Self {
        Self::unauthorized(
            "session_jwt_expiring",
            "the session JWT expires too soon to reach Unit; refresh the Stytch session and retry",
        )
    }

    /// 403 `authenticator_unconfirmed`: the user has a Unit customer, and the session's TOTP is
    /// not the authenticator enrolled through this service, or is not yet confirmed by a code
    /// sent to the e-mail address or phone number on the Unit customer.
    pub fn authenticator_unconfirmed(max_age: u64) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "authenticator_unconfirmed",
            format!(
                "confirm your authenticator: prove the e-mail address or phone number of your bank account (an e-mail or SMS code) in this session within {max_age} seconds of the request, with the authenticator enrolled through POST /mfa/totp"
            ),
        )
    }

    /// 401 `session_ending`: the Stytch session ends within a minute, so no token is minted
    /// from it (none outlives its session).
    pub fn session_ending() -> Self {
        Self::unauthorized(
            "session_ending",
            "the Stytch session ends in less than a minute; extend it (sessions.authenticate with session_duration_minutes) or log in again",
        )
    }

    /// 401 `session_rejected_by_unit`: Unit refused the session JWT at the token exchange.
    pub fn session_rejected_by_unit() -> Self {
        Self::unauthorized(
            "session_rejected_by_unit",
            "Unit did not accept the session JWT; log in again (and check Unit's JWT settings if it persists)",
        )
    }

    /// 401 `invalid_signature`: a webhook whose signature does not verify.
    pub fn invalid_signature(detail: impl std::fmt::Display) -> Self {
        Self::unauthorized(
            "invalid_signature",
            format!("webhook signature check failed: {detail}"),
        )
    }

    /// 400 `invalid_payload`: a signed webhook whose body we cannot read.
    pub fn invalid_payload(message: &'static str) -> Self {
        Self::bad_request("invalid_payload", message)
    }

    /// 400 `invalid_request`: a request body we cannot use.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::bad_request("invalid_request", message)
    }

    /// 400 `scope_not_allowed`: scopes outside `ALLOWED_SCOPES`.
    pub fn scope_not_allowed(scopes: &[&str]) -> Self {
        Self::bad_request(
            "scope_not_allowed",
            format!("scopes not allowed: {}", scopes.join(" ")),
        )
    }

    /// 401 `invalid_totp_code`.
    pub fn invalid_totp_code() -> Self {
        Self::unauthorized(
            "invalid_totp_code",
            "the code is wrong, expired or already used",
        )
    }

    /// 401 `invalid_recovery_code`.
    pub fn invalid_recovery_code() -> Self {
        Self::unauthorized(
            "invalid_recovery_code",
            "the recovery code is wrong or already used",
        )
    }

    /// 403 `step_up_required`: sensitive scopes without a fresh step-up factor.
    pub fn step_up_required(
        sensitive: &[&str],
        factors: &BTreeSet<StepUpFactor>,
        max_age_seconds: u64,
    ) -> Self {
        let scopes = sensitive.join(" ");
        let message = if factors.iter().eq([StepUpFactor::Totp].iter()) {
            format!(
                "{scopes} need a TOTP step-up within the last {max_age_seconds} s: POST /mfa/totp/authenticate, then retry with the new session JWT"
            )
        } else {
            let names: Vec<&str> = factors.iter().map(|f| f.name()).collect();
            format!(
                "{scopes} need a step-up ({}) within the last {max_age_seconds} s, then retry with the new session JWT",
                names.join(", ")
            )
        };
        Self::new(StatusCode::FORBIDDEN, "step_up_required", message)
    }

    /// 403 `step_up_required`: replacing an authenticator needs a fresh second factor.
    pub fn second_factor_required(max_age_seconds: u64) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "step_up_required",
            format!(
                "replacing the authenticator needs a TOTP or recovery-code login within the last {max_age_seconds} s: POST /mfa/totp/recover (or /mfa/totp/authenticate), then retry with the new session JWT"
            ),
        )
    }

    /// 401 `session_revoked`: Stytch says the session was revoked or has ended.
    pub fn session_revoked() -> Self {
        Self::unauthorized(
            "session_revoked",
            "the session was revoked or has ended; log in again",
        )
    }

    /// 403 `account_locked`: Stytch locked the user after too many failed attempts.
    pub fn account_locked() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "account_locked",
            "Stytch has locked this user after too many failed attempts; try again later",
        )
    }

    /// 429 `too_many_tokens`: the per-user limit of customer tokens (`TOKENS_PER_USER`).
    pub fn too_many_tokens(retry_after: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_tokens",
            "too many customer tokens for this user; wait before asking again",
        )
        .with_retry_after(retry_after)
    }

    /// 400 `identity_not_accepted`: Unit refused the application for the applicant's identity
    /// (a duplicate SSN or any identity reason). It names no field and carries no Unit text:
    /// which identities Unit knows is not ours to tell.
    pub fn identity_not_accepted() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "identity_not_accepted",
            "the application could not be accepted with this identity; check it, or contact support",
        )
    }

    /// 503 `applications_paused`: today's deployment-wide cap of new applications
    /// (`DAILY_APPLICATIONS_CAP`) is reached; `Retry-After` is the next UTC midnight.
    pub fn applications_paused(retry_after: u64) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "applications_paused",
            "new applications are paused until tomorrow; your place is kept",
        )
        .with_retry_after(retry_after)
    }

    /// 429 `too_many_enrolments`: the per-user limit of `POST /mfa/totp`
    /// (`TOTP_ENROLMENTS_PER_USER`).
    pub fn too_many_enrolments(retry_after: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_enrolments",
            "too many authenticator enrolments for this user; wait before trying again",
        )
        .with_retry_after(retry_after)
    }

    /// 429 `too_many_applications`: the per-user limit of applications (`APPLICATIONS_PER_USER`).
    pub fn too_many_applications(retry_after: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_applications",
            "too many applications for this user; wait before applying again",
        )
        .with_retry_after(retry_after)
    }

    /// 4xx `stytch_refused`: a Stytch refusal no other code names (its `error_type` is said).
    pub fn stytch_refused(status: u16, error_type: &str) -> Self {
        Self::new(
            StatusCode::from_u16(status)
                .ok()
                .filter(|s| s.is_client_error())
                .unwrap_or(StatusCode::BAD_REQUEST),
            "stytch_refused",
            format!("Stytch refused the request ({error_type})"),
        )
    }

    /// 403 `unit_forbidden`: Unit refused the scopes for this customer.
    pub fn unit_forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "unit_forbidden",
            "Unit refused these scopes for this customer",
        )
    }

    /// `account_deleted`: the Stytch user was deleted. 410 where the route is about the
    /// user's onboarding (it is gone), 403 at the token exchange (no token for it).
    pub fn account_deleted(status: StatusCode) -> Self {
        Self::new(status, "account_deleted", "this user has been deleted")
    }

    /// 404 `user_not_found`: Stytch no longer knows the user.
    pub fn user_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "user_not_found",
            "the Stytch user no longer exists",
        )
    }

    /// 404 `totp_not_enrolled`.
    pub fn totp_not_enrolled() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "totp_not_enrolled",
            "no authenticator app is enrolled; POST /mfa/totp first",
        )
    }

    /// 409 `totp_already_enrolled`: Stytch allows one active TOTP.
    pub fn totp_already_enrolled() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "totp_already_enrolled",
            "an authenticator app is already enrolled; step up with it, or recover with a recovery code",
        )
    }

    /// 409 `onboarding_incomplete`: no approved Unit customer yet.
    pub fn onboarding_incomplete() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "onboarding_incomplete",
            "this user has no approved Unit customer yet; see GET /onboarding",
        )
    }

    /// 409 `application_exists`: an application is in progress or approved.
    pub fn application_exists() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "application_exists",
            "an application is already in progress or approved; see GET /onboarding",
        )
    }

    /// 409 `application_bound_elsewhere`: the customer's application belongs to another user.
    pub fn application_bound_elsewhere(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "application_bound_elsewhere", detail)
    }

    /// 429 `too_many_attempts`: the per-user TOTP lockout.
    pub fn too_many_attempts(retry_after: u64) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "too many failed codes; wait before trying again",
        )
        .with_retry_after(retry_after)
    }

    /// 503 `secrets_unavailable`.
    pub fn secrets_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "secrets_unavailable",
            "the service is misconfigured or starting; retry shortly",
        )
    }

    /// 503 `store_unavailable`.
    pub fn store_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "storage is unavailable; retry shortly",
        )
        .with_retry_after(1)
    }
}

// How each boundary's errors become answers: one place for all of them.

impl From<JwtError> for ApiError {
    fn from(e: JwtError) -> Self {
        match e {
            JwtError::Expired => ApiError::token_expired(),
            JwtError::KeysUnavailable(detail) => {
                tracing::error!(error = %detail, "cannot verify JWTs: Stytch JWKS unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "upstream_unavailable",
                    "cannot verify the session right now; retry shortly",
                )
                .with_retry_after(5)
            }
            other => ApiError::invalid_token(other.to_string()),
        }
    }
}

impl From<SecretError> for ApiError {
    fn from(e: SecretError) -> Self {
        tracing::error!(error = %e, "secrets unavailable");
        ApiError::secrets_unavailable()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => {
                tracing::error!(error = %detail, "store unavailable");
                ApiError::store_unavailable()
            }
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::internal()
            }
        }
    }
}

/// What a client learns of an upstream failure the handler did not handle itself.
enum Failure {
    /// The service answered with this status (and maybe a `Retry-After`).
    Answered(u16, Option<u64>),
    /// No answer in time.
    TimedOut,
    /// Unreachable, or an unreadable answer.
    Failed,
}

impl From<&TransportError> for Failure {
    fn from(e: &TransportError) -> Self {
        match e {
            TransportError::Timeout { .. } => Failure::TimedOut,
            _ => Failure::Failed,
        }
    }
}

impl From<StytchError> for ApiError {
    fn from(e: StytchError) -> Self {
        let kind = match &e {
            StytchError::Api {
                status, error_type, ..
            } if is_refusal(*status, error_type) => {
                tracing::warn!(status, error_type, "Stytch refused the request");
                return stytch_refusal(*status, error_type);
            }
            StytchError::Api {
                status,
                retry_after,
                ..
            } => Failure::Answered(*status, *retry_after),
            StytchError::Transport(t) => t.into(),
            StytchError::Secrets(e) => return e.clone().into(),
        };
        upstream_error("Stytch", &e, kind)
    }
}

/// A Stytch 4xx that is about the request or the user, not about us: its answer is a 4xx of
/// ours. A 429 (Stytch's rate limit) and `unauthorized_credentials` (our project secret is
/// wrong: a deployment fault) are not.
fn is_refusal(status: u16, error_type: &str) -> bool {
    (400..500).contains(&status) && status != 429 && error_type != "unauthorized_credentials"
}

/// Our answer to a Stytch refusal the handler did not map itself (docs/stytch-api.md §2).
fn stytch_refusal(status: u16, error_type: &str) -> ApiError {
    match error_type {
        "user_not_found" => ApiError::user_not_found(),
        "session_not_found" => ApiError::session_ended(),
        "invalid_session_token" | "unable_to_parse_session_jwt" | "no_session_arguments" => {
            ApiError::invalid_token("Stytch did not accept the session; log in again")
        }
        "totp_not_found"
        | "totps_not_found_for_user"
        | "recovery_codes_not_found"
        | "expired_totp" => ApiError::totp_not_enrolled(),
        "invalid_totp_code"
        | "unable_to_authenticate_totp"
        | "totp_code_already_authenticated"
        | "recovery_code_used_as_totp_code" => ApiError::invalid_totp_code(),
        "invalid_recovery_code"
        | "unable_to_authenticate_recovery_code"
        | "totp_code_used_as_recovery_code" => ApiError::invalid_recovery_code(),
        "active_totp_exists" => ApiError::totp_already_enrolled(),
        "user_lock_limit_reached" | "user_locked" => ApiError::account_locked(),
        other => ApiError::stytch_refused(status, other),
    }
}

impl From<UnitError> for ApiError {
    fn from(e: UnitError) -> Self {
        let kind = match &e {
            UnitError::Api {
                status,
                retry_after,
                ..
            } => Failure::Answered(*status, *retry_after),
            UnitError::Transport(t) => t.into(),
            UnitError::Secrets(e) => return e.clone().into(),
        };
        upstream_error("Unit", &e, kind)
    }
}

/// The default mapping of an upstream failure a handler did not handle itself: 429 stays 429,
/// a timeout is 504, everything else 502. Upstream details go to the log only.
fn upstream_error(service: &str, e: &dyn std::error::Error, kind: Failure) -> ApiError {
    use http::StatusCode;
    tracing::warn!(service, error = %e, "upstream call failed");
    crate::metrics::emit(crate::metrics::Metric::UpstreamFailure {
        service: if service == "Stytch" {
            "stytch"
        } else {
            "unit"
        },
        kind: match kind {
            Failure::Answered(429, _) => "rate_limited",
            Failure::TimedOut => "timeout",
            Failure::Answered(..) | Failure::Failed => "unavailable",
        },
    });
    match kind {
        Failure::Answered(429, retry_after) => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "upstream_rate_limited",
            format!("{service} is rate limiting; retry later"),
        )
        .with_retry_after(retry_after.unwrap_or(1)),
        Failure::TimedOut => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            format!("{service} did not answer in time"),
        ),
        Failure::Answered(..) | Failure::Failed => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_unavailable",
            format!("{service} failed to handle the request"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every Stytch `error_type` the TOTP and session calls can answer (docs/stytch-api.md §2),
    /// with its status, and our answer: never a 5xx for a refusal about the request or the user.
    #[test]
    fn every_stytch_refusal_of_the_totp_and_session_calls_is_a_client_error_of_ours() {
        let table: &[(&str, u16, u16, &str)] = &[
            ("user_not_found", 404, 404, "user_not_found"),
            ("session_not_found", 404, 401, "invalid_token"),
            ("invalid_session_token", 400, 401, "invalid_token"),
            ("unable_to_parse_session_jwt", 400, 401, "invalid_token"),
            ("no_session_arguments", 400, 401, "invalid_token"),
            ("too_many_session_arguments", 400, 400, "stytch_refused"),
            (
                "invalid_session_duration_minutes",
                400,
                400,
                "stytch_refused",
            ),
            ("invalid_totp_code", 400, 401, "invalid_totp_code"),
            ("unable_to_authenticate_totp", 401, 401, "invalid_totp_code"),
            (
                "totp_code_already_authenticated",
                401,
                401,
                "invalid_totp_code",
            ),
            (
                "recovery_code_used_as_totp_code",
                400,
                401,
                "invalid_totp_code",
            ),
            ("invalid_recovery_code", 400, 401, "invalid_recovery_code"),
            (
                "unable_to_authenticate_recovery_code",
                401,
                401,
                "invalid_recovery_code",
            ),
            (
                "totp_code_used_as_recovery_code",
                400,
                401,
                "invalid_recovery_code",
            ),
            ("expired_totp", 400, 404, "totp_not_enrolled"),
            ("totp_not_found", 404, 404, "totp_not_enrolled"),
            ("totps_not_found_for_user", 404, 404, "totp_not_enrolled"),
            ("recovery_codes_not_found", 404, 404, "totp_not_enrolled"),
            ("pending_totp_exists", 400, 400, "stytch_refused"),
            ("active_totp_exists", 400, 409, "totp_already_enrolled"),
            ("user_lock_limit_reached", 403, 403, "account_locked"),
            ("a_type_added_later", 409, 409, "stytch_refused"),
            ("too_many_requests", 429, 429, "upstream_rate_limited"),
            ("unauthorized_credentials", 401, 502, "upstream_unavailable"),
            ("internal_server_error", 500, 502, "upstream_unavailable"),
        ];
        for (error_type, status, ours, code) in table {
            let e = ApiError::from(StytchError::Api {
                status: *status,
                error_type: (*error_type).into(),
                message: String::new(),
                request_id: String::new(),
                retry_after: None,
            });
            assert_eq!((e.status.as_u16(), e.code), (*ours, *code), "{error_type}");
        }
    }

    fn body(r: &Response<Body>) -> serde_json::Value {
        serde_json::from_slice(r.body().as_ref()).unwrap()
    }

    #[test]
    fn the_body_and_headers_follow_the_contract() {
        let r = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "slow down")
            .with_retry_after(7)
            .into_response();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "7");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(
            body(&r),
            serde_json::json!({"error": {"code": "rate_limited", "message": "slow down"}})
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
