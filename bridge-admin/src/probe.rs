//! `bridge-admin probe` (`PROBE=1 make smoke`): asks the real Stytch and Unit test environments
//! the questions no document answers (docs/unit-api.md, Open questions; docs/stytch-api.md) and
//! prints each answer beside our reading, saying whether they agree. The first run with real
//! test credentials settles them; a disagreement names the reading to revisit.
//!
//! Test credentials only: a `project-live-` project or Unit's live host is refused. It uses a
//! Unit sandbox customer and the Stytch test user bound to it (`jwtSubject`) that the operator
//! names, creates one throwaway Stytch test user (deleted at the end), and creates a Unit
//! application form only with `--create-form` (one, tagged `bridgeProbe`).

use std::io::BufRead;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::error::{ErrorCode, StytchRefusal, token_exchange_failure};
use shared::unit::{UnitError, UnitErrorItem};

use crate::target::{Failure, SendJson, Target, stytch_refusal};

/// Options of `probe`.
#[derive(clap::Args)]
pub struct Args {
    /// A Unit sandbox customer whose `jwtSubject` is the Stytch test user below.
    #[arg(long, env = "PROBE_CUSTOMER_ID")]
    pub customer_id: String,
    /// That Stytch test user's e-mail and password (a password login gives the session JWT).
    #[arg(long, env = "PROBE_EMAIL")]
    pub email: String,
    #[arg(long, env = "PROBE_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// Also wait (up to 6 minutes) for the user's session JWT to expire, to ask Unit what it
    /// answers to an expired one.
    #[arg(long)]
    pub wait_for_expiry: bool,
    /// Send an e-mail passcode to the user and read it from standard input, to learn the factor
    /// type Stytch gives a consumer e-mail code.
    #[arg(long)]
    pub email_code: bool,
    /// Create one Unit application form (tagged `bridgeProbe`) whose prefill carries the user as
    /// `jwtSubject`, and print its link: complete it in a browser, then rerun with --form-id.
    #[arg(long, conflicts_with = "form_id")]
    pub create_form: bool,
    /// A form made by --create-form and completed: whether Unit copied the prefill's
    /// `jwtSubject` onto the application and the customer.
    #[arg(long)]
    pub form_id: Option<String>,
}

/// One question's outcome.
enum Verdict {
    Agrees,
    Disagrees,
    /// Asked, but the answer settles nothing by itself (printed for the record).
    Noted,
}

struct Findings {
    disagreements: usize,
}

impl Findings {
    /// Prints a question, our reading and Unit's or Stytch's answer.
    fn report(&mut self, question: &str, reading: &str, answer: &str, verdict: Verdict) {
        let mark = match verdict {
            Verdict::Agrees => "agrees",
            Verdict::Disagrees => {
                self.disagreements += 1;
                "DISAGREES"
            }
            Verdict::Noted => "noted",
        };
        println!("{mark:<9} {question}\n          reading: {reading}\n          answer:  {answer}");
    }
}

/// Runs the probe; `Ok(false)` when an answer disagrees with our reading.
pub async fn run(args: Args) -> Result<bool, Failure> {
    let target = Target::from_env(None).await?;
    if target.is_live() {
        return Err(Failure(format!(
            "probe runs with test credentials only ({}); use a project-test- project and Unit's sandbox",
            target.live_reason()
        )));
    }
    println!("probe: {}", target.describe());
    let mut findings = Findings { disagreements: 0 };
    let named = password_login(&target, &args.email, &args.password).await?;
    let stranger = Stranger::create(&target).await?;
    let asked = ask(&target, &args, &named, &stranger, &mut findings).await;
    stranger.delete(&target).await;
    asked?;
    println!(
        "probe: {} disagreement(s); each names the reading in docs/ to revisit",
        findings.disagreements
    );
    Ok(findings.disagreements == 0)
}

async fn ask(
    target: &Target,
    args: &Args,
    named: &Session,
    stranger: &Stranger,
    findings: &mut Findings,
) -> Result<(), Failure> {
    token_questions(target, &args.customer_id, named, stranger, findings).await?;
    wrong_totp_code(target, stranger, findings).await?;
    if args.email_code {
        email_code_factor(target, &args.email, named, findings).await?;
    }
    if args.create_form {
        create_form(target, &named.user_id).await?;
    }
    if let Some(form_id) = &args.form_id {
        prefill_subject(target, form_id, &named.user_id, findings).await?;
    }
    if args.wait_for_expiry {
        expired_jwt(target, &args.customer_id, named, findings).await?;
    }
    Ok(())
}

/// A Stytch session: its user and JWT.
struct Session {
    user_id: String,
    jwt: String,
    expires_at: i64,
}

async fn password_login(target: &Target, email: &str, password: &str) -> Result<Session, Failure> {
    let (status, body) = target
        .stytch(Method::POST, "/v1/passwords/authenticate")
        .json(&json!({"email": email, "password": password, "session_duration_minutes": 60}))
        .send_json("Stytch")
        .await?;
    if status != StatusCode::OK {
        return Err(stytch_refusal(target, status, &body));
    }
    session_of(&body)
}

fn session_of(body: &Value) -> Result<Session, Failure> {
    let jwt = body["session_jwt"].as_str().unwrap_or_default().to_owned();
    let claims = jwt
        .split('.')
        .nth(1)
        .and_then(|p| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .ok_or_else(|| Failure(format!("Stytch's answer holds no session JWT: {body}")))?;
    Ok(Session {
        user_id: body["user_id"].as_str().unwrap_or_default().to_owned(),
        jwt,
        expires_at: claims["exp"].as_i64().unwrap_or_default(),
    })
}

/// A throwaway Stytch test user with a password session, deleted at the end.
struct Stranger {
    session: Session,
}

impl Stranger {
    async fn create(target: &Target) -> Result<Self, Failure> {
        let (_, body) = target.password_user("probe").await?;
        Ok(Self {
            session: session_of(&body)?,
        })
    }

    async fn delete(&self, target: &Target) {
        let path = format!("/v1/users/{}", self.session.user_id);
        if let Err(e) = target
            .stytch(Method::DELETE, &path)
            .send_json("Stytch")
            .await
        {
            eprintln!(
                "probe: could not delete the test user {}: {e}",
                self.session.user_id
            );
        }
    }
}

/// `POST /customers/{id}/token`: Unit's status and our reading of its answer at the exchange.
async fn token_call(
    target: &Target,
    customer_id: &str,
    attributes: Value,
    bearer: Option<&str>,
) -> Result<(StatusCode, Value, Option<ErrorCode>), Failure> {
    let path = format!("/customers/{customer_id}/token");
    let request = match bearer {
        Some(token) => target.unit_with(Method::POST, &path, token),
        None => target.unit(Method::POST, &path),
    };
    let (status, body) = request
        .json(&json!({"data": {"type": "customerToken", "attributes": attributes}}))
        .send_json("Unit")
        .await?;
    if status.is_success() {
        return Ok((status, body, None));
    }
    let errors: Vec<UnitErrorItem> =
        serde_json::from_value(body["errors"].clone()).unwrap_or_default();
    let ours = token_exchange_failure(UnitError::Api {
        status: status.as_u16(),
        errors,
        retry_after: None,
    });
    Ok((status, body, Some(ours.code)))
}

fn unit_answer(status: StatusCode, body: &Value) -> String {
    let first = &body["errors"][0];
    if first.is_null() {
        return format!("{status}");
    }
    format!(
        "{status} title={:?} code={:?} detail={:?}",
        first["title"].as_str().unwrap_or_default(),
        first["code"].as_str().unwrap_or_default(),
        first["detail"].as_str().unwrap_or_default()
    )
}

impl Verdict {
    /// Whether the answer is our reading.
    fn agrees(yes: bool) -> Self {
        if yes { Self::Agrees } else { Self::Disagrees }
    }
}

fn verdict(ours: Option<ErrorCode>, want: ErrorCode) -> Verdict {
    Verdict::agrees(ours == Some(want))
}

/// The token exchange's open questions (docs/unit-api.md OQ2, OQ4, §5).
async fn token_questions(
    target: &Target,
    customer_id: &str,
    named: &Session,
    stranger: &Stranger,
    findings: &mut Findings,
) -> Result<(), Failure> {
    let (status, body, _) = token_call(
        target,
        customer_id,
        json!({"scope": "customers", "jwtToken": named.jwt, "expiresIn": 300}),
        None,
    )
    .await?;
    let issued = body["data"]["attributes"]["token"]
        .as_str()
        .map(str::to_owned);
    findings.report(
        "the bound user's fresh session JWT, scope customers (OQ2)",
        "2xx (the spec says 201) with a customer bearer token",
        &format!(
            "{status}{}",
            if issued.is_some() {
                " with a token"
            } else {
                ""
            }
        ),
        Verdict::agrees(status.is_success() && issued.is_some()),
    );
    let (status, body, ours) = token_call(
        target,
        customer_id,
        json!({"scope": "customers", "jwtToken": stranger.session.jwt}),
        None,
    )
    .await?;
    findings.report(
        "a valid session JWT of another Stytch user (OQ4)",
        "a 401/403 pointing at the JWT: our 401 session_rejected_by_unit",
        &unit_answer(status, &body),
        verdict(ours, ErrorCode::SessionRejectedByUnit),
    );
    let (status, body, ours) =
        token_call(target, customer_id, json!({"scope": "cards-write"}), None).await?;
    findings.report(
        "a two-factor scope (cards-write) without a JWT (OQ3, OQ4)",
        "403 naming the scopes: our 403 unit_forbidden",
        &unit_answer(status, &body),
        verdict(ours, ErrorCode::UnitForbidden),
    );
    if let Some(token) = issued {
        customer_token_write(target, customer_id, named, &token, findings).await?;
    }
    Ok(())
}

/// What a customer token holding `customer-token-write` may mint (docs/unit-api.md §5): asked
/// with it as the bearer, without a JWT, for a read scope.
async fn customer_token_write(
    target: &Target,
    customer_id: &str,
    named: &Session,
    plain: &str,
    findings: &mut Findings,
) -> Result<(), Failure> {
    let (status, body, _) = token_call(
        target,
        customer_id,
        json!({"scope": "customers customer-token-write", "jwtToken": named.jwt, "expiresIn": 300}),
        None,
    )
    .await?;
    let Some(writer) = body["data"]["attributes"]["token"].as_str() else {
        findings.report(
            "a token with customer-token-write (for Unit's components)",
            "Unit issues it with the JWT",
            &unit_answer(status, &body),
            Verdict::Noted,
        );
        return Ok(());
    };
    let (status, body, _) = token_call(
        target,
        customer_id,
        json!({"scope": "customers accounts"}),
        Some(writer),
    )
    .await?;
    findings.report(
        "a token holding customer-token-write mints customers accounts without a JWT",
        "not documented: printed for docs/unit-api.md §5",
        &unit_answer(status, &body),
        Verdict::Noted,
    );
    let (status, body, _) = token_call(
        target,
        customer_id,
        json!({"scope": "customers accounts"}),
        Some(plain),
    )
    .await?;
    findings.report(
        "a token without customer-token-write mints another",
        "refused (401 or 403)",
        &unit_answer(status, &body),
        Verdict::agrees(matches!(status.as_u16(), 401 | 403)),
    );
    Ok(())
}

/// Stytch's error type for a wrong TOTP code (docs/stytch-api.md §2).
async fn wrong_totp_code(
    target: &Target,
    stranger: &Stranger,
    findings: &mut Findings,
) -> Result<(), Failure> {
    let user_id = &stranger.session.user_id;
    let (status, created) = target
        .stytch(Method::POST, "/v1/totps")
        .json(&json!({"user_id": user_id, "expiration_minutes": 5}))
        .send_json("Stytch")
        .await?;
    if status != StatusCode::OK {
        return Err(stytch_refusal(target, status, &created));
    }
    let secret = created["secret"].as_str().unwrap_or_default();
    let key = sandboxes::totp::base32_decode(secret)
        .ok_or_else(|| Failure(format!("Stytch's TOTP secret is not base32: {created}")))?;
    let right = sandboxes::totp::code_at(&key, time::OffsetDateTime::now_utc().unix_timestamp());
    let wrong = format!(
        "{:06}",
        (right.parse::<u32>().unwrap_or(0) + 500_000) % 1_000_000
    );
    let (status, body) = target
        .stytch(Method::POST, "/v1/totps/authenticate")
        .json(&json!({"user_id": user_id, "totp_code": wrong}))
        .send_json("Stytch")
        .await?;
    let error_type = body["error_type"].as_str().unwrap_or_default();
    findings.report(
        "a wrong TOTP code at /v1/totps/authenticate",
        "an error type our table reads as a wrong code (invalid_totp_code, unable_to_authenticate_totp)",
        &format!("{status} {error_type}"),
        Verdict::agrees(StytchRefusal::of(error_type) == StytchRefusal::WrongTotpCode),
    );
    Ok(())
}

/// The factor type and delivery method of a consumer e-mail passcode (docs/stytch-api.md, the
/// contact proof): the code is read from standard input.
async fn email_code_factor(
    target: &Target,
    email: &str,
    named: &Session,
    findings: &mut Findings,
) -> Result<(), Failure> {
    let (status, sent) = target
        .stytch(Method::POST, "/v1/otps/email/send")
        .json(&json!({"email": email, "session_jwt": named.jwt}))
        .send_json("Stytch")
        .await?;
    if status != StatusCode::OK {
        return Err(stytch_refusal(target, status, &sent));
    }
    println!("probe: type the passcode Stytch sent to {email}:");
    let mut code = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut code)
        .map_err(|e| Failure(format!("cannot read the passcode: {e}")))?;
    let (status, body) = target
        .stytch(Method::POST, "/v1/otps/authenticate")
        .json(
            &json!({"method_id": sent["email_id"], "code": code.trim(), "session_jwt": named.jwt}),
        )
        .send_json("Stytch")
        .await?;
    if status != StatusCode::OK {
        return Err(stytch_refusal(target, status, &body));
    }
    let factors = body["session"]["authentication_factors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let email_factor = factors.iter().find(|f| !f["email_factor"].is_null());
    let answer = email_factor.map_or_else(
        || "no factor with an email_factor".to_owned(),
        |f| {
            format!(
                "type={} delivery_method={}",
                f["type"], f["delivery_method"]
            )
        },
    );
    let agrees = email_factor.is_some_and(|f| {
        matches!(f["type"].as_str(), Some("email_otp" | "otp")) && f["delivery_method"] == "email"
    });
    findings.report(
        "the factor of a consumer e-mail passcode",
        "email_otp or otp, delivery_method email, with email_factor.email_address",
        &answer,
        Verdict::agrees(agrees),
    );
    Ok(())
}

/// Creates the one probe form: the prefill carries the user as `jwtSubject`.
async fn create_form(target: &Target, user_id: &str) -> Result<(), Failure> {
    let (status, body) = target
        .unit(Method::POST, "/application-forms")
        .header("x-accept-version", "V2024_06")
        .json(&json!({"data": {"type": "applicationForm", "attributes": {
            "tags": {"bridgeProbe": user_id},
            "applicantDetails": {"jwtSubject": user_id},
            "allowedApplicationTypes": ["Individual"]}}}))
        .send_json("Unit")
        .await?;
    if !status.is_success() {
        return Err(crate::target::unit_refusal(target, status, &body));
    }
    println!(
        "probe: form {} created (tagged bridgeProbe): complete it at {} with Unit's sandbox \
         test data, then rerun with --form-id {}",
        body["data"]["id"].as_str().unwrap_or_default(),
        body["data"]["links"]["related"]["href"]
            .as_str()
            .unwrap_or("(no link)"),
        body["data"]["id"].as_str().unwrap_or_default(),
    );
    Ok(())
}

/// Whether Unit copied the form prefill's `jwtSubject` onto the application and its customer
/// (docs/unit-api.md §3, the correction of 2026-12-01).
async fn prefill_subject(
    target: &Target,
    form_id: &str,
    user_id: &str,
    findings: &mut Findings,
) -> Result<(), Failure> {
    let read = |path: String| async move {
        let (status, body) = target
            .unit(Method::GET, &path)
            .header("x-accept-version", "V2024_06")
            .send_json("Unit")
            .await?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(crate::target::unit_refusal(target, status, &body))
        }
    };
    let form = read(format!("/application-forms/{form_id}")).await?;
    let Some(application_id) = form["data"]["relationships"]["application"]["data"]["id"].as_str()
    else {
        return Err(Failure(format!(
            "form {form_id} has no application yet: complete it first"
        )));
    };
    let application = read(format!("/applications/{application_id}")).await?;
    let on_application = application["data"]["attributes"]["jwtSubject"].clone();
    let customer = match application["data"]["relationships"]["customer"]["data"]["id"].as_str() {
        Some(c) => {
            read(format!("/customers/{c}")).await?["data"]["attributes"]["jwtSubject"].clone()
        }
        None => Value::Null,
    };
    findings.report(
        "Unit copies the form prefill's jwtSubject onto the application and its customer",
        "yes (the binding of docs/unit-api.md §3; we PATCH an empty customer subject anyway)",
        &format!("application {on_application}, customer {customer}"),
        Verdict::agrees(on_application == user_id && (customer.is_null() || customer == user_id)),
    );
    Ok(())
}

/// Unit's answer to the bound user's JWT once expired (OQ4).
async fn expired_jwt(
    target: &Target,
    customer_id: &str,
    named: &Session,
    findings: &mut Findings,
) -> Result<(), Failure> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let wait = u64::try_from(named.expires_at + 5 - now).unwrap_or(0);
    if wait > 360 {
        return Err(Failure(format!(
            "the JWT expires in {wait} s; not waiting that long"
        )));
    }
    println!("probe: waiting {wait} s for the session JWT to expire");
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let (status, body, ours) = token_call(
        target,
        customer_id,
        json!({"scope": "customers", "jwtToken": named.jwt}),
        None,
    )
    .await?;
    findings.report(
        "the bound user's expired session JWT (OQ4)",
        "a 401/403 pointing at the JWT: our 401 session_rejected_by_unit",
        &unit_answer(status, &body),
        verdict(ours, ErrorCode::SessionRejectedByUnit),
    );
    Ok(())
}
