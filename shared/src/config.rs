//! Typed configuration from environment variables.
//!
//! Every function reads the same variables (see the README's configuration table). A missing or
//! malformed value stops start-up with one line that names the variable.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Clock-skew leeway for JWT `exp`/`nbf`/`iat`.
    pub jwt_leeway: Duration,
    /// Minimum time between two JWKS fetches caused by an unknown `kid`.
    pub jwks_refetch_interval: Duration,
    /// How long a fetched JWKS is trusted before it is refreshed on next use.
    pub jwks_ttl: Duration,
    /// How recent a `totp` factor must be for a sensitive scope.
    pub step_up_max_age: Duration,
    /// `session_duration_minutes` a step-up extends the Stytch session to.
    pub step_up_session_minutes: u32,
    /// Failed TOTP or recovery-code checks allowed per user in a lockout window.
    pub totp_max_failures: u32,
    /// The lockout window (seconds from the first failed check).
    pub totp_lockout: Duration,
    /// Unit scopes a customer token may carry.
    pub allowed_scopes: BTreeSet<String>,
    /// Unit scopes that need a recent TOTP step-up.
    pub sensitive_scopes: BTreeSet<String>,
    /// Scopes of a customer token when the request names none.
    pub default_scopes: BTreeSet<String>,
    /// Lifetime of a customer token when the request names none (seconds, at most 86400).
    pub default_token_expires_in: u32,
    /// A session JWT with less life left than this is not sent to Unit (401 `session_jwt_expiring`).
    pub jwt_min_remaining: Duration,
    /// Timeout of one upstream HTTP attempt.
    pub upstream_timeout: Duration,
    /// Attempts per upstream call (first try included) for retryable failures.
    pub upstream_max_attempts: u32,
}

/// Scopes that need 2FA at Unit (docs/unit-api.md §5 and its open question 3).
pub const DEFAULT_SENSITIVE_SCOPES: &str =
    "cards-write cards-sensitive cards-sensitive-write payments-write counterparties-write";

/// Scopes a frontend may ask for by default: the customer-facing read and write scopes of Unit.
pub const DEFAULT_ALLOWED_SCOPES: &str = "customers accounts cards cards-write cards-sensitive \
     cards-sensitive-write transactions payments payments-write counterparties \
     counterparties-write authorizations statements";

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let stytch_project_id = env.required("STYTCH_PROJECT_ID")?;
        if !stytch_project_id.starts_with("project-") {
            return Err(ConfigError::new(
                "STYTCH_PROJECT_ID",
                format!(
                    "is not a Stytch project id (project-test-... or project-live-...): {stytch_project_id:?}"
                ),
            ));
        }
        let default_stytch = if stytch_project_id.starts_with("project-live-") {
            "https://api.stytch.com"
        } else {
            "https://test.stytch.com"
        };
        let stytch_api_url = env
            .url("STYTCH_API_URL")?
            .unwrap_or_else(|| default_stytch.into());
        let unit_api_url = env.url("UNIT_API_URL")?.ok_or_else(|| {
            ConfigError::new(
                "UNIT_API_URL",
                "is not set (e.g. https://api.s.unit.sh for Unit's sandbox)",
            )
        })?;

        let secrets = match (
            env.optional("SECRET_ID"),
            env.optional("SECRETS_FILE"),
            env.optional("SECRETS_JSON"),
        ) {
            (Some(secret_id), None, None) => SecretsLocation::SecretsManager {
                secret_id,
                ttl: env.seconds("SECRETS_TTL_SECONDS", 300)?,
            },
            (None, Some(path), None) => SecretsLocation::File(PathBuf::from(path)),
            (None, None, Some(json)) => SecretsLocation::Inline(json),
            (None, None, None) => {
                return Err(ConfigError::new(
                    "SECRET_ID",
                    "is not set (the Secrets Manager secret's name or ARN; locally SECRETS_FILE or SECRETS_JSON)",
                ));
            }
            _ => {
                return Err(ConfigError::new(
                    "SECRET_ID",
                    "conflicts: set exactly one of SECRET_ID, SECRETS_FILE and SECRETS_JSON",
                ));
            }
        };

        let store = match (env.optional("STORE").as_deref(), env.optional("TABLE_NAME")) {
            (Some("memory"), None) => StoreLocation::Memory,
            (Some("memory"), Some(_)) => {
                return Err(ConfigError::new(
                    "STORE",
                    "is memory but TABLE_NAME is set too; unset one",
                ));
            }
            (None | Some("dynamodb"), Some(table_name)) => StoreLocation::DynamoDb { table_name },
            (None | Some("dynamodb"), None) => {
                return Err(ConfigError::new(
                    "TABLE_NAME",
                    "is not set (the DynamoDB table of user mappings)",
                ));
            }
            (Some(other), _) => {
                return Err(ConfigError::new(
                    "STORE",
                    format!("must be dynamodb or memory, got {other:?}"),
                ));
            }
        };

        let allowed_scopes = env.scopes("ALLOWED_SCOPES", DEFAULT_ALLOWED_SCOPES)?;
        let sensitive_scopes = env.scopes("SENSITIVE_SCOPES", DEFAULT_SENSITIVE_SCOPES)?;
        let default_scopes = env.scopes("DEFAULT_SCOPES", "customers accounts")?;
        if let Some(outside) = default_scopes.iter().find(|s| !allowed_scopes.contains(*s)) {
            return Err(ConfigError::new(
                "DEFAULT_SCOPES",
                format!("has {outside:?}, which ALLOWED_SCOPES does not allow"),
            ));
        }
        let default_token_expires_in = env.number("DEFAULT_TOKEN_EXPIRES_IN", 3600)?;
        if !(1..=86_400).contains(&default_token_expires_in) {
            return Err(ConfigError::new(
                "DEFAULT_TOKEN_EXPIRES_IN",
                "must be between 1 and 86400 seconds",
            ));
        }
        let upstream_max_attempts = env.number("UPSTREAM_MAX_ATTEMPTS", 3)?;
        if !(1..=10).contains(&upstream_max_attempts) {
            return Err(ConfigError::new(
                "UPSTREAM_MAX_ATTEMPTS",
                "must be between 1 and 10",
            ));
        }
        let session_minutes = env.number("STEP_UP_SESSION_MINUTES", 60)?;
        if !(5..=527_040).contains(&session_minutes) {
            return Err(ConfigError::new(
                "STEP_UP_SESSION_MINUTES",
                "must be between 5 and 527040 (Stytch's range)",
            ));
        }
        let totp_max_failures = env.number("TOTP_MAX_FAILURES", 5)?;
        if totp_max_failures == 0 {
            return Err(ConfigError::new("TOTP_MAX_FAILURES", "must be at least 1"));
        }
        let upstream_timeout =
            Duration::from_millis(env.number("UPSTREAM_TIMEOUT_MS", 5000)?.into());
        if upstream_timeout.is_zero() {
            return Err(ConfigError::new(
                "UPSTREAM_TIMEOUT_MS",
                "must be greater than 0",
            ));
        }

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
            secrets,
            store,
            jwt_leeway: env.seconds("JWT_LEEWAY_SECONDS", 10)?,
            jwks_refetch_interval: env.seconds("JWKS_REFETCH_INTERVAL_SECONDS", 30)?,
            jwks_ttl: env.seconds("JWKS_TTL_SECONDS", 3600)?,
            step_up_max_age: env.seconds("STEP_UP_MAX_AGE", 300)?,
            step_up_session_minutes: session_minutes,
            totp_max_failures,
            totp_lockout: env.seconds("TOTP_LOCKOUT_SECONDS", 900)?,
            allowed_scopes,
            sensitive_scopes,
            default_scopes,
            default_token_expires_in,
            jwt_min_remaining: env.seconds("JWT_MIN_REMAINING_SECONDS", 30)?,
            upstream_timeout,
            upstream_max_attempts,
        })
    }
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

    fn scopes(&self, var: &'static str, default: &str) -> Result<BTreeSet<String>, ConfigError> {
        let raw = self.optional(var).unwrap_or_else(|| default.to_owned());
        let scopes: BTreeSet<String> = raw
            .split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(bad) = scopes
            .iter()
            .find(|s| !s.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        {
            return Err(ConfigError::new(
                var,
                format!("has {bad:?}, which is not a Unit scope name"),
            ));
        }
        Ok(scopes)
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
        assert_eq!(c.step_up_max_age, Duration::from_secs(300));
        assert!(c.sensitive_scopes.contains("cards-write"));
        assert!(c.allowed_scopes.contains("customers"));
        let live = config(&with(&[("STYTCH_PROJECT_ID", "project-live-2")])).unwrap();
        assert_eq!(live.stytch_api_url, "https://api.stytch.com");
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
            ("STEP_UP_SESSION_MINUTES", "1"),
            ("TOTP_MAX_FAILURES", "0"),
            ("DEFAULT_SCOPES", "webhooks-write"),
            ("DEFAULT_TOKEN_EXPIRES_IN", "90000"),
            ("SENSITIVE_SCOPES", "cards Write"),
            ("STORE", "redis"),
        ];
        for (var, value) in cases {
            let err = config(&with(&[(var, value)])).unwrap_err();
            assert_eq!(&err.var, var, "{var}={value}: {err}");
        }
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
        assert_eq!(c.allowed_scopes.len(), 3);
    }
}
