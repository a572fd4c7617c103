//! Application forms: `POST`/`GET /application-forms[/{id}]` (V2, and V1 as Unit's spec describes it), the
//! hosted form page and its submission. A form completes into an individual application, or into
//! a business application when the applicant (or the prefill's `applicationType`, or a form
//! that allows business types only) chooses a business (docs/unit-api.md §13).

use super::*;

pub(super) const FORM_V1_ATTRIBUTES: &[&str] = &[
    "tags",
    "applicantDetails",
    "settingsOverride",
    "requireIdVerification",
    "allowedApplicationTypes",
    "lang",
    "hideApplicationProgressTracker",
];
pub(super) const FORM_V2_ATTRIBUTES: &[&str] = &[
    "idempotencyKey",
    "jwtSubject",
    "applicantDetails",
    "tags",
    "allowedApplicationTypes",
    "settingsOverride",
    "requestedProducts",
];

pub(super) async fn create_form(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Reply {
    u.org(&headers)?;
    let v2 = headers
        .get("x-accept-version")
        .and_then(|v| v.to_str().ok())
        == Some("V2024_06");
    let (attributes, _) = data_of(&bytes, &["applicationForm"])?;
    let key = string_field(&attributes, "idempotencyKey");
    check_form_attributes(&attributes, v2, key.as_deref())?;
    let details = attributes
        .get("applicantDetails")
        .and_then(Value::as_object);
    // The customer's subject is the prefill's, in V1 and V2 alike; V2's top-level `jwtSubject`
    // only names who may open the embedded form with their own JWT (docs/unit-api.md §3). A
    // business prefill may also carry one on its contact (§13, read at completion).
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
        application_kind: INDIVIDUAL,
        token: random_hex(16),
        created_at: now(),
        idempotency_key: key,
    };
    let body = json!({"data": u.form_json(id, &form)});
    data.forms.insert(id, form);
    Ok(doc(StatusCode::CREATED, body))
}

/// Checks a form request's attributes against its version's list (V2 also needs an
/// `idempotencyKey` of 1-255 characters): every problem in one 400.
fn check_form_attributes(
    attributes: &Map<String, Value>,
    v2: bool,
    key: Option<&str>,
) -> Result<(), Response> {
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
    if v2 && key.is_none_or(|k| k.is_empty() || k.len() > 255) {
        problems.push(invalid(
            "idempotencyKey is required (1-255 characters)",
            "/data/attributes/idempotencyKey",
        ));
    }
    if !problems.is_empty() {
        return Err(errors(StatusCode::BAD_REQUEST, problems));
    }
    Ok(())
}

pub(super) async fn get_form(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
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

/// Completes a form as the applicant would: prefill, then `overrides`, then the sample applicant
/// (or business); `overrides["applicationType"]` chooses the type where the form allows several.
pub(super) fn complete(u: &Unit, form_id: u64, mut overrides: Map<String, Value>) -> Reply {
    let (prefill, jwt_subject, tags, done, copy_subject, kind) = {
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
            chosen_kind(&f.attributes, &mut overrides)?,
        )
    };
    if let Some(existing) = done {
        return application_answer(u, &u.data(), existing, StatusCode::OK);
    }
    let mut attributes = if kind == BUSINESS {
        business_form_attributes(prefill, overrides, copy_subject)
    } else {
        individual_form_attributes(prefill, overrides, jwt_subject.filter(|_| copy_subject))
    };
    if let Some(t) = tags {
        attributes.insert("tags".into(), t);
    }
    attributes.insert("idempotencyKey".into(), json!(format!("form-{form_id}")));
    let (id, _) = u.create_application(kind, attributes, Some(form_id))?;
    let mut data = u.data();
    if let Some(f) = data.forms.get_mut(&form_id) {
        f.application_id = Some(id);
        f.application_kind = kind;
    }
    application_answer(u, &data, id, StatusCode::CREATED)
}

/// An individual applicant from a form: the sample applicant, the prefill's applicant fields,
/// then `overrides`; `jwt_subject` (the prefill's, unless the sandbox plays a Unit that does not
/// copy it) is the application's.
fn individual_form_attributes(
    prefill: Map<String, Value>,
    overrides: Map<String, Value>,
    jwt_subject: Option<String>,
) -> Map<String, Value> {
    let mut attributes = sample_applicant();
    for (k, v) in prefill
        .into_iter()
        .filter(|(k, _)| APPLICATION_ATTRIBUTES.contains(&k.as_str()) && k != "jwtSubject")
    {
        attributes.insert(k, v);
    }
    attributes.extend(overrides);
    if let Some(s) = jwt_subject {
        attributes.insert("jwtSubject".into(), json!(s));
    }
    attributes
}

/// Whether an application type of a form is a business's (the V2 types included).
pub(super) fn is_business_type(t: &str) -> bool {
    matches!(
        t,
        "Business" | "SingleMemberBusiness" | "MultipleMemberBusiness"
    )
}

/// The form's `allowedApplicationTypes` (empty: any).
fn allowed_types(form: &Map<String, Value>) -> Vec<&str> {
    form.get("allowedApplicationTypes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// Whether a form, before it completes, is for a business: its prefill's `applicationType`, or
/// every type it allows, is a business's.
pub(super) fn form_is_business(form: &Map<String, Value>) -> bool {
    let prefilled = form
        .get("applicantDetails")
        .and_then(|d| d.get("applicationType"))
        .and_then(Value::as_str);
    let allowed = allowed_types(form);
    match prefilled {
        Some(t) => is_business_type(t),
        None => !allowed.is_empty() && allowed.iter().all(|t| is_business_type(t)),
    }
}

/// The application a completed form makes: the applicant's choice (`applicationType` of the
/// overrides, taken out of them), else as `form_is_business` reads the form. A choice the form
/// does not allow is a 400.
fn chosen_kind(
    form: &Map<String, Value>,
    overrides: &mut Map<String, Value>,
) -> Result<&'static str, Response> {
    let Some(chosen) = overrides.remove("applicationType") else {
        return Ok(if form_is_business(form) {
            BUSINESS
        } else {
            INDIVIDUAL
        });
    };
    let chosen = chosen.as_str().unwrap_or_default();
    let business = is_business_type(chosen);
    let allowed = allowed_types(form);
    if chosen.is_empty()
        || !(allowed.is_empty() || allowed.iter().any(|t| is_business_type(t) == business))
    {
        return Err(errors(
            StatusCode::BAD_REQUEST,
            vec![invalid(
                "applicationType is not one of the form's allowedApplicationTypes",
                "/applicationType",
            )],
        ));
    }
    Ok(if business { BUSINESS } else { INDIVIDUAL })
}

/// Application `id` as a JSON:API document with `status`.
fn application_answer(u: &Unit, data: &Data, id: u64, status: StatusCode) -> Reply {
    let a = data
        .applications
        .get(&id)
        .ok_or_else(|| not_found("application", &id.to_string()))?;
    Ok(doc(status, json!({"data": u.application_json(id, a)})))
}

pub(super) async fn complete_form(
    State(u): State<Arc<Unit>>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Reply {
    let overrides = serde_json::from_slice::<Map<String, Value>>(&bytes).unwrap_or_default();
    let n = parse_id(&id).ok_or_else(|| not_found("applicationForm", &id))?;
    complete(&u, n, overrides)
}

pub(super) fn form_by_token(u: &Unit, token: &str) -> Option<u64> {
    u.data()
        .forms
        .iter()
        .find(|(_, f)| f.token == token)
        .map(|(id, _)| *id)
}

/// The hosted form page a user opens from the link.
pub(super) async fn form_page(State(u): State<Arc<Unit>>, Path(token): Path<String>) -> Response {
    let Some(id) = form_by_token(&u, &token) else {
        return (
            StatusCode::NOT_FOUND,
            Html("<h1>This application link has expired.</h1>"),
        )
            .into_response();
    };
    // The prefill's e-mail, if any (only addresses Stytch verified are prefilled); the
    // applicant types it otherwise, as on Unit's form.
    let email: String = u
        .data()
        .forms
        .get(&id)
        .and_then(|f| {
            let details = f.attributes.get("applicantDetails")?;
            details
                .get("email")
                .or_else(|| details.get("contact")?.get("email"))?
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_default()
        .chars()
        .filter(|c| !matches!(c, '<' | '>' | '"' | '&' | '\''))
        .collect();
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>Unit sandbox application</title></head>\
         <body><h1>Open your account (Unit sandbox)</h1><p>Application form {id}. The sandbox fills in a sample \
         applicant; submit to apply.</p><form method=post><label>E-mail <input id=email name=email type=email value=\"{email}\">\
         </label> <label>SSN <input name=ssn value=\"\" placeholder=\"9 digits (optional)\">\
         </label> <button type=submit id=submit>Submit application</button></form></body></html>"
    ))
    .into_response()
}

pub(super) async fn form_submit(
    State(u): State<Arc<Unit>>,
    Path(token): Path<String>,
    axum::Form(fields): axum::Form<HashMap<String, String>>,
) -> Response {
    let Some(id) = form_by_token(&u, &token) else {
        return (
            StatusCode::NOT_FOUND,
            Html("<h1>This application link has expired.</h1>"),
        )
            .into_response();
    };
    let mut overrides = Map::new();
    for name in ["ssn", "email"] {
        if let Some(v) = fields.get(name).filter(|v| !v.is_empty()) {
            overrides.insert(name.into(), json!(v));
        }
    }
    match complete(&u, id, overrides) {
        Ok(_) => Html("<h1 id=done>Application submitted.</h1><p>You can close this page.</p>")
            .into_response(),
        Err(e) => e,
    }
}
