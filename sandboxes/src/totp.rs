//! RFC 6238 TOTP (HMAC-SHA1, 6 digits, 30 s steps), base32 (RFC 4648), recovery codes and the
//! `otpauth://` URI an authenticator app scans: the codes an authenticator app computes from the
//! secret `POST /mfa/totp` answers. The Stytch sandbox checks them, and the operator's smoke walk,
//! the demo and the tests compute them; nothing deployed does.

use aws_lc_rs::hmac;

/// Seconds per step.
pub const STEP: i64 = 30;

/// Base32 without padding.
pub fn base32_encode(data: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(data)
}

/// Base32 decoding (case-insensitive, padding and spaces ignored).
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let canonical: String = text
        .chars()
        .filter(|c| *c != '=' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    data_encoding::BASE32_NOPAD
        .decode(canonical.as_bytes())
        .ok()
}

/// The HOTP value of `counter` with `digits` digits (RFC 4226 dynamic truncation).
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> u32 {
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key),
        &counter.to_be_bytes(),
    );
    let h = tag.as_ref();
    let offset = (h[h.len() - 1] & 0x0f) as usize;
    let binary = (u32::from(h[offset]) & 0x7f) << 24
        | u32::from(h[offset + 1]) << 16
        | u32::from(h[offset + 2]) << 8
        | u32::from(h[offset + 3]);
    binary % 10u32.pow(digits)
}

/// The 6-digit TOTP code at `unix_time`.
pub fn code_at(key: &[u8], unix_time: i64) -> String {
    format!("{:06}", hotp(key, (unix_time / STEP) as u64, 6))
}

/// The step counter of `code` within ±1 step of `unix_time`, if it matches one.
pub fn matching_step(key: &[u8], code: &str, unix_time: i64) -> Option<u64> {
    let now = unix_time / STEP;
    [now, now - 1, now + 1]
        .into_iter()
        .filter(|step| *step >= 0)
        .map(|step| step as u64)
        .find(|step| format!("{:06}", hotp(key, *step, 6)) == code)
}

/// Ten recovery codes `xxxx-xxxx-xxxx`, lowercase alphanumeric.
pub fn recovery_codes() -> Vec<String> {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..10)
        .map(|_| {
            let mut b = [0u8; 12];
            let _ = aws_lc_rs::rand::fill(&mut b);
            let s: String = b
                .iter()
                .map(|x| CHARS[*x as usize % CHARS.len()] as char)
                .collect();
            format!("{}-{}-{}", &s[0..4], &s[4..8], &s[8..12])
        })
        .collect()
}

/// A fresh 160-bit secret in base32 (32 characters, like Stytch's).
pub fn new_secret() -> String {
    let mut b = [0u8; 20];
    let _ = aws_lc_rs::rand::fill(&mut b);
    base32_encode(&b)
}

/// The Key Uri Format authenticator apps read. Stytch does not document its exact URI (open
/// question 7); the secret and the standard parameters are what matter to the apps.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &str) -> String {
    let enc = |s: &str| crate::stytch::percent_encode(s);
    format!(
        "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits=6&period=30",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_secrets_are_160_bits_of_base32_and_recovery_codes_ten() {
        let secret = new_secret();
        assert_eq!(secret.len(), 32);
        assert_eq!(base32_decode(&secret).unwrap().len(), 20);
        let codes = recovery_codes();
        assert_eq!(codes.len(), 10);
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 14 && c.chars().filter(|c| *c == '-').count() == 2)
        );
    }

    #[test]
    fn rfc_6238_sha1_vectors() {
        // RFC 6238 Appendix B (SHA-1, 8 digits), seed "12345678901234567890".
        let key = b"12345678901234567890";
        for (t, expected) in [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(key, (t / STEP) as u64, 8), expected, "t={t}");
        }
        assert_eq!(code_at(key, 59), "287082");
    }

    #[test]
    fn rfc_4226_hotp_vectors() {
        let key = b"12345678901234567890";
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, value) in expected.iter().enumerate() {
            assert_eq!(hotp(key, counter as u64, 6), *value);
        }
    }

    #[test]
    fn base32_round_trips_and_matches_rfc_4648() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_decode("MZXW6YTBOI======").unwrap(), b"foobar");
        assert_eq!(base32_decode("mzxw6ytboi").unwrap(), b"foobar");
        assert!(base32_decode("MZ1").is_none());
        // The RFC 6238 seed as an authenticator app holds it.
        let key = base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
        assert_eq!(code_at(&key, 1111111109), "081804");
        assert_eq!(code_at(&key, 2000000000), "279037");
    }

    #[test]
    fn the_window_is_one_step_either_way() {
        let key = b"12345678901234567890";
        let t = 1_700_000_000;
        assert!(matching_step(key, &code_at(key, t - 30), t).is_some());
        assert!(matching_step(key, &code_at(key, t + 30), t).is_some());
        assert!(matching_step(key, &code_at(key, t - 60), t).is_none());
        assert!(matching_step(key, &code_at(key, t + 60), t).is_none());
    }
}
