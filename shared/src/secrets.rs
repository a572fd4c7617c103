//! The service's secrets: one JSON document, from AWS Secrets Manager (cached with a TTL so a
//! rotation needs no redeploy) or, locally, from a file or an environment variable.
//!
//! ```json
//! {"stytch_project_id": "project-test-...", "stytch_secret": "secret-test-...",
//!  "stytch_webhook_secret": "whsec_...", "unit_api_token": "v2.public...", "unit_webhook_token": "..."}
//! ```
//! `stytch_project_id` is optional; when present it must equal `STYTCH_PROJECT_ID`, which catches a
//! secret paired with the wrong deployment. `stytch_webhook_secret_previous` and
//! `unit_webhook_token_previous` are optional: during a rotation the old key keeps verifying.
//!
//! No value that could have been published is accepted (SECURITY.md, "No usable secret is
//! deployed"): a blank field, a known placeholder, a Svix key shorter than 24 bytes or a Unit
//! webhook token shorter than 32 characters stops start-up with a line naming the field only.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};
use tokio::time::Instant;

use crate::webhook::SvixSecret;

/// A string that never shows in `Debug` or logs.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself: use only where it is sent or used as a key.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Serialises the value itself: only for request bodies sent upstream, never for logs.
impl serde::Serialize for SecretString {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}

/// The secret values the service needs.
#[derive(Debug, Clone)]
pub struct Secrets {
    /// Stytch project secret (HTTP Basic password).
    pub stytch_secret: SecretString,
    /// Svix signing secret of the Stytch webhook endpoint (`whsec_...`), decoded.
    pub stytch_webhook_secret: SvixSecret,
    /// Unit org API token (Bearer).
    pub unit_api_token: SecretString,
    /// Token Unit signs its webhooks with.
    pub unit_webhook_token: SecretString,
    /// The Svix secret being rotated out, still accepted while it is set.
    pub stytch_webhook_secret_previous: Option<SvixSecret>,
    /// The Unit webhook token being rotated out, still accepted while it is set.
    pub unit_webhook_token_previous: Option<SecretString>,
}

/// The shortest Svix signing key accepted, in bytes (Svix issues 24-byte keys).
pub const MIN_SVIX_KEY_BYTES: usize = 24;

/// The shortest Unit webhook token accepted, in characters.
pub const MIN_UNIT_WEBHOOK_TOKEN_CHARS: usize = 32;

/// Values that were published as placeholders (by this project's template and README, or as the
/// usual stand-ins), compared case-insensitively; any value containing `REPLACE` or `...` is one
/// too.
const PLACEHOLDERS: &[&str] = &[
    "replace",
    "replace_me",
    "replaceme",
    "changeme",
    "change_me",
    "placeholder",
    "todo",
    "secret",
    "token",
    "xxx",
    "whsec_ukvqtefdrq==",
];

/// Whether `value` is blank or a published placeholder.
fn is_placeholder(value: &str) -> bool {
    let v = value.trim().to_ascii_lowercase();
    v.is_empty()
        || PLACEHOLDERS.contains(&v.as_str())
        || v.contains("replace")
        || v.contains("...")
        || v.chars()
            .all(|c| c == 'x' || c == '*' || c == '-' || c == '_')
}

/// A Svix signing secret as Stytch's dashboard gives it: `whsec_` and the base64 of at least
/// [`MIN_SVIX_KEY_BYTES`] bytes.
fn svix_key(field: &str, value: &SecretString) -> Result<SvixSecret, String> {
    let text = value.expose().trim();
    let Some(encoded) = text.strip_prefix("whsec_") else {
        return Err(format!("field `{field}` must start with whsec_"));
    };
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded)
        .map_err(|_| format!("field `{field}` must be whsec_ followed by base64"))?;
    if bytes.len() < MIN_SVIX_KEY_BYTES {
        return Err(format!(
            "field `{field}` holds a key of {} bytes; at least {MIN_SVIX_KEY_BYTES} are required",
            bytes.len()
        ));
    }
    SvixSecret::parse(text).map_err(|e| format!("field `{field}`: {e}"))
}

#[derive(Deserialize)]
struct RawSecrets {
    stytch_project_id: Option<String>,
    stytch_secret: SecretString,
    stytch_webhook_secret: SecretString,
    unit_api_token: SecretString,
    unit_webhook_token: SecretString,
    #[serde(default)]
    stytch_webhook_secret_previous: Option<SecretString>,
    #[serde(default)]
    unit_webhook_token_previous: Option<SecretString>,
}

/// Why the secrets could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The secret's JSON is malformed or lacks a field (serde names the field).
    #[error("secret {origin} is invalid: {problem}")]
    Invalid { origin: String, problem: String },
    /// Reading the secret failed (Secrets Manager or the file).
    #[error("secret {origin} could not be read: {problem}")]
    Unavailable { origin: String, problem: String },
}

impl Secrets {
    /// Parses and checks the secret JSON; `origin` names where it came from in errors.
    pub fn parse(json: &str, origin: &str, expected_project_id: &str) -> Result<Self, SecretError> {
        let invalid = |problem: String| SecretError::Invalid {
            origin: origin.to_owned(),
            problem,
        };
        // serde_json's own message names a missing field and never echoes values.
        let raw: RawSecrets = serde_json::from_str(json).map_err(|e| invalid(e.to_string()))?;
        if let Some(pid) = raw.stytch_project_id.as_deref()
            && pid != expected_project_id
        {
            return Err(invalid(format!(
                "stytch_project_id is {pid:?} but STYTCH_PROJECT_ID is {expected_project_id:?}"
            )));
        }
        check_required(&raw).map_err(invalid)?;
        let stytch_webhook_secret =
            svix_key("stytch_webhook_secret", &raw.stytch_webhook_secret).map_err(invalid)?;
        let stytch_webhook_secret_previous = match &raw.stytch_webhook_secret_previous {
            Some(v) if !v.expose().trim().is_empty() => {
                Some(svix_key("stytch_webhook_secret_previous", v).map_err(invalid)?)
            }
            _ => None,
        };
        let unit_webhook_token_previous = raw
            .unit_webhook_token_previous
            .filter(|v| !v.expose().trim().is_empty());
        check_unit_webhook_token("unit_webhook_token", &raw.unit_webhook_token).map_err(invalid)?;
        if let Some(token) = &unit_webhook_token_previous {
            check_unit_webhook_token("unit_webhook_token_previous", token).map_err(invalid)?;
        }
        Ok(Self {
            stytch_secret: raw.stytch_secret,
            stytch_webhook_secret,
            unit_api_token: raw.unit_api_token,
            unit_webhook_token: raw.unit_webhook_token,
            stytch_webhook_secret_previous,
            unit_webhook_token_previous,
        })
    }
}

/// Every required field is set, and none holds a placeholder.
fn check_required(raw: &RawSecrets) -> Result<(), String> {
    for (field, value) in [
        ("stytch_secret", &raw.stytch_secret),
        ("stytch_webhook_secret", &raw.stytch_webhook_secret),
        ("unit_api_token", &raw.unit_api_token),
        ("unit_webhook_token", &raw.unit_webhook_token),
    ] {
        if value.expose().trim().is_empty() {
            return Err(format!("field `{field}` is empty"));
        }
        if is_placeholder(value.expose()) {
            return Err(format!(
                "field `{field}` holds a placeholder; put the real value in the secret"
            ));
        }
    }
    Ok(())
}

/// A Unit webhook token is long enough to resist guessing, and no placeholder.
fn check_unit_webhook_token(field: &str, token: &SecretString) -> Result<(), String> {
    if token.expose().chars().count() < MIN_UNIT_WEBHOOK_TOKEN_CHARS
        || is_placeholder(token.expose())
    {
        return Err(format!(
            "field `{field}` must be at least {MIN_UNIT_WEBHOOK_TOKEN_CHARS} characters and no placeholder"
        ));
    }
    Ok(())
}

/// Where handlers get the current secrets from.
#[async_trait]
pub trait SecretSource: Send + Sync {
    /// The current secrets (cached; refreshed when stale).
    async fn current(&self) -> Result<Arc<Secrets>, SecretError>;
}

/// Secrets read once (local file or environment variable): they never change while running.
pub struct StaticSecrets(Arc<Secrets>);

impl StaticSecrets {
    /// Wraps already-parsed secrets.
    pub fn new(secrets: Secrets) -> Self {
        Self(Arc::new(secrets))
    }

    /// Reads and parses a JSON file.
    pub fn from_file(path: &std::path::Path, project_id: &str) -> Result<Self, SecretError> {
        let origin = format!("file {}", path.display());
        let json = std::fs::read_to_string(path).map_err(|e| SecretError::Unavailable {
            origin: origin.clone(),
            problem: e.to_string(),
        })?;
        Secrets::parse(&json, &origin, project_id).map(Self::new)
    }
}

/// A source of fixed secrets with these two credentials, for the clients' unit tests.
#[cfg(test)]
pub(crate) fn test_source(stytch_secret: &str, unit_api_token: &str) -> Arc<dyn SecretSource> {
    let json = serde_json::json!({
        "stytch_secret": stytch_secret,
        "stytch_webhook_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "unit_api_token": unit_api_token,
        "unit_webhook_token": "unit-webhook-token-test-0123456789abcdef",
    });
    let secrets = Secrets::parse(&json.to_string(), "test", "project-test-1")
        .unwrap_or_else(|e| panic!("test secrets: {e}"));
    Arc::new(StaticSecrets::new(secrets))
}

#[async_trait]
impl SecretSource for StaticSecrets {
    async fn current(&self) -> Result<Arc<Secrets>, SecretError> {
        Ok(self.0.clone())
    }
}

/// Fetches the raw secret string; the seam between the TTL cache and Secrets Manager.
#[async_trait]
pub trait RawSecretFetcher: Send + Sync {
    /// A human-readable name of the secret for errors (never its value).
    fn origin(&self) -> String;
    /// The secret's current JSON string.
    async fn fetch(&self) -> Result<String, SecretError>;
}

/// Secrets Manager `GetSecretValue` of one secret.
#[cfg(feature = "aws")]
pub struct SecretsManagerFetcher {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
}

#[cfg(feature = "aws")]
impl SecretsManagerFetcher {
    /// A fetcher for `secret_id` (name or ARN).
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
        }
    }
}

#[cfg(feature = "aws")]
#[async_trait]
impl RawSecretFetcher for SecretsManagerFetcher {
    fn origin(&self) -> String {
        format!("Secrets Manager {}", self.secret_id)
    }

    async fn fetch(&self) -> Result<String, SecretError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| SecretError::Unavailable {
                origin: self.origin(),
                problem: aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
            })?;
        out.secret_string.ok_or_else(|| SecretError::Invalid {
            origin: self.origin(),
            problem: "it has no SecretString (a binary secret is not supported)".into(),
        })
    }
}

struct Cached {
    secrets: Arc<Secrets>,
    /// When the next refresh is due.
    refresh_at: Instant,
}

/// A TTL cache in front of a [`RawSecretFetcher`]: fetched at init (a failure stops start-up),
/// refreshed on the first use after the TTL by one caller while the others keep the old value.
/// A failed refresh keeps serving the last good secrets and retries after a short pause, so a
/// Secrets Manager outage does not take the service down.
pub struct TtlSecretSource {
    fetcher: Box<dyn RawSecretFetcher>,
    project_id: String,
    ttl: Duration,
    cached: RwLock<Cached>,
    refreshing: Mutex<()>,
}

/// Pause before retrying a failed refresh.
const RETRY_FAILED_REFRESH_AFTER: Duration = Duration::from_secs(30);

impl TtlSecretSource {
    /// Fetches the secret now; fails if it cannot be fetched or parsed.
    pub async fn new(
        fetcher: Box<dyn RawSecretFetcher>,
        project_id: impl Into<String>,
        ttl: Duration,
    ) -> Result<Self, SecretError> {
        let project_id = project_id.into();
        let secrets = Secrets::parse(&fetcher.fetch().await?, &fetcher.origin(), &project_id)?;
        Ok(Self {
            fetcher,
            project_id,
            ttl,
            cached: RwLock::new(Cached {
                secrets: Arc::new(secrets),
                refresh_at: Instant::now() + ttl,
            }),
            refreshing: Mutex::new(()),
        })
    }
}

#[async_trait]
impl SecretSource for TtlSecretSource {
    async fn current(&self) -> Result<Arc<Secrets>, SecretError> {
        {
            let cached = self.cached.read().await;
            if Instant::now() < cached.refresh_at {
                return Ok(cached.secrets.clone());
            }
        }
        let Ok(_guard) = self.refreshing.try_lock() else {
            // Another caller is refreshing: use the current value rather than wait.
            return Ok(self.cached.read().await.secrets.clone());
        };
        let fetched = match self.fetcher.fetch().await {
            Ok(json) => Secrets::parse(&json, &self.fetcher.origin(), &self.project_id),
            Err(e) => Err(e),
        };
        let mut cached = self.cached.write().await;
        match fetched {
            Ok(secrets) => {
                cached.secrets = Arc::new(secrets);
                cached.refresh_at = Instant::now() + self.ttl;
            }
            Err(e) => {
                tracing::warn!(error = %e, "secret refresh failed; keeping the last good secrets");
                cached.refresh_at = Instant::now() + RETRY_FAILED_REFRESH_AFTER.min(self.ttl);
            }
        }
        Ok(cached.secrets.clone())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A valid secret JSON for tests; `n` varies the Stytch secret.
    pub(crate) fn secret_json(n: usize) -> String {
        serde_json::json!({
            "stytch_project_id": "project-test-1",
            "stytch_secret": format!("secret-test-{n}"),
            "stytch_webhook_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "unit_api_token": "v2.public.unit",
            "unit_webhook_token": "unit-webhook-token-0123456789abcdef",
        })
        .to_string()
    }

    #[test]
    fn a_missing_field_is_named_and_values_never_print() {
        let mut v: serde_json::Value = serde_json::from_str(&secret_json(1)).unwrap();
        v.as_object_mut().unwrap().remove("unit_api_token");
        let err = Secrets::parse(&v.to_string(), "test", "project-test-1").unwrap_err();
        assert!(
            err.to_string().contains("missing field `unit_api_token`"),
            "{err}"
        );
        let s = Secrets::parse(&secret_json(1), "test", "project-test-1").unwrap();
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("secret-test-1") && !debug.contains("v2.public"),
            "{debug}"
        );
    }

    #[test]
    fn a_secret_for_another_project_or_with_a_bad_webhook_secret_is_refused() {
        let err = Secrets::parse(&secret_json(1), "test", "project-test-2").unwrap_err();
        assert!(err.to_string().contains("stytch_project_id"), "{err}");
        let bad =
            secret_json(1).replace("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not*base64");
        let err = Secrets::parse(&bad, "test", "project-test-1").unwrap_err();
        assert!(err.to_string().contains("stytch_webhook_secret"), "{err}");
        let empty = secret_json(1).replace("unit-webhook-token-0123456789abcdef", " ");
        assert!(
            Secrets::parse(&empty, "t", "project-test-1")
                .unwrap_err()
                .to_string()
                .contains("unit_webhook_token")
        );
    }

    /// The template's old placeholders, blank fields, short keys: start-up is refused, the
    /// error names the field and never the value.
    #[test]
    fn placeholders_and_weak_webhook_keys_are_refused_naming_the_field_only() {
        let base: serde_json::Value = serde_json::from_str(&secret_json(1)).unwrap();
        let cases: &[(&str, &str)] = &[
            ("stytch_secret", "REPLACE"),
            ("stytch_secret", "  "),
            ("stytch_secret", "secret-test-..."),
            ("unit_api_token", "REPLACE"),
            ("unit_api_token", "v2.public..."),
            ("unit_webhook_token", "REPLACE"),
            ("unit_webhook_token", "short-token-of-31-characters-xx"),
            ("stytch_webhook_secret", "whsec_UkVQTEFDRQ=="),
            ("stytch_webhook_secret", "whsec_..."),
            // Base64 of 23 bytes: one short.
            (
                "stytch_webhook_secret",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa==",
            ),
            // The right length without the prefix.
            ("stytch_webhook_secret", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("stytch_webhook_secret_previous", "whsec_UkVQTEFDRQ=="),
            ("unit_webhook_token_previous", "too-short"),
        ];
        for (field, value) in cases {
            let mut v = base.clone();
            v[*field] = serde_json::json!(value);
            let err = Secrets::parse(&v.to_string(), "test", "project-test-1")
                .expect_err(&format!("{field}={value:?} must be refused"));
            let text = err.to_string();
            assert!(text.contains(&format!("`{field}`")), "{field}: {text}");
            if value.trim().len() > 3 {
                assert!(
                    !text.contains(value.trim()),
                    "the value is never printed: {text}"
                );
            }
        }
        // The old template's whole value, as a stack created before this release holds it.
        let old = r#"{"stytch_secret":"REPLACE","stytch_webhook_secret":"whsec_UkVQTEFDRQ==","unit_api_token":"REPLACE","unit_webhook_token":"REPLACE"}"#;
        assert!(Secrets::parse(old, "test", "project-test-1").is_err());
        // A rotation: both keys verify while the previous one is set.
        let mut rotating = base.clone();
        rotating["unit_webhook_token_previous"] =
            serde_json::json!("previous-unit-webhook-token-0123456789");
        rotating["stytch_webhook_secret_previous"] =
            serde_json::json!("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX");
        let s = Secrets::parse(&rotating.to_string(), "test", "project-test-1").unwrap();
        assert!(s.stytch_webhook_secret_previous.is_some());
        assert!(s.unit_webhook_token_previous.is_some());
    }

    struct Fake {
        calls: AtomicUsize,
        fail_after: usize,
    }

    #[async_trait]
    impl RawSecretFetcher for Fake {
        fn origin(&self) -> String {
            "fake".into()
        }
        async fn fetch(&self) -> Result<String, SecretError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if n > self.fail_after {
                return Err(SecretError::Unavailable {
                    origin: "fake".into(),
                    problem: "down".into(),
                });
            }
            Ok(secret_json(n))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_cache_refreshes_after_the_ttl_and_survives_a_failed_refresh() {
        let fake = Box::new(Fake {
            calls: AtomicUsize::new(0),
            fail_after: 2,
        });
        let source = TtlSecretSource::new(fake, "project-test-1", Duration::from_secs(300))
            .await
            .unwrap();
        assert_eq!(
            source.current().await.unwrap().stytch_secret.expose(),
            "secret-test-1"
        );
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(
            source.current().await.unwrap().stytch_secret.expose(),
            "secret-test-1"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            source.current().await.unwrap().stytch_secret.expose(),
            "secret-test-2"
        );
        // The third fetch fails: the last good value is served, and no refetch for 30 s.
        tokio::time::advance(Duration::from_secs(301)).await;
        assert_eq!(
            source.current().await.unwrap().stytch_secret.expose(),
            "secret-test-2"
        );
        assert_eq!(
            source.current().await.unwrap().stytch_secret.expose(),
            "secret-test-2"
        );
    }

    #[tokio::test]
    async fn start_up_fails_when_the_first_fetch_fails() {
        let fake = Box::new(Fake {
            calls: AtomicUsize::new(0),
            fail_after: 0,
        });
        let err = TtlSecretSource::new(fake, "project-test-1", Duration::from_secs(300))
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("could not be read"), "{err}");
    }
}
