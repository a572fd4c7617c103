//! Local verification of Stytch session JWTs (docs/architecture.md, "Rules that matter"): no
//! Stytch call per request.
//!
//! The signature and the registered claims are checked by `jsonwebtoken` (aws-lc-rs backend):
//! RS256 only, `exp`, `nbf`, `iss`, `aud` and `sub` required, `iss == stytch.com/{project}` (plus
//! configured custom-domain issuers), `aud ∋ project`, `exp`/`nbf` against the system clock with
//! `JWT_LEEWAY_SECONDS` of leeway. On top, stricter checks of our own: a size cap, a compact JWS
//! of strict base64url, header `typ` JWT and no `crit`, a `kid` from the project's JWKS (cached;
//! refreshed after a TTL; an unknown `kid` causes at most one refetch per interval), `iat` not in
//! the future, a non-empty `sub`, and the `https://stytch.com/session` claim (which an M2M token
//! of the same project lacks). Anything else is refused.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{Mutex, RwLock};
use tokio::time::Instant;

use crate::config::StepUpFactor;
use crate::domain::UserId;
use crate::secrets::SecretString;
use crate::stytch::{AuthenticationFactor, Jwk, StytchClient, StytchError};

/// Longest token we parse; Stytch caps custom claims at 4 KB, so real tokens stay far below.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The claim Stytch puts the session in.
pub const SESSION_CLAIM: &str = "https://stytch.com/session";

/// Why a token was refused (or could not be checked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not a well-formed RS256 Stytch session JWT, or a claim is wrong (401).
    #[error("invalid session token: {0}")]
    Invalid(&'static str),
    /// Signed by a key the project's JWKS does not have (401).
    #[error("invalid session token: unknown signing key")]
    UnknownKey,
    /// The signature does not verify (401).
    #[error("invalid session token: bad signature")]
    BadSignature,
    /// Past `exp` (401; the frontend should refresh its session).
    #[error("session token expired")]
    Expired,
    /// `nbf` or `iat` in the future (401).
    #[error("session token not yet valid")]
    NotYetValid,
    /// The JWKS could not be fetched and no cached key fits (503: not the caller's fault).
    #[error("signing keys unavailable: {0}")]
    KeysUnavailable(String),
}

/// A factor as it appears in the session claim.
pub type Factor = AuthenticationFactor;

/// A verified Stytch session.
#[derive(Debug, Clone)]
pub struct VerifiedSession {
    /// Stytch `user_id` (the JWT `sub`), the `jwtSubject` Unit matches.
    pub user_id: UserId,
    /// Stytch session id.
    pub session_id: String,
    /// `iat`, epoch seconds.
    pub issued_at: i64,
    /// `exp`, epoch seconds.
    pub expires_at: i64,
    /// When the Stytch session itself ends (the session claim's `expires_at`), epoch seconds.
    pub session_expires_at: Option<i64>,
    /// The session's authentication factors.
    pub factors: Vec<Factor>,
    /// The token itself, to pass on to Stytch or Unit; never logged.
    pub token: SecretString,
}

/// How recent a factor must be: authenticated within `max_age` of `now`, and not in the future
/// beyond `leeway`.
#[derive(Debug, Clone, Copy)]
pub struct Freshness {
    /// Oldest a factor may be.
    pub max_age: Duration,
    /// Clock skew allowed.
    pub leeway: Duration,
    /// Epoch seconds.
    pub now: i64,
}

impl Freshness {
    fn holds(&self, f: &Factor) -> bool {
        let max_age = i64::try_from(self.max_age.as_secs()).unwrap_or(i64::MAX);
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(0);
        f.last_authenticated_at
            .as_deref()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            .map(|t| t.unix_timestamp())
            .is_some_and(|at| at <= self.now + leeway && self.now - at <= max_age)
    }
}

/// Stytch's session duration bounds, in minutes.
const SESSION_MINUTES: std::ops::RangeInclusive<i64> = 5..=527_040;

impl VerifiedSession {
    /// Whether the session holds a fresh step-up: a factor that is one of `accepted` (its exact
    /// `type` / `delivery_method` pair), within `fresh`, beside a factor of another type that
    /// proves another address (so a login by that factor alone, or an e-mail code beside a
    /// magic link to the same inbox, is no step-up: one channel, one proof).
    pub fn has_step_up(&self, accepted: &BTreeSet<StepUpFactor>, fresh: Freshness) -> bool {
        self.factors.iter().any(|f| {
            let address = f.proven_address();
            accepted
                .iter()
                .any(|a| a.matches(&f.factor_type, &f.delivery_method))
                && fresh.holds(f)
                && self.factors.iter().any(|o| {
                    o.factor_type != f.factor_type
                        && (address.is_none() || o.proven_address() != address)
                })
        })
    }

    /// Whether the session proved, within `fresh`, that the user holds their second factor or
    /// its recovery codes: a TOTP code, or a recovery code (Stytch's SDKs label those factors
    /// `recovery_codes`, or give no such type and mark the `delivery_method` `recovery_code`).
    pub fn has_recent_second_factor(&self, fresh: Freshness) -> bool {
        self.factors.iter().any(|f| {
            (StepUpFactor::Totp.matches(&f.factor_type, &f.delivery_method)
                || f.delivery_method == "recovery_code")
                && fresh.holds(f)
        })
    }

    /// The ids of the TOTP registrations this session authenticated within `fresh`.
    pub fn fresh_totp_ids(&self, fresh: Freshness) -> Vec<&str> {
        self.factors
            .iter()
            .filter(|f| StepUpFactor::Totp.matches(&f.factor_type, &f.delivery_method))
            .filter(|f| fresh.holds(f))
            .filter_map(|f| f.authenticator_app_factor.as_ref())
            .map(|a| a.totp_id.as_str())
            .filter(|id| !id.is_empty())
            .collect()
    }

    /// Whether the session proved, within `fresh`, that the user holds `email` or `phone` (E.164):
    /// an e-mail code or magic link to that inbox, an SMS or WhatsApp code to that number,
    /// matched by address.
    pub fn proves_contact(
        &self,
        email: Option<&str>,
        phone: Option<&str>,
        fresh: Freshness,
    ) -> bool {
        let email = email.map(|e| e.trim().to_ascii_lowercase());
        let phone = phone.map(str::trim);
        self.contact_proofs(fresh).any(|(by_email, proven)| {
            if by_email {
                email.is_some() && proven == email
            } else {
                phone.is_some() && proven.as_deref() == phone
            }
        })
    }

    /// Whether the session holds, within `fresh`, any proof of an address (whose address it is
    /// aside): without one, nobody need be asked which addresses count.
    pub fn has_contact_proof(&self, fresh: Freshness) -> bool {
        self.contact_proofs(fresh).next().is_some()
    }

    /// The session's fresh proofs of an address: (by e-mail, rather than by phone; the address).
    fn contact_proofs(&self, fresh: Freshness) -> impl Iterator<Item = (bool, Option<String>)> {
        self.factors
            .iter()
            .filter(move |f| fresh.holds(f))
            .filter_map(|f| {
                let by_email = matches!(
                    (f.factor_type.as_str(), f.delivery_method.as_str()),
                    ("otp" | "email_otp" | "magic_link", "email")
                );
                let by_phone = f.factor_type == "otp"
                    && matches!(f.delivery_method.as_str(), "sms" | "whatsapp");
                (by_email || by_phone).then(|| (by_email, f.proven_address()))
            })
    }

    /// Whether the session ever completed a step-up with the user's authenticator or a recovery
    /// code (a TOTP or recovery-code factor of any age).
    pub fn ever_stepped_up(&self) -> bool {
        self.factors.iter().any(|f| {
            StepUpFactor::Totp.matches(&f.factor_type, &f.delivery_method)
                || f.delivery_method == "recovery_code"
        })
    }

    /// The session's remaining lifetime as Stytch's `session_duration_minutes` (rounded up,
    /// within Stytch's 5..=527040), so that a step-up keeps the session's end where it was.
    /// `None` when the claim does not say.
    pub fn minutes_left(&self, now: i64) -> Option<u32> {
        let left = self.session_expires_at? - now;
        let minutes = (left + 59)
            .div_euclid(60)
            .clamp(*SESSION_MINUTES.start(), *SESSION_MINUTES.end());
        u32::try_from(minutes).ok()
    }

    /// Seconds until `exp` (negative if past).
    pub fn seconds_left(&self, now: i64) -> i64 {
        self.expires_at - now
    }
}

/// Where the verifier gets the project's keys.
#[async_trait]
pub trait JwksSource: Send + Sync {
    /// The current JWKS.
    async fn fetch_jwks(&self) -> Result<Vec<Jwk>, String>;
}

#[async_trait]
impl JwksSource for StytchClient {
    async fn fetch_jwks(&self) -> Result<Vec<Jwk>, String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        self.get_jwks(deadline)
            .await
            .map(|j| j.keys)
            .map_err(|e: StytchError| e.to_string())
    }
}

/// How soon a JWKS fetch may follow a failed one (at most one fetch a second per instance while
/// Stytch is unreachable).
const RETRY_AFTER_FAILED_FETCH: Duration = Duration::from_secs(1);

/// Verifier settings.
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// Stytch project id (audience, and the issuer's suffix).
    pub project_id: String,
    /// Extra accepted issuers (custom domains), trailing slashes ignored. The Stytch API base URL
    /// the functions call is accepted too, without its trailing slash, as Stytch's official
    /// SDKs accept theirs (a custom domain configured as the base URL issues its own `iss`).
    pub extra_issuers: Vec<String>,
    /// Leeway for `exp`, `nbf`, `iat`.
    pub leeway: Duration,
    /// Minimum time between two fetches caused by unknown `kid`s.
    pub refetch_interval: Duration,
    /// Age after which the JWKS is refreshed on next use.
    pub ttl: Duration,
}

/// An RSA public key of the JWKS.
type PublicKey = DecodingKey;

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Arc<PublicKey>>,
    fetched_at: Option<Instant>,
}

/// A Stytch session JWT verifier with its JWKS cache.
pub struct SessionVerifier {
    source: Box<dyn JwksSource>,
    settings: VerifierSettings,
    /// What `jsonwebtoken` checks: RS256, the registered claims, issuers, audience, leeway.
    validation: Validation,
    keys: RwLock<KeySet>,
    /// Serialises fetches and remembers the last one.
    fetching: Mutex<FetchState>,
    /// The refused issuers already logged in this cold start.
    refused_issuers: std::sync::Mutex<std::collections::HashSet<String>>,
}

#[derive(Default)]
struct FetchState {
    /// When the last fetch started.
    last: Option<Instant>,
    /// Its error, if it failed.
    error: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    /// RFC 7515 §4.1.11: extensions the token says must be understood. We understand none, so a
    /// token that lists any is refused (Stytch's never carry `crit`).
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// What we read of the claims once `jsonwebtoken` has checked the registered ones.
#[derive(Deserialize)]
struct Claims {
    // Optional here so that a missing one is refused by `jsonwebtoken` as a missing claim.
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    exp: Option<i64>,
    iat: i64,
    #[serde(rename = "https://stytch.com/session")]
    session: SessionClaim,
}

#[derive(Deserialize)]
struct SessionClaim {
    id: String,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default, deserialize_with = "crate::stytch::null_as_default")]
    authentication_factors: Vec<Factor>,
}

impl SessionVerifier {
    /// A verifier; the JWKS is fetched on first use.
    pub fn new(source: Box<dyn JwksSource>, settings: VerifierSettings) -> Self {
        let issuers = accepted_issuers(&settings.project_id, &settings.extra_issuers);
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = settings.leeway.as_secs();
        validation.set_issuer(&issuers);
        validation.set_audience(&[&settings.project_id]);
        Self {
            source,
            settings,
            validation,
            keys: RwLock::new(KeySet::default()),
            fetching: Mutex::new(FetchState::default()),
            refused_issuers: std::sync::Mutex::default(),
        }
    }

    /// Verifies `token`. `exp` and `nbf` are checked against the system clock (by
    /// `jsonwebtoken`); `now` (epoch seconds) is the clock of our own `iat` check.
    pub async fn verify(&self, token: &str, now: i64) -> Result<VerifiedSession, JwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::Invalid("token too large"));
        }
        let (header_b64, payload_b64, signature) = compact_parts(token)?;
        let kid = checked_kid(header_b64)?;
        let key = self.key(&kid).await?;
        // The JWS form of the same token: jsonwebtoken then reads the header once, not twice.
        let jws = jsonwebtoken::jws::Jws::<Claims> {
            protected: header_b64.to_owned(),
            payload: payload_b64.to_owned(),
            signature: signature.to_owned(),
            _pd: std::marker::PhantomData,
        };
        let claims: Claims = match jsonwebtoken::jws::decode(&jws, &key, &self.validation) {
            Ok(decoded) => decoded.claims,
            Err(e) => {
                let kind = e.into_kind();
                if matches!(kind, ErrorKind::InvalidIssuer) {
                    self.log_refused_issuer(payload_b64);
                }
                return Err(refused(kind));
            }
        };
        let leeway = i64::try_from(self.settings.leeway.as_secs()).unwrap_or(0);
        if claims.iat - leeway > now {
            return Err(JwtError::NotYetValid);
        }
        verified_session(claims, token)
    }

    /// The key for `kid`: from the cache, or after a (rate-limited) refetch.
    async fn key(&self, kid: &str) -> Result<Arc<PublicKey>, JwtError> {
        if let Some(key) = self.cached_key(kid, false).await {
            return Ok(key);
        }
        let mut fetch = self.fetching.lock().await;
        // Another caller may have fetched while we waited; and fetches are rate-limited.
        // After a failed fetch, the next may come sooner: without keys nobody gets in, and
        // Stytch answering again should end that within a second, not an interval.
        let interval = if fetch.error.is_some() {
            RETRY_AFTER_FAILED_FETCH.min(self.settings.refetch_interval)
        } else {
            self.settings.refetch_interval
        };
        let recent = fetch.last.is_some_and(|at| at.elapsed() < interval);
        if let Some(key) = self.cached_key(kid, recent).await {
            return Ok(key);
        }
        if recent {
            return Err(match &fetch.error {
                Some(e) => JwtError::KeysUnavailable(e.clone()),
                None => JwtError::UnknownKey,
            });
        }
        self.refetch(&mut fetch, kid).await
    }

    /// The cached key for `kid` if the set is still fresh, or `anyway` (a fetch was recent).
    async fn cached_key(&self, kid: &str, anyway: bool) -> Option<Arc<PublicKey>> {
        let keys = self.keys.read().await;
        let fresh = keys
            .fetched_at
            .is_some_and(|at| at.elapsed() < self.settings.ttl);
        keys.keys.get(kid).filter(|_| fresh || anyway).cloned()
    }

    /// Fetches the JWKS (the caller holds the fetch lock) and answers the key for `kid`.
    async fn refetch(&self, fetch: &mut FetchState, kid: &str) -> Result<Arc<PublicKey>, JwtError> {
        fetch.last = Some(Instant::now());
        match self.source.fetch_jwks().await {
            Ok(jwks) => {
                fetch.error = None;
                let parsed: HashMap<_, _> = jwks
                    .iter()
                    .filter_map(|jwk| Some((jwk.kid.clone(), Arc::new(rsa_key(jwk)?))))
                    .collect();
                tracing::info!(keys = parsed.len(), "fetched the Stytch JWKS");
                let mut keys = self.keys.write().await;
                keys.keys = parsed;
                keys.fetched_at = Some(Instant::now());
                keys.keys.get(kid).cloned().ok_or(JwtError::UnknownKey)
            }
            Err(e) => {
                tracing::warn!(error = %e, "JWKS fetch failed");
                fetch.error = Some(e.clone());
                // A stale but known key still verifies: rotation keeps old keys served for weeks.
                self.keys
                    .read()
                    .await
                    .keys
                    .get(kid)
                    .cloned()
                    .ok_or(JwtError::KeysUnavailable(e))
            }
        }
    }
}

/// The three parts of a JWS compact token: header, payload and signature (base64url).
fn compact_parts(token: &str) -> Result<(&str, &str, &str), JwtError> {
    let not_compact = JwtError::Invalid("not a JWS compact token");
    // The signature itself is jsonwebtoken's to decode and check.
    let (signing_input, signature) = token.rsplit_once('.').ok_or(not_compact.clone())?;
    let (header_b64, payload_b64) = signing_input.split_once('.').ok_or(not_compact.clone())?;
    if payload_b64.contains('.') {
        return Err(not_compact);
    }
    Ok((header_b64, payload_b64, signature))
}

/// The `kid` of a header that is RS256, typed `JWT`, and has no critical extensions.
fn checked_kid(header_b64: &str) -> Result<String, JwtError> {
    let header: Header = URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(JwtError::Invalid("malformed header"))?;
    if header.alg != "RS256" {
        return Err(JwtError::Invalid("algorithm must be RS256"));
    }
    if header.typ.as_deref() != Some("JWT") {
        return Err(JwtError::Invalid("typ must be JWT"));
    }
    if header.crit.is_some() {
        return Err(JwtError::Invalid(
            "critical header extensions are not supported",
        ));
    }
    header
        .kid
        .filter(|k| !k.is_empty() && k.len() <= 256)
        .ok_or(JwtError::Invalid("missing kid"))
}

/// The session of verified `claims`: its subject must be a Stytch user id, the identity
/// everything downstream binds to.
fn verified_session(claims: Claims, token: &str) -> Result<VerifiedSession, JwtError> {
    let (Some(sub), Some(exp)) = (claims.sub, claims.exp) else {
        return Err(JwtError::Invalid("missing claim"));
    };
    if claims.session.id.is_empty() {
        return Err(JwtError::Invalid("missing subject or session"));
    }
    let sub = UserId::parse(sub).map_err(|_| JwtError::Invalid("sub is not a Stytch user id"))?;
    tracing::debug!(
        user_id = %sub,
        session_id = %claims.session.id,
        exp,
        factors = ?claims
            .session
            .authentication_factors
            .iter()
            .map(|f| format!(
                "{}/{}@{}",
                f.factor_type,
                f.delivery_method,
                f.last_authenticated_at.as_deref().unwrap_or("-")
            ))
            .collect::<Vec<_>>(),
        "session JWT verified"
    );
    Ok(VerifiedSession {
        user_id: sub,
        session_id: claims.session.id,
        issued_at: claims.iat,
        expires_at: exp,
        session_expires_at: claims
            .session
            .expires_at
            .as_deref()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            .map(|t| t.unix_timestamp()),
        factors: claims.session.authentication_factors,
        token: SecretString::new(token),
    })
}

/// The issuers a session JWT of `project_id` may carry: Stytch's own (`stytch.com/<project>`)
/// and the configured extra ones (custom domains, the API base URL), each without a trailing
/// slash, as Stytch's official SDKs compare them (docs/stytch-api.md §2).
pub fn accepted_issuers(project_id: &str, extra: &[String]) -> Vec<String> {
    let mut issuers = vec![format!("stytch.com/{project_id}")];
    for issuer in extra {
        let issuer = issuer.trim().trim_end_matches('/');
        if !issuer.is_empty() && !issuers.iter().any(|i| i == issuer) {
            issuers.push(issuer.to_owned());
        }
    }
    issuers
}

/// At most this many refused issuers are remembered (and logged) per cold start.
const REFUSED_ISSUERS_LOGGED: usize = 16;

impl SessionVerifier {
    /// Logs the `iss` of a validly signed token we refused for its issuer, once per cold start
    /// per value (a misconfigured custom domain shows up once, not per request), never the
    /// token. jsonwebtoken checks the signature before the claims, so the value is Stytch's.
    fn log_refused_issuer(&self, payload_b64: &str) {
        #[derive(Deserialize)]
        struct Iss {
            #[serde(default)]
            iss: Option<serde_json::Value>,
        }
        let iss = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Iss>(&bytes).ok())
            .and_then(|c| c.iss)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .unwrap_or_default();
        let iss: String = iss.chars().take(200).collect();
        let Ok(mut seen) = self.refused_issuers.lock() else {
            return;
        };
        if seen.len() < REFUSED_ISSUERS_LOGGED && seen.insert(iss.clone()) {
            tracing::warn!(
                iss,
                "refused a validly signed session JWT for its issuer; if it is your Stytch custom domain, add it to STYTCH_EXTRA_ISSUERS"
            );
        }
    }
}

/// What a `jsonwebtoken` refusal means to the caller.
fn refused(kind: ErrorKind) -> JwtError {
    match kind {
        // jsonwebtoken decodes the signature (strict base64url, as ours) before anything else
        // of the payload: a base64 error is the signature's.
        ErrorKind::InvalidSignature | ErrorKind::Base64(_) => JwtError::BadSignature,
        ErrorKind::ExpiredSignature => JwtError::Expired,
        ErrorKind::ImmatureSignature => JwtError::NotYetValid,
        ErrorKind::InvalidIssuer => JwtError::Invalid("wrong issuer"),
        ErrorKind::InvalidAudience => JwtError::Invalid("wrong audience"),
        ErrorKind::MissingRequiredClaim(_) => JwtError::Invalid("missing claim"),
        // Unparsable claims (Json, InvalidClaimFormat, Base64, Utf8) and anything else.
        _ => JwtError::Invalid("malformed token"),
    }
}

/// An RS256 signing key of the JWKS (at least 2048 bits), or `None` for anything else.
fn rsa_key(jwk: &Jwk) -> Option<PublicKey> {
    let usable = jwk.kty == "RSA"
        && jwk.alg.as_deref().is_none_or(|a| a == "RS256")
        && jwk.key_use.as_deref().is_none_or(|u| u == "sig");
    if !usable {
        return None;
    }
    let n = URL_SAFE_NO_PAD.decode(&jwk.n).ok()?;
    let e = URL_SAFE_NO_PAD.decode(&jwk.e).ok()?;
    if n.len() < 256 || e.is_empty() {
        return None;
    }
    DecodingKey::from_rsa_components(&jwk.n, &jwk.e).ok()
}

/// RS256 signing of session JWTs shaped like Stytch's: test support behind the `signer` feature,
/// never built into a function.
#[cfg(any(test, feature = "signer"))]
pub mod signer {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use crate::stytch::Jwk;

    /// A JWKS that never changes.
    pub struct StaticJwks(pub Vec<Jwk>);

    #[async_trait::async_trait]
    impl crate::jwt::JwksSource for StaticJwks {
        async fn fetch_jwks(&self) -> Result<Vec<Jwk>, String> {
            Ok(self.0.clone())
        }
    }

    /// The claims of a Stytch session JWT of `user` in `project` issued at `now`, with a
    /// password and a TOTP factor: what the benchmarks verify.
    pub fn session_claims(project: &str, user: &str, now: i64) -> serde_json::Value {
        serde_json::json!({
            "aud": [project], "iss": format!("stytch.com/{project}"), "sub": user,
            "iat": now, "nbf": now, "exp": now + 3600,
            "https://stytch.com/session": {
                "id": "session-test-bench", "started_at": "2026-12-01T09:00:00Z",
                "last_accessed_at": "2026-12-01T09:00:00Z", "expires_at": "2026-12-31T09:00:00Z",
                "attributes": {"ip_address": "", "user_agent": ""}, "roles": ["stytch_user"],
                "authentication_factors": [
                    {"type": "password", "delivery_method": "knowledge", "last_authenticated_at": "2026-12-01T09:00:00Z"},
                    {"type": "totp", "delivery_method": "authenticator_app", "last_authenticated_at": "2026-12-01T09:01:00Z",
                     "authenticator_app_factor": {"totp_id": "totp-test-bench"}}]
            }
        })
    }

    /// An RSA-2048 key pair with a `kid`.
    pub struct Signer {
        key: RsaKeyPair,
        /// The key id in JWT headers and the JWKS.
        pub kid: String,
    }

    impl Signer {
        /// Generates a fresh key pair.
        pub fn generate(kid: impl Into<String>) -> Self {
            let key = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048)
                .unwrap_or_else(|e| panic!("RSA key generation failed: {e}"));
            Self {
                key,
                kid: kid.into(),
            }
        }

        /// The public key as a JWK with every field Stytch serves.
        pub fn jwk(&self) -> Jwk {
            let public = self.key.public_key();
            let components = aws_lc_rs::rsa::PublicKeyComponents::<Vec<u8>>::from(public);
            Jwk {
                kty: "RSA".into(),
                kid: self.kid.clone(),
                alg: Some("RS256".into()),
                key_use: Some("sig".into()),
                n: URL_SAFE_NO_PAD.encode(&components.n),
                e: URL_SAFE_NO_PAD.encode(&components.e),
            }
        }

        /// The public key, DER-encoded (PKCS#1 `RSAPublicKey`), for raw signature checks.
        pub fn public_key_der(&self) -> Vec<u8> {
            self.key.public_key().as_ref().to_vec()
        }

        /// Signs `header` and `claims` (both JSON objects) as a compact RS256 JWS.
        pub fn sign_raw(&self, header: &serde_json::Value, claims: &serde_json::Value) -> String {
            self.sign_raw_with(&RSA_PKCS1_SHA256, header, claims)
        }

        /// Signs `header` and `claims` with another RSA scheme of the same key (RS384, RS512,
        /// PS256, ...): what an algorithm-confusion attempt looks like.
        pub fn sign_raw_with(
            &self,
            scheme: &'static dyn aws_lc_rs::signature::RsaEncoding,
            header: &serde_json::Value,
            claims: &serde_json::Value,
        ) -> String {
            let signing_input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let mut signature = vec![0; self.key.public_modulus_len()];
            self.key
                .sign(
                    scheme,
                    &SystemRandom::new(),
                    signing_input.as_bytes(),
                    &mut signature,
                )
                .unwrap_or_else(|e| panic!("RSA signing failed: {e}"));
            format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
        }

        /// A verifier of `project`'s session JWTs that knows this signer's key alone, with the
        /// functions' defaults (10 s leeway).
        pub fn verifier(&self, project: &str) -> crate::jwt::SessionVerifier {
            crate::jwt::SessionVerifier::new(
                Box::new(StaticJwks(vec![self.jwk()])),
                crate::jwt::VerifierSettings {
                    project_id: project.into(),
                    extra_issuers: Vec::new(),
                    leeway: std::time::Duration::from_secs(10),
                    refetch_interval: std::time::Duration::from_secs(30),
                    ttl: std::time::Duration::from_secs(3600),
                },
            )
        }

        /// Signs `claims` with Stytch's header (`alg` RS256, `typ` JWT, our `kid`).
        pub fn sign(&self, claims: &serde_json::Value) -> String {
            self.sign_raw(
                &serde_json::json!({"alg": "RS256", "kid": self.kid, "typ": "JWT"}),
                claims,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::signer::Signer;
    use super::*;
    use serde_json::{Value, json};
    use std::sync::Mutex as StdMutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const PID: &str = "project-test-11111111-1111-1111-1111-111111111111";

    /// `jsonwebtoken` checks `exp` and `nbf` against the system clock, so the tests use it too.
    fn now() -> i64 {
        crate::http::now_epoch()
    }

    fn rfc3339(at: i64) -> String {
        OffsetDateTime::from_unix_timestamp(at)
            .unwrap()
            .format(&Rfc3339)
            .unwrap()
    }

    struct Keys {
        served: StdMutex<Vec<Jwk>>,
        fetches: AtomicUsize,
        fail: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl JwksSource for Arc<Keys> {
        async fn fetch_jwks(&self) -> Result<Vec<Jwk>, String> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            if self.fail.load(Ordering::SeqCst) {
                return Err("stytch down".into());
            }
            Ok(self.served.lock().unwrap().clone())
        }
    }

    fn setup(signers: &[&Signer]) -> (SessionVerifier, Arc<Keys>) {
        let keys = Arc::new(Keys {
            served: StdMutex::new(signers.iter().map(|s| s.jwk()).collect()),
            fetches: AtomicUsize::new(0),
            fail: Default::default(),
        });
        let settings = VerifierSettings {
            project_id: PID.into(),
            extra_issuers: vec![],
            leeway: Duration::from_secs(10),
            refetch_interval: Duration::from_secs(30),
            ttl: Duration::from_secs(3600),
        };
        (SessionVerifier::new(Box::new(keys.clone()), settings), keys)
    }

    fn claims() -> Value {
        let now = now();
        json!({
            "aud": [PID], "iss": format!("stytch.com/{PID}"), "sub": "user-test-1",
            "iat": now, "nbf": now, "exp": now + 300,
            SESSION_CLAIM: {
                "id": "session-test-1", "started_at": rfc3339(now),
                "last_accessed_at": rfc3339(now), "expires_at": rfc3339(now + 30 * 86_400),
                "attributes": {"ip_address": "", "user_agent": ""}, "roles": ["stytch_user"],
                "authentication_factors": [
                    {"type": "password", "delivery_method": "knowledge", "last_authenticated_at": rfc3339(now)},
                    {"type": "totp", "delivery_method": "authenticator_app", "last_authenticated_at": rfc3339(now - 100),
                     "authenticator_app_factor": {"totp_id": "totp-test-1"}}
                ]
            }
        })
    }

    fn with(mut c: Value, key: &str, value: Value) -> Value {
        if value.is_null() {
            c.as_object_mut().unwrap().remove(key);
        } else {
            c[key] = value;
        }
        c
    }

    /// docs/stytch-api.md §2: issuers as Stytch's SDKs accept them. Configured issuers and the
    /// base URL count without their trailing slash; a refused issuer is remembered once.
    #[tokio::test]
    async fn issuers_are_compared_without_trailing_slashes_and_a_refused_one_is_noted_once() {
        assert_eq!(
            accepted_issuers(
                PID,
                &[
                    "https://auth.example.com/".into(),
                    " https://test.stytch.com/ ".into(),
                    "https://auth.example.com".into(),
                    String::new(),
                ]
            ),
            [
                format!("stytch.com/{PID}"),
                "https://auth.example.com".into(),
                "https://test.stytch.com".into()
            ]
        );
        let s = Signer::generate("jwk-test-iss");
        let keys = Arc::new(Keys {
            served: StdMutex::new(vec![s.jwk()]),
            fetches: AtomicUsize::new(0),
            fail: Default::default(),
        });
        let settings = VerifierSettings {
            project_id: PID.into(),
            extra_issuers: vec!["https://auth.example.com/".into()],
            leeway: Duration::from_secs(10),
            refetch_interval: Duration::from_secs(30),
            ttl: Duration::from_secs(3600),
        };
        let v = SessionVerifier::new(Box::new(keys), settings);
        let custom = with(claims(), "iss", json!("https://auth.example.com"));
        assert!(
            v.verify(&s.sign(&custom), now()).await.is_ok(),
            "a custom domain"
        );
        let other = with(claims(), "iss", json!("https://evil.example.com"));
        for _ in 0..3 {
            assert_eq!(
                v.verify(&s.sign(&other), now()).await.unwrap_err(),
                JwtError::Invalid("wrong issuer")
            );
        }
        let seen = v.refused_issuers.lock().unwrap().clone();
        assert_eq!(seen, ["https://evil.example.com".to_owned()].into());
    }

    #[tokio::test]
    async fn a_stytch_session_jwt_verifies_and_carries_its_factors() {
        let s = Signer::generate("jwk-test-1");
        let (v, keys) = setup(&[&s]);
        let session = v.verify(&s.sign(&claims()), now()).await.unwrap();
        assert_eq!(
            (session.user_id.as_str(), session.session_id.as_str()),
            ("user-test-1", "session-test-1")
        );
        let fresh = |seconds| Freshness {
            max_age: Duration::from_secs(seconds),
            leeway: Duration::ZERO,
            now: now(),
        };
        let totp = BTreeSet::from([StepUpFactor::Totp]);
        assert!(session.has_step_up(&totp, fresh(300)));
        assert!(!session.has_step_up(&totp, fresh(60)));
        assert!(!session.has_step_up(&BTreeSet::from([StepUpFactor::Otp]), fresh(300)));
        assert_eq!(session.minutes_left(now()), Some(30 * 24 * 60));
        // The JWKS is fetched once and cached.
        v.verify(&s.sign(&claims()), now()).await.unwrap();
        assert_eq!(keys.fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn wrong_claims_are_refused() {
        let s = Signer::generate("jwk-test-1");
        let (v, _) = setup(&[&s]);
        let cases: Vec<(&str, Value, JwtError)> = vec![
            (
                "expired",
                with(claims(), "exp", json!(now() - 20)),
                JwtError::Expired,
            ),
            (
                "nbf ahead",
                with(claims(), "nbf", json!(now() + 20)),
                JwtError::NotYetValid,
            ),
            (
                "iat ahead",
                with(claims(), "iat", json!(now() + 20)),
                JwtError::NotYetValid,
            ),
            (
                "other issuer",
                with(claims(), "iss", json!("stytch.com/project-test-2")),
                JwtError::Invalid("wrong issuer"),
            ),
            (
                "https issuer",
                with(claims(), "iss", json!(format!("https://stytch.com/{PID}"))),
                JwtError::Invalid("wrong issuer"),
            ),
            (
                "other audience",
                with(claims(), "aud", json!(["project-test-2"])),
                JwtError::Invalid("wrong audience"),
            ),
            (
                "no audience",
                with(claims(), "aud", Value::Null),
                JwtError::Invalid("missing claim"),
            ),
            (
                "no sub",
                with(claims(), "sub", Value::Null),
                JwtError::Invalid("missing claim"),
            ),
            (
                "no session (M2M token)",
                with(claims(), SESSION_CLAIM, Value::Null),
                JwtError::Invalid("malformed token"),
            ),
            (
                "no iat",
                with(claims(), "iat", Value::Null),
                JwtError::Invalid("malformed token"),
            ),
        ];
        for (name, c, expected) in cases {
            assert_eq!(
                v.verify(&s.sign(&c), now()).await.unwrap_err(),
                expected,
                "{name}"
            );
        }
        // Within the leeway both ways.
        assert!(
            v.verify(&s.sign(&with(claims(), "exp", json!(now() - 8))), now())
                .await
                .is_ok()
        );
        assert!(
            v.verify(&s.sign(&with(claims(), "nbf", json!(now() + 8))), now())
                .await
                .is_ok()
        );
        let bare_aud = with(claims(), "aud", json!(PID));
        assert!(
            v.verify(&s.sign(&bare_aud), now()).await.is_ok(),
            "a string aud equal to the project is fine"
        );
    }

    #[tokio::test]
    async fn forged_headers_and_signatures_are_refused() {
        use base64::Engine;
        let b64 =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let s = Signer::generate("jwk-test-1");
        let stranger = Signer::generate("jwk-test-1");
        let (v, _) = setup(&[&s]);
        let good = s.sign(&claims());
        let (head, rest) = good.split_once('.').unwrap();
        let (payload, signature) = rest.split_once('.').unwrap();

        let none = format!(
            "{}.{payload}.",
            b64(&json!({"alg": "none", "typ": "JWT", "kid": "jwk-test-1"}))
        );
        assert_eq!(
            v.verify(&none, now()).await.unwrap_err(),
            JwtError::Invalid("algorithm must be RS256")
        );
        let hs = format!(
            "{}.{payload}.{signature}",
            b64(&json!({"alg": "HS256", "typ": "JWT", "kid": "jwk-test-1"}))
        );
        assert_eq!(
            v.verify(&hs, now()).await.unwrap_err(),
            JwtError::Invalid("algorithm must be RS256")
        );
        let no_typ = s.sign_raw(&json!({"alg": "RS256", "kid": "jwk-test-1"}), &claims());
        assert_eq!(
            v.verify(&no_typ, now()).await.unwrap_err(),
            JwtError::Invalid("typ must be JWT")
        );
        let crit = s.sign_raw(
            &json!({"alg": "RS256", "typ": "JWT", "kid": "jwk-test-1", "crit": ["exp"]}),
            &claims(),
        );
        assert_eq!(
            v.verify(&crit, now()).await.unwrap_err(),
            JwtError::Invalid("critical header extensions are not supported")
        );
        let no_kid = s.sign_raw(&json!({"alg": "RS256", "typ": "JWT"}), &claims());
        assert_eq!(
            v.verify(&no_kid, now()).await.unwrap_err(),
            JwtError::Invalid("missing kid")
        );
        // Same kid, other key: signature fails.
        assert_eq!(
            v.verify(&stranger.sign(&claims()), now())
                .await
                .unwrap_err(),
            JwtError::BadSignature
        );
        // Tampered payload keeps the old signature.
        let tampered = format!(
            "{head}.{}.{signature}",
            b64(&with(claims(), "sub", json!("user-test-2")))
        );
        assert_eq!(
            v.verify(&tampered, now()).await.unwrap_err(),
            JwtError::BadSignature
        );
        let stripped = format!("{head}.{payload}.");
        assert_eq!(
            v.verify(&stripped, now()).await.unwrap_err(),
            JwtError::BadSignature
        );
        for junk in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.!!.!!",
            &"x".repeat(MAX_TOKEN_BYTES + 1),
        ] {
            assert!(
                matches!(
                    v.verify(junk, now()).await.unwrap_err(),
                    JwtError::Invalid(_)
                ),
                "{junk:.20}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_first_fetch_is_retried_after_a_second_not_an_interval() {
        let key = Signer::generate("jwk-test-1");
        let (v, keys) = setup(&[&key]);
        keys.fail.store(true, Ordering::SeqCst);
        for _ in 0..5 {
            assert!(matches!(
                v.verify(&key.sign(&claims()), now()).await.unwrap_err(),
                JwtError::KeysUnavailable(_)
            ));
        }
        assert_eq!(keys.fetches.load(Ordering::SeqCst), 1, "one fetch a second");
        keys.fail.store(false, Ordering::SeqCst);
        tokio::time::advance(Duration::from_millis(1100)).await;
        v.verify(&key.sign(&claims()), now()).await.unwrap();
        assert_eq!(keys.fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_kids_refetch_at_most_once_per_interval_and_rotation_works() {
        let old = Signer::generate("jwk-test-old");
        let new = Signer::generate("jwk-test-new");
        let (v, keys) = setup(&[&old]);
        v.verify(&old.sign(&claims()), now()).await.unwrap();
        // Rotation: the new key appears in the JWKS; a token with it triggers one refetch.
        keys.served.lock().unwrap().push(new.jwk());
        // Within the refetch interval of the first fetch, the new kid is not looked up yet.
        assert_eq!(
            v.verify(&new.sign(&claims()), now()).await.unwrap_err(),
            JwtError::UnknownKey
        );
        tokio::time::advance(Duration::from_secs(31)).await;
        v.verify(&new.sign(&claims()), now()).await.unwrap();
        assert_eq!(keys.fetches.load(Ordering::SeqCst), 2);
        // Floods of unknown kids cause no further fetches within the interval.
        let bogus = Signer::generate("jwk-test-bogus");
        for _ in 0..20 {
            assert_eq!(
                v.verify(&bogus.sign(&claims()), now()).await.unwrap_err(),
                JwtError::UnknownKey
            );
        }
        assert_eq!(keys.fetches.load(Ordering::SeqCst), 2);
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(
            v.verify(&bogus.sign(&claims()), now()).await.unwrap_err(),
            JwtError::UnknownKey
        );
        assert_eq!(keys.fetches.load(Ordering::SeqCst), 3);
        v.verify(&old.sign(&claims()), now()).await.unwrap();
        // Stytch down after the TTL: cached keys keep working; an unknown kid is "unavailable".
        keys.fail.store(true, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(3601)).await;
        v.verify(&old.sign(&claims()), now()).await.unwrap();
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(matches!(
            v.verify(&bogus.sign(&claims()), now()).await.unwrap_err(),
            JwtError::KeysUnavailable(_)
        ));
    }
}
