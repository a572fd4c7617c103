//! End-to-end: the local stack over HTTP with Secrets Manager and DynamoDB in moto and the
//! Stytch and Unit sandboxes, and the binaries' start-up behaviour.

use std::process::Command;

use e2e::{JWT_ROUTES, Stack, now};
use serde_json::Value;

async fn json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json().await.expect("a JSON body");
    (status, body)
}

fn code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let stack = Stack::start(&[]).await;
    let (status, body) = json(stack.http.get(stack.url("/nope")).send().await.unwrap()).await;
    assert_eq!((status, code(&body)), (404, Some("not_found")));
    let response = stack
        .http
        .get(stack.url("/webhooks/stytch"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["allow"], "POST");
    let (status, body) = json(response).await;
    assert_eq!((status, code(&body)), (405, Some("method_not_allowed")));
}

#[tokio::test]
async fn jwt_routes_verify_the_stytch_session_before_anything_else() {
    let stack = Stack::start(&[]).await;
    let login = stack.sign_up("ada@example.com").await;
    let expired = stack.forge(&login.user_id, now() - 400, |_| {});
    let foreign = stack.forge(&login.user_id, now(), |c| {
        c["aud"] = serde_json::json!(["project-test-other"])
    });
    for (method, path) in JWT_ROUTES {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let send = |auth: Option<String>| {
            let mut r = stack.http.request(method.clone(), stack.url(path));
            if let Some(a) = auth {
                r = r.header("authorization", a);
            }
            async move { json(r.send().await.unwrap()).await }
        };
        let (status, body) = send(None).await;
        assert_eq!(
            (status, code(&body)),
            (401, Some("missing_token")),
            "{path}"
        );
        let (status, body) = send(Some("Bearer not.a.jwt".into())).await;
        assert_eq!(
            (status, code(&body)),
            (401, Some("invalid_token")),
            "{path}"
        );
        let (status, body) = send(Some(format!("Bearer {expired}"))).await;
        assert_eq!(
            (status, code(&body)),
            (401, Some("token_expired")),
            "{path}"
        );
        let (status, body) = send(Some(format!("Bearer {foreign}"))).await;
        assert_eq!(
            (status, code(&body)),
            (401, Some("invalid_token")),
            "{path}"
        );
        let (status, body) = send(Some(format!("Bearer {}", login.session_jwt))).await;
        assert!(
            status != 401 && status != 403 && status < 500,
            "{path}: a valid session passes: {status} {body}"
        );
    }
    // One JWKS fetch served every verification: the local check calls Stytch no more.
    let jwks_calls = stack
        .stytch_log()
        .iter()
        .filter(|r| r.route.starts_with("/v1/sessions/jwks"))
        .count();
    assert_eq!(jwks_calls, 1);
}

#[tokio::test]
async fn signed_webhooks_from_the_sandboxes_pass_verification() {
    let stack = Stack::start(&[]).await;
    // A Stytch signup makes the sandbox deliver a Svix-signed direct.user.create to the API.
    stack.sign_up("grace@example.com").await;
    let stytch = stack.stytch_sandbox();
    stack
        .eventually("the Stytch webhook delivery", || {
            stytch
                .webhooks
                .deliveries()
                .iter()
                .any(|d| !d.attempts.is_empty())
        })
        .await;
    let delivery = stytch.webhooks.deliveries().remove(0);
    assert_eq!(delivery.event_type, "direct.user.create");
    assert_eq!(
        delivery.attempts[0].status,
        Some(200),
        "verified and applied"
    );
    assert!(delivery.delivered);
}

#[tokio::test]
async fn forged_webhooks_are_refused() {
    let stack = Stack::start(&[]).await;
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
        (status, reply["status"].as_str()),
        (200, Some("processed")),
        "{reply}"
    );
    let (status, reply) = json(post(now(), "v1,AAAA".into()).await.unwrap()).await;
    assert_eq!((status, code(&reply)), (401, Some("invalid_signature")));
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
    assert_eq!(unit(&signature).await.unwrap().status(), 200);
    let (status, reply) = json(unit("UUNz8ch1Ovjg+ijXUEwlAlWEktU=").await.unwrap()).await;
    assert_eq!((status, code(&reply)), (401, Some("invalid_signature")));
    assert!(
        stack
            .local
            .app
            .store
            .event_processed("svix:msg_e2e")
            .await
            .unwrap(),
        "the verified delivery was applied"
    );
}

#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn a_secret_without_a_field_stops_start_up_naming_it() {
    let moto = e2e::moto();
    let aws = e2e::aws(&moto).await;
    let mut value = e2e::secret_json();
    value.as_object_mut().unwrap().remove("unit_webhook_token");
    let secret = e2e::create_secret(&aws, &value).await;
    let vars = [
        ("STYTCH_PROJECT_ID", "project-test-e2e"),
        ("UNIT_API_URL", "https://api.s.unit.sh"),
        ("SECRET_ID", secret.as_str()),
        ("TABLE_NAME", "unused"),
    ];
    let config = shared::config::Config::from_lookup(|k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let err = shared::App::build(config.clone(), Some(aws))
        .await
        .err()
        .expect("start-up must fail");
    assert!(
        err.to_string()
            .contains("missing field `unit_webhook_token`"),
        "{err}"
    );
    let config = shared::config::Config {
        secrets: shared::config::SecretsLocation::SecretsManager {
            secret_id: "no-such-secret".into(),
            ttl: std::time::Duration::from_secs(300),
        },
        ..config
    };
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
fn the_runner_names_a_bad_setting_and_exits() {
    let out = Command::new(e2e::binary("local-stack"))
        .env_clear()
        .env("PORT", "http")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PORT must be a port number"), "{stderr}");
}

#[tokio::test]
async fn the_runner_binary_serves_with_sandboxes_and_no_configuration() {
    use tokio::io::AsyncBufReadExt;
    let state = std::env::temp_dir().join(format!("bridge-e2e-{}", uuid::Uuid::new_v4()));
    let mut child = tokio::process::Command::new(e2e::binary("local-stack"))
        .env_clear()
        .env("PORT", "0")
        .env("STYTCH_SANDBOX_PORT", "0")
        .env("UNIT_SANDBOX_PORT", "0")
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
        if line == "Ready." {
            break;
        }
    }
    let base = banner
        .lines()
        .next()
        .and_then(|l| l.split(" on ").nth(1))
        .expect(&banner)
        .to_owned();
    assert!(
        banner.contains(&format!("POST   {base}/unit/customer-token")),
        "{banner}"
    );
    assert!(
        banner.contains("(sandbox) project project-test-"),
        "{banner}"
    );
    assert!(banner.contains("in memory"), "{banner}");
    assert!(state.join("secrets.json").exists());
    let (status, body) = json(reqwest::get(format!("{base}/nope")).await.unwrap()).await;
    assert_eq!((status, code(&body)), (404, Some("not_found")));
    child.kill().await.unwrap();
}

#[test]
fn the_demo_walks_the_whole_flow() {
    let state = std::env::temp_dir().join(format!("bridge-e2e-{}", uuid::Uuid::new_v4()));
    let out = Command::new(e2e::binary("local-stack"))
        .arg("demo")
        .env_clear()
        .env("LOCAL_STATE_DIR", &state)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" 1. [ok  ] sign up at Stytch"), "{stdout}");
    for step in 1..=10 {
        assert!(
            stdout.contains(&format!("{step:>2}. [ok  ]")),
            "step {step} passes: {stdout}"
        );
    }
    assert!(stdout.contains("prove the account's e-mail"), "{stdout}");
}

#[tokio::test]
async fn the_demo_page_its_login_backend_and_openapi_yaml_are_served() {
    let stack = Stack::in_memory(&[]).await;
    let page = stack.http.get(stack.url("/demo")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    for id in [
        "signup",
        "form-link",
        "enrol",
        "qr",
        "secret",
        "step-up",
        "get-token",
        "use-token",
    ] {
        assert!(
            html.contains(&format!("id=\"{id}\"")),
            "the page lost #{id}"
        );
    }
    let script = stack
        .http
        .get(stack.url("/demo/demo.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    let served = stack
        .http
        .get(stack.url("/openapi.yaml"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        served.text().await.unwrap(),
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml")).unwrap()
    );
    let (status, config) = e2e::json_of(stack.http.get(stack.url("/demo/config.json"))).await;
    assert_eq!(status, 200);
    assert_eq!(
        config["unit_api_url"].as_str(),
        Some(stack.unit("").as_str())
    );
}

/// The demo page's login backend: Stytch's own answers, passed through.
#[tokio::test]
async fn the_demo_login_backend_passes_stytchs_answers_through() {
    let stack = Stack::in_memory(&[]).await;
    let creds = serde_json::json!({"email": "grace@example.com", "password": "correct horse battery staple"});
    let (status, signed_up) =
        e2e::json_of(stack.http.post(stack.url("/demo/api/signup")).json(&creds)).await;
    assert_eq!(status, 200, "{signed_up}");
    assert!(
        signed_up["user_id"]
            .as_str()
            .unwrap()
            .starts_with("user-test-")
    );
    let (status, logged_in) =
        e2e::json_of(stack.http.post(stack.url("/demo/api/login")).json(&creds)).await;
    assert_eq!(
        (status, &logged_in["user_id"]),
        (200, &signed_up["user_id"])
    );
    let (status, refreshed) = e2e::json_of(
        stack
            .http
            .post(stack.url("/demo/api/refresh"))
            .json(&serde_json::json!({"session_token": logged_in["session_token"]})),
    )
    .await;
    assert_eq!(
        (status, &refreshed["user_id"]),
        (200, &signed_up["user_id"])
    );
    let wrong = serde_json::json!({"email": "grace@example.com", "password": "not the password"});
    let (status, body) =
        e2e::json_of(stack.http.post(stack.url("/demo/api/login")).json(&wrong)).await;
    assert_eq!(
        (status, code(&body)),
        (401, Some("unauthorized_credentials"))
    );
}

#[tokio::test]
async fn the_unit_sandbox_answers_browsers_cors_preflights() {
    let stack = Stack::in_memory(&[]).await;
    let preflight = stack
        .http
        .request(reqwest::Method::OPTIONS, stack.unit("/customers/1"))
        .header("origin", "http://127.0.0.1:3000")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    assert!(
        preflight.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    let plain = stack
        .http
        .get(stack.unit("/customers/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 401);
    assert_eq!(plain.headers()["access-control-allow-origin"], "*");
}
