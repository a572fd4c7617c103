//! `bridge-admin smoke`: the flow a frontend follows, walked against a deployment (its `ApiUrl`)
//! or the local stack, with real Stytch and Unit credentials of test environments. Each step is
//! reported with its timing; the first failure ends the run with a sentence saying what to fix.
//!
//! Against live credentials (a `project-live-` project, Unit's live host) it creates nothing: an
//! application there goes to a bank. `--allow-live` runs only the checks that create nothing.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::target::{Failure, SendJson, Target, stytch_refusal, unit_refusal};

/// Options of `smoke`.
#[derive(clap::Args)]
pub struct Args {
    /// The deployment's `ApiUrl` output (or the local stack's URL).
    #[arg(long, env = "API_URL")]
    pub api_url: String,
    /// With live credentials: run only the checks that create nothing (configuration, JWKS,
    /// credentials, the webhook endpoints and, with --customer-id and --session-jwt, the token
    /// exchange).
    #[arg(long)]
    pub allow_live: bool,
    /// Run only the checks that create nothing, whatever the credentials (a health check of a
    /// deployment).
    #[arg(long)]
    pub read_only: bool,
    /// Live checks: an existing Unit customer to exchange a token for.
    #[arg(long, requires = "session_jwt")]
    pub customer_id: Option<String>,
    /// Live checks: a session JWT of that customer's Stytch user (from your app's login).
    #[arg(long, env = "SMOKE_SESSION_JWT", hide_env_values = true)]
    pub session_jwt: Option<String>,
    /// The scope of the customer token used at Unit. A sensitive scope also needs the e-mail or
    /// phone of the bank account proven in the session, which a smoke user cannot do: smoke
    /// checks that such a token waits for it (403 `authenticator_unconfirmed`).
    #[arg(long, default_value = "customers accounts")]
    pub scope: String,
    /// How long to wait for Unit's decision.
    #[arg(long, default_value_t = 120)]
    pub approval_timeout_secs: u64,
}

/// Prints each step's outcome and timing.
struct Report {
    started: Instant,
    n: usize,
}

impl Report {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            n: 0,
        }
    }

    async fn step<T>(
        &mut self,
        name: &str,
        f: impl std::future::Future<Output = Result<(T, String), Failure>>,
    ) -> Result<T, Failure> {
        self.n += 1;
        let at = Instant::now();
        let (value, detail) = f.await.inspect_err(|_| {
            println!("FAIL {:>2}. {name}", self.n);
        })?;
        println!(
            "ok   {:>2}. {name} ({} ms): {detail}",
            self.n,
            at.elapsed().as_millis()
        );
        Ok(value)
    }

    fn done(&self) {
        println!(
            "smoke: all {} steps passed in {:.1} s",
            self.n,
            self.started.elapsed().as_secs_f64()
        );
    }
}

/// Runs the smoke walk; `Err` is the sentence to print.
pub async fn run(args: Args) -> Result<(), Failure> {
    let target = Target::from_env(Some(&args.api_url)).await?;
    println!("smoke: {}", target.describe());
    if target.is_live() {
        if !args.allow_live {
            return Err(Failure(format!(
                "these are live credentials ({}): smoke creates users and bank applications, so it \
                 creates nothing here; rerun with --allow-live for the checks that create nothing",
                target.live_reason()
            )));
        }
        return live_checks(&target, &args).await;
    }
    if args.read_only {
        return live_checks(&target, &args).await;
    }
    let mut report = Report::new();
    let user = report
        .step(
            "Stytch test user with a password session",
            create_user(&target),
        )
        .await?;
    let walked = walk(&target, &args, &mut report, &user).await;
    // Whatever happened, the Stytch user goes.
    let cleanup = report
        .step("clean up", cleanup(&target, &user, walked.as_ref().ok()))
        .await;
    walked?;
    cleanup?;
    report.done();
    Ok(())
}

struct User {
    user_id: String,
    /// The address signed up with: unverified at Stytch, so the application carries it.
    email: String,
    session_jwt: String,
    expires_at: time::OffsetDateTime,
}

struct Walked {
    application_id: String,
    customer_id: String,
}

async fn walk(
    target: &Target,
    args: &Args,
    report: &mut Report,
    user: &User,
) -> Result<Walked, Failure> {
    report
        .step("onboarding started", onboarding_started(target, user))
        .await?;
    let (application_id, customer_id) = report
        .step(
            "application approved by Unit",
            application_approved(
                target,
                user,
                Duration::from_secs(args.approval_timeout_secs),
            ),
        )
        .await?;
    let stepped_up = report
        .step(
            "TOTP enrolled, session stepped up, lifetime kept",
            step_up(target, user),
        )
        .await?;
    report
        .step(
            "customer tokens: cards-write waits for the bank's contact, the read scopes work at Unit",
            customer_token(target, user, &stepped_up, &customer_id, &args.scope),
        )
        .await?;
    report
        .step("audit item", audit(target, user, &customer_id))
        .await?;
    Ok(Walked {
        application_id,
        customer_id,
    })
}

fn rfc3339(v: &Value) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(v.as_str()?, &time::format_description::well_known::Rfc3339).ok()
}

async fn create_user(target: &Target) -> Result<(User, String), Failure> {
    let (email, body) = target.password_user("smoke").await?;
    let user = User {
        user_id: body["user_id"].as_str().unwrap_or_default().to_owned(),
        email: email.clone(),
        session_jwt: body["session_jwt"].as_str().unwrap_or_default().to_owned(),
        expires_at: rfc3339(&body["session"]["expires_at"])
            .ok_or_else(|| Failure(format!("Stytch's session has no expires_at: {body}")))?,
    };
    let detail = format!("{} ({email})", user.user_id);
    Ok((user, detail))
}

async fn onboarding(target: &Target, user: &User) -> Result<Value, Failure> {
    let (status, body) = target
        .api(Method::GET, "/onboarding", &user.session_jwt)
        .send_json("the API")
        .await?;
    if status != StatusCode::OK {
        return Err(target.api_refusal("GET /onboarding", status, &body));
    }
    Ok(body)
}

async fn onboarding_started(target: &Target, user: &User) -> Result<((), String), Failure> {
    // With the table, the record tells whether Stytch's webhook came before us.
    let webhook = match &target.store {
        None => None,
        Some(store) => {
            let mut seen = false;
            for _ in 0..40 {
                if store
                    .get_user(&user.user_id)
                    .await
                    .map_err(|e| Failure(format!("cannot read the table: {e}")))?
                    .is_some_and(|r| r.form_id.is_some())
                {
                    seen = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Some(seen)
        }
    };
    let state = onboarding(target, user).await?;
    if state["state"] != "form_pending" || state["form_url"].as_str().is_none() {
        return Err(Failure(format!(
            "GET /onboarding should answer form_pending with a form_url for a new user, got {state}"
        )));
    }
    let how = match webhook {
        Some(true) => "the signup webhook arrived and created the form",
        Some(false) => {
            "no signup webhook within 10 s, GET /onboarding created the form (check Stytch's \
             webhook endpoint: <ApiUrl>/webhooks/stytch with the secret's stytch_webhook_secret)"
        }
        None => {
            "GET /onboarding answered the form (no TABLE_NAME: cannot tell whether the webhook came first)"
        }
    };
    Ok(((), how.to_owned()))
}

/// Unit's sandbox test data for an individual, with a random SSN outside the ones the sandbox
/// reserves for forced outcomes (000000001 to 000000006) and outside ranges never issued.
/// The e-mail is the one signed up with, typed as a user would: the bridge defaults only to a
/// verified one, and a password's is not.
fn application_body(email: &str) -> Value {
    let ssn = format!("{:09}", fastrand::u64(100_000_000..=665_999_999));
    json!({"full_name": {"first": "Peter", "last": "Parker"}, "date_of_birth": "2001-08-10",
           "address": {"street": "20 Ingram St", "city": "Forest Hills", "state": "NY", "postal_code": "11375"},
           "phone": {"country_code": "1", "number": "5555555555"}, "ssn": ssn, "email": email})
}

async fn application_approved(
    target: &Target,
    user: &User,
    timeout: Duration,
) -> Result<((String, String), String), Failure> {
    let (status, body) = target
        .api(Method::POST, "/onboarding/application", &user.session_jwt)
        .json(&application_body(&user.email))
        .send_json("the API")
        .await?;
    if status != StatusCode::CREATED {
        return Err(target.api_refusal("POST /onboarding/application", status, &body));
    }
    let deadline = Instant::now() + timeout;
    let mut approved_by_us = false;
    let mut state = body;
    loop {
        let application = state["application_id"].as_str().unwrap_or_default();
        match state["state"].as_str().unwrap_or_default() {
            "approved" if state["customer_id"].is_string() => {
                let customer = state["customer_id"].as_str().unwrap_or_default().to_owned();
                let how = if approved_by_us {
                    "PendingReview, approved through Unit's sandbox simulation"
                } else {
                    "approved by Unit"
                };
                let detail = format!("application {application}, customer {customer} ({how})");
                return Ok(((application.to_owned(), customer), detail));
            }
            "pending_review" if !approved_by_us => {
                let path = format!("/sandbox/applications/{application}/approve");
                let (status, body) = target
                    .unit(Method::POST, &path)
                    .json(&json!({"data": {"type": "applicationApprove",
                                           "attributes": {"reason": "bridge-admin smoke"}}}))
                    .send_json("Unit")
                    .await?;
                if !status.is_success() {
                    return Err(unit_refusal(target, status, &body));
                }
                approved_by_us = true;
            }
            s @ ("denied" | "canceled" | "awaiting_documents") => {
                return Err(Failure(format!(
                    "Unit's decision on application {application} is {s}: the test data should \
                     be approved at once in Unit's sandbox (is UNIT_API_URL a sandbox?)"
                )));
            }
            _ => {}
        }
        if Instant::now() > deadline {
            return Err(Failure(format!(
                "no approval within {} s (state {}): are Unit's webhooks pointed at <ApiUrl>/webhooks/unit?",
                timeout.as_secs(),
                state["state"]
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        state = onboarding(target, user).await?;
    }
}

async fn step_up(target: &Target, user: &User) -> Result<(String, String), Failure> {
    let (status, enrolment) = target
        .api(Method::POST, "/mfa/totp", &user.session_jwt)
        .json(&json!({}))
        .send_json("the API")
        .await?;
    if status != StatusCode::CREATED {
        return Err(target.api_refusal("POST /mfa/totp", status, &enrolment));
    }
    let secret = enrolment["secret"].as_str().unwrap_or_default();
    // What the user's authenticator app shows now.
    let key = sandboxes::totp::base32_decode(secret)
        .ok_or_else(|| Failure(format!("the TOTP secret is not base32: {secret:?}")))?;
    let code = sandboxes::totp::code_at(&key, time::OffsetDateTime::now_utc().unix_timestamp());
    let (status, body) = target
        .api(Method::POST, "/mfa/totp/authenticate", &user.session_jwt)
        .json(&json!({"totp_code": code}))
        .send_json("the API")
        .await?;
    if status != StatusCode::OK {
        return Err(target.api_refusal("POST /mfa/totp/authenticate", status, &body));
    }
    let expires = rfc3339(&body["session_expires_at"]).ok_or_else(|| {
        Failure(format!(
            "the step-up answered no session_expires_at: {body}"
        ))
    })?;
    // We send Stytch the minutes the session has left, rounded up.
    let moved = (expires - user.expires_at).whole_seconds();
    if moved.abs() > 60 {
        return Err(Failure(format!(
            "the step-up moved the session's end by {moved} s (from {} to {expires}): it must keep the login's lifetime",
            user.expires_at
        )));
    }
    let jwt = body["session_jwt"].as_str().unwrap_or_default().to_owned();
    Ok((jwt, format!("session still ends at {expires}")))
}

async fn customer_token(
    target: &Target,
    user: &User,
    stepped_up: &str,
    customer_id: &str,
    scope: &str,
) -> Result<((), String), Failure> {
    // The authenticator was enrolled with the password session alone: a sensitive token must
    // wait for a proof of the bank account's e-mail or phone (SECURITY.md).
    let (status, body) = target
        .api(Method::POST, "/unit/customer-token", stepped_up)
        .json(&json!({"scope": "cards-write"}))
        .send_json("the API")
        .await?;
    if (status, body["error"]["code"].as_str())
        != (StatusCode::FORBIDDEN, Some("authenticator_unconfirmed"))
    {
        return Err(Failure(format!(
            "a cards-write token for an authenticator enrolled with the password alone answered {status} {body}: the deployment must answer 403 authenticator_unconfirmed (is it older than this bridge-admin?)"
        )));
    }
    let (status, body) = target
        .api(Method::POST, "/unit/customer-token", stepped_up)
        .json(&json!({"scope": scope}))
        .send_json("the API")
        .await?;
    if status != StatusCode::OK {
        return Err(target.api_refusal("POST /unit/customer-token", status, &body));
    }
    if body["customer_id"] != customer_id {
        return Err(Failure(format!(
            "the token is for customer {}, not {customer_id}",
            body["customer_id"]
        )));
    }
    let token = body["token"].as_str().unwrap_or_default();
    let (status, customer) = target
        .unit_with(Method::GET, &format!("/customers/{customer_id}"), token)
        .send_json("Unit")
        .await?;
    if status != StatusCode::OK {
        return Err(Failure(format!(
            "Unit refused the customer token it issued ({status}): {customer}"
        )));
    }
    if customer["data"]["attributes"]["jwtSubject"] != user.user_id.as_str() {
        return Err(Failure(format!(
            "customer {customer_id} has jwtSubject {}, not the Stytch user {}",
            customer["data"]["attributes"]["jwtSubject"], user.user_id
        )));
    }
    let detail = format!(
        "{scope} for {} s; GET /customers/{customer_id} with it answered 200",
        body["expires_in"]
    );
    Ok(((), detail))
}

async fn audit(target: &Target, user: &User, customer_id: &str) -> Result<((), String), Failure> {
    let Some(store) = &target.store else {
        return Ok(((), "skipped: no TABLE_NAME to read".into()));
    };
    let entries = store
        .audit_for_user(&user.user_id)
        .await
        .map_err(|e| Failure(format!("cannot read the audit items: {e}")))?;
    let Some(entry) = entries
        .iter()
        .find(|e| e.event.is_none() && e.customer_id.as_deref() == Some(customer_id))
    else {
        return Err(Failure(format!(
            "no audit item for the token of customer {customer_id} in the table"
        )));
    };
    Ok((
        (),
        format!(
            "token for {} issued at {} (request {})",
            entry.scopes, entry.issued_at, entry.request_id
        ),
    ))
}

async fn cleanup(
    target: &Target,
    user: &User,
    walked: Option<&Walked>,
) -> Result<((), String), Failure> {
    let (status, body) = target
        .stytch(Method::DELETE, &format!("/v1/users/{}", user.user_id))
        .send_json("Stytch")
        .await?;
    if status != StatusCode::OK {
        return Err(stytch_refusal(target, status, &body));
    }
    let stays = match walked {
        Some(w) => format!(
            "application {} and customer {} (Unit's sandbox keeps them; they are test data)",
            w.application_id, w.customer_id
        ),
        None => "whatever Unit made before the failure".into(),
    };
    Ok((
        (),
        format!(
            "deleted Stytch user {}; stays at Unit: {stays}; our record is marked deleted when the delete webhook arrives",
            user.user_id
        ),
    ))
}

/// With live credentials (or `--read-only`): only checks that create nothing.
async fn live_checks(target: &Target, args: &Args) -> Result<(), Failure> {
    let mut report = Report::new();
    report
        .step("Stytch credentials and JWKS", stytch_credentials(target))
        .await?;
    report
        .step("Unit credentials", unit_credentials(target))
        .await?;
    report
        .step(
            "webhook endpoints refuse unsigned calls",
            webhooks_refuse_unsigned(target),
        )
        .await?;
    if let (Some(customer), Some(jwt)) = (&args.customer_id, &args.session_jwt) {
        report
            .step(
                "token exchange for the named customer",
                named_token_exchange(target, customer, jwt),
            )
            .await?;
    } else {
        println!("     (no --customer-id/--session-jwt: the token exchange is not checked)");
    }
    report.done();
    Ok(())
}

/// Live check: Stytch accepts the secret (asking for an unknown user) and serves the JWKS.
async fn stytch_credentials(target: &Target) -> Result<((), String), Failure> {
    // An unknown user: 404 proves the secret, 401 refutes it, and nothing is created.
    let kind = if target.project_id.starts_with("project-live-") {
        "user-live"
    } else {
        "user-test"
    };
    let probe = format!("/v1/users/{kind}-00000000-0000-0000-0000-000000000000");
    let (status, body) = target
        .stytch(Method::GET, &probe)
        .send_json("Stytch")
        .await?;
    if status != StatusCode::NOT_FOUND {
        return Err(stytch_refusal(target, status, &body));
    }
    let (status, body) = target
        .stytch(
            Method::GET,
            &format!("/v1/sessions/jwks/{}", target.project_id),
        )
        .send_json("Stytch")
        .await?;
    if status != StatusCode::OK {
        return Err(stytch_refusal(target, status, &body));
    }
    let keys = body["keys"].as_array().map_or(0, Vec::len);
    Ok((
        (),
        format!("the secret is accepted; the JWKS has {keys} signing key(s)"),
    ))
}

/// Live check: Unit accepts the org token (listing one application).
async fn unit_credentials(target: &Target) -> Result<((), String), Failure> {
    let (status, body) = target
        .unit(Method::GET, "/applications?page[limit]=1")
        .send_json("Unit")
        .await?;
    if status != StatusCode::OK {
        return Err(unit_refusal(target, status, &body));
    }
    Ok(((), "the org token is accepted".to_owned()))
}

/// Live check: both webhook endpoints of the API answer an unsigned call with 401.
async fn webhooks_refuse_unsigned(target: &Target) -> Result<((), String), Failure> {
    let mut seen = Vec::new();
    for path in ["/webhooks/stytch", "/webhooks/unit"] {
        let (status, body) = target
            .api_unauthenticated(Method::POST, path)
            .json(&json!({}))
            .send_json("the API")
            .await?;
        if status != StatusCode::UNAUTHORIZED {
            return Err(target.api_refusal(&format!("POST {path} (unsigned)"), status, &body));
        }
        seen.push(format!("{path} 401"));
    }
    Ok(((), seen.join(", ")))
}

/// Live check: the session `jwt` (`--session-jwt`) is exchanged for a read-only token of the
/// `customer` named by `--customer-id`.
async fn named_token_exchange(
    target: &Target,
    customer: &str,
    jwt: &str,
) -> Result<((), String), Failure> {
    let (status, body) = target
        .api(Method::POST, "/unit/customer-token", jwt)
        .json(&json!({"scope": "customers"}))
        .send_json("the API")
        .await?;
    if status != StatusCode::OK {
        return Err(target.api_refusal("POST /unit/customer-token", status, &body));
    }
    if body["customer_id"] != customer {
        return Err(Failure(format!(
            "the session JWT belongs to customer {}, not {customer}",
            body["customer_id"]
        )));
    }
    Ok(((), format!("a read-only token for customer {customer}")))
}
