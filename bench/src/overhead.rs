//! The bench's in-process figures: each route's own overhead (handler time minus the time spent
//! waiting on Stytch and Unit), the upstream round trips of every route (counted at the sandboxes
//! and at a counting store), repeated calls of one user, and connection reuse.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use local_stack::Function;
use local_stack::stack::LocalStack;
use serde_json::{Value, json};
use shared::App;
use shared::domain::UserId;
use shared::store::{
    ApplicationLinks, Attempt, AuditEntry, AuditLog, EventMarkers, RateLimits, StoreError,
    TokenSlot, UserRecord, UserRecords, UserStore,
};

use crate::measure::{Error, kyc, memory_stack, percentile, secrets_json, verdict};

/// A `UserStore` that counts reads and writes (for the round-trip table).
struct Counting {
    inner: Arc<dyn UserStore>,
    reads: AtomicU64,
    writes: AtomicU64,
}

impl Counting {
    fn snapshot(&self) -> (u64, u64) {
        (
            self.reads.load(Ordering::SeqCst),
            self.writes.load(Ordering::SeqCst),
        )
    }
    fn read(&self) {
        self.reads.fetch_add(1, Ordering::SeqCst);
    }
    fn write(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl UserRecords for Counting {
    async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
        self.read();
        self.inner.get_user(user_id).await
    }

    async fn create_user(&self, record: &UserRecord) -> Result<(), StoreError> {
        self.write();
        self.inner.create_user(record).await
    }

    async fn update_user(&self, record: &UserRecord) -> Result<UserRecord, StoreError> {
        self.write();
        self.inner.update_user(record).await
    }
}

#[async_trait]
impl ApplicationLinks for Counting {
    async fn link_application(
        &self,
        application_id: &str,
        user_id: &UserId,
    ) -> Result<(), StoreError> {
        self.write();
        self.inner.link_application(application_id, user_id).await
    }

    async fn unlink_application(
        &self,
        application_id: &str,
        user_id: &UserId,
    ) -> Result<(), StoreError> {
        self.write();
        self.inner.unlink_application(application_id, user_id).await
    }

    async fn user_for_application(
        &self,
        application_id: &str,
    ) -> Result<Option<UserId>, StoreError> {
        self.read();
        self.inner.user_for_application(application_id).await
    }
}

#[async_trait]
impl EventMarkers for Counting {
    async fn record_event(&self, event_id: &str, expires_at: i64) -> Result<bool, StoreError> {
        self.write();
        self.inner.record_event(event_id, expires_at).await
    }

    async fn event_processed(&self, event_id: &str) -> Result<bool, StoreError> {
        self.read();
        self.inner.event_processed(event_id).await
    }
}

#[async_trait]
impl AuditLog for Counting {
    async fn put_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.write();
        self.inner.put_audit(entry).await
    }

    async fn audit_for_user(&self, user_id: &str) -> Result<Vec<AuditEntry>, StoreError> {
        self.read();
        self.inner.audit_for_user(user_id).await
    }
}

#[async_trait]
impl RateLimits for Counting {
    async fn reserve_attempt(
        &self,
        key: &str,
        max: u32,
        window: u32,
        now: i64,
    ) -> Result<Attempt, StoreError> {
        self.write();
        self.inner.reserve_attempt(key, max, window, now).await
    }

    async fn release_attempt(&self, key: &str) -> Result<(), StoreError> {
        self.write();
        self.inner.release_attempt(key).await
    }

    async fn clear_attempts(&self, key: &str) -> Result<(), StoreError> {
        self.write();
        self.inner.clear_attempts(key).await
    }

    async fn take_token_slot(
        &self,
        user_id: &str,
        max: u32,
        window: u32,
        now: i64,
    ) -> Result<TokenSlot, StoreError> {
        self.write();
        self.inner.take_token_slot(user_id, max, window, now).await
    }

    async fn give_back_token_slot(&self, user_id: &str) -> Result<(), StoreError> {
        self.write();
        self.inner.give_back_token_slot(user_id).await
    }
}

/// `bench trips`: the round-trip and own-overhead tables of the report, from the in-process
/// stack alone.
pub async fn trips_only(overhead_requests: usize) -> Result<String, Error> {
    let http = reqwest::Client::new();
    let (overhead, trips, reuse) =
        overhead(&memory_stack().await?, &http, overhead_requests).await?;
    Ok(format!(
        "| route | requests | own p50 | own p99 | p50 with the sandboxes' time | status |\n|---|---|---|---|---|---|\n{overhead}\n\
         | route | Stytch calls | Unit calls | store reads | store writes |\n|---|---|---|---|---|\n{trips}\n{reuse}\n"
    ))
}

/// A JSON request for a handler, as API Gateway would build it.
fn request(
    method: &str,
    path: &str,
    jwt: Option<&str>,
    headers: &[(&str, String)],
    body: &str,
) -> lambda_http::Request {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(jwt) = jwt {
        builder = builder.header("authorization", format!("Bearer {jwt}"));
    }
    for (k, v) in headers {
        builder = builder.header(*k, v);
    }
    builder
        .body(lambda_http::Body::from(body.to_owned()))
        .unwrap_or_else(|_| lambda_http::Request::default())
}

tokio::task_local! {
    /// Time the current request spent in calls to Stytch and Unit.
    static UPSTREAM_WAIT: std::cell::Cell<Duration>;
}

/// Adds the lifetime of every `upstream` span (one per call to Stytch or Unit, opened by
/// `shared::upstream`) to the current task's [`UPSTREAM_WAIT`], if it has one.
struct UpstreamTime;

/// When an `upstream` span opened.
struct Opened(Instant);

impl<S> tracing_subscriber::Layer<S> for UpstreamTime
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        _: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Opened(Instant::now()));
        }
    }

    fn on_close(&self, id: tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if let Some(span) = ctx.span(&id)
            && let Some(Opened(at)) = span.extensions().get::<Opened>()
        {
            let took = at.elapsed();
            let _ = UPSTREAM_WAIT.try_with(|wait| wait.set(wait.get() + took));
        }
    }
}

/// Logs on stderr at `RUST_LOG` (default `error`), and the upstream-time accounting, which sees
/// the `upstream` spans whatever the log level.
pub fn init_tracing() {
    use tracing_subscriber::prelude::*;
    let level = std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into());
    let logs = tracing_subscriber::fmt::layer()
        .compact()
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_filter(
            tracing_subscriber::EnvFilter::try_new(level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        );
    let upstream = UpstreamTime.with_filter(tracing_subscriber::filter::filter_fn(|m| {
        m.is_span() && m.name() == "upstream"
    }));
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(upstream)
        .try_init();
}

/// Runs `req` through `handler` and returns (total, upstream wait, status).
async fn timed(
    app: &Arc<App>,
    function: &str,
    req: lambda_http::Request,
) -> (Duration, Duration, u16) {
    let started = Instant::now();
    let (status, waited) = UPSTREAM_WAIT
        .scope(std::cell::Cell::new(Duration::ZERO), async {
            let function = Function::named(function).unwrap_or(Function::CustomerToken);
            let response = function.serve(app.clone(), req).await;
            (response.status().as_u16(), UPSTREAM_WAIT.with(|w| w.get()))
        })
        .await;
    (started.elapsed(), waited, status)
}

/// Onboards a user through the handlers and measures the own overhead of customer-token and
/// totp-stepup, the round trips of every route, and connection reuse.
pub(crate) async fn overhead(
    stack: &LocalStack,
    http: &reqwest::Client,
    n: usize,
) -> Result<(String, String, String), Error> {
    let (app, counting) = counting_app(stack).await?;
    // Only our calls count (the Unit sandbox fetches the Stytch JWKS itself), and the sandboxes'
    // webhooks to the stack's own API are switched off so that nothing else runs meanwhile.
    if let Some((s, _)) = &stack.stytch {
        s.webhooks.set_enabled(false);
    }
    if let Some((u, _)) = &stack.unit {
        u.webhooks.set_enabled(false);
    }

    let (user_id, jwt, email) = stack.sign_up(http).await?;
    // Warm-up: the JWKS is fetched once per cold start; the table shows steady state.
    timed(
        &app,
        "customer-token",
        request("POST", "/unit/customer-token", Some(&jwt), &[], "{}"),
    )
    .await;
    let mut trips = Trips {
        stack,
        counting: &counting,
        rows: String::new(),
    };
    onboarding_trips(&app, &mut trips, &user_id, &jwt, &email).await?;
    let stepped = step_up_trips(&app, stack, http, &mut trips, &user_id, &jwt, &email).await?;
    let token_body = json!({"scope": "customers cards-write"}).to_string();
    let read_body = json!({"scope": "customers accounts"}).to_string();
    token_trips(&app, &mut trips, &stepped, &token_body, &read_body).await?;
    repeated_calls(&app, stack, http, &mut trips).await?;

    // Own overhead: many requests, upstream wait taken out.
    let (rows, reuse) = own_overhead(&app, stack, &stepped, n, &token_body, &read_body).await?;
    Ok((rows, trips.rows, reuse))
}

/// An App of our own on the same sandboxes as `stack`, with a counting in-memory store (also
/// returned) and the limits lifted.
async fn counting_app(stack: &LocalStack) -> Result<(Arc<App>, Arc<Counting>), Error> {
    let mut config = stack.app.config.clone();
    let secrets_json = secrets_json(stack).await?;
    config.secrets = shared::config::SecretsLocation::Inline(secrets_json);
    config.store = shared::config::StoreLocation::Memory;
    config.totp.max_failures = u32::MAX;
    // The per-user limits would refuse a benchmark's thousands of tokens for one user.
    config.tokens.per_user.max = u32::MAX;
    // As deployed by default: every mint confirms the session at Stytch.
    config.session.check = shared::config::SessionCheck::All;
    let mut app = App::build(config, None).await?;
    let counting = Arc::new(Counting {
        inner: app.store.clone(),
        reads: AtomicU64::new(0),
        writes: AtomicU64::new(0),
    });
    app.store = counting.clone();
    let app = Arc::new(app);
    if stack.stytch.is_none() || stack.unit.is_none() {
        return Err("the benchmark needs both sandboxes".into());
    }
    Ok((app, counting))
}

/// Our calls at the Stytch and Unit sandboxes and the store's `(reads, writes)` so far.
type Mark = (usize, usize, (u64, u64));

/// The round-trip table: each row the calls made between a [`Trips::mark`] and a
/// [`Trips::trip`].
struct Trips<'a> {
    stack: &'a LocalStack,
    counting: &'a Counting,
    /// The table's rows so far.
    rows: String,
}

impl Trips<'_> {
    /// Our calls at the sandboxes (by user agent) and the store's reads and writes so far.
    fn mark(&self) -> Mark {
        let ours = |log: Vec<sandboxes::LoggedRequest>| {
            log.iter()
                .filter(|r| r.user_agent.starts_with("stytch-unit-bridge/"))
                .count()
        };
        let stytch_calls = self
            .stack
            .stytch
            .as_ref()
            .map_or(0, |(_, r)| ours(r.controls.requests()));
        let unit_calls = self
            .stack
            .unit
            .as_ref()
            .map_or(0, |(_, r)| ours(r.controls.requests()));
        (stytch_calls, unit_calls, self.counting.snapshot())
    }

    /// Adds the row `name`: the calls made since `before`.
    fn trip(&mut self, name: &str, before: Mark) -> Result<(), Error> {
        let after = self.mark();
        writeln!(
            self.rows,
            "| {name} | {} | {} | {} | {} |",
            after.0 - before.0,
            after.1 - before.1,
            after.2.0 - before.2.0,
            after.2.1 - before.2.1
        )?;
        Ok(())
    }
}

/// The round trips of onboarding `user_id` (session `jwt`, e-mail `email`): the signup
/// webhook, `GET /onboarding`, the application (approved at once) and Unit's webhook.
async fn onboarding_trips(
    app: &Arc<App>,
    trips: &mut Trips<'_>,
    user_id: &str,
    jwt: &str,
    email: &str,
) -> Result<(), Error> {
    // Signup webhook (the user object in the event: no Stytch read).
    let secrets = app.secrets.current().await?;
    let body = json!({"action": "CREATE", "event_id": "webhook-event-test-bench", "id": user_id, "object_type": "user",
        "source": "DIRECT", "user": {"user_id": user_id, "emails": [{"email": email, "verified": true}]}})
    .to_string();
    let ts = sandboxes::now().unix_timestamp();
    let msg = format!("msg_{}", sandboxes::random_hex(8));
    let signed = [
        ("svix-id", msg.clone()),
        ("svix-timestamp", ts.to_string()),
        (
            "svix-signature",
            secrets
                .stytch_webhook_secret
                .sign(&msg, ts, body.as_bytes()),
        ),
    ];
    let before = trips.mark();
    let (_, _, status) = timed(
        app,
        "signup-webhook",
        request("POST", "/webhooks/stytch", None, &signed, &body),
    )
    .await;
    if status != 200 {
        return Err(format!("signup webhook answered {status}").into());
    }
    trips.trip("POST /webhooks/stytch (user create)", before)?;
    let before = trips.mark();
    timed(
        app,
        "signup-webhook",
        request("GET", "/onboarding", Some(jwt), &[], ""),
    )
    .await;
    trips.trip("GET /onboarding (form pending)", before)?;
    let before = trips.mark();
    apply(app, jwt, &kyc(email)).await?;
    trips.trip("POST /onboarding/application (approved at once)", before)?;
    let approved = json!({"data": [{"id": format!("{}", 800_000 + fastrand::u32(..0x100_0000)), "type": "customer.created", "attributes": {"createdAt": sandboxes::rfc3339(sandboxes::now())},
        "relationships": {"application": {"data": {"type": "individualApplication", "id": app.store.get_user(user_id).await?.and_then(|r| r.application_id).map(String::from).unwrap_or_default()}}}}]})
    .to_string();
    let unit_sig = [(
        "x-unit-signature",
        shared::webhook::unit_signature(secrets.unit_webhook_token.expose(), approved.as_bytes()),
    )];
    let before = trips.mark();
    timed(
        app,
        "signup-webhook",
        request("POST", "/webhooks/unit", None, &unit_sig, &approved),
    )
    .await;
    trips.trip("POST /webhooks/unit (known application)", before)?;
    Ok(())
}

/// The round trips of the TOTP enrolment and step-up, after `email` is proven in the session
/// `jwt` at Stytch; the stepped-up session's JWT.
async fn step_up_trips(
    app: &Arc<App>,
    stack: &LocalStack,
    http: &reqwest::Client,
    trips: &mut Trips<'_>,
    user_id: &str,
    jwt: &str,
    email: &str,
) -> Result<String, Error> {
    // The bank account's e-mail proven in the session (at Stytch, not through us), so the
    // authenticator enrolled next is bound and confirmed.
    let jwt = stack.prove_email(http, jwt, email).await?;
    let before = trips.mark();
    let enrol = timed(
        app,
        "totp-stepup",
        request("POST", "/mfa/totp", Some(&jwt), &[], "{}"),
    )
    .await;
    trips.trip("POST /mfa/totp", before)?;
    if enrol.2 != 201 {
        return Err(format!("enrolment answered {}", enrol.2).into());
    }
    let totp_secret = {
        let (_, s) = stack.stytch.as_ref().ok_or("sandbox")?;
        let listed: Value = http
            .get(format!("{}/_sandbox/totp/{user_id}", s.url))
            .send()
            .await?
            .json()
            .await?;
        listed["secret"].as_str().unwrap_or_default().to_owned()
    };
    let key = sandboxes::totp::base32_decode(&totp_secret).unwrap_or_default();
    let code = sandboxes::totp::code_at(&key, sandboxes::now().unix_timestamp());
    let before = trips.mark();
    let stepped = {
        let req = request(
            "POST",
            "/mfa/totp/authenticate",
            Some(&jwt),
            &[],
            &json!({"totp_code": code}).to_string(),
        );
        let response = Function::TotpStepup.serve(app.clone(), req).await;
        let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap_or_default();
        body["session_jwt"].as_str().unwrap_or_default().to_owned()
    };
    trips.trip("POST /mfa/totp/authenticate (right code)", before)?;
    if stepped.is_empty() {
        return Err("the step-up failed".into());
    }
    Ok(stepped)
}

/// The round trips of customer-token for the `stepped` session (a sensitive scope with
/// `token_body`, read-only scopes with `read_body`), and of a wrong TOTP code.
async fn token_trips(
    app: &Arc<App>,
    trips: &mut Trips<'_>,
    stepped: &str,
    token_body: &str,
    read_body: &str,
) -> Result<(), Error> {
    let before = trips.mark();
    let (_, _, status) = timed(
        app,
        "customer-token",
        request(
            "POST",
            "/unit/customer-token",
            Some(stepped),
            &[],
            token_body,
        ),
    )
    .await;
    if status != 200 {
        return Err(format!("customer-token answered {status}").into());
    }
    trips.trip(
        "POST /unit/customer-token (sensitive scope: the session confirmed at Stytch)",
        before,
    )?;
    let before = trips.mark();
    timed(
        app,
        "customer-token",
        request(
            "POST",
            "/unit/customer-token",
            Some(stepped),
            &[],
            read_body,
        ),
    )
    .await;
    trips.trip("POST /unit/customer-token (read-only scopes)", before)?;
    let before = trips.mark();
    timed(
        app,
        "totp-stepup",
        request(
            "POST",
            "/mfa/totp/authenticate",
            Some(stepped),
            &[],
            r#"{"totp_code":"000000"}"#,
        ),
    )
    .await;
    trips.trip("POST /mfa/totp/authenticate (wrong code)", before)?;
    Ok(())
}

/// The connections the Stytch and Unit sandboxes have accepted so far.
fn connections(stack: &LocalStack) -> (u64, u64) {
    (
        stack
            .stytch
            .as_ref()
            .map_or(0, |(_, r)| r.controls.connections()),
        stack
            .unit
            .as_ref()
            .map_or(0, |(_, r)| r.controls.connections()),
    )
}

/// `n` requests of each measured route for the `stepped` session, timed with the upstream wait
/// taken out: the own-overhead rows, and the connection reuse over those requests.
async fn own_overhead(
    app: &Arc<App>,
    stack: &LocalStack,
    stepped: &str,
    n: usize,
    token_body: &str,
    read_body: &str,
) -> Result<(String, String), Error> {
    let connections_before = connections(stack);
    let mut rows = String::new();
    for (name, function, path, body, status_wanted) in [
        (
            "POST /unit/customer-token (sensitive, session check at Stytch)",
            "customer-token",
            "/unit/customer-token",
            token_body.to_owned(),
            200,
        ),
        (
            "POST /unit/customer-token (read-only)",
            "customer-token",
            "/unit/customer-token",
            read_body.to_owned(),
            200,
        ),
        (
            "POST /mfa/totp/authenticate (wrong code)",
            "totp-stepup",
            "/mfa/totp/authenticate",
            r#"{"totp_code":"000000"}"#.to_owned(),
            401,
        ),
    ] {
        let mut own = Vec::with_capacity(n);
        let mut totals = Vec::with_capacity(n);
        let mut statuses = std::collections::BTreeSet::new();
        for _ in 0..n {
            let (total, waited, status) = timed(
                app,
                function,
                request("POST", path, Some(stepped), &[], &body),
            )
            .await;
            statuses.insert(status);
            own.push(total.saturating_sub(waited).as_secs_f64() * 1e6);
            totals.push(total.as_secs_f64() * 1e6);
        }
        let (p50, p99) = (percentile(own.clone(), 0.5), percentile(own, 0.99));
        let total = percentile(totals, 0.5);
        let ok = p50 < 150.0 && p99 < 1000.0 && statuses == [status_wanted].into();
        writeln!(
            rows,
            "| {name} | {n} | {p50:.0} µs | {p99:.0} µs | {total:.0} µs | {statuses:?} ({}) |",
            verdict(ok)
        )?;
    }
    let connections_after = connections(stack);
    let reuse = format!(
        "Over those {} requests the one HTTP client of the App opened {} new connection(s) to the Stytch sandbox and {} to the \
         Unit sandbox: the connection pool is reused, nothing is built per request.",
        3 * n,
        connections_after.0 - connections_before.0,
        connections_after.1 - connections_before.1
    );
    Ok((rows, reuse))
}

/// `POST /onboarding/application` with `kyc` for the session `jwt`, through the handler; any
/// answer but 201 is an error.
async fn apply(app: &Arc<App>, jwt: &str, kyc: &Value) -> Result<(), Error> {
    let body = kyc.to_string();
    let req = request("POST", "/onboarding/application", Some(jwt), &[], &body);
    match timed(app, "signup-webhook", req).await {
        (_, _, 201) => Ok(()),
        (_, _, status) => Err(format!("application answered {status}").into()),
    }
}

/// The round trips of repeated calls by one user whose application waits on review (SECURITY.md,
/// "One user cannot exhaust the upstreams"): within the onboarding freshness window neither
/// `GET /onboarding` nor customer-token asks Unit again, and past the per-user limit
/// `POST /mfa/totp` asks Stytch nothing.
async fn repeated_calls(
    app: &Arc<App>,
    stack: &LocalStack,
    http: &reqwest::Client,
    trips: &mut Trips<'_>,
) -> Result<(), Error> {
    let (_, jwt, email) = stack.sign_up(http).await?;
    let mut pending = kyc(&email);
    // One of Unit's test SSNs: the application waits on review.
    pending["ssn"] = json!("000000004");
    apply(app, &jwt, &pending).await?;
    let onboarding = || request("GET", "/onboarding", Some(&jwt), &[], "");
    let token = || {
        request(
            "POST",
            "/unit/customer-token",
            Some(&jwt),
            &[],
            r#"{"scope":"customers"}"#,
        )
    };
    // The first look of the window may ask Unit; the table shows the ones after it.
    timed(app, "signup-webhook", onboarding()).await;
    let before = trips.mark();
    for _ in 0..10 {
        timed(app, "signup-webhook", onboarding()).await;
    }
    trips.trip(
        "GET /onboarding, application in review: 10 more within the freshness window (together)",
        before,
    )?;
    let before = trips.mark();
    for _ in 0..10 {
        let (_, _, status) = timed(app, "customer-token", token()).await;
        if status == 200 {
            return Err("a pending user got a customer token".into());
        }
    }
    trips.trip(
        "POST /unit/customer-token, application in review: 10 within the window (together)",
        before,
    )?;
    let enrol = || request("POST", "/mfa/totp", Some(&jwt), &[], "{}");
    for _ in 0..app.config.totp.enrolments_per_user.max {
        timed(app, "totp-stepup", enrol()).await;
    }
    let before = trips.mark();
    let (_, _, status) = timed(app, "totp-stepup", enrol()).await;
    if status != 429 {
        return Err(format!("the enrolment past the limit answered {status}").into());
    }
    trips.trip(
        &format!(
            "POST /mfa/totp, the {}th within the hour (429)",
            app.config.totp.enrolments_per_user.max + 1
        ),
        before,
    )?;
    Ok(())
}
