//! Unit sandbox: the onboarding, customer-token, account and card surface of `docs/unit-api.md`,
//! in JSON:API, with signed webhooks.
//!
//! Readings of the contract's open questions:
//! - an `idempotencyKey` seen before returns the original resource with 201, whatever the new
//!   body says (OQ1);
//! - customer-token creation answers 201 (OQ2);
//! - 2FA scopes are `cards-write cards-sensitive cards-sensitive-write payments-write
//!   counterparties-write` (OQ3);
//! - a bad, expired or mismatched `jwtToken` answers 401 with `title: "Unauthorized"` and the
//!   reason in `detail`; a 2FA scope without JWT or OTP answers 403 (OQ4); a `jwtToken` sent
//!   with non-2FA scopes is checked too (the stricter reading);
//! - `aud` is not checked, like Unit's documented checks;
//! - a live application with the same SSN answers 400 `code: "duplicate_ssn"`, except Unit's test
//!   SSNs, which force an outcome (`000000001` denied, `000000002`/`3`/`6` awaiting documents,
//!   `000000004` pending review) and `POST /sandbox/applications/{id}/approve` approves;
//! - `application.approved` is sent before `customer.created` (OQ7);
//! - `POST /customers/{id}/archive` archives (status `Archived`, `archiveReason`) and sends
//!   `customer.archived`; an archived customer's token requests are answered as any customer's
//!   (no source says Unit refuses them; the bridge refuses write scopes itself);
//! - deposit accounts and individual virtual debit cards (docs/unit-api.md §12): the org token
//!   does everything; a customer token needs `cards` or `cards-write` to read cards,
//!   `cards-write` to create, freeze, unfreeze, report lost or stolen and close (close by our
//!   reading), `cards-sensitive` or `cards-sensitive-write` for the PIN status (our reading);
//!   another customer's card and a card outside the token's `resources` answer 403; `Lost`,
//!   `Stolen` and `ClosedByCustomer` are final (400 for any later action);
//!   `POST /_sandbox/customers/{id}/card` opens an account and a card for a customer at once;
//! - business banking (docs/unit-api.md §13): business applications (direct and through the form),
//!   business customers, authorized users added and removed by e-mail, and business customer
//!   tokens for the contact's or any authorized user's `jwtSubject` (reading R1).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, put};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::webhooks::Sender;
use crate::{Controls, Running, now, random_hex};

mod accounts;
mod applications;
mod authorized_users;
mod business;
mod cards;
mod customers;
mod forms;
mod tokens;

use accounts::*;
pub use applications::sample_applicant;
use applications::*;
use authorized_users::*;
pub use business::sample_business;
use business::*;
use cards::*;
use customers::*;
use forms::*;
use tokens::*;

/// Scopes that need 2FA (a `jwtToken` or the OTP pair).
pub const TWO_FACTOR_SCOPES: &[&str] = &[
    "cards-write",
    "cards-sensitive",
    "cards-sensitive-write",
    "payments-write",
    "counterparties-write",
];

/// Every customer-token scope name Unit knows (unit-node-sdk `UnitScope`).
const SCOPES: &[&str] = &[
    "applications",
    "applications-write",
    "customers",
    "customers-write",
    "customer-tags-write",
    "customer-token-write",
    "accounts",
    "accounts-write",
    "cards",
    "cards-write",
    "cards-sensitive",
    "cards-sensitive-write",
    "transactions",
    "transactions-write",
    "authorizations",
    "statements",
    "payments",
    "payments-write",
    "payments-write-counterparty",
    "payments-write-ach-debit",
    "counterparties",
    "counterparties-write",
    "batch-releases",
    "batch-releases-write",
    "authorization-requests",
    "authorization-requests-write",
    "check-deposits",
    "check-deposits-write",
    "received-payments",
    "received-payments-write",
    "chargebacks",
    "chargebacks-write",
    "rewards",
    "rewards-write",
    "events",
    "webhooks",
    "webhooks-write",
];

/// What happens to a new application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Policy {
    /// Approved at once (a customer is created).
    Approve,
    /// `Pending` until `POST /_sandbox/applications/{id}/decide`.
    Pending,
    /// `PendingReview` until decided.
    Review,
    /// `AwaitingDocuments` until decided.
    Documents,
    /// Denied at once.
    Deny,
}

impl Policy {
    /// Unit's sandbox test SSNs for individuals (docs/unit-api.md §8): `000000001` is denied,
    /// `000000002`, `000000003` and `000000006` await documents, `000000004` goes to manual
    /// review; they win over the set policy.
    fn of_test_ssn(ssn: Option<&str>) -> Option<Self> {
        match ssn? {
            "000000001" => Some(Self::Deny),
            "000000002" | "000000003" | "000000006" => Some(Self::Documents),
            "000000004" => Some(Self::Review),
            _ => None,
        }
    }
}

/// How the Unit sandbox is set up.
#[derive(Clone)]
pub struct UnitSettings {
    /// The org API token (Bearer).
    pub org_token: String,
    /// Where webhooks go, and the token they are signed with.
    pub webhook: Option<(String, String)>,
    /// Retry delays of webhook deliveries.
    pub webhook_schedule: Vec<std::time::Duration>,
    /// Org Settings → JWT Settings: the JWKS URL (Stytch's) and the expected issuer.
    pub jwt: Option<(String, String)>,
    /// The sandbox's own base URL, for form links (set when it starts).
    pub public_url: String,
}

/// The application types the sandbox onboards.
const INDIVIDUAL: &str = "individualApplication";
const BUSINESS: &str = "businessApplication";

struct Application {
    /// `individualApplication` or `businessApplication`.
    kind: &'static str,
    attributes: Map<String, Value>,
    /// The applicants' SSNs: the individual's, or a business's officer's and owners'.
    ssns: Vec<String>,
    /// A business's beneficial owners' ids (`relationships.beneficialOwners`), in order.
    owner_ids: Vec<u64>,
    status: String,
    customer_id: Option<u64>,
    form_id: Option<u64>,
    idempotency_key: Option<String>,
}

struct Form {
    v2: bool,
    attributes: Map<String, Value>,
    jwt_subject: Option<String>,
    application_id: Option<u64>,
    /// The type of the application the form produced (`individualApplication` until then).
    application_kind: &'static str,
    token: String,
    created_at: OffsetDateTime,
    idempotency_key: Option<String>,
}

struct Customer {
    /// `individualCustomer` or `businessCustomer`.
    kind: &'static str,
    attributes: Map<String, Value>,
    application_id: Option<u64>,
    /// The ids of its authorized users (`authorizedUserResource`), by lower-case e-mail.
    user_ids: BTreeMap<String, u64>,
}

/// A customer token: its customer, scopes, expiry and `resources` restriction.
#[derive(Clone)]
struct Grant {
    customer_id: u64,
    scopes: Vec<String>,
    expires_at: OffsetDateTime,
    /// `None`: every resource of the customer.
    resources: Option<Resources>,
}

/// A customer token's `resources`: the cards it may touch, and the accounts whose cards (and the
/// accounts themselves) it may touch.
#[derive(Clone, Default)]
struct Resources {
    cards: Vec<u64>,
    accounts: Vec<u64>,
}

struct Data {
    next_id: u64,
    applications: BTreeMap<u64, Application>,
    forms: BTreeMap<u64, Form>,
    customers: BTreeMap<u64, Customer>,
    accounts: BTreeMap<u64, Account>,
    cards: BTreeMap<u64, Card>,
    grants: HashMap<String, Grant>,
    verifications: HashMap<String, u64>,
    policy: Policy,
    /// Whether a completed form's application inherits the prefill's `jwtSubject` (it does at
    /// Unit as far as its SDK documents; off, the sandbox plays a Unit that does not).
    copy_prefill_subject: bool,
}

/// The sandbox's state.
pub struct Unit {
    settings: UnitSettings,
    data: Mutex<Data>,
    http: reqwest::Client,
    /// Webhook deliveries.
    pub webhooks: Arc<Sender>,
}

type Reply = Result<Response, Response>;

const JSON_API: &str = "application/vnd.api+json; charset=utf-8";

fn doc(status: StatusCode, body: Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_API),
    );
    r
}

/// One Unit error.
fn e(
    status: StatusCode,
    title: &str,
    code: Option<&str>,
    detail: &str,
    pointer: Option<&str>,
) -> Value {
    let mut v = json!({"status": status.as_u16().to_string(), "title": title, "detail": detail});
    if let Some(c) = code {
        v["code"] = json!(c);
    }
    if let Some(p) = pointer {
        v["source"] = json!({"pointer": p});
    }
    v
}

fn errors(status: StatusCode, list: Vec<Value>) -> Response {
    doc(status, json!({ "errors": list }))
}

fn error(status: StatusCode, title: &str, detail: &str) -> Response {
    errors(status, vec![e(status, title, None, detail, None)])
}

fn fault_body(status: StatusCode, _: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    error(status, title, "injected by the sandbox")
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        "the bearer token is missing, invalid or expired",
    )
}

fn forbidden(detail: &str) -> Response {
    error(StatusCode::FORBIDDEN, "Forbidden", detail)
}

fn invalid(detail: &str, pointer: &str) -> Value {
    e(
        StatusCode::BAD_REQUEST,
        "Invalid value",
        Some("invalid_value"),
        detail,
        Some(pointer),
    )
}

fn not_found(kind: &str, id: &str) -> Response {
    errors(
        StatusCode::NOT_FOUND,
        vec![e(
            StatusCode::NOT_FOUND,
            "Not Found",
            Some("not_found"),
            &format!("{kind} {id} not found"),
            None,
        )],
    )
}

fn rfc3339_ms(at: OffsetDateTime) -> String {
    let ms = at.millisecond();
    let at = at
        .replace_nanosecond(u32::from(ms) * 1_000_000)
        .unwrap_or(at);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The request document's `data` (type checked) and its attributes.
fn data_of(bytes: &Bytes, kind: &[&str]) -> Result<(Map<String, Value>, Value), Response> {
    let bad = |detail: &str| errors(StatusCode::BAD_REQUEST, vec![invalid(detail, "/data")]);
    let value: Value = serde_json::from_slice(bytes).map_err(|_| bad("the body is not JSON"))?;
    let data = value
        .get("data")
        .filter(|d| d.is_object())
        .ok_or_else(|| bad("missing data"))?;
    let t = data.get("type").and_then(Value::as_str).unwrap_or("");
    if !kind.contains(&t) {
        return Err(errors(
            StatusCode::BAD_REQUEST,
            vec![invalid(
                &format!("type must be one of {kind:?}"),
                "/data/type",
            )],
        ));
    }
    let attributes = data
        .get("attributes")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    Ok((
        attributes,
        data.get("relationships").cloned().unwrap_or(Value::Null),
    ))
}

fn string_field(a: &Map<String, Value>, k: &str) -> Option<String> {
    a.get(k).and_then(Value::as_str).map(str::to_owned)
}

impl Unit {
    /// A sandbox with the given settings.
    pub fn new(settings: UnitSettings) -> Arc<Self> {
        let webhooks = Sender::new(settings.webhook_schedule.clone());
        Arc::new(Self {
            settings,
            data: Mutex::new(Data {
                next_id: 10_000,
                applications: BTreeMap::new(),
                forms: BTreeMap::new(),
                customers: BTreeMap::new(),
                accounts: BTreeMap::new(),
                cards: BTreeMap::new(),
                grants: HashMap::new(),
                verifications: HashMap::new(),
                policy: Policy::Approve,
                copy_prefill_subject: true,
            }),
            http: reqwest::Client::new(),
            webhooks,
        })
    }

    fn data(&self) -> std::sync::MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What Unit holds for one `jwtSubject`: (application forms, applications, customers). The
    /// exactly-once checks of the fault and concurrency suites read it.
    pub fn census(&self, jwt_subject: &str) -> (usize, usize, usize) {
        let data = self.data();
        let mine = |a: &Map<String, Value>| {
            a.get("jwtSubject").and_then(Value::as_str) == Some(jwt_subject)
        };
        (
            data.forms
                .values()
                .filter(|f| f.jwt_subject.as_deref() == Some(jwt_subject))
                .count(),
            data.applications
                .values()
                .filter(|a| mine(&a.attributes))
                .count(),
            data.customers
                .values()
                .filter(|c| mine(&c.attributes))
                .count(),
        )
    }

    /// Adds a business customer at once, without an application (tests of code that must refuse
    /// businesses need one). Returns its id.
    pub fn add_business_customer(&self, name: &str, email: &str) -> String {
        let mut data = self.data();
        data.next_id += 1;
        let id = data.next_id;
        let attributes = json!({
            "name": name, "status": "Active", "createdAt": rfc3339_ms(now()), "tags": {},
            "contact": {"fullName": {"first": "Ann", "last": "Owner"}, "email": email,
                        "phone": {"countryCode": "1", "number": "5555550199"}},
            "authorizedUsers": [],
        });
        let Value::Object(attributes) = attributes else {
            unreachable!("an object literal")
        };
        data.customers.insert(
            id,
            Customer {
                kind: "businessCustomer",
                attributes,
                application_id: None,
                user_ids: BTreeMap::new(),
            },
        );
        id.to_string()
    }

    /// Sets what happens to new applications.
    pub fn set_policy(&self, policy: Policy) {
        self.data().policy = policy;
    }

    /// Whether completed forms pass the prefill's `jwtSubject` on to the application (and so to
    /// the customer); `false` plays a Unit that does not, for the tests of our fallback.
    pub fn set_prefill_subject_copied(&self, copied: bool) {
        self.data().copy_prefill_subject = copied;
    }

    fn bearer(headers: &HeaderMap) -> Option<&str> {
        headers
            .get(http::header::AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")
            .map(str::trim)
    }

    fn org(&self, headers: &HeaderMap) -> Result<(), Response> {
        let given = Self::bearer(headers).unwrap_or("");
        if aws_lc_rs::constant_time::verify_slices_are_equal(
            given.as_bytes(),
            self.settings.org_token.as_bytes(),
        )
        .is_ok()
        {
            Ok(())
        } else {
            Err(unauthorized())
        }
    }

    fn application_json(&self, id: u64, a: &Application) -> Value {
        if a.kind == BUSINESS {
            return business_application_json(id, a, application_relationships(a));
        }
        let mut attributes = a.attributes.clone();
        attributes.remove("idempotencyKey");
        if let Some(ssn) = attributes.remove("ssn").as_ref().and_then(Value::as_str) {
            attributes.insert("maskedSSN".into(), json!(masked(ssn)));
        }
        if let Some(passport) = attributes.remove("passport") {
            let p = passport.as_str().unwrap_or("");
            attributes.insert("maskedPassport".into(), json!(masked(p)));
        }
        attributes.insert("status".into(), json!(a.status));
        attributes.insert("message".into(), json!(a.status));
        attributes.entry("archived").or_insert(json!(false));
        json!({"type": INDIVIDUAL, "id": id.to_string(), "attributes": attributes, "relationships": application_relationships(a)})
    }

    fn customer_json(id: u64, c: &Customer) -> Value {
        let mut relationships = json!({"org": {"data": {"type": "org", "id": "1"}}});
        if let Some(a) = c.application_id {
            let kind = c.kind.replace("Customer", "Application");
            relationships["application"] = json!({"data": {"type": kind, "id": a.to_string()}});
        }
        json!({
            "type": c.kind, "id": id.to_string(), "attributes": c.attributes,
            "relationships": relationships,
        })
    }

    fn form_json(&self, id: u64, f: &Form) -> Value {
        let href = format!("{}/forms/{}", self.settings.public_url, f.token);
        let mut relationships = json!({});
        if let Some(a) = f.application_id {
            relationships["application"] =
                json!({"data": {"type": f.application_kind, "id": a.to_string()}});
        }
        if f.v2 {
            return json!({
                "type": "applicationFormV2", "id": id.to_string(),
                "attributes": {
                    "createdAt": rfc3339_ms(f.created_at), "updatedAt": rfc3339_ms(now()),
                    "tags": f.attributes.get("tags").cloned().unwrap_or(json!({})),
                    "applicationFormToken": {"token": f.token, "expiration": rfc3339_ms(f.created_at + time::Duration::hours(24))},
                    "applicationFormSettings": f.attributes.get("settingsOverride").cloned().unwrap_or(json!({})),
                },
                "links": {"related": {"type": "text/html", "href": href}},
                "relationships": relationships,
            });
        }
        let stage = match (f.application_id.is_some(), f.application_kind == BUSINESS) {
            (true, true) => "BusinessApplicationCreated",
            (true, false) => "IndividualApplicationCreated",
            (false, _) if form_is_business(&f.attributes) => "EnterBusinessInformation",
            (false, _) => "EnterIndividualInformation",
        };
        let mut attributes = f.attributes.clone();
        attributes.insert("url".into(), json!(href));
        attributes.insert("stage".into(), json!(stage));
        attributes.insert("createdAt".into(), json!(rfc3339_ms(f.created_at)));
        json!({"type": "applicationForm", "id": id.to_string(), "attributes": attributes, "relationships": relationships})
    }

    /// Creates an application of `kind` (after validation) and applies the approval policy (or
    /// the outcome a test SSN forces). Returns its id and whether it replayed an idempotency key.
    fn create_application(
        &self,
        kind: &'static str,
        mut attributes: Map<String, Value>,
        form_id: Option<u64>,
    ) -> Result<(u64, bool), Response> {
        let screened = screen(kind, &attributes)?;
        let mut events = Vec::new();
        let id = {
            let mut data = self.data();
            if let Some(k) = &screened.key
                && let Some((id, _)) = data
                    .applications
                    .iter()
                    .find(|(_, a)| a.idempotency_key.as_ref() == Some(k))
            {
                return Ok((*id, true));
            }
            refuse_duplicate_ssn(&data, &screened.checked)?;
            let at = rfc3339_ms(now());
            attributes.insert("createdAt".into(), json!(at));
            attributes.insert("updatedAt".into(), json!(at));
            if kind == INDIVIDUAL {
                attributes.entry("jwtSubject").or_insert(Value::Null);
            }
            attributes.entry("tags").or_insert(json!({}));
            if let Some(Value::Object(addr)) = attributes.get_mut("address") {
                addr.entry("country").or_insert(json!("US"));
            }
            let owners = attributes
                .get("beneficialOwners")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let owner_ids = (0..owners)
                .map(|_| {
                    data.next_id += 1;
                    data.next_id
                })
                .collect();
            data.next_id += 1;
            let id = data.next_id;
            let policy = screened.forced.unwrap_or(data.policy);
            let application = Application {
                kind,
                attributes,
                ssns: screened.ssns,
                owner_ids,
                status: "Pending".into(),
                customer_id: None,
                form_id,
                idempotency_key: screened.key,
            };
            data.applications.insert(id, application);
            self.apply_policy(&mut data, id, policy, &mut events);
            id
        };
        self.send_events(events);
        Ok((id, false))
    }

    /// Moves new application `id` on as `policy` says (approved, denied, to review, to
    /// documents, or left pending).
    fn apply_policy(&self, data: &mut Data, id: u64, policy: Policy, events: &mut Vec<Value>) {
        match policy {
            Policy::Approve => self.decide_locked(data, id, "approve", events),
            Policy::Deny => self.decide_locked(data, id, "deny", events),
            Policy::Review => self.set_status(
                data,
                id,
                "PendingReview",
                "application.pendingReview",
                events,
            ),
            Policy::Documents => self.set_status(
                data,
                id,
                "AwaitingDocuments",
                "application.awaitingDocuments",
                events,
            ),
            Policy::Pending => {}
        }
    }

    fn set_status(
        &self,
        data: &mut Data,
        id: u64,
        status: &str,
        event: &str,
        events: &mut Vec<Value>,
    ) {
        let Some(a) = data.applications.get_mut(&id) else {
            return;
        };
        a.status = status.into();
        a.attributes
            .insert("updatedAt".into(), json!(rfc3339_ms(now())));
        let tags = a.attributes.get("tags").cloned().unwrap_or(json!({}));
        let kind = a.kind;
        events.push(self.event(
            data,
            event,
            tags,
            json!({"application": {"data": {"type": kind, "id": id.to_string()}}}),
        ));
    }

    fn event(&self, data: &mut Data, kind: &str, tags: Value, relationships: Value) -> Value {
        data.next_id += 1;
        json!({"id": data.next_id.to_string(), "type": kind,
               "attributes": {"createdAt": rfc3339_ms(now()), "tags": tags}, "relationships": relationships})
    }

    /// Decides application `id` if `allowed` accepts its status, sends the events and answers
    /// the application (200).
    fn decide_and_answer(
        &self,
        id: &str,
        decision: &str,
        allowed: impl FnOnce(&str) -> Result<(), Response>,
    ) -> Reply {
        let n = parse_id(id).ok_or_else(|| not_found("application", id))?;
        let mut events = Vec::new();
        let answer = {
            let mut data = self.data();
            let status = data
                .applications
                .get(&n)
                .map(|a| a.status.clone())
                .ok_or_else(|| not_found("application", id))?;
            allowed(&status)?;
            self.decide_locked(&mut data, n, decision, &mut events);
            let a = data
                .applications
                .get(&n)
                .ok_or_else(|| not_found("application", id))?;
            json!({"data": self.application_json(n, a)})
        };
        self.send_events(events);
        Ok(doc(StatusCode::OK, answer))
    }

    /// Approves, denies or cancels a pending application.
    fn decide_locked(&self, data: &mut Data, id: u64, decision: &str, events: &mut Vec<Value>) {
        match decision {
            "approve" => self.approve_locked(data, id, events),
            "deny" => self.set_status(data, id, "Denied", "application.denied", events),
            "cancel" => self.set_status(data, id, "Canceled", "application.canceled", events),
            _ => {}
        }
    }

    /// Approves application `id` (once): creates its customer, marks it `Approved` and queues
    /// `application.approved` then `customer.created` (OQ7).
    fn approve_locked(&self, data: &mut Data, id: u64, events: &mut Vec<Value>) {
        let Some(a) = data.applications.get(&id) else {
            return;
        };
        if a.customer_id.is_some() {
            return;
        }
        let (application_kind, customer_kind, attributes) = if a.kind == BUSINESS {
            (
                BUSINESS,
                "businessCustomer",
                business_customer_attributes(a),
            )
        } else {
            (INDIVIDUAL, "individualCustomer", new_customer_attributes(a))
        };
        let tags = attributes.get("tags").cloned().unwrap_or(json!({}));
        data.next_id += 1;
        let customer_id = data.next_id;
        data.customers.insert(
            customer_id,
            Customer {
                kind: customer_kind,
                attributes,
                application_id: Some(id),
                user_ids: BTreeMap::new(),
            },
        );
        if let Some(a) = data.applications.get_mut(&id) {
            a.status = "Approved".into();
            a.customer_id = Some(customer_id);
            a.attributes
                .insert("decisionMethod".into(), json!("Automatically"));
            a.attributes
                .insert("decisionDateTime".into(), json!(rfc3339_ms(now())));
        }
        let rel = json!({
            "application": {"data": {"type": application_kind, "id": id.to_string()}},
            "customer": {"data": {"type": customer_kind, "id": customer_id.to_string()}},
        });
        let approved = self.event(data, "application.approved", tags.clone(), rel.clone());
        let created = self.event(data, "customer.created", tags, rel);
        events.push(approved);
        events.push(created);
    }

    fn send_events(&self, events: Vec<Value>) {
        let Some((url, token)) = self.settings.webhook.clone() else {
            return;
        };
        for event in events {
            let id = event["id"].as_str().unwrap_or_default().to_owned();
            let kind = event["type"].as_str().unwrap_or_default().to_owned();
            // Compact bytes, signed exactly as sent.
            let body = json!({ "data": [event] }).to_string().into_bytes();
            let token = token.clone();
            let sign: crate::webhooks::Signer = Arc::new(move |_, body| {
                let mut h = HeaderMap::new();
                if let Ok(v) = HeaderValue::from_str(&shared::webhook::unit_signature(&token, body))
                {
                    h.insert("x-unit-signature", v);
                }
                h
            });
            self.webhooks.send(url.clone(), id, kind, body, sign);
        }
    }

    /// Checks a `jwtToken` as Unit documents: RS256 by `kid` against the org's JWKS, `iss`,
    /// `exp`, and `sub` one of the customer's `subjects` (an individual's `jwtSubject`; a
    /// business's contact's and authorized users', reading R1 of §13). Gives the `sub`.
    async fn check_jwt(&self, token: &str, subjects: &[String]) -> Result<String, String> {
        let (jwks_url, issuer) = self
            .settings
            .jwt
            .clone()
            .ok_or("the org has no JWT settings")?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| "malformed JWT")?;
        if header.alg != jsonwebtoken::Algorithm::RS256 {
            return Err("the JWT must be RS256".into());
        }
        let kid = header.kid.ok_or("the JWT has no kid")?;
        let jwks: Value = self
            .http
            .get(&jwks_url)
            .send()
            .await
            .map_err(|e| format!("JWKS unreachable: {e}"))?
            .json()
            .await
            .map_err(|_| "JWKS unreadable")?;
        let key = jwks["keys"]
            .as_array()
            .and_then(|keys| keys.iter().find(|k| k["kid"] == kid))
            .ok_or("no JWKS key matches the kid")?;
        let key = jsonwebtoken::DecodingKey::from_rsa_components(
            key["n"].as_str().unwrap_or(""),
            key["e"].as_str().unwrap_or(""),
        )
        .map_err(|_| "bad JWKS key")?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.leeway = 0;
        validation.validate_aud = false;
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| format!("JWT rejected: {e}"))?;
        let sub = data.claims["sub"].as_str().unwrap_or_default();
        if subjects.is_empty() {
            Err("the customer has no jwtSubject".into())
        } else if subjects.iter().any(|s| s == sub) {
            Ok(sub.to_owned())
        } else {
            Err("the JWT subject does not match the customer's jwtSubject".into())
        }
    }
}

/// Answers 400 `duplicate_ssn` for each nine-digit SSN of `ssns` (with its pointer) that a live
/// (not denied or canceled) application already holds, as an individual's SSN or a business
/// officer's or owner's.
fn refuse_duplicate_ssn(data: &Data, ssns: &[(String, String)]) -> Result<(), Response> {
    let problems: Vec<Value> = ssns
        .iter()
        .filter(|(s, _)| s.len() == 9)
        .filter(|(s, _)| {
            data.applications
                .values()
                .any(|a| a.ssns.contains(s) && !matches!(a.status.as_str(), "Denied" | "Canceled"))
        })
        .map(|(_, pointer)| {
            e(
                StatusCode::BAD_REQUEST,
                "Duplicate SSN",
                Some("duplicate_ssn"),
                "an application with this SSN already exists",
                Some(pointer),
            )
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(errors(StatusCode::BAD_REQUEST, problems))
    }
}

/// What a new application's checks found: its idempotency key, its SSNs, those the duplicate
/// rule applies to (with their pointers), and the outcome a test SSN forces.
struct Screened {
    key: Option<String>,
    ssns: Vec<String>,
    checked: Vec<(String, String)>,
    forced: Option<Policy>,
}

/// Validates a new application of `kind` (400 with every problem) and reads what its creation
/// needs. Test SSNs, shared by every sandbox user, are never duplicates.
fn screen(kind: &str, attributes: &Map<String, Value>) -> Result<Screened, Response> {
    let business = kind == BUSINESS;
    let problems = if business {
        validate_business(attributes)
    } else {
        validate_application(attributes)
    };
    if !problems.is_empty() {
        return Err(errors(StatusCode::BAD_REQUEST, problems));
    }
    let (ssns, forced, checked) = if business {
        let ssns = business_ssns(attributes);
        let checked = ssns
            .iter()
            .filter(|(s, _)| !is_reserved_test_ssn(s))
            .cloned()
            .collect();
        (ssns, Policy::of_business_test_ssns(attributes), checked)
    } else {
        let ssn = string_field(attributes, "ssn");
        let forced = Policy::of_test_ssn(ssn.as_deref());
        let ssns: Vec<(String, String)> = ssn
            .map(|s| (s, "/data/attributes/ssn".to_owned()))
            .into_iter()
            .collect();
        let checked = if forced.is_none() {
            ssns.clone()
        } else {
            Vec::new()
        };
        (ssns, forced, checked)
    };
    Ok(Screened {
        key: string_field(attributes, "idempotencyKey"),
        ssns: ssns.into_iter().map(|(s, _)| s).collect(),
        checked,
        forced,
    })
}

/// Application `a`'s relationships: the org, no documents, its customer once approved (typed by
/// the application's kind), a business's beneficial owners, and the form that made it.
fn application_relationships(a: &Application) -> Value {
    let mut relationships =
        json!({"org": {"data": {"type": "org", "id": "1"}}, "documents": {"data": []}});
    if let Some(c) = a.customer_id {
        let kind = if a.kind == BUSINESS {
            "businessCustomer"
        } else {
            "individualCustomer"
        };
        relationships["customer"] = json!({"data": {"type": kind, "id": c.to_string()}});
    }
    if a.kind == BUSINESS {
        let owners: Vec<Value> = a
            .owner_ids
            .iter()
            .map(|o| json!({"type": "beneficialOwner", "id": o.to_string()}))
            .collect();
        relationships["beneficialOwners"] = json!({ "data": owners });
    }
    if let Some(f) = a.form_id {
        relationships["applicationForm"] =
            json!({"data": {"type": "applicationForm", "id": f.to_string()}});
    }
    relationships
}

/// `*****` and the last four characters, as Unit masks SSNs, passports and the like.
fn masked(secret: &str) -> String {
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("*****{tail}")
}

/// A new customer's attributes, from its approved application: the applicant's details, the
/// masked SSN, `Active`, created now.
fn new_customer_attributes(a: &Application) -> Map<String, Value> {
    let mut attributes = Map::new();
    for k in [
        "fullName",
        "email",
        "phone",
        "address",
        "dateOfBirth",
        "tags",
        "jwtSubject",
        "nationality",
    ] {
        if let Some(v) = a.attributes.get(k) {
            attributes.insert(k.into(), v.clone());
        }
    }
    if let Some(ssn) = a.ssns.first() {
        attributes.insert("maskedSSN".into(), json!(masked(ssn)));
    }
    attributes.insert("createdAt".into(), json!(rfc3339_ms(now())));
    attributes.insert("status".into(), json!("Active"));
    attributes.insert("authorizedUsers".into(), json!([]));
    attributes
}

/// The number of customer `id` (404 when there is none).
fn customer_number(data: &Data, id: &str) -> Result<u64, Response> {
    parse_id(id)
        .filter(|n| data.customers.contains_key(n))
        .ok_or_else(|| not_found("customer", id))
}

fn parse_id(id: &str) -> Option<u64> {
    if id.starts_with('0') {
        return None;
    }
    id.parse().ok()
}

/// `PUT /_sandbox/webhooks {"deliver": false}` loses every later webhook; `true` delivers again.
async fn webhook_switch(State(u): State<Arc<Unit>>, Json(body): Json<Value>) -> StatusCode {
    u.webhooks
        .set_enabled(body["deliver"].as_bool().unwrap_or(true));
    StatusCode::NO_CONTENT
}

async fn webhook_log(State(u): State<Arc<Unit>>) -> Json<Value> {
    Json(json!(u.webhooks.deliveries()))
}

async fn fallback() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found", "no such route")
}

/// The API routes that take a JSON body: each is gated by the schema Unit's OpenAPI spec gives
/// its request (`crate::unit_spec`).
pub const GATED: &[(Method, &str)] = &[
    (Method::POST, "/applications"),
    (Method::POST, "/application-forms"),
    (Method::PATCH, "/customers/{id}"),
    (Method::POST, "/customers/{id}/token"),
    (Method::POST, "/customers/{id}/token/verification"),
    (Method::POST, "/customers/{id}/authorized-users"),
    (Method::DELETE, "/customers/{id}/authorized-users"),
    (Method::POST, "/accounts"),
    (Method::POST, "/cards"),
];

/// The request gate, compiled once per process.
pub fn spec() -> &'static crate::unit_spec::Gate {
    static GATE: std::sync::OnceLock<crate::unit_spec::Gate> = std::sync::OnceLock::new();
    GATE.get_or_init(|| {
        crate::unit_spec::Gate::load(GATED).unwrap_or_else(|e| panic!("Unit's OpenAPI spec: {e}"))
    })
}

/// Answers an off-spec JSON body with Unit's 400 (one error per problem, each with its
/// pointer); a body that is not JSON at all is left to the handler's own answer.
async fn spec_gate(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let Some(operation) = spec().operation(req.method(), req.uri().path(), req.headers()) else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload Too Large",
            "body over 1 MiB",
        );
    };
    if let Ok(value) = serde_json::from_slice::<Value>(&bytes)
        && let Err(problems) = operation.check(&value)
    {
        let list = problems
            .iter()
            .map(|p| invalid(&p.detail, &p.pointer))
            .collect();
        return errors(StatusCode::BAD_REQUEST, list);
    }
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

/// The account and card API routes (docs/unit-api.md §12).
fn account_and_card_routes() -> axum::Router<Arc<Unit>> {
    axum::Router::new()
        .route("/accounts", post(create_account))
        .route("/accounts/{id}", get(get_account))
        .route("/cards", post(create_card).get(list_cards))
        .route("/cards/{id}", get(get_card))
        .route("/cards/{id}/freeze", card_action(CardAction::Freeze))
        .route("/cards/{id}/unfreeze", card_action(CardAction::Unfreeze))
        .route(
            "/cards/{id}/report-lost",
            card_action(CardAction::ReportLost),
        )
        .route(
            "/cards/{id}/report-stolen",
            card_action(CardAction::ReportStolen),
        )
        .route("/cards/{id}/close", card_action(CardAction::Close))
        .route("/cards/{id}/secure-data/pin/status", get(pin_status))
}

/// The sandbox's router.
pub fn router(u: Arc<Unit>, controls: Arc<Controls>) -> axum::Router {
    let api = axum::Router::new()
        .route(
            "/applications",
            post(create_application).get(list_applications),
        )
        .route("/applications/{id}", get(get_application))
        .route("/application-forms", post(create_form))
        .route("/application-forms/{id}", get(get_form))
        .route("/customers/{id}", get(get_customer).patch(patch_customer))
        .route("/customers/{id}/token", post(create_token))
        .route("/customers/{id}/archive", post(archive_customer))
        .route(
            "/customers/{id}/authorized-users",
            post(add_authorized_users)
                .delete(remove_authorized_users)
                .get(list_authorized_users),
        )
        .route(
            "/customers/{id}/authorized-users/{user}",
            get(get_authorized_user),
        )
        .route("/sandbox/applications/{id}/approve", post(sandbox_approve))
        .route(
            "/customers/{id}/token/verification",
            post(token_verification),
        )
        .merge(account_and_card_routes())
        .route_layer(axum::middleware::from_fn(spec_gate))
        .route_layer(axum::middleware::from_fn_with_state(
            (controls.clone(), fault_body as super::ErrorBody),
            super::observe,
        ));
    axum::Router::new()
        .merge(api)
        .route("/forms/{token}", get(form_page).post(form_submit))
        .route("/_sandbox/approval", put(set_policy))
        .route("/_sandbox/applications/{id}/decide", post(decide))
        .route(
            "/_sandbox/application-forms/{id}/complete",
            post(complete_form),
        )
        .route("/_sandbox/webhooks", get(webhook_log).put(webhook_switch))
        .route("/_sandbox/customers/{id}/card", post(sandbox_open_card))
        .fallback(fallback)
        .with_state(u)
        .merge(super::control_routes(controls))
        .layer(axum::middleware::from_fn(cors))
}

/// Browsers call Unit's API with customer tokens (Unit's white-label components do): the API
/// answers CORS preflights and allows any origin, as the public API does for token-authenticated
/// calls (our reading; the contract docs are silent). The demo page relies on it.
async fn cors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use http::header::{
        ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
        ACCESS_CONTROL_MAX_AGE, HeaderValue,
    };
    let preflight = req.method() == http::Method::OPTIONS
        && req
            .headers()
            .contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PATCH, PUT, DELETE"),
        );
        h.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, accept, x-accept-version"),
        );
        h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        r
    } else {
        next.run(req).await
    };
    response
        .headers_mut()
        .insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// Starts the Unit sandbox on `listener`; form links use its address unless `public_url` is set.
pub fn start(
    mut settings: UnitSettings,
    listener: tokio::net::TcpListener,
) -> std::io::Result<(Arc<Unit>, Running)> {
    if settings.public_url.is_empty() {
        settings.public_url = format!("http://{}", listener.local_addr()?);
    }
    let unit = Unit::new(settings);
    let controls = Arc::new(Controls::default());
    let running = super::serve(router(unit.clone(), controls.clone()), listener, controls)?;
    Ok((unit, running))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_applicant_is_valid_and_every_problem_is_reported() {
        assert_eq!(
            validate_application(&sample_applicant()),
            Vec::<Value>::new()
        );
        let mut a = sample_applicant();
        a.remove("ssn");
        a.insert("dateOfBirth".into(), json!("2999-01-01"));
        a.insert(
            "address".into(),
            json!({"street": "1 Main", "city": "X", "state": "ny", "postalCode": "123"}),
        );
        a.insert("favouriteColour".into(), json!("blue"));
        let problems = validate_application(&a);
        let pointers: Vec<&str> = problems
            .iter()
            .map(|p| p["source"]["pointer"].as_str().unwrap())
            .collect();
        for expected in [
            "/data/attributes/ssn",
            "/data/attributes/dateOfBirth",
            "/data/attributes/address/state",
            "/data/attributes/address/postalCode",
            "/data/attributes/favouriteColour",
        ] {
            assert!(pointers.contains(&expected), "{expected} in {pointers:?}");
        }
        assert!(
            problems
                .iter()
                .all(|p| p["status"] == "400" && p["title"].is_string())
        );
    }
}
