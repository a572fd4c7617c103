//! The state every function builds once per cold start: configuration, secrets, store, the
//! Stytch and Unit clients on one shared HTTP connection pool, and the JWT verifier.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, ConfigError, SecretsLocation, StoreLocation};
use crate::error::ApiError;
use crate::jwt::{JwtError, SessionVerifier, VerifiedSession, VerifierSettings};
use crate::secrets::{
    SecretError, SecretSource, Secrets, SecretsManagerFetcher, StaticSecrets, TtlSecretSource,
};
use crate::store::{DynamoStore, MemoryStore, StoreError, UserStore};
use crate::stytch::StytchClient;
use crate::unit::UnitClient;
use crate::upstream::{RetryPolicy, Upstream, http_client};

/// Why start-up failed; its `Display` is the one line an operator needs.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Bad or missing environment variable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The secrets could not be read or are invalid.
    #[error(transparent)]
    Secrets(#[from] SecretError),
    /// The store could not be prepared.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Everything a handler needs, built once.
pub struct App {
    /// The configuration.
    pub config: Config,
    /// Current secrets.
    pub secrets: Arc<dyn SecretSource>,
    /// User mappings.
    pub store: Arc<dyn UserStore>,
    /// Stytch API.
    pub stytch: StytchClient,
    /// Unit API.
    pub unit: UnitClient,
    /// Stytch session JWT verifier.
    pub verifier: SessionVerifier,
}

impl App {
    /// Reads the environment and builds the state (what each Lambda `main` calls).
    pub async fn from_env() -> Result<Self, StartupError> {
        Self::build(Config::from_env()?, None).await
    }

    /// Builds the state from `config`. AWS clients come from `aws` if given, else from the SDK's
    /// default chain (environment, `AWS_ENDPOINT_URL`, profile, Lambda role), loaded only when
    /// Secrets Manager or DynamoDB is configured.
    pub async fn build(
        config: Config,
        aws: Option<aws_config::SdkConfig>,
    ) -> Result<Self, StartupError> {
        let needs_aws = matches!(config.secrets, SecretsLocation::SecretsManager { .. })
            || matches!(config.store, StoreLocation::DynamoDb { .. });
        let aws = match aws {
            Some(aws) => Some(aws),
            None if needs_aws => {
                Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
            }
            None => None,
        };
        let project_id = config.stytch_project_id.clone();
        let secrets: Arc<dyn SecretSource> = match (&config.secrets, &aws) {
            (SecretsLocation::SecretsManager { secret_id, ttl }, Some(aws)) => {
                let fetcher =
                    SecretsManagerFetcher::new(aws_sdk_secretsmanager::Client::new(aws), secret_id);
                Arc::new(TtlSecretSource::new(Box::new(fetcher), &project_id, *ttl).await?)
            }
            (SecretsLocation::File(path), _) => {
                Arc::new(StaticSecrets::from_file(path, &project_id)?)
            }
            (SecretsLocation::Inline(json), _) => Arc::new(StaticSecrets::new(Secrets::parse(
                json,
                "SECRETS_JSON",
                &project_id,
            )?)),
            (SecretsLocation::SecretsManager { .. }, None) => {
                unreachable!("AWS config is loaded when needed")
            }
        };
        let store: Arc<dyn UserStore> = match (&config.store, &aws) {
            (StoreLocation::DynamoDb { table_name }, Some(aws)) => Arc::new(DynamoStore::new(
                aws_sdk_dynamodb::Client::new(aws),
                table_name,
            )),
            (StoreLocation::Memory, _) => Arc::new(MemoryStore::new()),
            (StoreLocation::DynamoDb { .. }, None) => {
                unreachable!("AWS config is loaded when needed")
            }
        };

        // One connection pool for both upstreams, for the life of the process.
        let client = http_client(Duration::from_secs(3));
        let policy = RetryPolicy::new(config.upstream_max_attempts, config.upstream_timeout);
        let stytch = StytchClient::new(
            Upstream::new("stytch", client.clone(), &config.stytch_api_url, policy),
            &project_id,
        );
        let unit = UnitClient::new(Upstream::new("unit", client, &config.unit_api_url, policy));
        let verifier = SessionVerifier::new(
            Box::new(stytch.clone()),
            VerifierSettings {
                project_id,
                extra_issuers: config.stytch_extra_issuers.clone(),
                leeway: config.jwt_leeway,
                refetch_interval: config.jwks_refetch_interval,
                ttl: config.jwks_ttl,
            },
        );
        Ok(Self {
            config,
            secrets,
            store,
            stytch,
            unit,
            verifier,
        })
    }

    /// Verifies the request's bearer JWT, mapping failures to client errors.
    pub async fn authenticate(
        &self,
        req: &lambda_http::Request,
    ) -> Result<VerifiedSession, ApiError> {
        let token = crate::http::bearer_token(req)?;
        self.verifier
            .verify(token, crate::http::now_epoch())
            .await
            .map_err(ApiError::from)
    }
}

impl From<JwtError> for ApiError {
    fn from(e: JwtError) -> Self {
        match e {
            JwtError::Expired => ApiError::unauthorized(
                "token_expired",
                "the session JWT has expired; refresh the session",
            ),
            JwtError::KeysUnavailable(detail) => {
                tracing::error!(error = %detail, "cannot verify JWTs: Stytch JWKS unavailable");
                ApiError::new(
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    "upstream_unavailable",
                    "cannot verify the session right now; retry shortly",
                )
                .with_retry_after(5)
            }
            other => ApiError::unauthorized("invalid_token", other.to_string()),
        }
    }
}

impl From<SecretError> for ApiError {
    fn from(e: SecretError) -> Self {
        tracing::error!(error = %e, "secrets unavailable");
        ApiError::new(
            http::StatusCode::SERVICE_UNAVAILABLE,
            "secrets_unavailable",
            "the service is misconfigured or starting; retry shortly",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => {
                tracing::error!(error = %detail, "store unavailable");
                ApiError::new(
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "storage is unavailable; retry shortly",
                )
                .with_retry_after(1)
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

impl From<&crate::upstream::TransportError> for Failure {
    fn from(e: &crate::upstream::TransportError) -> Self {
        match e {
            crate::upstream::TransportError::Timeout { .. } => Failure::TimedOut,
            _ => Failure::Failed,
        }
    }
}

impl From<crate::stytch::StytchError> for ApiError {
    fn from(e: crate::stytch::StytchError) -> Self {
        let kind = match &e {
            crate::stytch::StytchError::Api {
                status,
                retry_after,
                ..
            } => Failure::Answered(*status, *retry_after),
            crate::stytch::StytchError::Transport(t) => t.into(),
        };
        upstream_error("Stytch", &e, kind)
    }
}

impl From<crate::unit::UnitError> for ApiError {
    fn from(e: crate::unit::UnitError) -> Self {
        let kind = match &e {
            crate::unit::UnitError::Api {
                status,
                retry_after,
                ..
            } => Failure::Answered(*status, *retry_after),
            crate::unit::UnitError::Transport(t) => t.into(),
        };
        upstream_error("Unit", &e, kind)
    }
}

/// The default mapping of an upstream failure a handler did not handle itself: 429 stays 429,
/// a timeout is 504, everything else 502. Upstream details go to the log only.
fn upstream_error(service: &str, e: &dyn std::error::Error, kind: Failure) -> ApiError {
    use http::StatusCode;
    tracing::warn!(service, error = %e, "upstream call failed");
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
