//! Every error code the API answers with, and the statuses each may carry. `openapi.yaml` lists
//! the codes per status (`x-error-codes`); a test below checks the two agree both ways.

use http::StatusCode;

/// A stable, machine-readable error code (`error.code` of every error body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    /// 400: a malformed body or invalid fields.
    InvalidRequest,
    /// 400: a scope outside `ALLOWED_SCOPES`.
    ScopeNotAllowed,
    /// 400: Unit refused the application's data.
    ApplicationRejected,
    /// 400: Unit refused the application for the applicant's identity.
    IdentityNotAccepted,
    /// 400: a correctly signed webhook whose body we cannot read.
    InvalidPayload,
    /// 401: no usable bearer JWT.
    MissingToken,
    /// 401: a session JWT we refuse, or a session Stytch says has ended.
    InvalidToken,
    /// 401: the session JWT is past `exp`.
    TokenExpired,
    /// 401: too little time left for Unit to accept the JWT.
    SessionJwtExpiring,
    /// 401: the Stytch session ends within a minute.
    SessionEnding,
    /// 401: a wrong, expired or reused TOTP code.
    InvalidTotpCode,
    /// 401: a wrong or used recovery code.
    InvalidRecoveryCode,
    /// 401: Unit refused the session JWT at the token exchange.
    SessionRejectedByUnit,
    /// 401: Stytch says the session was revoked.
    SessionRevoked,
    /// 401: a webhook whose signature does not verify.
    InvalidSignature,
    /// 401 (RFC 9470): a sensitive scope (or an authenticator replacement) without a fresh
    /// second factor.
    StepUpRequired,
    /// 403: a bank customer's authenticator not enrolled or not confirmed through us.
    AuthenticatorUnconfirmed,
    /// 403: Unit refused the scopes for this customer.
    UnitForbidden,
    /// 403: Unit archived the user's customer: no write or sensitive token, no new application.
    CustomerArchived,
    /// 403 at the token exchange, 410 on onboarding routes: the user was deleted.
    AccountDeleted,
    /// 403: Stytch locked the user.
    AccountLocked,
    /// 404: no such route.
    NotFound,
    /// 404: the Stytch user no longer exists.
    UserNotFound,
    /// 404: no authenticator enrolled.
    TotpNotEnrolled,
    /// 404: a card or account a token was to be limited to is not the caller's (or none).
    ResourceNotFound,
    /// 405: a path that does not take this method.
    MethodNotAllowed,
    /// 409: no approved Unit customer yet.
    OnboardingIncomplete,
    /// 409: an application is in progress or approved.
    ApplicationExists,
    /// 409: the application belongs to another user.
    ApplicationBoundElsewhere,
    /// 409: an authenticator is already enrolled.
    TotpAlreadyEnrolled,
    /// 413: a body over the limit.
    PayloadTooLarge,
    /// 429: the per-session TOTP lockout or the user's daily ceiling.
    TooManyAttempts,
    /// 429: `TOKENS_PER_USER`.
    TooManyTokens,
    /// 429: `APPLICATIONS_PER_USER`.
    TooManyApplications,
    /// 429: `TOTP_ENROLMENTS_PER_USER`.
    TooManyEnrolments,
    /// 429: Stytch or Unit rate limited us.
    UpstreamRateLimited,
    /// 500: a bug.
    InternalError,
    /// 502 (Stytch or Unit failed), 503 (Stytch's JWKS unreachable).
    UpstreamUnavailable,
    /// 504: Stytch or Unit did not answer within the deadline.
    UpstreamTimeout,
    /// 503: DynamoDB unreachable.
    StoreUnavailable,
    /// 503: Secrets Manager unreachable, or the secret unusable.
    SecretsUnavailable,
    /// 503: the deployment's `DAILY_APPLICATIONS_CAP` is reached.
    ApplicationsPaused,
    /// A Stytch refusal no other code names, with Stytch's status where we document it.
    StytchRefused,
    /// 502: Stytch or Unit refused the deployment's own credential (its project secret or org
    /// token): an operator's fault, alarmed on.
    UpstreamCredentialsRefused,
    /// 502: Unit refused a request the bridge made on its own account (not the caller's data):
    /// retrying the same request will not help.
    UnitRefused,
}

impl ErrorCode {
    /// Every code, in the order of the enum.
    pub const ALL: [ErrorCode; 45] = [
        Self::InvalidRequest,
        Self::ScopeNotAllowed,
        Self::ApplicationRejected,
        Self::IdentityNotAccepted,
        Self::InvalidPayload,
        Self::MissingToken,
        Self::InvalidToken,
        Self::TokenExpired,
        Self::SessionJwtExpiring,
        Self::SessionEnding,
        Self::InvalidTotpCode,
        Self::InvalidRecoveryCode,
        Self::SessionRejectedByUnit,
        Self::SessionRevoked,
        Self::InvalidSignature,
        Self::StepUpRequired,
        Self::AuthenticatorUnconfirmed,
        Self::UnitForbidden,
        Self::CustomerArchived,
        Self::AccountDeleted,
        Self::AccountLocked,
        Self::NotFound,
        Self::UserNotFound,
        Self::TotpNotEnrolled,
        Self::ResourceNotFound,
        Self::MethodNotAllowed,
        Self::OnboardingIncomplete,
        Self::ApplicationExists,
        Self::ApplicationBoundElsewhere,
        Self::TotpAlreadyEnrolled,
        Self::PayloadTooLarge,
        Self::TooManyAttempts,
        Self::TooManyTokens,
        Self::TooManyApplications,
        Self::TooManyEnrolments,
        Self::UpstreamRateLimited,
        Self::InternalError,
        Self::UpstreamUnavailable,
        Self::UpstreamTimeout,
        Self::StoreUnavailable,
        Self::SecretsUnavailable,
        Self::ApplicationsPaused,
        Self::StytchRefused,
        Self::UpstreamCredentialsRefused,
        Self::UnitRefused,
    ];

    /// The code on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::ScopeNotAllowed => "scope_not_allowed",
            Self::ApplicationRejected => "application_rejected",
            Self::IdentityNotAccepted => "identity_not_accepted",
            Self::InvalidPayload => "invalid_payload",
            Self::MissingToken => "missing_token",
            Self::InvalidToken => "invalid_token",
            Self::TokenExpired => "token_expired",
            Self::SessionJwtExpiring => "session_jwt_expiring",
            Self::SessionEnding => "session_ending",
            Self::InvalidTotpCode => "invalid_totp_code",
            Self::InvalidRecoveryCode => "invalid_recovery_code",
            Self::SessionRejectedByUnit => "session_rejected_by_unit",
            Self::SessionRevoked => "session_revoked",
            Self::InvalidSignature => "invalid_signature",
            Self::StepUpRequired => "step_up_required",
            Self::AuthenticatorUnconfirmed => "authenticator_unconfirmed",
            Self::UnitForbidden => "unit_forbidden",
            Self::CustomerArchived => "customer_archived",
            Self::AccountDeleted => "account_deleted",
            Self::AccountLocked => "account_locked",
            Self::NotFound => "not_found",
            Self::UserNotFound => "user_not_found",
            Self::TotpNotEnrolled => "totp_not_enrolled",
            Self::ResourceNotFound => "resource_not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::OnboardingIncomplete => "onboarding_incomplete",
            Self::ApplicationExists => "application_exists",
            Self::ApplicationBoundElsewhere => "application_bound_elsewhere",
            Self::TotpAlreadyEnrolled => "totp_already_enrolled",
            Self::PayloadTooLarge => "payload_too_large",
            Self::TooManyAttempts => "too_many_attempts",
            Self::TooManyTokens => "too_many_tokens",
            Self::TooManyApplications => "too_many_applications",
            Self::TooManyEnrolments => "too_many_enrolments",
            Self::UpstreamRateLimited => "upstream_rate_limited",
            Self::InternalError => "internal_error",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::StoreUnavailable => "store_unavailable",
            Self::SecretsUnavailable => "secrets_unavailable",
            Self::ApplicationsPaused => "applications_paused",
            Self::StytchRefused => "stytch_refused",
            Self::UpstreamCredentialsRefused => "upstream_credentials_refused",
            Self::UnitRefused => "unit_refused",
        }
    }

    /// The statuses this code may be answered with (the first is its usual one).
    pub const fn statuses(self) -> &'static [StatusCode] {
        use StatusCode as S;
        match self {
            Self::InvalidRequest
            | Self::ScopeNotAllowed
            | Self::ApplicationRejected
            | Self::IdentityNotAccepted
            | Self::InvalidPayload => &[S::BAD_REQUEST],
            Self::MissingToken
            | Self::InvalidToken
            | Self::TokenExpired
            | Self::SessionJwtExpiring
            | Self::SessionEnding
            | Self::InvalidTotpCode
            | Self::InvalidRecoveryCode
            | Self::SessionRejectedByUnit
            | Self::SessionRevoked
            | Self::StepUpRequired
            | Self::InvalidSignature => &[S::UNAUTHORIZED],
            Self::AuthenticatorUnconfirmed
            | Self::UnitForbidden
            | Self::CustomerArchived
            | Self::AccountLocked => &[S::FORBIDDEN],
            Self::AccountDeleted => &[S::FORBIDDEN, S::GONE],
            Self::NotFound
            | Self::UserNotFound
            | Self::TotpNotEnrolled
            | Self::ResourceNotFound => &[S::NOT_FOUND],
            Self::MethodNotAllowed => &[S::METHOD_NOT_ALLOWED],
            Self::OnboardingIncomplete
            | Self::ApplicationExists
            | Self::ApplicationBoundElsewhere
            | Self::TotpAlreadyEnrolled => &[S::CONFLICT],
            Self::PayloadTooLarge => &[S::PAYLOAD_TOO_LARGE],
            Self::TooManyAttempts
            | Self::TooManyTokens
            | Self::TooManyApplications
            | Self::TooManyEnrolments
            | Self::UpstreamRateLimited => &[S::TOO_MANY_REQUESTS],
            Self::InternalError => &[S::INTERNAL_SERVER_ERROR],
            Self::UpstreamUnavailable => &[S::BAD_GATEWAY, S::SERVICE_UNAVAILABLE],
            Self::UpstreamCredentialsRefused | Self::UnitRefused => &[S::BAD_GATEWAY],
            Self::UpstreamTimeout => &[S::GATEWAY_TIMEOUT],
            Self::StoreUnavailable | Self::SecretsUnavailable | Self::ApplicationsPaused => {
                &[S::SERVICE_UNAVAILABLE]
            }
            Self::StytchRefused => &[
                S::BAD_REQUEST,
                S::UNAUTHORIZED,
                S::FORBIDDEN,
                S::NOT_FOUND,
                S::CONFLICT,
            ],
        }
    }

    /// Its usual status.
    pub const fn status(self) -> StatusCode {
        self.statuses()[0]
    }

    /// `status` when this code may carry it, else its usual one.
    pub fn status_or_usual(self, status: StatusCode) -> StatusCode {
        if self.statuses().contains(&status) {
            status
        } else {
            self.status()
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// `(status, code)` for every code each status of `openapi.yaml` lists: the statuses come from
    /// the operations' `$ref`s to `components/responses`, or a response's own `x-status` for one
    /// no operation references (405 answers methods the document does not list).
    fn documented() -> BTreeSet<(u16, String)> {
        let text = include_str!("../../../openapi.yaml");
        let mut status_of: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
        for line in text.lines() {
            let t = line.trim();
            if let Some((status, rest)) = t.split_once(": {$ref: '#/components/responses/") {
                let status: u16 = status.trim_matches('\'').parse().expect("a status");
                let name = rest.trim_end_matches("'}").to_owned();
                status_of.entry(name).or_default().insert(status);
            }
        }
        let mut codes_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let (mut in_responses, mut current) = (false, None::<String>);
        for line in text.lines() {
            if line == "  responses:" {
                in_responses = true;
                continue;
            }
            if in_responses && line.starts_with("  ") && !line.starts_with("   ") {
                break;
            }
            if !in_responses {
                continue;
            }
            if let Some(name) = line
                .strip_prefix("    ")
                .filter(|l| !l.starts_with(' '))
                .and_then(|l| l.strip_suffix(':'))
            {
                current = Some(name.to_owned());
            }
            let t = line.trim();
            let Some(name) = &current else { continue };
            if let Some(s) = t.strip_prefix("x-status: ") {
                status_of
                    .entry(name.clone())
                    .or_default()
                    .insert(s.parse().expect("x-status"));
            }
            if let Some(list) = t.strip_prefix("x-error-codes: [") {
                let list = list.trim_end_matches(']');
                codes_of
                    .entry(name.clone())
                    .or_default()
                    .extend(list.split(',').map(|c| c.trim().to_owned()));
            }
        }
        assert!(
            !codes_of.is_empty(),
            "no x-error-codes found in openapi.yaml"
        );
        let mut pairs = BTreeSet::new();
        for (name, codes) in codes_of {
            let statuses = status_of
                .get(&name)
                .unwrap_or_else(|| panic!("no status answers with the response {name}"));
            for status in statuses {
                for code in &codes {
                    pairs.insert((*status, code.clone()));
                }
            }
        }
        pairs
    }

    #[test]
    fn the_codes_and_openapi_agree_both_ways() {
        let ours: BTreeSet<(u16, String)> = ErrorCode::ALL
            .iter()
            .flat_map(|c| {
                c.statuses()
                    .iter()
                    .map(move |s| (s.as_u16(), c.as_str().to_owned()))
            })
            .collect();
        let documented = documented();
        let undocumented: Vec<_> = ours.difference(&documented).collect();
        let unknown: Vec<_> = documented.difference(&ours).collect();
        assert!(
            undocumented.is_empty(),
            "answered but not in openapi.yaml: {undocumented:?}"
        );
        assert!(
            unknown.is_empty(),
            "in openapi.yaml but never answered: {unknown:?}"
        );
    }

    #[test]
    fn every_code_is_listed_once_with_a_distinct_name() {
        // `UnitRefused` is the last variant: `ALL` holds each in the enum's order.
        assert_eq!(ErrorCode::ALL.len(), ErrorCode::UnitRefused as usize + 1);
        for (i, c) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i, "{c}");
        }
        let names: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        let all: BTreeSet<ErrorCode> = ErrorCode::ALL.into_iter().collect();
        assert_eq!(all.len(), ErrorCode::ALL.len());
    }
}
