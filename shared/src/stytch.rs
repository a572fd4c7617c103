//! A small client of Stytch's consumer API (docs/stytch-api.md): users, TOTP, sessions and the JWKS.
//!
//! Why not the official `stytch` crate (10.x): it deserialises factor `type` and
//! `delivery_method` into closed enums, so a factor type Stytch adds later would fail to parse, an
//! outage for us; it pins its own reqwest and jsonwebtoken versions (a second TLS and crypto stack
//! in a size-sensitive Lambda binary); and it has no consumer-session local JWT check, the one
//! thing we need on every request. Our types keep strings open and every field but ids optional.

use http::{HeaderMap, HeaderValue, Method, header};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use std::sync::Arc;

use crate::secrets::{SecretError, SecretSource, SecretString};
use crate::upstream::{Call, Retry, TransportError, Upstream};

/// A Stytch API failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StytchError {
    /// Stytch answered with its error body.
    #[error("Stytch {status} {error_type}: {message} ({request_id})")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stytch's `error_type`, e.g. `unable_to_authenticate_totp`.
        error_type: String,
        /// Stytch's `error_message`.
        message: String,
        /// Stytch's `request_id`, for support.
        request_id: String,
        /// `Retry-After` seconds, if sent (Stytch documents none; honoured if present).
        retry_after: Option<u64>,
    },
    /// No usable answer.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The project secret could not be read, so nothing was sent.
    #[error(transparent)]
    Secrets(#[from] SecretError),
}

impl StytchError {
    /// Stytch's `error_type`, if it answered with one.
    pub fn error_type(&self) -> Option<&str> {
        match self {
            Self::Api { error_type, .. } => Some(error_type),
            Self::Transport(_) | Self::Secrets(_) => None,
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error_type: String,
    #[serde(default)]
    error_message: String,
    #[serde(default)]
    request_id: String,
}

/// Reads a `null` member as its type's default, as a missing one is: Stytch's objects may carry
/// `null` for an empty list or an unset string (`"totps": null`), and one such member must not
/// make the whole object (a webhook, a user, a session claim) unreadable.
pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A user's e-mail address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Email {
    #[serde(deserialize_with = "null_as_default")]
    pub email_id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub email: String,
    #[serde(deserialize_with = "null_as_default")]
    pub verified: bool,
}

/// A user's phone number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PhoneNumber {
    #[serde(deserialize_with = "null_as_default")]
    pub phone_id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub phone_number: String,
    #[serde(deserialize_with = "null_as_default")]
    pub verified: bool,
}

/// A user's name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Name {
    #[serde(deserialize_with = "null_as_default")]
    pub first_name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub middle_name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub last_name: String,
}

/// A TOTP registration on a user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserTotp {
    #[serde(deserialize_with = "null_as_default")]
    pub totp_id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub verified: bool,
}

/// A Stytch user, with only the fields we use; everything unknown is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct User {
    #[serde(deserialize_with = "null_as_default")]
    pub user_id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub status: String,
    #[serde(deserialize_with = "null_as_default")]
    pub emails: Vec<Email>,
    #[serde(deserialize_with = "null_as_default")]
    pub phone_numbers: Vec<PhoneNumber>,
    pub name: Option<Name>,
    #[serde(deserialize_with = "null_as_default")]
    pub totps: Vec<UserTotp>,
    pub created_at: Option<String>,
}

/// One authentication factor of a session, with open `type`/`delivery_method` strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthenticationFactor {
    #[serde(rename = "type")]
    #[serde(deserialize_with = "null_as_default")]
    pub factor_type: String,
    #[serde(deserialize_with = "null_as_default")]
    pub delivery_method: String,
    pub last_authenticated_at: Option<String>,
    pub authenticator_app_factor: Option<AuthenticatorAppFactor>,
    /// The inbox an e-mail factor (code or magic link) proved.
    pub email_factor: Option<EmailFactor>,
    /// The number an SMS or WhatsApp factor proved.
    pub phone_number_factor: Option<PhoneNumberFactor>,
}

impl AuthenticationFactor {
    /// The address this factor proved the user holds (an e-mail address, lower-cased, or a
    /// phone number), if it names one.
    pub fn proven_address(&self) -> Option<String> {
        let email = self
            .email_factor
            .as_ref()
            .map(|e| e.email_address.trim().to_ascii_lowercase());
        let phone = self
            .phone_number_factor
            .as_ref()
            .map(|p| p.phone_number.trim().to_owned());
        email.or(phone).filter(|a| !a.is_empty())
    }
}

/// The e-mail detail of a factor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EmailFactor {
    #[serde(deserialize_with = "null_as_default")]
    pub email_id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub email_address: String,
}

/// The phone detail of a factor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PhoneNumberFactor {
    #[serde(deserialize_with = "null_as_default")]
    pub phone_id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub phone_number: String,
}

/// The TOTP detail of a factor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthenticatorAppFactor {
    #[serde(deserialize_with = "null_as_default")]
    pub totp_id: String,
}

/// A Stytch session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Session {
    #[serde(deserialize_with = "null_as_default")]
    pub session_id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub user_id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub authentication_factors: Vec<AuthenticationFactor>,
    pub started_at: Option<String>,
    pub expires_at: Option<String>,
}

/// `POST /v1/totps` answer.
#[derive(Debug, Clone, Deserialize)]
pub struct TotpCreated {
    pub totp_id: String,
    pub secret: SecretString,
    pub qr_code: String,
    pub recovery_codes: Vec<SecretString>,
    pub user_id: String,
}

/// Answer of `totps/authenticate`, `totps/recover` and `sessions/authenticate`.
#[derive(Debug, Clone, Deserialize)]
pub struct Authenticated {
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub session_token: SecretString,
    #[serde(default)]
    pub session_jwt: SecretString,
    #[serde(default)]
    pub session: Option<Session>,
}

/// The session options of an authenticate call.
#[derive(Debug, Clone, Serialize)]
struct SessionOptions<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    session_jwt: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_duration_minutes: Option<u32>,
}

/// A JWK as Stytch serves it (only what RS256 verification needs is required).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Jwk {
    pub kty: String,
    pub kid: String,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(rename = "use", default)]
    pub key_use: Option<String>,
    #[serde(default)]
    pub n: String,
    #[serde(default)]
    pub e: String,
}

/// `GET /v1/sessions/jwks/{project_id}` answer.
#[derive(Debug, Clone, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// The Stytch client: HTTP Basic with the project id and the current project secret (read from
/// the secrets source on each call, so a rotation needs no restart), on one shared connection
/// pool.
#[derive(Clone)]
pub struct StytchClient {
    upstream: Upstream,
    project_id: String,
    secrets: Arc<dyn SecretSource>,
}

/// The credentials a call carries.
#[derive(Clone, Copy)]
enum Auth {
    /// None (the JWKS).
    None,
    /// HTTP Basic with the project id and secret.
    ProjectSecret,
}

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters).
pub fn path_segment(raw: &str) -> String {
    percent_encoding::utf8_percent_encode(raw, NOT_UNRESERVED).to_string()
}

impl StytchClient {
    /// A client for `project_id` over `upstream`, its secret from `secrets`.
    pub fn new(
        upstream: Upstream,
        project_id: impl Into<String>,
        secrets: Arc<dyn SecretSource>,
    ) -> Self {
        Self {
            upstream,
            project_id: project_id.into(),
            secrets,
        }
    }

    /// The project id.
    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    /// The JWKS URL to give Unit (Org Settings → JWT Settings).
    pub fn jwks_url(&self) -> String {
        self.upstream.url(&format!(
            "/v1/sessions/jwks/{}",
            path_segment(&self.project_id)
        ))
    }

    fn headers(&self, secret: Option<&SecretString>) -> HeaderMap {
        use base64::Engine;
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secret) = secret {
            let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                self.project_id,
                secret.expose()
            ));
            if let Ok(mut value) = HeaderValue::from_str(&format!("Basic {credentials}")) {
                value.set_sensitive(true);
                headers.insert(header::AUTHORIZATION, value);
            }
        }
        headers
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        auth: Auth,
        body: Option<bytes::Bytes>,
        retry: Retry,
        deadline: Instant,
    ) -> Result<T, StytchError> {
        let secrets = match auth {
            Auth::ProjectSecret => Some(self.secrets.current().await?),
            Auth::None => None,
        };
        let response = self
            .upstream
            .send(Call {
                method,
                path,
                headers: self.headers(secrets.as_ref().map(|s| &s.stytch_secret)),
                body,
                retry,
                deadline,
            })
            .await?;
        let status = response.status.as_u16();
        let decode_error = |message: String| TransportError::Decode {
            service: "stytch",
            status,
            message,
        };
        if response.status.is_success() {
            return serde_json::from_slice(&response.body)
                .map_err(|e| decode_error(e.to_string()).into());
        }
        // A refusal keeps its status whatever its body: a proxy's HTML page or an empty 429
        // is still that status, with no `error_type` (which no table names).
        let body = serde_json::from_slice::<ErrorBody>(&response.body).unwrap_or(ErrorBody {
            error_type: String::new(),
            error_message: "no Stytch error body".into(),
            request_id: String::new(),
        });
        Err(StytchError::Api {
            status,
            error_type: body.error_type,
            message: body.error_message,
            request_id: body.request_id,
            retry_after: response.retry_after(),
        })
    }

    fn json<T: Serialize>(value: &T) -> Option<bytes::Bytes> {
        serde_json::to_vec(value).ok().map(bytes::Bytes::from)
    }

    /// `GET /v1/sessions/jwks/{project_id}` (needs no credentials).
    pub async fn get_jwks(&self, deadline: Instant) -> Result<Jwks, StytchError> {
        let path = format!("/v1/sessions/jwks/{}", path_segment(&self.project_id));
        self.call(Method::GET, &path, Auth::None, None, Retry::Safe, deadline)
            .await
    }

    /// `GET /v1/users/{user_id}`: the user's fields are at the top level of the answer.
    pub async fn get_user(&self, user_id: &str, deadline: Instant) -> Result<User, StytchError> {
        let path = format!("/v1/users/{}", path_segment(user_id));
        self.call(
            Method::GET,
            &path,
            Auth::ProjectSecret,
            None,
            Retry::Safe,
            deadline,
        )
        .await
    }

    /// `POST /v1/totps`: creates the user's (single) TOTP registration.
    pub async fn create_totp(
        &self,
        user_id: &str,
        deadline: Instant,
    ) -> Result<TotpCreated, StytchError> {
        let body = Self::json(&serde_json::json!({ "user_id": user_id }));
        self.call(
            Method::POST,
            "/v1/totps",
            Auth::ProjectSecret,
            body,
            Retry::OnlyUnsent,
            deadline,
        )
        .await
    }

    /// `POST /v1/totps/authenticate`, adding the factor to the caller's session (`session_jwt`).
    /// A code is single-use, so a sent request is never retried.
    pub async fn authenticate_totp(
        &self,
        user_id: &str,
        totp_code: &str,
        session_jwt: &str,
        session_duration_minutes: Option<u32>,
        deadline: Instant,
    ) -> Result<Authenticated, StytchError> {
        #[derive(Serialize)]
        struct Body<'a> {
            user_id: &'a str,
            totp_code: &'a str,
            #[serde(flatten)]
            session: SessionOptions<'a>,
        }
        let body = Self::json(&Body {
            user_id,
            totp_code,
            session: SessionOptions {
                session_jwt: Some(session_jwt),
                session_duration_minutes,
            },
        });
        self.call(
            Method::POST,
            "/v1/totps/authenticate",
            Auth::ProjectSecret,
            body,
            Retry::OnlyUnsent,
            deadline,
        )
        .await
    }

    /// `POST /v1/totps/recover` with a single-use recovery code.
    pub async fn recover_totp(
        &self,
        user_id: &str,
        recovery_code: &str,
        session_jwt: &str,
        session_duration_minutes: Option<u32>,
        deadline: Instant,
    ) -> Result<Authenticated, StytchError> {
        #[derive(Serialize)]
        struct Body<'a> {
            user_id: &'a str,
            recovery_code: &'a str,
            #[serde(flatten)]
            session: SessionOptions<'a>,
        }
        let body = Self::json(&Body {
            user_id,
            recovery_code,
            session: SessionOptions {
                session_jwt: Some(session_jwt),
                session_duration_minutes,
            },
        });
        self.call(
            Method::POST,
            "/v1/totps/recover",
            Auth::ProjectSecret,
            body,
            Retry::OnlyUnsent,
            deadline,
        )
        .await
    }

    /// `DELETE /v1/users/totps/{totp_id}` (removes a pending or active TOTP).
    pub async fn delete_totp(&self, totp_id: &str, deadline: Instant) -> Result<(), StytchError> {
        let path = format!("/v1/users/totps/{}", path_segment(totp_id));
        let _: serde_json::Value = self
            .call(
                Method::DELETE,
                &path,
                Auth::ProjectSecret,
                None,
                Retry::Safe,
                deadline,
            )
            .await?;
        Ok(())
    }

    /// `GET /v1/sessions?user_id=`: the user's live sessions.
    pub async fn get_sessions(
        &self,
        user_id: &str,
        deadline: Instant,
    ) -> Result<Vec<Session>, StytchError> {
        #[derive(Deserialize)]
        struct Sessions {
            #[serde(default)]
            sessions: Vec<Session>,
        }
        let path = format!("/v1/sessions?user_id={}", path_segment(user_id));
        let found: Sessions = self
            .call(
                Method::GET,
                &path,
                Auth::ProjectSecret,
                None,
                Retry::Safe,
                deadline,
            )
            .await?;
        Ok(found.sessions)
    }

    /// `POST /v1/sessions/revoke` of one session (revoking twice is harmless: retried).
    pub async fn revoke_session(
        &self,
        session_id: &str,
        deadline: Instant,
    ) -> Result<(), StytchError> {
        let body = Self::json(&serde_json::json!({ "session_id": session_id }));
        let _: serde_json::Value = self
            .call(
                Method::POST,
                "/v1/sessions/revoke",
                Auth::ProjectSecret,
                body,
                Retry::Safe,
                deadline,
            )
            .await?;
        Ok(())
    }

    /// `POST /v1/sessions/authenticate` with a session JWT (a check, safe to retry).
    pub async fn authenticate_session(
        &self,
        session_jwt: &str,
        deadline: Instant,
    ) -> Result<Authenticated, StytchError> {
        let body = Self::json(&SessionOptions {
            session_jwt: Some(session_jwt),
            session_duration_minutes: None,
        });
        self.call(
            Method::POST,
            "/v1/sessions/authenticate",
            Auth::ProjectSecret,
            body,
            Retry::Safe,
            deadline,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::{RetryPolicy, http_client};
    use std::time::Duration;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    /// docs/stytch-api.md §4: a `null` member reads as an empty one, wherever it is.
    #[test]
    fn null_members_of_stytchs_objects_read_as_empty() {
        let user: User = serde_json::from_value(serde_json::json!({
            "user_id": "user-test-1", "status": null, "name": null, "created_at": null,
            "emails": [{"email_id": "email-test-1", "email": "ada@example.com", "verified": null}],
            "phone_numbers": null, "totps": null, "webauthn_registrations": null
        }))
        .expect("a user with null members");
        assert_eq!(user.user_id, "user-test-1");
        assert_eq!(user.emails[0].email, "ada@example.com");
        assert!(!user.emails[0].verified);
        assert!(user.phone_numbers.is_empty() && user.totps.is_empty());
        let session: Session = serde_json::from_value(serde_json::json!({
            "session_id": "session-test-1", "user_id": "user-test-1",
            "authentication_factors": [{"type": "password", "delivery_method": null,
                "email_factor": null, "last_authenticated_at": null}]
        }))
        .expect("a session with null members");
        assert_eq!(session.authentication_factors[0].factor_type, "password");
        let none: Session =
            serde_json::from_value(serde_json::json!({"authentication_factors": null})).unwrap();
        assert!(none.authentication_factors.is_empty());
    }

    #[test]
    fn a_path_segment_keeps_only_unreserved_characters() {
        assert_eq!(
            path_segment("user-test-1_a.b~c"),
            "user-test-1_a.b~c",
            "ids pass untouched"
        );
        assert_eq!(path_segment("../x y%?#é"), "..%2Fx%20y%25%3F%23%C3%A9");
    }

    fn client(server: &MockServer, prefix: &str) -> StytchClient {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(1),
            ..RetryPolicy::new(3, Duration::from_secs(2))
        };
        let upstream = Upstream::new(
            "stytch",
            http_client(Duration::from_secs(1)),
            &format!("{}{prefix}", server.uri()),
            policy,
        );
        StytchClient::new(
            upstream,
            "project-test-1",
            crate::secrets::test_source("secret-test-1", "v2.public.org"),
        )
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(30)
    }

    #[tokio::test]
    async fn get_user_sends_basic_auth_and_reads_a_flat_user() {
        let server = MockServer::start().await;
        // base64("project-test-1:secret-test-1")
        Mock::given(method("GET"))
            .and(path("/proxy/v1/users/user-test-1"))
            .and(header("authorization", "Basic cHJvamVjdC10ZXN0LTE6c2VjcmV0LXRlc3QtMQ=="))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "status_code": 200, "request_id": "request-id-test-1", "user_id": "user-test-1",
                "status": "active", "emails": [{"email_id": "email-test-1", "email": "a@b.c", "verified": true}],
                "phone_numbers": [], "name": {"first_name": "Ada", "middle_name": "", "last_name": "Lovelace"},
                "totps": [], "webauthn_registrations": [], "is_locked": false, "roles": [], "password": null
            })))
            .expect(1)
            .mount(&server)
            .await;
        let user = client(&server, "/proxy/")
            .get_user("user-test-1", soon())
            .await
            .unwrap();
        assert_eq!(user.emails[0].email, "a@b.c");
        assert_eq!(user.name.unwrap().last_name, "Lovelace");
    }

    #[tokio::test]
    async fn errors_decode_into_typed_errors_and_ids_are_path_encoded() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/users/user%2F..%2Fx"))
            .respond_with(ResponseTemplate::new(404).set_body_json(serde_json::json!({
                "status_code": 404, "request_id": "request-id-test-2", "error_type": "user_not_found",
                "error_message": "User could not be found.", "error_url": "https://stytch.com/docs/api/errors/404"
            })))
            .mount(&server)
            .await;
        let err = client(&server, "")
            .get_user("user/../x", soon())
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), Some("user_not_found"));
        assert!(matches!(err, StytchError::Api { status: 404, .. }));
    }

    #[tokio::test]
    async fn a_totp_code_is_sent_once_even_on_a_server_error() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/totps/authenticate"))
            .and(body_json(serde_json::json!({
                "user_id": "user-test-1", "totp_code": "123456", "session_jwt": "jwt", "session_duration_minutes": 60
            })))
            .respond_with(ResponseTemplate::new(500).set_body_json(serde_json::json!({
                "status_code": 500, "request_id": "r", "error_type": "internal_server_error",
                "error_message": "Oops", "error_url": "u"
            })))
            .expect(1)
            .mount(&server)
            .await;
        let err = client(&server, "")
            .authenticate_totp("user-test-1", "123456", "jwt", Some(60), soon())
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), Some("internal_server_error"));
    }

    #[tokio::test]
    async fn the_jwks_needs_no_credentials_and_unknown_factor_types_parse() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/sessions/jwks/project-test-1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "keys": [{"kty": "RSA", "use": "sig", "key_ops": ["verify"], "alg": "RS256", "kid": "jwk-test-1",
                          "x5c": [], "x5tS256": "", "n": "AQAB", "e": "AQAB"}],
                "request_id": "r", "status_code": 200
            })))
            .mount(&server)
            .await;
        let c = client(&server, "");
        let jwks = c.get_jwks(soon()).await.unwrap();
        assert_eq!(jwks.keys[0].kid, "jwk-test-1");
        let requests = server.received_requests().await.unwrap();
        assert!(requests[0].headers.get("authorization").is_none());
        let factor: AuthenticationFactor = serde_json::from_value(
            serde_json::json!({"type": "passkey_v9", "delivery_method": "something_new"}),
        )
        .unwrap();
        assert_eq!(factor.factor_type, "passkey_v9");
    }

    #[tokio::test]
    async fn an_error_keeps_its_status_and_retry_after_whatever_its_body() {
        let server = MockServer::start().await;
        let in_a_minute = httpdate::fmt_http_date(
            std::time::SystemTime::now() + std::time::Duration::from_secs(60),
        );
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("retry-after", in_a_minute.as_str())
                    .set_body_string("<html>slow down</html>"),
            )
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
            .mount(&server)
            .await;
        // The wait is past the call's deadline: no retry, the 429 is the answer.
        let err = client(&server, "")
            .authenticate_session("eyJ.session.jwt", soon())
            .await
            .unwrap_err();
        let StytchError::Api {
            status: 429,
            ref error_type,
            retry_after: Some(wait),
            ..
        } = err
        else {
            panic!("{err:?}")
        };
        assert!(error_type.is_empty());
        assert!(
            (58..=61).contains(&wait),
            "an HTTP date a minute ahead: {wait}"
        );
        let err = client(&server, "")
            .authenticate_session("eyJ.session.jwt", soon())
            .await
            .unwrap_err();
        assert!(
            matches!(err, StytchError::Api { status: 502, .. }),
            "{err:?}"
        );
        assert_eq!(
            server.received_requests().await.unwrap().len(),
            4,
            "a session check is a read: the 502s were retried"
        );
    }
}
