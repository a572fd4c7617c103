//! Stytch session JWT verification next to the raw RS256 signature check of the same token:
//! the verifier's own work (header and claims parsing, the checks, the key lookup) should cost
//! little beyond the signature. Run with `cargo bench -p shared --features signer --bench jwt`.

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine;
use criterion::{Criterion, criterion_group, criterion_main};
use shared::jwt::signer::{Signer, session_claims};

const PID: &str = "project-test-00000000-0000-0000-0000-000000000000";

fn bench(c: &mut Criterion) {
    let signer = Signer::generate("jwk-test-bench");
    let now = shared::http::now_epoch();
    let token = signer.sign(&session_claims(PID, "user-test-bench", now));
    let verifier = signer.verifier(PID);
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
    let parsed = public.parse().expect("parses");
    c.bench_function("rs256_parsed", |b| {
        b.iter(|| {
            parsed
                .verify_sig(std::hint::black_box(signing_input.as_bytes()), &signature)
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
