//! The state every function builds once per cold start: configuration, secrets, store, the
//! Stytch and Unit clients on one shared HTTP connection pool, and the JWT verifier.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, ConfigError, SecretsLocation, StoreLocation};
use crate::error::ApiError;
use crate::jwt::{SessionVerifier, VerifiedSession, VerifierSettings};
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

/// The AWS configuration from the environment, resolved as the SDK's default chains resolve it.
///
/// Credentials and region are the first links of those chains, and on Lambda both are always
/// there: the execution role's keys (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`) and `AWS_REGION`. Taking them from the environment directly, when they
/// are set, gives the same answer without building the rest of the chains at every cold start:
/// the web-identity provider's STS client and the IMDS clients, each with its own connector
/// (about 0.5 ms per cold start, docs/performance.md). When they are not set (a developer's
/// profile, SSO, container credentials) the default chains are loaded in full.
pub async fn aws_from_env() -> aws_config::SdkConfig {
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if var("AWS_ACCESS_KEY_ID").is_some() && var("AWS_SECRET_ACCESS_KEY").is_some() {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    if let Some(region) = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")) {
        loader = loader.region(aws_config::Region::new(region));
    }
    loader.load().await
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
            None if needs_aws => Some(aws_from_env().await),
            None => None,
        };
        let project_id = config.stytch_project_id.clone();
        let secrets = secret_source(&config.secrets, aws.as_ref(), &project_id).await?;
        let store = user_store(&config.store, aws.as_ref());

        // One connection pool for both upstreams, for the life of the process.
        let client = http_client(Duration::from_secs(3));
        let policy = RetryPolicy::new(config.upstream.max_attempts, config.upstream.timeout);
        let stytch = StytchClient::new(
            Upstream::new("stytch", client.clone(), &config.stytch_api_url, policy),
            &project_id,
            secrets.clone(),
        );
        let unit = UnitClient::new(
            Upstream::new("unit", client, &config.unit_api_url, policy),
            secrets.clone(),
        );
        let verifier = SessionVerifier::new(
            Box::new(stytch.clone()),
            verifier_settings(&config, project_id),
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

/// Where the secrets come from: Secrets Manager (cached for its TTL), a file or inline JSON.
async fn secret_source(
    location: &SecretsLocation,
    aws: Option<&aws_config::SdkConfig>,
    project_id: &str,
) -> Result<Arc<dyn SecretSource>, StartupError> {
    Ok(match (location, aws) {
        (SecretsLocation::SecretsManager { secret_id, ttl }, Some(aws)) => {
            let fetcher =
                SecretsManagerFetcher::new(aws_sdk_secretsmanager::Client::new(aws), secret_id);
            Arc::new(TtlSecretSource::new(Box::new(fetcher), project_id, *ttl).await?)
        }
        (SecretsLocation::File(path), _) => Arc::new(StaticSecrets::from_file(path, project_id)?),
        (SecretsLocation::Inline(json), _) => Arc::new(StaticSecrets::new(Secrets::parse(
            json,
            "SECRETS_JSON",
            project_id,
        )?)),
        (SecretsLocation::SecretsManager { .. }, None) => {
            unreachable!("AWS config is loaded when needed")
        }
    })
}

/// The user store: the DynamoDB table, or memory for the local stack.
fn user_store(location: &StoreLocation, aws: Option<&aws_config::SdkConfig>) -> Arc<dyn UserStore> {
    match (location, aws) {
        (StoreLocation::DynamoDb { table_name }, Some(aws)) => Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(aws),
            table_name,
        )),
        (StoreLocation::Memory, _) => Arc::new(MemoryStore::new()),
        (StoreLocation::DynamoDb { .. }, None) => unreachable!("AWS config is loaded when needed"),
    }
}

/// The session verifier's settings. The API base URL is an issuer too, as Stytch's SDKs accept
/// theirs.
fn verifier_settings(config: &Config, project_id: String) -> VerifierSettings {
    VerifierSettings {
        project_id,
        extra_issuers: config
            .stytch_extra_issuers
            .iter()
            .chain([&config.stytch_api_url])
            .cloned()
            .collect(),
        leeway: config.session.leeway,
        refetch_interval: config.session.jwks_refetch_interval,
        ttl: config.session.jwks_ttl,
    }
}
