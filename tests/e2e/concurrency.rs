//! Concurrency and load against the local stack on DynamoDB (moto) with both sandboxes: hundreds of
//! concurrent duplicate webhook deliveries, racing first visits and concurrent token requests.
//! Effects happen exactly once, our side answers no 5xx, and every request is answered; the
//! latency figures are printed (they are reported, not asserted: see BENCHMARKS.md for speed).

use std::time::{Duration, Instant};

use e2e::{Stack, fresh_user, json_of, now, user_event};
use serde_json::{Value, json};

/// Every request is answered within this (moto applies requests one at a time, so hundreds at
/// once queue behind each other; the figures printed are the real ones).
const ANSWERED_WITHIN: Duration = Duration::from_secs(90);

/// Sends every request at once; returns (status, body, latency) per request.
async fn all_at_once(requests: Vec<reqwest::RequestBuilder>) -> Vec<(u16, Value, Duration)> {
    let mut set = tokio::task::JoinSet::new();
    for r in requests {
        set.spawn(async move {
            let started = Instant::now();
            let (status, body) = tokio::time::timeout(ANSWERED_WITHIN, json_of(r))
                .await
                .expect("answered, not hung");
            (status, body, started.elapsed())
        });
    }
    let mut out = Vec::new();
    while let Some(done) = set.join_next().await {
        out.push(done.expect("no request task panicked"));
    }
    out
}

fn figures(name: &str, results: &[(u16, Value, Duration)]) -> String {
    let mut ms: Vec<f64> = results.iter().map(|r| r.2.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for r in results {
        *statuses.entry(r.0).or_default() += 1;
    }
    format!(
        "{name}: {} concurrent, statuses {statuses:?}, latency p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        results.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

fn no_5xx(name: &str, results: &[(u16, Value, Duration)]) {
    for (status, body, _) in results {
        assert!(*status < 500, "{name}: {status} {body}");
    }
    println!("{}", figures(name, results));
}

#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn hundreds_of_duplicate_webhook_deliveries_apply_once() {
    // 200 deliveries share this test's one thread with the sandboxes, and one moto: a call to
    // the Unit sandbox can wait for the thread longer than the default 5 s attempt (a red CI
    // run: 504 upstream_timeout on a loaded machine). What is tested is exactly-once effects,
    // not the attempt timeout, so the attempts may take the whole request budget.
    let stack = Stack::on_moto_with(&e2e::moto(), &[("UPSTREAM_TIMEOUT_MS", "20000")]).await;
    let unit = stack.unit_sandbox();
    unit.webhooks.set_enabled(false);
    let user = fresh_user();
    let body = user_event("CREATE", &user, "dup@example.com");
    let t = now();
    let deliveries = (0..200)
        .map(|_| stack.stytch_delivery("msg_dup", &body, t))
        .collect();
    let results = all_at_once(deliveries).await;
    no_5xx("duplicate Stytch deliveries", &results);
    assert!(
        results.iter().all(|r| r.0 == 200),
        "every delivery is acknowledged"
    );
    let record = stack.record(&user).await.expect("one record");
    assert_eq!(unit.census(&user), (1, 0, 0), "one form for 200 deliveries");

    // The applicant completes the form; Unit's approval events arrive 200 times at once.
    let form_id = record.form_id.expect("the form is recorded");
    let (status, done) = json_of(
        stack
            .http
            .post(stack.unit(&format!("/_sandbox/application-forms/{form_id}/complete")))
            .json(&json!({})),
    )
    .await;
    assert_eq!(status, 201, "{done}");
    let application = done["data"]["relationships"]["application"]["data"]["id"]
        .as_str()
        .or(done["data"]["id"].as_str())
        .expect("the application id")
        .to_owned();
    let (_, app) = json_of(stack.unit_call(
        reqwest::Method::GET,
        &format!("/applications/{application}"),
    ))
    .await;
    let customer = app["data"]["relationships"]["customer"]["data"]["id"]
        .as_str()
        .expect("approved at once: a customer")
        .to_owned();
    let events = json!({"data": [
        {"id": "evt-dup-1", "type": "application.approved",
         "attributes": {"createdAt": e2e::rfc3339(e2e::now()), "status": "Approved", "tags": {}},
         "relationships": {"application": {"data": {"type": "individualApplication", "id": application}},
                           "customer": {"data": {"type": "individualCustomer", "id": customer}}}},
        {"id": "evt-dup-2", "type": "customer.created",
         "attributes": {"createdAt": e2e::rfc3339(e2e::now()), "tags": {}},
         "relationships": {"application": {"data": {"type": "individualApplication", "id": application}},
                           "customer": {"data": {"type": "individualCustomer", "id": customer}}}}
    ]})
    .to_string();
    let results = all_at_once((0..200).map(|_| stack.unit_delivery(&events)).collect()).await;
    no_5xx("duplicate Unit deliveries", &results);
    assert!(results.iter().all(|r| r.0 == 200));
    let record = stack.record(&user).await.unwrap();
    assert_eq!(record.customer_id.as_deref(), Some(customer.as_str()));
    assert_eq!(record.application_id.as_deref(), Some(application.as_str()));
    assert_eq!(unit.census(&user), (1, 1, 1));
}

#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn racing_first_visits_create_one_record_and_one_form() {
    let stack = Stack::on_moto(&e2e::moto()).await;
    let stytch = stack.stytch_sandbox();
    let unit = stack.unit_sandbox();
    // Stytch's webhook is lost: the first visits find no record and create it themselves.
    stytch.webhooks.set_enabled(false);
    let login = stack.sign_up("race@example.com").await;
    let visits = (0..100)
        .map(|_| stack.onboarding(&login.session_jwt))
        .collect();
    let results = all_at_once(visits).await;
    no_5xx("racing first GET /onboarding", &results);
    let forms: std::collections::BTreeSet<&str> = results
        .iter()
        .filter(|r| r.0 == 200)
        .filter_map(|r| r.1["form_id"].as_str())
        .collect();
    assert_eq!(forms.len(), 1, "every visit sees the one form: {forms:?}");
    assert!(
        results.iter().all(|r| r.0 == 200 || r.0 == 429),
        "only 200, or 429 when Unit rate limits"
    );
    assert_eq!(unit.census(&login.user_id), (1, 0, 0));
}

#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn hundreds_of_concurrent_token_requests_are_each_issued_and_audited() {
    // Above the per-user limit: this is about the store under load, not the limit (below).
    let stack = Stack::on_moto_with(&e2e::moto(), &[("TOKENS_PER_USER", "1000/600")]).await;
    let (login, customer) = stack.onboarded("load@example.com").await;
    let jwt = stack.stepped_up(&login).await;
    let requests = (0..300)
        .map(|_| {
            stack
                .http
                .post(stack.url("/unit/customer-token"))
                .bearer_auth(&jwt)
                .json(&json!({"scope": "customers accounts cards-write"}))
        })
        .collect();
    let results = all_at_once(requests).await;
    no_5xx("concurrent customer tokens", &results);
    assert!(
        results
            .iter()
            .all(|r| r.0 == 200 && r.1["customer_id"] == customer.as_str())
    );
    let tokens: std::collections::HashSet<&str> = results
        .iter()
        .filter_map(|r| r.1["token"].as_str())
        .collect();
    assert_eq!(tokens.len(), 300, "300 distinct tokens");
    let audit = stack.audit(&login.user_id).await;
    assert_eq!(audit.len(), 300, "one audit item per token issued");
}

#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn the_per_user_token_limit_holds_under_concurrency() {
    let stack = Stack::on_moto_with(&e2e::moto(), &[("TOKENS_PER_USER", "5/600")]).await;
    let (login, _) = stack.onboarded("limit@example.com").await;
    let requests = (0..40)
        .map(|_| {
            stack
                .http
                .post(stack.url("/unit/customer-token"))
                .bearer_auth(&login.session_jwt)
                .json(&json!({"scope": "customers"}))
        })
        .collect();
    let answers = all_at_once(requests).await;
    println!("{}", figures("token limit", &answers));
    let granted = answers.iter().filter(|a| a.0 == 200).count();
    let limited: Vec<_> = answers.iter().filter(|a| a.0 == 429).collect();
    assert_eq!(granted, 5);
    assert_eq!(limited.len(), 35);
    assert!(
        limited
            .iter()
            .all(|a| e2e::code_of(&a.1) == Some("too_many_tokens"))
    );
    let audited = stack.audit(&login.user_id).await;
    assert_eq!(
        audited.len(),
        5,
        "one audit entry per token, none for the refused"
    );
    // The refusal says when to come back.
    let response = stack
        .http
        .post(stack.url("/unit/customer-token"))
        .bearer_auth(&login.session_jwt)
        .json(&json!({"scope": "customers"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&retry), "{retry}");
}
