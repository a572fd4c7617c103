//! End-to-end: the local stack over HTTP, with Secrets Manager and DynamoDB in moto, and the
//! binaries' start-up behaviour.

use std::process::Command;

use e2e::{Stack, moto_url, now};
use serde_json::Value;

async fn json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json().await.expect("a JSON body");
    (status, body)
}

const JWT_ROUTES: &[(&str, &str)] = &[
    ("GET", "/onboarding"),
    ("POST", "/onboarding/application"),
    ("POST", "/mfa/totp"),
    ("POST", "/mfa/totp/authenticate"),
    ("POST", "/mfa/totp/recover"),
    ("POST", "/unit/customer-token"),
];

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let Some(moto) = moto_url() else { return };
    let stack = Stack::start(&moto).await;
    let (status, body) = json(stack.http.get(stack.url("/nope")).send().await.unwrap()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let response = stack
        .http
        .get(stack.url("/webhooks/stytch"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["allow"], "POST");
    let (status, body) = json(response).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
}

#[tokio::test]
async fn jwt_routes_verify_the_session_before_anything_else() {
    let Some(moto) = moto_url() else { return };
    let stack = Stack::start(&moto).await;
    let valid = stack.jwks.session_jwt("user-test-e2e", now());
    let expired = stack.jwks.session_jwt("user-test-e2e", now() - 400);
    for (method, path) in JWT_ROUTES {
        let method = http::Method::from_bytes(method.as_bytes()).unwrap();
        let send = |auth: Option<String>| {
            let mut r = stack.http.request(method.clone(), stack.url(path));
            if let Some(a) = auth {
                r = r.header("authorization", a);
            }
            async move { json(r.send().await.unwrap()).await }
        };
        let (status, body) = send(None).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("missing_token")),
            "{path}"
        );
        let (status, body) = send(Some("Bearer not.a.jwt".into())).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("invalid_token")),
            "{path}"
        );
        let (status, body) = send(Some(format!("Bearer {expired}"))).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("token_expired")),
            "{path}"
        );
        let (status, body) = send(Some(format!("Bearer {valid}"))).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (501, Some("not_implemented")),
            "{path}: {body}"
        );
    }
    // The JWKS was fetched once for all those verifications.
    assert_eq!(
        stack.jwks.fetches.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

#[tokio::test]
async fn webhooks_are_verified_with_the_secrets_from_secrets_manager() {
    let Some(moto) = moto_url() else { return };
    let stack = Stack::start(&moto).await;
    let secret = shared::webhook::SvixSecret::parse(e2e::SVIX_SECRET).unwrap();
    let body = r#"{"action":"CREATE","event_id":"webhook-event-test-1","id":"user-test-e2e","object_type":"user","source":"DIRECT"}"#;
    let post = |ts: i64, signature: String| {
        stack
            .http
            .post(stack.url("/webhooks/stytch"))
            .header("svix-id", "msg_e2e")
            .header("svix-timestamp", ts.to_string())
            .header("svix-signature", signature)
            .body(body)
            .send()
    };
    let (status, reply) = json(
        post(now(), secret.sign("msg_e2e", now(), body.as_bytes()))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (501, Some("not_implemented")),
        "a 5xx makes Svix retry"
    );
    let (status, reply) = json(post(now(), "v1,AAAA".into()).await.unwrap()).await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (401, Some("invalid_signature"))
    );
    let old = now() - 600;
    let (status, _) = json(
        post(old, secret.sign("msg_e2e", old, body.as_bytes()))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "outside the 5-minute tolerance");

    let unit_body =
        r#"{"data":[{"id":"1","type":"customer.created","attributes":{},"relationships":{}}]}"#;
    let signature = shared::webhook::unit_signature(e2e::UNIT_WEBHOOK_TOKEN, unit_body.as_bytes());
    let unit = |signature: &str| {
        stack
            .http
            .post(stack.url("/webhooks/unit"))
            .header("x-unit-signature", signature)
            .body(unit_body)
            .send()
    };
    assert_eq!(unit(&signature).await.unwrap().status(), 501);
    let (status, reply) = json(unit("UUNz8ch1Ovjg+ijXUEwlAlWEktU=").await.unwrap()).await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (401, Some("invalid_signature"))
    );
    // Nothing was stored for the refused (or unimplemented) deliveries.
    assert!(!stack.app.store.event_processed("msg_e2e").await.unwrap());
}

#[tokio::test]
async fn a_secret_without_a_field_stops_start_up_naming_it() {
    let Some(moto) = moto_url() else { return };
    let aws = e2e::aws(&moto).await;
    let mut value = e2e::secret_json();
    value.as_object_mut().unwrap().remove("unit_webhook_token");
    let secret = e2e::create_secret(&aws, &value).await;
    let vars = e2e::env(&secret, "unused", "http://127.0.0.1:9");
    let config = shared::config::Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let err = shared::App::build(config, Some(aws))
        .await
        .err()
        .expect("start-up must fail");
    assert!(
        err.to_string()
            .contains("missing field `unit_webhook_token`"),
        "{err}"
    );
    let vars = e2e::env("no-such-secret", "unused", "http://127.0.0.1:9");
    let config = shared::config::Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    let err = shared::App::build(config, Some(e2e::aws(&moto).await))
        .await
        .err()
        .expect("start-up must fail");
    assert!(err.to_string().contains("could not be read"), "{err}");
}

#[test]
fn each_function_binary_names_a_missing_variable_and_exits() {
    for bin in ["signup-webhook", "totp-stepup", "customer-token"] {
        let out = Command::new(e2e::binary(bin)).env_clear().output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{bin}");
        let logs = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let line = logs
            .lines()
            .find(|l| l.contains("start-up failed"))
            .unwrap_or_else(|| panic!("{bin}: {logs}"));
        let parsed: Value = serde_json::from_str(line).expect("a JSON log line");
        assert!(
            parsed["fields"]["message"]
                .as_str()
                .unwrap()
                .contains("STYTCH_PROJECT_ID is not set"),
            "{line}"
        );
    }
}

#[test]
fn the_runner_says_which_upstream_is_missing() {
    let out = Command::new(e2e::binary("local-stack"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no upstream configured: UNIT_API_URL is not set"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_runner_binary_serves_and_prints_what_it_serves() {
    use tokio::io::AsyncBufReadExt;
    let jwks = e2e::Jwks::start().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let state = std::env::temp_dir().join(format!("bridge-e2e-{}", uuid::Uuid::new_v4()));
    let mut child = tokio::process::Command::new(e2e::binary("local-stack"))
        .env_clear()
        .env("STYTCH_PROJECT_ID", e2e::PROJECT_ID)
        .env("STYTCH_API_URL", &jwks.url)
        .env("UNIT_API_URL", "http://127.0.0.1:9")
        .env("PORT", port.to_string())
        .env("LOCAL_STATE_DIR", &state)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("Secrets:") {
            break;
        }
    }
    let base = format!("http://127.0.0.1:{port}");
    assert!(
        banner.contains(&format!("POST   {base}/unit/customer-token")),
        "{banner}"
    );
    assert!(banner.contains("in memory"), "{banner}");
    assert!(state.join("secrets.json").exists());
    let client = reqwest::Client::new();
    let jwt = jwks.session_jwt("user-test-runner", now());
    let (status, body) = json(
        client
            .post(format!("{base}/mfa/totp"))
            .bearer_auth(jwt)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (501, Some("not_implemented"))
    );
    child.kill().await.unwrap();
}
