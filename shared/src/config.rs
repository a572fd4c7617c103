//! Typed configuration from environment variables.
//!
//! Every function reads the same variables (see the README's configuration table). A missing or
//! malformed value stops start-up with one line that names the variable.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use crate::domain::{Scope, Scopes};

/// A configuration error: always names the variable and says what is wrong with it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration error: {var} {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong with its value.
    pub problem: String,
}

impl ConfigError {
    fn new(var: &'static str, problem: impl Into<String>) -> Self {
        Self {
            var,
            problem: problem.into(),
        }
    }
}

/// Where the service's secrets come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretsLocation {
    /// One AWS Secrets Manager secret (JSON), by name or ARN: `SECRET_ID`.
    SecretsManager { secret_id: String, ttl: Duration },
    /// A local JSON file: `SECRETS_FILE` (local use only).
    File(PathBuf),
    /// Inline JSON in `SECRETS_JSON` (local use and tests only).
    Inline(String),
}

/// Where user mappings are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// The DynamoDB table `TABLE_NAME` (endpoint from the AWS SDK's usual settings, e.g.
    /// `AWS_ENDPOINT_URL`).
    DynamoDb { table_name: String },
    /// Process memory: only for the local runner and tests (`STORE=memory`).
    Memory,
}

/// The configuration every function shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Stytch project id (`project-test-...` or `project-live-...`): the JWT audience and issuer.
    pub stytch_project_id: String,
    /// Stytch API base URL; defaults from the project id (test or live host).
    pub stytch_api_url: String,
    /// Extra accepted JWT issuers (a Stytch custom domain issues `https://<domain>`).
    pub stytch_extra_issuers: Vec<String>,
    /// Unit API base URL (`https://api.s.unit.sh` for the sandbox, `https://api.unit.co` live).
    pub unit_api_url: String,
    /// Where the secrets come from.
    pub secrets: SecretsLocation,
    /// Where user mappings are stored.
    pub store: StoreLocation,
    /// How session JWTs are checked.
    pub session: SessionSettings,
    /// What counts as a step-up, and for how long.
    pub step_up: StepUpSettings,
    /// Customer tokens: scopes, lifetimes, per-user limit.
    pub tokens: TokenSettings,
    /// TOTP enrolment and check limits.
    pub totp: TotpSettings,
    /// Upstream (Stytch and Unit) call timeouts and retries.
    pub upstream: UpstreamSettings,
    /// Unit applications and Unit's onboarding events.
    pub onboarding: OnboardingSettings,
}

/// How session JWTs are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSettings {
    /// Clock-skew leeway for JWT `exp`/`nbf`/`iat`.
    pub leeway: Duration,
    /// Minimum time between two JWKS fetches caused by an unknown `kid`.
    pub jwks_refetch_interval: Duration,
    /// How long a fetched JWKS is trusted before it is refreshed on next use.
    pub jwks_ttl: Duration,
    /// A session JWT with less life left than this is not sent to Unit (401 `session_jwt_expiring`).
    pub min_remaining: Duration,
    /// Which mints confirm the session at Stytch before Unit is called (`SESSION_CHECK`).
    pub check: SessionCheck,
}

/// What counts as a step-up, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUpSettings {
    /// How recent a step-up factor must be for a sensitive scope (`STEP_UP_MAX_AGE`).
    pub max_age: Duration,
    /// The session factors that count as a step-up (`STEP_UP_FACTORS`).
    pub factors: BTreeSet<StepUpFactor>,
}

/// Customer tokens: scopes, lifetimes, per-user limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// Unit scopes a customer token may carry.
    pub allowed_scopes: Scopes,
    /// Scopes on [`READ_ONLY_SCOPES`] that need a step-up all the same (`SENSITIVE_SCOPES`);
    /// every other scope always does ([`TokenSettings::is_sensitive`]).
    pub sensitive_scopes: Scopes,
    /// Scopes of a customer token when the request names none.
    pub default_scopes: Scopes,
    /// Lifetime of a customer token when the request names none (seconds, at most 86400).
    pub default_expires_in: u32,
    /// Longest lifetime of a customer token with a sensitive scope (seconds).
    pub sensitive_max_expires_in: u32,
    /// Customer tokens a user may get per window (`TOKENS_PER_USER`).
    pub per_user: RateLimit,
    /// Longest lifetime of a token limited to cards or accounts, or carrying an upgradable
    /// scope (`CARD_TOKEN_MAX_EXPIRES_IN`, seconds; never above the session's own end).
    pub card_max_expires_in: u32,
    /// Scopes a request may ask Unit to upgrade with its own SMS code (`UPGRADABLE_SCOPES`,
    /// for Unit's white-label components); empty, the default, refuses every upgradable scope.
    pub upgradable_scopes: Scopes,
}

/// TOTP enrolment and check limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpSettings {
    /// Failed TOTP or recovery-code checks allowed per user in a lockout window.
    pub max_failures: u32,
    /// The lockout window (seconds from the first failed check).
    pub lockout: Duration,
    /// Failed TOTP checks per user per day in sessions that never completed a step-up
    /// (`TOTP_DAILY_CEILING`): what bounds a password thief's guessing over a year.
    pub daily_ceiling: u32,
    /// `POST /mfa/totp` calls a user may make per window (`TOTP_ENROLMENTS_PER_USER`).
    pub enrolments_per_user: RateLimit,
}

/// Upstream (Stytch and Unit) call timeouts and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamSettings {
    /// Timeout of one upstream HTTP attempt.
    pub timeout: Duration,
    /// Timeout of Unit's application create (its KYC runs inside; Unit documents up to
    /// 120 s), within the request's own deadline. Never retried after it passes.
    pub application_create_timeout: Duration,
    /// Attempts per upstream call (first try included) for retryable failures.
    pub max_attempts: u32,
}

/// Unit applications and Unit's onboarding events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnboardingSettings {
    /// Unit applications a user may start per window (`APPLICATIONS_PER_USER`).
    pub applications_per_user: RateLimit,
    /// New Unit application forms and applications per UTC day, all users together
    /// (`DAILY_APPLICATIONS_CAP`).
    pub daily_applications_cap: u32,
    /// `GET /onboarding` (and customer-token's slow path) asks Unit at most once per this, per
    /// user (`ONBOARDING_REFRESH_SECONDS`); in between it answers from the record.
    pub refresh: Duration,
    /// A Unit event older than this is never applied (`UNIT_EVENT_MAX_AGE_SECONDS`); event
    /// markers are kept a day longer.
    pub unit_event_max_age: Duration,
}

/// A step-up factor: a session authentication factor of one Stytch `type`, issued with one of its
/// `delivery_method`s (docs/stytch-api.md §4). A factor counts only as that exact pair, so a
/// recovery-code login is never taken for a TOTP whatever Stytch labels its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StepUpFactor {
    /// An authenticator app: `totp` / `authenticator_app`.
    Totp,
    /// A passkey or security key: `webauthn` / `webauthn_registration`.
    Webauthn,
    /// A one-time passcode to a phone: `otp` / `sms` or `whatsapp`.
    Otp,
    /// A one-time passcode by e-mail: `otp` / `email` or `email_otp` / `email` (which one a
    /// consumer project issues is not settled, docs/stytch-api.md §4), only when named.
    EmailOtp,
}

impl StepUpFactor {
    /// The name in `STEP_UP_FACTORS` (Stytch's factor `type`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Webauthn => "webauthn",
            Self::Otp => "otp",
            Self::EmailOtp => "email_otp",
        }
    }

    /// Whether a session factor's `type` and `delivery_method` are this factor's pair.
    pub fn matches(self, factor_type: &str, delivery_method: &str) -> bool {
        match self {
            Self::Totp => factor_type == "totp" && delivery_method == "authenticator_app",
            Self::Webauthn => {
                factor_type == "webauthn" && delivery_method == "webauthn_registration"
            }
            Self::Otp => factor_type == "otp" && matches!(delivery_method, "sms" | "whatsapp"),
            Self::EmailOtp => {
                matches!(factor_type, "otp" | "email_otp") && delivery_method == "email"
            }
        }
    }
}

/// Which mints confirm the session at Stytch (`SESSION_CHECK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCheck {
    /// Every mint (`POST /v1/sessions/authenticate`): a revoked or ended session mints nothing.
    All,
    /// Mints of a sensitive scope only: a revoked session's JWT still gets a read-only token
    /// until its `exp` (up to 5 minutes), one Stytch call less for reads.
    Sensitive,
    /// None: the local JWT check only (a revoked session's JWT works until its `exp`).
    Local,
}

impl SessionCheck {
    /// Whether a mint with (or without) a sensitive scope is confirmed at Stytch.
    pub fn confirms(self, sensitive: bool) -> bool {
        match self {
            Self::All => true,
            Self::Sensitive => sensitive,
            Self::Local => false,
        }
    }
}

/// At most `max` per `window`, per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Allowed per window.
    pub max: u32,
    /// The window, from the first counted request.
    pub window: Duration,
}

impl RateLimit {
    /// The window in whole seconds, as the store counts it.
    pub fn window_secs(&self) -> u32 {
        u32::try_from(self.window.as_secs()).unwrap_or(u32::MAX)
    }
}

/// The Unit scopes known to be read-only (docs/unit-api.md §5): the only ones minted without a
/// step-up. Every other scope, an unknown one included, needs it.
pub const READ_ONLY_SCOPES: &[&str] = &[
    "customers",
    "accounts",
    "cards",
    "transactions",
    "payments",
    "counterparties",
    "authorizations",
    "statements",
];

/// The default `TOTP_DAILY_CEILING`: with at most 3 codes accepted per guess (Stytch's window
/// around the current step), 365 × 8 × 3 / 10^6 ≈ 0.88 % chance per year for a password thief
/// (SECURITY.md shows the formula).
pub const DEFAULT_TOTP_DAILY_CEILING: u32 = 8;

/// The shortest `UNIT_EVENT_MAX_AGE_SECONDS`: Unit redelivers an `AtLeastOnce` event for up to
/// 7 days (docs/unit-api.md §8).
pub const MIN_UNIT_EVENT_MAX_AGE: u32 = 7 * 24 * 3600;

/// Scopes a frontend may ask for by default: the customer-facing read and write scopes of Unit.
pub const DEFAULT_ALLOWED_SCOPES: &str = "customers accounts cards cards-write cards-sensitive \
     cards-sensitive-write transactions payments payments-write counterparties \
     counterparties-write authorizations statements";

impl TokenSettings {
    /// Whether `scope` needs a step-up: every scope not on [`READ_ONLY_SCOPES`], and those of
    /// them `SENSITIVE_SCOPES` adds.
    pub fn is_sensitive(&self, scope: &str) -> bool {
        !READ_ONLY_SCOPES.contains(&scope) || self.sensitive_scopes.contains(scope)
    }
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let (stytch_project_id, stytch_api_url) = stytch_project(&env)?;
        let unit_api_url = env.url("UNIT_API_URL")?.ok_or_else(|| {
            ConfigError::new(
                "UNIT_API_URL",
                "is not set (e.g. https://api.s.unit.sh for Unit's sandbox)",
            )
        })?;
        Ok(Self {
            stytch_project_id,
            stytch_api_url,
            stytch_extra_issuers: env
                .optional("STYTCH_EXTRA_ISSUERS")
                .map(|v| {
                    v.split([',', ' '])
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            unit_api_url,
            secrets: secrets_location(&env)?,
            store: store_location(&env)?,
            session: SessionSettings::from_env(&env)?,
            step_up: StepUpSettings {
                max_age: env.seconds("STEP_UP_MAX_AGE", 300)?,
                factors: env.step_up_factors("STEP_UP_FACTORS")?,
            },
            tokens: TokenSettings::from_env(&env)?,
            totp: TotpSettings::from_env(&env)?,
            upstream: UpstreamSettings::from_env(&env)?,
            onboarding: OnboardingSettings::from_env(&env)?,
        })
    }
}

impl SessionSettings {
    fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            leeway: env.seconds("JWT_LEEWAY_SECONDS", 10)?,
            jwks_refetch_interval: env.seconds("JWKS_REFETCH_INTERVAL_SECONDS", 30)?,
            jwks_ttl: env.seconds("JWKS_TTL_SECONDS", 3600)?,
            min_remaining: env.seconds("JWT_MIN_REMAINING_SECONDS", 30)?,
            check: session_check(
                env.optional("SESSION_CHECK"),
                env.optional("SENSITIVE_SESSION_CHECK"),
            )?,
        })
    }
}

impl TokenSettings {
    fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        let (allowed_scopes, sensitive_scopes, default_scopes) = scope_settings(env)?;
        Ok(Self {
            default_expires_in: env.number_in(
                "DEFAULT_TOKEN_EXPIRES_IN",
                3600,
                1..=86_400,
                "must be between 1 and 86400 seconds",
            )?,
            sensitive_max_expires_in: env.number_in(
                "SENSITIVE_TOKEN_MAX_EXPIRES_IN",
                900,
                1..=86_400,
                "must be between 1 and 86400 seconds",
            )?,
            per_user: env.rate_limit("TOKENS_PER_USER", "30/600")?,
            card_max_expires_in: env.number_in(
                "CARD_TOKEN_MAX_EXPIRES_IN",
                300,
                1..=86_400,
                "must be between 1 and 86400 seconds",
            )?,
            upgradable_scopes: upgradable_scopes(env, &allowed_scopes)?,
            allowed_scopes,
            sensitive_scopes,
            default_scopes,
        })
    }
}

impl TotpSettings {
    fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            max_failures: env.number_in("TOTP_MAX_FAILURES", 5, 1..=u32::MAX, AT_LEAST_1)?,
            lockout: env.seconds("TOTP_LOCKOUT_SECONDS", 900)?,
            daily_ceiling: env.number_in(
                "TOTP_DAILY_CEILING",
                DEFAULT_TOTP_DAILY_CEILING,
                1..=u32::MAX,
                AT_LEAST_1,
            )?,
            enrolments_per_user: env.rate_limit("TOTP_ENROLMENTS_PER_USER", "10/3600")?,
        })
    }
}

impl UpstreamSettings {
    fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            timeout: env.millis_in("UPSTREAM_TIMEOUT_MS", 5000, 1, "must be greater than 0")?,
            application_create_timeout: env.millis_in(
                "APPLICATION_CREATE_TIMEOUT_MS",
                12_000,
                1000,
                "must be at least 1000",
            )?,
            max_attempts: env.number_in(
                "UPSTREAM_MAX_ATTEMPTS",
                3,
                1..=10,
                "must be between 1 and 10",
            )?,
        })
    }
}

impl OnboardingSettings {
    fn from_env(env: &Env<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            applications_per_user: env.rate_limit("APPLICATIONS_PER_USER", "3/86400")?,
            daily_applications_cap: env.number_in(
                "DAILY_APPLICATIONS_CAP",
                1000,
                1..=u32::MAX,
                AT_LEAST_1,
            )?,
            refresh: env.seconds("ONBOARDING_REFRESH_SECONDS", 10)?,
            unit_event_max_age: Duration::from_secs(
                env.number_in(
                    "UNIT_EVENT_MAX_AGE_SECONDS",
                    MIN_UNIT_EVENT_MAX_AGE,
                    MIN_UNIT_EVENT_MAX_AGE..=u32::MAX,
                    "must be at least 604800 (Unit redelivers events for 7 days)",
                )?
                .into(),
            ),
        })
    }
}

const AT_LEAST_1: &str = "must be at least 1";

/// `STYTCH_PROJECT_ID` and `STYTCH_API_URL` (derived from the project when unset). Stytch's own
/// hosts serve one environment each: a live project on the test host (or the reverse) would fail
/// every call with unauthorized credentials.
fn stytch_project(env: &Env<'_>) -> Result<(String, String), ConfigError> {
    let project_id = env.required("STYTCH_PROJECT_ID")?;
    if !project_id.starts_with("project-") {
        return Err(ConfigError::new(
            "STYTCH_PROJECT_ID",
            format!(
                "is not a Stytch project id (project-test-... or project-live-...): {project_id:?}"
            ),
        ));
    }
    let live = project_id.starts_with("project-live-");
    let default = if live {
        "https://api.stytch.com"
    } else {
        "https://test.stytch.com"
    };
    let api_url = env.url("STYTCH_API_URL")?.unwrap_or_else(|| default.into());
    match api_url.as_str() {
        "https://test.stytch.com" if live => Err(ConfigError::new(
            "STYTCH_API_URL",
            "is Stytch's test host, but STYTCH_PROJECT_ID is a live project (use https://api.stytch.com)",
        )),
        "https://api.stytch.com" if !live => Err(ConfigError::new(
            "STYTCH_API_URL",
            "is Stytch's live host, but STYTCH_PROJECT_ID is a test project (use https://test.stytch.com)",
        )),
        _ => Ok((project_id, api_url)),
    }
}

/// Where the secret is: exactly one of `SECRET_ID`, `SECRETS_FILE` and `SECRETS_JSON`.
fn secrets_location(env: &Env<'_>) -> Result<SecretsLocation, ConfigError> {
    match (
        env.optional("SECRET_ID"),
        env.optional("SECRETS_FILE"),
        env.optional("SECRETS_JSON"),
    ) {
        (Some(secret_id), None, None) => Ok(SecretsLocation::SecretsManager {
            secret_id,
            ttl: env.seconds("SECRETS_TTL_SECONDS", 300)?,
        }),
        (None, Some(path), None) => Ok(SecretsLocation::File(PathBuf::from(path))),
        (None, None, Some(json)) => Ok(SecretsLocation::Inline(json)),
        (None, None, None) => Err(ConfigError::new(
            "SECRET_ID",
            "is not set (the Secrets Manager secret's name or ARN; locally SECRETS_FILE or SECRETS_JSON)",
        )),
        _ => Err(ConfigError::new(
            "SECRET_ID",
            "conflicts: set exactly one of SECRET_ID, SECRETS_FILE and SECRETS_JSON",
        )),
    }
}

/// Where the user mappings are: `TABLE_NAME` (DynamoDB), or `STORE=memory` (local only).
fn store_location(env: &Env<'_>) -> Result<StoreLocation, ConfigError> {
    match (env.optional("STORE").as_deref(), env.optional("TABLE_NAME")) {
        (Some("memory"), None) => Ok(StoreLocation::Memory),
        (Some("memory"), Some(_)) => Err(ConfigError::new(
            "STORE",
            "is memory but TABLE_NAME is set too; unset one",
        )),
        (None | Some("dynamodb"), Some(table_name)) => Ok(StoreLocation::DynamoDb { table_name }),
        (None | Some("dynamodb"), None) => Err(ConfigError::new(
            "TABLE_NAME",
            "is not set (the DynamoDB table of user mappings)",
        )),
        (Some(other), _) => Err(ConfigError::new(
            "STORE",
            format!("must be dynamodb or memory, got {other:?}"),
        )),
    }
}

/// `ALLOWED_SCOPES`, `SENSITIVE_SCOPES` (additions only) and `DEFAULT_SCOPES` (within the
/// allowed ones).
fn scope_settings(env: &Env<'_>) -> Result<(Scopes, Scopes, Scopes), ConfigError> {
    let allowed = env.scopes("ALLOWED_SCOPES", DEFAULT_ALLOWED_SCOPES)?;
    let sensitive = sensitive_additions(env.optional("SENSITIVE_SCOPES"))?;
    let default = env.scopes("DEFAULT_SCOPES", "customers accounts")?;
    if let Some(outside) = default.outside(&allowed).next() {
        return Err(ConfigError::new(
            "DEFAULT_SCOPES",
            format!(
                "has {:?}, which ALLOWED_SCOPES does not allow",
                outside.as_str()
            ),
        ));
    }
    Ok((allowed, sensitive, default))
}

/// `UPGRADABLE_SCOPES`: scopes Unit's components may upgrade a token to; each must be allowed.
fn upgradable_scopes(env: &Env<'_>, allowed: &Scopes) -> Result<Scopes, ConfigError> {
    let upgradable = env.scopes("UPGRADABLE_SCOPES", "")?;
    if let Some(outside) = upgradable.outside(allowed).next() {
        return Err(ConfigError::new(
            "UPGRADABLE_SCOPES",
            format!(
                "has {:?}, which ALLOWED_SCOPES does not allow",
                outside.as_str()
            ),
        ));
    }
    Ok(upgradable)
}

/// `SESSION_CHECK` (`all`, the default, `sensitive` or `local`), or the variable it replaced,
/// `SENSITIVE_SESSION_CHECK` (`stytch` read as `sensitive`, `local`); not both.
fn session_check(
    current: Option<String>,
    legacy: Option<String>,
) -> Result<SessionCheck, ConfigError> {
    match (current.as_deref(), legacy.as_deref()) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            "SENSITIVE_SESSION_CHECK",
            "is replaced by SESSION_CHECK; set only SESSION_CHECK",
        )),
        (None | Some("all"), None) => Ok(SessionCheck::All),
        (Some("sensitive"), None) | (None, Some("stytch")) => Ok(SessionCheck::Sensitive),
        (Some("local"), None) | (None, Some("local")) => Ok(SessionCheck::Local),
        (Some(other), None) => Err(ConfigError::new(
            "SESSION_CHECK",
            format!("must be all, sensitive or local, got {other:?}"),
        )),
        (None, Some(other)) => Err(ConfigError::new(
            "SENSITIVE_SESSION_CHECK",
            format!("must be stytch or local (better: SESSION_CHECK), got {other:?}"),
        )),
    }
}

/// `SENSITIVE_SCOPES`: scopes added to the sensitive set. It cannot take one away: a name
/// written as a removal (`-cards-write`, `!payments-write`) stops start-up.
fn sensitive_additions(raw: Option<String>) -> Result<Scopes, ConfigError> {
    let mut scopes = Vec::new();
    for name in raw
        .iter()
        .flat_map(|r| r.split([' ', ',']))
        .filter(|s| !s.is_empty())
    {
        if name.starts_with(['-', '!']) {
            return Err(ConfigError::new(
                "SENSITIVE_SCOPES",
                format!(
                    "has {name:?}: SENSITIVE_SCOPES only adds scopes to the sensitive set; every scope but {} always needs a step-up",
                    READ_ONLY_SCOPES.join(" ")
                ),
            ));
        }
        let scope = Scope::parse(name).map_err(|_| {
            ConfigError::new(
                "SENSITIVE_SCOPES",
                format!("has {name:?}, which is not a Unit scope name"),
            )
        })?;
        scopes.push(scope);
    }
    Ok(scopes.into_iter().collect())
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// A set, non-blank value.
    fn optional(&self, var: &str) -> Option<String> {
        (self.0)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, var: &'static str) -> Result<String, ConfigError> {
        self.optional(var)
            .ok_or_else(|| ConfigError::new(var, "is not set"))
    }

    fn number(&self, var: &'static str, default: u32) -> Result<u32, ConfigError> {
        match self.optional(var) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| ConfigError::new(var, format!("must be a whole number, got {v:?}"))),
        }
    }

    /// A whole number within `range`; `message` says what the range is.
    fn number_in(
        &self,
        var: &'static str,
        default: u32,
        range: std::ops::RangeInclusive<u32>,
        message: &'static str,
    ) -> Result<u32, ConfigError> {
        let n = self.number(var, default)?;
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(ConfigError::new(var, message))
        }
    }

    /// Milliseconds, at least `min`.
    fn millis_in(
        &self,
        var: &'static str,
        default: u32,
        min: u32,
        message: &'static str,
    ) -> Result<Duration, ConfigError> {
        self.number_in(var, default, min..=u32::MAX, message)
            .map(|ms| Duration::from_millis(ms.into()))
    }

    fn seconds(&self, var: &'static str, default: u32) -> Result<Duration, ConfigError> {
        self.number(var, default)
            .map(|s| Duration::from_secs(s.into()))
    }

    /// An http(s) URL without a trailing slash; a path (a company proxy) is kept.
    fn url(&self, var: &'static str) -> Result<Option<String>, ConfigError> {
        let Some(v) = self.optional(var) else {
            return Ok(None);
        };
        let parsed = http::Uri::try_from(v.as_str())
            .map_err(|e| ConfigError::new(var, format!("is not a URL ({e}): {v:?}")))?;
        match (parsed.scheme_str(), parsed.host()) {
            (Some("http" | "https"), Some(_)) if parsed.query().is_none() => {
                Ok(Some(v.trim_end_matches('/').to_owned()))
            }
            _ => Err(ConfigError::new(
                var,
                format!("must be an http(s) URL without a query, got {v:?}"),
            )),
        }
    }

    /// `N/SECONDS`: at most N per window of SECONDS.
    fn rate_limit(&self, var: &'static str, default: &str) -> Result<RateLimit, ConfigError> {
        let raw = self.optional(var).unwrap_or_else(|| default.to_owned());
        let parsed = raw.split_once('/').and_then(|(max, window)| {
            Some((
                max.trim().parse::<u32>().ok()?,
                window.trim().parse::<u32>().ok()?,
            ))
        });
        match parsed {
            Some((max, window)) if max >= 1 && window >= 1 => Ok(RateLimit {
                max,
                window: Duration::from_secs(window.into()),
            }),
            _ => Err(ConfigError::new(
                var,
                format!("must be COUNT/SECONDS with both at least 1 (e.g. 30/600), got {raw:?}"),
            )),
        }
    }

    /// Step-up factor names, space- or comma-separated.
    fn step_up_factors(&self, var: &'static str) -> Result<BTreeSet<StepUpFactor>, ConfigError> {
        let raw = self.optional(var).unwrap_or_else(|| "totp".to_owned());
        let mut factors = BTreeSet::new();
        for name in raw.split([' ', ',']).filter(|s| !s.is_empty()) {
            factors.insert(match name {
                "totp" => StepUpFactor::Totp,
                "webauthn" => StepUpFactor::Webauthn,
                "otp" => StepUpFactor::Otp,
                "email_otp" => StepUpFactor::EmailOtp,
                other => {
                    return Err(ConfigError::new(
                        var,
                        format!(
                            "has {other:?}; the step-up factors are totp, webauthn, otp (SMS, WhatsApp) and email_otp"
                        ),
                    ));
                }
            });
        }
        if factors.is_empty() {
            return Err(ConfigError::new(var, "names no factor"));
        }
        Ok(factors)
    }

    fn scopes(&self, var: &'static str, default: &str) -> Result<Scopes, ConfigError> {
        let raw = self.optional(var).unwrap_or_else(|| default.to_owned());
        Scopes::parse(&raw.replace(',', " ")).map_err(|(bad, _)| {
            ConfigError::new(var, format!("has {bad:?}, which is not a Unit scope name"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const BASE: &[(&str, &str)] = &[
        ("STYTCH_PROJECT_ID", "project-test-1"),
        ("UNIT_API_URL", "https://api.s.unit.sh/"),
        ("SECRET_ID", "bridge/secrets"),
        ("TABLE_NAME", "bridge"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut vars: Vec<_> = BASE
            .iter()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
            .copied()
            .collect();
        vars.extend(extra.iter().filter(|(_, v)| !v.is_empty()));
        vars
    }

    #[test]
    fn defaults_follow_the_project_id() {
        let c = config(BASE).unwrap();
        assert_eq!(c.stytch_api_url, "https://test.stytch.com");
        assert_eq!(c.unit_api_url, "https://api.s.unit.sh");
        assert_eq!(
            c.secrets,
            SecretsLocation::SecretsManager {
                secret_id: "bridge/secrets".into(),
                ttl: Duration::from_secs(300)
            }
        );
        assert_eq!(
            c.store,
            StoreLocation::DynamoDb {
                table_name: "bridge".into()
            }
        );
        assert_eq!(c.step_up.max_age, Duration::from_secs(300));
        assert!(c.tokens.is_sensitive("cards-write"));
        assert!(!c.tokens.is_sensitive("cards"));
        assert!(c.tokens.allowed_scopes.contains("customers"));
        let live = config(&with(&[("STYTCH_PROJECT_ID", "project-live-2")])).unwrap();
        assert_eq!(live.stytch_api_url, "https://api.stytch.com");
        assert_eq!(c.step_up.factors, BTreeSet::from([StepUpFactor::Totp]));
        assert_eq!(c.session.check, SessionCheck::All);
        assert_eq!(
            c.onboarding.unit_event_max_age,
            Duration::from_secs(7 * 24 * 3600)
        );
        assert_eq!(c.tokens.sensitive_max_expires_in, 900);
        assert_eq!(c.tokens.card_max_expires_in, 300);
        assert!(
            c.tokens.upgradable_scopes.is_empty(),
            "components' upgrades are off"
        );
        assert_eq!(
            (c.tokens.per_user.max, c.tokens.per_user.window.as_secs()),
            (30, 600)
        );
        assert_eq!(c.onboarding.applications_per_user.max, 3);
    }

    #[test]
    fn a_project_on_the_other_environments_host_stops_start_up() {
        let err = config(&with(&[
            ("STYTCH_PROJECT_ID", "project-live-2"),
            ("STYTCH_API_URL", "https://test.stytch.com"),
        ]))
        .unwrap_err();
        assert_eq!(err.var, "STYTCH_API_URL", "{err}");
        let err = config(&with(&[("STYTCH_API_URL", "https://api.stytch.com/")])).unwrap_err();
        assert_eq!(err.var, "STYTCH_API_URL", "{err}");
        // Any other host (a proxy, a sandbox) is the operator's choice.
        config(&with(&[("STYTCH_API_URL", "http://127.0.0.1:3001")])).unwrap();
        let factors = config(&with(&[("STEP_UP_FACTORS", "webauthn, otp totp")])).unwrap();
        assert_eq!(factors.step_up.factors.len(), 3);
    }

    #[test]
    fn a_missing_variable_is_named() {
        for var in [
            "STYTCH_PROJECT_ID",
            "UNIT_API_URL",
            "SECRET_ID",
            "TABLE_NAME",
        ] {
            let err = config(&with(&[(var, "")])).unwrap_err();
            assert_eq!(err.var, var);
            assert!(err.to_string().contains(var), "{err}");
        }
    }

    #[test]
    fn malformed_values_are_named() {
        let cases: &[(&'static str, &'static str)] = &[
            ("STYTCH_PROJECT_ID", "abc"),
            ("UNIT_API_URL", "ftp://x"),
            ("UNIT_API_URL", "not a url"),
            ("STYTCH_API_URL", "http://h/?a=b"),
            ("STEP_UP_MAX_AGE", "five"),
            ("STEP_UP_MAX_AGE", "-1"),
            ("UPSTREAM_MAX_ATTEMPTS", "0"),
            ("UPSTREAM_TIMEOUT_MS", "0"),
            ("SENSITIVE_SESSION_CHECK", "remote"),
            ("SESSION_CHECK", "stytch"),
            ("UNIT_EVENT_MAX_AGE_SECONDS", "86400"),
            ("DAILY_APPLICATIONS_CAP", "0"),
            ("TOTP_DAILY_CEILING", "0"),
            ("TOTP_ENROLMENTS_PER_USER", "10"),
            ("SENSITIVE_SCOPES", "-cards-write"),
            ("SENSITIVE_SCOPES", "!payments-write"),
            ("SENSITIVE_TOKEN_MAX_EXPIRES_IN", "0"),
            ("STEP_UP_FACTORS", "sms"),
            ("STEP_UP_FACTORS", ","),
            ("APPLICATIONS_PER_USER", "3"),
            ("TOKENS_PER_USER", "0/600"),
            ("TOTP_MAX_FAILURES", "0"),
            ("DEFAULT_SCOPES", "webhooks-write"),
            ("DEFAULT_TOKEN_EXPIRES_IN", "90000"),
            ("SENSITIVE_SCOPES", "cards Write"),
            ("STORE", "redis"),
            ("CARD_TOKEN_MAX_EXPIRES_IN", "0"),
            ("CARD_TOKEN_MAX_EXPIRES_IN", "86401"),
            ("UPGRADABLE_SCOPES", "webhooks-write"),
            ("UPGRADABLE_SCOPES", "Cards"),
        ];
        for (var, value) in cases {
            let err = config(&with(&[(var, value)])).unwrap_err();
            assert_eq!(&err.var, var, "{var}={value}: {err}");
        }
    }

    /// Only the built-in read-only scopes are minted without a step-up; no variable can make
    /// another scope non-sensitive.
    #[test]
    fn every_scope_but_the_known_read_only_ones_is_sensitive() {
        for sensitive in [
            "",
            "cards-write",
            "customers",
            "payments-write counterparties-write",
        ] {
            let c = config(&with(&[("SENSITIVE_SCOPES", sensitive)])).unwrap();
            for scope in [
                "cards-write",
                "cards-sensitive",
                "payments-write",
                "payments-write-counterparty",
                "accounts-write",
                "customer-token-write",
                "customer-token",
                "webhooks-write",
                "some-future-scope",
            ] {
                assert!(
                    c.tokens.is_sensitive(scope),
                    "{scope} with SENSITIVE_SCOPES={sensitive:?}"
                );
            }
            assert_eq!(c.tokens.is_sensitive("customers"), sensitive == "customers");
            assert!(!c.tokens.is_sensitive("transactions"));
        }
    }

    #[test]
    fn the_session_check_covers_every_mint_by_default_and_reads_the_old_variable() {
        let check =
            |vars: &[(&'static str, &'static str)]| config(&with(vars)).map(|c| c.session.check);
        assert_eq!(check(&[]), Ok(SessionCheck::All));
        assert_eq!(
            check(&[("SESSION_CHECK", "sensitive")]),
            Ok(SessionCheck::Sensitive)
        );
        assert_eq!(
            check(&[("SENSITIVE_SESSION_CHECK", "stytch")]),
            Ok(SessionCheck::Sensitive)
        );
        assert_eq!(
            check(&[("SENSITIVE_SESSION_CHECK", "local")]),
            Ok(SessionCheck::Local)
        );
        assert!(
            check(&[
                ("SESSION_CHECK", "all"),
                ("SENSITIVE_SESSION_CHECK", "local")
            ])
            .is_err()
        );
        assert!(SessionCheck::All.confirms(false));
        assert!(!SessionCheck::Sensitive.confirms(false));
        assert!(!SessionCheck::Local.confirms(true));
    }

    /// SECURITY.md's bound: the default ceiling keeps a password thief under 1 % a year.
    #[test]
    fn the_default_totp_ceiling_keeps_a_years_guessing_under_one_percent() {
        let accepted_per_guess = 3.0;
        let guesses = 365.0 * f64::from(DEFAULT_TOTP_DAILY_CEILING);
        let success = 1.0 - (1.0 - accepted_per_guess / 1e6_f64).powf(guesses);
        assert!(success < 0.01, "{success}");
        assert!(success > 0.005, "not needlessly strict: {success}");
    }

    #[test]
    fn secrets_and_store_sources_are_exclusive() {
        let err = config(&with(&[("SECRETS_FILE", "/tmp/s.json")])).unwrap_err();
        assert_eq!(err.var, "SECRET_ID");
        let c = config(&with(&[
            ("SECRET_ID", ""),
            ("SECRETS_JSON", "{}"),
            ("TABLE_NAME", ""),
            ("STORE", "memory"),
        ]))
        .unwrap();
        assert_eq!(c.secrets, SecretsLocation::Inline("{}".into()));
        assert_eq!(c.store, StoreLocation::Memory);
        assert_eq!(
            config(&with(&[("STORE", "memory")])).unwrap_err().var,
            "STORE"
        );
    }

    #[test]
    fn a_base_url_keeps_its_path_and_scopes_parse_from_lists() {
        let c = config(&with(&[
            ("STYTCH_API_URL", "https://proxy.corp/stytch/"),
            ("ALLOWED_SCOPES", "customers, accounts  cards"),
        ]))
        .unwrap();
        assert_eq!(c.stytch_api_url, "https://proxy.corp/stytch");
        assert_eq!(c.tokens.allowed_scopes.len(), 3);
    }
}
