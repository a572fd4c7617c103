//! The token at work: card actions at the Unit sandbox with the customer tokens the bridge mints.
//! A read-only token reads the card and is refused a freeze by Unit; a stepped-up token limited
//! to the card freezes and unfreezes it; a token is never limited to another customer's card;
//! Unit's components get an upgradable scope only when the operator turns it on.

use e2e::{Stack, code_of, json_of};
use reqwest::Method;
use serde_json::{Value, json};

/// A Unit card route called with a customer token, as a frontend (or Unit's components) does.
async fn card_action(stack: &Stack, token: &str, method: Method, path: &str) -> (u16, Value) {
    json_of(
        stack
            .http
            .request(method, stack.unit(path))
            .bearer_auth(token)
            .header("content-type", "application/vnd.api+json"),
    )
    .await
}

/// A token from the bridge: `(status, answer)`.
async fn minted(stack: &Stack, jwt: &str, body: Value) -> (u16, Value) {
    json_of(stack.customer_token(jwt, body)).await
}

fn token_of(answer: &Value) -> &str {
    answer["token"].as_str().expect("a token")
}

/// A user with an approved customer, a deposit account and a card: `(login, customer, card)`.
async fn with_card(stack: &Stack, email: &str) -> (e2e::Login, String, String) {
    let (login, customer) = stack.onboarded(email).await;
    let (_, card) = stack
        .unit_sandbox()
        .open_card(&customer)
        .expect("the sandbox opens a card");
    (login, customer, card)
}

/// Stytch's guide in full: a read-only token cannot freeze the card; after a step-up, a token
/// limited to that card can, briefly, and is audited as such.
#[tokio::test]
async fn a_card_is_frozen_only_with_a_stepped_up_token_limited_to_it() {
    let stack = Stack::start(&[]).await;
    let (login, _, card) = with_card(&stack, "cardholder@example.com").await;
    let freeze = format!("/cards/{card}/freeze");
    let (status, read) = minted(&stack, &login.session_jwt, json!({"scope": "cards"})).await;
    assert_eq!(status, 200, "{read}");
    let (status, shown) = card_action(
        &stack,
        token_of(&read),
        Method::GET,
        &format!("/cards/{card}"),
    )
    .await;
    assert_eq!(
        (status, shown["data"]["attributes"]["status"].as_str()),
        (200, Some("Active"))
    );
    let (status, refused) = card_action(&stack, token_of(&read), Method::POST, &freeze).await;
    assert_eq!(
        status, 403,
        "Unit refuses a freeze with a read-only token: {refused}"
    );

    let limited =
        json!({"scope": "cards cards-write", "resources": [{"type": "card", "ids": [card]}]});
    let (status, body) = minted(&stack, &login.session_jwt, limited.clone()).await;
    assert_eq!((status, code_of(&body)), (401, Some("step_up_required")));
    let jwt = stack.stepped_up(&login).await;
    let (status, write) = minted(&stack, &jwt, limited).await;
    assert_eq!(status, 200, "{write}");
    assert_eq!(write["expires_in"], 300, "CARD_TOKEN_MAX_EXPIRES_IN");
    let (status, frozen) = card_action(&stack, token_of(&write), Method::POST, &freeze).await;
    assert_eq!(
        (status, frozen["data"]["attributes"]["status"].as_str()),
        (200, Some("Frozen")),
        "{frozen}"
    );
    assert_eq!(
        stack.unit_sandbox().card_status(&card).as_deref(),
        Some("Frozen")
    );
    let unfreeze = format!("/cards/{card}/unfreeze");
    let (status, _) = card_action(&stack, token_of(&write), Method::POST, &unfreeze).await;
    assert_eq!(status, 200);
    assert_eq!(
        stack.unit_sandbox().card_status(&card).as_deref(),
        Some("Active")
    );

    let audited = stack.audit(&login.user_id).await;
    let last = audited.last().expect("an audit entry");
    assert_eq!(last.resources, vec![format!("card:{card}")]);
    assert_eq!(last.expires_in, 300);
}

/// SECURITY.md, "A token names only the caller's cards": a card (or account) of another customer
/// is answered like one that does not exist, and no token is minted for it.
#[tokio::test]
async fn a_token_is_never_limited_to_another_customers_card() {
    let stack = Stack::start(&[("TOKENS_PER_USER", "3/600")]).await;
    let (_, _, theirs) = with_card(&stack, "victim-card@example.com").await;
    let (login, _, _) = with_card(&stack, "thief-card@example.com").await;
    let jwt = stack.stepped_up(&login).await;
    let before = stack.unit_token_calls();
    for (kind, id) in [
        ("card", theirs.as_str()),
        ("card", "999999"),
        ("account", "999999"),
    ] {
        let asked = json!({"scope": "cards-write", "resources": [{"type": kind, "ids": [id]}]});
        let (status, body) = minted(&stack, &jwt, asked).await;
        assert_eq!(
            (status, code_of(&body)),
            (404, Some("resource_not_found")),
            "{kind} {id}: {body}"
        );
        assert_eq!(
            body["error"]["message"],
            format!("{kind} {id} is not one of your bank customer's"),
            "another customer's and none are alike"
        );
    }
    assert_eq!(stack.unit_token_calls(), before, "Unit minted nothing");

    let many: Vec<String> = (1..=11).map(|n| n.to_string()).collect();
    let (status, body) = minted(
        &stack,
        &jwt,
        json!({"resources": [{"type": "card", "ids": many}]}),
    )
    .await;
    assert_eq!(
        (status, code_of(&body)),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (status, body) = minted(
        &stack,
        &jwt,
        json!({"resources": [{"type": "card", "ids": ["007"]}]}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["fields"][0]["field"].as_str()),
        (400, Some("resources[0].ids"))
    );
    // Each probe cost Unit reads with our org token: the three count against TOKENS_PER_USER.
    let (status, body) = minted(&stack, &jwt, json!({"scope": "cards"})).await;
    assert_eq!(
        (status, code_of(&body)),
        (429, Some("too_many_tokens")),
        "{body}"
    );
}

/// Unit's components, by policy: an upgradable scope is refused unless `UPGRADABLE_SCOPES`
/// names it; when it does, `customer-token-write` comes without our step-up (Unit's SMS code is
/// the second factor for the upgrade), the token is brief, and the audit says so.
#[tokio::test]
async fn an_upgradable_scope_is_refused_unless_the_operator_allows_it() {
    let stack = Stack::start(&[]).await;
    let (login, _) = stack.onboarded("components-off@example.com").await;
    let asked = json!({"scope": "customers cards", "upgradable_scope": "cards-write"});
    let (status, body) = minted(&stack, &login.session_jwt, asked.clone()).await;
    assert_eq!(
        (status, code_of(&body)),
        (400, Some("scope_not_allowed")),
        "{body}"
    );

    let stack = Stack::start(&[("UPGRADABLE_SCOPES", "cards-write")]).await;
    let (login, _) = stack.onboarded("components-on@example.com").await;
    let (status, issued) = minted(&stack, &login.session_jwt, asked).await;
    assert_eq!(status, 200, "no step-up of ours: {issued}");
    assert_eq!(
        (
            issued["scope"].as_str(),
            issued["upgradable_scope"].as_str(),
            issued["expires_in"].as_u64()
        ),
        (
            Some("cards customer-token-write customers"),
            Some("cards-write"),
            Some(300)
        )
    );
    let sent = stack
        .unit_log()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with("/token"))
        .unwrap();
    assert_eq!(
        sent.body["data"]["attributes"]["upgradableScope"],
        "cards-write"
    );
    let audited = stack.audit(&login.user_id).await;
    assert_eq!(
        audited.last().unwrap().upgradable_scopes.to_string(),
        "cards-write"
    );
    let other = json!({"scope": "customers", "upgradable_scope": "payments-write"});
    let (status, body) = minted(&stack, &login.session_jwt, other).await;
    assert_eq!(
        (status, code_of(&body)),
        (400, Some("scope_not_allowed")),
        "{body}"
    );
}

/// Unit failing the card check mid-way loses nothing and counts nothing: no token is minted or
/// audited, the user's one slot is given back, and the retry gets the token.
#[tokio::test]
async fn a_card_check_unit_fails_mints_nothing_and_keeps_the_slot() {
    let stack = Stack::start(&[("TOKENS_PER_USER", "1/600")]).await;
    let (login, _, card) = with_card(&stack, "card-fault@example.com").await;
    let jwt = stack.stepped_up(&login).await;
    let asked = json!({"scope": "cards-write", "resources": [{"type": "card", "ids": [card]}]});
    stack
        .unit_fault(json!({"route": "GET /cards/{id}", "status": 503, "times": 3}))
        .await;
    let before = stack.unit_token_calls();
    let (status, body) = minted(&stack, &jwt, asked.clone()).await;
    assert_eq!(
        (status, code_of(&body)),
        (502, Some("upstream_unavailable")),
        "{body}"
    );
    assert_eq!(stack.unit_token_calls(), before, "no token asked of Unit");
    assert!(
        stack.audit(&login.user_id).await.is_empty(),
        "nothing audited"
    );
    let (status, issued) = minted(&stack, &jwt, asked).await;
    assert_eq!(status, 200, "the slot was given back: {issued}");
    assert_eq!(stack.audit(&login.user_id).await.len(), 1);
}
