//! Applications: `POST /applications` (individual and business, validated as Unit's spec and docs
//! say), `GET /applications[/{id}]`, the approval policy and the sandbox's decisions.

use super::*;

pub(super) const APPLICATION_ATTRIBUTES: &[&str] = &[
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

pub(super) const OCCUPATIONS: &[&str] = &[
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
pub(super) fn validate_application(a: &Map<String, Value>) -> Vec<Value> {
    let mut problems = Vec::new();
    for k in a
        .keys()
        .filter(|k| !APPLICATION_ATTRIBUTES.contains(&k.as_str()))
    {
        problems.push(invalid(&format!("unknown attribute {k}"), &pointer(k)));
    }
    check_name_and_birth(a, &mut problems);
    match a.get("address").and_then(Value::as_object) {
        None => problems.push(invalid("address is required", &pointer("address"))),
        Some(addr) => check_address(addr, &mut problems),
    }
    check_contact(a, &mut problems);
    check_identity(a, &mut problems);
    check_optional(a, &mut problems);
    problems
}

/// The JSON pointer of application attribute `k` (a path below the attributes).
fn pointer(k: &str) -> String {
    format!("/data/attributes/{k}")
}

/// `fullName.first` and `.last` (1-255 characters each) and a past `dateOfBirth`.
fn check_name_and_birth(a: &Map<String, Value>, problems: &mut Vec<Value>) {
    let name = a.get("fullName").and_then(Value::as_object);
    for part in ["first", "last"] {
        let ok = name
            .and_then(|n| n.get(part))
            .and_then(Value::as_str)
            .is_some_and(|v| (1..=255).contains(&v.len()));
        if !ok {
            problems.push(invalid(
                &format!("fullName.{part} is required (1-255 characters)"),
                &pointer(&format!("fullName/{part}")),
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
            &pointer("dateOfBirth"),
        ));
    }
}

/// A US address: street, city, a 2-letter state, a ZIP or ZIP+4, and `US` if a country is given.
pub(super) fn check_address(addr: &Map<String, Value>, problems: &mut Vec<Value>) {
    let s = |k: &str| addr.get(k).and_then(Value::as_str).unwrap_or("");
    for k in ["street", "city"] {
        if s(k).is_empty() {
            problems.push(invalid(
                &format!("address.{k} is required"),
                &pointer(&format!("address/{k}")),
            ));
        }
    }
    if !(s("state").len() == 2 && s("state").chars().all(|c| c.is_ascii_uppercase())) {
        problems.push(invalid(
            "address.state must be a 2-letter US state",
            &pointer("address/state"),
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
            &pointer("address/postalCode"),
        ));
    }
    if !matches!(
        addr.get("country").and_then(Value::as_str),
        None | Some("US")
    ) {
        problems.push(invalid(
            "address.country must be US",
            &pointer("address/country"),
        ));
    }
}

/// An e-mail address and a phone `{countryCode, number}` of digits.
fn check_contact(a: &Map<String, Value>, problems: &mut Vec<Value>) {
    if !a
        .get("email")
        .and_then(Value::as_str)
        .is_some_and(|e| e.contains('@') && e.len() <= 255)
    {
        problems.push(invalid(
            "email is required and must be an e-mail address",
            &pointer("email"),
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
            &pointer("phone"),
        ));
    }
}

/// An SSN (9 digits, or the last 4), or else a passport with its nationality.
fn check_identity(a: &Map<String, Value>, problems: &mut Vec<Value>) {
    let ssn = a.get("ssn").and_then(Value::as_str);
    let passport = a.get("passport").and_then(Value::as_str);
    match (ssn, passport) {
        (Some(s), _)
            if !((s.len() == 9 || s.len() == 4) && s.chars().all(|c| c.is_ascii_digit())) =>
        {
            problems.push(invalid(
                "ssn must be 9 digits (or the last 4)",
                &pointer("ssn"),
            ));
        }
        (None, Some(_))
            if a.get("nationality")
                .and_then(Value::as_str)
                .is_none_or(|n| n.len() != 2) =>
        {
            problems.push(invalid(
                "nationality (ISO 3166 alpha-2) is required with a passport",
                &pointer("nationality"),
            ));
        }
        (None, None) => problems.push(invalid(
            "one of ssn and passport is required",
            &pointer("ssn"),
        )),
        _ => {}
    }
}

/// The optional attributes' shapes: a known `occupation`, an `idempotencyKey` of 1-255
/// characters, a string (or `null`) `jwtSubject`.
fn check_optional(a: &Map<String, Value>, problems: &mut Vec<Value>) {
    if let Some(o) = a.get("occupation").and_then(Value::as_str)
        && !OCCUPATIONS.contains(&o)
    {
        problems.push(invalid(
            "occupation is not a known value",
            &pointer("occupation"),
        ));
    }
    if let Some(k) = a.get("idempotencyKey")
        && !k.as_str().is_some_and(|k| (1..=255).contains(&k.len()))
    {
        problems.push(invalid(
            "idempotencyKey must be 1-255 characters",
            &pointer("idempotencyKey"),
        ));
    }
    if let Some(j) = a.get("jwtSubject")
        && !(j.is_null() || j.is_string())
    {
        problems.push(invalid(
            "jwtSubject must be a string",
            &pointer("jwtSubject"),
        ));
    }
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

pub(super) async fn create_application(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Reply {
    u.org(&headers)?;
    let (attributes, _) = data_of(&bytes, &[INDIVIDUAL, BUSINESS])?;
    let kind = if bytes_type_is_business(&bytes) {
        BUSINESS
    } else {
        INDIVIDUAL
    };
    let (id, _) = u.create_application(kind, attributes, None)?;
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

/// Whether a request document (already read by `data_of`) is a `businessApplication`.
fn bytes_type_is_business(bytes: &Bytes) -> bool {
    serde_json::from_slice::<Value>(bytes)
        .is_ok_and(|v| v["data"]["type"].as_str() == Some(BUSINESS))
}

pub(super) async fn get_application(
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

/// `GET /applications`, newest first, with the spec's `filter[tags]` (a JSON object, as the
/// Node SDK writes it: an application matches when it carries every pair) and `page[limit]`
/// (at most 100).
pub(super) async fn list_applications(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Reply {
    u.org(&headers)?;
    let tags: Map<String, Value> = match query.get("filter[tags]") {
        None => Map::new(),
        Some(text) => serde_json::from_str(text).map_err(|_| {
            errors(
                StatusCode::BAD_REQUEST,
                vec![invalid(
                    "filter[tags] must be a JSON object",
                    "/filter/tags",
                )],
            )
        })?,
    };
    let limit = query
        .get("page[limit]")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(100)
        .min(100);
    let data = u.data();
    let matching: Vec<(&u64, &Application)> = data
        .applications
        .iter()
        .rev()
        .filter(|(_, a)| {
            tags.iter()
                .all(|(k, v)| a.attributes.get("tags").and_then(|t| t.get(k)) == Some(v))
        })
        .collect();
    let total = matching.len();
    let list: Vec<Value> = matching
        .into_iter()
        .take(limit)
        .map(|(id, a)| u.application_json(*id, a))
        .collect();
    Ok(doc(
        StatusCode::OK,
        json!({"data": list, "meta": {"pagination": {"total": total, "limit": limit, "offset": 0}}}),
    ))
}

/// `POST /sandbox/applications/{id}/approve` `{"data": {"type": "applicationApprove",
/// "attributes": {"reason": "..."}}}`: Unit's sandbox simulation approving an application that
/// is waiting (`PendingReview`, `AwaitingDocuments`, `Pending`); answers the application.
pub(super) async fn sandbox_approve(
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

pub(super) async fn decide(
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

pub(super) async fn set_policy(State(u): State<Arc<Unit>>, Json(body): Json<Value>) -> Reply {
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
