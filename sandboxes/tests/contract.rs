//! Contract tests of the Stytch and Unit sandboxes over HTTP: each pins a detail of
//! `docs/stytch-api.md` / `docs/unit-api.md` that our clients, or the official SDKs, rely on.

// Tests may run past the 60 lines asked of other functions (Cargo.toml, workspace lints).
#![allow(clippy::too_many_lines)]

mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use shared::upstream::RetryPolicy;
use support::{
    Sandboxes, archive_customer, assert_on_spec, assert_stytch_error, claims_of, json_of, now, totp,
};

// ---------------------------------------------------------------- Stytch

#[tokio::test]
async fn stytch_basic_auth_guards_everything_but_the_jwks() {
    let stack = Sandboxes::start().await;
    let (status, body) = json_of(stack.http.get(stack.stytch("/v1/users/user-test-x"))).await;
    assert_eq!(status, 401);
    assert_stytch_error(&body, 401, "unauthorized_credentials");
    let wrong = stack
        .http
        .get(stack.stytch("/v1/users/user-test-x"))
        .basic_auth(stack.project_id(), Some("nope"));
    assert_eq!(json_of(wrong).await.0, 401);

    let (status, jwks) = json_of(
        stack
            .http
            .get(stack.stytch(&format!("/v1/sessions/jwks/{}", stack.project_id()))),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(jwks["status_code"], 200);
    assert!(
        jwks["request_id"]
            .as_str()
            .unwrap()
            .starts_with("request-id-test-")
    );
    let key = &jwks["keys"][0];
    for field in [
        "kty", "use", "key_ops", "alg", "kid", "x5c", "x5tS256", "n", "e",
    ] {
        assert!(!key[field].is_null(), "JWK field {field}");
    }
    assert_eq!(
        (key["kty"].as_str(), key["alg"].as_str(), key["e"].as_str()),
        (Some("RSA"), Some("RS256"), Some("AQAB"))
    );
    assert!(
        key["n"].as_str().unwrap().len() >= 342,
        "RSA keys of at least 2048 bits"
    );
    let (status, body) = json_of(stack.http.get(stack.stytch("/v1/nothing-here"))).await;
    assert_eq!(status, 404);
    assert_stytch_error(&body, 404, "route_not_found");
}

#[tokio::test]
async fn session_jwts_are_shaped_exactly_like_stytchs_and_verify_locally() {
    let stack = Sandboxes::start().await;
    let login = stack.sign_up("ada@example.com").await;
    let (header, claims) = claims_of(&login.session_jwt);
    assert_eq!(
        (header["alg"].as_str(), header["typ"].as_str()),
        (Some("RS256"), Some("JWT"))
    );
    assert!(header["kid"].as_str().unwrap().starts_with("jwk-test-"));
    let pid = stack.project_id();
    assert_eq!(claims["aud"], json!([pid]));
    assert_eq!(claims["iss"], format!("stytch.com/{pid}"));
    assert_eq!(claims["sub"], login.user_id);
    assert_eq!(claims["iat"], claims["nbf"]);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    let session = &claims["https://stytch.com/session"];
    for field in [
        "id",
        "started_at",
        "last_accessed_at",
        "expires_at",
        "attributes",
        "authentication_factors",
        "roles",
    ] {
        assert!(!session[field].is_null(), "session claim field {field}");
    }
    assert_eq!(session["authentication_factors"][0]["type"], "password");
    assert_eq!(
        session["authentication_factors"][0]["delivery_method"],
        "knowledge"
    );
    // Our own verifier accepts it against the sandbox's JWKS.
    let verifier = stack.verifier();
    let verified = verifier.verify(&login.session_jwt, now()).await.unwrap();
    assert_eq!(verified.user_id, login.user_id);
}

#[tokio::test]
async fn users_read_flat_tolerate_get_bodies_and_decode_ids() {
    let stack = Sandboxes::start().await;
    let login = stack.sign_up("ada@example.com").await;
    let encoded = login.user_id.replace('-', "%2D");
    let (status, user) = json_of(
        stack
            .stytch_call(Method::GET, &format!("/v1/users/{encoded}"))
            .json(&json!({})),
    )
    .await;
    assert_eq!(status, 200, "{user}");
    for field in [
        "user_id",
        "emails",
        "status",
        "phone_numbers",
        "webauthn_registrations",
        "providers",
        "totps",
        "crypto_wallets",
        "biometric_registrations",
        "is_locked",
        "roles",
    ] {
        assert!(!user[field].is_null(), "user field {field}");
    }
    assert_eq!(user["emails"][0]["email"], "ada@example.com");
    let (status, body) =
        json_of(stack.stytch_call(Method::GET, "/v1/users/user-test-missing")).await;
    assert_eq!(status, 404);
    assert_stytch_error(&body, 404, "user_not_found");
    // Our client reads it too; null fields count as absent on the way in.
    let user = stack
        .stytch_client(RetryPolicy::new(3, Duration::from_secs(2)))
        .get_user(&login.user_id, support::soon())
        .await
        .unwrap();
    assert_eq!(user.user_id, login.user_id);
    let (status, created) = json_of(
        stack
            .stytch_call(Method::POST, "/v1/users")
            .json(&json!({"email": "bob@example.com", "phone_number": null, "name": null})),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(
        created["phone_id"], "",
        "phone_id is an empty string when not requested"
    );
    let (status, body) = json_of(
        stack
            .stytch_call(Method::POST, "/v1/users")
            .json(&json!({"email": "bob@example.com"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_stytch_error(&body, 400, "duplicate_email");
}

#[tokio::test]
async fn totp_enrolment_step_up_and_recovery_follow_rfc_6238_and_the_contract() {
    let stack = Sandboxes::start().await;
    let login = stack.sign_up("ada@example.com").await;
    let (status, created) = json_of(
        stack
            .stytch_call(Method::POST, "/v1/totps")
            .json(&json!({"user_id": login.user_id})),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32);
    assert!(
        created["qr_code"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64, iVBORw0KGgo")
    );
    let codes: Vec<String> = serde_json::from_value(created["recovery_codes"].clone()).unwrap();
    assert_eq!(codes.len(), 10);
    assert!(
        codes
            .iter()
            .all(|c| c.len() == 14 && c.split('-').all(|p| p.len() == 4))
    );
    let (status, body) = json_of(
        stack
            .stytch_call(Method::POST, "/v1/totps")
            .json(&json!({"user_id": login.user_id})),
    )
    .await;
    assert_eq!(status, 400);
    assert_stytch_error(&body, 400, "pending_totp_exists");

    let authenticate = |code: String, jwt: &str| {
        stack.stytch_call(Method::POST, "/v1/totps/authenticate").json(&json!({
            "user_id": login.user_id, "totp_code": code, "session_jwt": jwt, "session_duration_minutes": 60,
            "session_token": null,
        }))
    };
    let (status, body) = json_of(authenticate("12345".into(), &login.session_jwt)).await;
    assert_stytch_error(&body, 400, "invalid_totp_code");
    assert_eq!(status, 400);
    let wrong = if totp(&secret, now()) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (status, body) = json_of(authenticate(wrong.into(), &login.session_jwt)).await;
    assert_eq!(status, 401);
    assert_stytch_error(&body, 401, "unable_to_authenticate_totp");
    let (status, body) = json_of(authenticate(totp(&secret, now() - 90), &login.session_jwt)).await;
    assert_eq!(
        (status, body["error_type"].as_str()),
        (401, Some("unable_to_authenticate_totp")),
        "three steps back"
    );

    // The previous window's code is still accepted, once.
    let code = totp(&secret, now() - 30);
    let (status, stepped) = json_of(authenticate(code.clone(), &login.session_jwt)).await;
    assert_eq!(status, 200, "{stepped}");
    assert_eq!(
        stepped["session_token"], login.session_token,
        "the factor joined the same session"
    );
    let (_, claims) = claims_of(stepped["session_jwt"].as_str().unwrap());
    let factors = claims["https://stytch.com/session"]["authentication_factors"]
        .as_array()
        .unwrap()
        .clone();
    let t = factors
        .iter()
        .find(|f| f["type"] == "totp")
        .expect("a totp factor");
    assert_eq!(t["delivery_method"], "authenticator_app");
    assert_eq!(t["authenticator_app_factor"]["totp_id"], created["totp_id"]);
    assert!(
        factors.iter().any(|f| f["type"] == "password"),
        "the primary factor stays"
    );
    let (status, body) = json_of(authenticate(code, &login.session_jwt)).await;
    assert_eq!(status, 401);
    assert_stytch_error(&body, 401, "totp_code_already_authenticated");

    let (status, body) = json_of(
        stack
            .stytch_call(Method::POST, "/v1/totps")
            .json(&json!({"user_id": login.user_id})),
    )
    .await;
    assert_eq!(status, 400);
    assert_stytch_error(&body, 400, "active_totp_exists");

    let recover =
        |code: &str| {
            stack.stytch_call(Method::POST, "/v1/totps/recover").json(&json!({
            "user_id": login.user_id, "recovery_code": code, "session_jwt": login.session_jwt,
        }))
        };
    let (status, recovered) = json_of(recover(&codes[0])).await;
    assert_eq!(status, 200, "{recovered}");
    let (_, claims) = claims_of(recovered["session_jwt"].as_str().unwrap());
    let factors = &claims["https://stytch.com/session"]["authentication_factors"];
    assert!(
        factors
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["type"] == "recovery_codes" && f["delivery_method"] == "recovery_code")
    );
    let (status, body) = json_of(recover(&codes[0])).await;
    assert_eq!(status, 401);
    assert_stytch_error(&body, 401, "unable_to_authenticate_recovery_code");
    let (_, listed) = json_of(
        stack
            .stytch_call(Method::POST, "/v1/totps/recovery_codes")
            .json(&json!({"user_id": login.user_id})),
    )
    .await;
    assert_eq!(
        listed["totps"][0]["recovery_codes"]
            .as_array()
            .unwrap()
            .len(),
        9
    );

    // No session asked for: session null and empty token strings.
    let (status, bare) = json_of(
        stack
            .stytch_call(Method::POST, "/v1/totps/authenticate")
            .json(&json!({
                "user_id": login.user_id, "totp_code": totp(&secret, now() + 30),
            })),
    )
    .await;
    assert_eq!(status, 200, "{bare}");
    assert_eq!(
        (
            bare["session"].clone(),
            bare["session_jwt"].clone(),
            bare["session_token"].clone()
        ),
        (Value::Null, json!(""), json!(""))
    );
}

#[tokio::test]
async fn sessions_authenticate_and_key_rotation() {
    let stack = Sandboxes::start().await;
    let login = stack.sign_up("ada@example.com").await;
    let (status, body) = json_of(
        stack
            .stytch_call(Method::POST, "/v1/sessions/authenticate")
            .json(&json!({
                "session_jwt": login.session_jwt, "session_token": login.session_token,
            })),
    )
    .await;
    assert_eq!(status, 400);
    assert_stytch_error(&body, 400, "too_many_session_arguments");
    let (status, body) = json_of(
        stack
            .stytch_call(Method::POST, "/v1/sessions/authenticate")
            .json(&json!({"session_token": login.session_token})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["user_id"], login.user_id);

    let verifier = stack.verifier();
    verifier.verify(&login.session_jwt, now()).await.unwrap();
    let (_, rotated) = json_of(stack.http.post(stack.stytch("/_sandbox/keys/rotate"))).await;
    let (_, jwks) = json_of(
        stack
            .http
            .get(stack.stytch(&format!("/v1/sessions/jwks/{}", stack.project_id()))),
    )
    .await;
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        2,
        "old and new keys are both served"
    );
    let (_, fresh) = json_of(
        stack
            .stytch_call(Method::POST, "/v1/sessions/authenticate")
            .json(&json!({"session_token": login.session_token})),
    )
    .await;
    let new_jwt = fresh["session_jwt"].as_str().unwrap();
    assert_eq!(
        claims_of(new_jwt).0["kid"],
        rotated["kid"],
        "new tokens use the new key"
    );
    verifier.verify(new_jwt, now()).await.unwrap();
    verifier.verify(&login.session_jwt, now()).await.unwrap();
}

#[tokio::test]
async fn stytch_webhooks_are_svix_signed_with_a_stable_id_across_retries() {
    // A receiver that fails twice, then accepts, keeping every request's headers.
    let (seen, secret, stytch, running) = support::stytch_with_webhooks(
        "project-test-webhooks",
        "secret-test-webhooks",
        vec![Duration::from_millis(50); 4],
        |n| if n < 3 { 500 } else { 204 },
    )
    .await;
    let created: Value = reqwest::Client::new()
        .post(format!("{}/v1/users", running.url))
        .basic_auth("project-test-webhooks", Some("secret-test-webhooks"))
        .json(&json!({"email": "ada@example.com", "name": {"first_name": "Ada"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for _ in 0..100 {
        if stytch
            .webhooks
            .deliveries()
            .first()
            .is_some_and(|d| d.delivered)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 3, "two failures, then success");
    let ids: Vec<_> = seen
        .iter()
        .map(|(h, _)| h["svix-id"].to_str().unwrap().to_owned())
        .collect();
    assert!(
        ids[0].starts_with("msg_") && ids.iter().all(|i| *i == ids[0]),
        "{ids:?}"
    );
    for (headers, body) in seen.iter() {
        let delivery = shared::webhook::verify_svix(&secret, headers, body, now())
            .expect("each attempt verifies");
        assert_eq!(delivery.id, ids[0]);
        let event: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            (
                event["action"].as_str(),
                event["source"].as_str(),
                event["object_type"].as_str()
            ),
            (Some("CREATE"), Some("DIRECT"), Some("user"))
        );
        assert_eq!(event["id"], created["user_id"]);
        assert!(
            event["event_id"]
                .as_str()
                .unwrap()
                .starts_with("webhook-event-test-")
        );
        assert_eq!(event["user"]["name"]["first_name"], "Ada");
    }
}

#[tokio::test]
async fn faults_are_injected_per_route_and_our_client_retries_through_them() {
    let stack = Sandboxes::start().await;
    let login = stack.sign_up("ada@example.com").await;
    let fault = |body: Value| {
        stack
            .http
            .post(stack.stytch("/_sandbox/faults"))
            .json(&body)
            .send()
    };
    fault(json!({"route": "GET /v1/users/{user_id}", "status": 503, "times": 2}))
        .await
        .unwrap();
    let policy = RetryPolicy {
        base_delay: Duration::from_millis(1),
        ..RetryPolicy::new(3, Duration::from_secs(2))
    };
    let client = stack.stytch_client(policy);
    let user = client
        .get_user(&login.user_id, support::soon())
        .await
        .expect("the third attempt succeeds");
    assert_eq!(user.user_id, login.user_id);
    let sandbox = &stack.stytch_running;
    let log: Vec<_> = sandbox
        .controls
        .requests()
        .into_iter()
        .filter(|r| r.route == "/v1/users/{user_id}")
        .collect();
    assert_eq!(
        log.iter()
            .map(|r| (r.status, r.faulted))
            .collect::<Vec<_>>(),
        vec![(503, true), (503, true), (200, false)]
    );

    fault(json!({"route": "GET /v1/users/{user_id}", "status": 429, "retry_after": 7, "times": 1}))
        .await
        .unwrap();
    let response = stack
        .stytch_call(Method::GET, &format!("/v1/users/{}", login.user_id))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            response.status().as_u16(),
            response.headers()["retry-after"].to_str().unwrap()
        ),
        (429, "7")
    );
    assert_stytch_error(&response.json().await.unwrap(), 429, "too_many_requests");

    fault(json!({"route": "*", "drop": true, "times": 3}))
        .await
        .unwrap();
    let err = client
        .get_user(&login.user_id, support::soon())
        .await
        .unwrap_err();
    assert!(
        matches!(err, shared::stytch::StytchError::Transport(_)),
        "{err:?}"
    );
    stack
        .http
        .delete(stack.stytch("/_sandbox/faults"))
        .send()
        .await
        .unwrap();
    client
        .get_user(&login.user_id, support::soon())
        .await
        .unwrap();
    let (_, log) = json_of(stack.http.get(stack.stytch("/_sandbox/requests"))).await;
    let sign_up = log
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "/v1/passwords")
        .unwrap();
    assert_eq!(
        sign_up["body"]["password"], "[masked]",
        "secrets never reach the request log"
    );
}

// ---------------------------------------------------------------- Unit

fn application(ssn: &str, key: &str, jwt_subject: &str) -> Value {
    json!({"data": {"type": "individualApplication", "attributes": {
        "ssn": ssn, "fullName": {"first": "Peter", "last": "Parker"}, "dateOfBirth": "2001-08-10",
        "address": {"street": "20 Ingram St", "city": "Forest Hills", "state": "NY", "postalCode": "11375", "country": "US"},
        "email": "peter@oscorp.com", "phone": {"countryCode": "1", "number": "5555555555"},
        "idempotencyKey": key, "jwtSubject": jwt_subject, "tags": {"userId": jwt_subject},
    }}})
}

fn assert_unit_errors(body: &Value, status: &str) {
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors array: {body}"));
    assert!(!errors.is_empty());
    assert!(
        errors
            .iter()
            .all(|e| e["status"] == status && e["title"].is_string()),
        "{body}"
    );
}

#[tokio::test]
async fn unit_applications_validate_replay_keys_and_create_customers() {
    let stack = Sandboxes::start().await;
    let (status, body) = json_of(stack.http.get(stack.unit("/applications/1"))).await;
    assert_eq!(status, 401);
    assert_unit_errors(&body, "401");

    let mut bad = application("12", "k-bad", "user-test-1");
    bad["data"]["attributes"]
        .as_object_mut()
        .unwrap()
        .remove("email");
    bad["data"]["attributes"]["address"]["postalCode"] = json!("ABCDE");
    let (status, body) = json_of(stack.unit_call(Method::POST, "/applications").json(&bad)).await;
    assert_eq!(status, 400);
    assert_unit_errors(&body, "400");
    let pointers: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["source"]["pointer"].as_str())
        .collect();
    for p in [
        "/data/attributes/email",
        "/data/attributes/ssn",
        "/data/attributes/address/postalCode",
    ] {
        assert!(pointers.contains(&p), "{p} in {pointers:?}");
    }

    let response = stack
        .unit_call(Method::POST, "/applications")
        .json(&application("721074426", "k-1", "user-test-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/vnd.api+json")
    );
    let created: Value = response.json().await.unwrap();
    let data = &created["data"];
    assert_eq!(data["type"], "individualApplication");
    assert!(
        data["id"]
            .as_str()
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_digit())
    );
    assert_eq!(data["attributes"]["status"], "Approved");
    assert_eq!(data["attributes"]["maskedSSN"], "*****4426");
    assert!(
        data["attributes"].get("ssn").is_none(),
        "the full SSN is never echoed"
    );
    let customer_id = data["relationships"]["customer"]["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, replay) = json_of(
        stack
            .unit_call(Method::POST, "/applications")
            .json(&application("721074426", "k-1", "user-test-1")),
    )
    .await;
    assert_eq!(
        (status, &replay["data"]["id"]),
        (201, &data["id"]),
        "the same key returns the original"
    );
    let (status, body) = json_of(
        stack
            .unit_call(Method::POST, "/applications")
            .json(&application("721074426", "k-2", "user-test-2")),
    )
    .await;
    assert_eq!(
        (status, body["errors"][0]["code"].as_str()),
        (400, Some("duplicate_ssn"))
    );

    let (status, customer) =
        json_of(stack.unit_call(Method::GET, &format!("/customers/{customer_id}"))).await;
    assert_eq!(status, 200);
    assert_eq!(customer["data"]["type"], "individualCustomer");
    assert_eq!(
        customer["data"]["attributes"]["jwtSubject"], "user-test-1",
        "the customer inherits jwtSubject"
    );
    assert_eq!(
        customer["data"]["relationships"]["application"]["data"]["id"],
        data["id"]
    );

    // Approval sent application.approved then customer.created, signed, to the API.
    let unit = &stack.unit;
    stack
        .eventually("two Unit webhooks", || {
            unit.webhooks
                .deliveries()
                .iter()
                .filter(|d| !d.attempts.is_empty())
                .count()
                >= 2
        })
        .await;
    let kinds: Vec<String> = unit
        .webhooks
        .deliveries()
        .iter()
        .map(|d| d.event_type.clone())
        .collect();
    assert_eq!(kinds, vec!["application.approved", "customer.created"]);
    assert_eq!(
        unit.webhooks.deliveries()[0].attempts[0].status,
        Some(200),
        "verified and applied by the API"
    );
}

#[tokio::test]
async fn unit_forms_v1_and_v2_complete_into_applications_under_each_policy() {
    let stack = Sandboxes::start().await;
    let v1 = json!({"data": {"type": "applicationForm", "attributes": {
        "tags": {"userId": "user-test-form"},
        "applicantDetails": {"applicationType": "Individual", "email": "ada@example.com", "jwtSubject": "user-test-form"},
        "allowedApplicationTypes": ["Individual"]}}});
    let (status, form) = json_of(
        stack
            .unit_call(Method::POST, "/application-forms")
            .json(&v1),
    )
    .await;
    assert_eq!(status, 201, "{form}");
    assert_eq!(form["data"]["type"], "applicationForm");
    let link = form["data"]["attributes"]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(link.starts_with(stack.unit_url()));
    let id = form["data"]["id"].as_str().unwrap().to_owned();
    let (_, again) =
        json_of(stack.unit_call(Method::GET, &format!("/application-forms/{id}"))).await;
    assert_ne!(
        again["data"]["attributes"]["url"].as_str().unwrap(),
        link,
        "a GET answers a fresh link"
    );
    let mut unknown = v1.clone();
    unknown["data"]["attributes"]["idempotencyKey"] = json!("k");
    assert_eq!(
        json_of(
            stack
                .unit_call(Method::POST, "/application-forms")
                .json(&unknown)
        )
        .await
        .0,
        400,
        "V1 forms take no key"
    );

    stack
        .http
        .put(stack.unit("/_sandbox/approval"))
        .json(&json!({"policy": "pending"}))
        .send()
        .await
        .unwrap();
    let (status, app) = json_of(
        stack
            .http
            .post(stack.unit(&format!("/_sandbox/application-forms/{id}/complete")))
            .json(&json!({})),
    )
    .await;
    assert_eq!(status, 201, "{app}");
    assert_eq!(app["data"]["attributes"]["status"], "Pending");
    assert_eq!(app["data"]["attributes"]["jwtSubject"], "user-test-form");
    assert_eq!(
        app["data"]["attributes"]["email"], "ada@example.com",
        "the prefill is used"
    );
    let app_id = app["data"]["id"].as_str().unwrap().to_owned();
    let (_, form) =
        json_of(stack.unit_call(Method::GET, &format!("/application-forms/{id}"))).await;
    assert_eq!(
        form["data"]["relationships"]["application"]["data"]["id"],
        app_id
    );
    assert_eq!(
        form["data"]["attributes"]["stage"],
        "IndividualApplicationCreated"
    );
    let (_, decided) = json_of(
        stack
            .http
            .post(stack.unit(&format!("/_sandbox/applications/{app_id}/decide")))
            .json(&json!({"decision": "approve"})),
    )
    .await;
    assert_eq!(decided["data"]["attributes"]["status"], "Approved");

    let v2 = |key: Option<&str>| {
        let mut attributes = json!({"jwtSubject": "user-test-v2-embed", "applicantDetails": {"email": "v2@example.com"}});
        if let Some(k) = key {
            attributes["idempotencyKey"] = json!(k);
        }
        stack
            .unit_call(Method::POST, "/application-forms")
            .header("x-accept-version", "V2024_06")
            .json(&json!({"data": {"type": "applicationForm", "attributes": attributes}}))
    };
    assert_eq!(
        json_of(v2(None)).await.0,
        400,
        "V2 requires an idempotencyKey"
    );
    let (status, form2) = json_of(v2(Some("form-user-test-v2"))).await;
    assert_eq!(status, 201);
    assert_eq!(form2["data"]["type"], "applicationFormV2");
    assert_eq!(form2["data"]["links"]["related"]["type"], "text/html");
    assert!(form2["data"]["attributes"]["applicationFormToken"]["token"].is_string());
    let (_, replay) = json_of(v2(Some("form-user-test-v2"))).await;
    assert_eq!(replay["data"]["id"], form2["data"]["id"]);

    stack
        .http
        .put(stack.unit("/_sandbox/approval"))
        .json(&json!({"policy": "deny"}))
        .send()
        .await
        .unwrap();
    let id2 = form2["data"]["id"].as_str().unwrap();
    let (_, denied) = json_of(
        stack
            .http
            .post(stack.unit(&format!("/_sandbox/application-forms/{id2}/complete")))
            .json(&json!({})),
    )
    .await;
    assert_eq!(denied["data"]["attributes"]["status"], "Denied");
    assert!(denied["data"]["relationships"].get("customer").is_none());
    // The V2 top-level jwtSubject only names who may open the embedded form: a form without a
    // prefill jwtSubject yields an application without one.
    assert!(
        denied["data"]["attributes"]["jwtSubject"].is_null(),
        "{denied}"
    );
    // The prefill's jwtSubject is what reaches the application and its customer.
    stack
        .http
        .put(stack.unit("/_sandbox/approval"))
        .json(&json!({"policy": "approve"}))
        .send()
        .await
        .unwrap();
    let (status, form3) = json_of(
        stack
            .unit_call(Method::POST, "/application-forms")
            .header("x-accept-version", "V2024_06")
            .json(&json!({"data": {"type": "applicationForm", "attributes": {
                "idempotencyKey": "form-user-test-v2-prefill", "jwtSubject": "user-test-v2-prefill",
                "applicantDetails": {"email": "v2p@example.com", "jwtSubject": "user-test-v2-prefill"}}}})),
    )
    .await;
    assert_eq!(status, 201, "{form3}");
    let id3 = form3["data"]["id"].as_str().unwrap();
    let (_, approved) = json_of(
        stack
            .http
            .post(stack.unit(&format!("/_sandbox/application-forms/{id3}/complete")))
            .json(&json!({})),
    )
    .await;
    assert_eq!(
        approved["data"]["attributes"]["jwtSubject"],
        "user-test-v2-prefill"
    );
    let customer3 = approved["data"]["relationships"]["customer"]["data"]["id"]
        .as_str()
        .unwrap();
    let (_, c3) = json_of(stack.unit_call(Method::GET, &format!("/customers/{customer3}"))).await;
    assert_eq!(
        c3["data"]["attributes"]["jwtSubject"],
        "user-test-v2-prefill"
    );
    // The hosted form page is what a browser opens from the link.
    let href = form2["data"]["links"]["related"]["href"].as_str().unwrap();
    let page = stack.http.get(href).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<form"));
}

async fn approved_customer(stack: &Sandboxes, jwt_subject: &str) -> String {
    let ssn = format!("{:09}", uuid::Uuid::new_v4().as_u128() % 1_000_000_000);
    let (status, created) = json_of(
        stack
            .unit_call(Method::POST, "/applications")
            .json(&application(&ssn, &ssn, jwt_subject)),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    created["data"]["relationships"]["customer"]["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn customer_tokens_check_the_stytch_jwt_and_scopes_like_unit() {
    let stack = Sandboxes::start().await;
    let login = stack.sign_up("ada@example.com").await;
    let customer = approved_customer(&stack, &login.user_id).await;
    let token = |attributes: Value| {
        stack
            .unit_call(Method::POST, &format!("/customers/{customer}/token"))
            .json(&json!({"data": {"type": "customerToken", "attributes": attributes}}))
    };
    let (status, plain) = json_of(token(json!({"scope": "customers accounts"}))).await;
    assert_eq!(status, 201, "{plain}");
    assert_eq!(plain["data"]["type"], "customerBearerToken");
    assert!(plain["data"].get("id").is_none());
    assert_eq!(
        plain["data"]["attributes"]["expiresIn"], 86400,
        "the default"
    );
    let (status, body) = json_of(token(json!({"scope": "customers cards-write"}))).await;
    assert_eq!(status, 403, "a 2FA scope needs a JWT or the OTP pair");
    assert_unit_errors(&body, "403");
    for bad in [
        json!({"scope": "customers", "expiresIn": 0}),
        json!({"scope": "customers", "expiresIn": 86401}),
        json!({"scope": "customers teleport"}),
        json!({"scope": ""}),
        // Unit's components: an upgradable scope needs customer-token-write beside it.
        json!({"scope": "customers", "upgradableScope": "cards-write"}),
        json!({"scope": "customers customer-token-write", "upgradableScope": "cards-teleport"}),
    ] {
        assert_eq!(json_of(token(bad.clone())).await.0, 400, "{bad}");
    }
    let (status, upgradable) = json_of(token(
        json!({"scope": "customers customer-token-write", "upgradableScope": "cards-write", "jwtToken": login.session_jwt}),
    ))
    .await;
    assert_eq!(status, 201, "{upgradable}");
    let (status, granted) = json_of(token(
        json!({"scope": "customers cards-write", "jwtToken": login.session_jwt, "expiresIn": 3600}),
    ))
    .await;
    assert_eq!(status, 201, "{granted}");
    assert_eq!(granted["data"]["attributes"]["expiresIn"], 3600);
    let bearer = granted["data"]["attributes"]["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let expired = stack.forge(&login.user_id, now() - 400, |_| {});
    let other = stack.forge("user-test-someone-else", now(), |_| {});
    let wrong_iss = stack.forge(&login.user_id, now(), |c| {
        c["iss"] = json!("stytch.com/project-test-other")
    });
    for (name, jwt) in [
        ("expired", expired),
        ("other subject", other),
        ("other issuer", wrong_iss),
    ] {
        let (status, body) = json_of(token(
            json!({"scope": "customers cards-write", "jwtToken": jwt}),
        ))
        .await;
        assert_eq!(status, 401, "{name}: {body}");
        assert_unit_errors(&body, "401");
    }

    // The customer token reads that customer only.
    let (status, me) = json_of(
        stack
            .http
            .get(stack.unit(&format!("/customers/{customer}")))
            .bearer_auth(&bearer),
    )
    .await;
    assert_eq!(
        (status, me["data"]["id"].as_str()),
        (200, Some(customer.as_str()))
    );
    let someone = approved_customer(&stack, "user-test-other").await;
    assert_eq!(
        json_of(
            stack
                .http
                .get(stack.unit(&format!("/customers/{someone}")))
                .bearer_auth(&bearer)
        )
        .await
        .0,
        403
    );

    // The OTP route: verification token plus the sandbox code 000001.
    let (status, v) = json_of(stack.unit_call(Method::POST, &format!("/customers/{customer}/token/verification"))
        .json(&json!({"data": {"type": "customerTokenVerification", "attributes": {"channel": "sms"}}}))).await;
    assert_eq!(status, 201);
    let vt = v["data"]["attributes"]["verificationToken"]
        .as_str()
        .unwrap();
    let (status, _) = json_of(token(
        json!({"scope": "cards-write", "verificationToken": vt, "verificationCode": "000002"}),
    ))
    .await;
    assert_eq!(status, 403);
    let (status, _) = json_of(token(
        json!({"scope": "cards-write", "verificationToken": vt, "verificationCode": "000001"}),
    ))
    .await;
    assert_eq!(status, 201);

    // Our Unit client speaks to it too.
    let request = shared::unit::CreateCustomerToken {
        scope: "customers accounts".into(),
        jwt_token: shared::secrets::SecretString::new(login.session_jwt.clone()),
        expires_in: 600,
        resources: None,
        upgradable_scope: None,
    };
    let issued = stack
        .unit_client()
        .create_customer_token(&customer.parse().unwrap(), &request, support::soon())
        .await
        .unwrap();
    assert_eq!(issued.expires_in, Some(600));
}

#[tokio::test]
async fn customers_patch_only_patchable_fields() {
    let stack = Sandboxes::start().await;
    let customer = approved_customer(&stack, "user-test-before").await;
    let patch = |attributes: Value| {
        stack
            .unit_call(Method::PATCH, &format!("/customers/{customer}"))
            .json(&json!({"data": {"type": "individualCustomer", "attributes": attributes}}))
    };
    let (status, body) = json_of(patch(json!({"fullName": {"first": "X", "last": "Y"}}))).await;
    assert_eq!(status, 400);
    assert_unit_errors(&body, "400");
    let updated = stack
        .unit_client()
        .set_customer_jwt_subject(
            &customer.parse().unwrap(),
            &"user-test-after".parse().unwrap(),
            support::soon(),
        )
        .await
        .unwrap();
    assert_eq!(
        updated.attributes.jwt_subject.as_deref(),
        Some("user-test-after")
    );
    let (status, _) = json_of(stack.unit_call(Method::GET, "/customers/999999")).await;
    assert_eq!(status, 404);
}

/// One off-spec body of each kind of request we make: Unit's OpenAPI spec refuses each with
/// Unit's 400 and the pointer, before the route runs (the customers need not exist).
#[tokio::test]
async fn every_kind_of_request_we_make_is_gated_by_units_openapi_spec() {
    let stack = Sandboxes::start().await;
    let mut typo = application("123456789", "k-typo", "user-test-1");
    let attributes = typo["data"]["attributes"].as_object_mut().unwrap();
    let subject = attributes.remove("jwtSubject").unwrap();
    attributes.insert("jwtSubjet".into(), subject);
    let form = json!({"data": {"type": "applicationForm", "attributes": {
        "applicantDetails": {"jwtSubject": "user-test-1"}, "tags": {"stytchUserId": "user-test-1"}}}});
    let patch = json!({"data": {"type": "individualCustomer", "attributes": {"jwt_subject": "user-test-1"}}});
    let token = json!({"data": {"type": "customerToken", "attributes": {
        "scope": "customers", "jwtToken": "eyJ", "expiresIn": "900"}}});
    let verification =
        json!({"data": {"type": "customerTokenVerification", "attributes": {"channel": "email"}}});
    let account = json!({"data": {"type": "depositAccount", "attributes": {"tags": {"purpose": "checking"}},
        "relationships": {"customer": {"data": {"type": "customer", "id": "424242"}}}}});
    let card = json!({"data": {"type": "individualVirtualDebitCard", "attributes": {},
        "relationships": {}}});
    let cases = [
        (
            Method::POST,
            "/applications",
            typo,
            "/data/attributes/jwtSubjet",
        ),
        (
            Method::POST,
            "/application-forms",
            form,
            "/data/attributes/idempotencyKey",
        ),
        (
            Method::PATCH,
            "/customers/424242",
            patch,
            "/data/attributes/jwt_subject",
        ),
        (
            Method::POST,
            "/customers/424242/token",
            token,
            "/data/attributes/expiresIn",
        ),
        (
            Method::POST,
            "/customers/424242/token/verification",
            verification,
            "/data/attributes/channel",
        ),
        (
            Method::POST,
            "/accounts",
            account,
            "/data/attributes/depositProduct",
        ),
        (Method::POST, "/cards", card, "/data/relationships/account"),
    ];
    for (method, path, body, pointer) in cases {
        let (status, answer) = json_of(
            stack
                .unit_call(method.clone(), path)
                .header("x-accept-version", "V2024_06")
                .json(&body),
        )
        .await;
        assert_eq!(status, 400, "{method} {path}: {answer}");
        assert_unit_errors(&answer, "400");
        let first = &answer["errors"][0];
        assert_eq!(
            first["source"]["pointer"], pointer,
            "{method} {path}: {answer}"
        );
        assert_eq!(first["code"], "invalid_value");
        assert!(
            first["detail"]
                .as_str()
                .unwrap()
                .contains("Unit's OpenAPI spec"),
            "{answer}"
        );
    }
    assert_eq!(sandboxes::unit::spec().operations().len(), 10);
}

// ---------------------------------------------------------------- Unit accounts and cards

const DEPOSIT_ACCOUNT: &str = "schemas/account/account.json#/components/schemas/DepositAccount";
const VIRTUAL_CARD: &str = "schemas/card/card.json#/components/schemas/IndividualVirtualDebitCard";

fn deposit_account(customer: &str, key: &str) -> Value {
    json!({"data": {"type": "depositAccount",
        "attributes": {"depositProduct": "checking", "tags": {"purpose": "contract"}, "idempotencyKey": key},
        "relationships": {"customer": {"data": {"type": "customer", "id": customer}}}}})
}

fn virtual_card(account: &str, attributes: Value) -> Value {
    json!({"data": {"type": "individualVirtualDebitCard", "attributes": attributes,
        "relationships": {"account": {"data": {"type": "depositAccount", "id": account}}}}})
}

#[tokio::test]
async fn the_org_opens_deposit_accounts_and_virtual_cards_as_the_spec_describes_them() {
    let stack = Sandboxes::start().await;
    let customer = approved_customer(&stack, "user-test-cards").await;
    let (status, account) = json_of(
        stack
            .unit_call(Method::POST, "/accounts")
            .json(&deposit_account(&customer, "acct-1")),
    )
    .await;
    assert_eq!(status, 201, "{account}");
    assert_on_spec(DEPOSIT_ACCOUNT, &account["data"]);
    let attributes = &account["data"]["attributes"];
    assert_eq!(
        (
            &attributes["status"],
            &attributes["balance"],
            &attributes["available"]
        ),
        (&json!("Open"), &json!(0), &json!(0))
    );
    assert_eq!(attributes["name"], "Peter Parker", "the holder's name");
    assert_eq!(
        account["data"]["relationships"]["customer"]["data"]["id"],
        customer
    );
    let account_id = account["data"]["id"].as_str().unwrap().to_owned();
    let (status, replay) = json_of(
        stack
            .unit_call(Method::POST, "/accounts")
            .json(&deposit_account(&customer, "acct-1")),
    )
    .await;
    assert_eq!(
        (status, &replay["data"]["id"]),
        (201, &account["data"]["id"])
    );
    let (status, got) =
        json_of(stack.unit_call(Method::GET, &format!("/accounts/{account_id}"))).await;
    assert_eq!((status, &got["data"]), (200, &account["data"]));
    let (status, body) = json_of(
        stack
            .unit_call(Method::POST, "/accounts")
            .json(&deposit_account("999999", "acct-2")),
    )
    .await;
    assert_eq!(status, 404, "an unknown customer: {body}");
    assert_unit_errors(&body, "404");

    let (status, card) = json_of(stack.unit_call(Method::POST, "/cards").json(&virtual_card(
        &account_id,
        json!({"idempotencyKey": "card-1"}),
    )))
    .await;
    assert_eq!(status, 201, "{card}");
    assert_on_spec(VIRTUAL_CARD, &card["data"]);
    let data = &card["data"];
    assert_eq!(data["type"], "individualVirtualDebitCard");
    assert_eq!(
        data["attributes"]["status"], "Active",
        "virtual cards need no activation"
    );
    assert_eq!(data["relationships"]["account"]["data"]["id"], account_id);
    assert_eq!(data["relationships"]["customer"]["data"]["id"], customer);
    let card_id = data["id"].as_str().unwrap();
    let (status, got) = json_of(stack.unit_call(Method::GET, &format!("/cards/{card_id}"))).await;
    assert_eq!((status, &got["data"]), (200, data));
    let (_, replay) = json_of(stack.unit_call(Method::POST, "/cards").json(&virtual_card(
        &account_id,
        json!({"idempotencyKey": "card-1"}),
    )))
    .await;
    assert_eq!(
        replay["data"]["id"], data["id"],
        "the same key, the same card"
    );
    let (status, dated) = json_of(
        stack
            .unit_call(Method::POST, "/cards")
            .json(&virtual_card(&account_id, json!({"expiryDate": "2099-01"}))),
    )
    .await;
    assert_eq!(status, 400, "3 to 5 years only: {dated}");
    assert_eq!(
        dated["errors"][0]["source"]["pointer"],
        "/data/attributes/expiryDate"
    );

    // Other card types are refused; so are cards of business accounts and unknown accounts.
    let physical = json!({"data": {"type": "individualDebitCard", "attributes": {},
        "relationships": {"account": {"data": {"type": "depositAccount", "id": account_id}}}}});
    let (status, body) = json_of(stack.unit_call(Method::POST, "/cards").json(&physical)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["source"]["pointer"], "/data/type");
    let business = stack
        .unit
        .add_business_customer("Pied Piper", "ops@example.com");
    let (status, business_account) = json_of(
        stack
            .unit_call(Method::POST, "/accounts")
            .json(&deposit_account(&business, "acct-business")),
    )
    .await;
    assert_eq!(
        status, 201,
        "businesses hold deposit accounts: {business_account}"
    );
    let business_account = business_account["data"]["id"].as_str().unwrap();
    let (status, body) = json_of(
        stack
            .unit_call(Method::POST, "/cards")
            .json(&virtual_card(business_account, json!({}))),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("individual")
    );
    let (status, _) = json_of(
        stack
            .unit_call(Method::POST, "/cards")
            .json(&virtual_card("999999", json!({}))),
    )
    .await;
    assert_eq!(status, 404);

    // An archived customer gets no new account.
    archive_customer(&stack, &customer).await;
    let (status, body) = json_of(
        stack
            .unit_call(Method::POST, "/accounts")
            .json(&deposit_account(&customer, "acct-3")),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn the_sandbox_control_opens_an_account_and_a_card_once() {
    let stack = Sandboxes::start().await;
    let customer = approved_customer(&stack, "user-test-control").await;
    let open = || {
        stack
            .http
            .post(stack.unit(&format!("/_sandbox/customers/{customer}/card")))
    };
    let (status, first) = json_of(open()).await;
    assert_eq!(status, 201, "{first}");
    let (status, second) = json_of(open()).await;
    assert_eq!((status, &second), (201, &first), "the same ids again");
    let (account, card) = stack.unit.open_card(&customer).unwrap();
    assert_eq!(
        (json!(account), json!(card)),
        (first["accountId"].clone(), first["cardId"].clone())
    );
    assert_eq!(stack.unit.card_status(&card).as_deref(), Some("Active"));
    let (_, got) = json_of(stack.unit_call(Method::GET, &format!("/cards/{card}"))).await;
    assert_eq!(
        got["data"]["relationships"]["account"]["data"]["id"],
        account
    );
    let (status, _) = json_of(
        stack
            .http
            .post(stack.unit("/_sandbox/customers/999999/card")),
    )
    .await;
    assert_eq!(status, 404);
    assert!(stack.unit.open_card("999999").is_err());
    let business = stack
        .unit
        .add_business_customer("Pied Piper", "ops@example.com");
    assert!(
        stack
            .unit
            .open_card(&business)
            .unwrap_err()
            .contains("individual")
    );
    assert_eq!(stack.unit.card_status("999999"), None);
}

/// A customer token for `customer` minted with `login`'s JWT: `scope`, and `resources` if given.
async fn card_token(
    stack: &Sandboxes,
    customer: &str,
    login: &support::Login,
    scope: &str,
    resources: Option<Value>,
) -> String {
    let mut attributes = json!({"scope": scope, "jwtToken": login.session_jwt});
    if let Some(r) = resources {
        attributes["resources"] = r;
    }
    let (status, body) = json_of(
        stack
            .unit_call(Method::POST, &format!("/customers/{customer}/token"))
            .json(&json!({"data": {"type": "customerToken", "attributes": attributes}})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["data"]["attributes"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A call to a card route with `bearer`: its status and body.
async fn card_call(stack: &Sandboxes, bearer: &str, method: Method, path: &str) -> (u16, Value) {
    json_of(
        stack
            .http
            .request(method, stack.unit(path))
            .bearer_auth(bearer),
    )
    .await
}

#[tokio::test]
async fn customer_tokens_reach_their_cards_as_their_scopes_and_resources_allow() {
    let stack = Sandboxes::start().await;
    let peter = stack.sign_up("peter@example.com").await;
    let customer = approved_customer(&stack, &peter.user_id).await;
    let (account, card) = stack.unit.open_card(&customer).unwrap();
    let (_, second) = json_of(
        stack
            .unit_call(Method::POST, "/cards")
            .json(&virtual_card(&account, json!({}))),
    )
    .await;
    let second = second["data"]["id"].as_str().unwrap().to_owned();
    let mary = stack.sign_up("mary@example.com").await;
    let other = approved_customer(&stack, &mary.user_id).await;
    let (_, others_card) = stack.unit.open_card(&other).unwrap();
    let freeze = format!("/cards/{card}/freeze");

    // `cards` reads, its own cards only, but does not freeze.
    let reader = card_token(&stack, &customer, &peter, "cards", None).await;
    let (status, got) = card_call(&stack, &reader, Method::GET, &format!("/cards/{card}")).await;
    assert_eq!(
        (status, got["data"]["id"].as_str()),
        (200, Some(card.as_str()))
    );
    let (status, list) = card_call(&stack, &reader, Method::GET, "/cards?sort=-createdAt").await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![second.as_str(), card.as_str()],
        "newest first, no one else's"
    );
    assert_eq!(list["meta"]["pagination"]["total"], 2);
    let (_, page) = card_call(
        &stack,
        &reader,
        Method::GET,
        "/cards?page[limit]=1&page[offset]=1",
    )
    .await;
    assert_eq!(
        page["data"][0]["id"],
        second.as_str(),
        "oldest first by default, paged"
    );
    let (status, refused) = card_call(&stack, &reader, Method::POST, &freeze).await;
    assert_eq!(status, 403, "{refused}");
    assert_unit_errors(&refused, "403");
    assert!(
        refused["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("cards-write")
    );
    assert_eq!(stack.unit.card_status(&card).as_deref(), Some("Active"));

    // `cards-write` freezes and unfreezes (and reads).
    let writer = card_token(&stack, &customer, &peter, "cards-write", None).await;
    let (status, frozen) = card_call(&stack, &writer, Method::POST, &freeze).await;
    assert_eq!(
        (status, &frozen["data"]["attributes"]["status"]),
        (200, &json!("Frozen"))
    );
    assert_on_spec(VIRTUAL_CARD, &frozen["data"]);
    assert_eq!(
        card_call(&stack, &writer, Method::POST, &freeze).await.0,
        400,
        "already frozen"
    );
    let (status, active) = card_call(
        &stack,
        &writer,
        Method::POST,
        &format!("/cards/{card}/unfreeze"),
    )
    .await;
    assert_eq!(
        (status, &active["data"]["attributes"]["status"]),
        (200, &json!("Active"))
    );
    assert_eq!(
        card_call(&stack, &writer, Method::GET, &format!("/cards/{card}"))
            .await
            .0,
        200
    );

    // Another customer's card is refused, to read or to freeze.
    for (method, path) in [
        (Method::GET, format!("/cards/{others_card}")),
        (Method::POST, format!("/cards/{others_card}/freeze")),
    ] {
        let (status, body) = card_call(&stack, &writer, method.clone(), &path).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
    }
    assert_eq!(
        stack.unit.card_status(&others_card).as_deref(),
        Some("Active")
    );

    // A token limited to the second card touches that card only; one limited to the account
    // touches every card on it.
    let limited = card_token(
        &stack,
        &customer,
        &peter,
        "cards-write",
        Some(json!([{"type": "card", "ids": [second]}])),
    )
    .await;
    let (status, body) = card_call(&stack, &limited, Method::POST, &freeze).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        card_call(&stack, &limited, Method::GET, &format!("/cards/{card}"))
            .await
            .0,
        403
    );
    assert_eq!(
        card_call(
            &stack,
            &limited,
            Method::POST,
            &format!("/cards/{second}/freeze")
        )
        .await
        .0,
        200
    );
    let (_, list) = card_call(&stack, &limited, Method::GET, "/cards").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let by_account = card_token(
        &stack,
        &customer,
        &peter,
        "cards-write",
        Some(json!([{"type": "account", "ids": [account]}])),
    )
    .await;
    assert_eq!(
        card_call(
            &stack,
            &by_account,
            Method::POST,
            &format!("/cards/{second}/unfreeze")
        )
        .await
        .0,
        200
    );

    // Unknown and expired tokens are 401.
    assert_eq!(
        card_call(
            &stack,
            "v2.public.unknown",
            Method::GET,
            &format!("/cards/{card}")
        )
        .await
        .0,
        401
    );
    let (status, short) = json_of(
        stack
            .unit_call(Method::POST, &format!("/customers/{customer}/token"))
            .json(&json!({"data": {"type": "customerToken", "attributes": {
                "scope": "cards-write", "jwtToken": peter.session_jwt, "expiresIn": 1}}})),
    )
    .await;
    assert_eq!(status, 201);
    let short = short["data"]["attributes"]["token"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = card_call(&stack, short, Method::POST, &freeze).await;
    assert_eq!(status, 401, "expired: {body}");
    assert_unit_errors(&body, "401");

    // PIN status needs a sensitive scope.
    let pin = format!("/cards/{card}/secure-data/pin/status");
    let (status, body) = card_call(&stack, &writer, Method::GET, &pin).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("cards-sensitive")
    );
    let sensitive = card_token(&stack, &customer, &peter, "cards-sensitive", None).await;
    let (status, body) = card_call(&stack, &sensitive, Method::GET, &pin).await;
    assert_eq!(
        (status, &body["data"]["attributes"]["status"]),
        (200, &json!("NotSet"))
    );
    assert_on_spec(
        "schemas/card/cardPaths.json#/components/schemas/UnitPinStatusResponse",
        &body,
    );

    // Lost is final: no unfreeze, freeze or close after it.
    let (status, lost) = card_call(
        &stack,
        &writer,
        Method::POST,
        &format!("/cards/{card}/report-lost"),
    )
    .await;
    assert_eq!(
        (status, &lost["data"]["attributes"]["status"]),
        (200, &json!("Lost"))
    );
    for action in ["unfreeze", "freeze", "close", "report-stolen"] {
        let (status, body) = card_call(
            &stack,
            &writer,
            Method::POST,
            &format!("/cards/{card}/{action}"),
        )
        .await;
        assert_eq!(status, 400, "{action} after report-lost: {body}");
        assert_unit_errors(&body, "400");
    }
    assert_eq!(stack.unit.card_status(&card).as_deref(), Some("Lost"));
    let (status, closed) = card_call(
        &stack,
        &writer,
        Method::POST,
        &format!("/cards/{second}/close"),
    )
    .await;
    assert_eq!(
        (status, &closed["data"]["attributes"]["status"]),
        (200, &json!("ClosedByCustomer"))
    );
    let (_, stolen) =
        json_of(stack.unit_call(Method::POST, &format!("/cards/{others_card}/report-stolen")))
            .await;
    assert_eq!(
        stolen["data"]["attributes"]["status"], "Stolen",
        "the org token may do it all"
    );
    let (_, lost_only) = card_call(
        &stack,
        &reader,
        Method::GET,
        "/cards?filter[status][0]=Lost",
    )
    .await;
    assert_eq!(lost_only["data"].as_array().unwrap().len(), 1);
}
