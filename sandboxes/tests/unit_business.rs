//! The Unit sandbox's business banking (docs/unit-api.md §13): business applications (direct and
//! through the white-label form), business customers, authorized users and business customer
//! tokens, each answer held to Unit's OpenAPI spec and each status to the contract.

// Tests may run past the 60 lines asked of other functions (Cargo.toml, workspace lints).
#![allow(clippy::too_many_lines)]

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Sandboxes, archive_customer, assert_on_spec, json_of, now};

const APPLICATIONS: &str = "schemas/application/application.json#/components/schemas";
const RELATIONSHIPS: &str = "schemas/relationships.json#/components/schemas";
const BUSINESS_CUSTOMER: &str =
    "schemas/customer/customer.json#/components/schemas/BusinessCustomer";

/// Holds a business application to the spec's `BusinessApplication`, part by part: the spec's
/// `DocumentsRelationship` puts its `required: ["data"]` beside `documents` instead of inside it,
/// which no relationships object can meet, so the relationships are held one by one.
fn assert_business_application(app: &Value) {
    assert_on_spec(&format!("{APPLICATIONS}/Application"), app);
    assert_eq!(app["type"], "businessApplication");
    assert_on_spec(
        &format!("{APPLICATIONS}/BusinessApplication/allOf/1/properties/attributes"),
        &app["attributes"],
    );
    let keys: Vec<&String> = app.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["attributes", "id", "relationships", "type"]);
    for (k, v) in app["relationships"].as_object().unwrap() {
        let one = json!({ k.as_str(): v });
        match k.as_str() {
            "org" => assert_on_spec(&format!("{RELATIONSHIPS}/OrgRelationship"), &one),
            "customer" => assert_on_spec(&format!("{RELATIONSHIPS}/CustomerRelationship"), &one),
            "beneficialOwners" => assert_on_spec(
                &format!("{RELATIONSHIPS}/BeneficialOwnersRelationship"),
                &one,
            ),
            "documents" => assert_on_spec(
                &format!("{RELATIONSHIPS}/DocumentsRelationship/properties/documents"),
                v,
            ),
            "applicationForm" => assert_on_spec(&format!("{RELATIONSHIPS}/Relationship"), v),
            other => panic!("relationship {other} is not the spec's"),
        }
    }
}

/// A fresh nine-digit SSN outside Unit's reserved test values.
fn fresh_ssn() -> String {
    format!(
        "{:09}",
        100_000_000 + uuid::Uuid::new_v4().as_u128() % 800_000_000
    )
}

fn person(first: &str, email: &str, ssn: &str) -> Value {
    json!({"fullName": {"first": first, "last": "Hendricks"}, "email": email,
           "phone": {"countryCode": "1", "number": "5555550100"},
           "address": {"street": "5230 Newell Rd", "city": "Palo Alto", "state": "CA",
                       "postalCode": "94303", "country": "US"},
           "dateOfBirth": "1990-03-05", "ssn": ssn})
}

/// A business application on Unit's spec: the officer (`officer_ssn`), one beneficial owner, and
/// `contact.jwtSubject` = `subject`.
fn business(officer_ssn: &str, key: &str, subject: &str) -> Value {
    let mut officer = person("Richard", "richard@piedpiper.com", officer_ssn);
    officer["occupation"] = json!("ExecutiveOrManager");
    officer["title"] = json!("CEO");
    let mut owner = person("Erlich", "erlich@piedpiper.com", &fresh_ssn());
    owner["percentage"] = json!(40);
    json!({"data": {"type": "businessApplication", "attributes": {
        "name": "Pied Piper", "ein": "123456789", "entityType": "Corporation",
        "stateOfIncorporation": "DE", "dateOfIncorporation": "2014-04-06",
        "phone": {"countryCode": "1", "number": "5555550100"},
        "address": {"street": "5230 Newell Rd", "city": "Palo Alto", "state": "CA",
                    "postalCode": "94303", "country": "US"},
        "contact": {"fullName": {"first": "Richard", "last": "Hendricks"},
                    "email": "richard@piedpiper.com",
                    "phone": {"countryCode": "1", "number": "5555550100"}, "jwtSubject": subject},
        "officer": officer, "beneficialOwners": [owner],
        "industry": "OtherProfessionalServices", "website": "https://piedpiper.com",
        "tags": {"stytchOrganizationId": "organization-test-1"}, "idempotencyKey": key,
    }}})
}

/// The pointers of a Unit error document.
fn pointers(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors: {body}"))
        .iter()
        .filter_map(|e| e["source"]["pointer"].as_str().map(str::to_owned))
        .collect()
}

async fn create(stack: &Sandboxes, body: &Value) -> (u16, Value) {
    json_of(stack.unit_call(Method::POST, "/applications").json(body)).await
}

/// An approved business application's customer id, its contact's subject `subject`.
async fn business_customer(stack: &Sandboxes, subject: &str) -> String {
    let key = uuid::Uuid::new_v4().to_string();
    let (status, created) = create(stack, &business(&fresh_ssn(), &key, subject)).await;
    assert_eq!(status, 201, "{created}");
    created["data"]["relationships"]["customer"]["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn set_policy(stack: &Sandboxes, policy: &str) {
    let r = stack
        .http
        .put(stack.unit("/_sandbox/approval"))
        .json(&json!({ "policy": policy }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

#[test]
fn the_gate_judges_the_authorized_user_routes_by_the_spec() {
    let gate = sandboxes::unit_spec::Gate::load(sandboxes::unit::GATED).unwrap();
    let ops = gate.operations();
    for op in [
        "POST /customers/{customerId}/authorized-users",
        "DELETE /customers/{customerId}/authorized-users",
    ] {
        assert!(ops.contains(&op.to_owned()), "{op} in {ops:?}");
    }
}

#[tokio::test]
async fn business_applications_are_judged_by_the_spec_and_the_sandboxs_rules() {
    let stack = Sandboxes::start().await;
    let valid = business(&fresh_ssn(), "k-off", "member-test-1");
    // Off the spec: refused by the gate, each fault pointed at.
    let mut off = valid.clone();
    let a = off["data"]["attributes"].as_object_mut().unwrap();
    a["officer"].as_object_mut().unwrap().remove("occupation");
    a.insert("jwtSubject".into(), json!("member-test-1"));
    a.insert("requestedProducts".into(), json!(["Banking"]));
    a["ein"] = json!("12-3456789");
    let (status, body) = create(&stack, &off).await;
    assert_eq!(status, 400, "{body}");
    let found = pointers(&body);
    for p in [
        "/data/attributes/officer/occupation",
        "/data/attributes/jwtSubject",
        "/data/attributes/requestedProducts",
        "/data/attributes/ein",
    ] {
        assert!(found.contains(&p.to_owned()), "{p} in {found:?}");
    }
    // On the spec, off the sandbox's readings (§13): a state that is no US state, an owner
    // below 25%, an officer with no identity document, an officer born in the future.
    let mut odd = valid.clone();
    let a = &mut odd["data"]["attributes"];
    a["stateOfIncorporation"] = json!("ZZ");
    a["beneficialOwners"][0]["percentage"] = json!(10);
    a["officer"].as_object_mut().unwrap().remove("ssn");
    a["officer"]["dateOfBirth"] = json!("2999-01-01");
    let (status, body) = create(&stack, &odd).await;
    assert_eq!(status, 400, "{body}");
    let found = pointers(&body);
    for p in [
        "/data/attributes/stateOfIncorporation",
        "/data/attributes/beneficialOwners/0/percentage",
        "/data/attributes/officer/ssn",
        "/data/attributes/officer/dateOfBirth",
    ] {
        assert!(found.contains(&p.to_owned()), "{p} in {found:?}");
    }
    assert!(
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["status"] == "400")
    );
    // Without a token: 401.
    let (status, _) = json_of(stack.http.post(stack.unit("/applications")).json(&valid)).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn an_approved_business_application_makes_a_business_customer_with_its_contact() {
    let stack = Sandboxes::start().await;
    let officer_ssn = fresh_ssn();
    let body = business(&officer_ssn, "k-biz-1", "member-test-contact");
    let (status, created) = create(&stack, &body).await;
    assert_eq!(status, 201, "{created}");
    let app = &created["data"];
    assert_business_application(app);
    assert_eq!(app["type"], "businessApplication");
    let a = &app["attributes"];
    assert_eq!(a["status"], "Approved");
    assert_eq!(a["contact"]["jwtSubject"], "member-test-contact");
    assert!(a.get("jwtSubject").is_none() && a.get("idempotencyKey").is_none());
    let masked = format!("*****{}", &officer_ssn[5..]);
    assert_eq!(a["officer"]["maskedSSN"], masked.as_str());
    assert!(a["officer"].get("ssn").is_none(), "the SSN is never echoed");
    assert!(a["beneficialOwners"][0].get("ssn").is_none());
    assert_eq!(a["officer"]["status"], "Approved");
    assert_eq!(a["tags"]["stytchOrganizationId"], "organization-test-1");
    let owners = app["relationships"]["beneficialOwners"]["data"]
        .as_array()
        .unwrap();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0]["type"], "beneficialOwner");
    let customer = &app["relationships"]["customer"]["data"];
    assert_eq!(customer["type"], "businessCustomer");
    let customer_id = customer["id"].as_str().unwrap().to_owned();

    // The same key: the original. Another key with the officer's SSN: a duplicate.
    let (status, replay) = create(&stack, &body).await;
    assert_eq!((status, &replay["data"]["id"]), (201, &app["id"]));
    let (status, dup) = create(&stack, &business(&officer_ssn, "k-biz-2", "m")).await;
    assert_eq!(status, 400, "{dup}");
    assert_eq!(dup["errors"][0]["code"], "duplicate_ssn");
    assert_eq!(
        dup["errors"][0]["source"]["pointer"],
        "/data/attributes/officer/ssn"
    );
    // An officer who also owns the business is no duplicate of itself.
    let own_ssn = fresh_ssn();
    let mut owner_officer = business(&own_ssn, "k-biz-3", "m");
    owner_officer["data"]["attributes"]["beneficialOwners"][0]["ssn"] = json!(own_ssn);
    assert_eq!(create(&stack, &owner_officer).await.0, 201);

    let id = app["id"].as_str().unwrap();
    let (status, got) = json_of(stack.unit_call(Method::GET, &format!("/applications/{id}"))).await;
    assert_eq!(status, 200);
    assert_business_application(&got["data"]);
    assert_eq!(got["data"], *app);
    let (status, list) = json_of(stack.unit_call(
        Method::GET,
        "/applications?filter[tags]={\"stytchOrganizationId\":\"organization-test-1\"}",
    ))
    .await;
    assert_eq!(status, 200);
    let listed: Vec<&Value> = list["data"].as_array().unwrap().iter().collect();
    assert_eq!(listed.len(), 2, "{list}");
    for l in listed {
        assert_business_application(l);
    }

    let (status, c) =
        json_of(stack.unit_call(Method::GET, &format!("/customers/{customer_id}"))).await;
    assert_eq!(status, 200);
    let c = &c["data"];
    assert_on_spec(BUSINESS_CUSTOMER, c);
    assert_eq!(c["type"], "businessCustomer");
    let ca = &c["attributes"];
    assert_eq!(ca["status"], "Active");
    assert_eq!(ca["name"], "Pied Piper");
    assert_eq!(ca["ein"], "123456789");
    assert_eq!(ca["entityType"], "Corporation");
    assert_eq!(ca["stateOfIncorporation"], "DE");
    assert_eq!(ca["contact"]["jwtSubject"], "member-test-contact");
    assert_eq!(ca["authorizedUsers"], json!([]));
    assert_eq!(ca["tags"], a["tags"]);
    assert!(
        ca.get("jwtSubject").is_none(),
        "a business has no top-level subject"
    );
    assert_eq!(
        c["relationships"]["application"]["data"],
        json!({"type": "businessApplication", "id": id})
    );

    // application.approved then customer.created, with the business types, signed.
    let unit = &stack.unit;
    stack
        .eventually("the business's webhooks", || {
            unit.webhooks
                .deliveries()
                .iter()
                .filter(|d| d.delivered)
                .count()
                >= 4
        })
        .await;
    let first_two: Vec<Value> = unit.webhooks.deliveries()[..2]
        .iter()
        .map(|d| d.body["data"][0].clone())
        .collect();
    assert_eq!(first_two[0]["type"], "application.approved");
    assert_eq!(first_two[1]["type"], "customer.created");
    for event in &first_two {
        assert_eq!(
            event["relationships"]["application"]["data"],
            json!({"type": "businessApplication", "id": id})
        );
        assert_eq!(
            event["relationships"]["customer"]["data"],
            json!({"type": "businessCustomer", "id": customer_id})
        );
        assert_eq!(event["attributes"]["tags"], a["tags"]);
    }
}

#[tokio::test]
async fn test_ssns_and_the_policy_decide_business_applications() {
    let stack = Sandboxes::start().await;
    let status_of = |v: &Value| {
        v["data"]["attributes"]["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // Officer 000000004: review; any owner 000000004: review; officer 000000005: documents.
    let (_, review) = create(&stack, &business("000000004", "k-t1", "m")).await;
    assert_eq!(status_of(&review), "PendingReview", "{review}");
    assert_business_application(&review["data"]);
    assert_eq!(
        review["data"]["attributes"]["officer"]["status"],
        "PendingReview"
    );
    let mut owned = business(&fresh_ssn(), "k-t2", "m");
    owned["data"]["attributes"]["beneficialOwners"][0]["ssn"] = json!("000000004");
    assert_eq!(status_of(&create(&stack, &owned).await.1), "PendingReview");
    let (_, documents) = create(&stack, &business("000000005", "k-t3", "m")).await;
    assert_eq!(status_of(&documents), "AwaitingDocuments");
    // Test SSNs are never duplicates.
    let (status, again) = create(&stack, &business("000000005", "k-t4", "m")).await;
    assert_eq!(
        (status, status_of(&again).as_str()),
        (201, "AwaitingDocuments")
    );
    assert!(documents["data"]["relationships"].get("customer").is_none());

    // Unit's simulation approves a waiting business application into a business customer.
    let id = documents["data"]["id"].as_str().unwrap();
    let approve = json!({"data": {"type": "applicationApprove", "attributes": {"reason": "test"}}});
    let (status, approved) = json_of(
        stack
            .unit_call(Method::POST, &format!("/sandbox/applications/{id}/approve"))
            .json(&approve),
    )
    .await;
    assert_eq!(status, 200, "{approved}");
    assert_business_application(&approved["data"]);
    assert_eq!(status_of(&approved), "Approved");
    assert_eq!(
        approved["data"]["relationships"]["customer"]["data"]["type"],
        "businessCustomer"
    );

    // The approval policy decides the rest (no SSN denies a business).
    set_policy(&stack, "deny").await;
    let (_, denied) = create(&stack, &business(&fresh_ssn(), "k-t5", "m")).await;
    assert_eq!(status_of(&denied), "Denied");
    assert_eq!(denied["data"]["attributes"]["officer"]["status"], "Denied");
    assert!(denied["data"]["relationships"].get("customer").is_none());
    set_policy(&stack, "pending").await;
    let (_, pending) = create(&stack, &business(&fresh_ssn(), "k-t6", "m")).await;
    assert_eq!(status_of(&pending), "Pending");
    let pid = pending["data"]["id"].as_str().unwrap();
    let (_, decided) = json_of(
        stack
            .http
            .post(stack.unit(&format!("/_sandbox/applications/{pid}/decide")))
            .json(&json!({"decision": "approve"})),
    )
    .await;
    assert_eq!(status_of(&decided), "Approved");
    assert_business_application(&decided["data"]);

    // The events of a waiting business application name it as a business's.
    let unit = &stack.unit;
    stack
        .eventually("the review event", || {
            unit.webhooks
                .deliveries()
                .iter()
                .any(|d| d.event_type == "application.pendingReview")
        })
        .await;
    let review_event = unit
        .webhooks
        .deliveries()
        .into_iter()
        .find(|d| d.event_type == "application.pendingReview")
        .unwrap();
    assert_eq!(
        review_event.body["data"][0]["relationships"]["application"]["data"]["type"],
        "businessApplication"
    );
}

fn v2_form(key: &str, attributes: Value) -> Value {
    let mut attributes = attributes;
    attributes["idempotencyKey"] = json!(key);
    json!({"data": {"type": "applicationForm", "attributes": attributes}})
}

async fn post_form(stack: &Sandboxes, form: &Value) -> (u16, Value) {
    json_of(
        stack
            .unit_call(Method::POST, "/application-forms")
            .header("x-accept-version", "V2024_06")
            .json(form),
    )
    .await
}

async fn complete(stack: &Sandboxes, form_id: &str, overrides: Value) -> (u16, Value) {
    json_of(
        stack
            .http
            .post(stack.unit(&format!("/_sandbox/application-forms/{form_id}/complete")))
            .json(&overrides),
    )
    .await
}

#[tokio::test]
async fn business_forms_complete_into_business_applications_bound_by_the_contact() {
    let stack = Sandboxes::start().await;
    let contact = json!({"fullName": {"first": "Monica", "last": "Hall"}, "email": "monica@piedpiper.com",
                         "phone": {"countryCode": "1", "number": "5555550101"}, "jwtSubject": "member-test-monica"});
    let (status, form) = post_form(
        &stack,
        &v2_form(
            "form-org-1",
            json!({"jwtSubject": "member-test-monica", "allowedApplicationTypes": ["Business"],
                   "tags": {"stytchOrganizationId": "organization-test-2"},
                   "applicantDetails": {"applicationType": "Business", "name": "Raviga", "ein": "987654321",
                                        "entityType": "LLC", "stateOfIncorporation": "CA",
                                        "jwtSubject": "member-test-monica", "contact": contact}}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{form}");
    let form_id = form["data"]["id"].as_str().unwrap().to_owned();
    let (status, app) = complete(&stack, &form_id, json!({})).await;
    assert_eq!(status, 201, "{app}");
    assert_business_application(&app["data"]);
    let a = &app["data"]["attributes"];
    assert_eq!(app["data"]["type"], "businessApplication");
    assert_eq!(
        (a["name"].as_str(), a["entityType"].as_str()),
        (Some("Raviga"), Some("LLC"))
    );
    assert_eq!(
        a["contact"], contact,
        "the prefill's contact, subject and all"
    );
    assert_eq!(a["tags"]["stytchOrganizationId"], "organization-test-2");
    assert_eq!(
        app["data"]["relationships"]["applicationForm"]["data"]["id"],
        form_id.as_str()
    );
    let customer = app["data"]["relationships"]["customer"]["data"]["id"]
        .as_str()
        .unwrap();
    let (_, c) = json_of(stack.unit_call(Method::GET, &format!("/customers/{customer}"))).await;
    assert_on_spec(BUSINESS_CUSTOMER, &c["data"]);
    assert_eq!(
        c["data"]["attributes"]["contact"]["jwtSubject"],
        "member-test-monica"
    );
    assert_eq!(
        c["data"]["attributes"]["authorizedUsers"],
        json!([]),
        "OQ13"
    );
    let (_, again) =
        json_of(stack.unit_call(Method::GET, &format!("/application-forms/{form_id}"))).await;
    assert_eq!(
        again["data"]["relationships"]["application"]["data"],
        json!({"type": "businessApplication", "id": app["data"]["id"]})
    );
    // Completing twice answers the same application.
    let (status, twice) = complete(&stack, &form_id, json!({})).await;
    assert_eq!((status, &twice["data"]["id"]), (200, &app["data"]["id"]));

    // A prefill subject without a contact: it lands on the sample contact; the hosted page's SSN
    // is the officer's. A form allowing both types completes as the applicant chooses.
    let (_, both) = post_form(
        &stack,
        &v2_form(
            "form-org-3",
            json!({"allowedApplicationTypes": ["Individual", "Business"],
                   "applicantDetails": {"jwtSubject": "member-test-gilfoyle"}}),
        ),
    )
    .await;
    let both_id = both["data"]["id"].as_str().unwrap();
    let ssn = fresh_ssn();
    let (status, chosen) = complete(
        &stack,
        both_id,
        json!({"applicationType": "Business", "ssn": ssn}),
    )
    .await;
    assert_eq!(status, 201, "{chosen}");
    let a = &chosen["data"]["attributes"];
    assert_eq!(a["contact"]["jwtSubject"], "member-test-gilfoyle");
    assert_eq!(a["officer"]["maskedSSN"], format!("*****{}", &ssn[5..]));

    // Without a choice, a form allowing both stays an individual's, bound by the prefill.
    let (_, either) = post_form(
        &stack,
        &v2_form(
            "form-org-3b",
            json!({"allowedApplicationTypes": ["Individual", "Business"],
                   "applicantDetails": {"jwtSubject": "user-test-peter", "email": "peter@oscorp.com"}}),
        ),
    )
    .await;
    let (status, person) =
        complete(&stack, either["data"]["id"].as_str().unwrap(), json!({})).await;
    assert_eq!(status, 201, "{person}");
    assert_eq!(person["data"]["type"], "individualApplication");
    assert_eq!(
        person["data"]["attributes"]["jwtSubject"],
        "user-test-peter"
    );
    assert_eq!(person["data"]["attributes"]["email"], "peter@oscorp.com");
    assert_eq!(
        person["data"]["relationships"]["customer"]["data"]["type"],
        "individualCustomer"
    );

    // A choice the form does not allow; a Unit that copies no subject.
    let (_, individual_only) = post_form(
        &stack,
        &v2_form(
            "form-org-4",
            json!({"allowedApplicationTypes": ["Individual"], "applicantDetails": {"jwtSubject": "u"}}),
        ),
    )
    .await;
    let only = individual_only["data"]["id"].as_str().unwrap();
    let (status, refused) = complete(&stack, only, json!({"applicationType": "Business"})).await;
    assert_eq!(status, 400, "{refused}");
    stack.unit.set_prefill_subject_copied(false);
    let (_, plain) = post_form(
        &stack,
        &v2_form(
            "form-org-5",
            json!({"allowedApplicationTypes": ["Business"],
                   "applicantDetails": {"jwtSubject": "member-test-dinesh", "contact": contact}}),
        ),
    )
    .await;
    let (_, unbound) = complete(&stack, plain["data"]["id"].as_str().unwrap(), json!({})).await;
    assert_eq!(unbound["data"]["type"], "businessApplication");
    assert!(
        unbound["data"]["attributes"]["contact"]
            .get("jwtSubject")
            .is_none()
    );

    // The gate holds the prefill to the spec: a partial officer is refused.
    let (status, body) = post_form(
        &stack,
        &v2_form(
            "form-org-6",
            json!({"applicantDetails": {"applicationType": "Business", "officer": {"fullName": {"first": "A", "last": "B"}}}}),
        ),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        pointers(&body)
            .iter()
            .any(|p| p.starts_with("/data/attributes/applicantDetails/officer"))
    );

    // V1 (as the spec describes it): a business form's stages.
    let (status, v1) = json_of(stack.unit_call(Method::POST, "/application-forms").json(&json!(
        {"data": {"type": "applicationForm", "attributes": {"allowedApplicationTypes": ["Business"]}}}
    )))
    .await;
    assert_eq!(status, 201, "{v1}");
    assert_eq!(
        v1["data"]["attributes"]["stage"],
        "EnterBusinessInformation"
    );
    stack.unit.set_prefill_subject_copied(true);
    let v1_id = v1["data"]["id"].as_str().unwrap();
    complete(&stack, v1_id, json!({})).await;
    let (_, v1) =
        json_of(stack.unit_call(Method::GET, &format!("/application-forms/{v1_id}"))).await;
    assert_eq!(
        v1["data"]["attributes"]["stage"],
        "BusinessApplicationCreated"
    );
}

fn member(first: &str, email: &str, subject: Option<&str>) -> Value {
    let mut m = json!({"fullName": {"first": first, "last": "Bachman"}, "email": email,
                       "phone": {"countryCode": "1", "number": "5555550102"}});
    if let Some(s) = subject {
        m["jwtSubject"] = json!(s);
    }
    m
}

async fn add_users(stack: &Sandboxes, customer: &str, users: Value) -> (u16, Value) {
    json_of(
        stack
            .unit_call(Method::POST, &format!("/customers/{customer}/authorized-users"))
            .json(&json!({"data": {"type": "addAuthorizedUsers", "attributes": {"authorizedUsers": users}}})),
    )
    .await
}

async fn remove_users(stack: &Sandboxes, customer: &str, emails: Value) -> (u16, Value) {
    json_of(
        stack
            .unit_call(Method::DELETE, &format!("/customers/{customer}/authorized-users"))
            .json(&json!({"data": {"type": "removeAuthorizedUsers", "attributes": {"authorizedUsersEmails": emails}}})),
    )
    .await
}

#[tokio::test]
async fn authorized_users_are_added_updated_and_removed_by_email() {
    let stack = Sandboxes::start().await;
    let customer = business_customer(&stack, "member-test-richard").await;
    let users = |body: &Value| body["data"]["attributes"]["authorizedUsers"].clone();

    let (status, body) = add_users(
        &stack,
        &customer,
        json!([
            member("Erlich", "erlich@piedpiper.com", Some("member-test-erlich")),
            member("Jared", "jared@piedpiper.com", None)
        ]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_on_spec(BUSINESS_CUSTOMER, &body["data"]);
    assert_eq!(body["data"]["id"], customer.as_str(), "the whole customer");
    assert_eq!(
        body["data"]["attributes"]["contact"]["jwtSubject"],
        "member-test-richard"
    );
    assert_eq!(users(&body).as_array().unwrap().len(), 2);

    // The same e-mail (in another case) updates that user in place; others are appended.
    let mut erlich = member(
        "Erlich",
        "Erlich@PiedPiper.com",
        Some("member-test-erlich-2"),
    );
    erlich["phone"]["number"] = json!("5555550199");
    let (status, body) = add_users(
        &stack,
        &customer,
        json!([
            erlich,
            member("Dinesh", "dinesh@piedpiper.com", Some("member-test-dinesh"))
        ]),
    )
    .await;
    assert_eq!(status, 200);
    let list = users(&body);
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
    assert_eq!(list[0]["jwtSubject"], "member-test-erlich-2");
    assert_eq!(list[0]["phone"]["number"], "5555550199");
    assert_eq!(list[2]["email"], "dinesh@piedpiper.com");

    // The reads Unit documents outside its spec give each user an id.
    let (status, found) = json_of(stack.unit_call(
        Method::GET,
        &format!("/customers/{customer}/authorized-users?filter[jwtSubject]=member-test-dinesh"),
    ))
    .await;
    assert_eq!(status, 200, "{found}");
    let found = found["data"].as_array().unwrap().clone();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["type"], "authorizedUserResource");
    assert_eq!(found[0]["attributes"]["email"], "dinesh@piedpiper.com");
    let dinesh_id = found[0]["id"].as_str().unwrap().to_owned();
    let (status, one) = json_of(stack.unit_call(
        Method::GET,
        &format!("/customers/{customer}/authorized-users/{dinesh_id}"),
    ))
    .await;
    assert_eq!((status, &one["data"]), (200, &found[0]));

    // Removal by e-mail; an e-mail that is not there changes nothing.
    let (status, body) = remove_users(&stack, &customer, json!(["nobody@piedpiper.com"])).await;
    assert_eq!((status, users(&body)), (200, list.clone()));
    let (status, body) = remove_users(
        &stack,
        &customer,
        json!(["JARED@piedpiper.com", "dinesh@piedpiper.com"]),
    )
    .await;
    assert_eq!(status, 200);
    assert_on_spec(BUSINESS_CUSTOMER, &body["data"]);
    assert_eq!(users(&body), json!([list[0]]));
    let (status, _) = json_of(stack.unit_call(
        Method::GET,
        &format!("/customers/{customer}/authorized-users/{dinesh_id}"),
    ))
    .await;
    assert_eq!(status, 404, "a removed user's id is gone");
    let (_, body) = remove_users(&stack, &customer, json!(["erlich@piedpiper.com"])).await;
    assert_eq!(users(&body), json!([]));

    // Off the spec (the gate): a field the spec lacks, a user without a phone, a bad e-mail.
    let mut plaid = member("Gavin", "gavin@hooli.com", None);
    plaid["canConnectWithAuthVendor"] = json!(true);
    let mut phoneless = member("Big", "big@hooli.com", None);
    phoneless.as_object_mut().unwrap().remove("phone");
    let (status, body) = add_users(&stack, &customer, json!([plaid, phoneless])).await;
    assert_eq!(status, 400, "{body}");
    let found = pointers(&body);
    for p in [
        "/data/attributes/authorizedUsers/0/canConnectWithAuthVendor",
        "/data/attributes/authorizedUsers/1/phone",
    ] {
        assert!(found.contains(&p.to_owned()), "{p} in {found:?}");
    }
    let (status, _) = remove_users(&stack, &customer, json!(["not an e-mail"])).await;
    assert_eq!(status, 400);
    let (status, body) = json_of(
        stack
            .unit_call(
                Method::POST,
                &format!("/customers/{customer}/authorized-users"),
            )
            .json(&json!({"data": {"type": "addAuthorizedUsers", "attributes": {}}})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(pointers(&body), vec!["/data/attributes/authorizedUsers"]);

    // Unknown customer 404, no org token 401, archived customer 400.
    let one_user = json!([member("Laurie", "laurie@raviga.com", None)]);
    assert_eq!(add_users(&stack, "999999", one_user.clone()).await.0, 404);
    let (status, _) = json_of(
        stack
            .http
            .delete(stack.unit(&format!("/customers/{customer}/authorized-users")))
            .json(&json!({"data": {"type": "removeAuthorizedUsers", "attributes": {"authorizedUsersEmails": []}}})),
    )
    .await;
    assert_eq!(status, 401);
    archive_customer(&stack, &customer).await;
    let (status, body) = add_users(&stack, &customer, one_user).await;
    assert_eq!(status, 400, "{body}");

    // Each change sent customer.updated for the business customer (four changes).
    let unit = &stack.unit;
    stack
        .eventually("customer.updated events", || {
            unit.webhooks
                .deliveries()
                .iter()
                .filter(|d| d.event_type == "customer.updated" && d.delivered)
                .count()
                == 4
        })
        .await;
    let updated = unit
        .webhooks
        .deliveries()
        .into_iter()
        .find(|d| d.event_type == "customer.updated")
        .unwrap();
    assert_eq!(
        updated.body["data"][0]["relationships"]["customer"]["data"],
        json!({"type": "businessCustomer", "id": customer})
    );
}

#[tokio::test]
async fn a_business_token_takes_the_contacts_or_any_authorized_users_jwt() {
    let stack = Sandboxes::start().await;
    let richard = stack.sign_up("richard@piedpiper.com").await;
    let erlich = stack.sign_up("erlich@piedpiper.com").await;
    let gavin = stack.sign_up("gavin@hooli.com").await;
    let customer = business_customer(&stack, &richard.user_id).await;
    let token = |jwt: &str, relationships: Option<Value>| {
        let mut data = json!({"type": "customerToken",
            "attributes": {"scope": "customers cards-write", "jwtToken": jwt, "expiresIn": 600}});
        if let Some(r) = relationships {
            data["relationships"] = r;
        }
        stack
            .unit_call(Method::POST, &format!("/customers/{customer}/token"))
            .json(&json!({ "data": data }))
    };
    let naming = |id: &str| json!({"authorizedUserResource": {"data": {"type": "authorizedUserResource", "id": id}}});

    // The contact's JWT: a token, which reads the business customer.
    let (status, granted) = json_of(token(&richard.session_jwt, None)).await;
    assert_eq!(status, 201, "{granted}");
    assert_eq!(granted["data"]["type"], "customerBearerToken");
    let bearer = granted["data"]["attributes"]["token"].as_str().unwrap();
    let (status, me) = json_of(
        stack
            .http
            .get(stack.unit(&format!("/customers/{customer}")))
            .bearer_auth(bearer),
    )
    .await;
    assert_eq!(
        (status, me["data"]["type"].as_str()),
        (200, Some("businessCustomer"))
    );

    // Not yet an authorized user: 401 as for individuals.
    let (status, body) = json_of(token(&erlich.session_jwt, None)).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["errors"][0]["title"], "Unauthorized");
    add_users(
        &stack,
        &customer,
        json!([
            member("Erlich", "erlich@piedpiper.com", Some(&erlich.user_id)),
            member("Jared", "jared@piedpiper.com", Some("member-test-jared"))
        ]),
    )
    .await;
    assert_eq!(json_of(token(&erlich.session_jwt, None)).await.0, 201);
    let (status, _) = json_of(token(&gavin.session_jwt, None)).await;
    assert_eq!(status, 401, "a stranger's JWT");
    let expired = stack.forge(&erlich.user_id, now() - 400, |_| {});
    assert_eq!(json_of(token(&expired, None)).await.0, 401);

    // authorizedUserResource: the named user must be the JWT's.
    let id_of = |subject: String| {
        let stack = &stack;
        let customer = customer.clone();
        async move {
            let (_, list) = json_of(stack.unit_call(
                Method::GET,
                &format!("/customers/{customer}/authorized-users?filter[jwtSubject]={subject}"),
            ))
            .await;
            list["data"][0]["id"].as_str().unwrap().to_owned()
        }
    };
    let erlich_id = id_of(erlich.user_id.clone()).await;
    let jared_id = id_of("member-test-jared".into()).await;
    let (status, body) = json_of(token(&erlich.session_jwt, Some(naming(&erlich_id)))).await;
    assert_eq!(status, 201, "{body}");
    for (jwt, named) in [
        (&erlich.session_jwt, jared_id.as_str()),
        (&richard.session_jwt, erlich_id.as_str()),
        (&erlich.session_jwt, "999999"),
    ] {
        let (status, body) = json_of(token(jwt, Some(naming(named)))).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(
            body["errors"][0]["source"]["pointer"],
            "/data/relationships/authorizedUserResource"
        );
    }
    let malformed =
        json!({"authorizedUserResource": {"data": {"type": "authorizedUser", "id": erlich_id}}});
    let (status, body) = json_of(token(&erlich.session_jwt, Some(malformed))).await;
    assert_eq!(status, 400, "{body}");

    // Removed, the user's JWT no longer mints.
    remove_users(&stack, &customer, json!(["erlich@piedpiper.com"])).await;
    assert_eq!(json_of(token(&erlich.session_jwt, None)).await.0, 401);
    assert_eq!(json_of(token(&richard.session_jwt, None)).await.0, 201);

    // An individual customer takes no authorizedUserResource.
    let individual = json!({"data": {"type": "individualApplication", "attributes": {
        "ssn": fresh_ssn(), "fullName": {"first": "Peter", "last": "Parker"}, "dateOfBirth": "2001-08-10",
        "address": {"street": "20 Ingram St", "city": "Forest Hills", "state": "NY", "postalCode": "11375", "country": "US"},
        "email": "peter@oscorp.com", "phone": {"countryCode": "1", "number": "5555555555"},
        "jwtSubject": gavin.user_id}}});
    let (status, app) = create(&stack, &individual).await;
    assert_eq!(status, 201, "{app}");
    assert_eq!(
        app["data"]["relationships"]["customer"]["data"]["type"],
        "individualCustomer"
    );
    let person = app["data"]["relationships"]["customer"]["data"]["id"]
        .as_str()
        .unwrap();
    let (status, body) = json_of(
        stack
            .unit_call(Method::POST, &format!("/customers/{person}/token"))
            .json(&json!({"data": {"type": "customerToken",
                "attributes": {"scope": "customers", "jwtToken": gavin.session_jwt},
                "relationships": naming(&erlich_id)}})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}
