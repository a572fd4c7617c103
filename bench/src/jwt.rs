//! JWT verification against the raw RS256 check of the same token: criterion's estimates, and
//! paired rounds in this process (the budget's verdict).

use std::path::Path;
use std::time::Instant;

use serde_json::Value;

use crate::measure::{Error, median};

/// Rounds and batch size of [`paired_jwt_ratio`].
pub(crate) const PAIRED_ROUNDS: usize = 41;
pub(crate) const PAIRED_BATCH: usize = 500;

/// Medians of [`paired_jwt_ratio`]'s rounds, µs per token.
pub(crate) struct Paired {
    pub(crate) verify: f64,
    pub(crate) raw: f64,
    /// The raw check with the key parsed once.
    pub(crate) parsed: f64,
    /// The median of the rounds' verify/raw ratios.
    pub(crate) ratio: f64,
}

/// The verifier's cost next to the raw RS256 check of the same token, and the same check with
/// the key parsed once, measured in alternating batches so that a drift of the machine's speed
/// touches all three alike.
pub(crate) fn paired_jwt_ratio() -> Result<Paired, Error> {
    use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    use shared::jwt::signer::{Signer, session_claims};
    const PID: &str = "project-test-00000000-0000-0000-0000-000000000000";
    let signer = Signer::generate("jwk-test-paired");
    let now = shared::http::now_epoch();
    let token = signer.sign(&session_claims(PID, "user-test-paired", now));
    let verifier = signer.verifier(PID);
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    runtime.block_on(verifier.verify(&token, now))?;
    let (signing_input, signature) = token.rsplit_once('.').ok_or("a JWS")?;
    let signature =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature)?;
    let der = signer.public_key_der();
    let message = || std::hint::black_box(signing_input.as_bytes());
    let parsed_key = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &der)
        .parse()
        .map_err(|e| format!("the public key does not parse: {e}"))?;
    // µs per call of `check` over one batch.
    let batch = |check: &dyn Fn() -> bool| {
        let started = Instant::now();
        for _ in 0..PAIRED_BATCH {
            std::hint::black_box(check());
        }
        started.elapsed().as_secs_f64() * 1e6 / PAIRED_BATCH as f64
    };
    let (mut verifies, mut raws, mut parseds, mut ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..PAIRED_ROUNDS {
        let v = batch(&|| {
            runtime
                .block_on(verifier.verify(std::hint::black_box(&token), now))
                .is_ok()
        });
        let r = batch(&|| {
            UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &der)
                .verify(message(), &signature)
                .is_ok()
        });
        parseds.push(batch(&|| {
            parsed_key.verify_sig(message(), &signature).is_ok()
        }));
        verifies.push(v);
        raws.push(r);
        ratios.push(v / r);
    }
    Ok(Paired {
        verify: median(verifies),
        raw: median(raws),
        parsed: median(parseds),
        ratio: median(ratios),
    })
}

/// Median times (ns) of criterion's `jwt_verify`, `rs256_raw` and `rs256_parsed` benchmarks, if
/// they ran.
pub(crate) fn jwt_estimates() -> Option<(f64, f64, f64)> {
    let read = |name: &str| -> Option<f64> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../target/criterion/{name}/new/estimates.json"));
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        v["median"]["point_estimate"].as_f64()
    };
    Some((
        read("jwt_verify")?,
        read("rs256_raw")?,
        read("rs256_parsed")?,
    ))
}
