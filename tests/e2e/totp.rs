//! End-to-end: totp-stepup through the local stack (DynamoDB in moto, the Stytch sandbox), with
//! codes computed by the tests' own RFC 6238 implementation.

use e2e::{Login, Stack, code_of, json_of, now, totp};
use serde_json::{Value, json};

fn call(stack: &Stack, login: &Login, path: &str, body: Value) -> reqwest::RequestBuilder {
    stack
        .http
        .post(stack.url(path))
        .bearer_auth(&login.session_jwt)
        .json(&body)
}

async fn enrol(stack: &Stack, login: &Login) -> Value {
    let (status, enrolled) = json_of(call(stack, login, "/mfa/totp", json!({}))).await;
    assert_eq!(status, 201, "{enrolled}");
    enrolled
}

/// Waits until the current 30 s step has a few seconds left, so that a code of the step before
/// or after stays in the ±1 window while its request runs.
async fn away_from_a_step_boundary() {
    while now() % 30 >= 26 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// A code that is surely wrong now (not in the ±1 window).
fn wrong_code(secret: &str) -> String {
    let valid: Vec<String> = [-30, 0, 30]
        .iter()
        .map(|d| totp(secret, now() + d))
        .collect();
    (0..)
        .map(|n| format!("{:06}", 100_000 + n))
        .find(|c| !valid.contains(c))
        .unwrap()
}

#[tokio::test]
async fn enrolment_and_step_up_put_a_fresh_totp_factor_in_the_session_jwt() {
    let stack = Stack::start(&[]).await;
    let login = stack.sign_up("ada@example.com").await;
    let enrolled = enrol(&stack, &login).await;
    let secret = enrolled["secret"].as_str().unwrap().to_owned();
    assert!(
        enrolled["qr_code"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    assert_eq!(enrolled["recovery_codes"].as_array().unwrap().len(), 10);

    let (status, stepped) = json_of(call(
        &stack,
        &login,
        "/mfa/totp/authenticate",
        json!({"totp_code": totp(&secret, now())}),
    ))
    .await;
    assert_eq!(status, 200, "{stepped}");
    assert_eq!(
        stepped["session_token"],
        login.session_token.as_str(),
        "the same Stytch session"
    );
    assert!(stepped["session_expires_at"].is_string());
    let jwt = stepped["session_jwt"].as_str().unwrap();
    let session = stack
        .local
        .app
        .verifier
        .verify(jwt, now())
        .await
        .expect("the new JWT verifies");
    assert_eq!(session.user_id, login.user_id);
    assert!(session.has_step_up(
        &std::collections::BTreeSet::from([shared::config::StepUpFactor::Totp]),
        shared::jwt::Freshness {
            max_age: std::time::Duration::from_secs(10),
            leeway: std::time::Duration::ZERO,
            now: now(),
        }
    ));
    let totp_factor = session
        .factors
        .iter()
        .find(|f| f.factor_type == "totp")
        .unwrap();
    assert_eq!(
        totp_factor
            .authenticator_app_factor
            .as_ref()
            .unwrap()
            .totp_id,
        enrolled["totp_id"].as_str().unwrap()
    );

    let (status, body) = json_of(call(&stack, &login, "/mfa/totp", json!({}))).await;
    assert_eq!(
        (status, code_of(&body)),
        (409, Some("totp_already_enrolled"))
    );
}

/// The status and error code of `POST /mfa/totp/authenticate` with `body`.
async fn authenticate(stack: &Stack, login: &Login, body: Value) -> (u16, String) {
    e2e::answer(call(stack, login, "/mfa/totp/authenticate", body)).await
}

/// The status and error code of a step-up with `code`.
async fn step_up(stack: &Stack, login: &Login, code: &str) -> (u16, String) {
    authenticate(stack, login, json!({ "totp_code": code })).await
}

/// Each malformed body is a 400 `invalid_request`, checked before Stytch.
async fn malformed_bodies_are_refused(stack: &Stack, login: &Login) {
    for bad in [
        json!({"totp_code": "12345"}),
        json!({"totp_code": "12a456"}),
        json!({"totp_code": 123456}),
        json!({}),
        json!({"totp_code": "123456", "user_id": "user-test-other"}),
    ] {
        let answer = authenticate(stack, login, bad.clone()).await;
        assert_eq!(answer, (400, "invalid_request".into()), "{bad}");
    }
}

#[tokio::test]
async fn wrong_malformed_replayed_and_out_of_window_codes() {
    let stack = Stack::start(&[]).await;
    let login = stack.sign_up("ada@example.com").await;
    let not_enrolled = step_up(&stack, &login, "123456").await;
    assert_eq!(not_enrolled, (404, "totp_not_enrolled".into()));
    let secret = enrol(&stack, &login).await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    malformed_bodies_are_refused(&stack, &login).await;
    let wrong = (401, "invalid_totp_code".to_owned());
    assert_eq!(step_up(&stack, &login, &wrong_code(&secret)).await, wrong);
    let stale = totp(&secret, now() - 90);
    assert_eq!(
        step_up(&stack, &login, &stale).await,
        wrong,
        "three windows back"
    );
    away_from_a_step_boundary().await;
    let previous = totp(&secret, now() - 30);
    let accepted = step_up(&stack, &login, &previous).await;
    assert_eq!(accepted.0, 200, "the previous window is accepted");
    let replayed = step_up(&stack, &login, &previous).await;
    assert_eq!(replayed, wrong, "a code works once");
    away_from_a_step_boundary().await;
    let next = totp(&secret, now() + 30);
    let accepted = step_up(&stack, &login, &next).await;
    assert_eq!(accepted.0, 200, "the next window is accepted");
}

#[tokio::test]
async fn an_abandoned_enrolment_is_replaced_and_recovery_codes_work_once() {
    let stack = Stack::start(&[]).await;
    let login = stack.sign_up("ada@example.com").await;
    let first = enrol(&stack, &login).await;
    let second = enrol(&stack, &login).await;
    assert_ne!(
        first["totp_id"], second["totp_id"],
        "the unverified registration was replaced"
    );
    let old = first["secret"].as_str().unwrap();
    let new = second["secret"].as_str().unwrap();
    if totp(old, now()) != totp(new, now()) {
        let (status, _) = json_of(call(
            &stack,
            &login,
            "/mfa/totp/authenticate",
            json!({"totp_code": totp(old, now())}),
        ))
        .await;
        assert_eq!(status, 401, "the abandoned secret no longer works");
    }
    let (status, _) = json_of(call(
        &stack,
        &login,
        "/mfa/totp/authenticate",
        json!({"totp_code": totp(new, now())}),
    ))
    .await;
    assert_eq!(status, 200);

    let recovery = second["recovery_codes"][0].as_str().unwrap().to_owned();
    let (status, body) = json_of(call(
        &stack,
        &login,
        "/mfa/totp/recover",
        json!({"recovery_code": "not-a-code"}),
    ))
    .await;
    assert_eq!((status, code_of(&body)), (400, Some("invalid_request")));
    let (status, recovered) = json_of(call(
        &stack,
        &login,
        "/mfa/totp/recover",
        json!({"recovery_code": recovery.to_uppercase()}),
    ))
    .await;
    assert_eq!(status, 200, "{recovered}");
    let session = stack
        .local
        .app
        .verifier
        .verify(recovered["session_jwt"].as_str().unwrap(), now())
        .await
        .unwrap();
    assert!(
        session
            .factors
            .iter()
            .any(|f| f.factor_type == "recovery_codes")
    );
    let (status, body) = json_of(call(
        &stack,
        &login,
        "/mfa/totp/recover",
        json!({"recovery_code": recovery}),
    ))
    .await;
    assert_eq!(
        (status, code_of(&body)),
        (401, Some("invalid_recovery_code"))
    );
}

/// The owner of `secret` steps up in `login`'s session: that session carries a TOTP factor.
async fn stepped_up_owner(stack: &Stack, login: Login, secret: &str) -> Login {
    let (status, stepped) = json_of(call(
        stack,
        &login,
        "/mfa/totp/authenticate",
        json!({"totp_code": totp(secret, now())}),
    ))
    .await;
    assert_eq!(status, 200, "{stepped}");
    Login {
        session_jwt: stepped["session_jwt"].as_str().unwrap().to_owned(),
        ..login
    }
}

/// A thief with the password: three wrong codes lock and revoke that session, and even a right
/// code then gets 429 with a `Retry-After` within the lockout.
async fn a_thiefs_session_is_locked_and_revoked(stack: &Stack, email: &str, secret: &str) {
    let thief = password_login(stack, email, None).await;
    for _ in 0..3 {
        assert_eq!(step_up(stack, &thief, &wrong_code(secret)).await.0, 401);
    }
    assert!(
        !alive(stack, &thief.session_token).await,
        "the session was revoked at Stytch"
    );
    let right = json!({"totp_code": totp(secret, now())});
    let response = call(stack, &thief, "/mfa/totp/authenticate", right)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429, "even a right code");
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&retry_after), "{retry_after}");
}

/// SECURITY.md, "The TOTP lockout is not a weapon, and guessing stays bounded": failures count
/// per session (at the limit the session is refused and revoked at Stytch), recovery codes
/// apart; a per-user daily ceiling bounds the sessions that never stepped up, and never refuses
/// the user's stepped-up session.
#[tokio::test]
async fn failures_lock_the_session_and_a_daily_ceiling_bounds_a_password_thief() {
    let stack = Stack::start(&[
        ("TOTP_MAX_FAILURES", "3"),
        ("TOTP_LOCKOUT_SECONDS", "600"),
        ("TOTP_DAILY_CEILING", "5"),
    ])
    .await;
    let email = "ada@example.com";
    let owner = stack.sign_up(email).await;
    let enrolled = enrol(&stack, &owner).await;
    let secret = enrolled["secret"].as_str().unwrap().to_owned();
    let recovery = enrolled["recovery_codes"][0].as_str().unwrap().to_owned();
    let owner = stepped_up_owner(&stack, owner, &secret).await;
    a_thiefs_session_is_locked_and_revoked(&stack, email, &secret).await;
    // A new session: two more, and the daily ceiling (5) is reached for every session that
    // never stepped up, whatever its own count.
    let again = password_login(&stack, email, None).await;
    for _ in 0..2 {
        assert_eq!(step_up(&stack, &again, &wrong_code(&secret)).await.0, 401);
    }
    let fresh = password_login(&stack, email, None).await;
    let refused = step_up(&stack, &fresh, &totp(&secret, now())).await;
    assert_eq!(refused, (429, "too_many_attempts".into()));
    // The owner's stepped-up session is not refused for the thief's failures.
    away_from_a_step_boundary().await;
    let owners = step_up(&stack, &owner, &totp(&secret, now() + 30)).await;
    assert_eq!(owners.0, 200, "{owners:?}");
    // Recovery codes have their own counter: the owner, in a fresh session, recovers, and the
    // thief's sessions end.
    let recover = json!({"recovery_code": recovery});
    let (status, body) = json_of(call(&stack, &fresh, "/mfa/totp/recover", recover)).await;
    assert_eq!(status, 200, "{body}");
    assert!(!alive(&stack, &again.session_token).await);
}

/// Ten wrong codes fired at once: only `TOTP_MAX_FAILURES` of them reach Stytch.
#[tokio::test]
async fn a_burst_of_wrong_codes_reaches_stytch_only_up_to_the_limit() {
    let stack = Stack::start(&[("TOTP_MAX_FAILURES", "3"), ("TOTP_LOCKOUT_SECONDS", "600")]).await;
    let racer = stack.sign_up("grace@example.com").await;
    let secret = enrol(&stack, &racer).await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let request = call(
            &stack,
            &racer,
            "/mfa/totp/authenticate",
            json!({"totp_code": wrong_code(&secret)}),
        );
        burst.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    let mut statuses = burst.join_all().await;
    statuses.sort();
    assert_eq!(statuses, [vec![401; 3], vec![429; 7]].concat());
    let checked = stack
        .stytch_log()
        .into_iter()
        .filter(|r| {
            r.path == "/v1/totps/authenticate" && r.body["user_id"] == racer.user_id.as_str()
        })
        .count();
    assert_eq!(checked, 3);
}

/// SECURITY.md, "TOTP failures count unless proven harmless": Stytch's answers keep their
/// meaning (429, 502, 504), and only a refusal that proves the code was never checked (here
/// Stytch's `too_many_requests`) gives the attempt back; a 5xx, a timeout or a 4xx of a type we
/// do not know counts, so no unlisted error switches the lockout off.
#[tokio::test]
async fn stytch_faults_map_to_429_502_504_and_count_unless_the_code_was_never_checked() {
    let stack = Stack::start(&[("TOTP_MAX_FAILURES", "3"), ("UPSTREAM_TIMEOUT_MS", "400")]).await;
    let login = stack.sign_up("ada@example.com").await;
    let secret = enrol(&stack, &login).await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let fault = |body: Value| stack.stytch_fault(body);
    let route = "POST /v1/totps/authenticate";
    let attempt = || {
        json_of(call(
            &stack,
            &login,
            "/mfa/totp/authenticate",
            json!({"totp_code": totp(&secret, now())}),
        ))
    };
    fault(json!({"route": route, "status": 429, "retry_after": 3, "times": 3})).await;
    let response = call(
        &stack,
        &login,
        "/mfa/totp/authenticate",
        json!({"totp_code": totp(&secret, now())}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(
        (
            response.status().as_u16(),
            response.headers()["retry-after"].to_str().unwrap()
        ),
        (429, "3")
    );
    stack.clear_faults().await;
    fault(json!({"route": route, "status": 503, "times": 1})).await;
    let (status, body) = attempt().await;
    assert_eq!(
        (status, code_of(&body)),
        (502, Some("upstream_unavailable"))
    );
    fault(json!({"route": route, "latency_ms": 1500, "times": 1})).await;
    let (status, body) = attempt().await;
    assert_eq!((status, code_of(&body)), (504, Some("upstream_timeout")));
    fault(json!({"route": route, "status": 400, "times": 1})).await;
    let (status, body) = attempt().await;
    assert_eq!(
        (status, code_of(&body)),
        (400, Some("stytch_refused")),
        "an unknown refusal: {body}"
    );
    // Those three counted (the limit is 3), the 429 did not: the right code is now refused.
    let (status, body) = json_of(call(
        &stack,
        &login,
        "/mfa/totp/authenticate",
        json!({"totp_code": totp(&secret, now() + 30)}),
    ))
    .await;
    assert_eq!(
        (status, code_of(&body)),
        (429, Some("too_many_attempts")),
        "{body}"
    );
}

/// A password login at the Stytch sandbox (signing up first when `minutes` is given, for a
/// session of that many minutes).
async fn password_login(stack: &Stack, email: &str, minutes: Option<u32>) -> Login {
    let mut body = json!({"email": email, "password": "correct horse battery staple"});
    if let Some(minutes) = minutes {
        stack.sign_up(email).await;
        body["session_duration_minutes"] = json!(minutes);
    }
    let (status, reply) = json_of(
        stack
            .stytch_call(reqwest::Method::POST, "/v1/passwords/authenticate")
            .json(&body),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    Login {
        user_id: reply["user_id"].as_str().unwrap().to_owned(),
        email: email.to_owned(),
        session_jwt: reply["session_jwt"].as_str().unwrap().to_owned(),
        session_token: reply["session_token"].as_str().unwrap().to_owned(),
    }
}

fn epoch(rfc3339: &str) -> i64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

#[tokio::test]
async fn a_step_up_keeps_the_sessions_lifetime() {
    let stack = Stack::start(&[]).await;
    // A 24-hour login: Stytch sets a step-up's session to now + session_duration_minutes, so
    // a fixed 60 would log the user out an hour later.
    let login = password_login(&stack, "day@example.com", Some(24 * 60)).await;
    let (_, session) = json_of(
        stack
            .stytch_call(reqwest::Method::POST, "/v1/sessions/authenticate")
            .json(&json!({"session_token": login.session_token})),
    )
    .await;
    let ends = epoch(session["session"]["expires_at"].as_str().unwrap());
    let enrolled = enrol(&stack, &login).await;
    let secret = enrolled["secret"].as_str().unwrap();
    let (status, stepped) = json_of(call(
        &stack,
        &login,
        "/mfa/totp/authenticate",
        json!({"totp_code": totp(secret, now())}),
    ))
    .await;
    assert_eq!(status, 200, "{stepped}");
    let after = epoch(stepped["session_expires_at"].as_str().unwrap());
    assert!(
        (after - ends).abs() <= 120,
        "the session ended at {ends} and now ends at {after}"
    );
    let sent = stack
        .stytch_log()
        .into_iter()
        .rfind(|r| r.path == "/v1/totps/authenticate")
        .unwrap();
    let minutes = sent.body["session_duration_minutes"].as_i64().unwrap();
    assert!((1439..=1440).contains(&minutes), "sent {minutes} minutes");
}

/// Whether Stytch still knows the session of `token`.
async fn alive(stack: &Stack, token: &str) -> bool {
    let (status, _) = json_of(
        stack
            .stytch_call(reqwest::Method::POST, "/v1/sessions/authenticate")
            .json(&json!({"session_token": token})),
    )
    .await;
    status == 200
}

/// The status and error code of `POST /mfa/totp` with `body` in `login`'s session.
async fn enrolment(stack: &Stack, login: &Login, body: Value) -> (u16, String) {
    e2e::answer(call(stack, login, "/mfa/totp", body)).await
}

/// A password alone never takes over the second factor.
async fn a_password_alone_replaces_nothing(stack: &Stack, fresh: &Login) {
    let refused = enrolment(stack, fresh, json!({"replace": true})).await;
    assert_eq!(refused, (401, "step_up_required".into()));
    let malformed = enrolment(stack, fresh, json!({"replace": "yes"})).await;
    assert_eq!(malformed, (400, "invalid_request".into()));
}

/// A recovery-code login in `fresh` ends every other session (`ended`): the new login.
async fn recovery_ends_the_other_sessions(
    stack: &Stack,
    fresh: &Login,
    recovery: &str,
    ended: &[&Login],
) -> Login {
    let body = json!({ "recovery_code": recovery });
    let (status, recovered) = json_of(call(stack, fresh, "/mfa/totp/recover", body)).await;
    assert_eq!(status, 200, "{recovered}");
    for login in ended {
        assert!(
            !alive(stack, &login.session_token).await,
            "another session ended"
        );
    }
    assert!(
        alive(stack, &fresh.session_token).await,
        "the caller's session lives on"
    );
    Login {
        user_id: fresh.user_id.clone(),
        email: fresh.email.clone(),
        session_jwt: recovered["session_jwt"].as_str().unwrap().to_owned(),
        session_token: recovered["session_token"].as_str().unwrap().to_owned(),
    }
}

/// With a recent recovery factor the authenticator is replaced, once in the audit: the new
/// secret.
async fn replaced_after_recovery(stack: &Stack, recovered: &Login, old_secret: &str) -> String {
    let body = json!({"replace": true});
    let (status, replaced) = json_of(call(stack, recovered, "/mfa/totp", body)).await;
    assert_eq!(status, 201, "{replaced}");
    let new_secret = replaced["secret"].as_str().unwrap();
    assert_ne!(new_secret, old_secret);
    assert_eq!(replaced["recovery_codes"].as_array().unwrap().len(), 10);
    let audit = stack.audit(&recovered.user_id).await;
    let replacements = audit
        .iter()
        .filter(|a| a.event.as_deref() == Some("totp_replaced"))
        .count();
    assert_eq!(replacements, 1, "{audit:?}");
    new_secret.to_owned()
}

#[tokio::test]
async fn a_lost_authenticator_is_replaced_after_a_recovery_code_and_ends_other_sessions() {
    let stack = Stack::start(&[]).await;
    let email = "lost@example.com";
    let first = stack.sign_up(email).await;
    let phone = password_login(&stack, email, None).await; // the session on the phone that gets lost
    let enrolled = enrol(&stack, &first).await;
    let secret = enrolled["secret"].as_str().unwrap();
    let recovery = enrolled["recovery_codes"][0].as_str().unwrap().to_owned();
    assert_eq!(step_up(&stack, &first, &totp(secret, now())).await.0, 200);
    let record = stack.record(&first.user_id).await.unwrap();
    assert!(
        record.second_factor_verified_at.is_some(),
        "the verified TOTP is recorded"
    );
    let again = enrolment(&stack, &first, json!({})).await;
    assert_eq!(again, (409, "totp_already_enrolled".into()));
    let fresh = password_login(&stack, email, None).await;
    a_password_alone_replaces_nothing(&stack, &fresh).await;
    let recovered =
        recovery_ends_the_other_sessions(&stack, &fresh, &recovery, &[&phone, &first]).await;
    let new_secret = replaced_after_recovery(&stack, &recovered, secret).await;
    // The new TOTP is pending until its first code: a password-only session cannot replace it.
    let other = password_login(&stack, email, None).await;
    let refused = enrolment(&stack, &other, json!({})).await;
    assert_eq!(refused, (401, "step_up_required".into()));
    // Its first code steps the recovered session up.
    let stepped = step_up(&stack, &recovered, &totp(&new_secret, now())).await;
    assert_eq!(stepped.0, 200, "{stepped:?}");
}

#[tokio::test]
async fn replacing_without_an_active_totp_is_an_ordinary_enrolment() {
    let stack = Stack::start(&[]).await;
    let login = stack.sign_up("new@example.com").await;
    // A first enrolment's abandoned registration is replaced as before, no second factor asked.
    enrol(&stack, &login).await;
    let again = enrol(&stack, &login).await;
    assert!(again["secret"].is_string());
}

/// SECURITY.md, "One user cannot exhaust the upstreams": each `POST /mfa/totp` is up to four
/// Stytch calls, so a user gets `TOTP_ENROLMENTS_PER_USER` of them per window.
#[tokio::test]
async fn enrolments_are_limited_per_user() {
    let stack = Stack::start(&[("TOTP_ENROLMENTS_PER_USER", "3/3600")]).await;
    let login = stack.sign_up("enrols@example.com").await;
    for _ in 0..3 {
        let (status, _) = json_of(call(&stack, &login, "/mfa/totp", json!({}))).await;
        assert_eq!(status, 201);
    }
    let calls = stack.stytch_log().len();
    let response = call(&stack, &login, "/mfa/totp", json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(code_of(&body), Some("too_many_enrolments"));
    assert_eq!(stack.stytch_log().len(), calls, "Stytch was not called");
}
