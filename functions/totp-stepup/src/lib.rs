//! totp-stepup: TOTP enrolment, step-up and recovery through Stytch, so the caller's session JWT
//! carries a fresh `totp` factor (what customer-token asks of sensitive scopes).
//!
//! Every route takes the caller's Stytch session JWT, verified locally; the user id always comes
//! from it, never from the body. Secrets, codes and recovery codes are never logged or stored.
//! Beyond Stytch's own limits, failed checks are counted in the store (atomic, conditional
//! counters with a TTL; SECURITY.md, "The TOTP lockout is not a weapon"): per session, TOTP
//! codes and recovery codes apart, `TOTP_MAX_FAILURES` in `TOTP_LOCKOUT_SECONDS`, after which
//! the session is refused and revoked at Stytch; and per user per day, `TOTP_DAILY_CEILING`
//! failed TOTP codes in sessions that never completed a step-up, after which such sessions are
//! refused (an alert). A user's stepped-up session is never refused for another's failures.

use std::sync::Arc;

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use shared::domain::UserId;
use shared::error::{StytchRefusal, code_check_failure, never_checked};
use shared::jwt::VerifiedSession;
use shared::secrets::SecretString;
use shared::store::{self, Attempt, AuditEntry, AuditLog, UserRecords};
use shared::stytch::{Authenticated, StytchClient, StytchError};
use shared::{ApiError, App};
use tokio::time::Instant;

/// The routes this function serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /mfa/totp`: enrol an authenticator app.
    Enrol,
    /// `POST /mfa/totp/authenticate`: step up with a TOTP code.
    Authenticate,
    /// `POST /mfa/totp/recover`: step up with a recovery code.
    Recover,
}

impl shared::http::Routes for Route {
    const ALL: &'static [Self] = &[Self::Enrol, Self::Authenticate, Self::Recover];

    fn method(self) -> Method {
        Method::POST
    }

    fn path(self) -> &'static str {
        match self {
            Self::Enrol => "/mfa/totp",
            Self::Authenticate => "/mfa/totp/authenticate",
            Self::Recover => "/mfa/totp/recover",
        }
    }
}

/// Handles one request (through [`shared::lambda::serve`]).
pub async fn handle(app: Arc<App>, req: Request) -> Result<Response<Body>, ApiError> {
    let (app, req) = (&*app, &req);
    let route = shared::http::route::<Route>(req)?;
    let session = app.authenticate(req).await?;
    let deadline = shared::http::deadline(req);
    match route {
        Route::Enrol => enrol(app, req, &session, deadline).await,
        Route::Authenticate => {
            let body: CodeIn = parse(req)?;
            let code = body.totp_code.unwrap_or_default();
            if !(code.len() == 6 && code.chars().all(|c| c.is_ascii_digit())) {
                return Err(field_error("totp_code", "must be exactly 6 digits"));
            }
            check(app, &session, Check::Totp(&code), deadline).await
        }
        Route::Recover => {
            let body: CodeIn = parse(req)?;
            let code = body.recovery_code.unwrap_or_default().to_ascii_lowercase();
            let shaped = code.len() == 14
                && code.split('-').count() == 3
                && code
                    .split('-')
                    .all(|p| p.len() == 4 && p.chars().all(|c| c.is_ascii_alphanumeric()));
            if !shaped {
                return Err(field_error(
                    "recovery_code",
                    "must look like xxxx-xxxx-xxxx",
                ));
            }
            check(app, &session, Check::Recovery(&code), deadline).await
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CodeIn {
    totp_code: Option<String>,
    recovery_code: Option<String>,
}

fn parse(req: &Request) -> Result<CodeIn, ApiError> {
    shared::http::json_body(req, "a JSON object with the code")
}

fn field_error(field: &str, problem: &str) -> ApiError {
    ApiError::invalid_fields(vec![shared::error::FieldProblem::new(field, problem)])
}

/// What enrolment answers; the secret and recovery codes are shown this once.
#[derive(Serialize)]
struct Enrolled {
    totp_id: String,
    secret: SecretString,
    qr_code: String,
    recovery_codes: Vec<SecretString>,
}

/// The body of `POST /mfa/totp`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EnrolIn {
    /// Replace the user's authenticator (lost or changed) with a new one.
    #[serde(default)]
    replace: bool,
}

/// `POST /mfa/totp`: a new TOTP registration for the caller. An unverified one left from an
/// abandoned enrolment is replaced; a verified one is a 409, unless the caller asks to replace
/// it. Once a user has had a verified TOTP, replacing any registration (a lost authenticator,
/// or a pending one) needs a TOTP or recovery-code factor from the last `STEP_UP_MAX_AGE`
/// seconds: a password alone never takes over a user's second factor. A replacement ends the
/// user's other Stytch sessions and leaves an audit entry.
async fn enrol(
    app: &App,
    req: &Request,
    session: &VerifiedSession,
    deadline: Instant,
) -> Result<Response<Body>, ApiError> {
    let asked: EnrolIn = shared::http::json_body(req, "{} or {\"replace\": true}")?;
    let config = &app.config;
    // Each enrolment is up to four Stytch calls: bounded per user (SECURITY.md, "One user
    // cannot exhaust the upstreams"). The key is under the TOTP lockout's prefix (its IAM grant).
    if let Some(retry_after) = store::take_slot(
        &*app.store,
        &format!("totp:enrol:{}", session.user_id),
        config.totp.enrolments_per_user,
        shared::http::now_epoch(),
    )
    .await?
    {
        tracing::warn!("TOTP enrolments limited for this user");
        return Err(ApiError::too_many_enrolments(retry_after));
    }
    let proven = session.has_recent_second_factor(shared::authenticator::step_up_window(
        config,
        shared::http::now_epoch(),
    ));
    let refuse = || ApiError::second_factor_required(config.step_up.max_age.as_secs());
    let user_id = &session.user_id;
    // A bank customer's authenticator is bound to the contact on their Unit customer: proving
    // it in this session confirms the new TOTP, and stands in for the old one to replace it.
    let record = app.store.get_user(user_id).await?;
    let customer = record.as_ref().and_then(|r| r.customer_id.clone());
    let contact = match &customer {
        Some(c) => {
            shared::authenticator::proves_customer_contact(app, session, c, deadline).await?
        }
        None => false,
    };
    let proof = Proof {
        proven: proven || contact,
        contact,
        had_verified: record
            .as_ref()
            .is_some_and(|r| r.second_factor_verified_at.is_some()),
    };
    if asked.replace {
        if !proof.proven {
            return Err(refuse());
        }
        return replace_totp(app, req, session, proof, deadline).await;
    }
    start_enrolment(app, session, proof, deadline).await
}

/// What the enrolling session has shown: a recent second factor (or the customer's contact),
/// and whether the user ever had a verified TOTP.
#[derive(Clone, Copy)]
struct Proof {
    /// A recent TOTP or recovery-code factor, or the contact on the user's Unit customer.
    proven: bool,
    /// The contact on the user's Unit customer, proven in this session.
    contact: bool,
    /// Our record shows a verified TOTP once.
    had_verified: bool,
}

/// Replaces every registration of the user with a new one (the caller proved a second factor).
/// When an active one is replaced, the user's other sessions end and an audit entry is left.
async fn replace_totp(
    app: &App,
    req: &Request,
    session: &VerifiedSession,
    proof: Proof,
    deadline: Instant,
) -> Result<Response<Body>, ApiError> {
    let user_id = &session.user_id;
    let user = app.stytch.get_user(user_id, deadline).await?;
    let had_active = user.totps.iter().any(|t| t.verified);
    for totp in &user.totps {
        app.stytch.delete_totp(&totp.totp_id, deadline).await?;
    }
    let created = app.stytch.create_totp(user_id, deadline).await?;
    tracing::info!(totp_id = %created.totp_id, had_active, "TOTP replaced");
    bind(&*app.store, user_id, &created.totp_id, proof.contact).await?;
    if had_active {
        let revoked = revoke_other_sessions(&app.stytch, session, None, deadline).await;
        audit(&*app.store, req, user_id, "totp_replaced").await?;
        tracing::info!(revoked, "the user's other sessions were revoked");
    }
    Ok(enrolled(created))
}

/// Starts an enrolment. A pending registration left from an abandoned one is deleted first
/// (once), unless the user had a verified TOTP and the caller proved no second factor.
async fn start_enrolment(
    app: &App,
    session: &VerifiedSession,
    proof: Proof,
    deadline: Instant,
) -> Result<Response<Body>, ApiError> {
    let user_id = &session.user_id;
    let mut replaced_pending = false;
    loop {
        match app.stytch.create_totp(user_id, deadline).await {
            Ok(created) => {
                tracing::info!(totp_id = %created.totp_id, "TOTP enrolment started");
                bind(&*app.store, user_id, &created.totp_id, proof.contact).await?;
                return Ok(enrolled(created));
            }
            Err(e)
                if StytchRefusal::of_error(&e) == Some(StytchRefusal::PendingTotpExists)
                    && !replaced_pending =>
            {
                let user = app.stytch.get_user(user_id, deadline).await?;
                let had_verified = user.totps.iter().any(|t| t.verified) || proof.had_verified;
                if had_verified && !proof.proven {
                    return Err(ApiError::second_factor_required(
                        app.config.step_up.max_age.as_secs(),
                    ));
                }
                for pending in user.totps.iter().filter(|t| !t.verified) {
                    app.stytch.delete_totp(&pending.totp_id, deadline).await?;
                }
                replaced_pending = true;
            }
            // `active_totp_exists` is our 409, `user_not_found` our 404 (shared::error's map).
            Err(e) => return Err(e.into()),
        }
    }
}

/// Records the TOTP enrolled through this route as the user's authenticator (SECURITY.md, "A
/// password alone does not bind a bank customer's authenticator"), confirmed when the enrolling
/// session proved the contact on the user's Unit customer.
async fn bind(
    records: &dyn UserRecords,
    user_id: &UserId,
    totp_id: &str,
    confirmed: bool,
) -> Result<(), ApiError> {
    store::modify(records, user_id, true, |r| {
        r.totp_id = Some(totp_id.to_owned());
        r.totp_confirmed_at = confirmed.then(store::timestamp);
        true
    })
    .await?;
    Ok(())
}

fn enrolled(created: shared::stytch::TotpCreated) -> Response<Body> {
    let body = Enrolled {
        totp_id: created.totp_id,
        secret: created.secret,
        qr_code: created.qr_code,
        recovery_codes: created.recovery_codes,
    };
    shared::error::json(StatusCode::CREATED, &body)
}

/// Ends the user's Stytch sessions but the caller's (and `keep`, the session a check just
/// produced): a thief's session on a lost phone must not outlive the recovery. Best effort
/// after the fact (the step-up or replacement is done): a failure is logged. Returns how many.
async fn revoke_other_sessions(
    stytch: &StytchClient,
    session: &VerifiedSession,
    keep: Option<&str>,
    deadline: Instant,
) -> usize {
    let sessions = match stytch.get_sessions(&session.user_id, deadline).await {
        Ok(sessions) => sessions,
        Err(e) => {
            tracing::error!(error = %e, "could not list the user's sessions to revoke them");
            return 0;
        }
    };
    let mut revoked = 0;
    for other in sessions
        .iter()
        .filter(|s| s.session_id != session.session_id && Some(s.session_id.as_str()) != keep)
    {
        match stytch.revoke_session(&other.session_id, deadline).await {
            Ok(()) => revoked += 1,
            Err(e) => tracing::error!(error = %e, "could not revoke one of the user's sessions"),
        }
    }
    revoked
}

/// An audit entry of a security event of the user's.
async fn audit(
    log: &dyn AuditLog,
    req: &Request,
    user_id: &UserId,
    event: &str,
) -> Result<(), ApiError> {
    log.put_audit(&AuditEntry {
        event: Some(event.to_owned()),
        user_id: user_id.clone(),
        customer_id: None,
        scopes: shared::domain::Scopes::default(),
        issued_at: shared::store::timestamp_millis(),
        request_id: shared::http::request_id(req),
        expires_in: 0,
        upgradable_scopes: shared::domain::Scopes::default(),
        resources: Vec::new(),
    })
    .await
    .map_err(Into::into)
}

enum Check<'a> {
    Totp(&'a str),
    Recovery(&'a str),
}

/// What a step-up answers.
#[derive(Serialize)]
struct SteppedUp {
    user_id: shared::domain::UserId,
    session_jwt: SecretString,
    session_token: SecretString,
    session_expires_at: Option<String>,
}

/// The counters a check reserves: the session's own (TOTP codes and recovery codes apart), and
/// the user's daily ceiling for a TOTP check in a session that never stepped up.
struct Counters {
    session: String,
    ceiling: Option<String>,
}

impl Counters {
    fn of(session: &VerifiedSession, code: &Check<'_>) -> Self {
        let (kind, ceiling) = match code {
            Check::Totp(_) => ("session", !session.ever_stepped_up()),
            Check::Recovery(_) => ("recovery", false),
        };
        Self {
            session: format!("totp:{kind}:{}", session.session_id),
            ceiling: ceiling.then(|| format!("totp:user:{}", session.user_id)),
        }
    }

    /// Gives back what was reserved for a check that did not happen or did not fail.
    async fn give_back(&self, app: &App, session_too: bool) {
        if session_too {
            store::give_back(&*app.store, &self.session).await;
        }
        if let Some(ceiling) = &self.ceiling {
            store::give_back(&*app.store, ceiling).await;
        }
    }
}

/// Reserves the check's attempts, or refuses it: a session at its limit is revoked at Stytch,
/// a user at the daily ceiling raises an alert. `Ok(true)` when this is the session's last
/// attempt of its window.
async fn reserve(
    app: &App,
    session: &VerifiedSession,
    counters: &Counters,
    deadline: Instant,
) -> Result<bool, ApiError> {
    let config = &app.config;
    let now = shared::http::now_epoch();
    let window = u32::try_from(config.totp.lockout.as_secs()).unwrap_or(u32::MAX);
    let last = match app
        .store
        .reserve_attempt(&counters.session, config.totp.max_failures, window, now)
        .await?
    {
        Attempt::Granted { count } => count >= config.totp.max_failures,
        Attempt::Refused { retry_after } => {
            tracing::warn!("TOTP checks locked for this session");
            shared::metrics::emit(shared::metrics::Metric::TotpLockout);
            revoke(&app.stytch, &session.session_id, deadline).await;
            return Err(ApiError::too_many_attempts(retry_after));
        }
    };
    if let Some(ceiling) = &counters.ceiling
        && let Attempt::Refused { retry_after } = app
            .store
            .reserve_attempt(ceiling, config.totp.daily_ceiling, 86_400, now)
            .await?
    {
        store::give_back(&*app.store, &counters.session).await;
        shared::metrics::alert(
            "totp_daily_ceiling",
            "TOTP_DAILY_CEILING reached: someone with the user's password is guessing codes; sessions that never stepped up are refused",
        );
        return Err(ApiError::too_many_attempts(retry_after));
    }
    Ok(last)
}

/// Revokes one Stytch session (best effort: a failure is logged; the counter refuses it anyway).
async fn revoke(stytch: &StytchClient, session_id: &str, deadline: Instant) {
    if let Err(e) = stytch.revoke_session(session_id, deadline).await {
        tracing::warn!(error = %e, "could not revoke the locked session at Stytch");
    }
}

/// `POST /mfa/totp/authenticate` and `/recover`: checks the code through Stytch against the
/// caller's session, so the factor joins it, under the session's and the user's limits.
async fn check(
    app: &App,
    session: &VerifiedSession,
    code: Check<'_>,
    deadline: Instant,
) -> Result<Response<Body>, ApiError> {
    let counters = Counters::of(session, &code);
    let last = reserve(app, session, &counters, deadline).await?;
    // Stytch sets the session's expiry to now + session_duration_minutes: sending what is left
    // keeps the session ending where it did, however long the user logged in for.
    let minutes = session.minutes_left(shared::http::now_epoch());
    let jwt = session.token.expose();
    let result = match code {
        Check::Totp(c) => {
            app.stytch
                .authenticate_totp(&session.user_id, c, jwt, minutes, deadline)
                .await
        }
        Check::Recovery(c) => {
            app.stytch
                .recover_totp(&session.user_id, c, jwt, minutes, deadline)
                .await
        }
    };
    match result {
        Ok(authenticated) => {
            after_step_up(app, session, &counters, &code, &authenticated, deadline).await;
            Ok(shared::error::json(
                StatusCode::OK,
                &stepped_up(session, authenticated),
            ))
        }
        Err(e) => {
            let at_limit = last && !never_checked(&e);
            let answer = failed_check(app, &counters, &code, e).await;
            if at_limit {
                tracing::warn!("the session reached TOTP_MAX_FAILURES; revoked");
                shared::metrics::emit(shared::metrics::Metric::TotpLockout);
                revoke(&app.stytch, &session.session_id, deadline).await;
            }
            Err(answer)
        }
    }
}

/// After a step-up: the step-up is done at Stytch (the code is spent, the factor is in the
/// session), so answering an error now would lose the new session JWT. The counters and the
/// record of a verified TOTP are housekeeping; left undone, the counters expire with their
/// windows and the next step-up records the TOTP. A recovery login ends the user's other
/// sessions.
async fn after_step_up(
    app: &App,
    session: &VerifiedSession,
    counters: &Counters,
    code: &Check<'_>,
    authenticated: &Authenticated,
    deadline: Instant,
) {
    if let Err(e) = app.store.clear_attempts(&counters.session).await {
        tracing::warn!(error = %e, "could not clear the session's failed-attempt counter");
    }
    // The ceiling counts failures only: this success gives its slot back.
    counters.give_back(app, false).await;
    shared::metrics::emit(shared::metrics::Metric::StepUp);
    match code {
        Check::Totp(_) => {
            let first = store::modify(&*app.store, &session.user_id, true, |r| {
                if r.second_factor_verified_at.is_some() {
                    return false;
                }
                r.second_factor_verified_at = Some(store::timestamp());
                true
            })
            .await;
            if let Err(e) = first {
                tracing::warn!(error = %e, "could not record the verified TOTP");
            }
        }
        Check::Recovery(_) => {
            // A recovery login is what a thief with the codes, or a user who lost the phone,
            // does: every other session of the user ends.
            let keep = authenticated
                .session
                .as_ref()
                .map(|s| s.session_id.as_str());
            let revoked = revoke_other_sessions(&app.stytch, session, keep, deadline).await;
            tracing::info!(
                revoked,
                "recovery login: the user's other sessions were revoked"
            );
        }
    }
}

fn stepped_up(session: &VerifiedSession, a: Authenticated) -> SteppedUp {
    SteppedUp {
        user_id: session.user_id.clone(),
        session_expires_at: a.session.and_then(|s| s.expires_at),
        session_jwt: a.session_jwt,
        session_token: a.session_token,
    }
}

/// Maps a failed check; its attempt is kept unless the code was surely never checked
/// (SECURITY.md, "TOTP failures count unless proven harmless").
async fn failed_check(
    app: &App,
    counters: &Counters,
    code: &Check<'_>,
    e: StytchError,
) -> ApiError {
    if never_checked(&e) {
        counters.give_back(app, true).await;
    }
    code_check_failure(e, matches!(code, Check::Recovery(_)))
}
