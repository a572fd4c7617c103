//! The sample events of `events/`, filled in with fresh values for a running stack.

use serde::Deserialize;
use serde_json::Value;

use crate::{Stack, now, totp};

/// The placeholders the sample events may carry.
pub const PLACEHOLDERS: &[&str] = &[
    "__SESSION_JWT__",
    "__SVIX_ID__",
    "__SVIX_TIMESTAMP__",
    "__SVIX_SIGNATURE__",
    "__UNIT_SIGNATURE__",
    "__USER_ID__",
    "__TOTP_CODE__",
];

/// One line of `events/manifest.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    /// File name in `events/`.
    pub event: String,
    /// The function that serves it.
    pub function: String,
    /// The status it must get.
    pub status: u16,
}

/// The events directory of the repository.
pub fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// The manifest.
pub fn manifest() -> Vec<Entry> {
    let text = std::fs::read_to_string(dir().join("manifest.json")).expect("events/manifest.json");
    serde_json::from_str(&text).expect("a valid manifest")
}

/// The event with its placeholders filled: a fresh user and session, signatures made with the
/// stack's secrets, and a current TOTP code of a freshly enrolled authenticator.
pub async fn render(stack: &Stack, entry: &Entry) -> String {
    let text = std::fs::read_to_string(dir().join(&entry.event)).expect("event file");
    let mut event: Value = serde_json::from_str(&text).expect("event JSON");
    let user_id = format!("user-test-{}", uuid::Uuid::new_v4());
    let login = if text.contains("__SESSION_JWT__") {
        Some(
            stack
                .sign_up(&format!("{}@example.com", uuid::Uuid::new_v4()))
                .await,
        )
    } else {
        None
    };
    let mut body = event["body"]
        .as_str()
        .unwrap_or_default()
        .replace("__USER_ID__", &user_id);
    if body.contains("__TOTP_CODE__") {
        let login = login.as_ref().expect("a TOTP event carries a session");
        let enrolled: Value = stack
            .http
            .post(stack.url("/mfa/totp"))
            .bearer_auth(&login.session_jwt)
            .json(&serde_json::json!({}))
            .send()
            .await
            .expect("enrol")
            .json()
            .await
            .expect("enrolment");
        body = body.replace(
            "__TOTP_CODE__",
            &totp(enrolled["secret"].as_str().expect("secret"), now()),
        );
    }
    let headers = event["headers"].as_object_mut().expect("headers");
    if let Some(login) = &login {
        headers.insert(
            "authorization".into(),
            format!("Bearer {}", login.session_jwt).into(),
        );
    }
    if headers.get("svix-id").and_then(Value::as_str) == Some("__SVIX_ID__") {
        let secret = shared::webhook::SvixSecret::parse(crate::SVIX_SECRET).expect("secret");
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let ts = now();
        headers.insert(
            "svix-signature".into(),
            secret.sign(&id, ts, body.as_bytes()).into(),
        );
        headers.insert("svix-timestamp".into(), ts.to_string().into());
        headers.insert("svix-id".into(), id.into());
    }
    if headers.get("x-unit-signature").and_then(Value::as_str) == Some("__UNIT_SIGNATURE__") {
        let signature = shared::webhook::unit_signature(crate::UNIT_WEBHOOK_TOKEN, body.as_bytes());
        headers.insert("x-unit-signature".into(), signature.into());
    }
    if event.get("body").is_some() {
        event["body"] = body.into();
    }
    let mut without_comment = event.clone();
    without_comment
        .as_object_mut()
        .expect("object")
        .remove("_comment");
    let text = without_comment.to_string();
    for placeholder in PLACEHOLDERS {
        assert!(
            !text.contains(placeholder),
            "{}: {placeholder} is left: {text}",
            entry.event
        );
    }
    // The `_comment` stays: API Gateway's event types must tolerate extra fields.
    event.to_string()
}
