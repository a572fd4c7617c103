//! End-to-end: signup-webhook through the local stack, DynamoDB and Secrets Manager in moto,
//! Stytch and Unit sandboxes.

use e2e::{Stack, fresh_user, json_of, now, user_event};
use reqwest::Method;
use serde_json::{Value, json};

/// Valid KYC fields without an e-mail (the route's default, or a 400 naming `email`).
fn kyc() -> Value {
    json!({"full_name": {"first": "Peter", "last": "Parker"}, "date_of_birth": "2001-08-10",
        "address": {"street": "20 Ingram St", "city": "Forest Hills", "state": "NY", "postal_code": "11375"},
        "phone": {"country_code": "1", "number": "5555555555"}, "ssn": "721074426"})
}

/// `POST /onboarding/application` with `body`, in the session of `jwt`.
fn application(stack: &Stack, jwt: &str, body: &Value) -> reqwest::RequestBuilder {
    stack
        .http
        .post(stack.url("/onboarding/application"))
        .bearer_auth(jwt)
        .json(body)
}

fn form_posts(stack: &Stack) -> Vec<sandboxes::LoggedRequest> {
    stack
        .unit_log()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/application-forms")
        .collect()
}

#[tokio::test]
async fn a_signup_becomes_a_record_and_one_prefilled_form_even_under_redelivery() {
    let stack = Stack::start(&[]).await;
    let user = fresh_user();
    let body = user_event("CREATE", &user, "ada@example.com");
    let (status, reply) = json_of(stack.stytch_delivery("msg_1", &body, now())).await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("processed")),
        "{reply}"
    );
    let record = stack.record(&user).await.expect("a record");
    // The event's phone number is unverified: not copied (SECURITY.md, "Only verified
    // contacts reach Unit").
    assert_eq!(
        (record.email.as_deref(), record.phone.as_deref()),
        (Some("ada@example.com"), None)
    );
    assert!(
        record
            .form_url
            .as_deref()
            .is_some_and(|u| u.starts_with(stack.local.unit_url()))
    );
    let posts = form_posts(&stack);
    assert_eq!(posts.len(), 1);
    let attributes = &posts[0].body["data"]["attributes"];
    // The customer's subject is the prefill's; the top-level one is for the embedded form.
    assert_eq!(attributes["applicantDetails"]["jwtSubject"], user);
    assert_eq!(attributes["jwtSubject"], user);
    assert_eq!(
        attributes["idempotencyKey"],
        format!("stytch-unit-bridge-form-{user}")
    );
    assert_eq!(attributes["applicantDetails"]["email"], "ada@example.com");
    assert_eq!(
        attributes["applicantDetails"]["fullName"],
        json!({"first": "Ada", "last": "Lovelace"})
    );
    assert_eq!(attributes["applicantDetails"]["phone"], Value::Null);

    // The same svix-id again changes nothing and calls nobody.
    let (status, reply) = json_of(stack.stytch_delivery("msg_1", &body, now())).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("duplicate")));
    assert_eq!(form_posts(&stack).len(), 1);
    assert_eq!(stack.record(&user).await.unwrap().version, record.version);

    // A burst of concurrent duplicates of another signup: one record, one form.
    let racer = fresh_user();
    let body = user_event("CREATE", &racer, "grace@example.com");
    let mut burst = tokio::task::JoinSet::new();
    for n in 0..16 {
        let request = stack.stytch_delivery(&format!("msg_race_{}", n % 2), &body, now());
        burst.spawn(async move { request.send().await.map(|r| r.status().as_u16()) });
    }
    let statuses: Vec<u16> = burst
        .join_all()
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let record = stack.record(&racer).await.unwrap();
    let forms: std::collections::HashSet<_> = stack
        .unit_log()
        .into_iter()
        .filter(|r| {
            r.path == "/application-forms" && r.body["data"]["attributes"]["jwtSubject"] == racer
        })
        .map(|r| r.status)
        .collect();
    assert_eq!(
        forms,
        [201].into(),
        "every create answered the one keyed form"
    );
    let (_, form) = json_of(stack.unit_call(
        Method::GET,
        &format!("/application-forms/{}", record.form_id.unwrap()),
    ))
    .await;
    assert_eq!(form["data"]["type"], "applicationFormV2");
}

#[tokio::test]
async fn bad_signatures_are_refused_and_store_nothing() {
    let stack = Stack::start(&[]).await;
    let user = fresh_user();
    let body = user_event("CREATE", &user, "ada@example.com");
    let secret = shared::webhook::SvixSecret::parse(e2e::SVIX_SECRET).unwrap();
    let cases = [
        ("missing", None, now()),
        ("wrong", Some("v1,bm9wZQ==".to_owned()), now()),
        (
            "stale",
            Some(secret.sign("msg_x", now() - 301, body.as_bytes())),
            now() - 301,
        ),
        (
            "future",
            Some(secret.sign("msg_x", now() + 301, body.as_bytes())),
            now() + 301,
        ),
        (
            "other body",
            Some(secret.sign("msg_x", now(), b"{}")),
            now(),
        ),
    ];
    for (name, signature, ts) in cases {
        let mut r = stack
            .http
            .post(stack.url("/webhooks/stytch"))
            .header("svix-id", "msg_x")
            .header("svix-timestamp", ts.to_string());
        if let Some(s) = signature {
            r = r.header("svix-signature", s);
        }
        let (status, reply) = json_of(r.body(body.clone())).await;
        assert_eq!(
            (status, reply["error"]["code"].as_str()),
            (401, Some("invalid_signature")),
            "{name}"
        );
    }
    assert_eq!(stack.record(&user).await, None);
    assert!(form_posts(&stack).is_empty());
    let forged = stack
        .http
        .post(stack.url("/webhooks/unit"))
        .header("x-unit-signature", "bm9wZQ==")
        .body("{}");
    assert_eq!(json_of(forged).await.0, 401);
    let (status, reply) = json_of(stack.stytch_delivery("msg_junk", "not json", now())).await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (400, Some("invalid_payload"))
    );
}

#[tokio::test]
async fn unit_failures_answer_5xx_and_the_retry_completes_without_duplicates() {
    let stack = Stack::start(&[("UPSTREAM_TIMEOUT_MS", "400")]).await;
    let fault = |body: Value| stack.unit_fault(body);
    for (name, fault_body, expected) in [
        (
            "503",
            json!({"route": "POST /application-forms", "status": 503, "times": 3}),
            502,
        ),
        (
            "429",
            json!({"route": "POST /application-forms", "status": 429, "retry_after": 0, "times": 3}),
            429,
        ),
        (
            "timeout",
            json!({"route": "POST /application-forms", "latency_ms": 1000, "times": 3}),
            504,
        ),
    ] {
        let user = fresh_user();
        let body = user_event("CREATE", &user, "ada@example.com");
        let svix_id = format!("msg_{name}");
        fault(fault_body).await;
        let (status, reply) = json_of(stack.stytch_delivery(&svix_id, &body, now())).await;
        assert_eq!(status, expected, "{name}: {reply}");
        let record = stack.record(&user).await;
        assert!(
            record.is_none_or(|r| r.form_id.is_none()),
            "{name}: no form recorded"
        );
        stack.clear_faults().await;
        let (status, reply) = json_of(stack.stytch_delivery(&svix_id, &body, now())).await;
        assert_eq!(
            (status, reply["status"].as_str()),
            (200, Some("processed")),
            "{name}: the retry completes"
        );
        let record = stack.record(&user).await.unwrap();
        assert!(record.form_id.is_some());
    }
}

#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn a_dynamodb_outage_answers_503_and_the_retry_completes() {
    let moto = e2e::moto();
    let aws = e2e::aws(&moto).await;
    let secret = e2e::create_secret(&aws, &e2e::secret_json()).await;
    let table = format!("bridge-e2e-{}", uuid::Uuid::new_v4());
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let store = shared::store::DynamoStore::new(dynamo.clone(), &table);
    store.create_table_if_missing().await.unwrap();
    let stack = Stack::with(&[("SECRET_ID", &secret), ("TABLE_NAME", &table)], Some(aws)).await;
    // The table disappears (an outage as the SDK sees one) ...
    dynamo
        .delete_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let user = fresh_user();
    let body = user_event("CREATE", &user, "ada@example.com");
    let (status, reply) = json_of(stack.stytch_delivery("msg_outage", &body, now())).await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (503, Some("store_unavailable")),
        "{reply}"
    );
    // ... and comes back: Svix's retry completes the work.
    store.create_table_if_missing().await.unwrap();
    let (status, _) = json_of(stack.stytch_delivery("msg_outage", &body, now())).await;
    assert_eq!(status, 200);
    assert!(stack.record(&user).await.unwrap().form_id.is_some());
    assert!(
        form_posts(&stack).len() <= 1,
        "Unit was not reached before the store failed"
    );
}

#[tokio::test]
async fn the_full_signup_path_records_the_customer_after_unit_approves() {
    let stack = Stack::start(&[]).await;
    let login = stack.sign_up("ada@example.com").await;
    let onboarding = || stack.onboarding(&login.session_jwt);
    // The sandbox's own signed webhook creates the record and form.
    let mut state = Value::Null;
    for _ in 0..100 {
        state = json_of(onboarding()).await.1;
        if state["form_id"].is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(state["state"], "form_pending", "{state}");
    let form_id = state["form_id"].as_str().unwrap().to_owned();
    let (status, _) = json_of(
        stack
            .http
            .post(stack.unit(&format!("/_sandbox/application-forms/{form_id}/complete")))
            .json(&json!({})),
    )
    .await;
    assert_eq!(status, 201);
    // Unit's signed application.approved / customer.created reach /webhooks/unit.
    let unit = stack.unit_sandbox();
    stack
        .eventually("Unit's webhooks delivered", || {
            unit.webhooks
                .deliveries()
                .iter()
                .filter(|d| d.delivered)
                .count()
                >= 2
        })
        .await;
    let record = stack.record(&login.user_id).await.unwrap();
    assert_eq!(
        record.application_status,
        Some(shared::domain::ApplicationStatus::Approved)
    );
    let customer = record
        .customer_id
        .clone()
        .expect("the customer id is recorded");
    let (_, c) = json_of(stack.unit_call(Method::GET, &format!("/customers/{customer}"))).await;
    assert_eq!(
        c["data"]["attributes"]["jwtSubject"], login.user_id,
        "Unit's customer carries the Stytch user id"
    );
    let (status, state) = json_of(onboarding()).await;
    assert_eq!(
        (
            status,
            state["state"].as_str(),
            state["customer_id"].as_str()
        ),
        (200, Some("approved"), Some(customer.as_str()))
    );
    // Redelivered Unit events change nothing.
    let delivery = unit.webhooks.deliveries().remove(0);
    let (status, _) = json_of(stack.unit_delivery(&delivery.body.to_string())).await;
    assert_eq!(status, 200);
    assert_eq!(
        stack.record(&login.user_id).await.unwrap().version,
        record.version
    );
}

#[tokio::test]
async fn onboarding_works_without_the_webhook_and_tracks_decisions() {
    // Every visit may ask Unit here (the freshness window has its own test).
    let stack = Stack::start(&[("ONBOARDING_REFRESH_SECONDS", "0")]).await;
    // A user Stytch never told us about (no webhook, not even a Stytch record to prefill from):
    // GET /onboarding creates the record and the form itself.
    let user = fresh_user();
    let jwt = stack.forge(&user, now(), |_| {});
    stack
        .http
        .put(stack.unit("/_sandbox/approval"))
        .json(&json!({"policy": "review"}))
        .send()
        .await
        .unwrap();
    let (status, state) = json_of(stack.onboarding(&jwt)).await;
    assert_eq!(
        (status, state["state"].as_str()),
        (200, Some("form_pending")),
        "{state}"
    );
    let form_id = state["form_id"].as_str().unwrap();
    stack
        .http
        .post(stack.unit(&format!("/_sandbox/application-forms/{form_id}/complete")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    // Even before Unit's webhook lands, GET /onboarding finds the application through the form.
    let (_, state) = json_of(stack.onboarding(&jwt)).await;
    assert_eq!(state["state"], "pending_review", "{state}");
    let app_id = state["application_id"].as_str().unwrap().to_owned();
    stack
        .http
        .post(stack.unit(&format!("/_sandbox/applications/{app_id}/decide")))
        .json(&json!({"decision": "deny"}))
        .send()
        .await
        .unwrap();
    let (_, state) = json_of(stack.onboarding(&jwt)).await;
    assert_eq!(state["state"], "denied");
    // A late pendingReview event cannot move the user back.
    let late = json!({"data": [{"id": "999001", "type": "application.pendingReview", "attributes": {"createdAt": e2e::rfc3339(now())},
        "relationships": {"application": {"data": {"type": "individualApplication", "id": app_id}}}}]});
    assert_eq!(json_of(stack.unit_delivery(&late.to_string())).await.0, 200);
    let (_, state) = json_of(stack.onboarding(&jwt)).await;
    assert_eq!(state["state"], "denied");
    // Events for applications that are not ours are acknowledged and ignored.
    let stranger = json!({"data": [{"id": "999002", "type": "application.approved", "attributes": {"createdAt": e2e::rfc3339(now())},
        "relationships": {"application": {"data": {"type": "individualApplication", "id": "424242"}}}}]});
    let (status, reply) = json_of(stack.unit_delivery(&stranger.to_string())).await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("processed")));
    assert_eq!(
        stack
            .local
            .app
            .store
            .user_for_application("424242")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn updates_sync_contacts_and_deletes_mark_the_record() {
    let stack = Stack::start(&[]).await;
    let login = stack.sign_up("ada@example.com").await;
    stack.eventually_record(&login.user_id).await;
    let (status, _) = json_of(
        stack
            .stytch_call(Method::PUT, &format!("/v1/users/{}", login.user_id))
            .json(&json!({"name": {"first_name": "Augusta", "last_name": "King"}})),
    )
    .await;
    assert_eq!(status, 200);
    for _ in 0..100 {
        if stack
            .record(&login.user_id)
            .await
            .unwrap()
            .first_name
            .as_deref()
            == Some("Augusta")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let record = stack.record(&login.user_id).await.unwrap();
    assert_eq!(
        (record.first_name.as_deref(), record.last_name.as_deref()),
        (Some("Augusta"), Some("King"))
    );
    stack.delete_at_stytch(&login.user_id).await;
    // A delete that outruns its create leaves a tombstone, and the late create makes no form.
    let ghost = fresh_user();
    assert_eq!(
        json_of(stack.stytch_delivery("msg_del", &user_event("DELETE", &ghost, ""), now()))
            .await
            .0,
        200
    );
    assert_eq!(
        json_of(stack.stytch_delivery(
            "msg_cre",
            &user_event("CREATE", &ghost, "g@example.com"),
            now()
        ))
        .await
        .0,
        200
    );
    let record = stack.record(&ghost).await.unwrap();
    assert!(record.deleted && record.form_id.is_none());
}

#[tokio::test]
async fn the_direct_application_validates_fields_and_binds_the_jwt_subject() {
    let stack = Stack::start(&[]).await;
    let login = stack.sign_up("peter@example.com").await;
    let apply = |body: Value| {
        stack
            .http
            .post(stack.url("/onboarding/application"))
            .bearer_auth(&login.session_jwt)
            .json(&body)
    };
    let (status, reply) = json_of(apply(
        json!({"full_name": {"first": "Peter"}, "ssn": "12", "address": {"postal_code": "X"}}),
    ))
    .await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    let fields: Vec<&str> = reply["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    for f in [
        "full_name.last",
        "date_of_birth",
        "address.street",
        "address.state",
        "address.postal_code",
        "phone.number",
        "ssn",
    ] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }
    assert!(
        !reply.to_string().contains("\"12\""),
        "values are never echoed"
    );
    let mut valid = json!({
        "full_name": {"first": "Peter", "last": "Parker"}, "date_of_birth": "2001-08-10",
        "address": {"street": "20 Ingram St", "city": "Forest Hills", "state": "NY", "postal_code": "11375"},
        "phone": {"country_code": "1", "number": "5555555555"}, "ssn": "721074426"
    });
    let mut smuggled = valid.clone();
    smuggled["jwt_subject"] = json!("user-test-someone-else");
    assert_eq!(
        json_of(apply(smuggled)).await.0,
        400,
        "jwtSubject never comes from the body"
    );
    let (status, state) = json_of(apply(valid.clone())).await;
    assert_eq!(status, 201, "{state}");
    assert_eq!(state["state"], "approved", "the sandbox approves at once");
    let customer = state["customer_id"].as_str().unwrap();
    let (_, c) = json_of(stack.unit_call(Method::GET, &format!("/customers/{customer}"))).await;
    assert_eq!(c["data"]["attributes"]["jwtSubject"], login.user_id);
    let sent = stack
        .unit_log()
        .into_iter()
        .find(|r| r.path == "/applications")
        .unwrap();
    assert_eq!(
        sent.body["data"]["attributes"]["email"], "peter@example.com",
        "the e-mail defaults to Stytch's"
    );
    valid["ssn"] = json!("721074427");
    let (status, reply) = json_of(apply(valid)).await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (409, Some("application_exists"))
    );
}

trait Eventually {
    async fn eventually_record(&self, user_id: &str);
}

impl Eventually for Stack {
    async fn eventually_record(&self, user_id: &str) {
        for _ in 0..100 {
            if self
                .local
                .app
                .store
                .get_user(user_id)
                .await
                .unwrap()
                .is_some()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no record for {user_id}");
    }
}

#[tokio::test]
async fn an_operator_links_an_existing_customer_to_a_stytch_user() {
    let stack = Stack::start(&[]).await;
    // A customer onboarded before this service existed, under no (or another) subject.
    let (status, created) = json_of(stack.unit_call(Method::POST, "/applications").json(&json!({"data": {
        "type": "individualApplication", "attributes": {
            "ssn": "123456780", "fullName": {"first": "Old", "last": "Customer"}, "dateOfBirth": "1980-01-01",
            "address": {"street": "1 Main St", "city": "Springfield", "state": "IL", "postalCode": "62701", "country": "US"},
            "email": "old@example.com", "phone": {"countryCode": "1", "number": "5555550101"}}}}))).await;
    assert_eq!(status, 201, "{created}");
    let customer = created["data"]["relationships"]["customer"]["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let login = stack.sign_up("old@example.com").await;
    let user_id = login.user_id.parse().unwrap();
    let record = shared::onboarding::link_existing_customer(
        &stack.local.app,
        &user_id,
        &customer.parse().unwrap(),
        false,
    )
    .await
    .unwrap();
    assert_eq!(record.customer_id.as_deref(), Some(customer.as_str()));
    let (_, c) = json_of(stack.unit_call(Method::GET, &format!("/customers/{customer}"))).await;
    assert_eq!(c["data"]["attributes"]["jwtSubject"], login.user_id);
    let (_, state) = json_of(stack.onboarding(&login.session_jwt)).await;
    assert_eq!(
        (state["state"].as_str(), state["customer_id"].as_str()),
        (Some("approved"), Some(customer.as_str()))
    );
    let err = shared::onboarding::link_existing_customer(
        &stack.local.app,
        &user_id,
        &"999999".parse().unwrap(),
        false,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, shared::onboarding::LinkError::Failed(e) if e.status == 502),
        "Unit's 404 for an unknown customer surfaces as an upstream failure: {err:?}"
    );
}

/// `bridge-admin` run as an operator runs it: the deployment's variables, its AWS endpoint.
/// The user's form, created by the signup webhook; the sandbox then plays a Unit that does not
/// pass the prefill's `jwtSubject` on to the application and customer.
async fn form_without_subject_copying(stack: &Stack, email: &str) -> (e2e::Login, String) {
    stack.unit_sandbox().set_prefill_subject_copied(false);
    let login = stack.sign_up(email).await;
    let record = stack
        .record_when(&login.user_id, "the form the signup webhook created", |r| {
            r.form_id.is_some()
        })
        .await;
    (login, record.form_id.unwrap().to_string())
}

async fn complete_form(stack: &Stack, form_id: &str) -> Value {
    let (status, application) = json_of(
        stack
            .http
            .post(stack.unit(&format!("/_sandbox/application-forms/{form_id}/complete")))
            .json(&json!({})),
    )
    .await;
    assert_eq!(status, 201, "{application}");
    application
}

#[tokio::test]
async fn an_application_from_our_form_without_jwt_subject_is_still_the_users() {
    let stack = Stack::start(&[]).await;
    let (login, form_id) = form_without_subject_copying(&stack, "nosub@example.com").await;
    let application = complete_form(&stack, &form_id).await;
    assert!(
        application["data"]["attributes"]["jwtSubject"].is_null(),
        "{application}"
    );
    // Unit's webhooks arrive: the application is known by our tag and the form id we stored, and
    // the customer's empty jwtSubject is set to the user (PATCH /customers/{id}).
    let customer = stack
        .record_when(&login.user_id, "a customer", |r| r.customer_id.is_some())
        .await
        .customer_id
        .unwrap();
    let (_, c) = json_of(stack.unit_call(Method::GET, &format!("/customers/{customer}"))).await;
    assert_eq!(c["data"]["attributes"]["jwtSubject"], login.user_id);
    assert!(
        stack
            .unit_log()
            .iter()
            .any(|r| r.method == "PATCH" && r.path == format!("/customers/{customer}")),
        "the subject was set by us"
    );
    // And the user gets a token for it (Unit checks the JWT's sub against that subject).
    let (status, issued) =
        json_of(stack.customer_token(&login.session_jwt, json!({"scope": "customers"}))).await;
    assert_eq!(
        (status, issued["customer_id"].as_str()),
        (200, Some(customer.as_str())),
        "{issued}"
    );
}

#[tokio::test]
async fn a_customer_bound_to_someone_else_is_never_recorded() {
    let stack = Stack::start(&[]).await;
    let (login, form_id) = form_without_subject_copying(&stack, "taken@example.com").await;
    // Unit's webhooks are lost, and the customer Unit creates is bound to another user before
    // we see it: GET /onboarding finds the application through the form.
    stack
        .sandbox_control(
            Method::PUT,
            stack.unit("/_sandbox/webhooks"),
            Some(json!({"deliver": false})),
        )
        .await;
    let application = complete_form(&stack, &form_id).await;
    let customer = application["data"]["relationships"]["customer"]["data"]["id"]
        .as_str()
        .expect("approved at once")
        .to_owned();
    let (status, _) = json_of(
        stack
            .unit_call(Method::PATCH, &format!("/customers/{customer}"))
            .json(&json!({"data": {"type": "individualCustomer", "attributes": {"jwtSubject": "user-test-someone-else"}}})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, state) = json_of(stack.onboarding(&login.session_jwt)).await;
    assert_eq!(status, 200, "{state}");
    assert!(state["customer_id"].is_null(), "{state}");
    let record = stack.record(&login.user_id).await.unwrap();
    assert_eq!(record.customer_id, None, "nothing recorded");
    let (_, c) = json_of(stack.unit_call(Method::GET, &format!("/customers/{customer}"))).await;
    assert_eq!(
        c["data"]["attributes"]["jwtSubject"], "user-test-someone-else",
        "and nothing overwritten"
    );
    let (status, body) =
        json_of(stack.customer_token(&login.session_jwt, json!({"scope": "customers"}))).await;
    assert_eq!(
        (status, e2e::code_of(&body)),
        (409, Some("onboarding_incomplete")),
        "{body}"
    );
}

#[tokio::test]
async fn a_denied_user_cannot_loop_through_applications() {
    let stack = Stack::start(&[("APPLICATIONS_PER_USER", "3/86400")]).await;
    let login = stack.sign_up("loop@example.com").await;
    stack
        .sandbox_control(
            Method::PUT,
            stack.unit("/_sandbox/approval"),
            Some(json!({"policy": "deny"})),
        )
        .await;
    let apply = |ssn: &str| {
        stack
            .http
            .post(stack.url("/onboarding/application"))
            .bearer_auth(&login.session_jwt)
            .json(&json!({
                "full_name": {"first": "Lou", "last": "Pe"}, "date_of_birth": "1990-01-01",
                "address": {"street": "1 Main St", "city": "Springfield", "state": "IL", "postal_code": "62701"},
                "phone": {"country_code": "1", "number": "5555550104"}, "ssn": ssn
            }))
    };
    for ssn in ["100000007", "100000008", "100000009"] {
        let (status, state) = json_of(apply(ssn)).await;
        assert_eq!(
            (status, state["state"].as_str()),
            (201, Some("denied")),
            "{state}"
        );
    }
    let response = apply("100000010").send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(e2e::code_of(&body), Some("too_many_applications"));
    let posted = stack
        .unit_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/applications")
        .count();
    assert_eq!(posted, 3, "the fourth never reached Unit");
}

/// SECURITY.md, "A customer is bound only as Unit relates it": one signed event pairing a
/// user's pending application with someone else's customer (whose `jwtSubject` is empty) gave
/// the user that customer's tokens and PATCHed it to them. Now the event is only a signal: the
/// application and its customer are read from Unit, and nothing changes.
#[tokio::test]
async fn a_signed_event_pairing_an_application_with_another_customer_changes_nothing() {
    let stack = Stack::start(&[]).await;
    let victim = stack.unit_customer("victim@example.com", None).await;
    let login = stack.sign_up("pairing@example.com").await;
    let application = stack.apply_pending(&login).await;
    for (id, kind) in [
        ("evt-pair-1", "application.approved"),
        ("evt-pair-2", "customer.created"),
    ] {
        let (status, reply) =
            json_of(stack.unit_event(id, kind, now(), Some(&application), Some(&victim))).await;
        assert_eq!(
            (status, reply["status"].as_str()),
            (200, Some("processed")),
            "{kind}: acknowledged, so Unit does not retry"
        );
    }
    // The customer alone: its own application is not the user's.
    let (status, _) =
        json_of(stack.unit_event("evt-pair-3", "customer.created", now(), None, Some(&victim)))
            .await;
    assert_eq!(status, 200);
    // A forged decision does not move the user either: the status is Unit's.
    let (status, _) = json_of(stack.unit_event(
        "evt-pair-4",
        "application.denied",
        now(),
        Some(&application),
        None,
    ))
    .await;
    assert_eq!(status, 200);
    let record = stack.record(&login.user_id).await.unwrap();
    assert_eq!(record.customer_id, None, "no customer recorded");
    assert_eq!(
        record.application_status,
        Some(shared::domain::ApplicationStatus::PendingReview),
        "the status is what Unit says"
    );
    assert!(
        stack.unit_jwt_subject(&victim).await.is_null(),
        "the victim's customer is not bound to the user"
    );
    assert!(
        !stack
            .unit_log()
            .iter()
            .any(|r| r.method == "PATCH" && r.path == format!("/customers/{victim}")),
        "nothing was written to the victim's customer"
    );
    let (status, body) =
        json_of(stack.customer_token(&login.session_jwt, json!({"scope": "customers"}))).await;
    assert_eq!(
        (status, e2e::code_of(&body)),
        (409, Some("onboarding_incomplete")),
        "{body}"
    );
    // When Unit approves for real, its own customer is the one recorded.
    let (status, _) = json_of(
        stack
            .http
            .post(stack.unit(&format!("/_sandbox/applications/{application}/decide")))
            .json(&json!({"decision": "approve"})),
    )
    .await;
    assert_eq!(status, 200);
    let recorded = stack
        .record_when(&login.user_id, "the real approval's customer", |r| {
            r.customer_id.is_some()
        })
        .await
        .customer_id
        .unwrap();
    assert_ne!(recorded, victim);
    assert!(stack.unit_jwt_subject(&victim).await.is_null());
}

/// SECURITY.md, "Ids are parsed where they enter": a signed `customer.archived` for an active
/// customer archives nothing (Unit says it is active), and a Unit customer whose `jwtSubject` is
/// no Stytch user id binds nobody, whatever its events.
#[tokio::test]
async fn forged_archives_and_foreign_subjects_change_nothing() {
    let stack = Stack::start(&[]).await;
    let (login, customer) = stack.onboarded("forged-archive@example.com").await;
    let jwt = stack.stepped_up(&login).await;
    let forged = stack.unit_event(
        "evt-archive-1",
        "customer.archived",
        now(),
        None,
        Some(&customer),
    );
    assert_eq!(json_of(forged).await.0, 200);
    let record = stack.record(&login.user_id).await.unwrap();
    assert_eq!(record.customer_archived_at, None, "Unit says it is active");
    let (status, body) = json_of(stack.customer_token(&jwt, json!({"scope": "cards-write"}))).await;
    assert_eq!(status, 200, "sensitive tokens still minted: {body}");
    // A customer bound at Unit to a subject that is no Stytch user id, then archived for real.
    let stranger = stack
        .unit_customer("stranger@example.com", Some("admin"))
        .await;
    let (_, doc) = json_of(stack.unit_call(Method::GET, &format!("/customers/{stranger}"))).await;
    let application = doc["data"]["relationships"]["application"]["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let archive =
        json!({"data": {"type": "archiveCustomer", "attributes": {"reason": "Inactive"}}});
    let path = format!("/customers/{stranger}/archive");
    assert_eq!(
        json_of(stack.unit_call(Method::POST, &path).json(&archive))
            .await
            .0,
        200
    );
    for (id, kind) in [
        ("evt-stranger-1", "application.approved"),
        ("evt-stranger-2", "customer.created"),
        ("evt-stranger-3", "customer.archived"),
    ] {
        let delivery = stack.unit_event(id, kind, now(), Some(&application), Some(&stranger));
        let (status, reply) = json_of(delivery).await;
        assert_eq!(
            (status, reply["status"].as_str()),
            (200, Some("processed")),
            "{kind}"
        );
    }
    assert!(
        stack.record("admin").await.is_none(),
        "no record under a foreign subject"
    );
    let linked = stack
        .local
        .app
        .store
        .user_for_application(&application)
        .await
        .unwrap();
    assert_eq!(linked, None, "the application is bound to nobody");
}

/// SECURITY.md, "Old Unit events are not applied again": Unit signs no timestamp, so a captured
/// delivery older than the event markers' memory is acknowledged and ignored.
#[tokio::test]
async fn unit_events_older_than_the_event_memory_are_not_applied() {
    let stack = Stack::start(&[]).await;
    stack
        .sandbox_control(
            Method::PUT,
            stack.unit("/_sandbox/webhooks"),
            Some(json!({"deliver": false})),
        )
        .await;
    let login = stack.sign_up("replayed@example.com").await;
    let application = stack.apply_pending(&login).await;
    let (status, _) = json_of(
        stack
            .http
            .post(stack.unit(&format!("/_sandbox/applications/{application}/decide")))
            .json(&json!({"decision": "approve"})),
    )
    .await;
    assert_eq!(status, 200);
    let eight_days_ago = now() - 8 * 86_400;
    for (created_at, what) in [
        (eight_days_ago, "8 days old"),
        (now() + 3600, "an hour ahead"),
    ] {
        let (status, reply) = json_of(stack.unit_event(
            "evt-old-1",
            "application.approved",
            created_at,
            Some(&application),
            None,
        ))
        .await;
        assert_eq!(
            (status, reply["status"].as_str()),
            (200, Some("processed")),
            "{what}"
        );
        let record = stack.record(&login.user_id).await.unwrap();
        assert_eq!(record.customer_id, None, "{what}: not applied");
        assert!(
            !stack
                .local
                .app
                .store
                .event_processed("unit:evt-old-1")
                .await
                .unwrap(),
            "{what}: not remembered as applied"
        );
    }
    // The same event, fresh, is applied.
    let (status, _) = json_of(stack.unit_event(
        "evt-old-1",
        "application.approved",
        now(),
        Some(&application),
        None,
    ))
    .await;
    assert_eq!(status, 200);
    let record = stack.record(&login.user_id).await.unwrap();
    assert!(record.customer_id.is_some(), "{record:?}");
}

/// SECURITY.md, "Identity refusals tell nothing": someone probing whether an SSN is known at
/// Unit learns nothing from the answer (no field, no Unit text), and each probe counts against
/// `APPLICATIONS_PER_USER`.
#[tokio::test]
async fn identity_refusals_name_nothing_and_count_against_the_limit() {
    let stack = Stack::start(&[("APPLICATIONS_PER_USER", "2/86400")]).await;
    // Someone else's live application holds this SSN.
    let owner = stack.sign_up("owner@example.com").await;
    let ssn = format!("{:09}", fastrand::u64(100_000_000..=665_999_999));
    let body = |ssn: &str| {
        json!({
            "full_name": {"first": "Ida", "last": "Probe"}, "date_of_birth": "1990-01-01",
            "address": {"street": "1 Main St", "city": "Springfield", "state": "IL", "postal_code": "62701"},
            "phone": {"country_code": "1", "number": "5555550104"}, "ssn": ssn
        })
    };
    let post = |jwt: &str, ssn: &str| {
        stack
            .http
            .post(stack.url("/onboarding/application"))
            .bearer_auth(jwt)
            .json(&body(ssn))
    };
    assert_eq!(json_of(post(&owner.session_jwt, &ssn)).await.0, 201);
    let prober = stack.sign_up("prober@example.com").await;
    for _ in 0..2 {
        let (status, reply) = json_of(post(&prober.session_jwt, &ssn)).await;
        assert_eq!(
            (status, e2e::code_of(&reply)),
            (400, Some("identity_not_accepted")),
            "{reply}"
        );
        assert!(
            reply["error"].get("fields").is_none(),
            "no field named: {reply}"
        );
        let text = reply.to_string().to_ascii_lowercase();
        for unit_text in ["ssn", "duplicate", "already exists"] {
            assert!(
                !text.contains(unit_text),
                "no Unit text ({unit_text}): {reply}"
            );
        }
    }
    let (status, reply) = json_of(post(&prober.session_jwt, &ssn)).await;
    assert_eq!(
        (status, e2e::code_of(&reply)),
        (429, Some("too_many_applications")),
        "each refusal counted: {reply}"
    );
}

/// SECURITY.md, "One user cannot exhaust the upstreams": a pending user's visits ask Unit at
/// most once per `ONBOARDING_REFRESH_SECONDS`, however many there are.
#[tokio::test]
async fn repeated_onboarding_visits_ask_unit_once_per_window() {
    let stack = Stack::start(&[("ONBOARDING_REFRESH_SECONDS", "60")]).await;
    let login = stack.sign_up("eager@example.com").await;
    // Unit's own event about the application would be read at Unit by the webhook (an event is
    // only a signal), at a moment of its own: counted here, that read made the test flaky.
    stack.unit_sandbox().webhooks.set_enabled(false);
    stack.apply_pending(&login).await;
    let unit_reads = |stack: &Stack| {
        stack
            .unit_log()
            .iter()
            .filter(|r| r.method == "GET" && r.path.starts_with("/application"))
            .count()
    };
    let before = unit_reads(&stack);
    for _ in 0..20 {
        let (status, state) = json_of(stack.onboarding(&login.session_jwt)).await;
        assert_eq!(
            (status, state["state"].as_str()),
            (200, Some("pending_review"))
        );
        let (status, _) = json_of(stack.customer_token(&login.session_jwt, json!({}))).await;
        assert_eq!(status, 409);
    }
    assert_eq!(
        unit_reads(&stack) - before,
        1,
        "one look at Unit in the window"
    );
}

/// SECURITY.md, "One user cannot exhaust the upstreams": a deployment-wide daily cap on new
/// forms and applications; at the cap a new user keeps their place (`form_pending`, with
/// `Retry-After`) and the signup webhook is still acknowledged.
#[tokio::test]
async fn the_daily_cap_pauses_new_applications_and_keeps_each_users_place() {
    let stack = Stack::start(&[("DAILY_APPLICATIONS_CAP", "2")]).await;
    let first = stack.sign_up("cap1@example.com").await;
    let second = stack.sign_up("cap2@example.com").await;
    for login in [&first, &second] {
        stack
            .record_when(&login.user_id, "a form: the first two get theirs", |r| {
                r.form_id.is_some()
            })
            .await;
    }
    let third = stack.sign_up("cap3@example.com").await;
    stack
        .eventually("the third signup's webhook is acknowledged", || {
            stack
                .stytch_sandbox()
                .webhooks
                .deliveries()
                .iter()
                .filter(|d| d.body.to_string().contains(&third.user_id))
                .any(|d| d.delivered)
        })
        .await;
    let record = stack
        .record(&third.user_id)
        .await
        .expect("the place is kept");
    assert_eq!(record.form_id, None);
    let response = stack.onboarding(&third.session_jwt).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry_after));
    let state: Value = response.json().await.unwrap();
    assert_eq!(state["state"], "form_pending");
    // A direct application waits too.
    let (status, body) = json_of(stack.http.post(stack.url("/onboarding/application")).bearer_auth(&third.session_jwt).json(&json!({
        "full_name": {"first": "Cap", "last": "Three"}, "date_of_birth": "1990-01-01",
        "address": {"street": "1 Main St", "city": "Springfield", "state": "IL", "postal_code": "62701"},
        "phone": {"country_code": "1", "number": "5555550104"}, "ssn": "000000004"
    }))).await;
    assert_eq!(
        (status, e2e::code_of(&body)),
        (503, Some("applications_paused")),
        "{body}"
    );
}

/// docs/stytch-api.md §4: a member Stytch sends as `null` (an empty list, an unset string) reads
/// as empty; it does not make the whole event unreadable (a 400 Svix would retry for a day).
#[tokio::test]
async fn a_user_event_with_null_members_is_applied() {
    let stack = Stack::start(&[]).await;
    let user = fresh_user();
    let mut event: Value =
        serde_json::from_str(&user_event("CREATE", &user, "null@example.com")).unwrap();
    event["source"] = Value::Null;
    event["user"]["totps"] = Value::Null;
    event["user"]["phone_numbers"] = Value::Null;
    event["user"]["status"] = Value::Null;
    event["user"]["name"] = Value::Null;
    event["user"]["emails"][0]["verified"] = Value::Null;
    let (status, reply) =
        json_of(stack.stytch_delivery("msg_nulls", &event.to_string(), now())).await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("processed")),
        "{reply}"
    );
    let record = stack.record(&user).await.expect("a record");
    assert_eq!(record.phone, None);
    assert!(record.form_url.is_some(), "the form was created");
}

/// Slow KYC is pending, not rejected: Unit's create outlives our attempt (Unit documents up to
/// 120 s), so the caller gets 202 `application_pending`; a retry meanwhile answers the same
/// without racing the first create; with its webhook lost, `GET /onboarding` finds the
/// application by its tag and finishes it.
#[tokio::test]
async fn a_slow_application_is_pending_and_found_by_its_tag() {
    let stack = Stack::start(&[
        ("APPLICATION_CREATE_TIMEOUT_MS", "1000"),
        ("ONBOARDING_REFRESH_SECONDS", "0"),
    ])
    .await;
    let login = stack.sign_up("slow@example.com").await;
    let (status, _) = json_of(
        stack
            .http
            .put(stack.unit("/_sandbox/webhooks"))
            .json(&json!({"deliver": false})),
    )
    .await;
    assert_eq!(status, 204);
    stack
        .unit_fault(json!({"route": "POST /applications", "latency_ms": 2500, "times": 1}))
        .await;
    let mut kyc = kyc();
    kyc["email"] = json!("slow@example.com");
    let apply = || application(&stack, &login.session_jwt, &kyc);
    let (status, state) = json_of(apply()).await;
    assert_eq!(
        (status, state["state"].as_str()),
        (202, Some("application_pending")),
        "{state}"
    );
    let (status, state) = json_of(apply()).await;
    assert_eq!(
        (status, state["state"].as_str()),
        (202, Some("application_pending")),
        "a retry waits: {state}"
    );
    // Unit finishes the KYC after 2.5 s; its webhook is lost, the visits find it by tag.
    let mut state = Value::Null;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let onboarding = stack.onboarding(&login.session_jwt);
        let (status, seen) = json_of(onboarding).await;
        assert_eq!(status, 200, "{seen}");
        state = seen;
        if state["state"] != "application_pending" {
            break;
        }
    }
    assert_eq!(state["state"], "approved", "{state}");
    assert!(state["customer_id"].is_string(), "{state}");
    let creates = stack
        .unit_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/applications")
        .count();
    assert_eq!(
        creates, 1,
        "one create: neither our retry nor the caller's raced it"
    );
    let record = stack.record(&login.user_id).await.unwrap();
    assert_eq!(record.application_submitted_at, None);
}

/// SECURITY.md, "Only verified contacts reach Unit": an address Stytch has not verified is
/// whatever was typed at sign-up, possibly someone else's. It is neither prefilled on Unit's
/// form nor the KYC route's default; once verified, it is both.
#[tokio::test]
async fn only_verified_contacts_prefill_and_default() {
    let stack = Stack::start(&[]).await;
    let user = fresh_user();
    let mut event: Value =
        serde_json::from_str(&user_event("CREATE", &user, "typed@example.com")).unwrap();
    event["user"]["emails"][0]["verified"] = json!(false);
    event["user"]["phone_numbers"][0]["verified"] = json!(true);
    let (status, _) =
        json_of(stack.stytch_delivery("msg_unverified", &event.to_string(), now())).await;
    assert_eq!(status, 200);
    let record = stack.record(&user).await.expect("a record");
    assert_eq!(
        (record.email.as_deref(), record.phone.as_deref()),
        (None, Some("+15555550100"))
    );
    let posts = form_posts(&stack);
    let prefill = &posts[0].body["data"]["attributes"]["applicantDetails"];
    assert_eq!(prefill["email"], Value::Null, "{prefill}");
    assert_eq!(prefill["phone"]["number"], "5555550100");

    // The KYC route: no default from an unverified address, the verified one once proven.
    let login = stack.sign_up_unverified("kyc@example.com").await;
    let kyc = kyc();
    let apply = || application(&stack, &login.session_jwt, &kyc);
    let (status, reply) = json_of(apply()).await;
    assert_eq!(
        (status, reply["error"]["fields"][0]["field"].as_str()),
        (400, Some("email")),
        "{reply}"
    );
    stack.verify_email("kyc@example.com").await;
    let (status, reply) = json_of(apply()).await;
    assert_eq!(status, 201, "{reply}");
    let sent = stack
        .unit_log()
        .into_iter()
        .rfind(|r| r.method == "POST" && r.path == "/applications")
        .expect("an application");
    assert_eq!(sent.body["data"]["attributes"]["email"], "kyc@example.com");
}

/// SECURITY.md, "No usable secret is ever deployed": rotating either webhook key loses no
/// delivery. While the old key is kept as `*_previous`, deliveries signed with either verify; a
/// key that is neither is refused.
#[tokio::test]
async fn a_webhook_key_rotates_without_downtime() {
    let new_svix = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";
    let new_unit = "rotated-unit-webhook-token-0123456789abcdef";
    let mut rotated = e2e::secret_json();
    rotated["stytch_webhook_secret"] = json!(new_svix);
    rotated["stytch_webhook_secret_previous"] = json!(e2e::SVIX_SECRET);
    rotated["unit_webhook_token"] = json!(new_unit);
    rotated["unit_webhook_token_previous"] = json!(e2e::UNIT_WEBHOOK_TOKEN);
    let rotated = rotated.to_string();
    let stack = Stack::in_memory(&[("SECRETS_JSON", rotated.as_str())]).await;
    // Stytch: the old secret (what stytch_delivery signs with) and the new one.
    let user = fresh_user();
    let body = user_event("UPDATE", &user, "rotate@example.com");
    let (status, _) = json_of(stack.stytch_delivery("msg_rotate_old", &body, now())).await;
    assert_eq!(status, 200, "signed with the previous secret");
    let secret = shared::webhook::SvixSecret::parse(new_svix).unwrap();
    let signed = |id: &str, key: &shared::webhook::SvixSecret| {
        stack
            .http
            .post(stack.url("/webhooks/stytch"))
            .header("svix-id", id)
            .header("svix-timestamp", now().to_string())
            .header("svix-signature", key.sign(id, now(), body.as_bytes()))
            .body(body.clone())
    };
    assert_eq!(json_of(signed("msg_rotate_new", &secret)).await.0, 200);
    let other =
        shared::webhook::SvixSecret::parse("whsec_ZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZm").unwrap();
    assert_eq!(json_of(signed("msg_rotate_other", &other)).await.0, 401);
    // Unit: the same with its token.
    let events = r#"{"data":[]}"#;
    let unit = |token: &str| {
        stack
            .http
            .post(stack.url("/webhooks/unit"))
            .header(
                "x-unit-signature",
                shared::webhook::unit_signature(token, events.as_bytes()),
            )
            .body(events)
    };
    assert_eq!(
        json_of(stack.unit_delivery(events)).await.0,
        200,
        "the previous token"
    );
    assert_eq!(json_of(unit(new_unit)).await.0, 200, "the new token");
    assert_eq!(
        json_of(unit("neither-of-the-two-tokens-0123456789"))
            .await
            .0,
        401
    );
}
