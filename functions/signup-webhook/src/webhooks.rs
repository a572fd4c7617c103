//! `POST /webhooks/stytch` and `POST /webhooks/unit`: verified over the raw body, applied
//! idempotently, and answered 2xx only once the effect is stored (a 5xx makes the sender retry).

use std::time::Duration;

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::domain::ApplicationStatus;
use shared::metrics::{self, Metric};
use shared::store;
use shared::stytch::{StytchError, User};
use shared::unit::UnitError;
use shared::{ApiError, App};
use tokio::time::Instant;

use shared::onboarding::{
    apply_contact, ensure_form, owner_by_form, record_application, record_status,
};

/// How long a processed event id is remembered: longer than Svix's ~27 h of retries and Unit's
/// at-least-once redeliveries.
const EVENT_MEMORY: Duration = Duration::from_secs(7 * 24 * 3600);

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

fn remember_until() -> i64 {
    shared::http::now_epoch() + EVENT_MEMORY.as_secs() as i64
}

/// A Stytch user event (Svix payload).
#[derive(Deserialize)]
struct StytchEvent {
    action: String,
    id: String,
    object_type: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    event_id: String,
    #[serde(default)]
    user: Option<User>,
}

/// `POST /webhooks/stytch`.
pub async fn stytch(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let secrets = app.secrets.current().await?;
    let delivery = shared::webhook::verify_svix(
        &secrets.stytch_webhook_secret,
        req.headers(),
        req.body().as_ref(),
        shared::http::now_epoch(),
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
    if event.object_type == "user" && event.id.starts_with("user-") {
        match event.action.as_str() {
            "CREATE" => user_created(app, &event, deadline).await?,
            "UPDATE" => user_updated(app, &event.id, deadline).await?,
            "DELETE" => {
                store::modify(&*app.store, &event.id, true, |r| {
                    !std::mem::replace(&mut r.deleted, true)
                })
                .await?;
            }
            _ => tracing::debug!(kind, "ignored Stytch event"),
        }
    } else {
        tracing::debug!(kind, "ignored Stytch event");
    }
    app.store.record_event(&key, remember_until()).await?;
    metrics::emit(Metric::WebhookApplied { source: "stytch" });
    Ok(ok("processed"))
}

async fn user_created(app: &App, event: &StytchEvent, deadline: Instant) -> Result<(), ApiError> {
    let user = match &event.user {
        Some(user) => Some(user.clone()),
        None => shared::onboarding::stytch_user(app, &event.id, deadline).await,
    };
    let record = store::modify(&*app.store, &event.id, true, |r| {
        !r.deleted && user.as_ref().is_some_and(|u| apply_contact(r, u))
    })
    .await?
    .ok_or_else(ApiError::internal)?;
    ensure_form(app, record, deadline).await?;
    Ok(())
}

/// Svix promises no order, so an update applies Stytch's current state, read afresh.
async fn user_updated(app: &App, user_id: &str, deadline: Instant) -> Result<(), ApiError> {
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
    relationships: Value,
}

#[derive(Deserialize)]
struct UnitEvents {
    data: Vec<UnitEvent>,
}

fn related(event: &UnitEvent, name: &str) -> Option<String> {
    event
        .relationships
        .get(name)?
        .get("data")?
        .get("id")?
        .as_str()
        .map(str::to_owned)
}

/// `POST /webhooks/unit`.
pub async fn unit(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let secrets = app.secrets.current().await?;
    shared::webhook::verify_unit(
        secrets.unit_webhook_token.expose(),
        req.headers(),
        req.body().as_ref(),
    )
    .map_err(refused("unit"))?;
    let events: UnitEvents = serde_json::from_slice(req.body().as_ref())
        .map_err(|_| ApiError::invalid_payload("the webhook body is not {\"data\": [events]}"))?;
    let deadline = shared::http::deadline(req);
    for event in &events.data {
        let key = format!("unit:{}", event.id);
        if app.store.event_processed(&key).await? {
            continue;
        }
        let Some(status) = ApplicationStatus::of_event(&event.kind) else {
            tracing::debug!(kind = %event.kind, event_id = %event.id, "ignored Unit event");
            continue;
        };
        apply_unit_event(app, event, &status, deadline).await?;
        app.store.record_event(&key, remember_until()).await?;
    }
    metrics::emit(Metric::WebhookApplied { source: "unit" });
    Ok(ok("processed"))
}

async fn apply_unit_event(
    app: &App,
    event: &UnitEvent,
    status: &ApplicationStatus,
    deadline: Instant,
) -> Result<(), ApiError> {
    let customer_id = related(event, "customer").filter(|_| *status == ApplicationStatus::Approved);
    let application_id = match related(event, "application") {
        Some(id) => id,
        None => match &customer_id {
            Some(c) => match app
                .unit
                .get_customer(c, deadline)
                .await?
                .related_id("application")
            {
                Some(a) => a.to_owned(),
                None => {
                    tracing::info!(event_id = %event.id, "customer without an application; not ours");
                    return Ok(());
                }
            },
            None => {
                tracing::info!(event_id = %event.id, "event without an application; ignored");
                return Ok(());
            }
        },
    };
    let known = app.store.user_for_application(&application_id).await?;
    let user_id = match known {
        Some(user) => user,
        None => {
            let application = match app.unit.get_application(&application_id, deadline).await {
                Ok(a) => a,
                Err(UnitError::Api { status: 404, .. }) => {
                    tracing::info!(application_id, "Unit knows no such application; not ours");
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            };
            let subject = application
                .attributes
                .jwt_subject
                .clone()
                .filter(|s| !s.is_empty());
            let user = match subject {
                Some(user) => user,
                // No jwtSubject: ours if it came from a form we made for a user.
                None => match owner_by_form(app, &application, deadline).await? {
                    Some(user) => user,
                    None => {
                        tracing::info!(
                            application_id,
                            "application without jwtSubject from none of our forms; not ours"
                        );
                        return Ok(());
                    }
                },
            };
            // The webhook may outrun the application's own status: record what Unit says now too.
            record_application(app, &user, &application, deadline).await?;
            user
        }
    };
    record_status(
        app,
        &user_id,
        &application_id,
        status,
        customer_id.as_deref(),
        deadline,
    )
    .await?;
    Ok(())
}
