//! What an operator command acts on: the Stytch project, the Unit org, optionally the API and
//! the table, with credentials from the environment or the deployment's secret, and the one
//! sentence to print when any of them refuses.

use std::fmt;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;
use shared::secrets::{RawSecretFetcher, SecretString, Secrets, SecretsManagerFetcher};
use shared::store::{DynamoStore, UserStore};

/// A failure, as the sentence that says what to fix.
#[derive(Debug)]
pub struct Failure(pub String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

/// Unit's live API host; everything else is taken for a sandbox.
const UNIT_LIVE_HOST: &str = "api.unit.co";

/// The services an operator command talks to.
pub struct Target {
    pub api_url: Option<String>,
    pub stytch_url: String,
    pub unit_url: String,
    pub project_id: String,
    stytch_secret: SecretString,
    unit_token: SecretString,
    credentials: String,
    /// The deployment's table, when `TABLE_NAME` is set.
    pub store: Option<std::sync::Arc<dyn UserStore>>,
    table: Option<String>,
    http: reqwest::Client,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// `STYTCH_PROJECT_ID`, which must be a test or a live project's id.
fn project_id() -> Result<String, Failure> {
    let project_id = var("STYTCH_PROJECT_ID").ok_or_else(|| {
        Failure("STYTCH_PROJECT_ID is not set (your Stytch project's id, project-test-...)".into())
    })?;
    if !project_id.starts_with("project-test-") && !project_id.starts_with("project-live-") {
        return Err(Failure(format!(
            "STYTCH_PROJECT_ID {project_id:?} is not a Stytch project id (project-test-... or project-live-...)"
        )));
    }
    Ok(project_id)
}

/// `STYTCH_API_URL` (default: Stytch's test or live host, as the project is) and `UNIT_API_URL`
/// (default: Unit's sandbox), each checked to be a URL.
fn upstream_urls(project_id: &str) -> Result<(String, String), Failure> {
    let stytch_url = var("STYTCH_API_URL").unwrap_or_else(|| {
        if project_id.starts_with("project-live-") {
            "https://api.stytch.com".into()
        } else {
            "https://test.stytch.com".into()
        }
    });
    let unit_url = var("UNIT_API_URL").unwrap_or_else(|| "https://api.s.unit.sh".into());
    for (name, url) in [("STYTCH_API_URL", &stytch_url), ("UNIT_API_URL", &unit_url)] {
        reqwest::Url::parse(url)
            .map_err(|e| Failure(format!("{name} {url:?} is not a URL: {e}")))?;
    }
    Ok((stytch_url, unit_url))
}

/// The Stytch secret, the Unit org token and where they came from: `STYTCH_SECRET` and
/// `UNIT_API_TOKEN`, else the secret `secret_id` read with the operator's AWS credentials.
async fn credentials(
    project_id: &str,
    secret_id: Option<&str>,
    aws: Option<&aws_config::SdkConfig>,
) -> Result<(SecretString, SecretString, String), Failure> {
    match (var("STYTCH_SECRET"), var("UNIT_API_TOKEN"), secret_id, aws) {
        (Some(s), Some(u), _, _) => Ok((
            SecretString::new(s),
            SecretString::new(u),
            "STYTCH_SECRET and UNIT_API_TOKEN".to_owned(),
        )),
        (_, _, Some(id), Some(aws)) => {
            let fetcher =
                SecretsManagerFetcher::new(aws_sdk_secretsmanager::Client::new(aws), id.to_owned());
            let json = fetcher.fetch().await.map_err(|e| {
                Failure(format!(
                    "cannot read the secret {id} (with your AWS credentials and region): {e}"
                ))
            })?;
            let secrets = Secrets::parse(&json, &fetcher.origin(), project_id)
                .map_err(|e| Failure(format!("the secret {id}: {e}")))?;
            Ok((
                secrets.stytch_secret,
                secrets.unit_api_token,
                format!("the secret {id}"),
            ))
        }
        _ => Err(Failure(
            "no credentials: set STYTCH_SECRET and UNIT_API_TOKEN, or SECRET_ID (the \
                 deployment's secret, read with your AWS credentials)"
                .into(),
        )),
    }
}

impl Target {
    /// Reads `STYTCH_PROJECT_ID`, `STYTCH_API_URL`, `UNIT_API_URL`, the credentials
    /// (`STYTCH_SECRET` and `UNIT_API_TOKEN`, else the secret `SECRET_ID` with the operator's
    /// AWS credentials) and `TABLE_NAME`.
    pub async fn from_env(api_url: Option<&str>) -> Result<Self, Failure> {
        let project_id = project_id()?;
        let (stytch_url, unit_url) = upstream_urls(&project_id)?;
        let api_url = match api_url {
            Some(u) => {
                reqwest::Url::parse(u)
                    .map_err(|e| Failure(format!("API_URL {u:?} is not a URL: {e}")))?;
                Some(u.trim_end_matches('/').to_owned())
            }
            None => None,
        };
        let table = var("TABLE_NAME");
        let secret_id = var("SECRET_ID");
        let aws = if table.is_some() || secret_id.is_some() {
            Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
        } else {
            None
        };
        let (stytch_secret, unit_token, credentials) =
            credentials(&project_id, secret_id.as_deref(), aws.as_ref()).await?;
        let store = match (&table, &aws) {
            (Some(t), Some(aws)) => Some(std::sync::Arc::new(DynamoStore::new(
                aws_sdk_dynamodb::Client::new(aws),
                t,
            )) as std::sync::Arc<dyn UserStore>),
            _ => None,
        };
        Ok(Self {
            api_url,
            stytch_url: stytch_url.trim_end_matches('/').to_owned(),
            unit_url: unit_url.trim_end_matches('/').to_owned(),
            project_id,
            stytch_secret,
            unit_token,
            credentials,
            store,
            table,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .map_err(|e| Failure(format!("no HTTP client: {e}")))?,
        })
    }

    /// One line naming everything acted on (never a credential).
    pub fn describe(&self) -> String {
        format!(
            "API {}, Stytch {} (project {}), Unit {}, credentials from {}, table {}",
            self.api_url.as_deref().unwrap_or("-"),
            self.stytch_url,
            self.project_id,
            self.unit_url,
            self.credentials,
            self.table.as_deref().unwrap_or("- (no TABLE_NAME)")
        )
    }

    /// Whether the Stytch project or the Unit org is live.
    pub fn is_live(&self) -> bool {
        !self.live_reason().is_empty()
    }

    /// What makes this live, or `""`.
    pub fn live_reason(&self) -> String {
        let mut why = Vec::new();
        if self.project_id.starts_with("project-live-") {
            why.push(format!("Stytch project {}", self.project_id));
        }
        let unit_host = reqwest::Url::parse(&self.unit_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned));
        if unit_host.as_deref() == Some(UNIT_LIVE_HOST) {
            why.push(format!("Unit's live host {}", self.unit_url));
        }
        why.join(", ")
    }

    /// Signs up a new Stytch test user (`<prefix>+<random>@example.com`, a random password) in
    /// a session of an hour: its e-mail and Stytch's answer.
    pub async fn password_user(&self, prefix: &str) -> Result<(String, Value), Failure> {
        let email = format!("{prefix}+{}@example.com", fastrand::u64(..));
        let password = format!("{prefix} {} {}", fastrand::u64(..), fastrand::u64(..));
        let (status, body) = self
            .stytch(Method::POST, "/v1/passwords")
            .json(&serde_json::json!({"email": email, "password": password, "session_duration_minutes": 60}))
            .send_json("Stytch")
            .await?;
        if status != StatusCode::OK {
            return Err(stytch_refusal(self, status, &body));
        }
        Ok((email, body))
    }

    /// A call to Stytch with the project's Basic credentials.
    pub fn stytch(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.stytch_url))
            .basic_auth(&self.project_id, Some(self.stytch_secret.expose()))
    }

    /// A call to Unit with the org token.
    pub fn unit(&self, method: Method, path: &str) -> RequestBuilder {
        self.unit_with(method, path, self.unit_token.expose())
    }

    /// A call to Unit with another bearer token (a customer token).
    pub fn unit_with(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.unit_url))
            .bearer_auth(token)
            .header("content-type", "application/vnd.api+json")
    }

    /// A call to our API with a session JWT.
    pub fn api(&self, method: Method, path: &str, session_jwt: &str) -> RequestBuilder {
        self.api_unauthenticated(method, path)
            .bearer_auth(session_jwt)
    }

    /// A call to our API without credentials.
    pub fn api_unauthenticated(&self, method: Method, path: &str) -> RequestBuilder {
        let base = self.api_url.as_deref().unwrap_or_default();
        self.http.request(method, format!("{base}{path}"))
    }

    /// Our API's refusal as a sentence.
    pub fn api_refusal(&self, what: &str, status: StatusCode, body: &Value) -> Failure {
        let code = body["error"]["code"].as_str().unwrap_or("-");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        let hint = match code {
            "invalid_token" => {
                " (does the deployment's STYTCH_PROJECT_ID match this project, and its STYTCH_API_URL this host?)"
            }
            "upstream_unavailable" | "upstream_timeout" | "secrets_unavailable" => {
                " (the deployment cannot reach Stytch, Unit or its secret: check the secret's values and the functions' logs)"
            }
            _ => "",
        };
        Failure(format!(
            "{what} at {} answered {} {code}: {message}{hint}",
            self.api_url.as_deref().unwrap_or_default(),
            status.as_u16()
        ))
    }
}

/// Stytch's refusal as a sentence.
pub fn stytch_refusal(target: &Target, status: StatusCode, body: &Value) -> Failure {
    let kind = body["error_type"].as_str().unwrap_or("-");
    let message = body["error_message"].as_str().unwrap_or_default();
    match kind {
        "unauthorized_credentials" => Failure(format!(
            "Stytch answered {} unauthorized_credentials: the secret does not belong to project {} at {}",
            status.as_u16(),
            target.project_id,
            target.stytch_url
        )),
        "project_not_found" => Failure(format!(
            "Stytch answered {} project_not_found: there is no project {} at {} (check \
             STYTCH_PROJECT_ID, and that STYTCH_API_URL is the test host for a test project, the \
             live host for a live one)",
            status.as_u16(),
            target.project_id,
            target.stytch_url
        )),
        _ => Failure(format!(
            "Stytch answered {} {kind}: {message}",
            status.as_u16()
        )),
    }
}

/// Unit's refusal as a sentence.
pub fn unit_refusal(target: &Target, status: StatusCode, body: &Value) -> Failure {
    let first = &body["errors"][0];
    let title = first["title"].as_str().unwrap_or("-");
    let detail = first["detail"].as_str().unwrap_or_default();
    if status == StatusCode::UNAUTHORIZED {
        return Failure(format!(
            "Unit answered 401 {title}: the org token is not valid at {} (a sandbox token needs \
             https://api.s.unit.sh, a live one https://api.unit.co)",
            target.unit_url
        ));
    }
    Failure(format!(
        "Unit answered {} {title}: {detail}",
        status.as_u16()
    ))
}

/// Sends and reads a JSON answer (an empty or non-JSON body reads as `null`).
pub trait SendJson {
    /// `who` names the service in a transport failure.
    fn send_json(
        self,
        who: &str,
    ) -> impl std::future::Future<Output = Result<(StatusCode, Value), Failure>>;
}

impl SendJson for RequestBuilder {
    async fn send_json(self, who: &str) -> Result<(StatusCode, Value), Failure> {
        let response = self.send().await.map_err(|e| {
            let url = e.url().map(|u| u.to_string()).unwrap_or_default();
            Failure(format!("cannot reach {who} at {url}: {e}"))
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Failure(format!("{who} broke off its answer: {e}")))?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }
}
