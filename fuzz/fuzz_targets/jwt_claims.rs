//! Arbitrary claims JSON, validly signed: never a panic, and an accepted token really has the
//! project's issuer and audience, a subject, a Stytch session and an unexpired `exp`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(claims) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let state = &*common::STATE;
    let token = state.signer.sign(&claims);
    let Ok(session) = state
        .runtime
        .block_on(state.verifier.verify(&token, common::NOW))
    else {
        return;
    };
    assert_eq!(claims["sub"].as_str(), Some(session.user_id.as_str()));
    assert!(!session.user_id.is_empty());
    assert_eq!(claims["iss"], format!("stytch.com/{}", common::PROJECT));
    let aud = &claims["aud"];
    assert!(
        aud == common::PROJECT
            || aud
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == common::PROJECT))
    );
    assert!(
        claims["exp"]
            .as_i64()
            .is_some_and(|exp| exp + 30 > common::NOW)
    );
    assert!(claims["https://stytch.com/session"].is_object());
});
