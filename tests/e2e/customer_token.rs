//! End-to-end: customer-token through the local stack (DynamoDB in moto, both sandboxes), from
//! signup to a Unit call made with the token.

use e2e::{Stack, code_of, json_of, now};
use reqwest::Method;
use serde_json::{Value, json};

fn token(stack: &Stack, jwt: &str, body: Value) -> reqwest::RequestBuilder {
    stack.customer_token(jwt, body)
}

/// RFC 9470: a missing step-up is a 401 whose `WWW-Authenticate` says
/// `insufficient_user_authentication` with the maximum age, and whose body names the factors
/// that count; a revoked session's 401 says `invalid_token`, so a client tells them apart by
/// `error`.
#[tokio::test]
async fn a_missing_step_up_is_a_standard_challenge_and_a_revoked_session_is_not() {
    let stack = Stack::start(&[]).await;
    let (login, _) = stack.onboarded("challenge@example.com").await;
    let (status, challenge, body) = challenged(token(
        &stack,
        &login.session_jwt,
        json!({"scope": "cards-write"}),
    ))
    .await;
    assert_eq!((status, code_of(&body)), (401, Some("step_up_required")));
    assert!(
        challenge
            .starts_with("Bearer error=\"insufficient_user_authentication\", error_description=\"")
            && challenge.ends_with(", max_age=\"300\""),
        "{challenge}"
    );
    assert_eq!(
        body["error"]["step_up"],
        json!({"factors": ["totp"], "max_age": 300})
    );
    stack.delete_at_stytch(&login.user_id).await;
    let (status, challenge, body) = challenged(token(&stack, &login.session_jwt, json!({}))).await;
    assert_eq!((status, code_of(&body)), (401, Some("session_revoked")));
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{challenge}"
    );
}

/// The status, `WWW-Authenticate` and body of an answer.
async fn challenged(request: reqwest::RequestBuilder) -> (u16, String, Value) {
    let response = request.send().await.unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|h| h.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let status = response.status().as_u16();
    (status, challenge, response.json().await.unwrap())
}

#[tokio::test]
async fn the_full_path_from_signup_to_a_unit_call_with_the_customer_token() {
    let stack = Stack::start(&[]).await;
    let (login, customer) = stack.onboarded("peter@example.com").await;

    // Read-only scopes need only a session.
    let (status, read) = json_of(token(
        &stack,
        &login.session_jwt,
        json!({"scope": "customers accounts"}),
    ))
    .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(
        (read["scope"].as_str(), read["expires_in"].as_u64()),
        (Some("accounts customers"), Some(3600))
    );
    // A sensitive scope without step-up: the frontend is told to step up.
    let (status, body) = json_of(token(
        &stack,
        &login.session_jwt,
        json!({"scope": "customers cards-write"}),
    ))
    .await;
    assert_eq!((status, code_of(&body)), (401, Some("step_up_required")));
    assert_eq!(stack.unit_token_calls(), 1, "refused before Unit");

    let jwt = stack.stepped_up(&login).await;
    let (status, issued) = json_of(token(
        &stack,
        &jwt,
        json!({"scope": "customers cards-write", "expires_in": 600}),
    ))
    .await;
    assert_eq!(status, 200, "{issued}");
    assert_eq!(
        (
            issued["expires_in"].as_u64(),
            issued["customer_id"].as_str()
        ),
        (Some(600), Some(customer.as_str()))
    );
    let bearer = issued["token"].as_str().unwrap();
    let (status, me) = json_of(
        stack
            .http
            .get(stack.unit(&format!("/customers/{customer}")))
            .bearer_auth(bearer),
    )
    .await;
    assert_eq!(
        (status, me["data"]["id"].as_str()),
        (200, Some(customer.as_str())),
        "the token reads its customer at Unit"
    );

    // Unit received the caller's own JWT.
    let sent = stack
        .unit_log()
        .into_iter()
        .rfind(|r| r.path.ends_with("/token"))
        .unwrap();
    assert_eq!(sent.path, format!("/customers/{customer}/token"));
    assert_eq!(
        sent.body["data"]["attributes"]["jwtToken"], "[masked]",
        "sent, and masked in the sandbox log"
    );
    // One audit entry per token, never the token.
    let audit = stack.audit(&login.user_id).await;
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[1].scopes.to_string(), "cards-write customers");
    assert_eq!(
        (audit[1].customer_id.as_deref(), audit[1].expires_in),
        (Some(customer.as_str()), 600)
    );
    assert!(!format!("{audit:?}").contains(bearer));
}

#[tokio::test]
async fn stale_or_missing_step_up_and_bad_requests_are_refused_before_unit() {
    let stack = Stack::start(&[]).await;
    let (login, _) = stack.onboarded("peter@example.com").await;
    let old = time::OffsetDateTime::now_utc() - time::Duration::minutes(10);
    let stamp = old
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let stale = stack.forge(&login.user_id, now(), |c| {
        c["https://stytch.com/session"]["authentication_factors"] = json!([
            {"type": "password", "delivery_method": "knowledge", "last_authenticated_at": stamp},
            {"type": "totp", "delivery_method": "authenticator_app", "last_authenticated_at": stamp,
             "authenticator_app_factor": {"totp_id": "totp-test-old"}}]);
    });
    let (status, body) = json_of(token(&stack, &stale, json!({"scope": "payments-write"}))).await;
    assert_eq!(
        (status, code_of(&body)),
        (401, Some("step_up_required")),
        "a 10-minute-old step-up is stale"
    );
    let recovered_only = stack.forge(&login.user_id, now(), |c| {
        c["https://stytch.com/session"]["authentication_factors"] = json!([
            {"type": "recovery_codes", "delivery_method": "recovery_code", "last_authenticated_at": e2e::rfc3339(now())}]);
    });
    let (status, _) = json_of(token(
        &stack,
        &recovered_only,
        json!({"scope": "cards-write"}),
    ))
    .await;
    assert_eq!(status, 401, "a recovery code is not a TOTP step-up");
    let expiring = stack.forge(&login.user_id, now() - 290, |_| {});
    let (status, body) = json_of(token(&stack, &expiring, json!({}))).await;
    assert_eq!(
        (status, code_of(&body)),
        (401, Some("session_jwt_expiring"))
    );
    let (status, body) = json_of(token(
        &stack,
        &login.session_jwt,
        json!({"scope": "customers webhooks-write"}),
    ))
    .await;
    assert_eq!((status, code_of(&body)), (400, Some("scope_not_allowed")));
    let (status, body) = json_of(token(&stack, &login.session_jwt, json!({"expires_in": 0}))).await;
    assert_eq!((status, code_of(&body)), (400, Some("invalid_request")));
    let (status, body) = json_of(token(
        &stack,
        &login.session_jwt,
        json!({"resources": [{"type": "vault", "ids": ["x"]}]}),
    ))
    .await;
    assert_eq!(
        (status, body["error"]["fields"].as_array().map(Vec::len)),
        (400, Some(2))
    );
    let (status, _) = json_of(token(
        &stack,
        &login.session_jwt,
        json!({"customer_id": "10000"}),
    ))
    .await;
    assert_eq!(status, 400, "the customer never comes from the body");
    assert_eq!(stack.unit_token_calls(), 0);
    let (status, capped) = json_of(token(
        &stack,
        &login.session_jwt,
        json!({"expires_in": 100000}),
    ))
    .await;
    assert_eq!(
        (status, capped["expires_in"].as_u64()),
        (200, Some(86400)),
        "capped at Unit's maximum"
    );
}

#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn the_token_limit_counts_issued_tokens_only_and_outlives_record_updates() {
    let stack = Stack::on_moto_with(&e2e::moto(), &[("TOKENS_PER_USER", "2/600")]).await;
    let login = stack.sign_up("limits@example.com").await;
    // Not onboarded: refused, and the refusals take nothing from the limit.
    for _ in 0..3 {
        let (status, body) = json_of(token(&stack, &login.session_jwt, json!({}))).await;
        assert_eq!(
            (status, code_of(&body)),
            (409, Some("onboarding_incomplete"))
        );
    }
    let customer = stack.apply(&login).await;
    // Nor does a token Unit did not issue.
    stack
        .unit_fault(json!({"route": "POST /customers/{id}/token", "status": 503, "times": 3}))
        .await;
    let (status, _) = json_of(token(&stack, &login.session_jwt, json!({}))).await;
    assert_eq!(status, 502);
    let (status, issued) = json_of(token(&stack, &login.session_jwt, json!({}))).await;
    assert_eq!(
        (status, issued["customer_id"].as_str()),
        (200, Some(customer.as_str()))
    );
    // A step-up records the verified TOTP on the user's record: an update, which keeps the
    // count beside it.
    let before = stack.record(&login.user_id).await.unwrap().version;
    let jwt = stack.stepped_up(&login).await;
    let record = stack.record(&login.user_id).await.unwrap();
    assert!(record.version > before && record.second_factor_verified_at.is_some());
    let (status, _) = json_of(token(&stack, &jwt, json!({}))).await;
    assert_eq!(status, 200);
    let (status, body) = json_of(token(&stack, &jwt, json!({}))).await;
    assert_eq!(
        (status, code_of(&body)),
        (429, Some("too_many_tokens")),
        "{body}"
    );
    // A deleted account mints nothing, full window or not: Stytch ended its sessions (every
    // mint confirms the session there), and the record says deleted.
    stack.delete_at_stytch(&login.user_id).await;
    let (status, body) = json_of(token(&stack, &jwt, json!({}))).await;
    assert_eq!((status, code_of(&body)), (401, Some("session_revoked")));
    let record = stack.record(&login.user_id).await.unwrap();
    assert!(record.deleted);
    let audited = stack.audit(&login.user_id).await;
    assert_eq!(audited.len(), 2, "one audit entry per token issued");
}

#[tokio::test]
async fn another_users_jwt_never_gets_this_customers_token() {
    let stack = Stack::start(&[]).await;
    let (_, customer_a) = stack.onboarded("a@example.com").await;
    let stranger = stack.sign_up("b@example.com").await;
    let (status, body) = json_of(token(&stack, &stranger.session_jwt, json!({}))).await;
    assert_eq!(
        (status, code_of(&body)),
        (409, Some("onboarding_incomplete"))
    );
    let (login_c, customer_c) = stack.onboarded("c@example.com").await;
    let (status, issued) = json_of(token(&stack, &login_c.session_jwt, json!({}))).await;
    assert_eq!(status, 200);
    assert_eq!(issued["customer_id"].as_str(), Some(customer_c.as_str()));
    let (status, _) = json_of(
        stack
            .http
            .get(stack.unit(&format!("/customers/{customer_a}")))
            .bearer_auth(issued["token"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 403, "C's token cannot read A");
    // If Unit's customer no longer carries this user as jwtSubject, Unit refuses the exchange.
    stack
        .local
        .app
        .unit
        .set_customer_jwt_subject(
            &customer_c.parse().unwrap(),
            &"user-test-someone-else".parse().unwrap(),
            tokio::time::Instant::now() + std::time::Duration::from_secs(10),
        )
        .await
        .unwrap();
    let (status, body) = json_of(token(&stack, &login_c.session_jwt, json!({}))).await;
    assert_eq!(
        (status, code_of(&body)),
        (401, Some("session_rejected_by_unit"))
    );
}

#[tokio::test]
async fn an_approval_whose_webhook_was_missed_is_found_at_unit() {
    let stack = Stack::start(&[]).await;
    let login = stack.sign_up("late@example.com").await;
    // Unit approved an application for this user, its webhook was lost, and our record only
    // knows the application as pending.
    stack
        .http
        .put(stack.unit("/_sandbox/webhooks"))
        .json(&json!({"deliver": false}))
        .send()
        .await
        .unwrap();
    let (status, created) = json_of(stack.unit_call(Method::POST, "/applications").json(&json!({"data": {
        "type": "individualApplication", "attributes": {
            "ssn": "555443333", "fullName": {"first": "Late", "last": "Hook"}, "dateOfBirth": "1990-02-03",
            "address": {"street": "1 Main St", "city": "Springfield", "state": "IL", "postalCode": "62701", "country": "US"},
            "email": "late@example.com", "phone": {"countryCode": "1", "number": "5555550102"},
            "jwtSubject": login.user_id}}}))).await;
    assert_eq!(status, 201);
    let application_id = created["data"]["id"].as_str().unwrap().to_owned();
    let customer = created["data"]["relationships"]["customer"]["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let user_id = login.user_id.parse().unwrap();
    shared::store::modify(&*stack.local.app.store, &user_id, true, |r| {
        r.application_id = Some(application_id.parse().unwrap());
        r.application_status = Some(shared::domain::ApplicationStatus::Pending);
        true
    })
    .await
    .unwrap();
    let (status, issued) = json_of(token(&stack, &login.session_jwt, json!({}))).await;
    assert_eq!(
        (status, issued["customer_id"].as_str()),
        (200, Some(customer.as_str())),
        "{issued}"
    );
    let record = stack.record(&login.user_id).await.unwrap();
    assert_eq!(
        (
            record.customer_id.as_deref(),
            record.application_status.as_ref().map(|s| s.as_str())
        ),
        (Some(customer.as_str()), Some("Approved"))
    );
    assert!(
        stack
            .unit_log()
            .iter()
            .any(|r| r.method == "GET" && r.path == format!("/applications/{application_id}")),
        "the customer was found by asking Unit"
    );
}

#[tokio::test]
async fn unit_faults_are_retried_within_bounds_and_rotation_keeps_working() {
    let stack = Stack::start(&[
        ("UPSTREAM_TIMEOUT_MS", "400"),
        ("JWKS_REFETCH_INTERVAL_SECONDS", "0"),
    ])
    .await;
    let (login, _) = stack.onboarded("peter@example.com").await;
    let fault = |body: Value| stack.unit_fault(body);
    let route = "POST /customers/{id}/token";
    fault(json!({"route": route, "status": 503, "times": 2})).await;
    let (status, _) = json_of(token(&stack, &login.session_jwt, json!({}))).await;
    assert_eq!(status, 200, "two 503s, then the third attempt succeeds");
    fault(json!({"route": route, "status": 503, "times": 3})).await;
    let (status, body) = json_of(token(&stack, &login.session_jwt, json!({}))).await;
    assert_eq!(
        (status, code_of(&body)),
        (502, Some("upstream_unavailable"))
    );
    fault(json!({"route": route, "status": 429, "retry_after": 0, "times": 3})).await;
    let (status, body) = json_of(token(&stack, &login.session_jwt, json!({}))).await;
    assert_eq!(
        (status, code_of(&body)),
        (429, Some("upstream_rate_limited"))
    );
    fault(json!({"route": route, "latency_ms": 1000, "times": 3})).await;
    let (status, body) = json_of(token(&stack, &login.session_jwt, json!({}))).await;
    assert_eq!((status, code_of(&body)), (504, Some("upstream_timeout")));
    fault(json!({"route": route, "drop": true, "times": 3})).await;
    let (status, _) = json_of(token(&stack, &login.session_jwt, json!({}))).await;
    assert_eq!(status, 502, "dropped connections");
    stack.clear_faults().await;
    let audited = stack.audit(&login.user_id).await.len();
    assert_eq!(audited, 1, "only the issued token is audited");

    // Stytch rotates its signing key: new sessions carry the new kid and still work.
    stack
        .http
        .post(stack.stytch("/_sandbox/keys/rotate"))
        .send()
        .await
        .unwrap();
    let (_, fresh) = json_of(
        stack
            .stytch_call(Method::POST, "/v1/sessions/authenticate")
            .json(&json!({"session_token": login.session_token})),
    )
    .await;
    let (status, body) = json_of(token(
        &stack,
        fresh["session_jwt"].as_str().unwrap(),
        json!({}),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
}

/// A vendor's answer keeps its meaning whatever its body (a proxy's HTML page, Unit's JSON
/// without a word about the JWT): a 429 is ours with its wait, in either `Retry-After` form;
/// a 401 that is not about the JWT means our own credential was refused.
#[tokio::test]
async fn vendor_errors_keep_their_meaning_whatever_their_body() {
    let stack = Stack::start(&[]).await;
    let (login, _) = stack.onboarded("bodies@example.com").await;
    let route = "POST /customers/{id}/token";
    let html = "<html><body>Request blocked</body></html>";
    let in_30_s =
        httpdate::fmt_http_date(std::time::SystemTime::now() + std::time::Duration::from_secs(30));
    stack
        .unit_fault(json!({"route": route, "status": 429, "retry_after": in_30_s, "body": html}))
        .await;
    let response = token(&stack, &login.session_jwt, json!({}))
        .send()
        .await
        .unwrap();
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(
        (28..=31).contains(&wait),
        "Unit's HTTP date, as seconds: {wait}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(code_of(&body), Some("upstream_rate_limited"));
    for fault in [
        json!({"route": route, "status": 401, "body": html, "times": 1}),
        json!({"route": route, "status": 401, "times": 1}),
    ] {
        stack.clear_faults().await;
        stack.unit_fault(fault.clone()).await;
        let (status, body) = json_of(token(&stack, &login.session_jwt, json!({}))).await;
        assert_eq!(
            (status, code_of(&body)),
            (502, Some("upstream_credentials_refused")),
            "{fault}: {body}"
        );
    }
    stack
        .stytch_fault(json!({"route": "POST /v1/sessions/authenticate", "status": 401, "body": html, "times": 1}))
        .await;
    let (status, body) = json_of(token(&stack, &login.session_jwt, json!({}))).await;
    assert_eq!(
        (status, code_of(&body)),
        (502, Some("upstream_credentials_refused")),
        "{body}"
    );
    stack.clear_faults().await;
    let (status, body) = json_of(token(&stack, &login.session_jwt, json!({}))).await;
    assert_eq!(status, 200, "{body}");
}

/// SECURITY.md, "An archived customer keeps read access only": Unit's `customer.archived`
/// (verified at Unit) is recorded; from then on write and sensitive tokens are refused without
/// asking Unit, read scopes still go to Unit, `GET /onboarding` says `archived`, and the user
/// cannot apply again. The archive reason stays in the log.
#[tokio::test]
async fn an_archived_customer_keeps_read_tokens_only() {
    let stack = Stack::start(&[]).await;
    let (login, customer) = stack.onboarded("archived@example.com").await;
    let jwt = stack.stepped_up(&login).await;
    let (status, body) = json_of(
        stack
            .unit_call(Method::POST, &format!("/customers/{customer}/archive"))
            .json(&json!({"data": {"type": "archiveCustomer", "attributes": {"reason": "FraudACHActivity"}}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let user = login.user_id.clone();
    let mut archived = false;
    for _ in 0..200 {
        archived = stack
            .record(&user)
            .await
            .is_some_and(|r| r.customer_archived_at.is_some());
        if archived {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(archived, "customer.archived recorded");
    let before = stack.unit_token_calls();
    let (status, body) = json_of(token(&stack, &jwt, json!({"scope": "cards-write"}))).await;
    assert_eq!(
        (status, code_of(&body)),
        (403, Some("customer_archived")),
        "{body}"
    );
    assert!(
        !body.to_string().contains("Fraud"),
        "the reason is not shown: {body}"
    );
    assert_eq!(stack.unit_token_calls(), before, "Unit was not asked");
    let (status, body) = json_of(token(&stack, &jwt, json!({"scope": "statements"}))).await;
    assert_eq!(status, 200, "read scopes still go to Unit: {body}");
    assert_eq!(stack.unit_token_calls(), before + 1);
    let (status, state) = json_of(stack.onboarding(&login.session_jwt)).await;
    assert_eq!((status, state["state"].as_str()), (200, Some("archived")));
    let (status, body) = json_of(
        stack
            .http
            .post(stack.url("/onboarding/application"))
            .bearer_auth(&login.session_jwt)
            .json(&json!({})),
    )
    .await;
    assert_eq!((status, code_of(&body)), (403, Some("customer_archived")));
}

#[tokio::test]
async fn a_revoked_session_mints_nothing() {
    let stack = Stack::start(&[]).await;
    let (login, _) = stack.onboarded("revoked@example.com").await;
    let jwt = stack.stepped_up(&login).await;
    let sensitive = json!({"scope": "customers cards-write", "expires_in": 86400});
    // Before: granted, and for at most SENSITIVE_TOKEN_MAX_EXPIRES_IN (900 s), whatever was asked.
    let (status, issued) = json_of(token(&stack, &jwt, sensitive.clone())).await;
    assert_eq!(
        (status, issued["expires_in"].as_u64()),
        (200, Some(900)),
        "{issued}"
    );
    let sent = stack
        .unit_log()
        .into_iter()
        .rfind(|r| r.path.ends_with("/token"))
        .unwrap();
    assert_eq!(sent.body["data"]["attributes"]["expiresIn"], 900);
    // A read-only token keeps the asked lifetime.
    let (status, read) = json_of(token(
        &stack,
        &jwt,
        json!({"scope": "customers", "expires_in": 7200}),
    ))
    .await;
    assert_eq!(
        (status, read["expires_in"].as_u64()),
        (200, Some(7200)),
        "{read}"
    );

    // The user logs out (or an operator revokes the session): the JWT still verifies locally,
    // but Stytch no longer knows the session.
    let (status, _) = json_of(
        stack
            .stytch_call(Method::POST, "/v1/sessions/revoke")
            .json(&json!({"session_token": login.session_token})),
    )
    .await;
    assert_eq!(status, 200);
    let unit_before = stack.unit_token_calls();
    let (status, body) = json_of(token(&stack, &jwt, sensitive.clone())).await;
    assert_eq!(
        (status, code_of(&body)),
        (401, Some("session_revoked")),
        "{body}"
    );
    assert_eq!(stack.unit_token_calls(), unit_before, "Unit was not asked");
    // SECURITY.md, "No revoked session mints anything": read-only scopes are checked too.
    let (status, body) = json_of(token(&stack, &jwt, json!({"scope": "customers"}))).await;
    assert_eq!(
        (status, code_of(&body)),
        (401, Some("session_revoked")),
        "{body}"
    );
    assert_eq!(stack.unit_token_calls(), unit_before, "Unit was not asked");

    // SESSION_CHECK=sensitive, the old default: reads trust the JWT's own 5 minutes.
    let reads = Stack::start(&[("SESSION_CHECK", "sensitive")]).await;
    let (login, _) = reads.onboarded("reads@example.com").await;
    let jwt = reads.stepped_up(&login).await;
    json_of(
        reads
            .stytch_call(Method::POST, "/v1/sessions/revoke")
            .json(&json!({"session_token": login.session_token})),
    )
    .await;
    let (status, _) = json_of(token(&reads, &jwt, json!({"scope": "customers"}))).await;
    assert_eq!(status, 200);
    let (status, body) = json_of(token(&reads, &jwt, json!({"scope": "cards-write"}))).await;
    assert_eq!((status, code_of(&body)), (401, Some("session_revoked")));
}

/// SECURITY.md, "No token outlives its session": `expires_in` is capped by the session's end in
/// the signed claim, and a session with under a minute left mints nothing.
#[tokio::test]
async fn no_token_outlives_its_session() {
    // The forged sessions exist nowhere at Stytch: the session check is off here.
    let stack = Stack::start(&[("SESSION_CHECK", "local")]).await;
    let (login, _) = stack.onboarded("ending@example.com").await;
    let ending_in = |seconds: i64| {
        stack.forge(&login.user_id, now(), |c| {
            c["https://stytch.com/session"]["expires_at"] = json!(e2e::rfc3339(now() + seconds));
        })
    };
    let (status, body) = json_of(token(
        &stack,
        &ending_in(200),
        json!({"scope": "customers", "expires_in": 3600}),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    let granted = body["expires_in"].as_u64().unwrap();
    assert!(
        (190..=200).contains(&granted),
        "capped at the session's end: {granted}"
    );
    let sent = stack
        .unit_log()
        .into_iter()
        .rfind(|r| r.path.ends_with("/token"))
        .unwrap();
    assert_eq!(
        sent.body["data"]["attributes"]["expiresIn"].as_u64(),
        Some(granted)
    );
    let before = stack.unit_token_calls();
    for jwt in [
        ending_in(30),
        stack.forge(&login.user_id, now(), |c| {
            c["https://stytch.com/session"]["expires_at"] = Value::Null;
        }),
    ] {
        let (status, body) = json_of(token(&stack, &jwt, json!({"scope": "customers"}))).await;
        assert_eq!(
            (status, code_of(&body)),
            (401, Some("session_ending")),
            "{body}"
        );
    }
    assert_eq!(stack.unit_token_calls(), before, "Unit was not asked");
}

/// SECURITY.md, "Sensitive unless known to be read-only": a write scope an operator allows but
/// no list names still needs the step-up, and `SENSITIVE_SCOPES` only adds.
#[tokio::test]
async fn every_scope_but_the_known_read_only_ones_needs_the_step_up() {
    let stack = Stack::start(&[
        (
            "ALLOWED_SCOPES",
            "customers accounts payments-write-counterparty accounts-write customer-token-write",
        ),
        ("SENSITIVE_SCOPES", "accounts"),
    ])
    .await;
    let (login, _) = stack.onboarded("unlisted@example.com").await;
    for scope in [
        "payments-write-counterparty",
        "accounts-write",
        "customer-token-write",
        "accounts",
    ] {
        let (status, body) =
            json_of(token(&stack, &login.session_jwt, json!({"scope": scope}))).await;
        assert_eq!(
            (status, code_of(&body)),
            (401, Some("step_up_required")),
            "{scope}: {body}"
        );
    }
    let (status, body) = json_of(token(
        &stack,
        &login.session_jwt,
        json!({"scope": "customers"}),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn the_session_check_fails_closed_and_can_be_local() {
    let stack = Stack::start(&[("UPSTREAM_MAX_ATTEMPTS", "2")]).await;
    let (login, _) = stack.onboarded("closed@example.com").await;
    let jwt = stack.stepped_up(&login).await;
    stack
        .stytch_fault(json!({"route": "POST /v1/sessions/authenticate", "status": 503}))
        .await;
    let (status, body) = json_of(token(&stack, &jwt, json!({"scope": "cards-write"}))).await;
    assert_eq!(
        (status, code_of(&body)),
        (502, Some("upstream_unavailable")),
        "{body}"
    );
    stack.clear_faults().await;

    // SESSION_CHECK=local trusts the JWT alone: a revoked session still gets one.
    let local = Stack::start(&[("SESSION_CHECK", "local")]).await;
    let (login, _) = local.onboarded("local@example.com").await;
    let jwt = local.stepped_up(&login).await;
    json_of(
        local
            .stytch_call(Method::POST, "/v1/sessions/revoke")
            .json(&json!({"session_token": login.session_token})),
    )
    .await;
    let (status, body) = json_of(token(&local, &jwt, json!({"scope": "cards-write"}))).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !local
            .stytch_log()
            .iter()
            .any(|r| r.path == "/v1/sessions/authenticate"
                && r.user_agent.starts_with("stytch-unit-bridge/")),
        "no session check at Stytch"
    );
}

/// A session factor: `(type, delivery_method)`.
type Factor<'a> = (&'a str, &'a str);

/// A validly signed session of `user` with these factors, all authenticated now.
fn session_with(stack: &Stack, user: &str, factors: &[Factor]) -> String {
    let at = e2e::rfc3339(now());
    let factors: Vec<Value> = factors
        .iter()
        .map(|(t, d)| json!({"type": t, "delivery_method": d, "last_authenticated_at": at}))
        .collect();
    stack.forge(user, now(), |c| {
        c["https://stytch.com/session"]["authentication_factors"] = json!(factors);
    })
}

/// The password factor every forged session below starts from.
const PASSWORD: Factor = ("password", "knowledge");

/// Each set of factors with the status a `cards-write` token gets for it under `webauthn otp`.
const EXACT_PAIRS: &[(&str, &[Factor], u16)] = &[
    (
        "passkey step-up",
        &[PASSWORD, ("webauthn", "webauthn_registration")],
        200,
    ),
    ("SMS step-up", &[PASSWORD, ("otp", "sms")], 200),
    (
        "SMS step-up by WhatsApp",
        &[PASSWORD, ("otp", "whatsapp")],
        200,
    ),
    (
        "an e-mail code is not otp",
        &[PASSWORD, ("otp", "email")],
        401,
    ),
    (
        "a passkey login alone",
        &[("webauthn", "webauthn_registration")],
        401,
    ),
    ("an SMS login alone", &[("otp", "sms")], 401),
    (
        "TOTP is not in the setting",
        &[PASSWORD, ("totp", "authenticator_app")],
        401,
    ),
    (
        "otp with another delivery",
        &[PASSWORD, ("otp", "authenticator_app")],
        401,
    ),
    (
        "a recovery code labelled otp",
        &[PASSWORD, ("otp", "recovery_code")],
        401,
    ),
    ("no step-up", &[PASSWORD], 401),
];

#[tokio::test]
async fn the_step_up_factors_are_a_setting_of_exact_pairs() {
    // The forged sessions exist nowhere at Stytch: the session check is off here.
    let vars = [
        ("SESSION_CHECK", "local"),
        ("STEP_UP_FACTORS", "webauthn otp"),
    ];
    let stack = Stack::start(&vars).await;
    let (login, _) = stack.onboarded("factors@example.com").await;
    for (name, factors, expected) in EXACT_PAIRS {
        let jwt = session_with(&stack, &login.user_id, factors);
        let (status, body) = json_of(token(&stack, &jwt, json!({"scope": "cards-write"}))).await;
        assert_eq!(status, *expected, "{name}: {body}");
        if *expected == 401 {
            assert_eq!(code_of(&body), Some("step_up_required"), "{name}");
        }
    }
}

/// A forged session of `user` stepped up with the TOTP `totp_id`.
fn stepped_up_with(stack: &Stack, user: &str, totp_id: &str) -> String {
    let at = e2e::rfc3339(now());
    stack.forge(user, now(), |c| {
        c["https://stytch.com/session"]["authentication_factors"] = json!([
            {"type": "password", "delivery_method": "knowledge", "last_authenticated_at": at},
            {"type": "totp", "delivery_method": "authenticator_app", "last_authenticated_at": at,
             "authenticator_app_factor": {"totp_id": totp_id}}]);
    })
}

/// The default is TOTP alone, paired with its delivery method; for a bank customer, only the
/// authenticator bound to them (recorded, confirmed) counts.
#[tokio::test]
async fn by_default_only_the_bound_authenticators_totp_steps_up() {
    let stack = Stack::start(&[("SESSION_CHECK", "local")]).await;
    let (login, _) = stack.onboarded("totp-only@example.com").await;
    let user = login.user_id.as_str();
    shared::store::modify(
        &*stack.local.app.store,
        &user.parse().unwrap(),
        false,
        |r| {
            r.totp_id = Some("totp-test-bound".into());
            r.totp_confirmed_at = Some(shared::store::timestamp());
            true
        },
    )
    .await
    .unwrap();
    let unconfirmed = Some("authenticator_unconfirmed");
    let step_up_required = Some("step_up_required");
    let unlabelled = session_with(&stack, user, &[PASSWORD, ("totp", "authenticator_app")]);
    let passkey = session_with(
        &stack,
        user,
        &[PASSWORD, ("webauthn", "webauthn_registration")],
    );
    let recovery = session_with(&stack, user, &[PASSWORD, ("totp", "recovery_code")]);
    for (jwt, expected, code) in [
        (stepped_up_with(&stack, user, "totp-test-bound"), 200, None),
        (
            stepped_up_with(&stack, user, "totp-test-other"),
            403,
            unconfirmed,
        ),
        (unlabelled, 403, unconfirmed),
        (passkey, 401, step_up_required),
        (recovery, 401, step_up_required),
    ] {
        let (status, body) = json_of(token(&stack, &jwt, json!({"scope": "cards-write"}))).await;
        assert_eq!((status, code_of(&body)), (expected, code), "{body}");
    }
}

/// SECURITY.md, "A step-up is a second channel": e-mail codes count only when `STEP_UP_FACTORS`
/// names `email_otp`, and never beside a factor proving the same inbox.
#[tokio::test]
async fn an_email_code_counts_only_when_named_and_only_beside_another_channel() {
    let stack = Stack::start(&[("SESSION_CHECK", "local"), ("STEP_UP_FACTORS", "email_otp")]).await;
    let (login, _) = stack.onboarded("channel@example.com").await;
    let at = e2e::rfc3339(now());
    let inbox = |address: &str| json!({"email_id": "email-test-1", "email_address": address});
    let cases = [
        (
            "an e-mail code beside a password",
            json!([{"type": "password", "delivery_method": "knowledge", "last_authenticated_at": at},
                   {"type": "otp", "delivery_method": "email", "last_authenticated_at": at, "email_factor": inbox("channel@example.com")}]),
            200,
        ),
        (
            "Stytch's other label for it",
            json!([{"type": "password", "delivery_method": "knowledge", "last_authenticated_at": at},
                   {"type": "email_otp", "delivery_method": "email", "last_authenticated_at": at, "email_factor": inbox("channel@example.com")}]),
            200,
        ),
        (
            "an e-mail code beside a magic link to the same inbox",
            json!([{"type": "magic_link", "delivery_method": "email", "last_authenticated_at": at, "email_factor": inbox("Channel@Example.com")},
                   {"type": "otp", "delivery_method": "email", "last_authenticated_at": at, "email_factor": inbox("channel@example.com")}]),
            401,
        ),
        (
            "an e-mail code beside a magic link to another inbox",
            json!([{"type": "magic_link", "delivery_method": "email", "last_authenticated_at": at, "email_factor": inbox("other@example.com")},
                   {"type": "otp", "delivery_method": "email", "last_authenticated_at": at, "email_factor": inbox("channel@example.com")}]),
            200,
        ),
    ];
    for (name, factors, expected) in cases {
        let jwt = stack.forge(&login.user_id, now(), |c| {
            c["https://stytch.com/session"]["authentication_factors"] = factors.clone();
        });
        let (status, body) = json_of(token(&stack, &jwt, json!({"scope": "cards-write"}))).await;
        assert_eq!(status, expected, "{name}: {body}");
    }
}

/// SECURITY.md, "A password alone does not bind a bank customer's authenticator": with only the
/// password, a thief can enrol and step up, but a sensitive token needs the authenticator
/// enrolled here and confirmed by a code to the contact on the Unit customer (not an address the
/// session can add at Stytch), and a TOTP made through Stytch directly never counts.
#[tokio::test]
async fn a_password_alone_does_not_bind_a_bank_customers_authenticator() {
    let stack = Stack::start(&[]).await;
    let login = stack.sign_up("bound@example.com").await;
    // The bank account's e-mail (on the Unit customer) is not the one the Stytch user logs in
    // with: only the bank's counts.
    let (status, state) = json_of(stack.http.post(stack.url("/onboarding/application")).bearer_auth(&login.session_jwt).json(&json!({
        "full_name": {"first": "Bo", "last": "Und"}, "date_of_birth": "1990-01-01", "email": "bank@example.com",
        "address": {"street": "1 Main St", "city": "Springfield", "state": "IL", "postal_code": "62701"},
        "phone": {"country_code": "1", "number": "5555550104"},
        "ssn": format!("{:09}", fastrand::u64(100_000_000..=665_999_999))
    }))).await;
    assert_eq!(
        (status, state["state"].as_str()),
        (201, Some("approved")),
        "{state}"
    );
    let sensitive = json!({"scope": "payments-write"});
    // The thief: password only, enrols and steps up.
    let jwt = stack.enrolled_and_stepped_up(&login.session_jwt).await;
    let (status, body) = json_of(token(&stack, &jwt, sensitive.clone())).await;
    assert_eq!(
        (status, code_of(&body)),
        (403, Some("authenticator_unconfirmed")),
        "{body}"
    );
    // Proving the Stytch login's own inbox is not proving the bank's.
    let jwt = stack.prove_email(&jwt, "bound@example.com").await;
    let (status, body) = json_of(token(&stack, &jwt, sensitive.clone())).await;
    assert_eq!(
        (status, code_of(&body)),
        (403, Some("authenticator_unconfirmed")),
        "{body}"
    );
    let record = stack.record(&login.user_id).await.unwrap();
    assert!(
        record.totp_id.is_some() && record.totp_confirmed_at.is_none(),
        "{record:?}"
    );
    // A user whose login inbox is the bank's: the same password-only enrolment is refused,
    // until the session proves that inbox; then the first sensitive request confirms it.
    let owner = stack.sign_up("owner-bound@example.com").await;
    stack.apply(&owner).await;
    let jwt = stack.enrolled_and_stepped_up(&owner.session_jwt).await;
    let (status, body) = json_of(token(&stack, &jwt, sensitive.clone())).await;
    assert_eq!(
        (status, code_of(&body)),
        (403, Some("authenticator_unconfirmed")),
        "{body}"
    );
    let jwt = stack.prove_email(&jwt, "owner-bound@example.com").await;
    let (status, body) = json_of(token(&stack, &jwt, sensitive.clone())).await;
    assert_eq!(status, 200, "{body}");
    let record = stack.record(&owner.user_id).await.unwrap();
    assert!(record.totp_confirmed_at.is_some(), "{record:?}");
    // A TOTP made through Stytch directly (its frontend SDK), stepped up at Stytch: never ours.
    let other = stack.sign_up("direct@example.com").await;
    stack.apply(&other).await;
    let (status, created) = json_of(
        stack
            .stytch_call(Method::POST, "/v1/totps")
            .json(&json!({"user_id": other.user_id})),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let secret = created["secret"].as_str().unwrap();
    let jwt = stack
        .prove_email(&other.session_jwt, "direct@example.com")
        .await;
    let (status, stepped) = json_of(
        stack
            .stytch_call(Method::POST, "/v1/totps/authenticate")
            .json(&json!({
                "user_id": other.user_id, "totp_code": e2e::totp(secret, now()), "session_jwt": jwt
            })),
    )
    .await;
    assert_eq!(status, 200, "{stepped}");
    let jwt = stepped["session_jwt"].as_str().unwrap();
    let (status, body) = json_of(token(&stack, jwt, sensitive)).await;
    assert_eq!(
        (status, code_of(&body)),
        (403, Some("authenticator_unconfirmed")),
        "{body}"
    );
}
