//! Hostile webhook deliveries to the local stack (DynamoDB and Secrets Manager in moto, Stytch and
//! Unit sandboxes): missing, malformed, wrong, truncated and multiple signatures, old and future
//! timestamps, replays, oversized bodies, invalid UTF-8, deeply nested JSON, unknown event types
//! and events for unknown users. No panic, the right status, and nothing stored or sent to Unit
//! for a refused delivery.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use e2e::{Stack, code_of, fresh_user, json_of, now, user_event};
use serde_json::json;

/// Items in the stack's table (a strongly consistent scan).
async fn items(stack: &Stack, moto: &str) -> usize {
    let shared::config::StoreLocation::DynamoDb { table_name } = &stack.local.app.config.store
    else {
        panic!("the stack runs on DynamoDB");
    };
    let client = aws_sdk_dynamodb::Client::new(&e2e::aws(moto).await);
    let mut n = 0;
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table_name)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        n += page.items().len();
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return n;
        }
    }
}

fn unit_calls(stack: &Stack) -> usize {
    stack
        .unit_log()
        .iter()
        .filter(|r| r.user_agent.starts_with("stytch-unit-bridge/"))
        .count()
}

/// Refused deliveries left the table as it was and called nobody at Unit.
async fn nothing_stored_or_sent(
    stack: &Stack,
    moto: &str,
    items_before: usize,
    unit_before: usize,
) {
    assert_eq!(
        items(stack, moto).await,
        items_before,
        "a refused delivery stored something"
    );
    assert_eq!(
        unit_calls(stack),
        unit_before,
        "a refused delivery reached Unit"
    );
}

/// A Stytch delivery's name, svix-id, svix-timestamp and svix-signature (`None`: header absent).
type Delivery = (
    &'static str,
    Option<&'static str>,
    Option<String>,
    Option<String>,
);

/// A deep JSON document: `[[[...]]]`.
fn nested(depth: usize) -> Vec<u8> {
    let mut v = "[".repeat(depth).into_bytes();
    v.extend("]".repeat(depth).into_bytes());
    v
}

/// A Stytch signature's parts for the cases below: the valid signature of `body` as
/// `msg_h` at `t`, and its base64 alone.
struct Signed<'a> {
    secret: &'a shared::webhook::SvixSecret,
    body: &'a str,
    t: i64,
    valid: String,
    valid_b64: String,
}

/// Deliveries of `body` whose signature, timestamp or headers do not verify.
fn bad_signatures(s: &Signed) -> Vec<Delivery> {
    let (secret, body, t, valid, valid_b64) = (s.secret, s.body, s.t, &s.valid, &s.valid_b64);
    let other =
        shared::webhook::SvixSecret::parse("whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB").unwrap();
    let ts = t.to_string();
    vec![
        ("no headers", None, None, None),
        ("no svix-id", None, Some(ts.clone()), Some(valid.clone())),
        (
            "no svix-timestamp",
            Some("msg_h"),
            None,
            Some(valid.clone()),
        ),
        ("no svix-signature", Some("msg_h"), Some(ts.clone()), None),
        (
            "empty signature",
            Some("msg_h"),
            Some(ts.clone()),
            Some(String::new()),
        ),
        (
            "v1, and nothing",
            Some("msg_h"),
            Some(ts.clone()),
            Some("v1,".into()),
        ),
        (
            "no version",
            Some("msg_h"),
            Some(ts.clone()),
            Some(valid_b64.clone()),
        ),
        (
            "version v2",
            Some("msg_h"),
            Some(ts.clone()),
            Some(format!("v2,{valid_b64}")),
        ),
        (
            "not base64",
            Some("msg_h"),
            Some(ts.clone()),
            Some("v1,!!!not-base64!!!".into()),
        ),
        (
            "truncated",
            Some("msg_h"),
            Some(ts.clone()),
            Some(format!("v1,{}", &valid_b64[..valid_b64.len() / 2])),
        ),
        (
            "one byte short",
            Some("msg_h"),
            Some(ts.clone()),
            Some(format!(
                "v1,{}",
                STANDARD.encode(&STANDARD.decode(valid_b64).unwrap()[..31])
            )),
        ),
        (
            "wrong secret",
            Some("msg_h"),
            Some(ts.clone()),
            Some(other.sign("msg_h", t, body.as_bytes())),
        ),
        (
            "signed for another svix-id",
            Some("msg_other"),
            Some(ts.clone()),
            Some(valid.clone()),
        ),
        (
            "signed for another body",
            Some("msg_h"),
            Some(ts.clone()),
            Some(secret.sign("msg_h", t, b"{}")),
        ),
        (
            "several, none valid",
            Some("msg_h"),
            Some(ts.clone()),
            Some(format!(
                "v1,{} v1,{}",
                STANDARD.encode([1u8; 32]),
                STANDARD.encode([2u8; 32])
            )),
        ),
        (
            "a thousand, none valid",
            Some("msg_h"),
            Some(ts.clone()),
            Some(vec![format!("v1,{}", STANDARD.encode([7u8; 32])); 1000].join(" ")),
        ),
        (
            "6 minutes old",
            Some("msg_h"),
            Some((t - 361).to_string()),
            Some(secret.sign("msg_h", t - 361, body.as_bytes())),
        ),
        (
            "6 minutes ahead",
            Some("msg_h"),
            Some((t + 361).to_string()),
            Some(secret.sign("msg_h", t + 361, body.as_bytes())),
        ),
        (
            "a year old",
            Some("msg_h"),
            Some((t - 31_536_000).to_string()),
            Some(secret.sign("msg_h", t - 31_536_000, body.as_bytes())),
        ),
        (
            "timestamp not a number",
            Some("msg_h"),
            Some("soon".into()),
            Some(valid.clone()),
        ),
        (
            "timestamp negative",
            Some("msg_h"),
            Some("-1".into()),
            Some(secret.sign("msg_h", -1, body.as_bytes())),
        ),
        (
            "timestamp overflowing",
            Some("msg_h"),
            Some("99999999999999999999999".into()),
            Some(valid.clone()),
        ),
        (
            "timestamp fractional",
            Some("msg_h"),
            Some(format!("{t}.5")),
            Some(valid.clone()),
        ),
        (
            "timestamp in hex",
            Some("msg_h"),
            Some(format!("{t:#x}")),
            Some(valid.clone()),
        ),
    ]
}

/// Validly signed bodies that are not an event we can read.
fn unreadable_bodies(user: &str) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "invalid UTF-8",
            b"{\"action\": \"CREATE\", \"id\": \"user-test-\xff\xfe\"}".to_vec(),
        ),
        ("nested 100k deep", nested(100_000)),
        (
            "nested 200 deep inside the user",
            format!(
                "{{\"action\":\"CREATE\",\"id\":\"{user}\",\"object_type\":\"user\",\"user\":{}}}",
                String::from_utf8(nested(200)).unwrap()
            )
            .into_bytes(),
        ),
        ("null", b"null".to_vec()),
        ("an array", b"[]".to_vec()),
        ("empty object", b"{}".to_vec()),
        ("empty body", Vec::new()),
        (
            "action a number",
            format!("{{\"action\":1,\"id\":\"{user}\",\"object_type\":\"user\"}}").into_bytes(),
        ),
        ("1 MiB of spaces", vec![b' '; 1 << 20]),
    ]
}

/// A Stytch delivery of `body` with these headers (absent when `None`).
fn stytch_delivery(stack: &Stack, body: &str, delivery: &Delivery) -> reqwest::RequestBuilder {
    let (_, id, stamp, signature) = delivery;
    let mut r = stack
        .http
        .post(stack.url("/webhooks/stytch"))
        .body(body.to_owned());
    if let Some(id) = id {
        r = r.header("svix-id", *id);
    }
    if let Some(stamp) = stamp {
        r = r.header("svix-timestamp", stamp.as_str());
    }
    if let Some(signature) = signature {
        r = r.header("svix-signature", signature.as_str());
    }
    r
}

/// `raw` delivered as Stytch would, validly signed, as `id`.
fn signed_stytch(
    stack: &Stack,
    secret: &shared::webhook::SvixSecret,
    id: &str,
    raw: Vec<u8>,
) -> reqwest::RequestBuilder {
    let t = now();
    stack
        .http
        .post(stack.url("/webhooks/stytch"))
        .header("svix-id", id)
        .header("svix-timestamp", t.to_string())
        .header("svix-signature", secret.sign(id, t, &raw))
        .body(raw)
}

/// Every hostile delivery is refused with its documented status: the count refused.
async fn every_hostile_stytch_delivery_is_refused(
    stack: &Stack,
    s: &Signed<'_>,
    user: &str,
) -> usize {
    let mut refused = 0;
    for delivery in &bad_signatures(s) {
        let (status, reply) = json_of(stytch_delivery(stack, s.body, delivery)).await;
        let name = delivery.0;
        assert_eq!(
            (status, code_of(&reply)),
            (401, Some("invalid_signature")),
            "{name}: {reply}"
        );
        refused += 1;
    }
    // Validly signed, but not an event we can read: 400, and no processed-event marker.
    for (i, (name, raw)) in unreadable_bodies(user).into_iter().enumerate() {
        let signed = signed_stytch(stack, s.secret, &format!("msg_junk_{i}"), raw);
        let (status, reply) = json_of(signed).await;
        assert_eq!(
            (status, code_of(&reply)),
            (400, Some("invalid_payload")),
            "{name}: {reply}"
        );
        refused += 1;
    }
    // Over the body limit (Lambda's 6 MB; API Gateway answers 413 itself in AWS).
    let huge = vec![b'{'; 6 * 1024 * 1024 + 1];
    let (status, reply) = json_of(stack.http.post(stack.url("/webhooks/stytch")).body(huge)).await;
    assert_eq!(
        (status, code_of(&reply)),
        (413, Some("payload_too_large")),
        "{reply}"
    );
    refused + 1
}

/// Several signatures of which one is valid: accepted once; every redelivery is a duplicate,
/// and one form is created for the six deliveries.
async fn one_valid_signature_among_several_is_applied_once(stack: &Stack, s: &Signed<'_>) {
    let several = format!(
        "v1,{} {} v2,{}",
        STANDARD.encode([3u8; 32]),
        s.valid,
        s.valid_b64
    );
    let delivery: Delivery = (
        "several",
        Some("msg_h"),
        Some(s.t.to_string()),
        Some(several),
    );
    let (status, reply) = json_of(stytch_delivery(stack, s.body, &delivery)).await;
    assert_eq!(
        (status, reply["status"].as_str()),
        (200, Some("processed")),
        "{reply}"
    );
    for _ in 0..5 {
        let (status, reply) = json_of(stytch_delivery(stack, s.body, &delivery)).await;
        assert_eq!(
            (status, reply["status"].as_str()),
            (200, Some("duplicate")),
            "{reply}"
        );
    }
    let form_posts = stack
        .unit_log()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/application-forms")
        .count();
    assert_eq!(form_posts, 1, "one form for six deliveries");
}

/// Signed events we do not act on: acknowledged, nothing created for an unknown user.
async fn events_we_do_not_act_on_are_acknowledged(
    stack: &Stack,
    secret: &shared::webhook::SvixSecret,
) {
    let stranger = fresh_user();
    for (i, event) in [
        json!({"action": "CREATE", "id": "session-test-1", "object_type": "session", "source": "DIRECT"}),
        json!({"action": "LOCK", "id": stranger, "object_type": "user", "source": "DIRECT"}),
        json!({"action": "CREATE", "id": "not-a-user-id", "object_type": "user", "source": "DIRECT"}),
    ]
    .iter()
    .enumerate()
    {
        let raw = event.to_string().into_bytes();
        let (status, reply) = json_of(signed_stytch(stack, secret, &format!("msg_other_{i}"), raw)).await;
        assert_eq!((status, reply["status"].as_str()), (200, Some("processed")), "{event}: {reply}");
    }
    assert_eq!(stack.record(&stranger).await, None);
}

#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn hostile_stytch_deliveries_are_refused_and_store_nothing() {
    let moto = e2e::moto();
    let stack = Stack::on_moto(&moto).await;
    let secret = shared::webhook::SvixSecret::parse(e2e::SVIX_SECRET).unwrap();
    let user = fresh_user();
    let body = user_event("CREATE", &user, "mallory@example.com");
    let t = now();
    let valid = secret.sign("msg_h", t, body.as_bytes());
    let valid_b64 = valid.trim_start_matches("v1,").to_owned();
    let signed = Signed {
        secret: &secret,
        body: &body,
        t,
        valid,
        valid_b64,
    };
    let items_before = items(&stack, &moto).await;
    let unit_before = unit_calls(&stack);
    let refused = every_hostile_stytch_delivery_is_refused(&stack, &signed, &user).await;
    nothing_stored_or_sent(&stack, &moto, items_before, unit_before).await;
    assert_eq!(stack.record(&user).await, None);
    one_valid_signature_among_several_is_applied_once(&stack, &signed).await;
    events_we_do_not_act_on_are_acknowledged(&stack, &secret).await;
    println!(
        "hostile Stytch deliveries: {refused} refused, 6 deliveries of one event applied once"
    );
}

/// An `X-Unit-Signature` header's value for `body`, or none, that does not verify.
fn bad_unit_signatures(token: &str, body: &str) -> Vec<(&'static str, Option<String>)> {
    let valid = shared::webhook::unit_signature(token, body.as_bytes());
    vec![
        ("no signature", None),
        ("empty", Some(String::new())),
        ("not base64", Some("%%%".into())),
        ("truncated", Some(valid[..valid.len() / 2].to_owned())),
        (
            "wrong token",
            Some(shared::webhook::unit_signature(
                "another-token",
                body.as_bytes(),
            )),
        ),
        (
            "another body",
            Some(shared::webhook::unit_signature(token, b"{\"data\": []}")),
        ),
        (
            "two, one valid, comma-joined",
            Some(format!("{valid},{valid}")),
        ),
        (
            "SHA-256 instead of SHA-1",
            Some({
                let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, token.as_bytes());
                STANDARD.encode(aws_lc_rs::hmac::sign(&k, body.as_bytes()).as_ref())
            }),
        ),
        (
            "hex instead of base64",
            Some({
                let k = aws_lc_rs::hmac::Key::new(
                    aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
                    token.as_bytes(),
                );
                aws_lc_rs::hmac::sign(&k, body.as_bytes())
                    .as_ref()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            }),
        ),
    ]
}

/// A Unit event of `kind` for `application`, pairing it with the customer `424242`.
fn unit_event(kind: &str, id: &str, application: &str) -> String {
    let created_at = e2e::rfc3339(e2e::now());
    json!({"data": [{"id": id, "type": kind,
        "attributes": {"createdAt": created_at, "status": "Approved", "tags": {}},
        "relationships": {"application": {"data": {"type": "individualApplication", "id": application}},
                          "customer": {"data": {"type": "individualCustomer", "id": "424242"}}}}]})
    .to_string()
}

/// `raw` delivered as Unit would, validly signed.
fn signed_unit(stack: &Stack, raw: Vec<u8>) -> reqwest::RequestBuilder {
    let signature = shared::webhook::unit_signature(e2e::UNIT_WEBHOOK_TOKEN, &raw);
    stack
        .http
        .post(stack.url("/webhooks/unit"))
        .header("x-unit-signature", signature)
        .body(raw)
}

/// Every hostile Unit delivery of `body` is refused with its documented status: the count.
async fn every_hostile_unit_delivery_is_refused(stack: &Stack, body: &str) -> usize {
    let mut refused = 0;
    for (name, signature) in bad_unit_signatures(e2e::UNIT_WEBHOOK_TOKEN, body) {
        let mut r = stack
            .http
            .post(stack.url("/webhooks/unit"))
            .body(body.to_owned());
        if let Some(s) = signature {
            r = r.header("x-unit-signature", s);
        }
        let (status, reply) = json_of(r).await;
        assert_eq!(
            (status, code_of(&reply)),
            (401, Some("invalid_signature")),
            "{name}: {reply}"
        );
        refused += 1;
    }
    for (name, raw) in [
        (
            "invalid UTF-8",
            b"{\"data\": [{\"id\": \"\xff\", \"type\": \"x\"}]}".to_vec(),
        ),
        ("nested 100k deep", nested(100_000)),
        ("data not a list", b"{\"data\": \"x\"}".to_vec()),
        ("null", b"null".to_vec()),
        ("empty body", Vec::new()),
    ] {
        let (status, reply) = json_of(signed_unit(stack, raw)).await;
        assert_eq!(
            (status, code_of(&reply)),
            (400, Some("invalid_payload")),
            "{name}: {reply}"
        );
        refused += 1;
    }
    refused
}

#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn hostile_unit_deliveries_are_refused_and_store_nothing() {
    let moto = e2e::moto();
    let stack = Stack::on_moto(&moto).await;
    let body = unit_event("application.approved", "evt-h-1", "999999");
    let items_before = items(&stack, &moto).await;
    let unit_before = unit_calls(&stack);
    let refused = every_hostile_unit_delivery_is_refused(&stack, &body).await;
    nothing_stored_or_sent(&stack, &moto, items_before, unit_before).await;

    // Signed events for an application that is not ours (Unit: 404) or of kinds we do not act on.
    for raw in [
        body.clone(),
        unit_event("account.created", "evt-h-2", "999999"),
        unit_event("customer.created", "evt-h-3", "999998"),
    ] {
        let (status, reply) = json_of(signed_unit(&stack, raw.into_bytes())).await;
        assert_eq!(
            (status, reply["status"].as_str()),
            (200, Some("processed")),
            "{reply}"
        );
    }
    let linked = stack.local.app.store.user_for_application("999999").await;
    assert!(
        linked.unwrap().is_none(),
        "nothing links an unknown application"
    );
    println!("hostile Unit deliveries: {refused} refused");
}
