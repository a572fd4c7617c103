//! Business applications and customers (docs/unit-api.md §13): a `businessApplication` is judged
//! by the spec's `CreateBusinessApplication` (through the gate, and here again for forms, which
//! the gate does not see) and by the sandbox's own rules; approved, it makes a `businessCustomer`
//! whose `contact` (with its `jwtSubject`) is the application's.
//!
//! Readings (§13, OQ12 and OQ16):
//! - `stateOfIncorporation` must be a US state or territory: the create takes any two characters,
//!   but the answer holds it to the spec's `State`;
//! - a beneficial owner's `percentage`, if given, is 25 to 100 (the answer's bounds; an owner
//!   holds 25% or more by Unit's own definition);
//! - the officer and each owner need an `ssn`, a `passport` with its `nationality`, or a
//!   `matriculaConsular`, and a past `dateOfBirth`; the business `address` is a US one, as an
//!   individual's;
//! - their SSNs go through the duplicate rule of individuals (one SSN twice within one
//!   application, an officer who also owns, is not a duplicate); Unit's reserved test SSNs
//!   `000000001`-`000000006` never are;
//! - test SSNs: officer `000000005` awaits documents, officer or any owner `000000004` goes to
//!   review; nothing else forces an outcome (denial comes from the approval policy).

use std::sync::OnceLock;

use crate::unit_spec::Schema;

use super::*;

/// The attributes of the spec's `CreateBusinessApplication`.
pub(super) const BUSINESS_ATTRIBUTES: &[&str] = &[
    "name",
    "dba",
    "ein",
    "entityType",
    "dateOfIncorporation",
    "stateOfIncorporation",
    "purpose",
    "phone",
    "address",
    "contact",
    "officer",
    "ip",
    "website",
    "beneficialOwners",
    "tags",
    "idempotencyKey",
    "deviceFingerprints",
    "industry",
    "annualRevenue",
    "numberOfEmployees",
    "cashFlow",
    "yearOfIncorporation",
    "countriesOfOperation",
    "stockSymbol",
    "businessVertical",
    "operatingAddress",
];

/// What a business customer inherits from its application (the spec's `BusinessCustomer`).
const CUSTOMER_ATTRIBUTES: &[&str] = &[
    "name",
    "dba",
    "ein",
    "entityType",
    "dateOfIncorporation",
    "stateOfIncorporation",
    "purpose",
    "phone",
    "address",
    "contact",
    "tags",
];

fn schema(cell: &'static OnceLock<Schema>, reference: &str) -> &'static Schema {
    cell.get_or_init(|| {
        Schema::load(reference).unwrap_or_else(|e| panic!("Unit's OpenAPI spec: {e}"))
    })
}

fn create_schema() -> &'static Schema {
    static CELL: OnceLock<Schema> = OnceLock::new();
    schema(
        &CELL,
        "schemas/application/createApplication.json#/components/schemas/CreateBusinessApplication",
    )
}

fn state_schema() -> &'static Schema {
    static CELL: OnceLock<Schema> = OnceLock::new();
    schema(&CELL, "schemas/types.json#/components/schemas/State")
}

/// Validates a business application's attributes: the spec's `CreateBusinessApplication`, then
/// the sandbox's readings (module docs). Every problem is reported at once.
pub(super) fn validate_business(a: &Map<String, Value>) -> Vec<Value> {
    let document = json!({"type": BUSINESS, "attributes": a});
    if let Err(problems) = create_schema().check(&document) {
        return problems
            .iter()
            .map(|p| invalid(&p.detail, &format!("/data{}", p.pointer)))
            .collect();
    }
    let mut problems = Vec::new();
    let state = a.get("stateOfIncorporation").unwrap_or(&Value::Null);
    if state_schema().check(state).is_err() {
        problems.push(invalid(
            "stateOfIncorporation must be a US state or territory",
            "/data/attributes/stateOfIncorporation",
        ));
    }
    if let Some(address) = a.get("address").and_then(Value::as_object) {
        check_address(address, &mut problems);
    }
    if let Some(officer) = a.get("officer").and_then(Value::as_object) {
        check_person(officer, "/data/attributes/officer", &mut problems);
    }
    for (i, owner) in people(a, "beneficialOwners").enumerate() {
        let at = format!("/data/attributes/beneficialOwners/{i}");
        check_person(owner, &at, &mut problems);
        if owner
            .get("percentage")
            .and_then(Value::as_i64)
            .is_some_and(|p| p < 25)
        {
            problems.push(invalid(
                "a beneficial owner's percentage is 25 to 100",
                &format!("{at}/percentage"),
            ));
        }
    }
    problems
}

/// The objects of array attribute `k` (the beneficial owners).
fn people<'a>(a: &'a Map<String, Value>, k: &str) -> impl Iterator<Item = &'a Map<String, Value>> {
    a.get(k)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

/// An officer or owner at `at`: an identity document, and a past date of birth.
fn check_person(p: &Map<String, Value>, at: &str, problems: &mut Vec<Value>) {
    let has = |k: &str| {
        p.get(k)
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty())
    };
    if !(has("ssn") || (has("passport") && has("nationality")) || has("matriculaConsular")) {
        problems.push(invalid(
            "one of ssn, passport (with nationality) and matriculaConsular is required",
            &format!("{at}/ssn"),
        ));
    }
    let past = p
        .get("dateOfBirth")
        .and_then(Value::as_str)
        .and_then(|d| {
            time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]")).ok()
        })
        .is_some_and(|d| d < now().date());
    if !past {
        problems.push(invalid(
            "dateOfBirth must be a past date",
            &format!("{at}/dateOfBirth"),
        ));
    }
}

/// The officer's and the owners' SSNs, each with its pointer.
pub(super) fn business_ssns(a: &Map<String, Value>) -> Vec<(String, String)> {
    let officer = a
        .get("officer")
        .and_then(Value::as_object)
        .and_then(|o| string_field(o, "ssn"))
        .map(|s| (s, "/data/attributes/officer/ssn".to_owned()));
    let owners = people(a, "beneficialOwners")
        .enumerate()
        .filter_map(|(i, o)| {
            string_field(o, "ssn")
                .map(|s| (s, format!("/data/attributes/beneficialOwners/{i}/ssn")))
        });
    officer.into_iter().chain(owners).collect()
}

/// Unit's reserved sandbox SSNs, which every sandbox user shares.
pub(super) fn is_reserved_test_ssn(ssn: &str) -> bool {
    matches!(
        ssn,
        "000000001" | "000000002" | "000000003" | "000000004" | "000000005" | "000000006"
    )
}

impl Policy {
    /// Unit's sandbox test SSNs for businesses (docs/unit-api.md §13): officer `000000005`
    /// awaits documents; officer or any beneficial owner `000000004` goes to manual review.
    pub(super) fn of_business_test_ssns(a: &Map<String, Value>) -> Option<Self> {
        let officer = a
            .get("officer")
            .and_then(|o| o.get("ssn"))
            .and_then(Value::as_str);
        match officer {
            Some("000000005") => Some(Self::Documents),
            Some("000000004") => Some(Self::Review),
            _ => people(a, "beneficialOwners")
                .any(|o| o.get("ssn").and_then(Value::as_str) == Some("000000004"))
                .then_some(Self::Review),
        }
    }
}

/// A business application as the spec's `BusinessApplication`: no key or fingerprints, the
/// officer's and owners' identity numbers masked, each with a `status` following the
/// application's (`Approved`, `Denied`, else `PendingReview`).
pub(super) fn business_application_json(id: u64, a: &Application, relationships: Value) -> Value {
    let mut attributes = a.attributes.clone();
    attributes.remove("idempotencyKey");
    attributes.remove("deviceFingerprints");
    let status = match a.status.as_str() {
        "Approved" => "Approved",
        "Denied" => "Denied",
        _ => "PendingReview",
    };
    if let Some(Value::Object(officer)) = attributes.get_mut("officer") {
        present_person(officer, status);
    }
    if let Some(Value::Array(owners)) = attributes.get_mut("beneficialOwners") {
        for owner in owners.iter_mut().filter_map(Value::as_object_mut) {
            present_person(owner, status);
        }
    }
    attributes.insert("status".into(), json!(a.status));
    attributes.insert("message".into(), json!(a.status));
    attributes.entry("archived").or_insert(json!(false));
    json!({"type": BUSINESS, "id": id.to_string(), "attributes": attributes, "relationships": relationships})
}

/// An officer or owner as answered: identity numbers masked, a status, no evaluation flags.
fn present_person(p: &mut Map<String, Value>, status: &str) {
    p.remove("EvaluationParams");
    for (k, masked_k) in [
        ("ssn", "maskedSSN"),
        ("passport", "maskedPassport"),
        ("matriculaConsular", "maskedMatriculaConsular"),
    ] {
        if let Some(v) = p.remove(k) {
            p.insert(masked_k.into(), json!(masked(v.as_str().unwrap_or(""))));
        }
    }
    p.insert("status".into(), json!(status));
    p.insert("evaluationFlags".into(), json!([]));
}

/// A new business customer's attributes, from its approved application: the business's details
/// and its `contact` (whose `jwtSubject` binds the customer), no authorized users yet, `Active`.
pub(super) fn business_customer_attributes(a: &Application) -> Map<String, Value> {
    let mut attributes: Map<String, Value> = CUSTOMER_ATTRIBUTES
        .iter()
        .filter_map(|k| Some(((*k).to_owned(), a.attributes.get(*k)?.clone())))
        .collect();
    attributes.insert("createdAt".into(), json!(rfc3339_ms(now())));
    attributes.insert("status".into(), json!("Active"));
    attributes.insert("authorizedUsers".into(), json!([]));
    attributes
}

/// A random nine-digit number outside Unit's reserved test SSNs.
fn nine_digits() -> String {
    let n = u64::from_str_radix(&random_hex(4), 16).unwrap_or(721_074_426) % 900_000_000;
    format!("{:09}", 100_000_000 + n)
}

/// A ready-made business (officer included, no beneficial owners), for completing business forms
/// from a test or the walkthrough; its EIN and the officer's SSN are fresh each time.
pub fn sample_business() -> Map<String, Value> {
    let address = json!({"street": "5230 Newell Rd", "city": "Palo Alto", "state": "CA",
                         "postalCode": "94303", "country": "US"});
    let phone = json!({"countryCode": "1", "number": "5555555555"});
    let v = json!({
        "name": "Pied Piper", "ein": nine_digits(), "entityType": "Corporation",
        "stateOfIncorporation": "DE", "dateOfIncorporation": "2014-04-06",
        "phone": phone, "address": address,
        "contact": {"fullName": {"first": "Richard", "last": "Hendricks"},
                    "email": "richard@piedpiper.com", "phone": phone},
        "officer": {"fullName": {"first": "Richard", "last": "Hendricks"},
                    "email": "richard@piedpiper.com", "phone": phone, "address": address,
                    "dateOfBirth": "1990-03-05", "ssn": nine_digits(), "title": "CEO",
                    "occupation": "ExecutiveOrManager"},
        "beneficialOwners": [],
    });
    v.as_object().cloned().unwrap_or_default()
}

/// A business applicant from a form: the sample business, the prefill's business fields, then
/// `overrides` (the hosted page's `ssn` is the officer's, its `email` the contact's). The
/// contact's `jwtSubject` is the prefill contact's, else the prefill's own `jwtSubject` (§13,
/// OQ13), unless the sandbox plays a Unit that copies no subject (`copy_subject` false).
pub(super) fn business_form_attributes(
    prefill: Map<String, Value>,
    mut overrides: Map<String, Value>,
    copy_subject: bool,
) -> Map<String, Value> {
    let subject = prefill
        .get("contact")
        .and_then(|c| c.get("jwtSubject"))
        .filter(|s| s.is_string())
        .or_else(|| prefill.get("jwtSubject").filter(|s| s.is_string()))
        .cloned();
    let mut a = sample_business();
    for (k, v) in prefill
        .into_iter()
        .filter(|(k, _)| BUSINESS_ATTRIBUTES.contains(&k.as_str()))
    {
        a.insert(k, v);
    }
    for (field, person) in [("ssn", "officer"), ("email", "contact")] {
        if let (Some(v), Some(Value::Object(p))) = (overrides.remove(field), a.get_mut(person)) {
            p.insert(field.into(), v);
        }
    }
    a.extend(overrides);
    if let Some(Value::Object(contact)) = a.get_mut("contact") {
        contact.remove("jwtSubject");
        if let Some(s) = subject.filter(|_| copy_subject) {
            contact.insert("jwtSubject".into(), s);
        }
    }
    a
}
