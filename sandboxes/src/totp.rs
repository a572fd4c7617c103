//! RFC 6238 TOTP (HMAC-SHA1, 6 digits, 30 s steps), base32 (RFC 4648), recovery codes and the
//! `otpauth://` URI an authenticator app scans.

pub use shared::totp::{STEP, base32_decode, base32_encode, code_at, hotp, matching_step};

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
}
