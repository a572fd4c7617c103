//! Arbitrary bytes as a bearer token, or edits of a valid token: never a panic, and nothing but
//! the untouched valid token verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let state = &*common::STATE;
    let token = match data.split_first() {
        // Splice the rest into the valid token at a chosen place.
        Some((&0, rest)) if !rest.is_empty() => {
            let valid = state.valid.as_bytes();
            let at = usize::from(rest[0]) * valid.len() / 256;
            let mut t = valid[..at].to_vec();
            t.extend_from_slice(&rest[1..]);
            t.extend_from_slice(&valid[(at + rest.len() - 1).min(valid.len())..]);
            String::from_utf8_lossy(&t).into_owned()
        }
        _ => String::from_utf8_lossy(data).into_owned(),
    };
    let verified = state
        .runtime
        .block_on(state.verifier.verify(&token, common::NOW));
    if verified.is_ok() {
        assert_eq!(token, state.valid, "only the genuine token verifies");
    }
});
