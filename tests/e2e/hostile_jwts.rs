//! Hostile session JWTs against every JWT route of the local stack (DynamoDB and Secrets Manager
//! in moto when the test command runs it, Stytch and Unit sandboxes), one test per attack family:
//! algorithm confusion, forged and injected keys, tampering, claim abuse, malformed and oversized
//! tokens, seeded random mutations of a valid token, unusable `Authorization` headers, and
//! step-up forgeries. Every one is refused with 401 (`step_up_required` for a validly
//! signed token without a genuine recent TOTP factor), and none reaches Stytch or Unit (beyond at
//! most one rate-limited JWKS refetch) or writes anything.

use aws_lc_rs::signature::{RSA_PKCS1_SHA384, RSA_PKCS1_SHA512, RSA_PSS_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::sync::Arc;

use e2e::{JWT_ROUTES, Stack, code_of, json_of, now};
use serde_json::{Value, json};
use shared::jwt::signer::Signer;
use shared::stytch::Jwk;

/// The body each route gets: one that would reach Stytch or Unit if the token were accepted.
fn body_for(path: &str) -> Value {
    match path {
        "/mfa/totp/authenticate" => json!({"totp_code": "123456"}),
        "/mfa/totp/recover" => json!({"recovery_code": "aaaa-bbbb-cccc"}),
        "/unit/customer-token" => json!({"scope": "customers cards-write"}),
        "/onboarding/application" => json!({"full_name": {"first": "Eve", "last": "Mallory"}}),
        _ => json!({}),
    }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn hs256(key: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let tag = aws_lc_rs::hmac::sign(&k, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// xorshift64*: a seeded generator, so a failing mutation can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A random structural or byte-level mutation of `token` that differs from it.
fn mutate(token: &str, rng: &mut Rng) -> String {
    let mut chars: Vec<u8> = token.as_bytes().to_vec();
    loop {
        let mut t = chars.clone();
        match rng.below(7) {
            0 => {
                let i = rng.below(t.len());
                t[i] = B64URL[rng.below(B64URL.len())];
            }
            1 => {
                t.remove(rng.below(t.len()));
            }
            2 => {
                let i = rng.below(t.len() + 1);
                t.insert(i, B64URL[rng.below(B64URL.len())]);
            }
            3 => t.truncate(rng.below(t.len())),
            4 => {
                let parts: Vec<&str> = token.split('.').collect();
                let (a, b) = (rng.below(3), rng.below(3));
                let mut p = parts.clone();
                p.swap(a, b);
                t = p.join(".").into_bytes();
            }
            5 => {
                // A bit flipped inside the decoded header, payload or signature.
                let parts: Vec<&str> = token.split('.').collect();
                let seg = rng.below(3);
                let mut bytes = URL_SAFE_NO_PAD.decode(parts[seg]).unwrap();
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
                let mut p: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
                p[seg] = URL_SAFE_NO_PAD.encode(bytes);
                t = p.join(".").into_bytes();
            }
            _ => {
                let i = rng.below(t.len());
                t[i] = [b'.', b'=', b'+', b'/', b' ', 0xc3][rng.below(6)];
            }
        }
        if t != chars {
            chars = t;
            break;
        }
    }
    String::from_utf8_lossy(&chars).into_owned()
}

/// What the forgeries are made from: the genuine token of a user, its parts, the Stytch key.
struct Forge {
    t: i64,
    key: Arc<Signer>,
    attacker: Signer,
    stranger: Signer,
    jwk: Jwk,
    modulus: Vec<u8>,
    valid: Value,
    header: Value,
    genuine: String,
    h: String,
    p: String,
    s: String,
}

impl Forge {
    /// The genuine claims of the user with `edit` applied.
    fn claims(&self, edit: &dyn Fn(&mut Value)) -> Value {
        let mut c = self.valid.clone();
        edit(&mut c);
        c
    }

    /// The genuine header with `edit` applied.
    fn with_header(&self, edit: &dyn Fn(&mut Value)) -> Value {
        let mut h = self.header.clone();
        edit(&mut h);
        h
    }

    /// A totp factor authenticated at `at`.
    fn totp_factor(at: i64) -> Value {
        json!({"type": "totp", "delivery_method": "authenticator_app",
               "last_authenticated_at": e2e::rfc3339(at),
               "authenticator_app_factor": {"totp_id": "totp-test-forged"}})
    }
}

/// The local stack with a signed-up user who has no record (any write would show), and what
/// the sandboxes had received from us once the genuine token had been used.
struct Target {
    stack: Stack,
    user: String,
    stytch_before: usize,
    unit_before: usize,
}

fn ours(r: &sandboxes::LoggedRequest) -> bool {
    r.user_agent.starts_with("stytch-unit-bridge/")
}

impl Target {
    async fn start() -> (Self, Forge) {
        let stack = Stack::start(&[]).await;
        let stytch = stack.stytch_sandbox();
        // No signup webhook: the user has no record, so any write would show.
        stytch.webhooks.set_enabled(false);
        let login = stack.sign_up("eve@example.com").await;
        let user = login.user_id.clone();
        let key = stytch.signer();
        let t = now();
        // Warm-up with the genuine token: the JWKS is fetched, then only what hostile tokens cause counts.
        let (status, _) = json_of(
            stack
                .http
                .post(stack.url("/unit/customer-token"))
                .bearer_auth(&login.session_jwt)
                .json(&json!({"scope": "customers"})),
        )
        .await;
        assert_eq!(
            status, 409,
            "the genuine token is accepted (onboarding_incomplete)"
        );
        let valid: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(stack.forge(&user, t, |_| {}).split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        let header = json!({"alg": "RS256", "kid": key.kid, "typ": "JWT"});
        let genuine = key.sign(&valid);
        let [h, p, s]: [String; 3] = genuine
            .split('.')
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .try_into()
            .unwrap();
        let jwk = key.jwk();
        let forge = Forge {
            t,
            attacker: Signer::generate(key.kid.clone()),
            stranger: Signer::generate("jwk-test-other-project"),
            modulus: URL_SAFE_NO_PAD.decode(&jwk.n).unwrap(),
            jwk,
            key,
            valid,
            header,
            genuine,
            h,
            p,
            s,
        };
        let target = Self {
            stytch_before: stack.stytch_log().iter().filter(|r| ours(r)).count(),
            unit_before: stack.unit_log().iter().filter(|r| ours(r)).count(),
            stack,
            user,
        };
        (target, forge)
    }

    /// A request to `path` with `path`'s body, and `authorization` if given.
    fn send(
        &self,
        method: &str,
        path: &str,
        authorization: Option<String>,
    ) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self
            .stack
            .http
            .request(method.clone(), self.stack.url(path));
        if method != reqwest::Method::GET {
            r = r.json(&body_for(path));
        }
        if let Some(a) = authorization {
            r = r.header("authorization", a);
        }
        r
    }

    /// Sends every token to every JWT route: each is refused with 401. Returns the requests sent.
    async fn refused_on_every_route(&self, tokens: &[(String, String)]) -> usize {
        let mut requests = 0;
        for (method, path) in JWT_ROUTES {
            for (name, token) in tokens {
                // Bytes HTTP cannot carry in a header (DEL, line breaks) never reach a server.
                let Ok(value) = http::HeaderValue::from_bytes(format!("Bearer {token}").as_bytes())
                else {
                    continue;
                };
                let (status, body) =
                    json_of(self.send(method, path, None).header("authorization", value)).await;
                requests += 1;
                if token.len() > 16 * 1024 && status == 431 {
                    // Over the HTTP server's header limit (API Gateway's is 10 KiB): refused before us.
                    continue;
                }
                assert_eq!(status, 401, "{path}: {name}: {body}");
                assert!(
                    matches!(
                        code_of(&body),
                        Some("invalid_token" | "token_expired" | "missing_token")
                    ),
                    "{path}: {name}: {body}"
                );
            }
        }
        self.untouched().await;
        requests
    }

    /// Nothing reached Stytch or Unit but at most one JWKS refetch (unknown kids, rate limited),
    /// and nothing was written for the user.
    async fn untouched(&self) {
        let stytch_after: Vec<_> = self
            .stack
            .stytch_log()
            .into_iter()
            .filter(ours)
            .skip(self.stytch_before)
            .collect();
        assert!(
            stytch_after
                .iter()
                .all(|r| r.method == "GET" && r.path.starts_with("/v1/sessions/jwks/")),
            "hostile tokens reached Stytch: {:?}",
            stytch_after
                .iter()
                .map(|r| format!("{} {}", r.method, r.path))
                .collect::<Vec<_>>()
        );
        assert!(
            stytch_after.len() <= 1,
            "{} JWKS fetches",
            stytch_after.len()
        );
        let unit_after = self.stack.unit_log().iter().filter(|r| ours(r)).count();
        assert_eq!(unit_after, self.unit_before, "hostile tokens reached Unit");
        assert_eq!(self.stack.record(&self.user).await, None);
        assert!(self.stack.audit(&self.user).await.is_empty());
    }
}

/// Runs one family on every route and reports its size.
async fn refuse(family: &str, make: fn(&Forge) -> Vec<(String, String)>) {
    let (target, forge) = Target::start().await;
    let tokens = make(&forge);
    let requests = target.refused_on_every_route(&tokens).await;
    println!(
        "hostile JWTs, {family}: {} tokens on {} routes, {requests} requests refused",
        tokens.len(),
        JWT_ROUTES.len()
    );
}

/// Algorithm confusion: `none`, HMAC keyed with the public key, other RSA schemes.
fn algorithm_confusion(g: &Forge) -> Vec<(String, String)> {
    let Forge {
        p,
        s,
        valid,
        header,
        key,
        modulus,
        jwk,
        ..
    } = g;
    vec![
        (
            "alg none".into(),
            format!(
                "{}.{p}.",
                b64(&g.with_header(&|h| h["alg"] = json!("none")))
            ),
        ),
        (
            "alg None, signature kept".into(),
            format!(
                "{}.{p}.{s}",
                b64(&g.with_header(&|h| h["alg"] = json!("None")))
            ),
        ),
        (
            "alg missing".into(),
            key.sign_raw(
                &g.with_header(&|h| {
                    h.as_object_mut().unwrap().remove("alg");
                }),
                valid,
            ),
        ),
        (
            "HS256 keyed with the public key (DER)".into(),
            hs256(
                &key.public_key_der(),
                &g.with_header(&|h| h["alg"] = json!("HS256")),
                valid,
            ),
        ),
        (
            "HS256 keyed with the modulus".into(),
            hs256(
                modulus,
                &g.with_header(&|h| h["alg"] = json!("HS256")),
                valid,
            ),
        ),
        (
            "HS256 keyed with the JWK JSON".into(),
            hs256(
                serde_json::to_string(&jwk).unwrap().as_bytes(),
                &g.with_header(&|h| h["alg"] = json!("HS256")),
                valid,
            ),
        ),
        (
            "HS256 keyed with n".into(),
            hs256(
                jwk.n.as_bytes(),
                &g.with_header(&|h| h["alg"] = json!("HS256")),
                valid,
            ),
        ),
        (
            "RS384 by the real key".into(),
            key.sign_raw_with(
                &RSA_PKCS1_SHA384,
                &g.with_header(&|h| h["alg"] = json!("RS384")),
                valid,
            ),
        ),
        (
            "RS512 by the real key".into(),
            key.sign_raw_with(
                &RSA_PKCS1_SHA512,
                &g.with_header(&|h| h["alg"] = json!("RS512")),
                valid,
            ),
        ),
        (
            "PS256 by the real key".into(),
            key.sign_raw_with(
                &RSA_PSS_SHA256,
                &g.with_header(&|h| h["alg"] = json!("PS256")),
                valid,
            ),
        ),
        (
            "RS384 signature under an RS256 header".into(),
            key.sign_raw_with(&RSA_PKCS1_SHA384, header, valid),
        ),
        (
            "ES256 header".into(),
            format!(
                "{}.{p}.{s}",
                b64(&g.with_header(&|h| h["alg"] = json!("ES256")))
            ),
        ),
        (
            "EdDSA header".into(),
            format!(
                "{}.{p}.{s}",
                b64(&g.with_header(&|h| h["alg"] = json!("EdDSA")))
            ),
        ),
    ]
}

/// Forged and injected keys: another key under the same `kid`, embedded keys, key URLs.
fn keys(g: &Forge) -> Vec<(String, String)> {
    let Forge {
        valid,
        key,
        attacker,
        stranger,
        ..
    } = g;
    vec![
        (
            "unknown kid".into(),
            key.sign_raw(
                &g.with_header(&|h| h["kid"] = json!("jwk-test-unknown")),
                valid,
            ),
        ),
        (
            "kid missing".into(),
            key.sign_raw(
                &g.with_header(&|h| {
                    h.as_object_mut().unwrap().remove("kid");
                }),
                valid,
            ),
        ),
        (
            "kid path traversal".into(),
            key.sign_raw(
                &g.with_header(&|h| h["kid"] = json!("../../../../dev/null")),
                valid,
            ),
        ),
        (
            "kid SQL".into(),
            key.sign_raw(&g.with_header(&|h| h["kid"] = json!("' OR '1'='1")), valid),
        ),
        (
            "kid 64 KiB".into(),
            key.sign_raw(
                &g.with_header(&|h| h["kid"] = json!("k".repeat(65536))),
                valid,
            ),
        ),
        (
            "kid a number".into(),
            key.sign_raw(&g.with_header(&|h| h["kid"] = json!(1)), valid),
        ),
        (
            "embedded jwk of the attacker".into(),
            stranger.sign_raw(
                &g.with_header(&|h| h["jwk"] = serde_json::to_value(stranger.jwk()).unwrap()),
                valid,
            ),
        ),
        (
            "jku to the attacker".into(),
            stranger.sign_raw(
                &g.with_header(&|h| {
                    h["jku"] = json!("http://127.0.0.1:9/jwks");
                    h["kid"] = json!(stranger.kid);
                }),
                valid,
            ),
        ),
        (
            "x5u to the attacker".into(),
            stranger.sign_raw(
                &g.with_header(&|h| h["x5u"] = json!("http://127.0.0.1:9/cert")),
                valid,
            ),
        ),
        ("another key, same kid".into(), attacker.sign(valid)),
        ("another project's key and kid".into(), stranger.sign(valid)),
        (
            "crit header".into(),
            key.sign_raw(&g.with_header(&|h| h["crit"] = json!(["exp"])), valid),
        ),
        (
            "typ not JWT".into(),
            key.sign_raw(&g.with_header(&|h| h["typ"] = json!("at+jwt")), valid),
        ),
    ]
}

/// Tampering: edited headers, payloads and signatures of the genuine token.
fn tampering(g: &Forge) -> Vec<(String, String)> {
    let Forge {
        h,
        p,
        s,
        key,
        t,
        genuine,
        ..
    } = g;
    vec![
        (
            "payload swapped after signing".into(),
            format!(
                "{h}.{}.{s}",
                b64(&g.claims(&|c| c["sub"] = json!("user-test-someone-else")))
            ),
        ),
        (
            "header swapped after signing".into(),
            format!(
                "{}.{p}.{s}",
                b64(&g.with_header(&|h| h["kid"] = json!("jwk-test-x")))
            ),
        ),
        ("signature stripped".into(), format!("{h}.{p}.")),
        ("two segments".into(), format!("{h}.{p}")),
        ("four segments".into(), format!("{genuine}.{s}")),
        (
            "signature of another token".into(),
            format!(
                "{h}.{p}.{}",
                key.sign(&g.claims(&|c| c["exp"] = json!(t + 299)))
                    .split('.')
                    .nth(2)
                    .unwrap()
            ),
        ),
        (
            "signature zeroed".into(),
            format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(vec![0u8; 256])),
        ),
        ("signature doubled".into(), format!("{h}.{p}.{s}{s}")),
        ("padded base64".into(), format!("{h}==.{p}.{s}")),
        (
            "standard base64 alphabet".into(),
            genuine.replace('-', "+").replace('_', "/"),
        ),
    ]
}

/// Claim abuse, validly signed by the real key: issuer, audience, times, subject, session.
fn claims(g: &Forge) -> Vec<(String, String)> {
    let Forge {
        valid,
        header,
        key,
        t,
        ..
    } = g;
    vec![
        (
            "expired".into(),
            key.sign(&g.claims(&|c| {
                c["iat"] = json!(t - 900);
                c["nbf"] = json!(t - 900);
                c["exp"] = json!(t - 600);
            })),
        ),
        (
            "nbf in the future".into(),
            key.sign(&g.claims(&|c| c["nbf"] = json!(t + 600))),
        ),
        (
            "iat in the future".into(),
            key.sign(&g.claims(&|c| c["iat"] = json!(t + 600))),
        ),
        (
            "wrong iss".into(),
            key.sign(&g.claims(&|c| c["iss"] = json!("stytch.com/project-test-other"))),
        ),
        (
            "iss missing".into(),
            key.sign(&g.claims(&|c| {
                c.as_object_mut().unwrap().remove("iss");
            })),
        ),
        (
            "wrong aud".into(),
            key.sign(&g.claims(&|c| c["aud"] = json!(["project-test-other"]))),
        ),
        (
            "aud missing".into(),
            key.sign(&g.claims(&|c| {
                c.as_object_mut().unwrap().remove("aud");
            })),
        ),
        (
            "aud empty".into(),
            key.sign(&g.claims(&|c| c["aud"] = json!([]))),
        ),
        (
            "sub missing".into(),
            key.sign(&g.claims(&|c| {
                c.as_object_mut().unwrap().remove("sub");
            })),
        ),
        (
            "sub empty".into(),
            key.sign(&g.claims(&|c| c["sub"] = json!(""))),
        ),
        (
            "sub a number".into(),
            key.sign(&g.claims(&|c| c["sub"] = json!(42))),
        ),
        (
            "exp missing".into(),
            key.sign(&g.claims(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            })),
        ),
        (
            "exp a string".into(),
            key.sign(&g.claims(&|c| c["exp"] = json!((t + 300).to_string()))),
        ),
        (
            "no session claim (an M2M token)".into(),
            key.sign(&g.claims(&|c| {
                c.as_object_mut()
                    .unwrap()
                    .remove("https://stytch.com/session");
            })),
        ),
        (
            "payload an array".into(),
            key.sign_raw(header, &json!([valid.clone()])),
        ),
    ]
}

/// Malformed and oversized tokens.
fn malformed(g: &Forge) -> Vec<(String, String)> {
    let Forge { h, p, s, .. } = g;
    vec![
        ("empty".into(), String::new()),
        ("one dot".into(), ".".into()),
        ("dots".into(), "..".into()),
        ("not base64".into(), "!!!.@@@.###".into()),
        (
            "header not JSON".into(),
            format!("{}.{p}.{s}", URL_SAFE_NO_PAD.encode("not json")),
        ),
        (
            "payload not JSON".into(),
            format!("{h}.{}.{s}", URL_SAFE_NO_PAD.encode("{\"sub\":")),
        ),
        (
            "nested JSON bomb in the header".into(),
            format!("{}.{p}.{s}", URL_SAFE_NO_PAD.encode("[".repeat(100_000))),
        ),
        (
            "64 KiB token".into(),
            format!("{h}.{}.{s}", "A".repeat(65536)),
        ),
        ("1 MiB token".into(), "a".repeat(1 << 20)),
        ("control characters".into(), format!("{h}.{p}.{s}\u{7f}")),
    ]
}

/// Seeded random mutations of the genuine token.
fn mutations(g: &Forge) -> Vec<(String, String)> {
    let mut rng = Rng(0x5eed_1e55_ca75_0001);
    (0..300)
        .map(|i| (format!("mutation {i}"), mutate(&g.genuine, &mut rng)))
        .collect()
}

#[tokio::test]
async fn algorithm_confusion_is_refused() {
    refuse("algorithm confusion", algorithm_confusion).await;
}

#[tokio::test]
async fn forged_and_injected_keys_are_refused() {
    refuse("keys", keys).await;
}

#[tokio::test]
async fn tampered_tokens_are_refused() {
    refuse("tampering", tampering).await;
}

#[tokio::test]
async fn abused_claims_are_refused() {
    refuse("claims", claims).await;
}

#[tokio::test]
async fn malformed_and_oversized_tokens_are_refused() {
    refuse("malformed", malformed).await;
}

#[tokio::test]
async fn random_mutations_are_refused() {
    refuse("mutations", mutations).await;
}

#[tokio::test]
async fn authorization_headers_without_a_usable_token_are_refused() {
    let (target, forge) = Target::start().await;
    let pid = target.stack.project_id();
    let genuine = &forge.genuine;
    for (method, path) in JWT_ROUTES {
        for (name, value) in [
            ("no header", None),
            (
                "Basic",
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{pid}:secret"))
                )),
            ),
            ("Bearer without a token", Some("Bearer".to_owned())),
            ("Bearer and a space", Some("Bearer ".to_owned())),
            ("two tokens", Some(format!("Bearer {genuine} {genuine}"))),
            ("token without a scheme", Some(genuine.clone())),
        ] {
            let (status, body) = json_of(target.send(method, path, value)).await;
            assert_eq!(status, 401, "{path}: {name}: {body}");
            assert!(
                matches!(code_of(&body), Some("missing_token" | "invalid_token")),
                "{path}: {name}: {body}"
            );
        }
    }
    target.untouched().await;
}

#[tokio::test]
async fn step_up_forgeries_are_refused_for_sensitive_scopes() {
    let (target, g) = Target::start().await;
    let (key, t) = (&g.key, g.t);
    let totp_factor = Forge::totp_factor;
    // Validly signed by Stytch's key, but no genuine recent TOTP factor: the sensitive scope is refused.
    let session_claim = "https://stytch.com/session";
    let step_up_cases: Vec<(&str, String)> = vec![
        ("a totp factor in a custom top-level claim", key.sign(&g.claims(&|c| c["authentication_factors"] = json!([totp_factor(t)])))),
        ("a totp factor in a custom namespaced claim", key.sign(&g.claims(&|c| c["https://example.com/session"] = json!({"authentication_factors": [totp_factor(t)]})))),
        ("a totp factor outside the factors list", key.sign(&g.claims(&|c| c[session_claim]["totp"] = totp_factor(t)))),
        ("a stale totp factor", key.sign(&g.claims(&|c| c[session_claim]["authentication_factors"] = json!([totp_factor(t - 3600)])))),
        ("a totp factor from the future", key.sign(&g.claims(&|c| c[session_claim]["authentication_factors"] = json!([totp_factor(t + 3600)])))),
        ("a totp factor without a time", key.sign(&g.claims(&|c| c[session_claim]["authentication_factors"] = json!([{"type": "totp", "delivery_method": "authenticator_app"}])))),
        ("a recovery-code factor", key.sign(&g.claims(&|c| c[session_claim]["authentication_factors"] = json!([{"type": "recovery_codes", "delivery_method": "recovery_code", "last_authenticated_at": e2e::rfc3339(t)}])))),
        ("a factor typed TOTP in capitals", key.sign(&g.claims(&|c| c[session_claim]["authentication_factors"] = json!([{"type": "TOTP", "delivery_method": "authenticator_app", "last_authenticated_at": e2e::rfc3339(t)}])))),
    ];
    for (name, token) in &step_up_cases {
        let (status, body) = json_of(
            target
                .stack
                .http
                .post(target.stack.url("/unit/customer-token"))
                .bearer_auth(token)
                .json(&json!({"scope": "customers cards-write"})),
        )
        .await;
        assert_eq!(
            (status, code_of(&body)),
            (401, Some("step_up_required")),
            "{name}: {body}"
        );
    }
    target.untouched().await;
}
