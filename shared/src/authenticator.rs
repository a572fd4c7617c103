//! Which authenticator may step a bank customer's session up (SECURITY.md, "A password alone
//! does not bind a bank customer's authenticator").
//!
//! Once a user has a Unit customer, a TOTP factor counts only if it is the registration enrolled
//! through `POST /mfa/totp` (its id recorded as `totp_id`) and that registration is confirmed: a
//! session that enrolled or used it also proved, within `STEP_UP_MAX_AGE`, the e-mail address or
//! phone number on the Unit customer (an e-mail code, an SMS code or a magic link, matched by
//! address). Unit's contact is the one KYC checked; an address added to the Stytch user during
//! the session is not it. A password thief has neither that inbox nor that phone.

use tokio::time::Instant;

use crate::domain::CustomerId;
use crate::jwt::{Freshness, VerifiedSession};
use crate::store::{self, UserRecord};
use crate::{ApiError, App};

/// The contact on the Unit customer: its e-mail and its phone as E.164.
pub async fn customer_contact(
    unit: &crate::unit::UnitClient,
    customer_id: &CustomerId,
    deadline: Instant,
) -> Result<(Option<String>, Option<String>), ApiError> {
    let customer = unit.get_customer(customer_id, deadline).await?;
    let a = customer.attributes;
    let phone = a.phone.map(|p| format!("+{}{}", p.country_code, p.number));
    Ok((a.email, phone))
}

/// The freshness window of a step-up (`STEP_UP_MAX_AGE`, `JWT_LEEWAY_SECONDS`) at `now`.
pub fn step_up_window(config: &crate::config::Config, now: i64) -> Freshness {
    Freshness {
        max_age: config.step_up.max_age,
        leeway: config.session.leeway,
        now,
    }
}

/// Whether the session proves, now, the contact on the user's Unit customer.
pub async fn proves_customer_contact(
    app: &App,
    session: &VerifiedSession,
    customer_id: &CustomerId,
    deadline: Instant,
) -> Result<bool, ApiError> {
    let fresh = step_up_window(&app.config, crate::http::now_epoch());
    // A session that proved no address at all (a password thief's) costs no Unit call.
    if !session.has_contact_proof(fresh) {
        return Ok(false);
    }
    let (email, phone) = customer_contact(&app.unit, customer_id, deadline).await?;
    Ok(session.proves_contact(email.as_deref(), phone.as_deref(), fresh))
}

/// Checks, for a sensitive mint of a customer, that the session's TOTP step-up is the user's
/// bound and confirmed authenticator; confirms it (one write) when this session proves the
/// customer's contact. 403 `authenticator_unconfirmed` otherwise.
///
/// A TOTP enrolled before this check existed (no `totp_id` recorded, but a step-up recorded in
/// `second_factor_verified_at`) is adopted the same way: with the contact proven.
pub async fn check_bound(
    app: &App,
    session: &VerifiedSession,
    record: &UserRecord,
    customer_id: &CustomerId,
    deadline: Instant,
) -> Result<(), ApiError> {
    let now = crate::http::now_epoch();
    let fresh = step_up_window(&app.config, now);
    let used = session.fresh_totp_ids(fresh);
    let recorded = record.totp_id.as_deref();
    if record.totp_confirmed_at.is_some() && recorded.is_some_and(|id| used.contains(&id)) {
        return Ok(());
    }
    let adoptable = recorded.is_none() && record.second_factor_verified_at.is_some();
    let candidate = match recorded {
        Some(id) if used.contains(&id) => Some(id.to_owned()),
        None if adoptable => used.first().map(|id| (*id).to_owned()),
        _ => None,
    };
    let Some(totp_id) = candidate else {
        tracing::warn!("the session's TOTP is not the one enrolled through this service");
        return Err(ApiError::authenticator_unconfirmed(
            app.config.step_up.max_age.as_secs(),
        ));
    };
    if !proves_customer_contact(app, session, customer_id, deadline).await? {
        tracing::info!("the bound TOTP awaits its confirmation by the customer's contact");
        return Err(ApiError::authenticator_unconfirmed(
            app.config.step_up.max_age.as_secs(),
        ));
    }
    store::modify(&*app.store, &record.user_id, false, |r| {
        if r.totp_id.as_deref().is_some_and(|id| id != totp_id) {
            return false;
        }
        r.totp_id = Some(totp_id.clone());
        r.totp_confirmed_at = Some(store::timestamp());
        true
    })
    .await?;
    tracing::info!(
        totp_id,
        "the user's TOTP is confirmed by the customer's contact"
    );
    Ok(())
}
