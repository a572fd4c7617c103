//! Webhook signature verification over the raw body, in constant time.
//!
//! - Stytch delivers through Svix: `svix-id`, `svix-timestamp`, `svix-signature` (or the
//!   white-label `webhook-*` names); HMAC-SHA256 over `"{id}.{timestamp}.{body}"` keyed with the
//!   base64-decoded `whsec_` secret; any `v1,` entry may match; 5-minute tolerance either way.
//! - Unit signs with `X-Unit-Signature` = base64(HMAC-SHA1(token, body)).
//!
//! HMACs come from aws-lc-rs (already in the binary through rustls), whose `hmac::verify` compares
//! in constant time, so we need neither the `svix` client crate nor RustCrypto's MACs.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;

/// Svix's replay window, either side of now (`WEBHOOK_TOLERANCE_IN_SECONDS` in the svix library).
pub const SVIX_TOLERANCE_SECONDS: i64 = 5 * 60;

/// Why a webhook was refused. Every variant means 401 and nothing stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// A required signature header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header is present but unreadable.
    #[error("malformed header {0}")]
    MalformedHeader(&'static str),
    /// The timestamp is outside the tolerance window.
    #[error("timestamp outside the {SVIX_TOLERANCE_SECONDS} s tolerance")]
    StaleTimestamp,
    /// No signature matches.
    #[error("no matching signature")]
    BadSignature,
}

/// The decoded Svix signing key of an endpoint.
#[derive(Clone)]
pub struct SvixSecret(hmac::Key);

impl std::fmt::Debug for SvixSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SvixSecret([redacted])")
    }
}

impl SvixSecret {
    /// Parses `whsec_<base64>` (the prefix is optional, as in the svix libraries).
    pub fn parse(secret: &str) -> Result<Self, String> {
        let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| "expected whsec_ followed by base64".to_owned())?;
        if key.is_empty() {
            return Err("the key is empty".into());
        }
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, &key)))
    }

    /// The `v1,<base64>` signature of a message (what a sender puts in `svix-signature`).
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = hmac::sign(&self.0, &svix_signed_content(msg_id, timestamp, body));
        format!("v1,{}", STANDARD.encode(tag.as_ref()))
    }
}

/// A verified Svix delivery: its stable message id and timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvixDelivery {
    /// `svix-id`: the same on every retry of one message; the idempotency key.
    pub id: String,
    /// `svix-timestamp` in epoch seconds.
    pub timestamp: i64,
}

fn svix_signed_content(msg_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(msg_id.len() + body.len() + 24);
    content.extend_from_slice(msg_id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp.to_string().as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

fn header<'a>(headers: &'a HeaderMap, names: [&'static str; 2]) -> Result<&'a str, WebhookError> {
    let value = headers
        .get(names[0])
        .or_else(|| headers.get(names[1]))
        .ok_or(WebhookError::MissingHeader(names[0]))?;
    value
        .to_str()
        .map_err(|_| WebhookError::MalformedHeader(names[0]))
}

/// Verifies a Svix-signed delivery at time `now` (epoch seconds).
pub fn verify_svix(
    secret: &SvixSecret,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<SvixDelivery, WebhookError> {
    let id = header(headers, ["svix-id", "webhook-id"])?;
    let timestamp = header(headers, ["svix-timestamp", "webhook-timestamp"])?;
    let signatures = header(headers, ["svix-signature", "webhook-signature"])?;
    if id.is_empty() || id.len() > 256 {
        return Err(WebhookError::MalformedHeader("svix-id"));
    }
    let timestamp: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| WebhookError::MalformedHeader("svix-timestamp"))?;
    // abs_diff: a timestamp near i64::MIN must not overflow the subtraction (found by fuzzing).
    if now.abs_diff(timestamp) > SVIX_TOLERANCE_SECONDS.unsigned_abs() {
        return Err(WebhookError::StaleTimestamp);
    }
    let content = svix_signed_content(id, timestamp, body);
    // Several space-separated entries (key rotation); others versions are skipped.
    let matched = signatures
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .any(|tag| hmac::verify(&secret.0, &content, &tag).is_ok());
    if !matched {
        return Err(WebhookError::BadSignature);
    }
    Ok(SvixDelivery {
        id: id.to_owned(),
        timestamp,
    })
}

/// Name of Unit's signature header.
pub const UNIT_SIGNATURE_HEADER: &str = "x-unit-signature";

/// The `X-Unit-Signature` value of a body (what Unit sends).
pub fn unit_signature(token: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, token.as_bytes());
    STANDARD.encode(hmac::sign(&key, body).as_ref())
}

/// Verifies Unit's `X-Unit-Signature` over the raw body.
pub fn verify_unit(token: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), WebhookError> {
    let value = headers
        .get(UNIT_SIGNATURE_HEADER)
        .ok_or(WebhookError::MissingHeader("x-unit-signature"))?;
    let tag = value
        .to_str()
        .ok()
        .and_then(|v| STANDARD.decode(v.trim()).ok())
        .ok_or(WebhookError::MalformedHeader("x-unit-signature"))?;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, token.as_bytes());
    hmac::verify(&key, body, &tag).map_err(|_| WebhookError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    // Test vector of docs/stytch-api.md §5 (from Svix's documentation).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn svix_headers(sig: &str) -> HeaderMap {
        headers(&[
            ("svix-id", ID),
            ("svix-timestamp", &TS.to_string()),
            ("svix-signature", sig),
        ])
    }

    #[test]
    fn the_svix_test_vector_verifies_and_signs() {
        let secret = SvixSecret::parse(SECRET).unwrap();
        assert_eq!(secret.sign(ID, TS, BODY), SIG);
        let d = verify_svix(&secret, &svix_headers(SIG), BODY, TS).unwrap();
        assert_eq!(
            d,
            SvixDelivery {
                id: ID.into(),
                timestamp: TS
            }
        );
    }

    #[test]
    fn one_valid_signature_among_several_is_enough() {
        let secret = SvixSecret::parse(SECRET).unwrap();
        let sigs = format!("v1,AAAA v2,whatever v1,bm90IGl0 {SIG}");
        assert!(verify_svix(&secret, &svix_headers(&sigs), BODY, TS).is_ok());
        let aliased = headers(&[
            ("webhook-id", ID),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", SIG),
        ]);
        assert!(verify_svix(&secret, &aliased, BODY, TS).is_ok());
    }

    #[test]
    fn tampering_time_and_headers_are_refused() {
        let secret = SvixSecret::parse(SECRET).unwrap();
        let h = svix_headers(SIG);
        assert_eq!(
            verify_svix(&secret, &h, br#"{"test": 2432232315}"#, TS),
            Err(WebhookError::BadSignature)
        );
        assert!(verify_svix(&secret, &h, BODY, TS + 300).is_ok());
        assert!(verify_svix(&secret, &h, BODY, TS - 300).is_ok());
        assert_eq!(
            verify_svix(&secret, &h, BODY, TS + 301),
            Err(WebhookError::StaleTimestamp)
        );
        assert_eq!(
            verify_svix(&secret, &h, BODY, TS - 301),
            Err(WebhookError::StaleTimestamp)
        );
        let other = SvixSecret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert_eq!(
            verify_svix(&other, &h, BODY, TS),
            Err(WebhookError::BadSignature)
        );
        // Timestamps at the ends of i64 are stale, not an overflow (a fuzzing find).
        for extreme in [i64::MIN, i64::MIN + 1, -9_223_372_036_851_775_808, i64::MAX] {
            let mut h = svix_headers(SIG);
            h.insert(
                "svix-timestamp",
                HeaderValue::from_str(&extreme.to_string()).unwrap(),
            );
            assert_eq!(
                verify_svix(&secret, &h, BODY, TS),
                Err(WebhookError::StaleTimestamp),
                "{extreme}"
            );
        }
        let truncated = &SIG[..SIG.len() - 4];
        assert_eq!(
            verify_svix(&secret, &svix_headers(truncated), BODY, TS),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_svix(&secret, &svix_headers("g0hM9SsE"), BODY, TS),
            Err(WebhookError::BadSignature)
        );
        let no_id = headers(&[("svix-timestamp", "1614265330"), ("svix-signature", SIG)]);
        assert_eq!(
            verify_svix(&secret, &no_id, BODY, TS),
            Err(WebhookError::MissingHeader("svix-id"))
        );
        let bad_ts = headers(&[
            ("svix-id", ID),
            ("svix-timestamp", "soon"),
            ("svix-signature", SIG),
        ]);
        assert_eq!(
            verify_svix(&secret, &bad_ts, BODY, TS),
            Err(WebhookError::MalformedHeader("svix-timestamp"))
        );
        // Another message id with the same signature must not verify.
        let replayed = headers(&[
            ("svix-id", "msg_other"),
            ("svix-timestamp", "1614265330"),
            ("svix-signature", SIG),
        ]);
        assert_eq!(
            verify_svix(&secret, &replayed, BODY, TS),
            Err(WebhookError::BadSignature)
        );
    }

    #[test]
    fn secrets_must_be_base64() {
        assert!(SvixSecret::parse("whsec_***").is_err());
        assert!(SvixSecret::parse("whsec_").is_err());
        assert!(SvixSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
    }

    // Test vector of docs/unit-api.md §7 (unit-node-sdk tests/webhooks.spec.ts).
    const UNIT_TOKEN: &str = "OB2HL5E3B4HJ7IVXRNL4YQKYIQIVJK36ZZLPZEFWZVSDSC7LLFJQ====";
    const UNIT_BODY: &str = r#"{"data":[{"id":"46306092","type":"application.approved","attributes":{"createdAt":"2025-08-05T06:48:38.957Z","tags":{"key":"another-tag","test":"webhook-tag","number":"111"}},"relationships":{"application":{"data":{"id":"3895367","type":"individualApplication"}},"customer":{"data":{"id":"3310133","type":"individualCustomer"}}}}]}"#;
    const UNIT_SIG: &str = "UUNz8ch1Ovjg+ijXUEwlAlWEktU=";

    #[test]
    fn the_unit_test_vector_verifies_and_signs() {
        assert_eq!(unit_signature(UNIT_TOKEN, UNIT_BODY.as_bytes()), UNIT_SIG);
        let h = headers(&[("x-unit-signature", UNIT_SIG)]);
        assert_eq!(verify_unit(UNIT_TOKEN, &h, UNIT_BODY.as_bytes()), Ok(()));
    }

    #[test]
    fn unit_signatures_refuse_tampering() {
        let h = headers(&[("x-unit-signature", UNIT_SIG)]);
        let tampered = UNIT_BODY.replace("3310133", "3310134");
        assert_eq!(
            verify_unit(UNIT_TOKEN, &h, tampered.as_bytes()),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_unit("MyToken", &h, UNIT_BODY.as_bytes()),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_unit(UNIT_TOKEN, &HeaderMap::new(), UNIT_BODY.as_bytes()),
            Err(WebhookError::MissingHeader("x-unit-signature"))
        );
        let garbage = headers(&[("x-unit-signature", "%%%")]);
        assert_eq!(
            verify_unit(UNIT_TOKEN, &garbage, UNIT_BODY.as_bytes()),
            Err(WebhookError::MalformedHeader("x-unit-signature"))
        );
        // A hex digest (seen in third-party code) is not Unit's format.
        let hex = headers(&[("x-unit-signature", "51437 3f1c8")]);
        assert!(verify_unit(UNIT_TOKEN, &hex, UNIT_BODY.as_bytes()).is_err());
    }
}
