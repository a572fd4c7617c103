//! Unit sandbox: the onboarding and customer-token surface of `docs/unit-api.md`, in JSON:API, with
//! signed webhooks.
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
//! - `application.approved` is sent before `customer.created` (OQ7).

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

use super::webhooks::Sender;
use super::{Controls, Running, now, random_hex};

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

struct Application {
    attributes: Map<String, Value>,
    ssn: Option<String>,
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
    token: String,
    created_at: OffsetDateTime,
    idempotency_key: Option<String>,
}

struct Customer {
    /// `individualCustomer`, or `businessCustomer` (seeded by tests only).
    kind: &'static str,
    attributes: Map<String, Value>,
    application_id: Option<u64>,
}

struct Grant {
    customer_id: u64,
    scopes: Vec<String>,
    expires_at: OffsetDateTime,
}

struct Data {
    next_id: u64,
    applications: BTreeMap<u64, Application>,
    forms: BTreeMap<u64, Form>,
    customers: BTreeMap<u64, Customer>,
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

const APPLICATION_ATTRIBUTES: &[&str] = &[
    "fullName",
    "dateOfBirth",
    "address",
    "email",
    "phone",
    "ssn",
    "passport",
    "nationality",
    "ip",
    "tags",
    "idempotencyKey",
    "jwtSubject",
    "occupation",
    "annualIncome",
    "sourceOfIncome",
    "deviceFingerprints",
    "evaluationParams",
    "powerOfAttorneyAgent",
    "industry",
    "requestedProducts",
    "operatingAddress",
];

const OCCUPATIONS: &[&str] = &[
    "ArchitectOrEngineer",
    "BusinessAnalystAccountantOrFinancialAdvisor",
    "CommunityAndSocialServicesWorker",
    "ConstructionMechanicOrMaintenanceWorker",
    "Doctor",
    "Educator",
    "EntertainmentSportsArtsOrMedia",
    "ExecutiveOrManager",
    "FarmerFishermanForester",
    "FoodServiceWorker",
    "GigWorker",
    "HospitalityOfficeOrAdministrativeSupportWorker",
    "HouseholdManager",
    "JanitorHousekeeperLandscaper",
    "Lawyer",
    "ManufacturingOrProductionWorker",
    "MilitaryOrPublicSafety",
    "NurseHealthcareTechnicianOrHealthcareSupport",
    "PersonalCareOrServiceWorker",
    "PilotDriverOperator",
    "SalesRepresentativeBrokerAgent",
    "ScientistOrTechnologist",
    "Student",
];

/// Validates an individual application's attributes like Unit: every problem reported at once.
fn validate_application(a: &Map<String, Value>) -> Vec<Value> {
    let mut problems = Vec::new();
    let p = |k: &str| format!("/data/attributes/{k}");
    for k in a
        .keys()
        .filter(|k| !APPLICATION_ATTRIBUTES.contains(&k.as_str()))
    {
        problems.push(invalid(&format!("unknown attribute {k}"), &p(k)));
    }
    let name = a.get("fullName").and_then(Value::as_object);
    for part in ["first", "last"] {
        let ok = name
            .and_then(|n| n.get(part))
            .and_then(Value::as_str)
            .is_some_and(|v| (1..=255).contains(&v.len()));
        if !ok {
            problems.push(invalid(
                &format!("fullName.{part} is required (1-255 characters)"),
                &p(&format!("fullName/{part}")),
            ));
        }
    }
    let dob_ok = a
        .get("dateOfBirth")
        .and_then(Value::as_str)
        .is_some_and(|d| {
            time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]"))
                .is_ok_and(|date| date < now().date())
        });
    if !dob_ok {
        problems.push(invalid(
            "dateOfBirth must be a past date YYYY-MM-DD",
            &p("dateOfBirth"),
        ));
    }
    match a.get("address").and_then(Value::as_object) {
        None => problems.push(invalid("address is required", &p("address"))),
        Some(addr) => {
            let s = |k: &str| addr.get(k).and_then(Value::as_str).unwrap_or("");
            for k in ["street", "city"] {
                if s(k).is_empty() {
                    problems.push(invalid(
                        &format!("address.{k} is required"),
                        &p(&format!("address/{k}")),
                    ));
                }
            }
            if !(s("state").len() == 2 && s("state").chars().all(|c| c.is_ascii_uppercase())) {
                problems.push(invalid(
                    "address.state must be a 2-letter US state",
                    &p("address/state"),
                ));
            }
            let zip = s("postalCode");
            let zip_ok = (zip.len() == 5 && zip.chars().all(|c| c.is_ascii_digit()))
                || (zip.len() == 10
                    && zip.as_bytes()[5] == b'-'
                    && zip.chars().filter(|c| c.is_ascii_digit()).count() == 9);
            if !zip_ok {
                problems.push(invalid(
                    "address.postalCode must match ^[0-9]{5}(?:-[0-9]{4})?$",
                    &p("address/postalCode"),
                ));
            }
            if !matches!(
                addr.get("country").and_then(Value::as_str),
                None | Some("US")
            ) {
                problems.push(invalid("address.country must be US", &p("address/country")));
            }
        }
    }
    if !a
        .get("email")
        .and_then(Value::as_str)
        .is_some_and(|e| e.contains('@') && e.len() <= 255)
    {
        problems.push(invalid(
            "email is required and must be an e-mail address",
            &p("email"),
        ));
    }
    let phone = a.get("phone").and_then(Value::as_object);
    let digits = |k: &str| {
        phone
            .and_then(|ph| ph.get(k))
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()))
    };
    if !(digits("countryCode") && digits("number")) {
        problems.push(invalid(
            "phone {countryCode, number} is required, digits only",
            &p("phone"),
        ));
    }
    let ssn = a.get("ssn").and_then(Value::as_str);
    let passport = a.get("passport").and_then(Value::as_str);
    match (ssn, passport) {
        (Some(s), _)
            if !((s.len() == 9 || s.len() == 4) && s.chars().all(|c| c.is_ascii_digit())) =>
        {
            problems.push(invalid("ssn must be 9 digits (or the last 4)", &p("ssn")));
        }
        (None, Some(_))
            if a.get("nationality")
                .and_then(Value::as_str)
                .is_none_or(|n| n.len() != 2) =>
        {
            problems.push(invalid(
                "nationality (ISO 3166 alpha-2) is required with a passport",
                &p("nationality"),
            ));
        }
        (None, None) => problems.push(invalid("one of ssn and passport is required", &p("ssn"))),
        _ => {}
    }
    if let Some(o) = a.get("occupation").and_then(Value::as_str)
        && !OCCUPATIONS.contains(&o)
    {
        problems.push(invalid("occupation is not a known value", &p("occupation")));
    }
    if let Some(k) = a.get("idempotencyKey")
        && !k.as_str().is_some_and(|k| (1..=255).contains(&k.len()))
    {
        problems.push(invalid(
            "idempotencyKey must be 1-255 characters",
            &p("idempotencyKey"),
        ));
    }
    if let Some(j) = a.get("jwtSubject")
        && !(j.is_null() || j.is_string())
    {
        problems.push(invalid("jwtSubject must be a string", &p("jwtSubject")));
    }
    problems
}

/// A ready-made applicant, for completing forms from a test or the walkthrough.
pub fn sample_applicant() -> Map<String, Value> {
    let v = json!({
        "fullName": {"first": "Peter", "last": "Parker"},
        "dateOfBirth": "2001-08-10",
        "address": {"street": "20 Ingram St", "city": "Forest Hills", "state": "NY", "postalCode": "11375", "country": "US"},
        "email": "peter@oscorp.com",
        "phone": {"countryCode": "1", "number": "5555555555"},
        "ssn": format!("{:09}", u64::from_str_radix(&random_hex(4), 16).unwrap_or(721074426) % 1_000_000_000),
        "occupation": "ArchitectOrEngineer",
    });
    v.as_object().cloned().unwrap_or_default()
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

    /// Adds a business customer (the sandbox onboards only individuals; tests of code that
    /// must refuse businesses need one). Returns its id.
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
            Err(error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "the bearer token is missing, invalid or expired",
            ))
        }
    }

    fn application_json(&self, id: u64, a: &Application) -> Value {
        let mut attributes = a.attributes.clone();
        attributes.remove("idempotencyKey");
        if let Some(ssn) = attributes.remove("ssn").as_ref().and_then(Value::as_str) {
            attributes.insert(
                "maskedSSN".into(),
                json!(format!("*****{}", &ssn[ssn.len().saturating_sub(4)..])),
            );
        }
        if let Some(passport) = attributes.remove("passport") {
            let p = passport.as_str().unwrap_or("");
            attributes.insert(
                "maskedPassport".into(),
                json!(format!("*****{}", &p[p.len().saturating_sub(4)..])),
            );
        }
        attributes.insert("status".into(), json!(a.status));
        attributes.insert("message".into(), json!(a.status));
        attributes.entry("archived").or_insert(json!(false));
        let mut relationships =
            json!({"org": {"data": {"type": "org", "id": "1"}}, "documents": {"data": []}});
        if let Some(c) = a.customer_id {
            relationships["customer"] =
                json!({"data": {"type": "individualCustomer", "id": c.to_string()}});
        }
        if let Some(f) = a.form_id {
            relationships["applicationForm"] =
                json!({"data": {"type": "applicationForm", "id": f.to_string()}});
        }
        json!({"type": "individualApplication", "id": id.to_string(), "attributes": attributes, "relationships": relationships})
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
                json!({"data": {"type": "individualApplication", "id": a.to_string()}});
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
        let stage = if f.application_id.is_some() {
            "IndividualApplicationCreated"
        } else {
            "EnterIndividualInformation"
        };
        let mut attributes = f.attributes.clone();
        attributes.insert("url".into(), json!(href));
        attributes.insert("stage".into(), json!(stage));
        attributes.insert("createdAt".into(), json!(rfc3339_ms(f.created_at)));
        json!({"type": "applicationForm", "id": id.to_string(), "attributes": attributes, "relationships": relationships})
    }

    /// Creates an application (after validation) and applies the approval policy. Returns its id
    /// and whether it replayed an idempotency key.
    fn create_application(
        &self,
        mut attributes: Map<String, Value>,
        form_id: Option<u64>,
    ) -> Result<(u64, bool), Response> {
        let problems = validate_application(&attributes);
        if !problems.is_empty() {
            return Err(errors(StatusCode::BAD_REQUEST, problems));
        }
        let key = string_field(&attributes, "idempotencyKey");
        let ssn = string_field(&attributes, "ssn");
        let mut events = Vec::new();
        let id = {
            let mut data = self.data();
            if let Some(k) = &key
                && let Some((id, _)) = data
                    .applications
                    .iter()
                    .find(|(_, a)| a.idempotency_key.as_ref() == Some(k))
            {
                return Ok((*id, true));
            }
            let test_ssn = Policy::of_test_ssn(ssn.as_deref());
            // Test SSNs are shared by every sandbox user, so they are never duplicates.
            if let Some(s) = ssn.as_ref().filter(|s| s.len() == 9 && test_ssn.is_none())
                && data.applications.values().any(|a| {
                    a.ssn.as_ref() == Some(s) && !matches!(a.status.as_str(), "Denied" | "Canceled")
                })
            {
                return Err(errors(
                    StatusCode::BAD_REQUEST,
                    vec![e(
                        StatusCode::BAD_REQUEST,
                        "Duplicate SSN",
                        Some("duplicate_ssn"),
                        "an application with this SSN already exists",
                        Some("/data/attributes/ssn"),
                    )],
                ));
            }
            data.next_id += 1;
            let id = data.next_id;
            let at = rfc3339_ms(now());
            attributes.insert("createdAt".into(), json!(at));
            attributes.insert("updatedAt".into(), json!(at));
            attributes.entry("jwtSubject").or_insert(Value::Null);
            attributes.entry("tags").or_insert(json!({}));
            if let Some(Value::Object(addr)) = attributes.get_mut("address") {
                addr.entry("country").or_insert(json!("US"));
            }
            let policy = test_ssn.unwrap_or(data.policy);
            data.applications.insert(
                id,
                Application {
                    attributes,
                    ssn,
                    status: "Pending".into(),
                    customer_id: None,
                    form_id,
                    idempotency_key: key,
                },
            );
            match policy {
                Policy::Approve => self.decide_locked(&mut data, id, "approve", &mut events),
                Policy::Deny => self.decide_locked(&mut data, id, "deny", &mut events),
                Policy::Review => self.set_status(
                    &mut data,
                    id,
                    "PendingReview",
                    "application.pendingReview",
                    &mut events,
                ),
                Policy::Documents => self.set_status(
                    &mut data,
                    id,
                    "AwaitingDocuments",
                    "application.awaitingDocuments",
                    &mut events,
                ),
                Policy::Pending => {}
            }
            id
        };
        self.send_events(events);
        Ok((id, false))
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
        events.push(self.event(data, event, tags, json!({"application": {"data": {"type": "individualApplication", "id": id.to_string()}}})));
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
            "approve" => {
                let Some(a) = data.applications.get(&id) else {
                    return;
                };
                if a.customer_id.is_some() {
                    return;
                }
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
                if let Some(ssn) = &a.ssn {
                    attributes.insert(
                        "maskedSSN".into(),
                        json!(format!("*****{}", &ssn[ssn.len().saturating_sub(4)..])),
                    );
                }
                attributes.insert("createdAt".into(), json!(rfc3339_ms(now())));
                attributes.insert("status".into(), json!("Active"));
                attributes.insert("authorizedUsers".into(), json!([]));
                let tags = attributes.get("tags").cloned().unwrap_or(json!({}));
                data.next_id += 1;
                let customer_id = data.next_id;
                data.customers.insert(
                    customer_id,
                    Customer {
                        kind: "individualCustomer",
                        attributes,
                        application_id: Some(id),
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
                    "application": {"data": {"type": "individualApplication", "id": id.to_string()}},
                    "customer": {"data": {"type": "individualCustomer", "id": customer_id.to_string()}},
                });
                let approved = self.event(data, "application.approved", tags.clone(), rel.clone());
                let created = self.event(data, "customer.created", tags, rel);
                events.push(approved);
                events.push(created);
            }
            "deny" => self.set_status(data, id, "Denied", "application.denied", events),
            "cancel" => self.set_status(data, id, "Canceled", "application.canceled", events),
            _ => {}
        }
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
            let sign: super::webhooks::Signer = Arc::new(move |_, body| {
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
    /// `exp`, and `sub == jwtSubject`.
    async fn check_jwt(&self, token: &str, jwt_subject: Option<&str>) -> Result<(), String> {
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
        match jwt_subject {
            None => Err("the customer has no jwtSubject".into()),
            Some(s) if data.claims["sub"] == s => Ok(()),
            Some(_) => Err("the JWT subject does not match the customer's jwtSubject".into()),
        }
    }
}

fn parse_id(id: &str) -> Option<u64> {
    if id.starts_with('0') {
        return None;
    }
    id.parse().ok()
}

async fn create_application(State(u): State<Arc<Unit>>, headers: HeaderMap, bytes: Bytes) -> Reply {
    u.org(&headers)?;
    let (attributes, _) = data_of(&bytes, &["individualApplication"])?;
    let (id, _) = u.create_application(attributes, None)?;
    let data = u.data();
    let a = data
        .applications
        .get(&id)
        .ok_or_else(|| not_found("application", &id.to_string()))?;
    Ok(doc(
        StatusCode::CREATED,
        json!({"data": u.application_json(id, a)}),
    ))
}

async fn get_application(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    u.org(&headers)?;
    let data = u.data();
    let a = parse_id(&id)
        .and_then(|n| data.applications.get(&n))
        .ok_or_else(|| not_found("application", &id))?;
    Ok(doc(
        StatusCode::OK,
        json!({"data": u.application_json(id.parse().unwrap_or(0), a)}),
    ))
}

async fn list_applications(State(u): State<Arc<Unit>>, headers: HeaderMap) -> Reply {
    u.org(&headers)?;
    let data = u.data();
    let list: Vec<Value> = data
        .applications
        .iter()
        .rev()
        .take(100)
        .map(|(id, a)| u.application_json(*id, a))
        .collect();
    let total = data.applications.len();
    Ok(doc(
        StatusCode::OK,
        json!({"data": list, "meta": {"pagination": {"total": total, "limit": 100, "offset": 0}}}),
    ))
}

const FORM_V1_ATTRIBUTES: &[&str] = &[
    "tags",
    "applicantDetails",
    "settingsOverride",
    "requireIdVerification",
    "allowedApplicationTypes",
    "lang",
    "hideApplicationProgressTracker",
];
const FORM_V2_ATTRIBUTES: &[&str] = &[
    "idempotencyKey",
    "jwtSubject",
    "applicantDetails",
    "tags",
    "allowedApplicationTypes",
    "settingsOverride",
    "requestedProducts",
];

async fn create_form(State(u): State<Arc<Unit>>, headers: HeaderMap, bytes: Bytes) -> Reply {
    u.org(&headers)?;
    let v2 = headers
        .get("x-accept-version")
        .and_then(|v| v.to_str().ok())
        == Some("V2024_06");
    let (attributes, _) = data_of(&bytes, &["applicationForm"])?;
    let allowed = if v2 {
        FORM_V2_ATTRIBUTES
    } else {
        FORM_V1_ATTRIBUTES
    };
    let mut problems: Vec<Value> = attributes
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| {
            invalid(
                &format!("unknown attribute {k}"),
                &format!("/data/attributes/{k}"),
            )
        })
        .collect();
    let key = string_field(&attributes, "idempotencyKey");
    if v2 && key.as_ref().is_none_or(|k| k.is_empty() || k.len() > 255) {
        problems.push(invalid(
            "idempotencyKey is required (1-255 characters)",
            "/data/attributes/idempotencyKey",
        ));
    }
    if !problems.is_empty() {
        return Err(errors(StatusCode::BAD_REQUEST, problems));
    }
    let details = attributes
        .get("applicantDetails")
        .and_then(Value::as_object);
    // The customer's subject is the prefill's, in V1 and V2 alike; V2's top-level `jwtSubject`
    // only names who may open the embedded form with their own JWT (docs/unit-api.md §3).
    let jwt_subject = details.and_then(|d| string_field(d, "jwtSubject"));
    let mut data = u.data();
    if let Some(k) = &key
        && let Some((id, f)) = data
            .forms
            .iter()
            .find(|(_, f)| f.idempotency_key.as_ref() == Some(k))
    {
        return Ok(doc(
            StatusCode::CREATED,
            json!({"data": u.form_json(*id, f)}),
        ));
    }
    data.next_id += 1;
    let id = data.next_id;
    let form = Form {
        v2,
        attributes,
        jwt_subject,
        application_id: None,
        token: random_hex(16),
        created_at: now(),
        idempotency_key: key,
    };
    let body = json!({"data": u.form_json(id, &form)});
    data.forms.insert(id, form);
    Ok(doc(StatusCode::CREATED, body))
}

async fn get_form(State(u): State<Arc<Unit>>, headers: HeaderMap, Path(id): Path<String>) -> Reply {
    u.org(&headers)?;
    let mut data = u.data();
    let n = parse_id(&id)
        .filter(|n| data.forms.contains_key(n))
        .ok_or_else(|| not_found("applicationForm", &id))?;
    let form = data
        .forms
        .get_mut(&n)
        .ok_or_else(|| not_found("applicationForm", &id))?;
    // A GET answers a fresh link (links last 24 h).
    form.token = random_hex(16);
    form.created_at = now();
    let body = json!({"data": u.form_json(n, form)});
    Ok(doc(StatusCode::OK, body))
}

/// Completes a form as the applicant would: prefill, then `overrides`, then the sample applicant.
fn complete(u: &Unit, form_id: u64, overrides: Map<String, Value>) -> Reply {
    let (prefill, jwt_subject, tags, done, copy_subject) = {
        let data = u.data();
        let f = data
            .forms
            .get(&form_id)
            .ok_or_else(|| not_found("applicationForm", &form_id.to_string()))?;
        let prefill = f
            .attributes
            .get("applicantDetails")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        (
            prefill,
            f.jwt_subject.clone(),
            f.attributes.get("tags").cloned(),
            f.application_id,
            data.copy_prefill_subject,
        )
    };
    if let Some(existing) = done {
        let data = u.data();
        let a = data
            .applications
            .get(&existing)
            .ok_or_else(|| not_found("application", &existing.to_string()))?;
        return Ok(doc(
            StatusCode::OK,
            json!({"data": u.application_json(existing, a)}),
        ));
    }
    let mut attributes = sample_applicant();
    for (k, v) in prefill
        .into_iter()
        .filter(|(k, _)| APPLICATION_ATTRIBUTES.contains(&k.as_str()))
    {
        attributes.insert(k, v);
    }
    if !copy_subject {
        attributes.remove("jwtSubject");
    }
    attributes.extend(overrides);
    if let Some(t) = tags {
        attributes.insert("tags".into(), t);
    }
    if let Some(s) = jwt_subject.filter(|_| copy_subject) {
        attributes.insert("jwtSubject".into(), json!(s));
    }
    attributes.insert("idempotencyKey".into(), json!(format!("form-{form_id}")));
    let (id, _) = u.create_application(attributes, Some(form_id))?;
    let mut data = u.data();
    if let Some(f) = data.forms.get_mut(&form_id) {
        f.application_id = Some(id);
    }
    let a = data
        .applications
        .get(&id)
        .ok_or_else(|| not_found("application", &id.to_string()))?;
    Ok(doc(
        StatusCode::CREATED,
        json!({"data": u.application_json(id, a)}),
    ))
}

async fn complete_form(State(u): State<Arc<Unit>>, Path(id): Path<String>, bytes: Bytes) -> Reply {
    let overrides = serde_json::from_slice::<Map<String, Value>>(&bytes).unwrap_or_default();
    let n = parse_id(&id).ok_or_else(|| not_found("applicationForm", &id))?;
    complete(&u, n, overrides)
}

fn form_by_token(u: &Unit, token: &str) -> Option<u64> {
    u.data()
        .forms
        .iter()
        .find(|(_, f)| f.token == token)
        .map(|(id, _)| *id)
}

/// The hosted form page a user opens from the link.
async fn form_page(State(u): State<Arc<Unit>>, Path(token): Path<String>) -> Response {
    let Some(id) = form_by_token(&u, &token) else {
        return (
            StatusCode::NOT_FOUND,
            Html("<h1>This application link has expired.</h1>"),
        )
            .into_response();
    };
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>Unit sandbox application</title></head>\
         <body><h1>Open your account (Unit sandbox)</h1><p>Application form {id}. The sandbox fills in a sample \
         applicant; submit to apply.</p><form method=post><label>SSN <input name=ssn value=\"\" placeholder=\"9 digits (optional)\">\
         </label> <button type=submit id=submit>Submit application</button></form></body></html>"
    ))
    .into_response()
}

async fn form_submit(
    State(u): State<Arc<Unit>>,
    Path(token): Path<String>,
    bytes: Bytes,
) -> Response {
    let Some(id) = form_by_token(&u, &token) else {
        return (
            StatusCode::NOT_FOUND,
            Html("<h1>This application link has expired.</h1>"),
        )
            .into_response();
    };
    let mut overrides = Map::new();
    for pair in String::from_utf8_lossy(&bytes).split('&') {
        if let Some(("ssn", v)) = pair.split_once('=')
            && !v.is_empty()
        {
            overrides.insert("ssn".into(), json!(v));
        }
    }
    match complete(&u, id, overrides) {
        Ok(_) => Html("<h1 id=done>Application submitted.</h1><p>You can close this page.</p>")
            .into_response(),
        Err(e) => e,
    }
}

/// `POST /sandbox/applications/{id}/approve` `{"data": {"type": "applicationApprove",
/// "attributes": {"reason": "..."}}}`: Unit's sandbox simulation approving an application that
/// is waiting (`PendingReview`, `AwaitingDocuments`, `Pending`); answers the application.
async fn sandbox_approve(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Reply {
    u.org(&headers)?;
    data_of(&bytes, &["applicationApprove"])?;
    u.decide_and_answer(&id, "approve", |status| {
        if matches!(status, "PendingReview" | "AwaitingDocuments" | "Pending") {
            return Ok(());
        }
        Err(errors(
            StatusCode::BAD_REQUEST,
            vec![e(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                Some("invalid_application_status"),
                &format!("the application is {status}, not waiting for a decision"),
                None,
            )],
        ))
    })
}

async fn decide(
    State(u): State<Arc<Unit>>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Reply {
    let decision = body["decision"].as_str().unwrap_or("").to_owned();
    if !matches!(decision.as_str(), "approve" | "deny" | "cancel") {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            "decision must be approve, deny or cancel",
        ));
    }
    u.decide_and_answer(&id, &decision, |_| Ok(()))
}

async fn set_policy(State(u): State<Arc<Unit>>, Json(body): Json<Value>) -> Reply {
    let policy: Policy = serde_json::from_value(body["policy"].clone()).map_err(|_| {
        error(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            "policy must be approve, pending, review, documents or deny",
        )
    })?;
    u.set_policy(policy);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn get_customer(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let n = parse_id(&id);
    if u.org(&headers).is_err() {
        // A customer bearer token reads its own customer only.
        let token = Unit::bearer(&headers).unwrap_or("");
        let data = u.data();
        let grant = data
            .grants
            .get(token)
            .filter(|g| g.expires_at > now())
            .ok_or_else(|| {
                error(
                    StatusCode::UNAUTHORIZED,
                    "Unauthorized",
                    "the bearer token is missing, invalid or expired",
                )
            })?;
        if Some(grant.customer_id) != n
            || !grant
                .scopes
                .iter()
                .any(|s| s == "customers" || s == "customers-write")
        {
            return Err(error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "the token does not grant access to this customer",
            ));
        }
    }
    let data = u.data();
    let c = n
        .and_then(|n| data.customers.get(&n))
        .ok_or_else(|| not_found("customer", &id))?;
    Ok(doc(
        StatusCode::OK,
        json!({"data": Unit::customer_json(n.unwrap_or(0), c)}),
    ))
}

const CUSTOMER_PATCHABLE: &[&str] = &[
    "email",
    "phone",
    "address",
    "dba",
    "tags",
    "authorizedUsers",
    "jwtSubject",
];

async fn patch_customer(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Reply {
    u.org(&headers)?;
    let (attributes, _) = data_of(&bytes, &["individualCustomer"])?;
    let problems: Vec<Value> = attributes
        .iter()
        .filter(|(k, v)| {
            !CUSTOMER_PATCHABLE.contains(&k.as_str())
                || (k.as_str() == "jwtSubject" && !(v.is_string() || v.is_null()))
        })
        .map(|(k, _)| {
            invalid(
                &format!("{k} cannot be updated"),
                &format!("/data/attributes/{k}"),
            )
        })
        .collect();
    if !problems.is_empty() {
        return Err(errors(StatusCode::BAD_REQUEST, problems));
    }
    let mut events = Vec::new();
    let body = {
        let mut data = u.data();
        let n = parse_id(&id)
            .filter(|n| data.customers.contains_key(n))
            .ok_or_else(|| not_found("customer", &id))?;
        let tags = {
            let c = data
                .customers
                .get_mut(&n)
                .ok_or_else(|| not_found("customer", &id))?;
            for (k, v) in attributes {
                c.attributes.insert(k, v);
            }
            c.attributes.get("tags").cloned().unwrap_or(json!({}))
        };
        let event = u.event(
            &mut data,
            "customer.updated",
            tags,
            json!({"customer": {"data": {"type": "individualCustomer", "id": id}}}),
        );
        events.push(event);
        let c = data
            .customers
            .get(&n)
            .ok_or_else(|| not_found("customer", &id))?;
        json!({"data": Unit::customer_json(n, c)})
    };
    u.send_events(events);
    Ok(doc(StatusCode::OK, body))
}

async fn create_token(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Reply {
    u.org(&headers)?;
    let (a, _) = data_of(&bytes, &["customerToken"])?;
    let (customer_id, jwt_subject) = {
        let data = u.data();
        let n = parse_id(&id)
            .filter(|n| data.customers.contains_key(n))
            .ok_or_else(|| not_found("customer", &id))?;
        (
            n,
            data.customers[&n]
                .attributes
                .get("jwtSubject")
                .and_then(Value::as_str)
                .map(str::to_owned),
        )
    };
    let mut problems = Vec::new();
    let scope = string_field(&a, "scope").unwrap_or_default();
    let scopes: Vec<String> = scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() {
        problems.push(invalid("scope is required", "/data/attributes/scope"));
    }
    for s in scopes.iter().filter(|s| !SCOPES.contains(&s.as_str())) {
        problems.push(invalid(
            &format!("unknown scope {s}"),
            "/data/attributes/scope",
        ));
    }
    let expires_in = match a.get("expiresIn") {
        None => 86_400,
        Some(v) => match v.as_i64() {
            Some(n @ 1..=86_400) => n,
            _ => {
                problems.push(invalid(
                    "expiresIn must be between 1 and 86400",
                    "/data/attributes/expiresIn",
                ));
                0
            }
        },
    };
    if let Some(r) = a.get("resources")
        && !r.as_array().is_some_and(|list| {
            !list.is_empty()
                && list.iter().all(|x| {
                    matches!(x["type"].as_str(), Some("card" | "account")) && x["ids"].is_array()
                })
        })
    {
        problems.push(invalid(
            "resources must be a non-empty list of {type: card|account, ids}",
            "/data/attributes/resources",
        ));
    }
    if !problems.is_empty() {
        return Err(errors(StatusCode::BAD_REQUEST, problems));
    }
    let needs_2fa = scopes
        .iter()
        .any(|s| TWO_FACTOR_SCOPES.contains(&s.as_str()));
    if let Some(jwt) = string_field(&a, "jwtToken") {
        u.check_jwt(&jwt, jwt_subject.as_deref())
            .await
            .map_err(|reason| error(StatusCode::UNAUTHORIZED, "Unauthorized", &reason))?;
    } else if needs_2fa {
        let otp_ok = match (
            string_field(&a, "verificationToken"),
            string_field(&a, "verificationCode"),
        ) {
            (Some(t), Some(code)) => {
                code == "000001" && u.data().verifications.get(&t) == Some(&customer_id)
            }
            _ => false,
        };
        if !otp_ok {
            return Err(error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "the requested scopes need two-factor authentication: jwtToken, or verificationToken and verificationCode",
            ));
        }
    }
    let token = format!("v2.public.{}", random_hex(48));
    u.data().grants.insert(
        token.clone(),
        Grant {
            customer_id,
            scopes,
            expires_at: now() + time::Duration::seconds(expires_in),
        },
    );
    Ok(doc(
        StatusCode::CREATED,
        json!({"data": {"type": "customerBearerToken", "attributes": {"token": token, "expiresIn": expires_in}}}),
    ))
}

async fn token_verification(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Reply {
    u.org(&headers)?;
    let (a, _) = data_of(&bytes, &["customerTokenVerification"])?;
    if !matches!(
        a.get("channel").and_then(Value::as_str),
        Some("sms" | "call")
    ) {
        return Err(errors(
            StatusCode::BAD_REQUEST,
            vec![invalid(
                "channel must be sms or call",
                "/data/attributes/channel",
            )],
        ));
    }
    let mut data = u.data();
    let n = parse_id(&id)
        .filter(|n| data.customers.contains_key(n))
        .ok_or_else(|| not_found("customer", &id))?;
    let token = random_hex(16);
    data.verifications.insert(token.clone(), n);
    Ok(doc(
        StatusCode::CREATED,
        json!({"data": {"type": "customerTokenVerification", "attributes": {"verificationToken": token}}}),
    ))
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
        .route("/sandbox/applications/{id}/approve", post(sandbox_approve))
        .route(
            "/customers/{id}/token/verification",
            post(token_verification),
        )
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
