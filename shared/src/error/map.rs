//! The one map from every failure below the handlers to what the caller gets: the JWT check,
//! the secret, the store, and Stytch's and Unit's answers (docs/stytch-api.md §2,
//! docs/unit-api.md §5). Each failure is classified here, once; handlers pick the map of the call
//! they made (the token exchange, the application, a code check) and never re-classify. Nothing
//! here logs or counts: the failure rides along as the answer's [`Cause`], which
//! [`ApiError::report`] writes once at the edge.

use http::StatusCode;
use tracing::Level;

use super::{ApiError, ErrorCode, FieldProblem};
use crate::jwt::JwtError;
use crate::metrics::Metric;
use crate::secrets::SecretError;
use crate::store::StoreError;
use crate::stytch::StytchError;
use crate::unit::{UnitError, UnitErrorItem};
use crate::upstream::TransportError;

impl From<JwtError> for ApiError {
    fn from(e: JwtError) -> Self {
        match e {
            JwtError::Expired => ApiError::token_expired(),
            JwtError::KeysUnavailable(detail) => ApiError::new(
                ErrorCode::UpstreamUnavailable,
                "cannot verify the session right now; retry shortly",
            )
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
            .with_retry_after(5)
            .with_cause(
                Level::ERROR,
                "cannot verify JWTs: Stytch JWKS unavailable",
                detail,
            ),
            other => ApiError::invalid_token(other.to_string()),
        }
    }
}

impl From<SecretError> for ApiError {
    fn from(e: SecretError) -> Self {
        ApiError::secrets_unavailable().with_cause(Level::ERROR, "secrets unavailable", e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => {
                ApiError::store_unavailable().with_cause(Level::ERROR, "store unavailable", detail)
            }
            other => ApiError::internal().with_cause(Level::ERROR, "store error", other),
        }
    }
}

/// What a Stytch `error_type` means to us: the one table of them (docs/stytch-api.md §2). A type
/// not listed is [`StytchRefusal::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StytchRefusal {
    /// The user is gone.
    UserNotFound,
    /// The session has ended.
    SessionEnded,
    /// Stytch cannot read the session we sent.
    SessionInvalid,
    /// No TOTP (or no recovery codes) to check a code against.
    NotEnrolled,
    /// The TOTP registration expired before it was verified.
    TotpExpired,
    /// A TOTP code was checked and is wrong, reused, or a recovery code.
    WrongTotpCode,
    /// A recovery code was checked and is wrong, used, or a TOTP code.
    WrongRecoveryCode,
    /// The user already has an active TOTP.
    TotpExists,
    /// The user has an unverified TOTP registration.
    PendingTotpExists,
    /// Stytch locked the user.
    Locked,
    /// Stytch's rate limit.
    RateLimited,
    /// Our project credentials were refused: a deployment fault, not the caller's.
    OurCredentials,
    /// Any other type.
    Other,
}

/// Every Stytch `error_type` we give a meaning to.
const STYTCH_ERROR_TYPES: &[(&str, StytchRefusal)] = &[
    ("user_not_found", StytchRefusal::UserNotFound),
    ("session_not_found", StytchRefusal::SessionEnded),
    ("invalid_session_token", StytchRefusal::SessionInvalid),
    ("unable_to_parse_session_jwt", StytchRefusal::SessionInvalid),
    ("no_session_arguments", StytchRefusal::SessionInvalid),
    ("totp_not_found", StytchRefusal::NotEnrolled),
    ("totps_not_found_for_user", StytchRefusal::NotEnrolled),
    ("recovery_codes_not_found", StytchRefusal::NotEnrolled),
    ("expired_totp", StytchRefusal::TotpExpired),
    ("invalid_totp_code", StytchRefusal::WrongTotpCode),
    ("unable_to_authenticate_totp", StytchRefusal::WrongTotpCode),
    (
        "totp_code_already_authenticated",
        StytchRefusal::WrongTotpCode,
    ),
    (
        "recovery_code_used_as_totp_code",
        StytchRefusal::WrongTotpCode,
    ),
    ("invalid_recovery_code", StytchRefusal::WrongRecoveryCode),
    (
        "unable_to_authenticate_recovery_code",
        StytchRefusal::WrongRecoveryCode,
    ),
    (
        "totp_code_used_as_recovery_code",
        StytchRefusal::WrongRecoveryCode,
    ),
    ("active_totp_exists", StytchRefusal::TotpExists),
    ("pending_totp_exists", StytchRefusal::PendingTotpExists),
    ("user_lock_limit_reached", StytchRefusal::Locked),
    ("user_locked", StytchRefusal::Locked),
    ("too_many_requests", StytchRefusal::RateLimited),
    ("unauthorized_credentials", StytchRefusal::OurCredentials),
];

impl StytchRefusal {
    /// The meaning of Stytch's `error_type`.
    pub fn of(error_type: &str) -> Self {
        STYTCH_ERROR_TYPES
            .iter()
            .find(|(t, _)| *t == error_type)
            .map_or(Self::Other, |(_, r)| *r)
    }

    /// The meaning of a failed Stytch call, when Stytch answered.
    pub fn of_error(e: &StytchError) -> Option<Self> {
        e.error_type().map(Self::of)
    }

    /// Whether a code submitted in the refused call was surely never checked (SECURITY.md, "TOTP
    /// failures count unless proven harmless"): only these give a TOTP attempt back.
    pub fn code_never_checked(self) -> bool {
        matches!(
            self,
            Self::UserNotFound | Self::NotEnrolled | Self::RateLimited
        )
    }
}

/// Whether a failed Stytch call surely never checked the code it carried: nothing was sent (the
/// secret was unreadable), or Stytch refused it for a reason that precedes any check. A timeout
/// or a dropped connection may have been checked.
pub fn never_checked(e: &StytchError) -> bool {
    match e {
        StytchError::Secrets(_) => true,
        StytchError::Api { error_type, .. } => StytchRefusal::of(error_type).code_never_checked(),
        StytchError::Transport(_) => false,
    }
}

impl From<StytchError> for ApiError {
    fn from(e: StytchError) -> Self {
        let (status, error_type, retry_after) = match &e {
            StytchError::Api {
                status,
                error_type,
                retry_after,
                ..
            } => (*status, error_type.as_str(), *retry_after),
            StytchError::Transport(t) => return upstream_failure("Stytch", &e, t.into()),
            StytchError::Secrets(s) => return s.clone().into(),
        };
        let refusal = StytchRefusal::of(error_type);
        // A 429 (Stytch's rate limit) and a 5xx are not about the request or the user.
        if !(400..500).contains(&status) || status == 429 {
            return upstream_failure("Stytch", &e, Failure::Answered(status, retry_after));
        }
        // Our project secret refused: by its type, or a 401/403 no table names (whatever its
        // body; a refusal about the request or the user always carries a type we know).
        if refusal == StytchRefusal::OurCredentials
            || (matches!(status, 401 | 403) && refusal == StytchRefusal::Other)
        {
            return credentials_refused("Stytch", &e);
        }
        stytch_refusal(refusal, status, error_type).with_cause(
            Level::WARN,
            "Stytch refused the request",
            &e,
        )
    }
}

/// Our answer to a Stytch 4xx about the request or the user.
fn stytch_refusal(refusal: StytchRefusal, status: u16, error_type: &str) -> ApiError {
    match refusal {
        StytchRefusal::UserNotFound => ApiError::user_not_found(),
        StytchRefusal::SessionEnded => ApiError::session_ended(),
        StytchRefusal::SessionInvalid => {
            ApiError::invalid_token("Stytch did not accept the session; log in again")
        }
        StytchRefusal::NotEnrolled | StytchRefusal::TotpExpired => ApiError::totp_not_enrolled(),
        StytchRefusal::WrongTotpCode => ApiError::invalid_totp_code(),
        StytchRefusal::WrongRecoveryCode => ApiError::invalid_recovery_code(),
        StytchRefusal::TotpExists => ApiError::totp_already_enrolled(),
        StytchRefusal::Locked => ApiError::account_locked(),
        StytchRefusal::PendingTotpExists
        | StytchRefusal::RateLimited
        | StytchRefusal::OurCredentials
        | StytchRefusal::Other => ApiError::stytch_refused(status, error_type),
    }
}

/// A failed TOTP (`recovery == false`) or recovery-code check at Stytch: a code Stytch checked and
/// refused is the check's own wrong-code answer, whichever kind of code Stytch says it was;
/// anything else maps as every Stytch failure does.
pub fn code_check_failure(e: StytchError, recovery: bool) -> ApiError {
    match StytchRefusal::of_error(&e) {
        Some(StytchRefusal::WrongTotpCode | StytchRefusal::WrongRecoveryCode) => {
            let wrong = if recovery {
                ApiError::invalid_recovery_code()
            } else {
                ApiError::invalid_totp_code()
            };
            wrong.with_cause(Level::INFO, "code refused", &e)
        }
        _ => e.into(),
    }
}

/// A failure confirming a session at Stytch before a mint: a session Stytch no longer knows was
/// revoked (or has ended), 401 `session_revoked`; anything else maps as every Stytch failure does.
pub fn session_check_failure(e: StytchError) -> ApiError {
    match StytchRefusal::of_error(&e) {
        Some(StytchRefusal::SessionEnded) => ApiError::session_revoked().with_cause(
            Level::INFO,
            "the session was revoked or has ended at Stytch",
            &e,
        ),
        _ => e.into(),
    }
}

/// Every Unit answer of a call made on the bridge's own account (docs/unit-api.md §5), whatever
/// its body: 429 and 5xx are Unit's trouble (429 keeps its `Retry-After`); 401 and 403 mean our
/// org token was refused; any other 4xx is Unit refusing what we asked, which a retry will not
/// change. The calls whose refusals can be about the caller (the token exchange, the
/// application) have their own maps below, which fall back to this one.
impl From<UnitError> for ApiError {
    fn from(e: UnitError) -> Self {
        let (status, retry_after) = match &e {
            UnitError::Api {
                status,
                retry_after,
                ..
            } => (*status, *retry_after),
            UnitError::Transport(t) => return upstream_failure("Unit", &e, t.into()),
            UnitError::Secrets(s) => return s.clone().into(),
        };
        match status {
            401 | 403 => credentials_refused("Unit", &e),
            400..=499 if status != 429 => ApiError::new(
                ErrorCode::UnitRefused,
                "Unit refused the request; retrying it will not help",
            )
            .with_cause(Level::WARN, "Unit refused the request", unit_detail(&e))
            .counted(Metric::UpstreamFailure {
                service: "unit",
                kind: "refused",
            }),
            _ => upstream_failure("Unit", &e, Failure::Answered(status, retry_after)),
        }
    }
}

/// Stytch or Unit refused the deployment's own credential: the caller can do nothing about it,
/// every call fails until an operator fixes the secret. An ERROR line and the alarmed
/// `CredentialsRefused` metric.
fn credentials_refused(service: &'static str, e: &dyn std::error::Error) -> ApiError {
    ApiError::new(
        ErrorCode::UpstreamCredentialsRefused,
        format!("{service} refused this service's credentials; the operator is alerted"),
    )
    .with_cause(
        Level::ERROR,
        "upstream refused our credential: check the secret",
        e,
    )
    .counted(Metric::CredentialsRefused {
        service: metric_service(service),
    })
}

/// The `Service` dimension of a metric: `stytch` or `unit`.
fn metric_service(service: &'static str) -> &'static str {
    if service == "Stytch" {
        "stytch"
    } else {
        "unit"
    }
}

/// Whether Unit's refusal points at the JWT: its pointer is `jwtToken`, or its code, title or
/// detail speaks of the JWT (or the JWKS it is checked against).
fn about_jwt(errors: &[UnitErrorItem]) -> bool {
    errors.iter().any(|x| {
        x.source_pointer() == Some("/data/attributes/jwtToken") || mentions(x, &["jwt", "jwk"])
    })
}

/// A failure at Unit's token call (`POST /customers/{id}/token`). How Unit refuses the JWT there
/// is undocumented (docs/unit-api.md §5): a 401 or 403 is the session's refusal only when its
/// body points at the JWT, a 403 naming the scopes is Unit's refusal of the scopes, and any
/// other 401 or 403 is our org token refused (the general map).
pub fn token_exchange_failure(e: UnitError) -> ApiError {
    let UnitError::Api { status, errors, .. } = &e else {
        return e.into();
    };
    let about_jwt = about_jwt(errors);
    let names_scopes = errors.iter().any(|x| mentions(x, &["scope"]));
    let answer = match status {
        403 if names_scopes => ApiError::unit_forbidden(),
        401 | 403 | 400 if about_jwt => ApiError::session_rejected_by_unit(),
        400 => ApiError::invalid_request("Unit refused the token request (check resources)"),
        _ => return e.into(),
    };
    answer.with_cause(
        Level::WARN,
        "Unit refused the token request",
        unit_detail(&e),
    )
}

/// A failure reading a card or account (`what`, e.g. `card 123`) a token is to be limited to:
/// Unit's 404 is the caller's 404 (another customer's card is answered the same way, below);
/// anything else maps as every Unit failure does.
pub fn resource_lookup_failure(e: UnitError, what: &str) -> ApiError {
    match &e {
        UnitError::Api { status: 404, .. } => ApiError::resource_not_found(what),
        _ => e.into(),
    }
}

/// A failure at Unit's application create. A refusal about the applicant's identity (a duplicate
/// SSN, any identity reason) names no field and carries no Unit text: which identities Unit knows
/// is not ours to tell. Another 400 lists its fields, named by `field` from Unit's JSON pointer.
pub fn application_failure(e: UnitError, field: impl Fn(&str) -> String) -> ApiError {
    match &e {
        UnitError::Api {
            status: 400 | 409 | 422,
            errors,
            ..
        } if about_identity(errors) => ApiError::identity_not_accepted()
            .with_cause(
                Level::WARN,
                "Unit refused the application's identity",
                unit_detail(&e),
            )
            .counted(Metric::IdentityRefused),
        UnitError::Api {
            status: 400,
            errors,
            ..
        } => {
            let fields = errors
                .iter()
                .map(|x| {
                    FieldProblem::new(
                        x.source_pointer()
                            .map(&field)
                            .unwrap_or_else(|| "application".into()),
                        x.detail.clone().unwrap_or_else(|| x.title.clone()),
                    )
                })
                .collect();
            ApiError {
                code: ErrorCode::ApplicationRejected,
                message: "Unit rejected the application".into(),
                ..ApiError::invalid_fields(fields)
            }
            .with_cause(
                Level::INFO,
                "Unit rejected the application",
                unit_detail(&e),
            )
        }
        _ => e.into(),
    }
}

/// Whether Unit's refusal is about the applicant's identity (their SSN or passport: a duplicate,
/// or any identity reason), which must not be echoed back.
fn about_identity(errors: &[UnitErrorItem]) -> bool {
    const MARKS: &[&str] = &[
        "ssn",
        "social security",
        "passport",
        "identity",
        "duplicate",
        "matricula",
    ];
    errors.iter().any(|x| {
        let pointer = x.source_pointer().unwrap_or_default().to_ascii_lowercase();
        MARKS.iter().any(|m| pointer.contains(m)) || mentions(x, MARKS)
    })
}

/// Whether an error item's code, title or detail mentions one of `marks` (lower case).
fn mentions(x: &UnitErrorItem, marks: &[&str]) -> bool {
    let text = format!(
        "{} {} {}",
        x.code.as_deref().unwrap_or_default(),
        x.title,
        x.detail.as_deref().unwrap_or_default()
    )
    .to_ascii_lowercase();
    marks.iter().any(|m| text.contains(m))
}

/// Unit's own status, title and code of a refusal, for the log (never its detail: an identity
/// refusal's detail may echo the applicant's data).
fn unit_detail(e: &UnitError) -> String {
    let UnitError::Api { status, errors, .. } = e else {
        return e.to_string();
    };
    let first = errors.first();
    format!(
        "Unit {status}: {} ({})",
        first.map_or("", |x| x.title.as_str()),
        first.and_then(|x| x.code.as_deref()).unwrap_or("no code")
    )
}

/// What a client learns of an upstream failure.
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

/// An upstream failure that is not about the request: 429 stays 429, a timeout is 504,
/// everything else 502. Upstream details go to the log only, and count in `UpstreamFailures`.
fn upstream_failure(service: &'static str, e: &dyn std::error::Error, kind: Failure) -> ApiError {
    let metric = Metric::UpstreamFailure {
        service: metric_service(service),
        kind: match kind {
            Failure::Answered(429, _) => "rate_limited",
            Failure::TimedOut => "timeout",
            Failure::Answered(..) | Failure::Failed => "unavailable",
        },
    };
    let answer = match kind {
        Failure::Answered(429, retry_after) => ApiError::new(
            ErrorCode::UpstreamRateLimited,
            format!("{service} is rate limiting; retry later"),
        )
        .with_retry_after(retry_after.unwrap_or(1)),
        Failure::TimedOut => ApiError::new(
            ErrorCode::UpstreamTimeout,
            format!("{service} did not answer in time"),
        ),
        Failure::Answered(..) | Failure::Failed => ApiError::new(
            ErrorCode::UpstreamUnavailable,
            format!("{service} failed to handle the request"),
        ),
    };
    answer
        .with_cause(Level::WARN, "upstream call failed", e)
        .counted(metric)
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
            (
                "unauthorized_credentials",
                401,
                502,
                "upstream_credentials_refused",
            ),
            ("", 401, 502, "upstream_credentials_refused"),
            (
                "a_type_added_later",
                403,
                502,
                "upstream_credentials_refused",
            ),
            ("", 404, 404, "stytch_refused"),
            ("", 429, 429, "upstream_rate_limited"),
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
            assert_eq!(
                (e.status.as_u16(), e.code.as_str()),
                (*ours, *code),
                "{error_type}"
            );
        }
    }

    /// Only a refusal proving the code was never looked at gives a TOTP attempt back; an unknown
    /// type never does.
    #[test]
    fn only_named_refusals_leave_a_code_unchecked() {
        for kind in [
            "user_not_found",
            "totp_not_found",
            "totps_not_found_for_user",
            "recovery_codes_not_found",
            "too_many_requests",
        ] {
            assert!(StytchRefusal::of(kind).code_never_checked(), "{kind}");
        }
        for kind in [
            "unable_to_authenticate_totp",
            "expired_totp",
            "session_not_found",
            "a_type_added_later",
            "unauthorized_credentials",
        ] {
            assert!(!StytchRefusal::of(kind).code_never_checked(), "{kind}");
        }
        let timeout = StytchError::Transport(TransportError::Timeout {
            service: "stytch",
            attempts: 1,
        });
        assert!(!never_checked(&timeout), "a timeout may have been checked");
    }

    #[test]
    fn a_checked_code_is_the_checks_own_wrong_code_whatever_stytch_calls_it() {
        let refused = |t: &str| StytchError::Api {
            status: 401,
            error_type: t.into(),
            message: String::new(),
            request_id: String::new(),
            retry_after: None,
        };
        for t in [
            "unable_to_authenticate_totp",
            "totp_code_used_as_recovery_code",
        ] {
            assert_eq!(
                code_check_failure(refused(t), false).code,
                ErrorCode::InvalidTotpCode
            );
            assert_eq!(
                code_check_failure(refused(t), true).code,
                ErrorCode::InvalidRecoveryCode
            );
        }
        assert_eq!(
            code_check_failure(refused("session_not_found"), true).code,
            ErrorCode::InvalidToken
        );
    }

    fn unit_refusal(status: u16, title: &str, detail: &str, pointer: Option<&str>) -> UnitError {
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
        let scopes = "the requested scopes need two-factor authentication";
        let cases = [
            (
                unit_refusal(401, "Unauthorized", "jwt expired", None),
                401,
                "session_rejected_by_unit",
            ),
            (
                unit_refusal(403, "Forbidden", "JWT subject mismatch", None),
                401,
                "session_rejected_by_unit",
            ),
            (
                unit_refusal(401, "Unauthorized", "no JWKS key matches the kid", None),
                401,
                "session_rejected_by_unit",
            ),
            (
                unit_refusal(401, "Unauthorized", "invalid token", None),
                502,
                "upstream_credentials_refused",
            ),
            (
                UnitError::Api {
                    status: 403,
                    errors: vec![],
                    retry_after: None,
                },
                502,
                "upstream_credentials_refused",
            ),
            (
                unit_refusal(
                    400,
                    "Bad Request",
                    "invalid",
                    Some("/data/attributes/jwtToken"),
                ),
                401,
                "session_rejected_by_unit",
            ),
            (
                unit_refusal(403, "Forbidden", scopes, None),
                403,
                "unit_forbidden",
            ),
            (
                unit_refusal(
                    400,
                    "Bad Request",
                    "card not found",
                    Some("/data/attributes/resources"),
                ),
                400,
                "invalid_request",
            ),
            (
                unit_refusal(503, "Unavailable", "later", None),
                502,
                "upstream_unavailable",
            ),
        ];
        for (e, status, code) in cases {
            let answer = token_exchange_failure(e.clone());
            assert_eq!(
                (answer.status.as_u16(), answer.code.as_str()),
                (status, code),
                "{e:?}"
            );
            assert!(answer.cause.is_some(), "{e:?}: the log learns why");
        }
    }

    /// Every Unit answer of a call on our own account maps by its status alone, with or without
    /// Unit's body (docs/unit-api.md §5).
    #[test]
    fn units_answers_keep_their_meaning_whatever_their_body() {
        let bare = |status: u16, retry_after: Option<u64>| UnitError::Api {
            status,
            errors: vec![],
            retry_after,
        };
        let cases: &[(UnitError, u16, &str, Option<u64>)] = &[
            (bare(429, Some(7)), 429, "upstream_rate_limited", Some(7)),
            (bare(429, None), 429, "upstream_rate_limited", Some(1)),
            (bare(401, None), 502, "upstream_credentials_refused", None),
            (
                unit_refusal(403, "Forbidden", "x", None),
                502,
                "upstream_credentials_refused",
                None,
            ),
            (bare(404, None), 502, "unit_refused", None),
            (
                unit_refusal(409, "Conflict", "x", None),
                502,
                "unit_refused",
                None,
            ),
            (bare(400, None), 502, "unit_refused", None),
            (bare(503, None), 502, "upstream_unavailable", None),
        ];
        for (e, status, code, retry_after) in cases {
            let answer = ApiError::from(e.clone());
            assert_eq!(
                (
                    answer.status.as_u16(),
                    answer.code.as_str(),
                    answer.retry_after
                ),
                (*status, *code, *retry_after),
                "{e:?}"
            );
        }
        let refused = ApiError::from(bare(401, None)).cause.expect("a cause");
        assert_eq!(refused.level, Level::ERROR);
        assert_eq!(
            refused.metric,
            Some(Metric::CredentialsRefused { service: "unit" })
        );
    }

    #[test]
    fn an_identity_refusal_names_nothing_and_counts() {
        let e = unit_refusal(
            400,
            "Bad Request",
            "SSN 123-45-6789 already exists",
            Some("/data/attributes/ssn"),
        );
        let answer = application_failure(e, |p| p.to_owned());
        assert_eq!(answer.code, ErrorCode::IdentityNotAccepted);
        assert!(answer.fields.is_empty());
        assert!(!answer.message.contains("123"));
        let cause = answer.cause.expect("a cause");
        assert!(
            !cause.detail.contains("123"),
            "the log gets no applicant data: {}",
            cause.detail
        );
        assert_eq!(cause.metric, Some(Metric::IdentityRefused));
        let e = unit_refusal(
            400,
            "Bad Request",
            "must be a valid state",
            Some("/data/attributes/address/state"),
        );
        let answer = application_failure(e, |p| {
            p.trim_start_matches("/data/attributes/").replace('/', ".")
        });
        assert_eq!(answer.code, ErrorCode::ApplicationRejected);
        assert_eq!(answer.fields[0].field, "address.state");
    }

    #[test]
    fn identity_refusals_are_recognised_whatever_unit_words_them() {
        let item = |code: Option<&str>, title: &str, pointer: Option<&str>| UnitErrorItem {
            status: "400".into(),
            title: title.into(),
            code: code.map(str::to_owned),
            detail: None,
            source: pointer.map(|p| serde_json::json!({ "pointer": p })),
        };
        assert!(about_identity(&[item(
            Some("duplicate_ssn"),
            "Duplicate SSN",
            None
        )]));
        assert!(about_identity(&[item(
            None,
            "Invalid",
            Some("/data/attributes/ssn")
        )]));
        assert!(about_identity(&[item(None, "Passport already used", None)]));
        assert!(!about_identity(&[item(
            None,
            "Invalid postal code",
            Some("/data/attributes/address/postalCode")
        )]));
    }
}
