//! A Unit delivery from arbitrary bytes (the `X-Unit-Signature` line, then the body): never a
//! panic, and only the genuine signature of exactly that body is accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::webhook::{unit_signature, verify_unit};

const TOKEN: &str = "unit-webhook-token-fuzz";

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(2, |b| *b == b'\n');
    let signature = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_bytes(signature) {
        headers.insert("x-unit-signature", v);
    }
    if verify_unit(TOKEN, &headers, body).is_ok() {
        let sent = std::str::from_utf8(signature).expect("text");
        assert_eq!(
            sent.trim(),
            unit_signature(TOKEN, body),
            "accepted a signature that is not the genuine one"
        );
    }
});
