//! The sample events of `events/` (API Gateway HTTP API v2.0), filled in with fresh values for a
//! running local stack: a new user and session at the Stytch sandbox, signatures made with the
//! stack's secrets, the current code of a freshly enrolled authenticator.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::stack::LocalStack;

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

/// The `events/` directory of the repository.
pub fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// Why an event could not be prepared.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The manifest.
pub fn manifest() -> Result<Vec<Entry>, Error> {
    let text = std::fs::read_to_string(dir().join("manifest.json"))?;
    Ok(serde_json::from_str(&text)?)
}

/// Enrols a TOTP authenticator for the session of `jwt` at the API at `api_url`; its key.
pub async fn enrol_totp(
    http: &reqwest::Client,
    api_url: &str,
    jwt: &str,
) -> Result<Vec<u8>, Error> {
    let enrolled: Value = http
        .post(format!("{api_url}/mfa/totp"))
        .bearer_auth(jwt)
        .json(&json!({}))
        .send()
        .await?
        .json()
        .await?;
    Ok(
        sandboxes::totp::base32_decode(enrolled["secret"].as_str().unwrap_or_default())
            .unwrap_or_default(),
    )
}

/// The event with its placeholders filled in.
pub async fn render(
    stack: &LocalStack,
    http: &reqwest::Client,
    entry: &Entry,
) -> Result<String, Error> {
    let text = std::fs::read_to_string(dir().join(&entry.event))?;
    let mut event: Value = serde_json::from_str(&text)?;
    let secrets = stack.app.secrets.current().await?;
    let user_id = format!("user-test-{}", sandboxes::uuid());
    let session = if text.contains("__SESSION_JWT__") {
        Some(stack.sign_up(http).await?)
    } else {
        None
    };
    let mut body = event["body"]
        .as_str()
        .unwrap_or_default()
        .replace("__USER_ID__", &user_id);
    if body.contains("__TOTP_CODE__") {
        let (_, jwt, _) = session.as_ref().ok_or("a TOTP event needs a session")?;
        let key = enrol_totp(http, &stack.api_url, jwt).await?;
        body = body.replace(
            "__TOTP_CODE__",
            &sandboxes::totp::code_at(&key, sandboxes::now().unix_timestamp()),
        );
    }
    let headers = event["headers"]
        .as_object_mut()
        .ok_or("an event has headers")?;
    if let Some((_, jwt, _)) = &session {
        headers.insert("authorization".into(), format!("Bearer {jwt}").into());
    }
    if headers.get("svix-id").and_then(Value::as_str) == Some("__SVIX_ID__") {
        let id = format!("msg_{}", sandboxes::random_hex(12));
        let ts = sandboxes::now().unix_timestamp();
        headers.insert(
            "svix-signature".into(),
            secrets
                .stytch_webhook_secret
                .sign(&id, ts, body.as_bytes())
                .into(),
        );
        headers.insert("svix-timestamp".into(), ts.to_string().into());
        headers.insert("svix-id".into(), id.into());
    }
    if headers.get("x-unit-signature").and_then(Value::as_str) == Some("__UNIT_SIGNATURE__") {
        let signature =
            shared::webhook::unit_signature(secrets.unit_webhook_token.expose(), body.as_bytes());
        headers.insert("x-unit-signature".into(), signature.into());
    }
    if event.get("body").is_some() {
        event["body"] = body.into();
    }
    let mut without_comment = event.clone();
    if let Some(object) = without_comment.as_object_mut() {
        object.remove("_comment");
    }
    let filled = without_comment.to_string();
    if let Some(left) = PLACEHOLDERS.iter().find(|p| filled.contains(*p)) {
        return Err(format!("{}: {left} is left", entry.event).into());
    }
    // The `_comment` stays: API Gateway's event types must tolerate extra fields.
    Ok(event.to_string())
}
