//! Smoke test of the real function binaries: each runs against a local Lambda Runtime API, with
//! its configuration from the environment, Secrets Manager and DynamoDB in moto, and the
//! sandboxes behind it, and answers every sample event of its function with the manifest's
//! status. With `BOOTSTRAP_DIR` set (the test command sets it after `make package`), the
//! release `bootstrap`s built for Lambda's glibc are the ones tested.

use e2e::Stack;
use local_stack::runtime_api::{RuntimeApi, bootstrap_command};
use local_stack::sample_events::{manifest, render};

fn binary(function: &str) -> std::path::PathBuf {
    match std::env::var("BOOTSTRAP_DIR") {
        Ok(dir) if !dir.is_empty() => std::path::Path::new(&dir).join(function).join("bootstrap"),
        _ => e2e::binary(function),
    }
}

#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn each_binary_answers_its_sample_events_through_the_runtime_api() {
    let moto = e2e::moto();
    let stack = Stack::on_moto(&moto).await;
    let entries = manifest().unwrap();
    // At the levels an operator turns on to debug: the secrets scan (E2E_LOG_FILE) reads what
    // the binaries write then, dependencies included (they stay at INFO).
    for (function, level) in [
        ("signup-webhook", "TRACE"),
        ("totp-stepup", "DEBUG"),
        ("customer-token", "TRACE"),
    ] {
        let runtime = RuntimeApi::start().await;
        let path = binary(function);
        assert!(path.exists(), "{} is missing", path.display());
        let mut child =
            bootstrap_command(&path, function, &runtime, &stack.local.app.config, &moto)
                .unwrap()
                .env("AWS_LAMBDA_LOG_LEVEL", level)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for entry in entries.iter().filter(|e| e.function == function) {
            let answer = runtime
                .invoke(render(&stack.local, &stack.http, entry).await.unwrap())
                .await
                .unwrap_or_else(|e| panic!("{}: the function reported an error: {e}", entry.event));
            assert_eq!(
                answer["statusCode"].as_u64(),
                Some(u64::from(entry.status)),
                "{}: {answer}",
                entry.event
            );
            let body: serde_json::Value =
                serde_json::from_str(answer["body"].as_str().unwrap_or("null"))
                    .expect("a JSON body");
            assert!(body.is_object(), "{}: {body}", entry.event);
        }
        assert_eq!(runtime.init_error(), None);
        child.kill().await.unwrap();
        let output = child.wait_with_output().await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains(r#""level":"DEBUG""#),
            "{function} at {level} wrote no DEBUG line:\n{stdout}"
        );
        e2e::append_to_log_capture(&stdout);
    }
}

/// The sample event of a sensitive token request, as `jwt` sends it.
fn sensitive_token_event(jwt: &str) -> String {
    let text = std::fs::read_to_string(
        local_stack::sample_events::dir().join("customer-token-step-up-required.json"),
    )
    .unwrap();
    let mut event: serde_json::Value = serde_json::from_str(&text).unwrap();
    event["headers"]["authorization"] = format!("Bearer {jwt}").into();
    event.to_string()
}

/// The sample event of a token limited to `card`, as `jwt` sends it.
fn card_token_event(jwt: &str, card: &str) -> String {
    let text =
        std::fs::read_to_string(local_stack::sample_events::dir().join("customer-token-card.json"))
            .unwrap();
    let mut event: serde_json::Value = serde_json::from_str(&text).unwrap();
    event["headers"]["authorization"] = format!("Bearer {jwt}").into();
    let mut body: serde_json::Value =
        serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
    body["resources"][0]["ids"] = serde_json::json!([card]);
    event["body"] = body.to_string().into();
    event.to_string()
}

/// Through the binary: a token limited to the customer's own card is minted for 300 s; one for
/// another customer's card is refused with 404 `resource_not_found`.
async fn card_tokens_through_the_binary(
    stack: &Stack,
    runtime: &RuntimeApi,
    jwt: &str,
    customer: &str,
) {
    let (_, card) = stack.unit_sandbox().open_card(customer).unwrap();
    let answer = runtime.invoke(card_token_event(jwt, &card)).await.unwrap();
    let body: serde_json::Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        (answer["statusCode"].as_u64(), body["expires_in"].as_u64()),
        (Some(200), Some(300)),
        "{answer}"
    );
    let (_, other) = stack.onboarded("binary-other@example.com").await;
    let (_, theirs) = stack.unit_sandbox().open_card(&other).unwrap();
    let answer = runtime
        .invoke(card_token_event(jwt, &theirs))
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        (answer["statusCode"].as_u64(), e2e::code_of(&body)),
        (Some(404), Some("resource_not_found")),
        "{answer}"
    );
}

#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn the_customer_token_binary_caps_sensitive_tokens_and_refuses_a_revoked_session() {
    let moto = e2e::moto();
    let stack = Stack::on_moto(&moto).await;
    let (login, customer) = stack.onboarded("binary@example.com").await;
    let jwt = stack.stepped_up(&login).await;
    let runtime = RuntimeApi::start().await;
    let path = binary("customer-token");
    // As the template runs it with LogLevel WARN: metric records must still come out.
    let mut child = bootstrap_command(
        &path,
        "customer-token",
        &runtime,
        &stack.local.app.config,
        &moto,
    )
    .unwrap()
    .env("AWS_LAMBDA_LOG_LEVEL", "WARN")
    .env("METRICS_ENVIRONMENT", "test")
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let answer = runtime.invoke(sensitive_token_event(&jwt)).await.unwrap();
    let body: serde_json::Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(
        body["expires_in"], 900,
        "a sensitive token lives at most 900 s"
    );
    // A token limited to the user's card lives 300 s; another customer's card gets none.
    card_tokens_through_the_binary(&stack, &runtime, &jwt, &customer).await;
    // Logged out: the JWT still verifies, but Stytch no longer knows its session.
    let (status, _) = e2e::json_of(
        stack
            .stytch_call(reqwest::Method::POST, "/v1/sessions/revoke")
            .json(&serde_json::json!({"session_jwt": jwt})),
    )
    .await;
    assert_eq!(status, 200);
    let answer = runtime.invoke(sensitive_token_event(&jwt)).await.unwrap();
    let body: serde_json::Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        (answer["statusCode"].as_u64(), e2e::code_of(&body)),
        (Some(401), Some("session_revoked")),
        "{answer}"
    );
    // Told apart from a step-up challenge by `error`, not by status (RFC 6750, RFC 9470).
    let challenge = answer["headers"]["www-authenticate"].as_str().unwrap_or("");
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{answer}"
    );
    // Read-only scopes too (SECURITY.md, "No revoked session mints anything").
    let answer = runtime.invoke(read_only_token_event(&jwt)).await.unwrap();
    let body: serde_json::Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        (answer["statusCode"].as_u64(), e2e::code_of(&body)),
        (Some(401), Some("session_revoked")),
        "{answer}"
    );
    child.kill().await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    // What Lambda keeps under ApplicationLogLevel WARN: JSON lines at WARN or above (a line
    // without a level counts as INFO and is dropped).
    let kept: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| matches!(v["level"].as_str(), Some("WARN" | "ERROR" | "FATAL")))
        .collect();
    let issued = kept
        .iter()
        .find(|v| v["TokensIssued"] == 1)
        .unwrap_or_else(|| panic!("no TokensIssued record kept at WARN in:\n{stdout}"));
    assert_eq!(issued["Kind"], "sensitive");
    assert_eq!(issued["Environment"], "test");
    assert_eq!(
        issued["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "StytchUnitBridge"
    );
}

/// The sample event of a read-only token request, as `jwt` sends it.
fn read_only_token_event(jwt: &str) -> String {
    let mut event: serde_json::Value = serde_json::from_str(&sensitive_token_event(jwt)).unwrap();
    event["body"] = serde_json::json!({"scope": "customers accounts"})
        .to_string()
        .into();
    event.to_string()
}

#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn with_a_max_concurrency_one_binary_serves_invocations_at_once() {
    let moto = e2e::moto();
    let stack = Stack::on_moto(&moto).await;
    let mut logins = Vec::new();
    for i in 0..4 {
        logins.push(
            stack
                .onboarded(&format!("concurrent{i}@example.com"))
                .await
                .0,
        );
    }
    // Unit takes its time, so invocations served one at a time could never overlap.
    stack
        .unit_fault(serde_json::json!({"route": "POST /customers/{id}/token", "latency_ms": 300}))
        .await;
    let runtime = std::sync::Arc::new(RuntimeApi::start().await);
    let path = binary("customer-token");
    // As on Lambda Managed Instances: the runtime tells the binary how many at once.
    let mut child = bootstrap_command(
        &path,
        "customer-token",
        &runtime,
        &stack.local.app.config,
        &moto,
    )
    .unwrap()
    .env("AWS_LAMBDA_MAX_CONCURRENCY", "8")
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut invocations = tokio::task::JoinSet::new();
    for i in 0..16 {
        let (runtime, event) = (
            runtime.clone(),
            read_only_token_event(&logins[i % 4].session_jwt),
        );
        invocations.spawn(async move { runtime.invoke(event).await });
    }
    while let Some(answer) = invocations.join_next().await {
        let answer = answer.unwrap().expect("no invocation error");
        assert_eq!(answer["statusCode"], 200, "{answer}");
    }
    assert!(
        runtime.max_in_flight() > 1,
        "the binary held {} invocation(s) at once",
        runtime.max_in_flight()
    );
    assert!(runtime.max_in_flight() <= 8);
    child.kill().await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("concurrency-tokio"), "{stderr}");
}

/// SECURITY.md, "No usable secret is ever deployed": a secret still holding the values the
/// template used to ship (or a Unit webhook token too short) stops each binary at init, with a
/// line naming the field and never its value, so the errors alarm fires and nothing is served.
#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn each_binary_refuses_a_placeholder_secret_at_init() {
    let moto = e2e::moto();
    let stack = Stack::on_moto(&moto).await;
    let aws = e2e::aws(&moto).await;
    let old_template = serde_json::json!({"stytch_secret": "REPLACE", "stytch_webhook_secret": "whsec_UkVQTEFDRQ==",
        "unit_api_token": "REPLACE", "unit_webhook_token": "REPLACE"});
    let mut short_token = e2e::secret_json();
    short_token["unit_webhook_token"] = "only-twenty-chars-xx".into();
    for (value, field) in [
        (old_template, "stytch_secret"),
        (short_token, "unit_webhook_token"),
    ] {
        let secret = e2e::create_secret(&aws, &value).await;
        let config = shared::config::Config {
            secrets: shared::config::SecretsLocation::SecretsManager {
                secret_id: secret,
                ttl: std::time::Duration::from_secs(300),
            },
            ..stack.local.app.config.clone()
        };
        for function in ["signup-webhook", "totp-stepup", "customer-token"] {
            let runtime = RuntimeApi::start().await;
            let child = bootstrap_command(&binary(function), function, &runtime, &config, &moto)
                .unwrap()
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let output =
                tokio::time::timeout(std::time::Duration::from_secs(20), child.wait_with_output())
                    .await
                    .expect("init ends")
                    .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(!output.status.success(), "{function} started: {text}");
            assert!(text.contains(&format!("`{field}`")), "{function}: {text}");
            for value in ["REPLACE", "UkVQTEFDRQ", "only-twenty-chars-xx"] {
                assert!(!text.contains(value), "{function} printed a value: {text}");
            }
        }
    }
}

/// SECURITY.md, "Attacks on the logic", through the bootstraps as Lambda runs them: a signed
/// Unit event pairing a user's pending application with someone else's customer changes
/// nothing, and an authenticator enrolled with the password alone mints no sensitive token for
/// a bank customer until the contact on the Unit customer is proven.
#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn the_binaries_refuse_a_pairing_event_and_an_unbound_authenticator() {
    let moto = e2e::moto();
    let stack = Stack::on_moto(&moto).await;
    let victim = stack.unit_customer("victim-binary@example.com", None).await;
    let login = stack.sign_up("pairing-binary@example.com").await;
    let application = stack.apply_pending(&login).await;
    let runtime = RuntimeApi::start().await;
    let mut child = bootstrap_command(
        &binary("signup-webhook"),
        "signup-webhook",
        &runtime,
        &stack.local.app.config,
        &moto,
    )
    .unwrap()
    .spawn()
    .unwrap();
    let body = serde_json::json!({"data": [{"id": "evt-binary-1", "type": "application.approved",
        "attributes": {"createdAt": e2e::rfc3339(e2e::now())},
        "relationships": {"application": {"data": {"type": "individualApplication", "id": application}},
                          "customer": {"data": {"type": "individualCustomer", "id": victim}}}}]})
    .to_string();
    let sample = local_stack::sample_events::dir().join("unit-webhook-application-approved.json");
    let mut event: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sample).unwrap()).unwrap();
    event["headers"]["x-unit-signature"] =
        shared::webhook::unit_signature(e2e::UNIT_WEBHOOK_TOKEN, body.as_bytes()).into();
    event["body"] = body.into();
    let answer = runtime.invoke(event.to_string()).await.unwrap();
    assert_eq!(answer["statusCode"], 200, "acknowledged: {answer}");
    assert_eq!(
        stack.record(&login.user_id).await.unwrap().customer_id,
        None
    );
    assert!(stack.unit_jwt_subject(&victim).await.is_null());
    child.kill().await.unwrap();

    let owner = stack.sign_up("unbound-binary@example.com").await;
    stack.apply(&owner).await;
    let jwt = stack.enrolled_and_stepped_up(&owner.session_jwt).await;
    let runtime = RuntimeApi::start().await;
    let mut child = bootstrap_command(
        &binary("customer-token"),
        "customer-token",
        &runtime,
        &stack.local.app.config,
        &moto,
    )
    .unwrap()
    .spawn()
    .unwrap();
    let answer = runtime.invoke(sensitive_token_event(&jwt)).await.unwrap();
    let body: serde_json::Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        (answer["statusCode"].as_u64(), e2e::code_of(&body)),
        (Some(403), Some("authenticator_unconfirmed")),
        "{answer}"
    );
    let jwt = stack.prove_email(&jwt, "unbound-binary@example.com").await;
    let answer = runtime.invoke(sensitive_token_event(&jwt)).await.unwrap();
    assert_eq!(answer["statusCode"], 200, "{answer}");
    child.kill().await.unwrap();
}
