//! `POST /webhooks/stytch` and `POST /webhooks/unit`: verified over the raw body, applied
//! idempotently, and answered 2xx only once the effect is stored (a 5xx makes the sender retry).

use std::time::Duration;

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::config::OnboardingSettings;
use shared::domain::{ApplicationId, ApplicationStatus, CustomerId, UserId};
use shared::metrics::{self, Metric};
use shared::store;
use shared::stytch::{StytchError, User};
use shared::unit::{Application, UnitClient, UnitError};
use shared::{ApiError, App};
use tokio::time::Instant;

use shared::onboarding::{
    apply_contact, ensure_form, is_theirs, owner_by_form, record_application,
};
use shared::webhook::WebhookError;

/// How long a processed event id is remembered beyond the oldest event still applied
/// (`UNIT_EVENT_MAX_AGE_SECONDS`): a day, so that no event is both unremembered and young enough.
const EVENT_MEMORY_MARGIN: Duration = Duration::from_secs(24 * 3600);

/// How far ahead of our clock a Unit event's `createdAt` may be.
const UNIT_CLOCK_LEEWAY: i64 = 300;

/// A delivery whose signature does not verify, from `source`.
fn refused(source: &'static str) -> impl FnOnce(shared::webhook::WebhookError) -> ApiError {
    move |e| {
        tracing::warn!(reason = %e, source, "webhook refused");
        metrics::emit(Metric::WebhookRefused { source });
        ApiError::invalid_signature(e)
    }
}

fn ok(status: &str) -> Response<Body> {
    shared::error::json(StatusCode::OK, &json!({ "status": status }))
}

/// When a processed event's marker may go: Svix's ~27 h of retries and Unit's redeliveries are
/// both inside `UNIT_EVENT_MAX_AGE_SECONDS` (at least 7 days), and older Unit events are ignored.
fn remember_until(settings: &OnboardingSettings) -> i64 {
    let memory = settings.unit_event_max_age + EVENT_MEMORY_MARGIN;
    shared::http::now_epoch() + i64::try_from(memory.as_secs()).unwrap_or(i64::MAX / 2)
}

/// Verifies with the current key, then, during a rotation, with the previous one.
fn with_previous<K, T>(
    current: &K,
    previous: Option<&K>,
    verify: impl Fn(&K) -> Result<T, WebhookError>,
) -> Result<T, WebhookError> {
    match (verify(current), previous) {
        (Err(WebhookError::BadSignature), Some(previous)) => verify(previous),
        (result, _) => result,
    }
}

/// A Stytch user event (Svix payload).
#[derive(Deserialize)]
struct StytchEvent {
    action: String,
    id: String,
    object_type: String,
    #[serde(default, deserialize_with = "shared::stytch::null_as_default")]
    source: String,
    #[serde(default, deserialize_with = "shared::stytch::null_as_default")]
    event_id: String,
    #[serde(default)]
    user: Option<User>,
}

/// `POST /webhooks/stytch`.
pub async fn stytch(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let secrets = app.secrets.current().await?;
    let now = shared::http::now_epoch();
    let delivery = with_previous(
        &secrets.stytch_webhook_secret,
        secrets.stytch_webhook_secret_previous.as_ref(),
        |key| shared::webhook::verify_svix(key, req.headers(), req.body().as_ref(), now),
    )
    .map_err(refused("stytch"))?;
    let key = format!("svix:{}", delivery.id);
    if app.store.event_processed(&key).await? {
        tracing::info!(svix_id = %delivery.id, "redelivered Stytch event; already applied");
        return Ok(ok("duplicate"));
    }
    let event: StytchEvent = serde_json::from_slice(req.body().as_ref())
        .map_err(|_| ApiError::invalid_payload("the webhook body is not a Stytch user event"))?;
    let kind = format!(
        "{}.{}.{}",
        event.source.to_lowercase(),
        event.object_type,
        event.action.to_lowercase()
    );
    tracing::info!(svix_id = %delivery.id, event_id = %event.event_id, kind, "Stytch event");
    let deadline = shared::http::deadline(req);
    // The user's id is parsed where it enters: an event naming no Stytch user is not ours.
    let user_id = (event.object_type == "user")
        .then(|| UserId::parse(event.id.as_str()).ok())
        .flatten();
    if let Some(user_id) = user_id {
        match event.action.as_str() {
            "CREATE" => user_created(app, &user_id, &event, deadline).await?,
            "UPDATE" => user_updated(app, &user_id, deadline).await?,
            "DELETE" => {
                store::modify(&*app.store, &user_id, true, |r| {
                    !std::mem::replace(&mut r.deleted, true)
                })
                .await?;
            }
            _ => tracing::debug!(kind, "ignored Stytch event"),
        }
    } else {
        tracing::debug!(kind, "ignored Stytch event");
    }
    app.store
        .record_event(&key, remember_until(&app.config.onboarding))
        .await?;
    metrics::emit(Metric::WebhookApplied { source: "stytch" });
    Ok(ok("processed"))
}

async fn user_created(
    app: &App,
    user_id: &UserId,
    event: &StytchEvent,
    deadline: Instant,
) -> Result<(), ApiError> {
    let user = match &event.user {
        Some(user) => Some(user.clone()),
        None => shared::onboarding::stytch_user(&app.stytch, user_id, deadline).await,
    };
    let record = store::modify(&*app.store, user_id, true, |r| {
        !r.deleted && user.as_ref().is_some_and(|u| apply_contact(r, u))
    })
    .await?
    .ok_or_else(ApiError::internal)?;
    match ensure_form(app, record, deadline).await {
        // Today's DAILY_APPLICATIONS_CAP: the record keeps the user's place, and their first
        // GET /onboarding after it creates the form. Svix need not retry.
        Err(e) if e.code == shared::error::ErrorCode::ApplicationsPaused => {
            tracing::warn!("no form for the new user today: DAILY_APPLICATIONS_CAP reached");
            Ok(())
        }
        other => other.map(drop),
    }
}

/// Svix promises no order, so an update applies Stytch's current state, read afresh.
async fn user_updated(app: &App, user_id: &UserId, deadline: Instant) -> Result<(), ApiError> {
    let user = match app.stytch.get_user(user_id, deadline).await {
        Ok(user) => user,
        Err(StytchError::Api { status: 404, .. }) => {
            tracing::info!("updated user no longer exists at Stytch; its delete event will follow");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    store::modify(&*app.store, user_id, true, |r| apply_contact(r, &user)).await?;
    Ok(())
}

/// A Unit event (`{"data": [events]}`).
#[derive(Deserialize)]
struct UnitEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    attributes: Value,
    #[serde(default)]
    relationships: Value,
}

#[derive(Deserialize)]
struct UnitEvents {
    data: Vec<UnitEvent>,
}

/// The id of the event's `name` relationship, as the event writes it.
fn related_id<'a>(event: &'a UnitEvent, name: &str) -> Option<&'a str> {
    event
        .relationships
        .get(name)?
        .get("data")?
        .get("id")?
        .as_str()
}

/// The id of the event's `name` relationship: `Ok(None)` when it names none, `Err(())` when
/// what it names is not a `T` (not a Unit id): such an event is about nothing of ours.
fn related<T: TryFrom<String>>(event: &UnitEvent, name: &str) -> Result<Option<T>, ()> {
    related_id(event, name)
        .map(|id| T::try_from(id.to_owned()).map_err(drop))
        .transpose()
}

/// The event's `createdAt` (RFC 3339), epoch seconds.
fn created_at(event: &UnitEvent) -> Option<i64> {
    let text = event.attributes.get("createdAt")?.as_str()?;
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

/// `POST /webhooks/unit`.
pub async fn unit(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let secrets = app.secrets.current().await?;
    with_previous(
        &secrets.unit_webhook_token,
        secrets.unit_webhook_token_previous.as_ref(),
        |token| shared::webhook::verify_unit(token.expose(), req.headers(), req.body().as_ref()),
    )
    .map_err(refused("unit"))?;
    let events: UnitEvents = serde_json::from_slice(req.body().as_ref())
        .map_err(|_| ApiError::invalid_payload("the webhook body is not {\"data\": [events]}"))?;
    let deadline = shared::http::deadline(req);
    let now = shared::http::now_epoch();
    let max_age =
        i64::try_from(app.config.onboarding.unit_event_max_age.as_secs()).unwrap_or(i64::MAX);
    for event in &events.data {
        let key = format!("unit:{}", event.id);
        if app.store.event_processed(&key).await? {
            continue;
        }
        let archive = event.kind == "customer.archived";
        if !archive && ApplicationStatus::of_event(&event.kind).is_none() {
            tracing::debug!(kind = %event.kind, event_id = %event.id, "ignored Unit event");
            continue;
        }
        // Unit signs no timestamp: a captured delivery could be replayed once its marker is
        // gone, so an event older than the markers' memory is never applied.
        match created_at(event) {
            Some(at) if now - at <= max_age && at - now <= UNIT_CLOCK_LEEWAY => {}
            at => {
                tracing::warn!(
                    event_id = %event.id,
                    kind = %event.kind,
                    created_at = at,
                    "Unit event undated, older than UNIT_EVENT_MAX_AGE_SECONDS or from the future; ignored"
                );
                continue;
            }
        }
        if archive {
            apply_archive(app, event, deadline).await?;
        } else {
            apply_unit_event(app, event, deadline).await?;
        }
        app.store
            .record_event(&key, remember_until(&app.config.onboarding))
            .await?;
    }
    metrics::emit(Metric::WebhookApplied { source: "unit" });
    Ok(ok("processed"))
}

/// Records Unit's archiving of a customer, as Unit says it now (the event is only a signal):
/// the customer must be `Archived` at Unit and bound to the user its `jwtSubject` names in our
/// record. The reason is logged for the operator, never shown to the user.
async fn apply_archive(app: &App, event: &UnitEvent, deadline: Instant) -> Result<(), ApiError> {
    let Ok(Some(customer_id)) = related::<CustomerId>(event, "customer") else {
        tracing::info!(event_id = %event.id, "customer.archived without a Unit customer id; ignored");
        return Ok(());
    };
    let customer = match app.unit.get_customer(&customer_id, deadline).await {
        Ok(c) => c,
        Err(UnitError::Api { status: 404, .. }) => {
            tracing::info!(event_id = %event.id, "Unit knows no such customer; not ours");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let attributes = customer.attributes;
    let user_id = attributes
        .jwt_subject
        .and_then(|subject| UserId::parse(subject).ok());
    let (true, Some(user_id)) = (attributes.status == "Archived", user_id) else {
        tracing::info!(event_id = %event.id, %customer_id, "customer not archived at Unit, or not bound to a user; nothing changed");
        return Ok(());
    };
    let mut newly = false;
    store::modify(&*app.store, &user_id, false, |r| {
        newly = r.customer_id.as_deref() == Some(customer_id.as_str())
            && r.customer_archived_at.is_none();
        if newly {
            r.customer_archived_at = Some(store::timestamp());
        }
        newly
    })
    .await?;
    if newly {
        tracing::warn!(
            %user_id,
            %customer_id,
            reason = attributes.archive_reason.as_deref().unwrap_or("none given"),
            "Unit archived the customer: its write and sensitive tokens are refused from now on"
        );
    }
    Ok(())
}

/// Applies what Unit says now of the application an event names: the event is only a signal
/// (SECURITY.md, "A customer is bound only as Unit relates it"). Its status is not taken from
/// the event, and a customer it names that is not the application's customer at Unit changes
/// nothing (an alert).
async fn apply_unit_event(app: &App, event: &UnitEvent, deadline: Instant) -> Result<(), ApiError> {
    // The claim is compared as the event writes it: one Unit does not make is a mismatch too.
    let claimed_customer = related_id(event, "customer");
    let Some(application_id) = event_application(&app.unit, event, deadline).await? else {
        return Ok(());
    };
    let application = match app.unit.get_application(&application_id, deadline).await {
        Ok(a) => a,
        Err(UnitError::Api { status: 404, .. }) => {
            tracing::info!(%application_id, "Unit knows no such application; not ours");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(claimed) = claimed_customer
        && application.related_id("customer") != Some(claimed)
    {
        metrics::alert(
            "event_customer_mismatch",
            &format!(
                "Unit event {} pairs application {application_id} with customer {claimed}, which Unit does not relate to it; nothing changed",
                event.id
            ),
        );
        return Ok(());
    }
    let Some(user_id) = application_owner(app, &application, deadline).await? else {
        tracing::info!(
            %application_id,
            "application whose jwtSubject is no Stytch user, or without one and from none of our forms; not ours"
        );
        return Ok(());
    };
    if !is_theirs(&application, &user_id) {
        return Ok(());
    }
    record_application(app, &user_id, &application, deadline).await?;
    Ok(())
}

/// The application an event is about: the one it names, or the application of the customer it
/// names (as Unit relates them). `None` when there is none, or Unit knows no such customer.
async fn event_application(
    unit: &UnitClient,
    event: &UnitEvent,
    deadline: Instant,
) -> Result<Option<ApplicationId>, ApiError> {
    let (Ok(application), Ok(customer)) = (
        related::<ApplicationId>(event, "application"),
        related::<CustomerId>(event, "customer"),
    ) else {
        tracing::info!(event_id = %event.id, "event naming something that is no Unit id; ignored");
        return Ok(None);
    };
    if let Some(id) = application {
        return Ok(Some(id));
    }
    let Some(customer_id) = customer else {
        tracing::info!(event_id = %event.id, "event without an application; ignored");
        return Ok(None);
    };
    match unit.get_customer(&customer_id, deadline).await {
        Ok(customer) => {
            let application = customer.related::<ApplicationId>("application");
            if application.is_none() {
                tracing::info!(event_id = %event.id, "customer without an application; not ours");
            }
            Ok(application)
        }
        Err(UnitError::Api { status: 404, .. }) => {
            tracing::info!(event_id = %event.id, "Unit knows no such customer; not ours");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// The user an application belongs to: by our table's link, else by its `jwtSubject`, else (no
/// subject) by the form we made for a user that it came from.
async fn application_owner(
    app: &App,
    application: &Application,
    deadline: Instant,
) -> Result<Option<UserId>, ApiError> {
    if let Some(user) = app.store.user_for_application(&application.id).await? {
        return Ok(Some(user));
    }
    // A subject that is no Stytch user id names nobody of ours.
    if let Some(subject) = application
        .attributes
        .jwt_subject
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        return Ok(UserId::parse(subject).ok());
    }
    owner_by_form(app, application, deadline).await
}
