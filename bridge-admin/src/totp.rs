//! RFC 6238 codes (SHA-1, 6 digits, 30 s steps), as an authenticator app computes them from the
//! secret `POST /mfa/totp` answers.

use aws_lc_rs::hmac;

/// Decodes RFC 4648 base32 (padding and case ignored).
fn base32_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.trim_end_matches('=').bytes() {
        let v = ALPHABET.iter().position(|&a| a == c.to_ascii_uppercase())? as u64;
        bits = (bits << 5) | v;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    Some(out)
}

/// The code of `secret` at `unix_time`.
pub fn code_at(secret: &str, unix_time: i64) -> Option<String> {
    let key = base32_decode(secret)?;
    let counter = (unix_time / 30) as u64;
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key),
        &counter.to_be_bytes(),
    );
    let tag = tag.as_ref();
    let offset = (tag[19] & 0x0f) as usize;
    let value = u32::from_be_bytes([
        tag[offset],
        tag[offset + 1],
        tag[offset + 2],
        tag[offset + 3],
    ]) & 0x7fff_ffff;
    Some(format!("{:06}", value % 1_000_000))
}

/// The current code of `secret`.
pub fn code_now(secret: &str) -> Option<String> {
    code_at(secret, time::OffsetDateTime::now_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vectors() {
        // RFC 6238 appendix B: the ASCII key "12345678901234567890", 8 digits there, the last
        // 6 here.
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(code_at(secret, 59).unwrap(), "287082");
        assert_eq!(code_at(secret, 1111111109).unwrap(), "081804");
        assert_eq!(code_at(secret, 2000000000).unwrap(), "279037");
        assert_eq!(code_at("not base32!", 59), None);
    }
}
