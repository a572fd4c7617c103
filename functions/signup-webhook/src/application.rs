//! `POST /onboarding/application`: a Unit individual application from KYC fields the frontend
//! sends. `jwtSubject` comes from the verified JWT, never from the body; the SSN is never logged
//! or stored by us (it is a `SecretString` from parsing to sending).

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use shared::domain::UserId;
use shared::error::FieldProblem;
use shared::secrets::SecretString;
use shared::unit::{Address, CreateIndividualApplication, FullName, Phone, UnitError};
use shared::{ApiError, App};

use shared::onboarding::{OnboardingState, record_application};
use shared::store;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NameIn {
    #[serde(default)]
    first: String,
    #[serde(default)]
    last: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AddressIn {
    #[serde(default)]
    street: String,
    #[serde(default)]
    street2: Option<String>,
    #[serde(default)]
    city: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    postal_code: String,
    #[serde(default)]
    country: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PhoneIn {
    #[serde(default)]
    country_code: String,
    #[serde(default)]
    number: String,
}

/// The request body (snake_case, like the rest of our API).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ApplicationIn {
    full_name: Option<NameIn>,
    date_of_birth: Option<String>,
    address: Option<AddressIn>,
    email: Option<String>,
    phone: Option<PhoneIn>,
    ssn: Option<SecretString>,
    passport: Option<SecretString>,
    nationality: Option<String>,
    occupation: Option<String>,
    annual_income: Option<String>,
    source_of_income: Option<String>,
}

const ANNUAL_INCOME: &[&str] = &[
    "UpTo10k",
    "Between10kAnd25k",
    "Between25kAnd50k",
    "Between50kAnd100k",
    "Between100kAnd250k",
    "Over250k",
];
const SOURCE_OF_INCOME: &[&str] = &[
    "EmploymentOrPayrollIncome",
    "PartTimeOrContractorIncome",
    "InheritancesAndGifts",
    "PersonalInvestments",
    "BusinessOwnershipInterests",
    "GovernmentBenefits",
];

fn digits(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

/// The problems found so far, by field; the values are never echoed.
#[derive(Default)]
struct Problems(Vec<FieldProblem>);

impl Problems {
    fn add(&mut self, field: &str, text: &str) {
        self.0.push(FieldProblem::new(field, text));
    }
}

/// Validates every field, collecting all problems; the values are never echoed.
fn validate(
    mut body: ApplicationIn,
    email_fallback: Option<String>,
) -> Result<CreateIndividualApplication, Vec<FieldProblem>> {
    let mut problems = Problems::default();
    let full_name = check_name(body.full_name.take().unwrap_or_default(), &mut problems);
    let date_of_birth = body.date_of_birth.take().unwrap_or_default();
    check_date_of_birth(&date_of_birth, &mut problems);
    let address = check_address(body.address.take().unwrap_or_default(), &mut problems);
    let email = body.email.take().or(email_fallback).unwrap_or_default();
    if !(email.contains('@') && email.len() <= 255 && !email.contains(char::is_whitespace)) {
        problems.add("email", "is required and must be an e-mail address");
    }
    let phone = check_phone(body.phone.take().unwrap_or_default(), &mut problems);
    check_identity(&body, &mut problems);
    if !problems.0.is_empty() {
        return Err(problems.0);
    }
    Ok(CreateIndividualApplication {
        full_name,
        date_of_birth,
        address,
        email,
        phone,
        ssn: body.ssn,
        passport: body.passport,
        nationality: body.nationality,
        occupation: body.occupation,
        annual_income: body.annual_income,
        source_of_income: body.source_of_income,
        ..Default::default()
    })
}

/// First and last name: each 1 to 255 characters, trimmed.
fn check_name(name: NameIn, problems: &mut Problems) -> FullName {
    for (field, value) in [
        ("full_name.first", &name.first),
        ("full_name.last", &name.last),
    ] {
        if value.trim().is_empty() || value.len() > 255 {
            problems.add(field, "is required (1 to 255 characters)");
        }
    }
    FullName {
        first: name.first.trim().to_owned(),
        last: name.last.trim().to_owned(),
    }
}

/// A past date (YYYY-MM-DD) of a living adult.
fn check_date_of_birth(dob: &str, problems: &mut Problems) {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    match time::Date::parse(dob, format) {
        Err(_) => problems.add("date_of_birth", "must be a date YYYY-MM-DD"),
        Ok(date) => {
            let today = time::OffsetDateTime::now_utc().date();
            if date >= today || today.year() - date.year() > 130 {
                problems.add("date_of_birth", "must be a past date of a living person");
            } else if today.year() - date.year() < 18 {
                problems.add("date_of_birth", "the applicant must be at least 18");
            }
        }
    }
}

/// A US address: street, city, a two-letter state and a ZIP code.
fn check_address(address: AddressIn, problems: &mut Problems) -> Address {
    for (field, value) in [
        ("address.street", &address.street),
        ("address.city", &address.city),
    ] {
        if value.trim().is_empty() {
            problems.add(field, "is required");
        }
    }
    if !(address.state.len() == 2 && address.state.chars().all(|c| c.is_ascii_uppercase())) {
        problems.add("address.state", "must be a two-letter US state code");
    }
    let zip = &address.postal_code;
    let zip_ok = (zip.len() == 5 && digits(zip))
        || (zip.len() == 10 && digits(&zip[..5]) && &zip[5..6] == "-" && digits(&zip[6..]));
    if !zip_ok {
        problems.add(
            "address.postal_code",
            "must be a US ZIP code (12345 or 12345-6789)",
        );
    }
    let country = address.country.unwrap_or_else(|| "US".into());
    if country != "US" {
        problems.add(
            "address.country",
            "must be US (Unit opens accounts for US addresses)",
        );
    }
    Address {
        street: address.street.trim().to_owned(),
        street2: address.street2.filter(|s| !s.trim().is_empty()),
        city: address.city.trim().to_owned(),
        state: address.state,
        postal_code: address.postal_code,
        country,
    }
}

/// A phone: a 1-3 digit country code and a 4-15 digit number.
fn check_phone(phone: PhoneIn, problems: &mut Problems) -> Phone {
    if !(digits(&phone.country_code) && phone.country_code.len() <= 3) {
        problems.add("phone.country_code", "must be 1 to 3 digits");
    }
    if !(digits(&phone.number) && (4..=15).contains(&phone.number.len())) {
        problems.add("phone.number", "must be 4 to 15 digits");
    }
    Phone {
        country_code: phone.country_code,
        number: phone.number,
    }
}

/// An SSN, or a passport with its nationality; a non-US applicant also states income.
fn check_identity(body: &ApplicationIn, problems: &mut Problems) {
    match (&body.ssn, &body.passport) {
        (Some(_), Some(_)) => problems.add("ssn", "send either ssn or passport, not both"),
        (Some(ssn), None) if !(ssn.expose().len() == 9 && digits(ssn.expose())) => {
            problems.add("ssn", "must be 9 digits");
        }
        (None, Some(passport)) => {
            if passport.expose().trim().is_empty() {
                problems.add("passport", "must not be empty");
            }
            if !body
                .nationality
                .as_deref()
                .is_some_and(|n| n.len() == 2 && n.chars().all(|c| c.is_ascii_uppercase()))
            {
                problems.add(
                    "nationality",
                    "is required with a passport (ISO 3166 alpha-2, e.g. GB)",
                );
            }
        }
        (None, None) => problems.add("ssn", "is required (or passport and nationality)"),
        _ => {}
    }
    let foreign = body.passport.is_some();
    for (field, value, allowed) in [
        ("annual_income", &body.annual_income, ANNUAL_INCOME),
        ("source_of_income", &body.source_of_income, SOURCE_OF_INCOME),
    ] {
        match value {
            Some(v) if !allowed.contains(&v.as_str()) => {
                problems.add(field, &format!("must be one of {}", allowed.join(", ")));
            }
            None if foreign => problems.add(field, "is required for non-US applicants"),
            _ => {}
        }
    }
}

/// The idempotency key of one application attempt: the same request retried maps to the same
/// key (Unit replays the original); a corrected request is a new attempt. It is an HMAC keyed
/// with a secret of ours, not a plain hash: the document holds the SSN, and a plain digest of
/// it (with the name and birth date) could be searched through the 10^9 SSNs by anyone who saw
/// the key.
fn attempt_key(user_id: &str, application: &CreateIndividualApplication, key: &[u8]) -> String {
    let canonical = serde_json::to_vec(application).unwrap_or_default();
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key),
        &canonical,
    );
    let hex: String = tag.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("stytch-unit-bridge-app-{user_id}-{hex}")
}

/// Maps Unit's `/data/attributes/address/postalCode` to our `address.postal_code`.
fn our_field(pointer: &str) -> String {
    let path = pointer
        .trim_start_matches("/data/attributes/")
        .replace('/', ".");
    let mut out = String::new();
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `POST /onboarding/application`.
pub async fn create(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let session = app.authenticate(req).await?;
    let user_id = session.user_id;
    let body: ApplicationIn = shared::http::required_json_body(req, "an application")?;
    let record = app.store.get_user(&user_id).await?;
    if let Some(r) = &record
        && let Some(answer) = may_apply(r)?
    {
        return Ok(answer);
    }
    let deadline = shared::http::deadline(req);
    // The e-mail defaults to the verified one Stytch has (asked only when the body has none).
    let email = match (&body.email, record.and_then(|r| r.email)) {
        (Some(_), _) => None,
        (None, Some(stored)) => Some(stored),
        (None, None) => shared::onboarding::stytch_user(&app.stytch, &user_id, deadline)
            .await
            .as_ref()
            .and_then(shared::onboarding::verified_email),
    };
    let mut application = validate(body, email).map_err(ApiError::invalid_fields)?;
    application.jwt_subject = user_id.to_string();
    application
        .tags
        .insert(shared::onboarding::USER_TAG.into(), user_id.to_string());
    let secrets = app.secrets.current().await?;
    application.idempotency_key = attempt_key(
        &user_id,
        &application,
        secrets.unit_api_token.expose().as_bytes(),
    );
    let now = shared::http::now_epoch();
    let slots = take_slots(app, &user_id, now).await?;
    // The submission is claimed before Unit is asked: a retry arriving while Unit works on this
    // one answers `application_pending` instead of racing it.
    let submitted = store::timestamp();
    let mut claimed = false;
    let stored = store::modify(&*app.store, &user_id, true, |r| {
        claimed = !shared::onboarding::submission_in_flight(r, now);
        if claimed {
            r.application_submitted_at = Some(submitted.clone());
        }
        claimed
    })
    .await?
    .ok_or_else(ApiError::internal)?;
    if !claimed {
        slots.give_back().await;
        return Ok(pending(&stored));
    }
    let submission = Submission {
        user_id: &user_id,
        slots,
        submitted: &submitted,
    };
    submit(app, &application, submission, &stored, deadline).await
}

/// Whether the user may apply now: `Ok(None)` if so, an answer (202 pending) or a refusal if
/// not (a deleted account, an archived customer, an application open or in flight).
fn may_apply(r: &shared::store::UserRecord) -> Result<Option<Response<Body>>, ApiError> {
    if r.deleted {
        return Err(ApiError::account_deleted(StatusCode::GONE));
    }
    // An archived customer's user does not open another account through us.
    if r.customer_archived_at.is_some() {
        return Err(ApiError::customer_archived());
    }
    // A bank customer (an operator may have linked one that came from no application) has
    // what an application would give; an open application is in progress.
    let open =
        r.application_id.is_some() && !r.application_status.as_ref().is_some_and(|s| s.is_closed());
    if r.customer_id.is_some() || open {
        return Err(ApiError::application_exists());
    }
    // Our create of a moment ago may still run at Unit: this one would race it.
    if shared::onboarding::submission_in_flight(r, shared::http::now_epoch()) {
        return Ok(Some(pending(r)));
    }
    Ok(None)
}

/// Takes the user's application slot and one of the day's, held until the application is made.
/// Each application is a KYC check: a denied user does not get to loop through SSNs.
async fn take_slots(app: &App, user_id: &str, now: i64) -> Result<store::Slots, ApiError> {
    let limit_key = format!("applications:{user_id}");
    if let Some(retry_after) = store::take_slot(
        &*app.store,
        &limit_key,
        app.config.onboarding.applications_per_user,
        now,
    )
    .await?
    {
        tracing::warn!("applications limited for this user");
        return Err(ApiError::too_many_applications(retry_after));
    }
    let mut slots = store::Slots::new(app.store.clone());
    slots.hold_attempt(limit_key);
    if let Some(retry_after) = shared::onboarding::take_daily_slot(app, now, &mut slots).await? {
        slots.give_back().await;
        return Err(ApiError::applications_paused(retry_after));
    }
    Ok(slots)
}

/// One claimed submission: whose, its slots, and its mark on the record.
struct Submission<'a> {
    user_id: &'a UserId,
    slots: store::Slots,
    submitted: &'a str,
}

/// Sends the claimed application to Unit and records what Unit answered.
async fn submit(
    app: &App,
    application: &CreateIndividualApplication,
    submission: Submission<'_>,
    stored: &shared::store::UserRecord,
    deadline: tokio::time::Instant,
) -> Result<Response<Body>, ApiError> {
    let result = app
        .unit
        .create_individual_application(
            application,
            app.config.upstream.application_create_timeout,
            deadline,
        )
        .await;
    let Submission {
        user_id,
        slots,
        submitted,
    } = submission;
    let created = match result {
        Ok(created) => {
            slots.keep();
            created
        }
        // No answer in time: Unit may still be running the KYC (it documents up to 120 s). The
        // attempt keeps its slots, and its outcome comes by webhook or by tag (GET /onboarding).
        Err(e @ UnitError::Transport(_)) => {
            slots.keep();
            tracing::warn!(error = %e, "Unit did not answer the application in time; pending until its webhook or GET /onboarding finds it");
            return Ok(pending(stored));
        }
        Err(e) => {
            // Each attempt Unit may have checked counts (SECURITY.md, "Identity refusals tell
            // nothing"); only a request Unit surely did not act on (its 5xx or 429, or one
            // never sent) gives its slots back.
            if e.surely_not_acted_on() {
                slots.give_back().await;
            } else {
                slots.keep();
            }
            // The user may correct and apply again; a failure here only delays that by the
            // submission window.
            if let Err(e) =
                shared::onboarding::forget_submission(&*app.store, user_id, submitted).await
            {
                tracing::warn!(error = %e, "could not clear the submission mark; it lapses by itself");
            }
            return Err(shared::error::application_failure(e, our_field));
        }
    };
    tracing::info!(application_id = %created.id, status = %created.attributes.status, "created the Unit application");
    let record = record_application(app, user_id, &created, deadline)
        .await?
        .ok_or_else(ApiError::internal)?;
    Ok(shared::error::json(
        StatusCode::CREATED,
        &OnboardingState::of(&record),
    ))
}

/// 202 with the user's state (`application_pending`): the application was sent and its outcome
/// is not known yet.
fn pending(record: &shared::store::UserRecord) -> Response<Body> {
    shared::error::json(StatusCode::ACCEPTED, &OnboardingState::of(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bank_customer_or_an_open_application_may_not_apply_again() {
        let user = "user-test-1".parse().unwrap();
        let mut linked = shared::store::UserRecord::new(user);
        linked.link_customer(&"10000".parse().unwrap(), None);
        let code = |r| may_apply(r).err().map(|e| e.code);
        assert_eq!(
            code(&linked),
            Some(shared::error::ErrorCode::ApplicationExists)
        );
        let mut denied = shared::store::UserRecord::new("user-test-2".parse().unwrap());
        denied.apply_application(
            &"60".parse().unwrap(),
            &shared::domain::ApplicationStatus::Denied,
            None,
        );
        assert!(
            may_apply(&denied).unwrap().is_none(),
            "a denied user may apply again"
        );
    }

    fn valid() -> serde_json::Value {
        serde_json::json!({
            "full_name": {"first": "Peter", "last": "Parker"}, "date_of_birth": "2001-08-10",
            "address": {"street": "20 Ingram St", "city": "Forest Hills", "state": "NY", "postal_code": "11375"},
            "email": "peter@example.com", "phone": {"country_code": "1", "number": "5555555555"}, "ssn": "721074426"
        })
    }

    fn check(v: serde_json::Value) -> Result<CreateIndividualApplication, Vec<String>> {
        let body: ApplicationIn = serde_json::from_value(v).unwrap();
        validate(body, None).map_err(|p| p.into_iter().map(|f| f.field).collect())
    }

    #[test]
    fn a_valid_application_maps_to_unit_attributes() {
        let a = check(valid()).unwrap();
        assert_eq!(a.address.country, "US");
        assert_eq!(a.ssn.unwrap().expose(), "721074426");
    }

    #[test]
    fn every_invalid_field_is_named() {
        let mut v = valid();
        v["ssn"] = "12-34".into();
        v["address"]["postal_code"] = "ABC".into();
        v["address"]["state"] = "New York".into();
        v["date_of_birth"] = "2030-01-01".into();
        v["phone"]["number"] = "".into();
        let fields = check(v).unwrap_err();
        for f in [
            "ssn",
            "address.postal_code",
            "address.state",
            "date_of_birth",
            "phone.number",
        ] {
            assert!(fields.contains(&f.to_string()), "{f} in {fields:?}");
        }
        let mut foreign = valid();
        foreign.as_object_mut().unwrap().remove("ssn");
        foreign["passport"] = "123456789".into();
        let fields = check(foreign).unwrap_err();
        assert!(
            fields.contains(&"nationality".to_string())
                && fields.contains(&"annual_income".to_string())
        );
        assert!(
            serde_json::from_value::<ApplicationIn>(
                serde_json::json!({"jwt_subject": "user-test-evil"})
            )
            .is_err(),
            "unknown fields (jwt_subject among them) are refused"
        );
    }

    #[test]
    fn a_retried_request_keeps_its_key_and_a_corrected_one_gets_a_new_one() {
        let a = check(valid()).unwrap();
        let mut b = valid();
        b["address"]["street"] = "21 Ingram St".into();
        let b = check(b).unwrap();
        assert_eq!(
            attempt_key("u", &a, b"k"),
            attempt_key("u", &check(valid()).unwrap(), b"k")
        );
        assert_ne!(attempt_key("u", &a, b"k"), attempt_key("u", &b, b"k"));
        assert_ne!(
            attempt_key("u", &a, b"k"),
            attempt_key("u", &a, b"other"),
            "keyed: nobody without the secret can test SSNs against it"
        );
        assert_eq!(
            our_field("/data/attributes/address/postalCode"),
            "address.postal_code"
        );
    }
}
