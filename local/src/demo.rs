//! `local-stack demo`: the whole Stytch → Unit walkthrough, scripted against a local stack with
//! its sandboxes: signup → webhook → onboarding form → approval → TOTP enrolment → step-up →
//! customer token → a Unit call with that token → a card frozen and unfrozen with a token limited
//! to it.
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

    /// Step 2: waits up to 5 s for the Stytch sandbox to deliver the signup webhook of
    /// `user_id`; whether it was delivered.
    async fn signup_webhook(&mut self, stytch: &sandboxes::stytch::Stytch, user_id: &str) -> bool {
        let mut delivery = None;
        for _ in 0..100 {
            delivery = stytch
                .webhooks
                .deliveries()
                .into_iter()
                .find(|d| d.body["id"] == user_id && !d.attempts.is_empty());
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
        self.report("Stytch webhook creates the onboarding record", webhook)
    }

    /// Steps 3-5: reads the form link from `GET /onboarding`, completes the form in the Unit
    /// sandbox as the applicant, and waits for the approval to record the customer; the
    /// customer id, if recorded. `Err` if the sandbox's form cannot be completed.
    async fn onboarding(
        &mut self,
        unit: &sandboxes::unit::Unit,
        jwt: &str,
        email: &str,
    ) -> Result<Option<String>, String> {
        let state = match self
            .api(reqwest::Method::GET, "/onboarding", jwt, Value::Null)
            .await
        {
            Err(step) => {
                self.report("GET /onboarding shows the form link", step);
                self.skip("complete the Unit application form", "the onboarding form");
                self.skip(
                    "Unit approval reaches /webhooks/unit",
                    "the onboarding form",
                );
                return Ok(None);
            }
            Ok(state) => state,
        };
        let form_id = state["form_id"].as_str().unwrap_or_default().to_owned();
        self.report(
            "GET /onboarding shows the form link",
            Step::Done(format!("{}", state["form_url"])),
        );
        let completed: Value = self
            .http
            .post(format!(
                "{}/_sandbox/application-forms/{form_id}/complete",
                self.stack.unit_url()
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
        self.report(
            "complete the Unit application form",
            Step::Done(format!("application {status}")),
        );
        Ok(self.approval(unit, jwt).await)
    }

    /// Step 5: waits up to 5 s for Unit's approval webhook to record the customer on the
    /// onboarding record; the customer id, if recorded.
    async fn approval(&mut self, unit: &sandboxes::unit::Unit, jwt: &str) -> Option<String> {
        let mut customer_id = None;
        for _ in 0..100 {
            if let Ok(state) = self
                .api(reqwest::Method::GET, "/onboarding", jwt, Value::Null)
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
        self.report("Unit approval reaches /webhooks/unit", step);
        customer_id
    }

    /// Steps 7-8: enrols a TOTP authenticator and steps up with its current code, replacing
    /// `jwt` with the stepped-up session's; whether the step-up succeeded.
    async fn totp(&mut self, jwt: &mut String) -> bool {
        let enrolled = match self
            .api(reqwest::Method::POST, "/mfa/totp", jwt, json!({}))
            .await
        {
            Err(step) => {
                self.report("enrol TOTP (POST /mfa/totp)", step);
                self.skip("step up with a TOTP code", "TOTP enrolment");
                return false;
            }
            Ok(enrolled) => enrolled,
        };
        let secret = enrolled["secret"].as_str().unwrap_or_default().to_owned();
        self.report(
            "enrol TOTP (POST /mfa/totp)",
            Step::Done(format!("totp {}", enrolled["totp_id"])),
        );
        let key = sandboxes::totp::base32_decode(&secret).unwrap_or_default();
        let code = sandboxes::totp::code_at(&key, sandboxes::now().unix_timestamp());
        match self
            .api(
                reqwest::Method::POST,
                "/mfa/totp/authenticate",
                jwt,
                json!({"totp_code": code}),
            )
            .await
        {
            Ok(reply) => {
                *jwt = reply["session_jwt"].as_str().unwrap_or_default().to_owned();
                self.report(
                    "step up with a TOTP code",
                    Step::Done("a fresh JWT with a totp factor".into()),
                );
                true
            }
            Err(step) => {
                self.report("step up with a TOTP code", step);
                false
            }
        }
    }

    /// Steps 9-10: exchanges `jwt` for a Unit customer token, then reads customer `id` from the
    /// Unit sandbox with it. `Err` if the sandbox cannot be reached.
    async fn customer_token(&mut self, jwt: &str, id: &str) -> Result<(), String> {
        let body = json!({"scope": "customers accounts cards-write", "expires_in": 600});
        let reply = match self
            .api(reqwest::Method::POST, "/unit/customer-token", jwt, body)
            .await
        {
            Ok(reply) => reply,
            Err(step) => {
                self.report("exchange the JWT for a Unit customer token", step);
                self.skip("call Unit with the customer token", "the customer token");
                return Ok(());
            }
        };
        let token = reply["token"].as_str().unwrap_or_default().to_owned();
        self.report(
            "exchange the JWT for a Unit customer token",
            Step::Done(format!("scope {}", reply["scope"])),
        );
        let response = self
            .http
            .get(format!("{}/customers/{id}", self.stack.unit_url()))
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
        self.report("call Unit with the customer token", step);
        Ok(())
    }
}

impl Demo<'_> {
    /// Step 11: the sandbox opens a card for customer `id` (as a bank program does after
    /// approval); a token limited to it, from the stepped-up `jwt`, freezes and unfreezes it.
    async fn card_actions(&mut self, unit: &sandboxes::unit::Unit, jwt: &str, id: &str) -> bool {
        const STEP: &str = "freeze and unfreeze a card with a token limited to it";
        let card = match unit.open_card(id) {
            Ok((_, card)) => card,
            Err(e) => return self.report(STEP, Step::Failed(e)),
        };
        let body =
            json!({"scope": "cards cards-write", "resources": [{"type": "card", "ids": [card]}]});
        let token = match self
            .api(reqwest::Method::POST, "/unit/customer-token", jwt, body)
            .await
        {
            Ok(reply) => reply["token"].as_str().unwrap_or_default().to_owned(),
            Err(step) => return self.report(STEP, step),
        };
        let mut statuses = Vec::new();
        for action in ["freeze", "unfreeze"] {
            let url = format!("{}/cards/{card}/{action}", self.stack.unit_url());
            match self.http.post(url).bearer_auth(&token).send().await {
                Ok(r) if r.status().is_success() => statuses.push(unit.card_status(&card)),
                Ok(r) => {
                    return self.report(STEP, Step::Failed(format!("{action}: {}", r.status())));
                }
                Err(e) => return self.report(STEP, Step::Failed(e.to_string())),
            }
        }
        let shown: Vec<String> = statuses
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        self.report(
            STEP,
            Step::Done(format!("card {card}: {}", shown.join(" → "))),
        )
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
    let webhook_ok = demo.signup_webhook(stytch, &user_id).await;

    // 3-5. Onboarding: our state and form link, the applicant completes the form, Unit approves.
    let customer_id = if webhook_ok {
        demo.onboarding(unit, &jwt, &email).await?
    } else {
        demo.skip("GET /onboarding shows the form link", "the signup webhook");
        demo.skip("complete the Unit application form", "the signup webhook");
        demo.skip("Unit approval reaches /webhooks/unit", "the signup webhook");
        None
    };

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
    let stepped_up = demo.totp(&mut jwt).await;

    // 9-10. The customer token, then a Unit call with it; 11. a card action.
    if let Some(id) = customer_id.filter(|_| stepped_up) {
        demo.customer_token(&jwt, &id).await?;
        demo.card_actions(unit, &jwt, &id).await;
    } else {
        demo.skip(
            "exchange the JWT for a Unit customer token",
            "an approved customer and a TOTP step-up",
        );
        demo.skip("call Unit with the customer token", "the customer token");
        demo.skip("freeze and unfreeze a card", "the customer token");
    }

    if demo.failed {
        Err("a step that is built failed".into())
    } else {
        Ok(())
    }
}
