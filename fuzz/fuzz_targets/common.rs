//! A verifier with a fixed JWKS of one generated key, the way the functions build theirs.
#![allow(dead_code)] // shared by two targets, each using part of it

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use shared::jwt::signer::Signer;
use shared::jwt::{JwksSource, SessionVerifier, VerifierSettings};
use shared::stytch::Jwk;

pub const PROJECT: &str = "project-test-11111111-1111-1111-1111-111111111111";
/// The clock of the verifier's own `iat` check. `exp` and `nbf` are checked by jsonwebtoken
/// against the system clock, so the valid token's `exp` lies far beyond any run.
pub const NOW: i64 = 1_764_000_000;
const VALID_FOR: i64 = 100 * 365 * 86_400;

struct Fixed(Vec<Jwk>);

#[async_trait::async_trait]
impl JwksSource for Fixed {
    async fn fetch_jwks(&self) -> Result<Vec<Jwk>, String> {
        Ok(self.0.clone())
    }
}

pub struct State {
    pub runtime: tokio::runtime::Runtime,
    pub verifier: SessionVerifier,
    pub signer: Arc<Signer>,
    /// A token this verifier accepts.
    pub valid: String,
}

pub static STATE: LazyLock<State> = LazyLock::new(|| {
    let signer = Arc::new(Signer::generate("jwk-test-fuzz"));
    let verifier = SessionVerifier::new(
        Box::new(Fixed(vec![signer.jwk()])),
        VerifierSettings {
            project_id: PROJECT.into(),
            extra_issuers: Vec::new(),
            leeway: Duration::from_secs(30),
            refetch_interval: Duration::from_secs(30),
            ttl: Duration::from_secs(3600),
        },
    );
    let valid = signer.sign(&claims());
    State {
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime"),
        verifier,
        signer,
        valid,
    }
});

/// Stytch's session JWT claims.
pub fn claims() -> serde_json::Value {
    serde_json::json!({
        "aud": [PROJECT], "iss": format!("stytch.com/{PROJECT}"), "sub": "user-test-fuzz",
        "iat": NOW, "nbf": NOW, "exp": NOW + VALID_FOR,
        "https://stytch.com/session": {
            "id": "session-test-fuzz", "started_at": "2025-11-24T16:00:00Z",
            "last_accessed_at": "2025-11-24T16:00:00Z", "expires_at": "2025-12-24T16:00:00Z",
            "attributes": {"ip_address": "", "user_agent": ""}, "roles": ["stytch_user"],
            "authentication_factors": [{"type": "totp", "delivery_method": "authenticator_app",
                "last_authenticated_at": "2025-11-24T16:00:00Z", "authenticator_app_factor": {"totp_id": "totp-test-1"}}]
        }
    })
}
