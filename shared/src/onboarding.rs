//! Onboarding records and their Unit side: the prefilled application form, the caller's state,
//! the sync with what Unit knows of an application (used by signup-webhook and customer-token),
//! and linking an existing customer (bridge-admin).

use std::collections::BTreeMap;

use crate::domain::{ApplicationId, ApplicationStatus, CustomerId, UserId};
use crate::store::{self, UserRecord};
use crate::stytch::{StytchClient, User};
use crate::unit::{
    ApplicantDetails, Application, CreateApplicationForm, FullName, Phone, UnitClient, UnitError,
};
use crate::{ApiError, App};
use http::StatusCode;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use tokio::time::Instant;

/// The Unit idempotency key of a user's application form: one form per Stytch user, ever.
pub fn form_key(user_id: &str) -> String {
    format!("stytch-unit-bridge-form-{user_id}")
}

/// A NANP (`+1` and ten digits) number as Unit's `{countryCode, number}`; others are not
/// prefilled (Unit's form asks for them).
fn unit_phone(e164: &str) -> Option<Phone> {
    let digits = e164.strip_prefix("+1")?;
    (digits.len() == 10 && digits.chars().all(|c| c.is_ascii_digit())).then(|| Phone {
        country_code: "1".into(),
        number: digits.to_owned(),
    })
}

/// The user's first e-mail address Stytch marks verified: the only one the bridge passes on to
/// Unit (a prefill, the KYC route's default). An unverified address is whatever was typed at
/// sign-up, possibly someone else's.
pub fn verified_email(user: &User) -> Option<String> {
    user.emails
        .iter()
        .find(|e| e.verified && !e.email.is_empty())
        .map(|e| e.email.clone())
}

/// Copies the Stytch user's verified contact details (and name) onto the record; `true` if
/// anything changed. Unverified addresses are not copied, and an address that lost its
/// verification is dropped.
pub fn apply_contact(record: &mut UserRecord, user: &User) -> bool {
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let email = verified_email(user);
    let phone = user
        .phone_numbers
        .iter()
        .find(|p| p.verified)
        .and_then(|p| nonempty(&p.phone_number));
    let first = user.name.as_ref().and_then(|n| nonempty(&n.first_name));
    let last = user.name.as_ref().and_then(|n| nonempty(&n.last_name));
    let changed = (
        &record.email,
        &record.phone,
        &record.first_name,
        &record.last_name,
    ) != (&email, &phone, &first, &last);
    record.email = email;
    record.phone = phone;
    record.first_name = first;
    record.last_name = last;
    changed
}

/// The key of today's deployment-wide count of new Unit applications and forms (UTC day).
fn daily_key(now: i64) -> String {
    format!("applications:daily:{}", now.div_euclid(86_400))
}

/// Takes one of today's `DAILY_APPLICATIONS_CAP` slots (all users together: scripted sign-ups
/// defeat per-user limits). `Ok(None)` when granted; `Ok(Some(seconds))` until the next UTC day
/// at the cap; a granted slot joins `slots`. From 80 % of the cap on, `DailyApplicationsHigh` is
/// emitted (its alarm).
pub async fn take_daily_slot(
    app: &App,
    now: i64,
    slots: &mut store::Slots,
) -> Result<Option<u64>, ApiError> {
    let cap = app.config.onboarding.daily_applications_cap;
    let until_tomorrow = u64::try_from(86_400 - now.rem_euclid(86_400)).unwrap_or(1);
    let attempt = app
        .store
        .reserve_attempt(&daily_key(now), cap, 86_400, now)
        .await?;
    let (count, granted) = match attempt {
        store::Attempt::Granted { count } => (count, true),
        store::Attempt::Refused { .. } => (cap, false),
    };
    if u64::from(count) * 5 >= u64::from(cap) * 4 {
        tracing::warn!(
            count,
            cap,
            "today's new applications near or at DAILY_APPLICATIONS_CAP"
        );
        crate::metrics::emit(crate::metrics::Metric::DailyApplicationsHigh);
    }
    if granted {
        slots.hold_attempt(daily_key(now));
    }
    Ok((!granted).then_some(until_tomorrow))
}

/// Makes sure the user has a Unit application form prefilled with `jwtSubject = user_id`: creates
/// it (idempotently, keyed by the user id) and stores its id and link. A deleted user gets none.
/// At today's `DAILY_APPLICATIONS_CAP` it creates nothing: 503 `applications_paused` with the
/// seconds until tomorrow (the record, and so the user's place, is kept).
pub async fn ensure_form(
    app: &App,
    record: UserRecord,
    deadline: Instant,
) -> Result<UserRecord, ApiError> {
    // A bank customer (linked by an operator, or archived) needs no form.
    if record.form_id.is_some() || record.deleted || record.customer_id.is_some() {
        return Ok(record);
    }
    let full_name = match (&record.first_name, &record.last_name) {
        (Some(first), Some(last)) => Some(FullName {
            first: first.clone(),
            last: last.clone(),
        }),
        _ => None,
    };
    let form = CreateApplicationForm {
        idempotency_key: form_key(&record.user_id),
        jwt_subject: record.user_id.to_string(),
        applicant_details: ApplicantDetails {
            jwt_subject: Some(record.user_id.to_string()),
            full_name,
            email: record.email.clone(),
            phone: record.phone.as_deref().and_then(unit_phone),
        },
        tags: BTreeMap::from([(USER_TAG.to_owned(), record.user_id.to_string())]),
        allowed_application_types: vec!["Individual".into()],
    };
    let now = crate::http::now_epoch();
    let mut slots = store::Slots::new(app.store.clone());
    if let Some(retry_after) = take_daily_slot(app, now, &mut slots).await? {
        return Err(ApiError::applications_paused(retry_after));
    }
    let created = match app.unit.create_application_form(&form, deadline).await {
        Ok(created) => created,
        Err(e) => {
            if e.surely_not_acted_on() {
                slots.give_back().await;
            } else {
                slots.keep();
            }
            return Err(e.into());
        }
    };
    slots.keep();
    let link = created.link().map(str::to_owned);
    tracing::info!(form_id = %created.id, "created the Unit application form");
    let stored = store::modify(&*app.store, &record.user_id, true, |r| {
        // The same form (Unit's idempotency key): any link already stored for it will do, so
        // racing creators do not overwrite each other's (GET /onboarding refreshes stale ones).
        if r.form_id.as_ref() == Some(&created.id) && (r.form_url.is_some() || link.is_none()) {
            return false;
        }
        r.form_id = Some(created.id.clone());
        r.form_url = link.clone();
        true
    })
    .await?;
    stored.ok_or_else(ApiError::internal)
}

/// The Stytch user's current details, when Stytch can tell (a failure leaves them out: the form
/// asks the applicant anyway).
pub async fn stytch_user(stytch: &StytchClient, user_id: &str, deadline: Instant) -> Option<User> {
    match stytch.get_user(user_id, deadline).await {
        Ok(user) => Some(user),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the Stytch user for the prefill");
            None
        }
    }
}

/// Binds an application to the user and records its status and customer. `Ok(None)` when the
/// application or the customer Unit created belongs to someone else (an alert; nothing
/// recorded).
pub async fn record_application(
    app: &App,
    user_id: &UserId,
    application: &Application,
    deadline: Instant,
) -> Result<Option<UserRecord>, ApiError> {
    match app.store.link_application(&application.id, user_id).await {
        Ok(()) => {}
        // Our table already binds the application to someone else: nothing changes (an alert).
        Err(store::StoreError::Conflict(_)) => {
            crate::metrics::alert(
                "application_bound_elsewhere",
                &format!(
                    "application {} is bound to another user in our table; nothing recorded",
                    application.id
                ),
            );
            return Ok(None);
        }
        // An outage is an outage (503, the sender retries), not a binding problem.
        Err(e) => return Err(e.into()),
    }
    let customer = application.related::<CustomerId>("customer");
    record_status(
        app,
        user_id,
        &application.id,
        &application.attributes.status,
        customer.as_ref(),
        deadline,
    )
    .await
}

/// Records an application's status, and its customer once approved, on the user's record.
///
/// The first time a customer is recorded it is read at Unit and accepted only as Unit relates it
/// (SECURITY.md, "A customer is bound only as Unit relates it"): the customer's own `application`
/// relationship must be this application, and its `jwtSubject` must be empty (then set to the
/// user: the third way of Stytch's guide, `PATCH /customers/{id}`) or the user's. Anything else
/// records nothing (`Ok(None)`, an alert): a customer token must never reach the wrong person.
pub async fn record_status(
    app: &App,
    user_id: &UserId,
    application_id: &ApplicationId,
    status: &ApplicationStatus,
    customer_id: Option<&CustomerId>,
    deadline: Instant,
) -> Result<Option<UserRecord>, ApiError> {
    let new_customer = match customer_id {
        Some(c) if *status == ApplicationStatus::Approved => {
            let known = app.store.get_user(user_id).await?;
            known
                .as_ref()
                .is_none_or(|r| r.customer_id.is_none())
                .then_some(c)
        }
        _ => None,
    };
    if let Some(customer_id) = new_customer
        && !confirm_customer(&app.unit, user_id, application_id, customer_id, deadline).await?
    {
        return Ok(None);
    }
    let stored = store::modify(&*app.store, user_id, true, |r| {
        r.apply_application(application_id, status, customer_id)
    })
    .await?;
    stored.ok_or_else(ApiError::internal).map(Some)
}

/// Whether Unit relates `customer_id` to `application_id` and to the user: `true` if its own
/// application is that one and its `jwtSubject` is the user's (or now is, set from empty);
/// `false`, with an alert, otherwise.
async fn confirm_customer(
    unit: &UnitClient,
    user_id: &UserId,
    application_id: &ApplicationId,
    customer_id: &CustomerId,
    deadline: Instant,
) -> Result<bool, ApiError> {
    let customer = unit.get_customer(customer_id, deadline).await?;
    if customer.related_id("application") != Some(application_id.as_str()) {
        crate::metrics::alert(
            "customer_application_mismatch",
            &format!(
                "customer {customer_id} is not the customer of application {application_id} at Unit; nothing recorded"
            ),
        );
        return Ok(false);
    }
    match customer
        .attributes
        .jwt_subject
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        Some(subject) if subject == user_id.as_str() => Ok(true),
        Some(_) => {
            crate::metrics::alert(
                "customer_bound_elsewhere",
                &format!(
                    "the Unit customer {customer_id} of this user's application has another jwtSubject; not recorded"
                ),
            );
            Ok(false)
        }
        None => {
            unit.set_customer_jwt_subject(customer_id, user_id, deadline)
                .await?;
            tracing::info!(
                %customer_id,
                "set the Unit customer's empty jwtSubject to the user"
            );
            Ok(true)
        }
    }
}

/// Whether an application reached through the user's own record or form is theirs: its
/// `jwtSubject` names them, or it has none (Unit need not copy the form's). One naming someone
/// else never is.
pub fn is_theirs(application: &Application, user_id: &str) -> bool {
    match application
        .attributes
        .jwt_subject
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        Some(subject) if subject == user_id => true,
        Some(_) => {
            crate::metrics::alert(
                "application_bound_elsewhere",
                &format!(
                    "application {} has another jwtSubject; not recorded",
                    application.id
                ),
            );
            false
        }
        None => true,
    }
}

/// The user an application without `jwtSubject` belongs to, if it came from a form we created:
/// our `stytchUserId` tag (which Unit copies from the form) names the user, and the form id we
/// stored for them is the application's form (by its relationship, or by asking Unit).
pub async fn owner_by_form(
    app: &App,
    application: &Application,
    deadline: Instant,
) -> Result<Option<UserId>, ApiError> {
    let Some(user_id) = application
        .attributes
        .tags
        .get(USER_TAG)
        .and_then(|tag| UserId::parse(tag.as_str()).ok())
    else {
        return Ok(None);
    };
    let Some(form_id) = app.store.get_user(&user_id).await?.and_then(|r| r.form_id) else {
        return Ok(None);
    };
    if application.related_id("applicationForm") == Some(form_id.as_str()) {
        return Ok(Some(user_id));
    }
    let form = app.unit.get_application_form(&form_id, deadline).await?;
    Ok((form.related_id("application") == Some(application.id.as_str())).then_some(user_id))
}

/// The tag on our forms (and the applications Unit creates from them) naming the Stytch user.
pub const USER_TAG: &str = "stytchUserId";

/// What `GET /onboarding` answers.
#[derive(Debug, Serialize)]
pub struct OnboardingState {
    /// `form_pending`, `application_pending`, `pending_review`, `awaiting_documents`, `approved`,
    /// `archived` (Unit archived the customer), `denied` or `canceled`.
    pub state: &'static str,
    pub user_id: UserId,
    pub form_id: Option<crate::domain::FormId>,
    pub form_url: Option<String>,
    pub application_id: Option<ApplicationId>,
    pub application_status: Option<ApplicationStatus>,
    pub customer_id: Option<CustomerId>,
    /// At today's cap: when to ask again (the `Retry-After` header, not the body).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl OnboardingState {
    /// The state of a record.
    pub fn of(r: &UserRecord) -> Self {
        use ApplicationStatus as S;
        let state = match (r.customer_id.as_deref(), r.application_status.as_ref()) {
            (Some(_), _) if r.customer_archived_at.is_some() => "archived",
            (None, _) if r.application_submitted_at.is_some() => "application_pending",
            (Some(_), _) | (None, Some(S::Approved)) => "approved",
            (None, Some(S::Denied)) => "denied",
            (None, Some(S::Canceled)) => "canceled",
            (None, Some(S::PendingReview)) => "pending_review",
            (None, Some(S::AwaitingDocuments)) => "awaiting_documents",
            (None, Some(S::Pending | S::Other(_))) => "application_pending",
            (None, None) => "form_pending",
        };
        Self {
            state,
            user_id: r.user_id.clone(),
            form_id: r.form_id.clone(),
            form_url: r.form_url.clone(),
            application_id: r.application_id.clone(),
            application_status: r.application_status.clone(),
            customer_id: r.customer_id.clone(),
            retry_after: None,
        }
    }
}

/// Whether Unit may be asked about the user now: not within `ONBOARDING_REFRESH_SECONDS` of
/// the last time.
fn refresh_due(refresh: std::time::Duration, record: &UserRecord, now: i64) -> bool {
    let window = i64::try_from(refresh.as_secs()).unwrap_or(i64::MAX);
    record
        .onboarding_checked_at
        .as_deref()
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .is_none_or(|t| now - t.unix_timestamp() >= window)
}

/// Claims this window's look at Unit for the user (SECURITY.md, "One user cannot exhaust the
/// upstreams"): of racing requests, one gets the record back and asks Unit; the others, and
/// every request until the window has passed, answer from the record (`None`).
async fn claim_refresh(app: &App, record: &UserRecord) -> Result<Option<UserRecord>, ApiError> {
    let now = crate::http::now_epoch();
    if !refresh_due(app.config.onboarding.refresh, record, now) {
        return Ok(None);
    }
    let mut claimed = false;
    let stored = store::modify(&*app.store, &record.user_id, false, |r| {
        claimed = refresh_due(app.config.onboarding.refresh, r, now);
        if claimed {
            r.onboarding_checked_at = Some(store::timestamp());
        }
        claimed
    })
    .await?;
    Ok(stored.filter(|_| claimed))
}

/// The caller's onboarding state, creating the record and form if the signup webhook has not
/// (yet) done so, and refreshing what Unit knows: a fresh form link, an application the webhook
/// has not reported, an approval since. Unit being down degrades to the stored state.
pub async fn state(
    app: &App,
    user_id: &UserId,
    deadline: Instant,
) -> Result<OnboardingState, ApiError> {
    let mut record = match app.store.get_user(user_id).await? {
        Some(r) => r,
        None => {
            let user = stytch_user(&app.stytch, user_id, deadline).await;
            let created = store::modify(&*app.store, user_id, true, |r| {
                user.as_ref().is_some_and(|u| apply_contact(r, u))
            })
            .await?;
            created.ok_or_else(ApiError::internal)?
        }
    };
    if record.deleted {
        return Err(ApiError::account_deleted(StatusCode::GONE));
    }
    record = match ensure_form(app, record.clone(), deadline).await {
        Ok(r) => r,
        Err(e) if e.code == crate::error::ErrorCode::ApplicationsPaused => {
            // Today's cap: the user keeps their place and is told when to come back.
            let mut state = OnboardingState::of(&record);
            state.retry_after = e.retry_after;
            return Ok(state);
        }
        Err(e) => return Err(e),
    };
    if !pending(&record) {
        return Ok(OnboardingState::of(&record));
    }
    let Some(claimed) = claim_refresh(app, &record).await? else {
        return Ok(OnboardingState::of(&record));
    };
    record = claimed;
    let refreshed = if record.application_submitted_at.is_some() {
        find_submitted(app, &record, deadline).await
    } else {
        refresh(app, &record, deadline)
            .await
            .map_err(ApiError::from)
    };
    match refreshed {
        Ok(Some(r)) => record = r,
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "could not refresh the onboarding state from Unit; answering the stored one")
        }
    }
    Ok(OnboardingState::of(&record))
}

/// Whether Unit may still have news for the user: no customer, and no closed application (or a
/// submitted one whose outcome is unknown).
fn pending(record: &UserRecord) -> bool {
    record.customer_id.is_none()
        && (record.application_submitted_at.is_some()
            || !record
                .application_status
                .as_ref()
                .is_some_and(|s| s.is_closed()))
}

/// How long a direct application's unknown outcome keeps the user `application_pending`
/// without Unit showing it: Unit documents up to 120 s for the create, plus a margin.
pub const SUBMISSION_WINDOW_SECONDS: i64 = 180;

/// Whether a direct application sent to Unit may still be in flight there (submitted within
/// [`SUBMISSION_WINDOW_SECONDS`] of `now`).
pub fn submission_in_flight(record: &UserRecord, now: i64) -> bool {
    record
        .application_submitted_at
        .as_deref()
        .and_then(|t| time::OffsetDateTime::parse(t, &Rfc3339).ok())
        .is_some_and(|at| now - at.unix_timestamp() < SUBMISSION_WINDOW_SECONDS)
}

/// A submitted application whose answer we never got, found at Unit by our tag and the user's
/// `jwtSubject`, and recorded (as its webhook would). With none after the window, the
/// submission is forgotten so that the user may apply again.
async fn find_submitted(
    app: &App,
    record: &UserRecord,
    deadline: Instant,
) -> Result<Option<UserRecord>, ApiError> {
    let user_id = &record.user_id;
    let tagged = app
        .unit
        .applications_tagged(&[(USER_TAG, user_id.as_str())], deadline)
        .await?;
    let newest = tagged
        .into_iter()
        .find(|a| a.attributes.jwt_subject.as_deref() == Some(user_id.as_str()));
    if let Some(application) = newest
        && record.application_id.as_ref() != Some(&application.id)
    {
        tracing::info!(application_id = %application.id, "found the submitted application at Unit by its tag");
        return record_application(app, user_id, &application, deadline).await;
    }
    if submission_in_flight(record, crate::http::now_epoch()) {
        return Ok(None);
    }
    tracing::warn!("a submitted application never appeared at Unit; the user may apply again");
    let Some(submitted) = &record.application_submitted_at else {
        return Ok(None);
    };
    Ok(forget_submission(&*app.store, user_id, submitted).await?)
}

/// Clears the user's submission mark if it is still `submitted` (a newer submission keeps its
/// own), so that the user may apply again; the record as stored.
pub async fn forget_submission(
    records: &dyn store::UserRecords,
    user_id: &UserId,
    submitted: &str,
) -> Result<Option<UserRecord>, store::StoreError> {
    store::modify(records, user_id, false, |r| {
        r.application_submitted_at.as_deref() == Some(submitted)
            && r.application_submitted_at.take().is_some()
    })
    .await
}

/// Asks Unit what changed: the form's fresh link and application, or the application's decision.
async fn refresh(
    app: &App,
    record: &UserRecord,
    deadline: Instant,
) -> Result<Option<UserRecord>, UnitError> {
    let mut refreshed = None;
    let application_id = match (&record.application_id, &record.form_id) {
        (Some(id), _) => Some(id.clone()),
        (None, Some(form_id)) => {
            let form = app.unit.get_application_form(form_id, deadline).await?;
            let link = form.link().map(str::to_owned);
            if link.is_some() && link != record.form_url {
                // Only over the link we read: a visit that stored a fresher one meanwhile wins,
                // and racing visits do not fight over a cache.
                match store::modify(&*app.store, &record.user_id, false, |r| {
                    if r.form_url != record.form_url {
                        return false;
                    }
                    r.form_url = link.clone();
                    true
                })
                .await
                {
                    Ok(stored) => refreshed = stored,
                    Err(e) => tracing::warn!(error = %e, "could not store the fresh form link"),
                }
            }
            form.related::<ApplicationId>("application")
        }
        (None, None) => None,
    };
    let Some(application_id) = application_id else {
        return Ok(refreshed);
    };
    let application = app.unit.get_application(&application_id, deadline).await?;
    if !is_theirs(&application, &record.user_id) {
        return Ok(None);
    }
    Ok(
        record_application(app, &record.user_id, &application, deadline)
            .await
            .ok()
            .flatten(),
    )
}

/// The user's Unit customer when only an application is known: asks Unit (an approval whose
/// webhook has not arrived yet) and records what it says. `None` while not approved.
pub async fn customer_from_unit(
    app: &App,
    record: &UserRecord,
    deadline: Instant,
) -> Result<Option<CustomerId>, ApiError> {
    let Some(application_id) = &record.application_id else {
        return Ok(None);
    };
    // At most once per ONBOARDING_REFRESH_SECONDS per user, like GET /onboarding.
    if claim_refresh(app, record).await?.is_none() {
        return Ok(None);
    }
    let application = app.unit.get_application(application_id, deadline).await?;
    if !is_theirs(&application, &record.user_id) {
        return Ok(None);
    }
    let recorded = record_application(app, &record.user_id, &application, deadline).await?;
    Ok(recorded.and_then(|r| r.customer_id))
}

/// The key our table binds a customer under: its application's id, or `customer-{id}` for a
/// customer that came from no application.
pub fn customer_link_key(customer: &crate::unit::Customer) -> String {
    customer
        .related_id("application")
        .map_or_else(|| format!("customer-{}", customer.id), str::to_owned)
}

/// Why an operator's link did not complete.
#[derive(Debug)]
pub enum LinkError {
    /// Refused before or by Unit: nothing of it is left (`code` names the reason).
    Refused { code: &'static str, detail: String },
    /// Unit's answer to the PATCH was lost (a timeout, a dropped connection, a 5xx): the link
    /// stays pending, and the next run finishes or undoes it from what Unit then shows.
    Unknown(String),
    /// Unit, Stytch or the table failed before anything was written at Unit.
    Failed(ApiError),
}

impl From<ApiError> for LinkError {
    fn from(e: ApiError) -> Self {
        Self::Failed(e)
    }
}

impl From<UnitError> for LinkError {
    fn from(e: UnitError) -> Self {
        Self::Failed(e.into())
    }
}

impl From<store::StoreError> for LinkError {
    fn from(e: store::StoreError) -> Self {
        Self::Failed(e.into())
    }
}

fn refused(code: &'static str, detail: impl Into<String>) -> LinkError {
    LinkError::Refused {
        code,
        detail: detail.into(),
    }
}

/// Operator action: binds an existing Unit customer to a Stytch user (`PATCH /customers/{id}`
/// with `jwtSubject`) and records it (SECURITY.md, "Operator linking binds first").
///
/// Our binding is written first, conditionally and as pending (the customer's application key in
/// the table, the customer as `pending_customer_id` on the record: no token for it yet); the
/// customer's `jwtSubject` is read again just before the PATCH; the binding is undone only on a
/// definite refusal (another subject, a 4xx), and left pending on an unknown outcome. A record
/// that holds another customer is refused unless `replace`. Rerunning the same link finishes a
/// pending one (or undoes it when Unit shows another subject).
pub async fn link_existing_customer(
    app: &App,
    user_id: &UserId,
    customer_id: &CustomerId,
    replace: bool,
) -> Result<UserRecord, LinkError> {
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    let customer = app.unit.get_customer(customer_id, deadline).await?;
    let key = customer_link_key(&customer);
    // 1. Our binding, pending: the record, then the table's link of the customer.
    mark_link_pending(&*app.store, user_id, customer_id, replace).await?;
    if let Err(e) = app.store.link_application(&key, user_id).await {
        undo_link(app, user_id, customer_id, None).await;
        return Err(refused("customer_linked_elsewhere", e.to_string()));
    }
    // 2. Unit, read again just before it is written.
    if let Err(e) = bind_at_unit(&app.unit, user_id, customer_id, deadline).await {
        if matches!(e, LinkError::Refused { .. }) {
            undo_link(app, user_id, customer_id, Some(&key)).await;
        }
        return Err(e);
    }
    // 3. Confirmed at Unit: the record holds the customer.
    let application = customer.related::<ApplicationId>("application");
    let stored = store::modify(&*app.store, user_id, true, |r| {
        r.link_customer(customer_id, application.as_ref())
    })
    .await?;
    Ok(stored.ok_or_else(ApiError::internal)?)
}

/// Marks `customer_id` as the record's pending customer, unless the record holds another
/// customer (and not `replace`) or another link is pending.
async fn mark_link_pending(
    records: &dyn store::UserRecords,
    user_id: &UserId,
    customer_id: &CustomerId,
    replace: bool,
) -> Result<(), LinkError> {
    let mut conflict = None;
    store::modify(records, user_id, true, |r| {
        conflict = match (&r.customer_id, &r.pending_customer_id) {
            (Some(c), _) if c != customer_id && !replace => Some(refused(
                "user_linked_elsewhere",
                format!("our record of the user holds customer {c} (--replace to replace it)"),
            )),
            (_, Some(p)) if p != customer_id => Some(refused(
                "link_pending_elsewhere",
                format!("a link of the user to customer {p} is pending: rerun that one first"),
            )),
            _ => None,
        };
        if conflict.is_some() || r.pending_customer_id.as_ref() == Some(customer_id) {
            return false;
        }
        r.pending_customer_id = Some(customer_id.clone());
        true
    })
    .await?;
    conflict.map_or(Ok(()), Err)
}

/// Sets the customer's `jwtSubject` at Unit unless it already names `user_id`. A refusal
/// (another subject, a 4xx) is [`LinkError::Refused`]; a lost answer is [`LinkError::Unknown`].
async fn bind_at_unit(
    unit: &UnitClient,
    user_id: &UserId,
    customer_id: &CustomerId,
    deadline: Instant,
) -> Result<(), LinkError> {
    let current = unit.get_customer(customer_id, deadline).await?;
    match current
        .attributes
        .jwt_subject
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        Some(subject) if subject == user_id.as_str() => Ok(()),
        Some(other) => Err(refused(
            "customer_bound_elsewhere",
            format!("Unit's customer has jwtSubject {other}"),
        )),
        None => match unit
            .set_customer_jwt_subject(customer_id, user_id, deadline)
            .await
        {
            Ok(_) => Ok(()),
            Err(UnitError::Api { status, .. }) if (400..500).contains(&status) && status != 429 => {
                Err(refused(
                    "unit_refused",
                    format!("Unit refused the PATCH with {status}; nothing is bound"),
                ))
            }
            Err(e) => Err(LinkError::Unknown(format!(
                "{e}: the link stays pending; rerun to finish or undo it"
            ))),
        },
    }
}

/// Undoes a pending operator link: the table's link of the customer (when written) and the
/// record's pending customer. Failures are logged: the next run sees the pending link again.
pub async fn undo_link(app: &App, user_id: &UserId, customer_id: &CustomerId, key: Option<&str>) {
    if let Some(key) = key
        && let Err(e) = app.store.unlink_application(key, user_id).await
    {
        tracing::warn!(error = %e, "could not undo the customer's link in our table");
    }
    let cleared = store::modify(&*app.store, user_id, false, |r| {
        if r.pending_customer_id.as_deref() != Some(customer_id) {
            return false;
        }
        r.pending_customer_id = None;
        true
    })
    .await;
    if let Err(e) = cleared {
        tracing::warn!(error = %e, "could not clear the pending link on the record");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_statuses_are_never_moved_backwards() {
        let mut r = UserRecord::new("user-test-1".parse().unwrap());
        assert!(r.apply_application(&"53".parse().unwrap(), &ApplicationStatus::Pending, None));
        assert!(r.apply_application(
            &"53".parse().unwrap(),
            &ApplicationStatus::Approved,
            Some(&"10000".parse().unwrap())
        ));
        assert!(
            !r.apply_application(
                &"53".parse().unwrap(),
                &ApplicationStatus::PendingReview,
                None
            ),
            "a late pendingReview changes nothing"
        );
        assert_eq!(
            (r.application_status.as_ref(), r.customer_id.as_deref()),
            (Some(&ApplicationStatus::Approved), Some("10000"))
        );
        assert!(
            !r.apply_application(&"54".parse().unwrap(), &ApplicationStatus::Pending, None),
            "another live application does not replace an approved one"
        );
        let mut denied = UserRecord::new("user-test-2".parse().unwrap());
        denied.apply_application(&"60".parse().unwrap(), &ApplicationStatus::Denied, None);
        assert!(
            denied.apply_application(&"61".parse().unwrap(), &ApplicationStatus::Pending, None),
            "a new application replaces a denied one"
        );
        assert_eq!(OnboardingState::of(&denied).state, "application_pending");
    }

    #[test]
    fn states_follow_the_record() {
        let mut r = UserRecord::new("user-test-1".parse().unwrap());
        assert_eq!(OnboardingState::of(&r).state, "form_pending");
        r.application_status = Some(ApplicationStatus::PendingReview);
        assert_eq!(OnboardingState::of(&r).state, "pending_review");
        r.customer_id = Some("10000".parse().unwrap());
        assert_eq!(OnboardingState::of(&r).state, "approved");
    }

    #[test]
    fn only_nanp_numbers_are_prefilled() {
        assert_eq!(unit_phone("+15555550100").unwrap().number, "5555550100");
        assert!(unit_phone("+447700900123").is_none());
        assert!(unit_phone("+1555").is_none());
    }
}
