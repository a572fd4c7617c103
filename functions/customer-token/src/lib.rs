//! customer-token: a verified Stytch session JWT becomes a Unit customer bearer token, the last
//! step of Stytch's Unit guide.
//!
//! The JWT is verified locally (no Stytch call). Scopes outside `ALLOWED_SCOPES` are refused; a
//! scope on `SENSITIVE_SCOPES` needs a `totp` factor authenticated within `STEP_UP_MAX_AGE`
//! (else 401 `step_up_required`, an RFC 9470 challenge). A JWT about to expire is not sent to Unit, which verifies it
//! too. Per request: one store call that reads the user's record and takes a slot of the
//! `TOKENS_PER_USER` limit, one Unit call, one audit write, and nothing logged that could be
//! replayed (no JWT, no token).

use std::collections::BTreeSet;
use std::sync::Arc;

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use shared::config::{Config, StepUpFactor, TokenSettings};
use shared::domain::{AccountId, CardId, CustomerId, Scope, Scopes};
use shared::error::FieldProblem;
use shared::jwt::VerifiedSession;
use shared::secrets::SecretString;
use shared::store::{AuditEntry, Slots, TokenSlot, UserRecord};
use shared::stytch::StytchClient;
use shared::unit::{CreateCustomerToken, CustomerTokenAttributes, TokenResource, UnitClient};
use shared::{ApiError, App};
use tokio::time::Instant;

/// The routes this function serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /unit/customer-token`: a Unit customer token for the caller.
    CustomerToken,
}

impl shared::http::Routes for Route {
    const ALL: &'static [Self] = &[Self::CustomerToken];

    fn method(self) -> Method {
        Method::POST
    }

    fn path(self) -> &'static str {
        match self {
            Self::CustomerToken => "/unit/customer-token",
        }
    }
}

/// Unit's longest customer token.
pub const MAX_EXPIRES_IN: u32 = 86_400;

/// A session with less left than this (seconds) mints nothing: 401 `session_ending`, so the
/// frontend extends the Stytch session (or logs in again) instead of holding a token that
/// would outlive it by moments.
pub const SESSION_MIN_LEFT: i64 = 60;

/// The request body; every field is optional.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    scope: Option<String>,
    expires_in: Option<i64>,
    resources: Option<Vec<RequestedResource>>,
    upgradable_scope: Option<String>,
}

/// One entry of the request's `resources`, as sent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestedResource {
    #[serde(rename = "type")]
    kind: String,
    ids: Vec<String>,
}

/// The most card and account ids one token may be limited to (each is one Unit read).
pub const MAX_RESOURCE_IDS: usize = 10;

/// The answer.
#[derive(Serialize)]
struct Issued {
    token: SecretString,
    expires_in: u32,
    scope: String,
    customer_id: CustomerId,
    #[serde(skip_serializing_if = "Option::is_none")]
    upgradable_scope: Option<String>,
}

/// The checked request: scopes, lifetime, resources, upgradable scopes.
struct Checked {
    scopes: Scopes,
    expires_in: u32,
    resources: Option<Vec<TokenResource>>,
    upgradable: Option<Scopes>,
}

fn check_request(settings: &TokenSettings, body: TokenRequest) -> Result<Checked, ApiError> {
    let scopes = requested_scopes(settings, body.scope.as_deref())?;
    let mut problems = Vec::new();
    let expires_in = match body.expires_in {
        None => settings.default_expires_in,
        Some(n) if n >= 1 => u32::try_from(n)
            .unwrap_or(MAX_EXPIRES_IN)
            .min(MAX_EXPIRES_IN),
        Some(_) => {
            problems.push(FieldProblem::new(
                "expires_in",
                "must be a positive number of seconds (at most 86400 are granted)",
            ));
            0
        }
    };
    let resources = body
        .resources
        .map(|asked| typed_resources(asked, &mut problems));
    if !problems.is_empty() {
        return Err(ApiError::invalid_fields(problems));
    }
    Ok(Checked {
        scopes,
        expires_in,
        resources,
        upgradable: upgradable_scopes(settings, body.upgradable_scope.as_deref())?,
    })
}

/// The scopes Unit's components may upgrade the token to (`upgradable_scope`): each must be on
/// `UPGRADABLE_SCOPES`, which is empty, refusing them all, unless the operator turns it on.
fn upgradable_scopes(
    settings: &TokenSettings,
    asked: Option<&str>,
) -> Result<Option<Scopes>, ApiError> {
    let Some(asked) = asked.map(str::trim) else {
        return Ok(None);
    };
    let scopes =
        Scopes::parse(asked).map_err(|(bad, _)| ApiError::upgradable_scope_not_allowed(&[&bad]))?;
    let outside: Vec<&str> = scopes
        .outside(&settings.upgradable_scopes)
        .map(|s| s.as_str())
        .collect();
    if scopes.is_empty() || !outside.is_empty() {
        return Err(ApiError::upgradable_scope_not_allowed(&outside));
    }
    Ok(Some(scopes))
}

/// The scopes asked for (the default ones when none are named); each must be allowed. A name
/// that is not even a Unit scope is outside the allowed ones too.
fn requested_scopes(settings: &TokenSettings, asked: Option<&str>) -> Result<Scopes, ApiError> {
    let scopes = match asked.map(str::trim) {
        None | Some("") => settings.default_scopes.clone(),
        Some(s) => {
            Scopes::parse(s).map_err(|(bad, _)| ApiError::scope_not_allowed(&[bad.as_str()]))?
        }
    };
    let outside: Vec<&str> = scopes
        .outside(&settings.allowed_scopes)
        .map(|s| s.as_str())
        .collect();
    if !outside.is_empty() {
        return Err(ApiError::scope_not_allowed(&outside));
    }
    Ok(scopes)
}

/// The requested `resources` as Unit ids of their kind; what is wrong goes to `problems`.
fn typed_resources(
    asked: Vec<RequestedResource>,
    problems: &mut Vec<FieldProblem>,
) -> Vec<TokenResource> {
    if asked.is_empty() {
        problems.push(FieldProblem::new(
            "resources",
            "must not be empty when given",
        ));
    }
    if asked.iter().map(|r| r.ids.len()).sum::<usize>() > MAX_RESOURCE_IDS {
        problems.push(FieldProblem::new(
            "resources",
            format!("may name at most {MAX_RESOURCE_IDS} ids in all"),
        ));
    }
    let mut typed = Vec::new();
    for (i, r) in asked.into_iter().enumerate() {
        let known = matches!(r.kind.as_str(), "card" | "account");
        if !known {
            problems.push(FieldProblem::new(
                format!("resources[{i}].type"),
                "must be card or account",
            ));
        }
        // An unknown type's ids are judged as Unit ids all the same: every problem at once.
        let resource = match r.kind.as_str() {
            "account" => ids_of(r.ids).map(TokenResource::Accounts),
            _ => ids_of(r.ids).map(TokenResource::Cards),
        };
        match resource {
            None => problems.push(FieldProblem::new(
                format!("resources[{i}].ids"),
                "must be a non-empty list of Unit ids",
            )),
            Some(resource) if known => typed.push(resource),
            Some(_) => {}
        }
    }
    typed
}

/// A non-empty list of ids of one kind, or `None` if any is not one.
fn ids_of<T: std::str::FromStr>(ids: Vec<String>) -> Option<Vec<T>> {
    if ids.is_empty() {
        return None;
    }
    ids.iter().map(|id| id.parse().ok()).collect()
}

/// The sensitive scopes among `scopes`.
fn sensitive<'a>(settings: &TokenSettings, scopes: &'a Scopes) -> Vec<&'a str> {
    scopes
        .iter()
        .filter(|s| settings.is_sensitive(s))
        .map(|s| s.as_str())
        .collect()
}

/// The step-up rule: a sensitive scope needs a fresh `STEP_UP_FACTORS` factor beside another
/// one. A recovery-code login does not count: the user should step up with the factor again.
fn check_step_up(
    config: &Config,
    session: &VerifiedSession,
    sensitive: &[&str],
    now: i64,
) -> Result<(), ApiError> {
    if sensitive.is_empty() {
        return Ok(());
    }
    let fresh = shared::authenticator::step_up_window(config, now);
    if session.has_step_up(&config.step_up.factors, fresh) {
        return Ok(());
    }
    Err(ApiError::step_up_required(
        sensitive,
        &config.step_up.factors,
        config.step_up.max_age.as_secs(),
    ))
}

/// Whether a step-up factor other than TOTP (a passkey, an SMS code, when `STEP_UP_FACTORS`
/// names them) satisfies the step-up on its own: then no TOTP binding is needed.
fn stepped_up_without_totp(app: &App, session: &VerifiedSession, now: i64) -> bool {
    let others: BTreeSet<StepUpFactor> = app
        .config
        .step_up
        .factors
        .iter()
        .copied()
        .filter(|f| *f != StepUpFactor::Totp)
        .collect();
    !others.is_empty()
        && session.has_step_up(
            &others,
            shared::authenticator::step_up_window(&app.config, now),
        )
}

/// A sensitive scope's session confirmed at Stytch: both we and Unit check the JWT locally, so
/// a session that was revoked (or ended) keeps a valid JWT for up to 5 minutes. Fails closed.
async fn confirm_session(
    stytch: &StytchClient,
    session: &VerifiedSession,
    deadline: Instant,
) -> Result<(), ApiError> {
    stytch
        .authenticate_session(session.token.expose(), deadline)
        .await
        .map(drop)
        .map_err(shared::error::session_check_failure)
}

/// The user's Unit customer: from the record, or, if only an application is known, from Unit
/// (an approval whose webhook has not arrived), recorded on the way.
async fn customer_of(
    app: &App,
    record: &UserRecord,
    deadline: Instant,
) -> Result<CustomerId, ApiError> {
    if let Some(customer) = &record.customer_id {
        return Ok(customer.clone());
    }
    if record.application_id.is_none()
        || record
            .application_status
            .as_ref()
            .is_some_and(|s| s.is_closed())
    {
        return Err(ApiError::onboarding_incomplete());
    }
    shared::onboarding::customer_from_unit(app, record, deadline)
        .await?
        .ok_or_else(ApiError::onboarding_incomplete)
}

/// Handles one request (through [`shared::lambda::serve`]).
pub async fn handle(app: Arc<App>, req: Request) -> Result<Response<Body>, ApiError> {
    let (app, req) = (&*app, &req);
    match shared::http::route::<Route>(req)? {
        Route::CustomerToken => issue(app, req).await,
    }
}

/// `POST /unit/customer-token`.
async fn issue(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let session = app.authenticate(req).await?;
    let body: TokenRequest =
        shared::http::json_body(req, "a JSON object of scope, expires_in and resources")?;
    let now = shared::http::now_epoch();
    let asked = check(app, &session, body, now)?;
    let deadline = shared::http::deadline(req);
    if app.config.session.check.confirms(asked.sensitive) {
        confirm_session(&app.stytch, &session, deadline).await?;
    }
    // The slot counts only when a token was minted: any failure before gives it back, but for
    // a card or account that is not the caller's. Each of those cost Unit reads with our org
    // token, so probing ids counts against `TOKENS_PER_USER` like the tokens it did not get.
    let (record, slot) = take_slot(app, &session.user_id, now).await?;
    let (customer_id, issued) = match mint(app, &session, &record, &asked, now, deadline).await {
        Ok(minted) => minted,
        Err(e) if e.code == shared::error::ErrorCode::ResourceNotFound => {
            slot.keep();
            return Err(e);
        }
        Err(e) => {
            slot.give_back().await;
            return Err(e);
        }
    };
    slot.keep();
    let expires_in = issued
        .expires_in
        .unwrap_or(asked.expires_in)
        .min(asked.expires_in);
    // No audit, no token: a token we cannot account for is not handed out.
    app.store
        .put_audit(&AuditEntry {
            event: None,
            user_id: session.user_id.clone(),
            customer_id: Some(customer_id.clone()),
            scopes: asked.scopes.clone(),
            issued_at: shared::store::timestamp_millis(),
            request_id: shared::http::request_id(req),
            expires_in,
            upgradable_scopes: asked.upgradable.clone().unwrap_or_default(),
            resources: audited_resources(asked.resources.as_deref()),
        })
        .await?;
    let Asked {
        scope,
        sensitive,
        upgradable,
        ..
    } = asked;
    let upgradable_scope = upgradable.map(|u| u.to_string());
    tracing::info!(%customer_id, scope, upgradable_scope, expires_in, "issued a customer token");
    shared::metrics::emit(shared::metrics::Metric::TokenIssued { sensitive });
    let answer = Issued {
        token: issued.token,
        expires_in,
        scope,
        customer_id,
        upgradable_scope,
    };
    Ok(shared::error::json(StatusCode::OK, &answer))
}

/// A token request that passed every check needing no upstream call.
struct Asked {
    scopes: Scopes,
    /// The same scopes as Unit takes them, space-separated (the request, the answer, the log).
    scope: String,
    resources: Option<Vec<TokenResource>>,
    /// The scopes Unit's components may upgrade the token to with Unit's SMS code.
    upgradable: Option<Scopes>,
    /// A scope needs the step-up.
    sensitive: bool,
    /// The lifetime to ask Unit for: the caller's, capped for a sensitive scope, for a token
    /// limited to cards or accounts or carrying an upgradable scope, and by the session's
    /// remaining life.
    expires_in: u32,
}

/// The audit's form of a token's `resources`: `card:<id>`, `account:<id>`.
fn audited_resources(resources: Option<&[TokenResource]>) -> Vec<String> {
    resources
        .unwrap_or_default()
        .iter()
        .flat_map(|r| r.ids().into_iter().map(|id| format!("{}:{id}", r.kind())))
        .collect()
}

/// `scopes` with `customer-token-write`, which Unit needs beside an `upgradableScope`: added
/// without our step-up, as the upgrade itself is Unit's SMS code.
fn with_token_write(scopes: &Scopes) -> Scopes {
    let token_write = Scope::parse("customer-token-write").expect("a scope name");
    scopes.iter().cloned().chain([token_write]).collect()
}

/// The checks before any upstream call: the body, the step-up, and the time left on the JWT and
/// on the session.
fn check(
    app: &App,
    session: &VerifiedSession,
    body: TokenRequest,
    now: i64,
) -> Result<Asked, ApiError> {
    let config = &app.config;
    let checked = check_request(&app.config.tokens, body)?;
    let sensitive = sensitive(&app.config.tokens, &checked.scopes);
    check_step_up(&app.config, session, &sensitive, now)?;
    let sensitive = !sensitive.is_empty();
    let min_left = i64::try_from(config.session.min_remaining.as_secs()).unwrap_or(0);
    if session.seconds_left(now) < min_left {
        return Err(ApiError::session_jwt_expiring());
    }
    // No token outlives its session: Unit cannot revoke one, and the session's end is in the
    // signed claim (a claim without it is treated as ending now).
    let session_left = session.session_expires_at.map_or(0, |end| end - now).max(0);
    if session_left < SESSION_MIN_LEFT {
        return Err(ApiError::session_ending());
    }
    // One that can move money lives briefly, one for a card action or a component briefer.
    let mut capped = checked.expires_in;
    if sensitive {
        capped = capped.min(config.tokens.sensitive_max_expires_in);
    }
    if checked.resources.is_some() || checked.upgradable.is_some() {
        capped = capped.min(config.tokens.card_max_expires_in);
    }
    let scopes = match &checked.upgradable {
        Some(_) => with_token_write(&checked.scopes),
        None => checked.scopes,
    };
    Ok(Asked {
        scope: scopes.to_string(),
        scopes,
        resources: checked.resources,
        upgradable: checked.upgradable,
        sensitive,
        expires_in: capped.min(u32::try_from(session_left).unwrap_or(u32::MAX)),
    })
}

/// Reads the user's record and takes a slot of their `TOKENS_PER_USER` limit, in one store call;
/// the slot is held until a token is minted.
async fn take_slot(app: &App, user_id: &str, now: i64) -> Result<(UserRecord, Slots), ApiError> {
    let limit = app.config.tokens.per_user;
    match app
        .store
        .take_token_slot(user_id, limit.max, limit.window_secs(), now)
        .await?
    {
        TokenSlot::Taken(record) => {
            let mut slot = Slots::new(app.store.clone());
            slot.hold_token(user_id);
            Ok((record, slot))
        }
        TokenSlot::Full { retry_after } => {
            tracing::warn!("customer tokens limited for this user");
            Err(ApiError::too_many_tokens(retry_after))
        }
        TokenSlot::NoUser => Err(ApiError::onboarding_incomplete()),
        TokenSlot::Deleted => Err(ApiError::account_deleted(StatusCode::FORBIDDEN)),
    }
}

/// The token minted at Unit for the user's customer, once a sensitive scope's authenticator is
/// found bound to that customer: `(customer id, token)`.
async fn mint(
    app: &App,
    session: &VerifiedSession,
    record: &UserRecord,
    asked: &Asked,
    now: i64,
    deadline: Instant,
) -> Result<(CustomerId, CustomerTokenAttributes), ApiError> {
    // Unit archived the customer: nothing that writes or reaches sensitive data is minted, and
    // Unit is not asked. Read scopes go on to Unit, which decides (docs/unit-api.md §4).
    if asked.sensitive && record.customer_archived_at.is_some() {
        return Err(ApiError::customer_archived());
    }
    let customer_id = customer_of(app, record, deadline).await?;
    // A bank customer's TOTP step-up counts only with the authenticator bound to them.
    if asked.sensitive && !stepped_up_without_totp(app, session, now) {
        shared::authenticator::check_bound(app, session, record, &customer_id, deadline).await?;
    }
    if let Some(resources) = &asked.resources {
        check_resources(&app.unit, &customer_id, resources, deadline).await?;
    }
    let request = CreateCustomerToken {
        scope: asked.scope.clone(),
        jwt_token: session.token.clone(),
        expires_in: asked.expires_in,
        resources: asked.resources.clone(),
        upgradable_scope: asked.upgradable.as_ref().map(ToString::to_string),
    };
    let issued = app
        .unit
        .create_customer_token(&customer_id, &request, deadline)
        .await
        .map_err(shared::error::token_exchange_failure)?;
    Ok((customer_id, issued))
}

/// Every card and account a token is to be limited to must be `customer`'s: Unit is asked for
/// each with the org token, all at once, so no token ever names another customer's card. One
/// that is not the customer's is answered like one that does not exist.
async fn check_resources(
    unit: &UnitClient,
    customer: &CustomerId,
    resources: &[TokenResource],
    deadline: Instant,
) -> Result<(), ApiError> {
    let lookups = resources.iter().flat_map(|r| match r {
        TokenResource::Cards(ids) => ids.iter().map(Lookup::Card).collect::<Vec<_>>(),
        TokenResource::Accounts(ids) => ids.iter().map(Lookup::Account).collect(),
    });
    futures_util::future::try_join_all(lookups.map(|l| l.owned_by(unit, customer, deadline)))
        .await?;
    Ok(())
}

/// One card or account to look up at Unit.
enum Lookup<'a> {
    Card(&'a CardId),
    Account(&'a AccountId),
}

impl Lookup<'_> {
    /// Ok when Unit says `customer` owns it (a joint account's `customers` included).
    async fn owned_by(
        self,
        unit: &UnitClient,
        customer: &CustomerId,
        deadline: Instant,
    ) -> Result<(), ApiError> {
        let (what, owners) = match self {
            Lookup::Card(id) => {
                let what = format!("card {id}");
                let card = unit.get_card(id, deadline).await;
                let card = card.map_err(|e| shared::error::resource_lookup_failure(e, &what))?;
                (what, card.related_ids("customer"))
            }
            Lookup::Account(id) => {
                let what = format!("account {id}");
                let account = unit.get_account(id, deadline).await;
                let account =
                    account.map_err(|e| shared::error::resource_lookup_failure(e, &what))?;
                let mut owners = account.related_ids("customer");
                owners.extend(account.related_ids("customers"));
                (what, owners)
            }
        };
        if owners.iter().any(|o| *o == customer.as_str()) {
            Ok(())
        } else {
            tracing::warn!(
                resource = what,
                "a token was asked for another customer's resource"
            );
            Err(ApiError::resource_not_found(&what))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> TokenSettings {
        let mut map: std::collections::HashMap<&str, &str> = [
            (
                "STYTCH_PROJECT_ID",
                "project-test-00000000-0000-0000-0000-000000000000",
            ),
            ("UNIT_API_URL", "https://api.s.unit.sh"),
            ("SECRET_ID", "bridge/secrets"),
            ("TABLE_NAME", "bridge"),
        ]
        .into();
        map.extend(vars.iter().copied());
        Config::from_lookup(|k| map.get(k).map(|v| (*v).to_owned()))
            .expect("a valid configuration")
            .tokens
    }

    fn resource(kind: &str, ids: &[&str]) -> RequestedResource {
        RequestedResource {
            kind: kind.into(),
            ids: ids.iter().map(|i| (*i).to_owned()).collect(),
        }
    }

    #[test]
    fn resources_become_typed_ids_and_every_problem_is_named() {
        let mut problems = Vec::new();
        let typed = typed_resources(
            vec![
                resource("card", &["10001", "10002"]),
                resource("account", &["7"]),
            ],
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            audited_resources(Some(&typed)),
            ["card:10001", "card:10002", "account:7"]
        );
        let mut problems = Vec::new();
        typed_resources(
            vec![
                resource("vault", &["x"]),
                resource("card", &[]),
                resource("card", &["007"]),
            ],
            &mut problems,
        );
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "resources[0].type",
                "resources[0].ids",
                "resources[1].ids",
                "resources[2].ids"
            ]
        );
        let mut problems = Vec::new();
        let eleven: Vec<String> = (1..=11).map(|n| n.to_string()).collect();
        let eleven: Vec<&str> = eleven.iter().map(String::as_str).collect();
        typed_resources(vec![resource("card", &eleven)], &mut problems);
        assert_eq!(problems.len(), 1, "at most {MAX_RESOURCE_IDS} ids");
    }

    #[test]
    fn upgradable_scopes_are_refused_unless_allowed_and_bring_token_write() {
        let off = settings(&[]);
        assert!(upgradable_scopes(&off, None).unwrap().is_none());
        let refused = upgradable_scopes(&off, Some("cards-write")).unwrap_err();
        assert_eq!(refused.code, shared::error::ErrorCode::ScopeNotAllowed);
        let on = settings(&[("UPGRADABLE_SCOPES", "cards-write cards-sensitive")]);
        let granted = upgradable_scopes(&on, Some(" cards-write "))
            .unwrap()
            .unwrap();
        assert_eq!(granted.to_string(), "cards-write");
        assert!(upgradable_scopes(&on, Some("payments-write")).is_err());
        assert!(
            upgradable_scopes(&on, Some("")).is_err(),
            "an empty list is no list"
        );
        assert!(upgradable_scopes(&on, Some("Cards")).is_err());
        let scopes = Scopes::parse("customers cards").unwrap();
        assert_eq!(
            with_token_write(&scopes).to_string(),
            "cards customer-token-write customers"
        );
    }
}
