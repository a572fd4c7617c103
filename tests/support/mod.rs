//! Helpers of the end-to-end tests: moto, the local stack on free ports with its sandboxes,
//! logging a user in, and Stytch-shaped JWTs with chosen claims.

pub mod fault_proxy;

/// Every route that takes a Stytch session JWT.
pub const JWT_ROUTES: &[(&str, &str)] = &[
    ("GET", "/onboarding"),
    ("POST", "/onboarding/application"),
    ("POST", "/mfa/totp"),
    ("POST", "/mfa/totp/authenticate"),
    ("POST", "/mfa/totp/recover"),
    ("POST", "/unit/customer-token"),
];

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use local_stack::settings::Plan;
use local_stack::stack::LocalStack;
use serde_json::{Value, json};

/// The Svix secret the tests put in the stack's secret (the official test vector's).
pub const SVIX_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The Unit webhook token the tests put in the stack's secret.
pub const UNIT_WEBHOOK_TOKEN: &str = "unit-webhook-token-e2e-0123456789abcdef";

/// The Stytch project secret of the tests.
pub const STYTCH_SECRET: &str = "secret-test-e2e";

/// The Unit org token of the tests.
pub const UNIT_TOKEN: &str = "v2.public.e2e";

/// moto's URL, for the tests of DynamoDB and Secrets Manager themselves (each is
/// `#[ignore]`d with the command that runs it, so a plain `cargo test` does not count them).
pub fn moto() -> String {
    match std::env::var("MOTO_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("MOTO_URL is not set: run `make test`, which starts moto"),
    }
}

/// moto's URL if the test command started it.
fn moto_if_running() -> Option<String> {
    std::env::var("MOTO_URL").ok().filter(|url| !url.is_empty())
}

/// AWS SDK configuration pointing at moto with dummy credentials.
pub async fn aws(moto: &str) -> aws_config::SdkConfig {
    local_stack::stack::local_aws(moto).await
}

/// The secret JSON of the tests.
pub fn secret_json() -> Value {
    json!({
        "stytch_secret": STYTCH_SECRET,
        "stytch_webhook_secret": SVIX_SECRET,
        "unit_api_token": UNIT_TOKEN,
        "unit_webhook_token": UNIT_WEBHOOK_TOKEN,
    })
}

/// Creates a secret in moto with a unique name; returns the name.
pub async fn create_secret(aws: &aws_config::SdkConfig, value: &Value) -> String {
    let name = format!("bridge-e2e-{}", uuid::Uuid::new_v4());
    aws_sdk_secretsmanager::Client::new(aws)
        .create_secret()
        .name(&name)
        .secret_string(value.to_string())
        .send()
        .await
        .expect("create the secret in moto");
    name
}

/// A running local stack with both sandboxes, plus an HTTP client.
pub struct Stack {
    pub local: LocalStack,
    pub http: reqwest::Client,
}

/// A user logged in at the Stytch sandbox.
pub struct Login {
    pub user_id: String,
    /// The e-mail address signed up with (unverified until a passcode to it is authenticated).
    pub email: String,
    pub session_jwt: String,
    pub session_token: String,
}

impl Stack {
    /// The stack on free ports with `vars` on top of the defaults, sandboxes included.
    pub async fn with(vars: &[(&str, &str)], aws: Option<aws_config::SdkConfig>) -> Self {
        capture_logs();
        let mut env: HashMap<String, String> = [
            ("PORT", "0"),
            ("STYTCH_SANDBOX_PORT", "0"),
            ("UNIT_SANDBOX_PORT", "0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        env.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let state = std::env::temp_dir().join(format!("bridge-e2e-{}", uuid::Uuid::new_v4()));
        let plan = Plan::resolve(move |k| env.get(k).cloned(), &state).expect("plan");
        let local = LocalStack::start(&plan, aws)
            .await
            .expect("start the local stack");
        Self {
            local,
            http: reqwest::Client::new(),
        }
    }

    /// The stack on moto: a fresh secret in Secrets Manager and a fresh DynamoDB table.
    pub async fn on_moto(moto: &str) -> Self {
        Self::on_moto_with(moto, &[]).await
    }

    /// [`Stack::on_moto`] with `vars` on top.
    pub async fn on_moto_with(moto: &str, vars: &[(&str, &str)]) -> Self {
        let aws = aws(moto).await;
        let secret = create_secret(&aws, &secret_json()).await;
        let table = format!("bridge-e2e-{}", uuid::Uuid::new_v4());
        shared::store::DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &table)
            .create_table_if_missing()
            .await
            .expect("create the table in moto");
        let mut all = vec![
            ("SECRET_ID", secret.as_str()),
            ("TABLE_NAME", table.as_str()),
        ];
        all.extend_from_slice(vars);
        Self::with(&all, Some(aws)).await
    }

    /// The stack for a suite that is not about DynamoDB itself: on moto when the test command
    /// started it (as deployed: Secrets Manager and DynamoDB), else in memory.
    pub async fn start(vars: &[(&str, &str)]) -> Self {
        match moto_if_running() {
            Some(moto) => Self::on_moto_with(&moto, vars).await,
            None => Self::in_memory(vars).await,
        }
    }

    /// The stack in memory with the test secrets inline (no AWS at all).
    pub async fn in_memory(vars: &[(&str, &str)]) -> Self {
        let secrets = secret_json().to_string();
        let mut all = vec![("STORE", "memory"), ("SECRETS_JSON", secrets.as_str())];
        all.extend_from_slice(vars);
        Self::with(&all, None).await
    }

    /// `api + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.local.api_url)
    }

    /// `stytch sandbox + path`.
    pub fn stytch(&self, path: &str) -> String {
        format!("{}{path}", self.local.stytch_url())
    }

    /// `unit sandbox + path`.
    pub fn unit(&self, path: &str) -> String {
        format!("{}{path}", self.local.unit_url())
    }

    /// The Stytch sandbox (its webhooks, signer and state).
    pub fn stytch_sandbox(&self) -> &Arc<sandboxes::stytch::Stytch> {
        &self
            .local
            .stytch
            .as_ref()
            .expect("the Stytch sandbox runs")
            .0
    }

    /// The Unit sandbox (its webhooks and state).
    pub fn unit_sandbox(&self) -> &Arc<sandboxes::unit::Unit> {
        &self.local.unit.as_ref().expect("the Unit sandbox runs").0
    }

    /// Every call the Stytch sandbox received, in order.
    pub fn stytch_log(&self) -> Vec<sandboxes::LoggedRequest> {
        let (_, running) = self.local.stytch.as_ref().expect("the Stytch sandbox runs");
        running.controls.requests()
    }

    /// Every call the Unit sandbox received, in order.
    pub fn unit_log(&self) -> Vec<sandboxes::LoggedRequest> {
        let (_, running) = self.local.unit.as_ref().expect("the Unit sandbox runs");
        running.controls.requests()
    }

    /// How many requests reached Unit's token route (`POST /customers/{id}/token`).
    pub fn unit_token_calls(&self) -> usize {
        self.unit_log()
            .iter()
            .filter(|r| r.path.ends_with("/token"))
            .count()
    }

    /// Injects a fault (`sandboxes::Fault` as JSON) at the Stytch sandbox.
    pub async fn stytch_fault(&self, fault: Value) {
        self.sandbox_control(
            reqwest::Method::POST,
            self.stytch("/_sandbox/faults"),
            Some(fault),
        )
        .await;
    }

    /// Injects a fault (`sandboxes::Fault` as JSON) at the Unit sandbox.
    pub async fn unit_fault(&self, fault: Value) {
        self.sandbox_control(
            reqwest::Method::POST,
            self.unit("/_sandbox/faults"),
            Some(fault),
        )
        .await;
    }

    /// Clears the faults of both sandboxes.
    pub async fn clear_faults(&self) {
        for url in [
            self.stytch("/_sandbox/faults"),
            self.unit("/_sandbox/faults"),
        ] {
            self.sandbox_control(reqwest::Method::DELETE, url, None)
                .await;
        }
    }

    /// Sends one `/_sandbox/` control call; it must succeed.
    pub async fn sandbox_control(&self, method: reqwest::Method, url: String, body: Option<Value>) {
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the sandbox answers");
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
    }

    /// The Stytch project id.
    pub fn project_id(&self) -> String {
        self.local.app.config.stytch_project_id.clone()
    }

    /// A Stytch API call with the project's Basic auth.
    pub fn stytch_call(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.stytch(path))
            .basic_auth(self.project_id(), Some(STYTCH_SECRET))
    }

    /// A Unit API call with the org token.
    pub fn unit_call(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.unit(path))
            .bearer_auth(UNIT_TOKEN)
            .header("content-type", "application/vnd.api+json")
    }

    /// Signs up `email` with a password at the Stytch sandbox (a `direct.user.create` follows),
    /// in a session of a week (a customer token never outlives its session), and verifies the
    /// address as Stytch's "e-mail verification after password creation" flow does: an e-mail
    /// passcode in a session of its own, so the login's session carries no e-mail factor.
    pub async fn sign_up(&self, email: &str) -> Login {
        let login = self.sign_up_unverified(email).await;
        self.verify_email(email).await;
        login
    }

    /// Verifies `email` at the Stytch sandbox with an e-mail passcode (in a new session).
    pub async fn verify_email(&self, email: &str) {
        self.email_passcode(email, json!({})).await;
    }

    /// Sends an e-mail passcode to `email`, reads it from the sandbox's "inbox" and
    /// authenticates it with `session` (`{}`, or `{"session_jwt": ...}`); Stytch's answer.
    async fn email_passcode(&self, email: &str, session: Value) -> Value {
        let mut send = session.clone();
        send["email"] = json!(email);
        let (status, sent) = json_of(
            self.stytch_call(reqwest::Method::POST, "/v1/otps/email/send")
                .json(&send),
        )
        .await;
        assert_eq!(status, 200, "{sent}");
        let method_id = sent["email_id"].as_str().expect("email_id").to_owned();
        let mut authenticate = session;
        authenticate["method_id"] = json!(method_id);
        authenticate["code"] = json!(self.otp_code(&method_id).await);
        let (status, proven) = json_of(
            self.stytch_call(reqwest::Method::POST, "/v1/otps/authenticate")
                .json(&authenticate),
        )
        .await;
        assert_eq!(status, 200, "{proven}");
        proven
    }

    /// Signs up `email` with a password, leaving the address unverified (as Stytch does).
    pub async fn sign_up_unverified(&self, email: &str) -> Login {
        let reply: Value = self
            .stytch_call(reqwest::Method::POST, "/v1/passwords")
            .json(
                &json!({"email": email, "password": "correct horse battery staple",
                "session_duration_minutes": 10_080}),
            )
            .send()
            .await
            .expect("sign up")
            .json()
            .await
            .expect("sign-up reply");
        Login {
            user_id: reply["user_id"].as_str().expect("user_id").to_owned(),
            email: email.to_owned(),
            session_jwt: reply["session_jwt"]
                .as_str()
                .expect("session_jwt")
                .to_owned(),
            session_token: reply["session_token"]
                .as_str()
                .expect("session_token")
                .to_owned(),
        }
    }

    /// Runs `bridge-admin args` as an operator would against this stack as a deployment (the
    /// stack must be on moto): the AWS variables point at moto, the functions' variables at the
    /// stack's secret, table and upstreams; `vars` on top (an empty value removes one).
    pub async fn bridge_admin(
        &self,
        moto: &str,
        args: &[&str],
        vars: &[(&str, &str)],
    ) -> std::process::Output {
        let env = local_stack::runtime_api::deployment_env(&self.local.app.config, moto)
            .expect("the stack is on moto");
        let mut command = tokio::process::Command::new(binary("bridge-admin"));
        command
            .args(args)
            .env_clear()
            .envs(env)
            .env("RUST_LOG", "error");
        for (k, v) in vars {
            if v.is_empty() {
                command.env_remove(k);
            } else {
                command.env(k, v);
            }
        }
        // Not blocking: the sandboxes it calls run on this test's runtime.
        command.output().await.expect("bridge-admin runs")
    }

    /// A JWT signed with the Stytch sandbox's current key: the standard claims for `user_id`
    /// issued at `iat`, with `edit` applied.
    pub fn forge(&self, user_id: &str, iat: i64, edit: impl FnOnce(&mut Value)) -> String {
        let (stytch, _) = self.local.stytch.as_ref().expect("the Stytch sandbox runs");
        let pid = self.project_id();
        let mut claims = json!({
            "aud": [pid], "iss": format!("stytch.com/{pid}"), "sub": user_id,
            "iat": iat, "nbf": iat, "exp": iat + 300,
            "https://stytch.com/session": {
                "id": "session-test-forged", "started_at": "2026-11-25T09:00:00Z",
                "last_accessed_at": "2026-11-25T09:00:00Z", "expires_at": rfc3339(iat + 30 * 86_400),
                "attributes": {"ip_address": "", "user_agent": ""}, "roles": ["stytch_user"],
                "authentication_factors": [{"type": "password", "delivery_method": "knowledge",
                    "last_authenticated_at": "2026-11-25T09:00:00Z"}]
            }
        });
        edit(&mut claims);
        stytch.signer().sign(&claims)
    }

    /// A signed delivery straight to our API, as Svix sends it.
    pub fn stytch_delivery(&self, svix_id: &str, body: &str, ts: i64) -> reqwest::RequestBuilder {
        let secret = shared::webhook::SvixSecret::parse(crate::SVIX_SECRET).unwrap();
        self.http
            .post(self.url("/webhooks/stytch"))
            .header("svix-id", svix_id)
            .header("svix-timestamp", ts.to_string())
            .header("svix-signature", secret.sign(svix_id, ts, body.as_bytes()))
            .body(body.to_owned())
    }

    /// A signed delivery straight to our API, as Unit sends it.
    pub fn unit_delivery(&self, body: &str) -> reqwest::RequestBuilder {
        self.http
            .post(self.url("/webhooks/unit"))
            .header(
                "x-unit-signature",
                shared::webhook::unit_signature(crate::UNIT_WEBHOOK_TOKEN, body.as_bytes()),
            )
            .body(body.to_owned())
    }

    /// An approved individual customer made at the Unit sandbox by another integration than
    /// ours, with no `jwtSubject` unless given.
    pub async fn unit_customer(&self, email: &str, jwt_subject: Option<&str>) -> String {
        let ssn = format!("{:09}", fastrand::u64(100_000_000..=665_999_999));
        let mut attributes = json!({
            "ssn": ssn, "fullName": {"first": "Old", "last": "Customer"}, "dateOfBirth": "1980-01-01",
            "address": {"street": "1 Main St", "city": "Springfield", "state": "IL", "postalCode": "62701", "country": "US"},
            "email": email, "phone": {"countryCode": "1", "number": "5555550101"}});
        if let Some(s) = jwt_subject {
            attributes["jwtSubject"] = json!(s);
        }
        let (status, created) =
            json_of(self.unit_call(reqwest::Method::POST, "/applications").json(
                &json!({"data": {"type": "individualApplication", "attributes": attributes}}),
            ))
            .await;
        assert_eq!(status, 201, "{created}");
        created["data"]["relationships"]["customer"]["data"]["id"]
            .as_str()
            .expect("approved at once")
            .to_owned()
    }

    /// A Unit customer's `jwtSubject`, as Unit holds it.
    pub async fn unit_jwt_subject(&self, customer: &str) -> Value {
        let (_, c) =
            json_of(self.unit_call(reqwest::Method::GET, &format!("/customers/{customer}"))).await;
        c["data"]["attributes"]["jwtSubject"].clone()
    }

    /// A signed Unit delivery of one event of `kind` created at `created_at` (epoch seconds),
    /// relating the given application and customer ids.
    pub fn unit_event(
        &self,
        id: &str,
        kind: &str,
        created_at: i64,
        application: Option<&str>,
        customer: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut relationships = serde_json::Map::new();
        if let Some(a) = application {
            relationships.insert(
                "application".into(),
                json!({"data": {"type": "individualApplication", "id": a}}),
            );
        }
        if let Some(c) = customer {
            relationships.insert(
                "customer".into(),
                json!({"data": {"type": "individualCustomer", "id": c}}),
            );
        }
        let body = json!({"data": [{"id": id, "type": kind,
            "attributes": {"createdAt": rfc3339(created_at), "tags": {}},
            "relationships": relationships}]});
        self.unit_delivery(&body.to_string())
    }

    /// Applies directly with one of Unit's test SSNs (`000000004`: pending review); returns the
    /// application id.
    pub async fn apply_pending(&self, login: &Login) -> String {
        let (status, state) = json_of(self.http.post(self.url("/onboarding/application")).bearer_auth(&login.session_jwt).json(&json!({
            "full_name": {"first": "Peter", "last": "Parker"}, "date_of_birth": "2001-08-10",
            "address": {"street": "20 Ingram St", "city": "Forest Hills", "state": "NY", "postal_code": "11375"},
            "phone": {"country_code": "1", "number": "5555555555"}, "ssn": "000000004"
        }))).await;
        assert_eq!(status, 201, "{state}");
        assert_eq!(state["state"], "pending_review", "{state}");
        state["application_id"]
            .as_str()
            .expect("an application")
            .to_owned()
    }

    /// Signs up and applies directly (the sandbox approves at once); returns the login and customer.
    pub async fn onboarded(&self, email: &str) -> (Login, String) {
        let login = self.sign_up(email).await;
        let customer = self.apply(&login).await;
        (login, customer)
    }

    /// `GET /onboarding` in the session of `jwt`.
    pub fn onboarding(&self, jwt: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url("/onboarding")).bearer_auth(jwt)
    }

    /// Applies directly for a signed-up user (the sandbox approves at once); returns the customer.
    pub async fn apply(&self, login: &Login) -> String {
        let ssn = format!("{:09}", uuid::Uuid::new_v4().as_u128() % 1_000_000_000);
        let (status, state) = json_of(self.http.post(self.url("/onboarding/application")).bearer_auth(&login.session_jwt).json(&json!({
            "full_name": {"first": "Peter", "last": "Parker"}, "date_of_birth": "2001-08-10",
            "address": {"street": "20 Ingram St", "city": "Forest Hills", "state": "NY", "postal_code": "11375"},
            "phone": {"country_code": "1", "number": "5555555555"}, "ssn": ssn,
            // Typed by the user: a password's e-mail is unverified, so the bridge has no default.
            "email": login.email
        }))).await;
        assert_eq!(status, 201, "{state}");
        state["customer_id"]
            .as_str()
            .expect("approved at once")
            .to_owned()
    }

    /// Proves the user's e-mail address in the session, as a frontend does with Stytch's e-mail
    /// passcode (sent, read from the sandbox's "inbox", authenticated into the session); returns
    /// the session's new JWT.
    pub async fn prove_email(&self, session_jwt: &str, email: &str) -> String {
        let proven = self
            .email_passcode(email, json!({ "session_jwt": session_jwt }))
            .await;
        proven["session_jwt"]
            .as_str()
            .expect("session_jwt")
            .to_owned()
    }

    /// The last passcode the Stytch sandbox sent to `method_id`.
    pub async fn otp_code(&self, method_id: &str) -> String {
        let (_, sent) = json_of(self.http.get(self.stytch("/_sandbox/otps"))).await;
        sent["otps"]
            .as_array()
            .and_then(|all| all.iter().find(|o| o["method_id"] == method_id))
            .and_then(|o| o["code"].as_str())
            .expect("a passcode was sent")
            .to_owned()
    }

    /// The user's e-mail at the Stytch sandbox.
    pub async fn email_of(&self, user_id: &str) -> String {
        let (_, user) =
            json_of(self.stytch_call(reqwest::Method::GET, &format!("/v1/users/{user_id}"))).await;
        user["emails"][0]["email"]
            .as_str()
            .expect("the user has an e-mail")
            .to_owned()
    }

    /// Proves the user's e-mail (the one on their Unit customer), enrols TOTP and steps up, as
    /// a bank customer's frontend does; returns the stepped-up session JWT.
    pub async fn stepped_up(&self, login: &Login) -> String {
        let email = self.email_of(&login.user_id).await;
        let jwt = self.prove_email(&login.session_jwt, &email).await;
        self.enrolled_and_stepped_up(&jwt).await
    }

    /// Enrols TOTP with `jwt` and steps up; returns the stepped-up session JWT.
    pub async fn enrolled_and_stepped_up(&self, jwt: &str) -> String {
        let (_, enrolled) = json_of(
            self.http
                .post(self.url("/mfa/totp"))
                .bearer_auth(jwt)
                .json(&json!({})),
        )
        .await;
        let secret = enrolled["secret"].as_str().expect("enrolled");
        let (status, stepped) = json_of(
            self.http
                .post(self.url("/mfa/totp/authenticate"))
                .bearer_auth(jwt)
                .json(&json!({"totp_code": totp(secret, now())})),
        )
        .await;
        assert_eq!(status, 200, "{stepped}");
        stepped["session_jwt"].as_str().unwrap().to_owned()
    }

    /// `POST /unit/customer-token` with the session `jwt` and `body`.
    pub fn customer_token(&self, jwt: &str, body: Value) -> reqwest::RequestBuilder {
        self.http
            .post(self.url("/unit/customer-token"))
            .bearer_auth(jwt)
            .json(&body)
    }

    /// Waits (up to 10 s) until the user's record holds `what` (`check`); that record.
    pub async fn record_when(
        &self,
        user_id: &str,
        what: &str,
        check: impl Fn(&shared::store::UserRecord) -> bool,
    ) -> shared::store::UserRecord {
        for _ in 0..200 {
            if let Some(record) = self.record(user_id).await.filter(&check) {
                return record;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for the record of {user_id} to hold {what}");
    }

    /// The user's record in the stack's store.
    pub async fn record(&self, user_id: &str) -> Option<shared::store::UserRecord> {
        self.local
            .app
            .store
            .get_user(user_id)
            .await
            .expect("the store answers")
    }

    /// The user's audit entries in the stack's store, oldest first.
    pub async fn audit(&self, user_id: &str) -> Vec<shared::store::AuditEntry> {
        self.local
            .app
            .store
            .audit_for_user(user_id)
            .await
            .expect("the store answers")
    }

    /// Deletes the user at the Stytch sandbox and waits (up to 5 s) for its webhook to mark the
    /// record deleted.
    pub async fn delete_at_stytch(&self, user_id: &str) {
        let (status, body) =
            json_of(self.stytch_call(reqwest::Method::DELETE, &format!("/v1/users/{user_id}")))
                .await;
        assert_eq!(status, 200, "{body}");
        for _ in 0..100 {
            if self.record(user_id).await.is_some_and(|r| r.deleted) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the record of {user_id} was not marked deleted");
    }

    /// Waits (up to 10 s) until `check` holds.
    pub async fn eventually<F: FnMut() -> bool>(&self, what: &str, mut check: F) {
        for _ in 0..200 {
            if check() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("timed out waiting for {what}");
    }
}

/// Sends `request`: its status and JSON body (`null` when the body is not JSON).
pub async fn json_of(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The status and `error.code` (empty when there is none) of a request's answer.
pub async fn answer(request: reqwest::RequestBuilder) -> (u16, String) {
    let (status, body) = json_of(request).await;
    (status, code_of(&body).unwrap_or_default().to_owned())
}

/// The `error.code` of one of our error bodies.
pub fn code_of(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

/// A workspace binary built by the test command (`cargo build --workspace --bins`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/debug/deps/<test> -> target/debug/<name>
    let path = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (make test does)",
        path.display()
    );
    path
}

/// Now in epoch seconds.
pub fn now() -> i64 {
    shared::http::now_epoch()
}

/// The RFC 6238 code of a base32 secret at `unix_time` (the sandbox's implementation, which is
/// held to the RFC's test vectors in `sandboxes/src/totp.rs`).
pub fn totp(secret_base32: &str, unix_time: i64) -> String {
    let key = sandboxes::totp::base32_decode(secret_base32).expect("a base32 secret");
    sandboxes::totp::code_at(&key, unix_time)
}

/// A Stytch `user` event body as Svix delivers it (`action` CREATE, UPDATE or DELETE).
pub fn user_event(action: &str, user_id: &str, email: &str) -> String {
    let mut event = json!({
        "action": action, "event_id": format!("webhook-event-test-{}", uuid::Uuid::new_v4()), "id": user_id,
        "object_type": "user", "project_id": "project-test-x", "source": "DIRECT",
        "timestamp": "2026-11-25T06:47:49.555247073Z", "vertical": "CONSUMER",
    });
    if action != "DELETE" {
        event["user"] = json!({
            "user_id": user_id, "status": "active",
            "emails": [{"email_id": "email-test-1", "email": email, "verified": true}],
            "phone_numbers": [{"phone_id": "phone-number-test-1", "phone_number": "+15555550100", "verified": false}],
            "name": {"first_name": "Ada", "middle_name": "", "last_name": "Lovelace"},
            "password": null, "totps": [], "roles": [], "is_locked": false,
        });
    }
    event.to_string()
}

/// A Stytch user id nobody has used.
pub fn fresh_user() -> String {
    format!("user-test-{}", uuid::Uuid::new_v4())
}

/// `epoch` seconds as RFC 3339 (how Stytch writes times).
pub fn rfc3339(epoch: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .expect("a valid time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339")
}

/// Appends a function binary's log lines to `E2E_LOG_FILE` (when set), for the secrets scan.
pub fn append_to_log_capture(lines: &str) {
    use std::io::Write;
    let Some(path) = std::env::var_os("E2E_LOG_FILE") else {
        return;
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("open E2E_LOG_FILE");
    file.write_all(lines.as_bytes())
        .expect("write E2E_LOG_FILE");
}

/// With `E2E_LOG_FILE` set (the test command sets it), every log line of this test process, in
/// the Lambda functions' JSON format and at their TRACE level (our crates at trace), is appended to that file;
/// `tools/check_logs.py` then scans it for secrets.
fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Some(path) = std::env::var_os("E2E_LOG_FILE") else {
            return;
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("open E2E_LOG_FILE");
        // As a function deployed with LogLevel TRACE writes (DEBUG's lines are a subset).
        shared::telemetry::init_json_to("TRACE", std::sync::Mutex::new(file));
    });
}
