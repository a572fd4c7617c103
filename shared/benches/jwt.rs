//! Stytch session JWT verification next to the raw RS256 signature check of the same token:
//! the verifier's own work (header and claims parsing, the checks, the key lookup) should cost
//! little beyond the signature. Run with `cargo bench -p shared --features signer --bench jwt`.

use std::time::Duration;

use async_trait::async_trait;
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine;
use criterion::{Criterion, criterion_group, criterion_main};
use shared::jwt::signer::Signer;
use shared::jwt::{JwksSource, SessionVerifier, VerifierSettings};
use shared::stytch::Jwk;

const PID: &str = "project-test-00000000-0000-0000-0000-000000000000";

struct Keys(Vec<Jwk>);

#[async_trait]
impl JwksSource for Keys {
    async fn fetch_jwks(&self) -> Result<Vec<Jwk>, String> {
        Ok(self.0.clone())
    }
}

fn bench(c: &mut Criterion) {
    let signer = Signer::generate("jwk-test-bench");
    let now = shared::http::now_epoch();
    let token = signer.sign(&serde_json::json!({
        "aud": [PID], "iss": format!("stytch.com/{PID}"), "sub": "user-test-bench",
        "iat": now, "nbf": now, "exp": now + 300,
        "https://stytch.com/session": {
            "id": "session-test-bench", "started_at": "2026-11-25T09:00:00Z", "last_accessed_at": "2026-11-25T09:00:00Z",
            "expires_at": "2026-12-25T09:00:00Z", "attributes": {"ip_address": "", "user_agent": ""}, "roles": ["stytch_user"],
            "authentication_factors": [
                {"type": "password", "delivery_method": "knowledge", "last_authenticated_at": "2026-11-25T09:00:00Z"},
                {"type": "totp", "delivery_method": "authenticator_app", "last_authenticated_at": "2026-11-25T09:01:00Z",
                 "authenticator_app_factor": {"totp_id": "totp-test-bench"}}]
        }
    }));
    let verifier = SessionVerifier::new(
        Box::new(Keys(vec![signer.jwk()])),
        VerifierSettings {
            project_id: PID.into(),
            extra_issuers: vec![],
            leeway: Duration::from_secs(10),
            refetch_interval: Duration::from_secs(30),
            ttl: Duration::from_secs(3600),
        },
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime
        .block_on(verifier.verify(&token, now))
        .expect("the token verifies");

    let (signing_input, signature) = token.rsplit_once('.').expect("a JWS");
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature)
        .expect("base64");
    let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, signer.public_key_der());

    c.bench_function("jwt_verify", |b| {
        b.iter(|| {
            runtime
                .block_on(verifier.verify(std::hint::black_box(&token), now))
                .expect("verifies")
        })
    });
    c.bench_function("rs256_raw", |b| {
        b.iter(|| {
            public
                .verify(std::hint::black_box(signing_input.as_bytes()), &signature)
                .expect("verifies")
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
