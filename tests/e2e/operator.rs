//! The operator CLI (`bridge-admin`) against the local stack treated as a deployment: its secret
//! in Secrets Manager and its table in DynamoDB (moto), Stytch and Unit as the sandboxes.

use std::collections::HashMap;

use e2e::{Stack, json_of};
use reqwest::Method;
use serde_json::{Value, json};

/// The stack's Stytch secret (the sandbox's).
fn stack_secret() -> String {
    e2e::secret_json()["stytch_secret"]
        .as_str()
        .expect("a test secret")
        .to_owned()
}

fn text(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn customer(stack: &Stack, email: &str, jwt_subject: Option<&str>) -> String {
    stack.unit_customer(email, jwt_subject).await
}

async fn jwt_subject(stack: &Stack, customer: &str) -> Value {
    stack.unit_jwt_subject(customer).await
}

#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn link_customer_binds_one_customer_with_the_checks_of_the_bulk_command() {
    let moto = e2e::moto();
    let stack = Stack::on_moto(&moto).await;
    let customer_id = customer(&stack, "cli@example.com", None).await;
    let login = stack.sign_up("cli@example.com").await;
    let out = stack
        .bridge_admin(&moto, &["link-customer", &login.user_id, &customer_id], &[])
        .await;
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success() && stdout.starts_with("linked: Unit customer"),
        "{stdout}{stderr}"
    );
    let record = stack.record(&login.user_id).await.expect("recorded");
    assert_eq!(record.customer_id.as_deref(), Some(customer_id.as_str()));
    assert_eq!(jwt_subject(&stack, &customer_id).await, login.user_id);
    // Again: nothing to do.
    let out = stack
        .bridge_admin(&moto, &["link-customer", &login.user_id, &customer_id], &[])
        .await;
    assert!(
        text(&out).0.starts_with("already linked:"),
        "{:?}",
        text(&out)
    );

    // Someone else's e-mail: refused, one line, exit 1, nothing changed.
    let other = customer(&stack, "someone-else@example.com", None).await;
    let second = stack.sign_up("second@example.com").await;
    let out = stack
        .bridge_admin(&moto, &["link-customer", &second.user_id, &other], &[])
        .await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("bridge-admin: identity_mismatch:")),
        "{stderr}"
    );
    assert!(jwt_subject(&stack, &other).await.is_null());
    assert_eq!(
        stack
            .record(&second.user_id)
            .await
            .and_then(|r| r.customer_id),
        None
    );
    // ... unless the operator accepts it.
    let out = stack
        .bridge_admin(
            &moto,
            &[
                "link-customer",
                "--accept-mismatch",
                &second.user_id,
                &other,
            ],
            &[],
        )
        .await;
    assert!(out.status.success(), "{:?}", text(&out));

    // Malformed ids never reach anyone; a usage error is clap's.
    let out = stack
        .bridge_admin(&moto, &["link-customer", "user-test-nobody", "999999"], &[])
        .await;
    let (_, stderr) = text(&out);
    assert!(
        stderr.starts_with("bridge-admin: malformed_user_id:"),
        "{stderr}"
    );
    let out = stack
        .bridge_admin(&moto, &["link-customer", "user-test-only"], &[])
        .await;
    assert_eq!(out.status.code(), Some(2));
}

/// Writes `rows` as the CSV file of a run.
fn csv_file(dir: &std::path::Path, rows: &[String]) -> std::path::PathBuf {
    let path = dir.join("customers.csv");
    let mut text = "stytch_user_id,unit_customer_id\n".to_owned();
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// `line -> outcome` of a `--report` file.
fn report(path: &std::path::Path) -> HashMap<u64, (String, String, String)> {
    let text = std::fs::read_to_string(path).expect("the report");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("line,stytch_user_id,unit_customer_id,outcome,detail")
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.splitn(5, ',').collect();
            (
                f[0].parse().unwrap(),
                (f[1].to_owned(), f[2].to_owned(), f[3].to_owned()),
            )
        })
        .collect()
}

/// Successful `PATCH /customers/{id}` calls the Unit sandbox received, per customer.
fn patches(stack: &Stack) -> HashMap<String, usize> {
    let mut n = HashMap::new();
    for r in stack.unit_log() {
        if r.method == "PATCH" && r.status == 200 {
            *n.entry(r.path.trim_start_matches("/customers/").to_owned())
                .or_default() += 1;
        }
    }
    n
}

/// A good row of the file: its line, the Stytch user and the Unit customer with the same e-mail.
type GoodRow = (u64, String, String);

/// 956 good rows: a Stytch user and a customer with the same verified e-mail each.
async fn good_rows(stack: &Stack, rows: &mut Vec<String>) -> Vec<GoodRow> {
    let mut good = Vec::new();
    for i in 0..956 {
        let email = format!("bulk{i}@example.com");
        let login = stack.sign_up(&email).await;
        let c = customer(stack, &email, None).await;
        rows.push(format!("{},{c}", login.user_id));
        good.push((rows.len() as u64 + 1, login.user_id, c));
    }
    good
}

/// Plays a run that crashed after Unit's PATCH and before our record: the customer of `row`
/// already names its user.
async fn crashed_after_the_patch(stack: &Stack, row: &GoodRow) {
    let (_, user, customer) = row;
    let body = json!({"data": {"type": "individualCustomer", "attributes": {"jwtSubject": user}}});
    let patch = stack.unit_call(Method::PATCH, &format!("/customers/{customer}"));
    let (status, _) = json_of(patch.json(&body)).await;
    assert_eq!(status, 200);
}

/// Every bad kind of row, each four times, appended to `rows`: their lines and expected outcomes.
async fn bad_rows(
    stack: &Stack,
    rows: &mut Vec<String>,
    good: &[GoodRow],
) -> Vec<(u64, &'static str)> {
    let mut expected_bad: Vec<(u64, &'static str)> = Vec::new();
    let mut bad = |rows: &mut Vec<String>, row: String, reason: &'static str| {
        rows.push(row);
        expected_bad.push((rows.len() as u64 + 1, reason));
    };
    let valid_unknown = || format!("user-test-{}", uuid::Uuid::new_v4());
    for i in 0..4 {
        bad(
            rows,
            format!("{},1000{i},extra", valid_unknown()),
            "malformed_row",
        );
        bad(rows, format!("user-{i},10001"), "malformed_user_id");
        bad(
            rows,
            format!("{},cust-{i}", valid_unknown()),
            "malformed_customer_id",
        );
        bad(
            rows,
            format!("{},{}", good[i].1, good[i + 10].2),
            "duplicate_in_file",
        );
        let c = customer(stack, &format!("nouser{i}@example.com"), None).await;
        bad(rows, format!("{},{c}", valid_unknown()), "unknown_user");
        let u = stack.sign_up(&format!("nocustomer{i}@example.com")).await;
        bad(
            rows,
            format!("{},99999999{i}", u.user_id),
            "unknown_customer",
        );
        let u = stack.sign_up(&format!("biz{i}@example.com")).await;
        let c = stack
            .unit_sandbox()
            .add_business_customer("Pied Piper", &format!("biz{i}@example.com"));
        bad(
            rows,
            format!("{},{c}", u.user_id),
            "business_customer_unsupported",
        );
        let owner = stack.sign_up(&format!("owner{i}@example.com")).await;
        let u = stack.sign_up(&format!("taken{i}@example.com")).await;
        let c = customer(
            stack,
            &format!("taken{i}@example.com"),
            Some(&owner.user_id),
        )
        .await;
        bad(
            rows,
            format!("{},{c}", u.user_id),
            "customer_bound_elsewhere",
        );
        let u = stack.sign_up(&format!("mismatch{i}@example.com")).await;
        let c = customer(stack, &format!("not-mismatch{i}@example.com"), None).await;
        bad(rows, format!("{},{c}", u.user_id), "identity_mismatch");
        // Conflicts with our table: the user already holds a customer; the customer is bound
        // (in our table only) to someone else.
        let email = format!("holder{i}@example.com");
        let u = stack.sign_up(&email).await;
        let held = customer(stack, &email, None).await;
        let (user_id, held) = (u.user_id.parse().unwrap(), held.parse().unwrap());
        shared::onboarding::link_existing_customer(&stack.local.app, &user_id, &held, false)
            .await
            .unwrap();
        let c = customer(stack, &email, None).await;
        bad(rows, format!("{},{c}", u.user_id), "user_linked_elsewhere");
        let email = format!("claimed{i}@example.com");
        let u = stack.sign_up(&email).await;
        let c = customer(stack, &email, None).await;
        let (_, doc) = json_of(stack.unit_call(Method::GET, &format!("/customers/{c}"))).await;
        let application = doc["data"]["relationships"]["application"]["data"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        stack
            .local
            .app
            .store
            .link_application(&application, &valid_unknown().parse().unwrap())
            .await
            .unwrap();
        bad(
            rows,
            format!("{},{c}", u.user_id),
            "customer_linked_elsewhere",
        );
    }
    expected_bad
}

/// `bridge-admin link-customers` over one file, with its report.
struct LinkRun<'a> {
    stack: &'a Stack,
    moto: String,
    file: String,
    report: std::path::PathBuf,
}

impl LinkRun<'_> {
    /// One run with `extra` flags; its output.
    async fn run(&self, extra: &[&str]) -> std::process::Output {
        let report = self.report.display().to_string();
        let mut args = vec![
            "link-customers",
            "--csv",
            &self.file,
            "--report",
            &report,
            "--concurrency",
            "8",
        ];
        args.extend(extra);
        self.stack.bridge_admin(&self.moto, &args, &[]).await
    }

    /// The last run's report.
    fn report(&self) -> HashMap<u64, (String, String, String)> {
        report(&self.report)
    }
}

/// A dry run touches nothing.
async fn a_dry_run_touches_nothing(link: &LinkRun<'_>, good: &[GoodRow], crashed: u64) {
    let before = patches(link.stack);
    let out = link.run(&["--dry-run"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.contains("(dry run)"), "{stdout}");
    let r = link.report();
    assert_eq!(r.len(), 1000);
    assert_eq!(r[&good[0].0].2, "would_link");
    assert_eq!(r[&crashed].2, "would_link");
    assert_eq!(patches(link.stack), before);
    let record = link.stack.record(&good[0].1).await;
    assert_eq!(record.and_then(|r| r.customer_id), None);
}

/// A Unit outage in the middle (PATCHes fail beyond the client's retries): the failed rows have
/// neither the PATCH nor the record, the bad rows their reason. The failed lines.
async fn an_outage_fails_rows_without_half_applying_them(
    link: &LinkRun<'_>,
    good: &[GoodRow],
    expected_bad: &[(u64, &str)],
    crashed: u64,
) -> Vec<u64> {
    let stack = link.stack;
    let outage = json!({"route": "PATCH /customers/{id}", "status": 503, "times": 60});
    stack.unit_fault(outage).await;
    let out = link.run(&[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let first = link.report();
    let failed: Vec<u64> = first
        .iter()
        .filter(|(_, o)| o.2 == "failed")
        .map(|(line, _)| *line)
        .collect();
    assert!(!failed.is_empty(), "the outage failed some rows: {stdout}");
    for (line, reason) in expected_bad {
        assert_eq!(first[line].2, *reason, "line {line}");
    }
    for line in failed.iter().filter(|l| **l != crashed) {
        let (_, user, c) = good
            .iter()
            .find(|g| g.0 == *line)
            .expect("a good row failed");
        assert!(jwt_subject(stack, c).await.is_null(), "line {line}");
        assert_eq!(stack.record(user).await.and_then(|r| r.customer_id), None);
    }
    stack.clear_faults().await;
    failed
}

/// The rerun of the same file finishes the rest and leaves the done rows alone; every good row
/// was patched exactly once (the crashed one by the run that crashed: the customer is re-read
/// just before the PATCH, and it already named the user).
async fn a_rerun_finishes_the_rest_and_patches_each_row_once(
    link: &LinkRun<'_>,
    good: &[GoodRow],
    expected_bad: &[(u64, &str)],
    failed: &[u64],
) {
    let stack = link.stack;
    // Unit rate-limits a few reads of the rerun: the client backs off and retries.
    let limited =
        json!({"route": "GET /customers/{id}", "status": 429, "retry_after": 1, "times": 5});
    stack.unit_fault(limited).await;
    let out = link.run(&[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the bad rows stay bad: {stderr}"
    );
    let second = link.report();
    for (line, user, c) in good {
        let expected = if failed.contains(line) {
            "linked"
        } else {
            "already_linked"
        };
        assert_eq!(second[line].2, expected, "line {line}");
        let record = stack.record(user).await.expect("recorded");
        assert_eq!(
            record.customer_id.as_deref(),
            Some(c.as_str()),
            "line {line}"
        );
        assert_eq!(jwt_subject(stack, c).await, user.as_str(), "line {line}");
    }
    for (line, reason) in expected_bad {
        assert_eq!(second[line].2, *reason, "line {line}");
    }
    let patched = patches(stack);
    for (_, _, c) in good {
        assert_eq!(patched.get(c).copied().unwrap_or(0), 1, "customer {c}");
    }
    let already = format!("{:<32} {}", "already_linked", 956 - failed.len());
    assert!(stdout.contains(&already), "{stdout}");
    assert!(
        stdout.contains(&format!("{:<32} {}", "total", 1000)),
        "{stdout}"
    );
}

#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn a_thousand_rows_with_every_bad_kind_an_outage_and_a_resume_link_each_good_row_once() {
    let moto = e2e::moto();
    let stack = Stack::on_moto(&moto).await;
    let dir = std::env::temp_dir().join(format!("link-customers-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    // The customers exist before this service: no webhook of either sandbox takes part (and
    // none muddies the count of PATCHes below).
    for url in [
        stack.stytch("/_sandbox/webhooks"),
        stack.unit("/_sandbox/webhooks"),
    ] {
        stack
            .sandbox_control(Method::PUT, url, Some(json!({"deliver": false})))
            .await;
    }
    let mut rows = Vec::new();
    let good = good_rows(&stack, &mut rows).await;
    crashed_after_the_patch(&stack, &good[7]).await;
    let crashed = good[7].0;
    let expected_bad = bad_rows(&stack, &mut rows, &good).await;
    assert_eq!(rows.len(), 1000);
    let link = LinkRun {
        stack: &stack,
        moto,
        file: csv_file(&dir, &rows).display().to_string(),
        report: dir.join("report.csv"),
    };
    a_dry_run_touches_nothing(&link, &good, crashed).await;
    let failed =
        an_outage_fails_rows_without_half_applying_them(&link, &good, &expected_bad, crashed).await;
    a_rerun_finishes_the_rest_and_patches_each_row_once(&link, &good, &expected_bad, &failed).await;
}

#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn smoke_walks_the_flow_against_the_local_stack_as_a_deployment() {
    let moto = e2e::moto();
    let stack = Stack::on_moto(&moto).await;
    let api = stack.local.api_url.clone();
    let out = stack
        .bridge_admin(&moto, &["smoke", "--api-url", &api], &[])
        .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    for line in [
        "ok    1. Stytch test user with a password session",
        "ok    2. onboarding started",
        "the signup webhook arrived and created the form",
        "ok    3. application approved by Unit",
        "ok    4. TOTP enrolled, session stepped up, lifetime kept",
        "ok    5. customer tokens: cards-write waits for the bank's contact, the read scopes work at Unit",
        "ok    6. audit item",
        "ok    7. clean up",
        "smoke: all 7 steps passed",
    ] {
        assert!(stdout.contains(line), "{line:?} in\n{stdout}");
    }
    // The user is gone from Stytch.
    let user_id = stdout
        .lines()
        .find(|l| l.contains("Stytch test user"))
        .and_then(|l| l.split(": ").nth(1))
        .and_then(|d| d.split(' ').next())
        .unwrap()
        .to_owned();
    let (status, _) =
        json_of(stack.stytch_call(Method::GET, &format!("/v1/users/{user_id}"))).await;
    assert_eq!(status, 404);

    // Unit sends the application to manual review: smoke approves it through Unit's sandbox
    // simulation, as it would at Unit's sandbox.
    stack
        .unit_sandbox()
        .set_policy(sandboxes::unit::Policy::Review);
    let out = stack
        .bridge_admin(&moto, &["smoke", "--api-url", &api], &[])
        .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("PendingReview, approved through Unit's sandbox simulation"),
        "{stdout}"
    );
    stack
        .unit_sandbox()
        .set_policy(sandboxes::unit::Policy::Approve);

    // Without the table: the walk still passes, saying what it could not check.
    let out = stack
        .bridge_admin(&moto, &["smoke", "--api-url", &api], &[("TABLE_NAME", "")])
        .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("audit item") && stdout.contains("skipped: no TABLE_NAME"));
}

#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn smoke_names_bad_credentials() {
    let moto = e2e::moto();
    let stack = Stack::on_moto(&moto).await;
    let api = stack.local.api_url.clone();
    let project = stack.project_id();

    // A wrong Stytch secret: one sentence naming the project.
    let out = stack
        .bridge_admin(
            &moto,
            &["smoke", "--api-url", &api],
            &[
                ("SECRET_ID", ""),
                ("STYTCH_SECRET", "secret-test-wrong"),
                ("UNIT_API_TOKEN", "v2.public.whatever"),
            ],
        )
        .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("FAIL  1. Stytch test user"), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "Stytch answered 401 unauthorized_credentials: the secret does not belong to project {project}"
        )),
        "{stderr}"
    );

    // A wrong Unit org token: named in one sentence by the read-only checks.
    let out = stack
        .bridge_admin(
            &moto,
            &["smoke", "--api-url", &api, "--read-only"],
            &[
                ("SECRET_ID", ""),
                ("STYTCH_SECRET", &stack_secret()),
                ("UNIT_API_TOKEN", "v2.public.wrong"),
            ],
        )
        .await;
    let (stdout, stderr) = text(&out);
    assert!(
        stdout.contains("FAIL  2. Unit credentials"),
        "{stdout}{stderr}"
    );
    assert!(stderr.contains("Unit answered 401"), "{stderr}");
    assert!(stderr.contains("the org token is not valid at"), "{stderr}");

    // No credentials at all.
    let out = stack
        .bridge_admin(&moto, &["smoke", "--api-url", &api], &[("SECRET_ID", "")])
        .await;
    assert!(
        text(&out)
            .1
            .contains("no credentials: set STYTCH_SECRET and UNIT_API_TOKEN, or SECRET_ID")
    );
}

/// Live credentials: smoke creates nothing, not even a request to Stytch, and `--allow-live` runs
/// only the checks that create nothing.
#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn smoke_creates_nothing_with_live_credentials() {
    let moto = e2e::moto();
    let stack = Stack::on_moto(&moto).await;
    let api = stack.local.api_url.clone();
    // Live credentials: nothing is created, not even a request to Stytch.
    let before = stack.stytch_log().len();
    let live = "project-live-00000000-0000-0000-0000-000000000000";
    let live_credentials = [
        ("STYTCH_PROJECT_ID", live),
        ("SECRET_ID", ""),
        ("STYTCH_SECRET", "s"),
        ("UNIT_API_TOKEN", "u"),
    ];
    let out = stack
        .bridge_admin(&moto, &["smoke", "--api-url", &api], &live_credentials)
        .await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("these are live credentials (Stytch project project-live-"),
        "{stderr}"
    );
    assert!(stderr.contains("rerun with --allow-live"), "{stderr}");
    assert_eq!(stack.stytch_log().len(), before);

    // --allow-live runs only the checks that create nothing; here the sandbox refuses the
    // live project's credentials, and says so.
    let out = stack
        .bridge_admin(
            &moto,
            &["smoke", "--api-url", &api, "--allow-live"],
            &live_credentials,
        )
        .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("FAIL  1. Stytch credentials and JWKS"),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "Stytch answered 401 unauthorized_credentials: the secret does not belong to project {live}"
        )),
        "{stderr}"
    );
    assert!(
        stack
            .stytch_log()
            .iter()
            .skip(before)
            .all(|r| r.method == "GET"),
        "live checks only read"
    );
}

#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn smoke_read_only_checks_create_nothing() {
    let moto = e2e::moto();
    let stack = Stack::on_moto(&moto).await;
    let api = stack.local.api_url.clone();
    let (reader, customer_id) = stack.onboarded("reader@example.com").await;
    let (stytch_before, unit_before) = (stack.stytch_log().len(), stack.unit_log().len());
    let out = stack
        .bridge_admin(
            &moto,
            &[
                "smoke",
                "--api-url",
                &api,
                "--read-only",
                "--customer-id",
                &customer_id,
                "--session-jwt",
                &reader.session_jwt,
            ],
            &[],
        )
        .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    for line in [
        "ok    1. Stytch credentials and JWKS",
        "ok    2. Unit credentials",
        "ok    3. webhook endpoints refuse unsigned calls",
        "/webhooks/stytch 401, /webhooks/unit 401",
        "ok    4. token exchange for the named customer",
        "smoke: all 4 steps passed",
    ] {
        assert!(stdout.contains(line), "{line:?} in\n{stdout}");
    }
    let stytch_calls = &stack.stytch_log()[stytch_before..];
    assert!(
        stytch_calls
            .iter()
            .all(|r| r.method == "GET" || r.path == "/v1/sessions/authenticate"),
        "{stytch_calls:?}"
    );
    let unit_calls = &stack.unit_log()[unit_before..];
    assert!(
        unit_calls
            .iter()
            .all(|r| r.method == "GET" || r.path.ends_with("/token")),
        "only reads and the token exchange: {unit_calls:?}"
    );
}

/// SECURITY.md, "Operator linking binds first and never overwrites silently": our binding is
/// written (pending) before Unit is patched, a lost answer leaves it pending for the next run,
/// a definite refusal undoes it, and a recorded customer is replaced only with `--replace`.
/// `bridge-admin link-customer <user> <customer> [extra]`.
async fn link_customer(
    stack: &Stack,
    moto: &str,
    user: &str,
    customer: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec!["link-customer", user, customer];
    args.extend(extra);
    stack.bridge_admin(moto, &args, &[]).await
}

/// The user's `(customer_id, pending_customer_id)`.
async fn binding(stack: &Stack, user: &str) -> (Option<String>, Option<String>) {
    let record = stack.record(user).await.unwrap();
    (
        record.customer_id.map(String::from),
        record.pending_customer_id.map(String::from),
    )
}

/// Loses the answers of Unit's PATCHes of `customer` (the PATCH itself is applied or not).
async fn lose_patch_answers(stack: &Stack, customer: &str) {
    let route = format!("PATCH /customers/{customer}");
    stack
        .unit_fault(json!({"route": route, "drop": true, "times": 3}))
        .await;
}

/// An operator link binds first: when the PATCH's answer is lost the binding stays pending and
/// mints nothing, and the next run finishes it.
#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn operator_links_bind_first_and_the_next_run_finishes_a_pending_one() {
    let moto = e2e::moto();
    let stack = Stack::on_moto_with(&moto, &[("UPSTREAM_MAX_ATTEMPTS", "1")]).await;
    let email = "pending@example.com";
    let login = stack.sign_up(email).await;
    let user = login.user_id.as_str();
    let first = customer(&stack, email, None).await;
    lose_patch_answers(&stack, &first).await;
    let out = link_customer(&stack, &moto, user, &first, &[]).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stays pending"), "{stderr}");
    assert_eq!(binding(&stack, user).await, (None, Some(first.clone())));
    let minted = e2e::answer(stack.customer_token(&login.session_jwt, json!({}))).await;
    assert_eq!(minted, (409, "onboarding_incomplete".into()));
    let out = link_customer(&stack, &moto, user, &first, &[]).await;
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(binding(&stack, user).await, (Some(first.clone()), None));
    assert_eq!(jwt_subject(&stack, &first).await, user);
}

/// Another customer for a user who holds one is refused unless `--replace`; a definite refusal
/// by Unit undoes our pending binding.
#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn operator_links_replace_only_when_asked_and_undo_on_a_refusal() {
    let moto = e2e::moto();
    let stack = Stack::on_moto_with(&moto, &[("UPSTREAM_MAX_ATTEMPTS", "1")]).await;
    let email = "replace@example.com";
    let user = stack.sign_up(email).await.user_id;
    let first = customer(&stack, email, None).await;
    let out = link_customer(&stack, &moto, &user, &first, &[]).await;
    assert!(out.status.success(), "{:?}", text(&out));
    let second = customer(&stack, email, None).await;
    let out = link_customer(&stack, &moto, &user, &second, &[]).await;
    let (_, stderr) = text(&out);
    assert!(stderr.contains("user_linked_elsewhere"), "{stderr}");
    let untouched = jwt_subject(&stack, &second).await;
    assert!(untouched.is_null(), "Unit untouched");
    let refusal = json!({"route": format!("PATCH /customers/{second}"), "status": 400, "times": 1});
    stack.unit_fault(refusal).await;
    let out = link_customer(&stack, &moto, &user, &second, &["--replace"]).await;
    let (_, stderr) = text(&out);
    assert!(stderr.contains("unit_refused"), "{stderr}");
    assert_eq!(binding(&stack, &user).await, (Some(first.clone()), None));
    let (_, doc) = json_of(stack.unit_call(Method::GET, &format!("/customers/{second}"))).await;
    let key = doc["data"]["relationships"]["application"]["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let linked = stack.local.app.store.user_for_application(&key).await;
    assert_eq!(linked.unwrap(), None);
    let out = link_customer(&stack, &moto, &user, &second, &["--replace"]).await;
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(binding(&stack, &user).await, (Some(second), None));
}

/// A pending link whose customer someone else bound meanwhile is undone by the next run.
#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn a_pending_link_whose_customer_was_bound_elsewhere_meanwhile_is_undone() {
    let moto = e2e::moto();
    let stack = Stack::on_moto_with(&moto, &[("UPSTREAM_MAX_ATTEMPTS", "1")]).await;
    let other = stack.sign_up("pending-other@example.com").await;
    let third = customer(&stack, "pending-other@example.com", None).await;
    lose_patch_answers(&stack, &third).await;
    let out = link_customer(&stack, &moto, &other.user_id, &third, &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let someone_else = json!({"data": {"type": "individualCustomer", "attributes": {"jwtSubject": "user-test-someone-else"}}});
    let patch = stack.unit_call(Method::PATCH, &format!("/customers/{third}"));
    json_of(patch.json(&someone_else)).await;
    let out = link_customer(&stack, &moto, &other.user_id, &third, &[]).await;
    assert!(
        text(&out).1.contains("customer_bound_elsewhere"),
        "{:?}",
        text(&out)
    );
    assert_eq!(binding(&stack, &other.user_id).await, (None, None));
}

/// `bridge-admin probe` (`PROBE=1 make smoke`) against the sandboxes: every question is asked
/// and, since the sandboxes follow our readings, every answer agrees; live credentials are
/// refused before anything is sent.
#[tokio::test]
#[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
async fn the_probe_prints_each_answer_beside_its_reading_and_refuses_live_credentials() {
    let moto = e2e::moto();
    let stack = Stack::on_moto(&moto).await;
    let (_, customer) = stack.onboarded("probe@example.com").await;
    let vars = [
        ("PROBE_EMAIL", "probe@example.com"),
        ("PROBE_PASSWORD", "correct horse battery staple"),
    ];
    let args = ["probe", "--customer-id", customer.as_str()];
    let out = stack.bridge_admin(&moto, &args, &vars).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    for question in [
        "fresh session JWT, scope customers (OQ2)",
        "another Stytch user (OQ4)",
        "(cards-write) without a JWT",
        "customer-token-write",
        "a wrong TOTP code",
    ] {
        assert!(stdout.contains(question), "{question} not asked:\n{stdout}");
    }
    assert!(!stdout.contains("DISAGREES"), "{stdout}");
    assert!(stdout.contains("probe: 0 disagreement(s)"), "{stdout}");
    let stranger_deleted = stack
        .stytch_log()
        .iter()
        .any(|r| r.method == "DELETE" && r.path.starts_with("/v1/users/user-test-"));
    assert!(stranger_deleted, "the probe's own test user is deleted");

    let live = [vars[0], vars[1], ("UNIT_API_URL", "https://api.unit.co")];
    // Only the probe logs in with the password (the bridge's own Stytch calls, from the
    // webhooks of the probe's throwaway user, may still arrive meanwhile).
    let logins = || {
        stack
            .stytch_log()
            .iter()
            .filter(|r| r.path == "/v1/passwords/authenticate")
            .count()
    };
    let before = logins();
    let out = stack.bridge_admin(&moto, &args, &live).await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(stderr.contains("test credentials only"), "{stderr}");
    assert_eq!(logins(), before, "nothing was sent");
}
