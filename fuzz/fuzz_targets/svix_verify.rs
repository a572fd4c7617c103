//! A Svix delivery from arbitrary bytes (`svix-id`, `svix-timestamp` and `svix-signature` lines,
//! then the body): never a panic, and an accepted delivery carries the genuine signature of
//! exactly that id, timestamp and body, within the tolerance.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::webhook::{SVIX_TOLERANCE_SECONDS, SvixSecret, verify_svix};

const NOW: i64 = 1_764_000_000;

fuzz_target!(|data: &[u8]| {
    let secret =
        SvixSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("the test secret");
    let mut parts = data.splitn(4, |b| *b == b'\n');
    let (Some(id), Some(stamp), Some(signature)) = (parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let body = parts.next().unwrap_or_default();
    let mut headers = http::HeaderMap::new();
    for (name, value) in [
        ("svix-id", id),
        ("svix-timestamp", stamp),
        ("svix-signature", signature),
    ] {
        if let Ok(v) = http::HeaderValue::from_bytes(value) {
            headers.insert(name, v);
        }
    }
    if let Ok(delivery) = verify_svix(&secret, &headers, body, NOW) {
        assert!((NOW - delivery.timestamp).abs() <= SVIX_TOLERANCE_SECONDS);
        assert_eq!(
            delivery.id.as_bytes(),
            id.trim_ascii(),
            "the id is the header's"
        );
        let genuine = secret.sign(&delivery.id, delivery.timestamp, body);
        let listed = String::from_utf8_lossy(signature);
        assert!(
            listed.split(' ').any(|s| s.trim() == genuine),
            "accepted without the genuine signature"
        );
    }
});
