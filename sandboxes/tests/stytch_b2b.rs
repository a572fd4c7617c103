//! Contract tests of the Stytch sandbox's B2B surface over HTTP (docs/stytch-api.md §10):
//! organizations and members with roles, bcrypt password migration and login, member sessions
//! and their JWTs against the B2B JWKS, TOTP step-up and recovery codes, the MFA-required
//! intermediate session, and Svix-signed member and organization webhooks.

// Tests may run past the 60 lines asked of other functions (Cargo.toml, workspace lints).
#![allow(clippy::too_many_lines)]

mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use support::{PROJECT_ID, Sandboxes, claims_of, json_of, now, totp};

/// A bcrypt hash of `PASSWORD` made by Python's `bcrypt` (the `bcrypt` crate's own test vector).
const PYTHON_HASH: &str = "$2b$04$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxcie";
/// The same password hashed by Node's `bcrypt`.
const NODE_HASH: &str = "$2a$04$n4Uy0eSnMfvnESYL.bLwuuj0U/ETSsoTpRT9GVk5bektyVVa5xnIi";
const PASSWORD: &str = "correctbatteryhorsestapler";

async fn call(stack: &Sandboxes, method: Method, path: &str, body: Value) -> (u16, Value) {
    json_of(stack.stytch_call(method, path).json(&body)).await
}

async fn post(stack: &Sandboxes, path: &str, body: Value) -> Value {
    let (status, reply) = call(stack, Method::POST, path, body).await;
    assert_eq!(status, 200, "POST {path}: {reply}");
    assert_eq!(reply["status_code"], 200, "{reply}");
    assert!(
        reply["request_id"]
            .as_str()
            .is_some_and(|r| r.starts_with("request-id-test-"))
    );
    reply
}

fn assert_stytch_error(reply: &(u16, Value), status: u16, error_type: &str) {
    let (got, body) = reply;
    assert_eq!(*got, status, "{body}");
    support::assert_stytch_error(body, status, error_type);
}

async fn organization(stack: &Sandboxes, slug: &str, mfa_policy: &str) -> String {
    let reply = post(
        stack,
        "/v1/b2b/organizations",
        json!({"organization_name": format!("{slug} Ltd"), "organization_slug": slug,
               "mfa_policy": mfa_policy}),
    )
    .await;
    reply["organization"]["organization_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A member with a migrated password; its id.
async fn migrated(stack: &Sandboxes, org: &str, email: &str, roles: Value) -> String {
    let reply = post(
        stack,
        "/v1/b2b/passwords/migrate",
        json!({"organization_id": org, "email_address": email, "hash": PYTHON_HASH,
               "hash_type": "bcrypt", "roles": roles}),
    )
    .await;
    reply["member_id"].as_str().unwrap().to_owned()
}

async fn login(stack: &Sandboxes, org: &str, email: &str) -> Value {
    post(
        stack,
        "/v1/b2b/passwords/authenticate",
        json!({"organization_id": org, "email_address": email, "password": PASSWORD,
               "session_duration_minutes": 120}),
    )
    .await
}

fn factors(session: &Value) -> Vec<(String, String)> {
    session["authentication_factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["type"].as_str().unwrap().to_owned(),
                f["delivery_method"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(kind: &str, delivery: &str) -> (String, String) {
    (kind.to_owned(), delivery.to_owned())
}

#[tokio::test]
async fn organizations_and_members_with_roles() {
    let stack = Sandboxes::start().await;
    let created = post(
        &stack,
        "/v1/b2b/organizations",
        json!({"organization_name": "Acme", "organization_slug": "acme",
               "trusted_metadata": {"tier": "gold"}, "organization_logo_url": null}),
    )
    .await;
    let org = &created["organization"];
    let org_id = org["organization_id"].as_str().unwrap();
    assert!(org_id.starts_with("organization-test-"), "{org}");
    assert_eq!(
        (
            org["organization_slug"].as_str(),
            org["mfa_policy"].as_str()
        ),
        (Some("acme"), Some("OPTIONAL"))
    );
    assert_eq!(org["auth_methods"], "ALL_ALLOWED");
    assert_eq!(org["trusted_metadata"], json!({"tier": "gold"}));
    for list in [
        "email_allowed_domains",
        "allowed_mfa_methods",
        "custom_roles",
    ] {
        assert_eq!(org[list], json!([]), "{list}");
    }
    // The slug names it wherever the id does; a second organization cannot take it.
    let (status, by_slug) =
        call(&stack, Method::GET, "/v1/b2b/organizations/acme", json!({})).await;
    assert_eq!(
        (status, &by_slug["organization"]["organization_id"]),
        (200, &json!(org_id))
    );
    let taken = call(
        &stack,
        Method::POST,
        "/v1/b2b/organizations",
        json!({"organization_name": "Other", "organization_slug": "acme"}),
    )
    .await;
    assert_stytch_error(&taken, 400, "organization_slug_already_used");
    let no_slug = call(
        &stack,
        Method::POST,
        "/v1/b2b/organizations",
        json!({"organization_name": "Other"}),
    )
    .await;
    assert_stytch_error(&no_slug, 400, "invalid_organization_slug");
    let policy = call(
        &stack,
        Method::POST,
        "/v1/b2b/organizations",
        json!({"organization_name": "Other", "organization_slug": "other", "mfa_policy": "ALWAYS"}),
    )
    .await;
    assert_stytch_error(&policy, 400, "invalid_organization_mfa_policy");

    // The first admin, named explicitly.
    let members = format!("/v1/b2b/organizations/{org_id}/members");
    let admin = post(
        &stack,
        &members,
        json!({"email_address": "ada@acme.test", "name": "Ada Lovelace",
               "roles": ["stytch_admin"], "mfa_phone_number": "+15555550100"}),
    )
    .await;
    let member_id = admin["member_id"].as_str().unwrap().to_owned();
    assert!(member_id.starts_with("member-test-"), "{admin}");
    let m = &admin["member"];
    assert_eq!(
        m["roles"],
        json!([
            {"role_id": "stytch_member", "sources": [{"type": "direct_assignment", "details": {}}]},
            {"role_id": "stytch_admin", "sources": [{"type": "direct_assignment", "details": {}}]},
        ])
    );
    assert_eq!(
        (m["is_admin"].as_bool(), m["status"].as_str()),
        (Some(true), Some("active"))
    );
    assert_eq!(m["email_address_verified"], false);
    assert_eq!(m["mfa_phone_number"], "+15555550100");
    assert_eq!(
        (
            m["member_password_id"].as_str(),
            m["totp_registration_id"].as_str()
        ),
        (Some(""), Some(""))
    );
    assert_eq!(admin["organization"]["organization_id"], org_id);

    // Read back by id (percent-encoded, with the SDK's `{}` body) and by e-mail.
    let encoded = member_id.replace('-', "%2D");
    let (status, got) = call(
        &stack,
        Method::GET,
        &format!(
            "/v1/b2b/organizations/{org_id}/member?organization_id={org_id}&member_id={encoded}"
        ),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, &got["member"]["name"]),
        (200, &json!("Ada Lovelace")),
        "{got}"
    );
    let (_, by_email) = call(
        &stack,
        Method::GET,
        "/v1/b2b/organizations/acme/member?email_address=ADA%40acme.test",
        json!({}),
    )
    .await;
    assert_eq!(by_email["member_id"], member_id.as_str());

    // Roles: stytch_member is implicit, unknown roles refused, `roles` replaces the list.
    let this = format!("{members}/{member_id}");
    let default_role = call(
        &stack,
        Method::PUT,
        &this,
        json!({"roles": ["stytch_member"]}),
    )
    .await;
    assert_stytch_error(&default_role, 400, "cannot_assign_default_rbac_role_id");
    let unknown = call(&stack, Method::PUT, &this, json!({"roles": ["editor"]})).await;
    assert_stytch_error(&unknown, 400, "invalid_rbac_role_id");
    let (status, updated) = call(
        &stack,
        Method::PUT,
        &this,
        json!({"roles": [], "name": "Augusta Ada King", "mfa_phone_number": null}),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    let m = &updated["member"];
    assert_eq!(m["roles"].as_array().unwrap().len(), 1);
    assert_eq!(m["roles"][0]["role_id"], "stytch_member");
    assert_eq!(
        (m["is_admin"].as_bool(), m["name"].as_str()),
        (Some(false), Some("Augusta Ada King"))
    );
    assert_eq!(m["mfa_phone_number"], "+15555550100", "null leaves it");

    let duplicate = call(
        &stack,
        Method::POST,
        &members,
        json!({"email_address": "ada@acme.test"}),
    )
    .await;
    assert_stytch_error(&duplicate, 400, "duplicate_member_email");
    let (status, deleted) = call(&stack, Method::DELETE, &this, json!({})).await;
    assert_eq!((status, &deleted["member_id"]), (200, &json!(member_id)));
    let gone = call(
        &stack,
        Method::GET,
        &format!("/v1/b2b/organizations/{org_id}/member?member_id={member_id}"),
        json!({}),
    )
    .await;
    assert_stytch_error(&gone, 404, "member_not_found");
    let no_org = call(
        &stack,
        Method::GET,
        "/v1/b2b/organizations/organization-test-x",
        json!({}),
    )
    .await;
    assert_stytch_error(&no_org, 404, "organization_not_found");
    // Basic auth guards the B2B routes too.
    let (status, _) = json_of(
        stack
            .http
            .get(stack.stytch(&format!("/v1/b2b/organizations/{org_id}"))),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn members_log_in_with_a_migrated_bcrypt_password() {
    let stack = Sandboxes::start().await;
    let org = organization(&stack, "globex", "OPTIONAL").await;
    let migrated = post(
        &stack,
        "/v1/b2b/passwords/migrate",
        json!({"organization_id": org, "email_address": "hank@globex.test", "hash": NODE_HASH,
               "hash_type": "bcrypt", "name": "Hank Scorpio", "roles": ["stytch_admin"]}),
    )
    .await;
    assert_eq!(migrated["member_created"], true);
    let m = &migrated["member"];
    assert_eq!(
        m["email_address_verified"], true,
        "migrate verifies the e-mail"
    );
    assert!(
        m["member_password_id"]
            .as_str()
            .unwrap()
            .starts_with("member-password-test-")
    );
    assert_eq!(m["is_admin"], true);
    let again = post(
        &stack,
        "/v1/b2b/passwords/migrate",
        json!({"organization_id": "globex", "email_address": "hank@globex.test",
               "hash": PYTHON_HASH, "hash_type": "bcrypt"}),
    )
    .await;
    assert_eq!(
        (again["member_created"].as_bool(), &again["member_id"]),
        (Some(false), &migrated["member_id"])
    );

    let r = login(&stack, &org, "hank@globex.test").await;
    assert_eq!(r["member_authenticated"], true);
    assert_eq!(r["member_id"], migrated["member_id"]);
    assert_eq!(r["organization_id"], org.as_str());
    assert_eq!(r["intermediate_session_token"], "");
    assert!(r["mfa_required"].is_null());
    let session = &r["member_session"];
    assert!(
        session["member_session_id"]
            .as_str()
            .unwrap()
            .starts_with("session-test-")
    );
    assert_eq!(factors(session), vec![pair("password", "knowledge")]);
    assert_eq!(session["roles"], json!(["stytch_member", "stytch_admin"]));
    assert_eq!(session["organization_slug"], "globex");
    let started = time::OffsetDateTime::parse(
        session["started_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let ends = time::OffsetDateTime::parse(
        session["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!((ends - started).whole_minutes(), 120);
    assert!(!r["session_token"].as_str().unwrap().is_empty());
    assert_eq!(r["session_jwt"].as_str().unwrap().split('.').count(), 3);

    let wrong = call(
        &stack,
        Method::POST,
        "/v1/b2b/passwords/authenticate",
        json!({"organization_id": org, "email_address": "hank@globex.test", "password": "nope"}),
    )
    .await;
    assert_stytch_error(&wrong, 401, "unauthorized_credentials");
    let unknown = call(
        &stack,
        Method::POST,
        "/v1/b2b/passwords/authenticate",
        json!({"organization_id": org, "email_address": "nobody@globex.test", "password": PASSWORD}),
    )
    .await;
    assert_stytch_error(&unknown, 404, "member_not_found");
    for (body, error_type) in [
        (
            json!({"hash": PYTHON_HASH, "hash_type": "md_5"}),
            "invalid_hash_type",
        ),
        (
            json!({"hash": "not a hash", "hash_type": "bcrypt"}),
            "invalid_bcrypt_hash",
        ),
    ] {
        let mut body = body;
        body["organization_id"] = json!(org);
        body["email_address"] = json!("x@globex.test");
        let refused = call(&stack, Method::POST, "/v1/b2b/passwords/migrate", body).await;
        assert_stytch_error(&refused, 400, error_type);
    }
}

#[tokio::test]
async fn member_jwts_verify_against_the_b2b_jwks_with_stytchs_claims() {
    let stack = Sandboxes::start().await;
    let org = organization(&stack, "initech", "OPTIONAL").await;
    let member = migrated(&stack, &org, "peter@initech.test", json!(["stytch_admin"])).await;
    let r = login(&stack, &org, "peter@initech.test").await;
    let jwt = r["session_jwt"].as_str().unwrap();
    let (header, claims) = claims_of(jwt);
    assert_eq!(
        (header["alg"].as_str(), header["typ"].as_str()),
        (Some("RS256"), Some("JWT"))
    );
    let kid = header["kid"].as_str().unwrap();
    assert!(kid.starts_with("jwk-test-"));
    assert_eq!(claims["sub"], member.as_str());
    assert_eq!(claims["aud"], json!([PROJECT_ID]));
    assert_eq!(claims["iss"], format!("stytch.com/{PROJECT_ID}"));
    assert_eq!(claims["iat"], claims["nbf"]);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    assert_eq!(
        claims["https://stytch.com/organization"],
        json!({"organization_id": org, "slug": "initech"})
    );
    let session = &claims["https://stytch.com/session"];
    assert_eq!(session["id"], r["member_session"]["member_session_id"]);
    assert_eq!(session["roles"], json!(["stytch_member", "stytch_admin"]));
    assert_eq!(
        session["attributes"],
        json!({"ip_address": "", "user_agent": ""})
    );
    assert_eq!(factors(session), vec![pair("password", "knowledge")]);
    for field in ["started_at", "last_accessed_at", "expires_at"] {
        assert!(session[field].as_str().unwrap().ends_with('Z'), "{field}");
    }

    // The B2B JWKS (no credentials needed) verifies it; the consumer JWKS does not hold its key.
    let (status, jwks) = json_of(
        stack
            .http
            .get(stack.stytch(&format!("/v1/b2b/sessions/jwks/{PROJECT_ID}"))),
    )
    .await;
    assert_eq!((status, &jwks["status_code"]), (200, &json!(200)));
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("the signing key");
    for field in [
        "kty", "use", "key_ops", "alg", "kid", "x5c", "x5tS256", "n", "e",
    ] {
        assert!(!key[field].is_null(), "JWK field {field}");
    }
    let decoding = jsonwebtoken::DecodingKey::from_rsa_components(
        key["n"].as_str().unwrap(),
        key["e"].as_str().unwrap(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[PROJECT_ID]);
    validation.set_issuer(&[format!("stytch.com/{PROJECT_ID}")]);
    validation.leeway = 0;
    let verified = jsonwebtoken::decode::<Value>(jwt, &decoding, &validation).expect("verifies");
    assert_eq!(verified.claims["sub"], member.as_str());
    let (_, consumer) = json_of(
        stack
            .http
            .get(stack.stytch(&format!("/v1/sessions/jwks/{PROJECT_ID}"))),
    )
    .await;
    assert!(
        consumer["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["kid"] != kid)
    );
    assert!(
        stack.verifier().verify(jwt, now()).await.is_err(),
        "a member JWT is no consumer session"
    );
    let other = json_of(
        stack
            .http
            .get(stack.stytch("/v1/b2b/sessions/jwks/project-test-other")),
    )
    .await;
    assert_stytch_error(&other, 404, "project_not_found");
}

#[tokio::test]
async fn member_sessions_authenticate_with_roles_and_revoke_to_404() {
    let stack = Sandboxes::start().await;
    let org = organization(&stack, "umbrella", "OPTIONAL").await;
    let admin = migrated(&stack, &org, "alice@umbrella.test", json!(["stytch_admin"])).await;
    migrated(&stack, &org, "bob@umbrella.test", json!([])).await;
    let other_org = organization(&stack, "hooli", "OPTIONAL").await;
    let r = login(&stack, &org, "alice@umbrella.test").await;
    let token = r["session_token"].as_str().unwrap();
    let jwt = r["session_jwt"].as_str().unwrap();

    let by_token = post(
        &stack,
        "/v1/b2b/sessions/authenticate",
        json!({"session_token": token}),
    )
    .await;
    assert_eq!(
        by_token["member_session"]["roles"],
        json!(["stytch_member", "stytch_admin"])
    );
    assert_eq!(by_token["member"]["member_id"], admin.as_str());
    assert_eq!(by_token["organization"]["organization_slug"], "umbrella");
    assert_eq!(by_token["session_token"], token);
    assert!(by_token.get("verdict").is_none());
    let by_jwt = post(
        &stack,
        "/v1/b2b/sessions/authenticate",
        json!({"session_jwt": jwt, "session_duration_minutes": 30,
               "authorization_check": {"organization_id": org, "resource_id": "stytch.member", "action": "create"}}),
    )
    .await;
    assert_eq!(
        by_jwt["member_session"]["member_session_id"],
        r["member_session"]["member_session_id"]
    );
    assert_eq!(
        by_jwt["verdict"],
        json!({"authorized": true, "granting_roles": ["stytch_admin"]})
    );
    let expires = time::OffsetDateTime::parse(
        by_jwt["member_session"]["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = (expires - time::OffsetDateTime::now_utc()).whole_minutes();
    assert!(
        (29..=30).contains(&left),
        "the duration sets the end: {left}"
    );
    let tenancy = call(
        &stack,
        Method::POST,
        "/v1/b2b/sessions/authenticate",
        json!({"session_token": token,
               "authorization_check": {"organization_id": other_org, "resource_id": "stytch.member", "action": "create"}}),
    )
    .await;
    assert_stytch_error(&tenancy, 403, "session_authorization_tenancy_error");

    // A plain member may act on itself only.
    let bob = login(&stack, &org, "bob@umbrella.test").await;
    let check = |resource: &str| {
        json!({"session_token": bob["session_token"],
               "authorization_check": {"organization_id": "umbrella", "resource_id": resource, "action": "update"}})
    };
    let own = post(
        &stack,
        "/v1/b2b/sessions/authenticate",
        check("stytch.self"),
    )
    .await;
    assert_eq!(own["verdict"]["granting_roles"], json!(["stytch_member"]));
    let denied = call(
        &stack,
        Method::POST,
        "/v1/b2b/sessions/authenticate",
        check("stytch.member"),
    )
    .await;
    assert_stytch_error(&denied, 403, "session_authorization_error");

    let both = call(
        &stack,
        Method::POST,
        "/v1/b2b/sessions/authenticate",
        json!({"session_token": token, "session_jwt": jwt}),
    )
    .await;
    assert_stytch_error(&both, 400, "too_many_session_arguments");
    let none = call(
        &stack,
        Method::POST,
        "/v1/b2b/sessions/authenticate",
        json!({"session_token": null}),
    )
    .await;
    assert_stytch_error(&none, 400, "no_session_arguments");
    // A consumer session and a member session are strangers.
    let consumer = stack.sign_up("carol@example.com").await;
    let foreign = call(
        &stack,
        Method::POST,
        "/v1/b2b/sessions/authenticate",
        json!({"session_token": consumer.session_token}),
    )
    .await;
    assert_stytch_error(&foreign, 404, "session_not_found");
    let foreign_jwt = call(
        &stack,
        Method::POST,
        "/v1/b2b/sessions/authenticate",
        json!({"session_jwt": consumer.session_jwt}),
    )
    .await;
    assert_stytch_error(&foreign_jwt, 400, "unable_to_parse_session_jwt");

    let (status, listed) = call(
        &stack,
        Method::GET,
        &format!("/v1/b2b/sessions?organization_id={org}&member_id={admin}"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["member_sessions"].as_array().unwrap().len(), 1);

    post(
        &stack,
        "/v1/b2b/sessions/revoke",
        json!({"session_jwt": jwt, "member_id": null}),
    )
    .await;
    for body in [json!({"session_token": token}), json!({"session_jwt": jwt})] {
        let revoked = call(&stack, Method::POST, "/v1/b2b/sessions/authenticate", body).await;
        assert_stytch_error(&revoked, 404, "session_not_found");
    }
    let again = call(
        &stack,
        Method::POST,
        "/v1/b2b/sessions/revoke",
        json!({"member_session_id": r["member_session"]["member_session_id"]}),
    )
    .await;
    assert_stytch_error(&again, 404, "session_not_found");
    let nothing = call(&stack, Method::POST, "/v1/b2b/sessions/revoke", json!({})).await;
    assert_stytch_error(&nothing, 400, "no_session_revoke_arguments");
}

#[tokio::test]
async fn totp_steps_up_a_member_session_and_recovery_codes_work() {
    let stack = Sandboxes::start().await;
    let org = organization(&stack, "cyberdyne", "OPTIONAL").await;
    let member = migrated(&stack, &org, "miles@cyberdyne.test", json!([])).await;
    let r = login(&stack, &org, "miles@cyberdyne.test").await;
    let token = r["session_token"].as_str().unwrap().to_owned();

    let no_session = call(
        &stack,
        Method::POST,
        "/v1/b2b/totp/authenticate",
        json!({"organization_id": org, "member_id": member, "code": "123456"}),
    )
    .await;
    assert_stytch_error(
        &no_session,
        400,
        "action_available_only_once_primary_authentication_is_met",
    );
    let created = post(
        &stack,
        "/v1/b2b/totp",
        json!({"organization_id": org, "member_id": member}),
    )
    .await;
    let registration = created["totp_registration_id"].as_str().unwrap().to_owned();
    assert!(registration.starts_with("member-totp-test-"), "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32);
    assert!(
        created["qr_code"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
    assert_eq!(created["recovery_codes"].as_array().unwrap().len(), 10);
    assert_eq!(
        created["member"]["totp_registration_id"], "",
        "shown once verified"
    );
    let pending = call(
        &stack,
        Method::POST,
        "/v1/b2b/totp",
        json!({"organization_id": org, "member_id": member}),
    )
    .await;
    assert_stytch_error(&pending, 400, "pending_totp_exists");

    let wrong = call(
        &stack,
        Method::POST,
        "/v1/b2b/totp/authenticate",
        json!({"organization_id": org, "member_id": member, "code": "000000", "session_token": token}),
    )
    .await;
    if wrong.0 != 200 {
        assert_stytch_error(&wrong, 401, "unable_to_authenticate_totp");
    }
    let code = totp(&secret, now() + 30);
    let stepped = post(
        &stack,
        "/v1/b2b/totp/authenticate",
        json!({"organization_id": org, "member_id": member, "code": code, "session_token": token,
               "set_mfa_enrollment": "enroll"}),
    )
    .await;
    let session = &stepped["member_session"];
    assert_eq!(
        session["member_session_id"],
        r["member_session"]["member_session_id"]
    );
    assert_eq!(
        factors(session),
        vec![
            pair("password", "knowledge"),
            pair("totp", "authenticator_app")
        ]
    );
    assert_eq!(
        session["expires_at"], r["member_session"]["expires_at"],
        "no duration: the end stays"
    );
    let (_, claims) = claims_of(stepped["session_jwt"].as_str().unwrap());
    assert_eq!(factors(&claims["https://stytch.com/session"]).len(), 2);
    let m = &stepped["member"];
    assert_eq!(m["totp_registration_id"], registration.as_str());
    assert_eq!(
        (
            m["mfa_enrolled"].as_bool(),
            m["default_mfa_method"].as_str()
        ),
        (Some(true), Some("totp"))
    );
    let replay = call(
        &stack,
        Method::POST,
        "/v1/b2b/totp/authenticate",
        json!({"organization_id": org, "member_id": member, "code": code, "session_token": token}),
    )
    .await;
    assert_stytch_error(&replay, 401, "totp_code_already_authenticated");
    let active = call(
        &stack,
        Method::POST,
        "/v1/b2b/totp",
        json!({"organization_id": org, "member_id": member}),
    )
    .await;
    assert_stytch_error(&active, 400, "active_totp_exists");

    // Recovery codes: listed, spent once each, rotated.
    let (status, listed) = call(
        &stack,
        Method::GET,
        &format!("/v1/b2b/recovery_codes/{org}/{member}"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["recovery_codes"], created["recovery_codes"]);
    let first = created["recovery_codes"][0].as_str().unwrap();
    let recovered = post(
        &stack,
        "/v1/b2b/recovery_codes/recover",
        json!({"organization_id": org, "member_id": member, "recovery_code": first, "session_token": token}),
    )
    .await;
    assert_eq!(recovered["recovery_codes_remaining"], 9);
    assert!(
        factors(&recovered["member_session"]).contains(&pair("recovery_codes", "recovery_code"))
    );
    let spent = call(
        &stack,
        Method::POST,
        "/v1/b2b/recovery_codes/recover",
        json!({"organization_id": org, "member_id": member, "recovery_code": first, "session_token": token}),
    )
    .await;
    assert_stytch_error(&spent, 401, "unable_to_authenticate_recovery_code");
    let rotated = post(
        &stack,
        "/v1/b2b/recovery_codes/rotate",
        json!({"organization_id": org, "member_id": member}),
    )
    .await;
    let fresh = rotated["recovery_codes"].as_array().unwrap();
    assert_eq!(fresh.len(), 10);
    let old = call(
        &stack,
        Method::POST,
        "/v1/b2b/recovery_codes/recover",
        json!({"organization_id": org, "member_id": member, "recovery_code": created["recovery_codes"][1], "session_token": token}),
    )
    .await;
    assert_stytch_error(&old, 401, "unable_to_authenticate_recovery_code");

    // Deleting the registration (through the member) keeps the session.
    let (status, deleted) = call(
        &stack,
        Method::DELETE,
        &format!("/v1/b2b/organizations/{org}/members/{member}/totp"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["member"]["totp_registration_id"], "");
    assert_eq!(deleted["member"]["default_mfa_method"], "");
    let (_, none) = call(
        &stack,
        Method::GET,
        &format!("/v1/b2b/recovery_codes/{org}/{member}"),
        json!({}),
    )
    .await;
    assert_eq!(none["error_type"], "recovery_codes_not_found");
    post(
        &stack,
        "/v1/b2b/sessions/authenticate",
        json!({"session_token": token}),
    )
    .await;
}

#[tokio::test]
async fn an_mfa_required_login_gives_an_intermediate_session_that_totp_completes() {
    let stack = Sandboxes::start().await;
    let org = organization(&stack, "wayne", "REQUIRED_FOR_ALL").await;
    let member = migrated(&stack, &org, "bruce@wayne.test", json!(["stytch_admin"])).await;
    let first = login(&stack, &org, "bruce@wayne.test").await;
    assert_eq!(first["member_authenticated"], false);
    assert!(first["member_session"].is_null());
    assert_eq!(
        (
            first["session_token"].as_str(),
            first["session_jwt"].as_str()
        ),
        (Some(""), Some(""))
    );
    let ist = first["intermediate_session_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!ist.is_empty());
    assert!(
        first["intermediate_session_token_expires_at"]
            .as_str()
            .is_some()
    );
    assert_eq!(
        first["mfa_required"]["member_options"]["totp_registration_id"],
        ""
    );

    // Enrol with the intermediate session, then complete it into a member session.
    let created = post(
        &stack,
        "/v1/b2b/totp",
        json!({"organization_id": org, "member_id": member, "intermediate_session_token": ist}),
    )
    .await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    let done = post(
        &stack,
        "/v1/b2b/totp/authenticate",
        json!({"organization_id": org, "member_id": member, "code": totp(&secret, now()),
               "intermediate_session_token": ist, "session_duration_minutes": 60,
               "set_mfa_enrollment": "unenroll"}),
    )
    .await;
    let session = &done["member_session"];
    assert_eq!(
        factors(session),
        vec![
            pair("password", "knowledge"),
            pair("totp", "authenticator_app")
        ]
    );
    assert_eq!(session["roles"], json!(["stytch_member", "stytch_admin"]));
    assert_eq!(
        done["member"]["mfa_enrolled"], false,
        "stays unenrolled: the policy decides"
    );
    post(
        &stack,
        "/v1/b2b/sessions/authenticate",
        json!({"session_jwt": done["session_jwt"]}),
    )
    .await;
    let spent = call(
        &stack,
        Method::POST,
        "/v1/b2b/totp/authenticate",
        json!({"organization_id": org, "member_id": member, "code": totp(&secret, now() + 30),
               "intermediate_session_token": ist}),
    )
    .await;
    assert_stytch_error(&spent, 404, "intermediate_session_not_found");

    // The next login names the registration; a recovery code completes it too.
    let second = login(&stack, &org, "bruce@wayne.test").await;
    assert_eq!(
        second["mfa_required"]["member_options"]["totp_registration_id"],
        created["totp_registration_id"]
    );
    let recovered = post(
        &stack,
        "/v1/b2b/recovery_codes/recover",
        json!({"organization_id": org, "member_id": member, "recovery_code": created["recovery_codes"][0],
               "intermediate_session_token": second["intermediate_session_token"]}),
    )
    .await;
    assert_eq!(
        factors(&recovered["member_session"]),
        vec![
            pair("password", "knowledge"),
            pair("recovery_codes", "recovery_code")
        ]
    );
    // A live session of the member passed to the login skips MFA.
    let skip = post(
        &stack,
        "/v1/b2b/passwords/authenticate",
        json!({"organization_id": org, "email_address": "bruce@wayne.test", "password": PASSWORD,
               "session_token": done["session_token"]}),
    )
    .await;
    assert_eq!(skip["member_authenticated"], true);
    assert_eq!(
        skip["member_session"]["member_session_id"],
        session["member_session_id"]
    );

    // Under OPTIONAL, an enrolled member meets MFA as well.
    let optional = organization(&stack, "stark", "OPTIONAL").await;
    let tony = migrated(&stack, &optional, "tony@stark.test", json!([])).await;
    let (status, _) = call(
        &stack,
        Method::PUT,
        &format!("/v1/b2b/organizations/{optional}/members/{tony}"),
        json!({"mfa_enrolled": true}),
    )
    .await;
    assert_eq!(status, 200);
    let enrolled = login(&stack, &optional, "tony@stark.test").await;
    assert_eq!(enrolled["member_authenticated"], false);
}

#[tokio::test]
async fn b2b_webhooks_are_svix_signed_member_and_organization_events() {
    let (seen, secret, stytch, running) = support::stytch_with_webhooks(
        "project-test-b2b-webhooks",
        "secret-test-b2b-webhooks",
        vec![Duration::from_millis(50); 3],
        |_| 204,
    )
    .await;
    let http = reqwest::Client::new();
    let send = |method: Method, path: String, body: Value| {
        http.request(method, format!("{}{path}", running.url))
            .basic_auth(
                "project-test-b2b-webhooks",
                Some("secret-test-b2b-webhooks"),
            )
            .json(&body)
    };
    let (_, org) = json_of(send(
        Method::POST,
        "/v1/b2b/organizations".into(),
        json!({"organization_name": "Acme", "organization_slug": "acme"}),
    ))
    .await;
    let org_id = org["organization"]["organization_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, member) = json_of(send(
        Method::POST,
        format!("/v1/b2b/organizations/{org_id}/members"),
        json!({"email_address": "ada@acme.test"}),
    ))
    .await;
    let member_id = member["member_id"].as_str().unwrap().to_owned();
    let this = format!("/v1/b2b/organizations/{org_id}/members/{member_id}");
    json_of(send(
        Method::PUT,
        this.clone(),
        json!({"roles": ["stytch_admin"]}),
    ))
    .await;
    json_of(send(
        Method::PUT,
        this.clone(),
        json!({"roles": ["stytch_admin"]}),
    ))
    .await; // no change, no event
    json_of(send(Method::DELETE, this, json!({}))).await;
    json_of(send(
        Method::PUT,
        format!("/v1/b2b/organizations/{org_id}"),
        json!({"mfa_policy": "REQUIRED_FOR_ALL"}),
    ))
    .await;
    json_of(send(
        Method::DELETE,
        format!("/v1/b2b/organizations/{org_id}"),
        json!({}),
    ))
    .await;

    for _ in 0..200 {
        let deliveries = stytch.webhooks.deliveries();
        if deliveries.len() == 6 && deliveries.iter().all(|d| d.delivered) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let types: Vec<String> = stytch
        .webhooks
        .deliveries()
        .iter()
        .map(|d| d.event_type.clone())
        .collect();
    assert_eq!(
        types,
        [
            "direct.organization.create",
            "direct.member.create",
            "direct.member.update",
            "direct.member.delete",
            "direct.organization.update",
            "direct.organization.delete"
        ]
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 6);
    let mut events: Vec<Value> = seen
        .iter()
        .map(|(headers, body)| {
            shared::webhook::verify_svix(&secret, headers, body, now())
                .expect("each delivery verifies");
            serde_json::from_slice(body).unwrap()
        })
        .collect();
    events.sort_by_key(|e| {
        (
            e["object_type"] == "organization",
            e["action"] != "CREATE",
            e["action"] == "DELETE",
        )
    });
    for e in &events {
        assert_eq!(
            (e["vertical"].as_str(), e["source"].as_str()),
            (Some("B2B"), Some("DIRECT")),
            "{e}"
        );
        assert_eq!(e["project_id"], "project-test-b2b-webhooks");
        assert!(
            e["event_id"]
                .as_str()
                .unwrap()
                .starts_with("webhook-event-test-")
        );
        assert!(
            e.get("organization_id").is_none(),
            "no top-level organization id (OQ14)"
        );
    }
    let (created, updated, deleted) = (&events[0], &events[1], &events[2]);
    assert_eq!(
        (created["action"].as_str(), created["object_type"].as_str()),
        (Some("CREATE"), Some("member"))
    );
    assert_eq!(created["id"], member_id.as_str());
    assert_eq!(created["member"]["organization_id"], org_id.as_str());
    assert_eq!(updated["member"]["is_admin"], true);
    assert_eq!(updated["member"]["roles"][1]["role_id"], "stytch_admin");
    assert_eq!(
        (deleted["action"].as_str(), deleted.get("member")),
        (Some("DELETE"), None)
    );
    let org_update = events
        .iter()
        .find(|e| e["object_type"] == "organization" && e["action"] == "UPDATE")
        .unwrap();
    assert_eq!(org_update["organization"]["mfa_policy"], "REQUIRED_FOR_ALL");
}
