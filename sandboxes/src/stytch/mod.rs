//! Stytch sandbox: the consumer API surface of `docs/stytch-api.md` (users, passwords for logging in,
//! sessions and their JWKS/JWTs, TOTP) plus Svix-signed user webhooks.
//!
//! Readings of the contract's open questions, chosen to be strict where the real service might
//! be, so our functions handle the harder case:
//! - status codes of the TOTP errors: `invalid_*` 400, `unable_to_*` and `*_already_authenticated`
//!   401, `*_not_found` 404 (OQ1);
//! - `/v1/totps/authenticate` with `session_duration_minutes` and no session creates a TOTP-only
//!   session (OQ2); with neither, no session (`session: null`, empty token strings);
//! - JWT `roles` is `["stytch_user"]`, session objects' `roles` `[]` (OQ3);
//! - only `/v1/users` and `/v1/passwords` creates, `PUT` and `DELETE` emit `direct.user.*` events;
//!   TOTP enrolment does not (OQ5);
//! - creating a TOTP while an unverified one is pending answers 400 `pending_totp_exists` until it
//!   is deleted (`DELETE /v1/users/totps/{id}`) or expires.
//! - a wrong password answers 401 `unauthorized_credentials`, an unknown e-mail 404
//!   `email_not_found`; passwords under 8 characters 400 `weak_password`.
//! - one-time passcodes by e-mail and SMS (`/v1/otps/{email,sms}/{send,login_or_create}`,
//!   `/v1/otps/authenticate`): six digits, valid 2 minutes (or `expiration_minutes`, 1 to 10),
//!   single use, readable at `GET /_sandbox/otps`; a wrong, used or expired code answers 404
//!   `otp_code_not_found`. The factor is `email_otp` / `email` (with `email_factor`) or `otp` /
//!   `sms` (with `phone_number_factor`), as the official SDKs' session factor documents them
//!   (docs/stytch-api.md §4). `send` needs the address to be the user's own (adding a new
//!   address to a user is not modelled).
//!
//! The B2B surface (organizations, members, member sessions, B2B TOTP and recovery codes, member
//! and organization webhooks; docs/stytch-api.md §10) lives in `b2b/`, with its readings there.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Map, Value, json};
use shared::jwt::signer::Signer;
use shared::webhook::SvixSecret;
use time::OffsetDateTime;

use crate::webhooks::Sender;
use crate::{Controls, Running, now, rfc3339, totp, uuid};

mod b2b;
mod otps;
mod passwords;
mod sessions;
mod totps;
mod users;

use otps::*;
use passwords::*;
use sessions::*;
use totps::*;
use users::*;

/// Percent-encodes everything but unreserved characters.
pub fn percent_encode(s: &str) -> String {
    shared::stytch::path_segment(s)
}

/// How the sandbox is set up.
#[derive(Clone)]
pub struct StytchSettings {
    /// Project id (`project-test-...`).
    pub project_id: String,
    /// Project secret (HTTP Basic password).
    pub secret: String,
    /// Where user webhooks go, and the endpoint's signing secret.
    pub webhook: Option<(String, SvixSecret)>,
    /// Retry delays of webhook deliveries.
    pub webhook_schedule: Vec<std::time::Duration>,
}

struct Totp {
    totp_id: String,
    secret: String,
    key: Vec<u8>,
    verified: bool,
    expires_at: OffsetDateTime,
    used_steps: HashSet<u64>,
    /// (id, code, used)
    recovery: Vec<(String, String, bool)>,
}

struct User {
    user_id: String,
    created_at: OffsetDateTime,
    email: Option<(String, String)>,
    phone: Option<(String, String)>,
    /// Whether the user proved the address: as at Stytch, a password or a user created by the
    /// API leaves it unverified until a passcode to it is authenticated.
    email_verified: bool,
    phone_verified: bool,
    name: (String, String, String),
    password: Option<String>,
    totp: Option<Totp>,
    trusted_metadata: Map<String, Value>,
    untrusted_metadata: Map<String, Value>,
}

/// Merges a metadata update as Stytch documents: top-level keys replace, a top-level `null`
/// deletes, nothing deeper is merged; at most 20 top-level keys and 4 KB.
fn merge_metadata(
    into: &mut Map<String, Value>,
    body: &Map<String, Value>,
    field: &str,
) -> Result<(), Response> {
    let Some(update) = body.get(field) else {
        return Ok(());
    };
    let update = update
        .as_object()
        .ok_or_else(|| bad("invalid_metadata", &format!("{field} must be an object.")))?;
    let mut merged = into.clone();
    for (k, v) in update {
        if v.is_null() {
            merged.remove(k);
        } else {
            merged.insert(k.clone(), v.clone());
        }
    }
    if merged.len() > 20 || Value::Object(merged.clone()).to_string().len() > 4096 {
        return Err(bad(
            "invalid_metadata",
            &format!("{field} may have at most 20 top-level keys and 4KB."),
        ));
    }
    *into = merged;
    Ok(())
}

#[derive(Clone)]
struct Session {
    session_id: String,
    user_id: String,
    token: String,
    started_at: OffsetDateTime,
    last_accessed_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    factors: Vec<Value>,
}

/// A one-time passcode sent to an address.
struct Otp {
    /// The address's id (`email_id` or `phone_id`): the `method_id` to authenticate with.
    method_id: String,
    user_id: String,
    /// `email` or `sms`.
    delivery: &'static str,
    address: String,
    code: String,
    expires_at: OffsetDateTime,
    used: bool,
}

#[derive(Default)]
struct Data {
    users: HashMap<String, User>,
    sessions: HashMap<String, Session>,
    /// Passcodes sent, newest last.
    otps: Vec<Otp>,
}

/// The sandbox's state.
pub struct Stytch {
    settings: StytchSettings,
    data: Mutex<Data>,
    /// Signing keys; the last one signs new JWTs, all are served.
    keys: Mutex<Vec<Arc<Signer>>>,
    /// Webhook deliveries.
    pub webhooks: Arc<Sender>,
    /// The B2B organizations, members and member sessions, and their signing keys.
    b2b: b2b::B2b,
}

type Reply = Result<Response, Response>;

fn request_id() -> String {
    format!("request-id-test-{}", uuid())
}

/// A Stytch error with all five fields the SDKs require.
pub fn error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = json!({
        "status_code": status.as_u16(),
        "request_id": request_id(),
        "error_type": error_type,
        "error_message": message,
        "error_url": format!("https://stytch.com/docs/api/errors/{}#{error_type}", status.as_u16()),
        "error_details": {},
    });
    (status, Json(body)).into_response()
}

fn fault_body(status: StatusCode, _: &str) -> Response {
    match status.as_u16() {
        429 => error(
            status,
            "too_many_requests",
            "Too many requests have been made.",
        ),
        401 => error(
            status,
            "unauthorized_credentials",
            "Unauthorized credentials.",
        ),
        s if s >= 500 => error(
            status,
            "internal_server_error",
            "Oops, something seems to have gone wrong.",
        ),
        _ => error(status, "bad_request", "Bad request."),
    }
}

fn ok(mut body: Value) -> Reply {
    body["request_id"] = json!(request_id());
    body["status_code"] = json!(200);
    Ok((StatusCode::OK, Json(body)).into_response())
}

fn bad(error_type: &str, message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, error_type, message)
}

/// Parses a JSON object body; an empty or `null` body is an empty object; `null` fields are absent.
fn object(bytes: &Bytes) -> Result<Map<String, Value>, Response> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        Ok(Value::Null) => Ok(Map::new()),
        _ => Err(bad(
            "invalid_request_body",
            "The request body is not a JSON object.",
        )),
    }
}

fn text<'a>(body: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, Response> {
    match body.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(
            "invalid_request_body",
            &format!("{field} must be a string."),
        )),
    }
}

fn required<'a>(
    body: &'a Map<String, Value>,
    field: &str,
    error_type: &str,
) -> Result<&'a str, Response> {
    text(body, field)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad(error_type, &format!("{field} is required.")))
}

fn duration_minutes(body: &Map<String, Value>) -> Result<Option<i64>, Response> {
    // Stytch's Rust SDK sends an absent option as `null`.
    match body.get("session_duration_minutes") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(m) if (5..=527_040).contains(&m) => Ok(Some(m)),
            _ => Err(bad(
                "invalid_session_duration_minutes",
                "session_duration_minutes must be between 5 and 527040.",
            )),
        },
    }
}

fn user_json(u: &User) -> Value {
    json!({
        "user_id": u.user_id,
        "status": "active",
        "emails": u.email.iter().map(|(id, e)| json!({"email_id": id, "email": e, "verified": u.email_verified})).collect::<Vec<_>>(),
        "phone_numbers": u.phone.iter().map(|(id, p)| json!({"phone_id": id, "phone_number": p, "verified": u.phone_verified})).collect::<Vec<_>>(),
        "name": {"first_name": u.name.0, "middle_name": u.name.1, "last_name": u.name.2},
        "totps": u.totp.iter().map(|t| json!({"totp_id": t.totp_id, "verified": t.verified})).collect::<Vec<_>>(),
        "webauthn_registrations": [], "providers": [], "crypto_wallets": [], "biometric_registrations": [],
        "is_locked": false,
        "roles": [],
        "created_at": rfc3339(u.created_at),
        "password": u.password.as_ref().map(|_| json!({"password_id": format!("password-test-{}", u.user_id), "requires_reset": false})),
        "trusted_metadata": u.trusted_metadata, "untrusted_metadata": u.untrusted_metadata,
        "external_id": "",
        "lock_created_at": null, "lock_expires_at": null,
    })
}

fn session_json(s: &Session) -> Value {
    json!({
        "session_id": s.session_id,
        "user_id": s.user_id,
        "authentication_factors": s.factors,
        "roles": [],
        "started_at": rfc3339(s.started_at),
        "last_accessed_at": rfc3339(s.last_accessed_at),
        "expires_at": rfc3339(s.expires_at),
        "attributes": {"ip_address": "", "user_agent": ""},
        "custom_claims": {},
    })
}

fn factor(kind: &str, at: OffsetDateTime, extra: Option<(&str, Value)>) -> Value {
    let delivery = match kind {
        "password" => "knowledge",
        "totp" => "authenticator_app",
        _ => "recovery_code",
    };
    let mut f = json!({
        "type": kind, "delivery_method": delivery,
        "last_authenticated_at": rfc3339(at), "created_at": rfc3339(at), "updated_at": rfc3339(at),
    });
    if let Some((k, v)) = extra {
        f[k] = v;
    }
    f
}

/// Adds or refreshes a factor of a session (one per type and delivery method).
fn add_factor(session: &mut Session, f: Value) {
    let (kind, delivery) = (f["type"].clone(), f["delivery_method"].clone());
    session
        .factors
        .retain(|existing| existing["type"] != kind || existing["delivery_method"] != delivery);
    session.factors.push(f);
}

/// A JWKS answer as Stytch serves it (all nine fields per key).
fn jwks_of(keys: &[Arc<Signer>]) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| {
            let jwk = k.jwk();
            json!({
                "kty": "RSA", "use": "sig", "key_ops": ["verify"], "alg": "RS256", "kid": jwk.kid,
                // Placeholders: no SDK checks the certificate chain.
                "x5c": [base64::engine::general_purpose::STANDARD.encode(format!("sandbox certificate {}", jwk.kid))],
                "x5tS256": base64::engine::general_purpose::STANDARD.encode(format!("{:0>32}", jwk.kid.len())),
                "n": jwk.n, "e": jwk.e,
            })
        })
        .collect();
    json!({"keys": keys})
}

/// A session JWT's claims for `sub`, issued at `iat` and valid 300 s, with the session claim.
fn session_claims(project_id: &str, sub: &str, iat: i64, session: Value) -> Value {
    json!({
        "aud": [project_id], "iss": format!("stytch.com/{project_id}"), "sub": sub,
        "iat": iat, "nbf": iat, "exp": iat + 300,
        "https://stytch.com/session": session,
    })
}

/// What finding a session by its token or id needs: a user's session or a member's.
trait SessionLike {
    fn token(&self) -> &str;
    fn session_id(&self) -> &str;
    fn expires_at(&self) -> OffsetDateTime;
}

impl SessionLike for Session {
    fn token(&self) -> &str {
        &self.token
    }
    fn session_id(&self) -> &str {
        &self.session_id
    }
    fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }
}

/// The session of `sessions` a body names by `session_token` or `session_jwt` (signed by one of
/// `keys`), if it names one; one that has expired is not found.
fn named_session<S: SessionLike>(
    body: &Map<String, Value>,
    keys: impl FnOnce() -> Vec<Arc<Signer>>,
    project_id: &str,
    sessions: &HashMap<String, S>,
) -> Result<Option<String>, Response> {
    let token = text(body, "session_token")?.filter(|s| !s.is_empty());
    let jwt = text(body, "session_jwt")?.filter(|s| !s.is_empty());
    let id = match (token, jwt) {
        (Some(_), Some(_)) => {
            return Err(bad(
                "too_many_session_arguments",
                "Provide only one of session_token and session_jwt.",
            ));
        }
        (None, None) => return Ok(None),
        (Some(token), None) => sessions
            .values()
            .find(|s| s.token() == token)
            .map(|s| s.session_id().to_owned()),
        (None, Some(jwt)) => Some(
            verified_claims(&keys(), project_id, jwt)
                .and_then(|c| {
                    c["https://stytch.com/session"]["id"]
                        .as_str()
                        .map(str::to_owned)
                })
                .ok_or_else(|| {
                    bad(
                        "unable_to_parse_session_jwt",
                        "The session JWT could not be parsed.",
                    )
                })?,
        ),
    };
    let live = |id: &String| sessions.get(id).is_some_and(|s| s.expires_at() > now());
    id.filter(live).map(Some).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "session_not_found",
            "Session could not be found.",
        )
    })
}

/// The claims of a JWT signed by one of `keys` for `project_id` (expiry not checked: Stytch
/// accepts an expired JWT of a live session), or `None`.
fn verified_claims(keys: &[Arc<Signer>], project_id: &str, jwt: &str) -> Option<Value> {
    let header = jsonwebtoken::decode_header(jwt).ok()?;
    let jwk = keys
        .iter()
        .map(|k| k.jwk())
        .find(|k| Some(&k.kid) == header.kid.as_ref())?;
    let key = jsonwebtoken::DecodingKey::from_rsa_components(&jwk.n, &jwk.e).ok()?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_exp = false;
    validation.set_audience(&[project_id]);
    jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .ok()
        .map(|data| data.claims)
}

impl Stytch {
    /// The last passcode sent to `method_id` (what the user's inbox or phone shows).
    pub fn otp_sent_to(&self, method_id: &str) -> Option<String> {
        self.data()
            .otps
            .iter()
            .rev()
            .find(|o| o.method_id == method_id)
            .map(|o| o.code.clone())
    }

    /// A sandbox with one fresh signing key.
    pub fn new(settings: StytchSettings) -> Arc<Self> {
        let webhooks = Sender::new(settings.webhook_schedule.clone());
        Arc::new(Self {
            settings,
            data: Mutex::new(Data::default()),
            keys: Mutex::new(vec![Arc::new(Signer::generate(format!(
                "jwk-test-{}",
                uuid()
            )))]),
            webhooks,
            b2b: b2b::B2b::default(),
        })
    }

    fn data(&self) -> std::sync::MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn current_key(&self) -> Arc<Signer> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys[keys.len() - 1].clone()
    }

    /// The key new JWTs are signed with (tests use it to forge tokens with chosen claims).
    pub fn signer(&self) -> Arc<Signer> {
        self.current_key()
    }

    /// The project id.
    pub fn project_id(&self) -> &str {
        &self.settings.project_id
    }

    /// Rotates keys: a new key signs from now on; the old ones are still served.
    pub fn rotate_keys(&self) -> String {
        let signer = Arc::new(Signer::generate(format!("jwk-test-{}", uuid())));
        let kid = signer.kid.clone();
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(signer);
        kid
    }

    /// The project's JWKS as Stytch serves it (all nine fields per key).
    fn jwks(&self) -> Value {
        jwks_of(&self.keys.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A session JWT exactly as Stytch issues it.
    fn session_jwt(&self, s: &Session) -> String {
        self.session_jwt_issued(s, now().unix_timestamp())
    }

    /// The session's JWT as issued at `iat` (it expires 300 s later).
    fn session_jwt_issued(&self, s: &Session, iat: i64) -> String {
        let session = json!({
            "id": s.session_id,
            "started_at": rfc3339(s.started_at),
            "last_accessed_at": rfc3339(s.last_accessed_at),
            "expires_at": rfc3339(s.expires_at),
            "attributes": {"ip_address": "", "user_agent": ""},
            "authentication_factors": s.factors,
            "roles": ["stytch_user"],
        });
        let claims = session_claims(&self.settings.project_id, &s.user_id, iat, session);
        self.current_key().sign(&claims)
    }

    /// The session a `session_jwt` (signature checked, expiry not: Stytch accepts an expired JWT
    /// of a live session) or `session_token` names.
    fn find_session(
        &self,
        data: &Data,
        body: &Map<String, Value>,
    ) -> Result<Option<String>, Response> {
        named_session(
            body,
            || self.keys.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            &self.settings.project_id,
            &data.sessions,
        )
    }

    fn new_session(&self, data: &mut Data, user_id: &str, minutes: i64, f: Value) -> String {
        let at = now();
        let session_id = format!("session-test-{}", uuid());
        let mut token = [0u8; 33];
        let _ = aws_lc_rs::rand::fill(&mut token);
        let session = Session {
            session_id: session_id.clone(),
            user_id: user_id.to_owned(),
            token: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token),
            started_at: at,
            last_accessed_at: at,
            expires_at: at + time::Duration::minutes(minutes),
            factors: vec![f],
        };
        data.sessions.insert(session_id.clone(), session);
        session_id
    }

    /// `{session, session_token, session_jwt, user}` for a session (or the no-session form).
    fn session_reply(&self, data: &Data, user_id: &str, session_id: Option<&str>) -> Value {
        let user = data
            .users
            .get(user_id)
            .map(user_json)
            .unwrap_or(Value::Null);
        match session_id.and_then(|id| data.sessions.get(id)) {
            Some(s) => json!({
                "user_id": user_id, "user": user, "session": session_json(s),
                "session_token": s.token, "session_jwt": self.session_jwt(s),
            }),
            None => {
                json!({"user_id": user_id, "user": user, "session": null, "session_token": "", "session_jwt": ""})
            }
        }
    }

    fn emit(&self, action: &str, user_id: &str, user: Option<Value>) {
        let mut event = json!({
            "action": action,
            "event_id": format!("webhook-event-test-{}", uuid()),
            "id": user_id,
            "object_type": "user",
            "project_id": self.settings.project_id,
            "source": "DIRECT",
            "timestamp": now().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "vertical": "CONSUMER",
        });
        if let Some(user) = user {
            event["user"] = user;
        }
        self.deliver(format!("direct.user.{}", action.to_lowercase()), &event);
    }

    /// Sends `event` to the webhook endpoint, Svix-signed, if one is configured.
    fn deliver(&self, event_type: String, event: &Value) {
        let Some((url, secret)) = &self.settings.webhook else {
            return;
        };
        let secret = secret.clone();
        let msg_id = format!("msg_{}", super::random_hex(12));
        let id = msg_id.clone();
        let sign: crate::webhooks::Signer = Arc::new(move |ts, body| {
            let mut h = HeaderMap::new();
            for (k, v) in [
                ("svix-id", id.clone()),
                ("svix-timestamp", ts.to_string()),
                ("svix-signature", secret.sign(&id, ts, body)),
            ] {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(k, v);
                }
            }
            h
        });
        self.webhooks.send(
            url.clone(),
            msg_id,
            event_type,
            event.to_string().into_bytes(),
            sign,
        );
    }
}

/// HTTP Basic with project id and secret on every route but the JWKS.
async fn basic_auth(State(s): State<Arc<Stytch>>, req: Request, next: Next) -> Response {
    let expected = format!("{}:{}", s.settings.project_id, s.settings.secret);
    let given = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        });
    let authorized = given.is_some_and(|g| {
        aws_lc_rs::constant_time::verify_slices_are_equal(&g, expected.as_bytes()).is_ok()
    });
    if !authorized {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_credentials",
            "Unauthorized credentials.",
        );
    }
    next.run(req).await
}

async fn jwks(State(s): State<Arc<Stytch>>, Path(project_id): Path<String>) -> Reply {
    if project_id != s.settings.project_id {
        return Err(error(
            StatusCode::NOT_FOUND,
            "project_not_found",
            "Project could not be found.",
        ));
    }
    ok(s.jwks())
}

async fn rotate(State(s): State<Arc<Stytch>>) -> Json<Value> {
    Json(json!({"kid": s.rotate_keys()}))
}

/// `PUT /_sandbox/webhooks {"deliver": false}` loses every later webhook; `true` delivers again.
async fn webhook_switch(State(s): State<Arc<Stytch>>, Json(body): Json<Value>) -> StatusCode {
    s.webhooks
        .set_enabled(body["deliver"].as_bool().unwrap_or(true));
    StatusCode::NO_CONTENT
}

async fn webhook_log(State(s): State<Arc<Stytch>>) -> Json<Value> {
    Json(json!(s.webhooks.deliveries()))
}

/// The current TOTP secret of a user, for scripted walkthroughs (a real authenticator app holds it).
async fn totp_secret(State(s): State<Arc<Stytch>>, Path(user_id): Path<String>) -> Reply {
    let data = s.data();
    let t = data
        .users
        .get(&user_id)
        .and_then(|u| u.totp.as_ref())
        .ok_or_else(not_found_user)?;
    Ok(Json(json!({"totp_id": t.totp_id, "secret": t.secret})).into_response())
}

/// `POST /_sandbox/jwt {"session_token": "...", "issued_seconds_ago": 900}`: the session's JWT
/// as if Stytch had issued it that long ago (so past its `exp` after 300 s), signed with the
/// current key, for out-of-process tests of expiry (the Node SDK suite).
async fn backdated_jwt(State(s): State<Arc<Stytch>>, body: Bytes) -> Reply {
    let body = object(&body)?;
    let token = required(&body, "session_token", "invalid_request_body")?;
    let ago = body
        .get("issued_seconds_ago")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let session = s
        .data()
        .sessions
        .values()
        .find(|x| x.token == token)
        .cloned()
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "session_not_found",
                "Session could not be found.",
            )
        })?;
    let jwt = s.session_jwt_issued(&session, now().unix_timestamp() - ago);
    Ok(Json(json!({"session_jwt": jwt})).into_response())
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "route_not_found",
        "The requested route was not found.",
    )
}

/// The sandbox's router.
pub fn router(s: Arc<Stytch>, controls: Arc<Controls>) -> axum::Router {
    let authenticated = axum::Router::new()
        .route("/v1/users", post(create_user))
        .route(
            "/v1/users/{user_id}",
            get(get_user).put(update_user).delete(delete_user),
        )
        .route("/v1/users/totps/{totp_id}", delete(delete_totp))
        .route("/v1/passwords", post(create_password))
        .route("/v1/passwords/authenticate", post(authenticate_password))
        .route("/v1/sessions", get(get_sessions))
        .route("/v1/sessions/authenticate", post(authenticate_session))
        .route("/v1/sessions/revoke", post(revoke_session))
        .route("/v1/totps", post(create_totp))
        .route("/v1/totps/authenticate", post(authenticate_totp))
        .route("/v1/totps/recover", post(recover_totp))
        .route("/v1/totps/recovery_codes", post(recovery_codes))
        .route("/v1/otps/email/send", post(send_email_otp))
        .route(
            "/v1/otps/email/login_or_create",
            post(login_or_create_email_otp),
        )
        .route("/v1/otps/sms/send", post(send_sms_otp))
        .route(
            "/v1/otps/sms/login_or_create",
            post(login_or_create_sms_otp),
        )
        .route("/v1/otps/authenticate", post(authenticate_otp))
        .merge(b2b::routes())
        .route_layer(axum::middleware::from_fn_with_state(s.clone(), basic_auth));
    let api = axum::Router::new()
        .route("/v1/sessions/jwks/{project_id}", get(jwks))
        .route("/v1/b2b/sessions/jwks/{project_id}", get(b2b::jwks))
        .merge(authenticated)
        .route_layer(axum::middleware::from_fn_with_state(
            (controls.clone(), fault_body as super::ErrorBody),
            super::observe,
        ));
    axum::Router::new()
        .merge(api)
        .route("/_sandbox/keys/rotate", post(rotate))
        .route("/_sandbox/webhooks", get(webhook_log).put(webhook_switch))
        .route("/_sandbox/totp/{user_id}", get(totp_secret))
        .route("/_sandbox/otps", get(otps_sent))
        .route("/_sandbox/jwt", post(backdated_jwt))
        .fallback(not_found)
        .with_state(s)
        .merge(super::control_routes(controls))
}

/// Starts the Stytch sandbox on `listener`.
pub fn start(
    settings: StytchSettings,
    listener: tokio::net::TcpListener,
) -> std::io::Result<(Arc<Stytch>, Running)> {
    let stytch = Stytch::new(settings);
    let controls = Arc::new(Controls::default());
    let running = super::serve(router(stytch.clone(), controls.clone()), listener, controls)?;
    Ok((stytch, running))
}
