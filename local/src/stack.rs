//! The whole local stack: the API on one port and, for each upstream not configured, its
//! sandbox on its own port, wired together (shared secrets, webhooks pointing back at the API,
//! Unit's JWT settings pointing at the Stytch JWKS).

use std::sync::Arc;

use shared::App;
use shared::config::StoreLocation;
use shared::store::DynamoStore;

use crate::settings::Plan;
use sandboxes::Running;
use sandboxes::stytch::{Stytch, StytchSettings};
use sandboxes::unit::{Unit, UnitSettings};

/// A running local stack.
pub struct LocalStack {
    /// Base URL of the API, e.g. `http://127.0.0.1:3000`.
    pub api_url: String,
    /// The functions' shared state.
    pub app: Arc<App>,
    /// The Stytch sandbox, if it runs.
    pub stytch: Option<(Arc<Stytch>, Running)>,
    /// The Unit sandbox, if it runs.
    pub unit: Option<(Arc<Unit>, Running)>,
    api: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Why the stack could not start.
pub type StartError = Box<dyn std::error::Error + Send + Sync>;

async fn bind(
    addr: std::net::SocketAddr,
    var: &str,
) -> Result<tokio::net::TcpListener, StartError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e} (set {var} to another port)").into())
}

/// The stack's listeners: the API's, and each sandbox's if it runs.
type Listeners = (
    tokio::net::TcpListener,
    Option<tokio::net::TcpListener>,
    Option<tokio::net::TcpListener>,
);

/// Binds the API's port, then the Stytch and Unit sandboxes' ports where they run.
async fn bind_all(plan: &Plan) -> Result<Listeners, StartError> {
    let api_listener = bind(plan.bind, "PORT").await?;
    let stytch_listener = match plan.stytch_sandbox {
        Some(addr) => Some(bind(addr, "STYTCH_SANDBOX_PORT").await?),
        None => None,
    };
    let unit_listener = match plan.unit_sandbox {
        Some(addr) => Some(bind(addr, "UNIT_SANDBOX_PORT").await?),
        None => None,
    };
    Ok((api_listener, stytch_listener, unit_listener))
}

/// Builds the functions' state from `config`, first creating the DynamoDB table if the plan
/// asks (with the SDK's default chain when `aws` is not given).
async fn build_app(
    plan: &Plan,
    config: shared::config::Config,
    aws: Option<aws_config::SdkConfig>,
) -> Result<Arc<App>, StartError> {
    let aws = match aws {
        Some(aws) => Some(aws),
        None if plan.create_table => Some(shared::app::aws_from_env().await),
        None => None,
    };
    if plan.create_table
        && let (StoreLocation::DynamoDb { table_name }, Some(aws)) = (&config.store, &aws)
    {
        DynamoStore::new(aws_sdk_dynamodb::Client::new(aws), table_name)
            .create_table_if_missing()
            .await?;
    }
    Ok(Arc::new(App::build(config, aws).await?))
}

/// The sandboxes running on their listeners.
type Sandboxes = (Option<(Arc<Stytch>, Running)>, Option<(Arc<Unit>, Running)>);

/// Starts the Stytch and Unit sandboxes on their listeners (where they run) with the app's
/// secrets, their webhooks pointing at the API on `api_url`, and Unit's JWT settings at the
/// Stytch JWKS.
async fn start_sandboxes(
    plan: &Plan,
    app: &App,
    api_url: &str,
    stytch_listener: Option<tokio::net::TcpListener>,
    unit_listener: Option<tokio::net::TcpListener>,
) -> Result<Sandboxes, StartError> {
    let secrets = app.secrets.current().await?;
    let project_id = app.config.stytch_project_id.clone();

    let stytch = stytch_listener
        .map(|listener| {
            let settings = StytchSettings {
                project_id: project_id.clone(),
                secret: secrets.stytch_secret.expose().to_owned(),
                webhook: Some((
                    format!("{api_url}/webhooks/stytch"),
                    secrets.stytch_webhook_secret.clone(),
                )),
                webhook_schedule: plan.webhook_schedule.clone(),
            };
            sandboxes::stytch::start(settings, listener)
        })
        .transpose()?;
    let unit = unit_listener
        .map(|listener| {
            let settings = UnitSettings {
                org_token: secrets.unit_api_token.expose().to_owned(),
                webhook: Some((
                    format!("{api_url}/webhooks/unit"),
                    secrets.unit_webhook_token.expose().to_owned(),
                )),
                webhook_schedule: plan.webhook_schedule.clone(),
                jwt: Some((app.stytch.jwks_url(), format!("stytch.com/{project_id}"))),
                public_url: String::new(),
            };
            sandboxes::unit::start(settings, listener)
        })
        .transpose()?;
    Ok((stytch, unit))
}

impl LocalStack {
    /// Binds every port, builds the functions' state and starts serving. AWS clients come from
    /// `aws` if given, else the SDK's default chain when DynamoDB or Secrets Manager is used.
    pub async fn start(
        plan: &Plan,
        aws: Option<aws_config::SdkConfig>,
    ) -> Result<Self, StartError> {
        let (api_listener, stytch_listener, unit_listener) = bind_all(plan).await?;
        let url_of = |l: &tokio::net::TcpListener| l.local_addr().map(|a| format!("http://{a}"));
        let stytch_url = stytch_listener.as_ref().map(url_of).transpose()?;
        let unit_url = unit_listener.as_ref().map(url_of).transpose()?;
        let api_url = url_of(&api_listener)?;
        let config = plan.config(stytch_url.as_deref(), unit_url.as_deref())?;

        let app = build_app(plan, config, aws).await?;
        let (stytch, unit) =
            start_sandboxes(plan, &app, &api_url, stytch_listener, unit_listener).await?;
        let api = tokio::spawn(crate::serve(app.clone(), api_listener));
        Ok(Self {
            api_url,
            app,
            stytch,
            unit,
            api,
        })
    }

    /// Waits until the API server stops (it runs until the process ends).
    pub async fn wait(&mut self) -> Result<(), StartError> {
        (&mut self.api).await??;
        Ok(())
    }

    /// The Stytch base URL the functions use (sandbox or real).
    pub fn stytch_url(&self) -> &str {
        &self.app.config.stytch_api_url
    }

    /// The Unit base URL the functions use (sandbox or real).
    pub fn unit_url(&self) -> &str {
        &self.app.config.unit_api_url
    }

    /// A new user signed up with a password at Stytch (the sandbox, or a test project):
    /// `(user_id, session_jwt)`.
    pub async fn sign_up(
        &self,
        http: &reqwest::Client,
    ) -> Result<(String, String, String), StartError> {
        let email = format!("event-{}@example.com", sandboxes::random_hex(8));
        let reply = self
            .stytch_post(
                http,
                "/v1/passwords",
                serde_json::json!({"email": email, "password": "correct horse battery staple"}),
            )
            .await?;
        match (reply["user_id"].as_str(), reply["session_jwt"].as_str()) {
            (Some(user), Some(jwt)) => Ok((user.to_owned(), jwt.to_owned(), email)),
            _ => Err(format!("sign-up failed: {reply}").into()),
        }
    }

    /// A call to the Stytch API with the project's credentials; its JSON answer.
    pub async fn stytch_post(
        &self,
        http: &reqwest::Client,
        path: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, StartError> {
        let secrets = self.app.secrets.current().await?;
        Ok(http
            .post(format!("{}{path}", self.stytch_url()))
            .basic_auth(
                &self.app.config.stytch_project_id,
                Some(secrets.stytch_secret.expose()),
            )
            .json(&body)
            .send()
            .await?
            .json()
            .await?)
    }

    /// Proves `email` in the session of `jwt` with a Stytch e-mail passcode, read from the Stytch
    /// sandbox's inbox (`GET /_sandbox/otps`); the session's new JWT.
    pub async fn prove_email(
        &self,
        http: &reqwest::Client,
        jwt: &str,
        email: &str,
    ) -> Result<String, StartError> {
        let sent = self
            .stytch_post(
                http,
                "/v1/otps/email/send",
                serde_json::json!({"email": email, "session_jwt": jwt}),
            )
            .await?;
        let method_id = sent["email_id"]
            .as_str()
            .ok_or_else(|| format!("no passcode sent: {sent}"))?
            .to_owned();
        let inbox: serde_json::Value = http
            .get(format!("{}/_sandbox/otps", self.stytch_url()))
            .send()
            .await?
            .json()
            .await?;
        let code = inbox["otps"]
            .as_array()
            .and_then(|all| all.iter().find(|o| o["method_id"] == method_id.as_str()))
            .and_then(|o| o["code"].as_str())
            .ok_or("the sandbox's inbox has no passcode")?
            .to_owned();
        let proven = self
            .stytch_post(
                http,
                "/v1/otps/authenticate",
                serde_json::json!({"method_id": method_id, "code": code, "session_jwt": jwt}),
            )
            .await?;
        proven["session_jwt"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("the passcode was refused: {proven}").into())
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        self.api.abort();
    }
}

/// AWS SDK configuration for a local endpoint such as moto: the SDK's defaults, region
/// us-east-1 and dummy credentials (the bench and the end-to-end tests).
pub async fn local_aws(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "local",
        ))
        .load()
        .await
}
