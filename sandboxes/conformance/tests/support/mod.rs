//! What the conformance suites share: the step counter, the sandbox on a free port, the SDK's
//! typed refusals, TOTP codes and JWT parts.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use stytch::{Error, ErrorResponse};

/// Counts the steps, names the failing one (after `label`).
pub struct Steps {
    label: &'static str,
    pub passed: Vec<&'static str>,
}

impl Steps {
    pub fn new(label: &'static str) -> Self {
        Self {
            label,
            passed: Vec::new(),
        }
    }

    pub async fn step<T, F: Future<Output = T>>(&mut self, name: &'static str, f: F) -> T {
        eprintln!("{} step: {name}", self.label);
        let out = f.await;
        self.passed.push(name);
        out
    }
}

/// The Stytch sandbox on a free port: its base URL, the sandbox and what keeps it running.
pub async fn start(
    project_id: &str,
    secret: &str,
) -> (String, Arc<sandboxes::stytch::Stytch>, sandboxes::Running) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let (sandbox, running) = sandboxes::stytch::start(
        sandboxes::stytch::StytchSettings {
            project_id: project_id.into(),
            secret: secret.into(),
            webhook: None,
            webhook_schedule: vec![Duration::from_millis(50)],
        },
        listener,
    )
    .expect("the Stytch sandbox starts");
    (base, sandbox, running)
}

/// The SDK's typed error, or a panic naming what came instead.
pub fn refusal<T: std::fmt::Debug>(result: stytch::Result<T>) -> ErrorResponse {
    match result {
        Err(Error::Response(e)) => {
            assert!(!e.request_id.is_empty() && !e.error_url.is_empty(), "{e:?}");
            e
        }
        other => panic!("expected a Stytch error answer the SDK parses, got {other:?}"),
    }
}

/// The SDK's typed error with this status and error type.
pub fn refused<T: std::fmt::Debug>(result: stytch::Result<T>, status: u16, error_type: &str) {
    let e = refusal(result);
    assert_eq!(
        (e.status_code.as_u16(), e.error_type.as_str()),
        (status, error_type),
        "{e:?}"
    );
}

/// The TOTP code of the 30 s step `offset` steps from now (each call a later step than the
/// last, so no code is replayed: Stytch refuses a code used before).
pub fn code(secret: &str, offset: i64) -> String {
    let key = sandboxes::totp::base32_decode(secret).expect("a base32 secret");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    sandboxes::totp::code_at(&key, now + 30 * offset)
}

/// Part `index` of a JWT (0 the header, 1 the claims), decoded.
pub fn jwt_part(jwt: &str, index: usize) -> serde_json::Value {
    let part = jwt.split('.').nth(index).expect("a JWT part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}
