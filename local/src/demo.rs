//! `local-stack demo`: the whole Stytch → Unit walkthrough, scripted against a local stack with
//! its sandboxes: signup → webhook → onboarding form → approval → TOTP enrolment → step-up →
//! customer token → a Unit call with that token.
//!
//! Each step prints what happened; a failed step skips the steps that need its result and fails
//! the demo.

use std::time::Duration;

use serde_json::{Value, json};

use crate::stack::LocalStack;

/// How one step ended.
enum Step {
    Done(String),
    Failed(String),
}

struct Demo<'a> {
    stack: &'a LocalStack,
    http: reqwest::Client,
    failed: bool,
    n: usize,
}

impl Demo<'_> {
    fn report(&mut self, title: &str, step: Step) -> bool {
        self.n += 1;
        let (mark, detail, ok) = match step {
            Step::Done(d) => ("ok  ", d, true),
            Step::Failed(d) => {
                self.failed = true;
                ("FAIL", d, false)
            }
        };
        println!("{:>2}. [{mark}] {title}: {detail}", self.n);
        ok
    }

    fn skip(&mut self, title: &str, needs: &str) {
        self.n += 1;
        println!("{:>2}. [skip] {title}: needs {needs}", self.n);
    }

    /// Calls our API; anything but a 2xx fails the step.
    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        jwt: &str,
        body: Value,
    ) -> Result<Value, Step> {
        let response = self
            .http
            .request(method, format!("{}{path}", self.stack.api_url))
            .bearer_auth(jwt)
            .json(&body)
            .send()
            .await
            .map_err(|e| Step::Failed(e.to_string()))?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match status {
            200..=299 => Ok(body),
            _ => Err(Step::Failed(format!("{path} answered {status}: {body}"))),
        }
    }
}

/// Runs the walkthrough; `Err` if a step that is built failed.
pub async fn run(stack: &LocalStack) -> Result<(), String> {
    let (Some((stytch, _)), Some((unit, _))) = (&stack.stytch, &stack.unit) else {
        return Err("the demo needs both sandboxes (unset STYTCH_* and UNIT_API_URL)".into());
    };
    let mut demo = Demo {
        stack,
        http: reqwest::Client::new(),
        failed: false,
        n: 0,
    };
    // 1. Sign up at Stytch (password), as a frontend SDK would.
    let (user_id, mut jwt, email) = match stack.sign_up(&demo.http).await {
        Ok(login) => login,
        Err(e) => {
            demo.report("sign up at Stytch", Step::Failed(e.to_string()));
            return Err("sign-up failed".into());
        }
    };
    demo.report("sign up at Stytch", Step::Done(format!("user {user_id}")));

    // 2. Stytch tells us through its Svix-signed webhook.
    let mut delivery = None;
    for _ in 0..100 {
        delivery = stytch
            .webhooks
            .deliveries()
            .into_iter()
            .find(|d| d.body["id"] == user_id.as_str() && !d.attempts.is_empty());
        if delivery.as_ref().is_some_and(|d| d.delivered) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let webhook = match delivery {
        Some(d) if d.delivered => {
            Step::Done(format!("{} delivered to /webhooks/stytch", d.event_type))
        }
        Some(d) => Step::Failed(format!("attempts: {:?}", d.attempts)),
        None => Step::Failed("no delivery within 5 s".into()),
    };
    let webhook_ok = demo.report("Stytch webhook creates the onboarding record", webhook);

    // 3-5. Onboarding: our state and form link, the applicant completes the form, Unit approves.
    let mut customer_id = None;
    if webhook_ok {
        match demo
            .api(reqwest::Method::GET, "/onboarding", &jwt, Value::Null)
            .await
        {
            Err(step) => {
                demo.report("GET /onboarding shows the form link", step);
                demo.skip("complete the Unit application form", "the onboarding form");
                demo.skip(
                    "Unit approval reaches /webhooks/unit",
                    "the onboarding form",
                );
            }
            Ok(state) => {
                let form_id = state["form_id"].as_str().unwrap_or_default().to_owned();
                demo.report(
                    "GET /onboarding shows the form link",
                    Step::Done(format!("{}", state["form_url"])),
                );
                let completed: Value = demo
                    .http
                    .post(format!(
                        "{}/_sandbox/application-forms/{form_id}/complete",
                        stack.unit_url()
                    ))
                    // The applicant types their e-mail: a password's is unverified at Stytch,
                    // so the form carries no prefill of it.
                    .json(&json!({"email": email}))
                    .send()
                    .await
                    .map_err(|e| e.to_string())?
                    .json()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = completed["data"]["attributes"]["status"]
                    .as_str()
                    .unwrap_or("?")
                    .to_owned();
                demo.report(
                    "complete the Unit application form",
                    Step::Done(format!("application {status}")),
                );
                for _ in 0..100 {
                    if let Ok(state) = demo
                        .api(reqwest::Method::GET, "/onboarding", &jwt, Value::Null)
                        .await
                        && let Some(c) = state["customer_id"].as_str()
                    {
                        customer_id = Some(c.to_owned());
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let step = match &customer_id {
                    Some(c) => Step::Done(format!("customer {c} recorded")),
                    None => Step::Failed(format!(
                        "no customer id after approval; Unit deliveries: {:?}",
                        unit.webhooks.deliveries().len()
                    )),
                };
                demo.report("Unit approval reaches /webhooks/unit", step);
            }
        }
    } else {
        demo.skip("GET /onboarding shows the form link", "the signup webhook");
        demo.skip("complete the Unit application form", "the signup webhook");
        demo.skip("Unit approval reaches /webhooks/unit", "the signup webhook");
    }

    // 6. The e-mail on the bank account proven in the session (a Stytch e-mail passcode): it
    // confirms the authenticator enrolled next as the customer's own.
    match stack.prove_email(&demo.http, &jwt, &email).await {
        Ok(proven) => {
            jwt = proven;
            demo.report(
                "prove the account's e-mail (Stytch e-mail passcode)",
                Step::Done(format!("an otp/email factor for {email}")),
            );
        }
        Err(e) => {
            demo.report(
                "prove the account's e-mail (Stytch e-mail passcode)",
                Step::Failed(e.to_string()),
            );
        }
    }

    // 7-8. TOTP enrolment and step-up through our API.
    let mut stepped_up = false;
    match demo
        .api(reqwest::Method::POST, "/mfa/totp", &jwt, json!({}))
        .await
    {
        Err(step) => {
            demo.report("enrol TOTP (POST /mfa/totp)", step);
            demo.skip("step up with a TOTP code", "TOTP enrolment");
        }
        Ok(enrolled) => {
            let secret = enrolled["secret"].as_str().unwrap_or_default().to_owned();
            demo.report(
                "enrol TOTP (POST /mfa/totp)",
                Step::Done(format!("totp {}", enrolled["totp_id"])),
            );
            let key = sandboxes::totp::base32_decode(&secret).unwrap_or_default();
            let code = sandboxes::totp::code_at(&key, sandboxes::now().unix_timestamp());
            match demo
                .api(
                    reqwest::Method::POST,
                    "/mfa/totp/authenticate",
                    &jwt,
                    json!({"totp_code": code}),
                )
                .await
            {
                Ok(reply) => {
                    jwt = reply["session_jwt"].as_str().unwrap_or_default().to_owned();
                    stepped_up = true;
                    demo.report(
                        "step up with a TOTP code",
                        Step::Done("a fresh JWT with a totp factor".into()),
                    );
                }
                Err(step) => {
                    demo.report("step up with a TOTP code", step);
                }
            }
        }
    }

    // 8-9. The customer token, then a Unit call with it.
    if customer_id.is_some() && stepped_up {
        let body = json!({"scope": "customers accounts cards-write", "expires_in": 600});
        match demo
            .api(reqwest::Method::POST, "/unit/customer-token", &jwt, body)
            .await
        {
            Ok(reply) => {
                let token = reply["token"].as_str().unwrap_or_default().to_owned();
                demo.report(
                    "exchange the JWT for a Unit customer token",
                    Step::Done(format!("scope {}", reply["scope"])),
                );
                let id = customer_id.unwrap_or_default();
                let response = demo
                    .http
                    .get(format!("{}/customers/{id}", stack.unit_url()))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let step = if response.status().is_success() {
                    Step::Done(format!(
                        "GET /customers/{id} with the customer token: {}",
                        response.status()
                    ))
                } else {
                    Step::Failed(format!("GET /customers/{id}: {}", response.status()))
                };
                demo.report("call Unit with the customer token", step);
            }
            Err(step) => {
                demo.report("exchange the JWT for a Unit customer token", step);
                demo.skip("call Unit with the customer token", "the customer token");
            }
        }
    } else {
        demo.skip(
            "exchange the JWT for a Unit customer token",
            "an approved customer and a TOTP step-up",
        );
        demo.skip("call Unit with the customer token", "the customer token");
    }

    if demo.failed {
        Err("a step that is built failed".into())
    } else {
        Ok(())
    }
}
