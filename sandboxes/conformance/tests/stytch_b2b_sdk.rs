//! The Stytch sandbox's B2B surface driven by the official Rust library's B2B client
//! (`stytch::b2b::client::Client`, the crate pinned in Cargo.toml), built as
//! docs/stytch-api.md §10.7 says: `Client::new_with_base_url(..., Vertical::B2B)` twice, given
//! to `new_with_http_client`. Each step asserts that the SDK parsed the answer into its typed
//! struct (every non-`Option` member present, factor labels among its enums) and that what was
//! sent was stored. Its steps join the consumer suite's in `target/conformance/stytch.json`.

mod report;
mod support;

use stytch::b2b::{
    organizations, organizations_members as members, passwords, recovery_codes, sessions, totps,
};
use stytch::client::Vertical;
use support::{Steps, code, jwt_part, refused, start};

const PROJECT_ID: &str = "project-test-b2b00000-2222-3333-4444-555555555555";
const SECRET: &str = "secret-test-b2b-conformance";
/// `PASSWORD` hashed by Python's `bcrypt` (a vector of the `bcrypt` crate's tests).
const HASH: &str = "$2b$04$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxcie";
const PASSWORD: &str = "correctbatteryhorsestapler";

fn client(base: &str) -> stytch::b2b::client::Client {
    let url = reqwest::Url::parse(base).expect("a URL");
    let http = || {
        stytch::client::Client::new_with_base_url(PROJECT_ID, SECRET, url.clone(), Vertical::B2B)
            .expect("an SDK client")
    };
    stytch::b2b::client::Client::new_with_http_client(http(), http())
}

/// The session's factors as `(type, delivery_method)`, read back from the SDK's enums.
fn factors(session: &sessions::MemberSession) -> Vec<(String, String)> {
    session
        .authentication_factors
        .iter()
        .map(|f| {
            let f = serde_json::to_value(f).expect("factors serialise");
            (
                f["type"].as_str().unwrap().to_owned(),
                f["delivery_method"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The session was proven by the password, then by TOTP.
fn assert_password_and_totp(session: &sessions::MemberSession) {
    assert_eq!(
        factors(session),
        [
            pair("password", "knowledge"),
            pair("totp", "authenticator_app")
        ]
    );
}

fn pair(kind: &str, delivery: &str) -> (String, String) {
    (kind.to_owned(), delivery.to_owned())
}

async fn create_organization(
    sdk: &stytch::b2b::client::Client,
    slug: &str,
    mfa_policy: &str,
) -> organizations::Organization {
    sdk.organizations
        .create(organizations::CreateRequest {
            organization_name: format!("{slug} Ltd"),
            organization_slug: Some(slug.into()),
            mfa_policy: Some(mfa_policy.into()),
            ..Default::default()
        })
        .await
        .expect("organizations.create parses")
        .organization
}

async fn migrate(
    sdk: &stytch::b2b::client::Client,
    organization_id: &str,
    email: &str,
    roles: Vec<String>,
) -> passwords::MigrateResponse {
    sdk.passwords
        .migrate(passwords::MigrateRequest {
            organization_id: organization_id.into(),
            email_address: email.into(),
            hash: HASH.into(),
            hash_type: passwords::MigrateRequestHashType::Bcrypt,
            name: Some("Hank Scorpio".into()),
            roles: Some(roles),
            ..Default::default()
        })
        .await
        .expect("passwords.migrate parses")
}

async fn login(
    sdk: &stytch::b2b::client::Client,
    organization_id: &str,
    email: &str,
) -> passwords::AuthenticateResponse {
    sdk.passwords
        .authenticate(passwords::AuthenticateRequest {
            organization_id: organization_id.into(),
            email_address: email.into(),
            password: PASSWORD.into(),
            session_duration_minutes: Some(120),
            ..Default::default()
        })
        .await
        .expect("passwords.authenticate parses")
}

async fn get_organization(
    sdk: &stytch::b2b::client::Client,
    organization_id: &str,
) -> stytch::Result<organizations::GetResponse> {
    sdk.organizations
        .get(organizations::GetRequest {
            organization_id: organization_id.into(),
        })
        .await
}

async fn get_member(
    sdk: &stytch::b2b::client::Client,
    organization_id: &str,
    member_id: &str,
) -> stytch::Result<members::GetResponse> {
    sdk.organizations
        .members
        .get(members::GetRequest {
            organization_id: organization_id.into(),
            member_id: Some(member_id.into()),
            email_address: None,
        })
        .await
}

/// A TOTP authentication of the member with `code`, in no session yet.
fn totp_request(
    organization_id: &str,
    member_id: &str,
    code: String,
) -> totps::AuthenticateRequest {
    totps::AuthenticateRequest {
        organization_id: organization_id.into(),
        member_id: member_id.into(),
        code,
        ..Default::default()
    }
}

/// A recovery of the member with `recovery_code`, in no session yet.
fn recover_request(
    organization_id: &str,
    member_id: &str,
    recovery_code: &str,
) -> recovery_codes::RecoverRequest {
    recovery_codes::RecoverRequest {
        organization_id: organization_id.into(),
        member_id: member_id.into(),
        recovery_code: recovery_code.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stytch_sandbox_answers_the_official_rust_sdks_b2b_client() {
    let (base, _sandbox, _running) = start(PROJECT_ID, SECRET).await;
    let sdk = client(&base);
    let mut s = Steps::new("stytch b2b sdk");

    // Organizations and members.
    let org = s
        .step("b2b organizations.create", async {
            let org = create_organization(&sdk, "acme", "OPTIONAL").await;
            assert!(org.organization_id.starts_with("organization-test-"));
            assert_eq!(
                (org.organization_slug.as_str(), org.mfa_policy.as_str()),
                ("acme", "OPTIONAL")
            );
            assert_eq!(org.organization_name, "acme Ltd");
            org
        })
        .await;
    let org_id = org.organization_id.clone();
    s.step("b2b organizations.get by id", async {
        let r = get_organization(&sdk, &org_id)
            .await
            .expect("organizations.get parses");
        assert_eq!(r.organization.organization_slug, "acme");
        assert_eq!(r.organization.auth_methods, "ALL_ALLOWED");
    })
    .await;
    s.step("b2b organizations.update sets the MFA policy", async {
        let r = sdk
            .organizations
            .update(organizations::UpdateRequest {
                organization_id: org_id.clone(),
                organization_name: Some("Acme Corporation".into()),
                mfa_policy: Some("REQUIRED_FOR_ALL".into()),
                ..Default::default()
            })
            .await
            .expect("organizations.update parses");
        assert_eq!(r.organization.mfa_policy, "REQUIRED_FOR_ALL");
        let r = sdk
            .organizations
            .update(organizations::UpdateRequest {
                organization_id: org_id.clone(),
                mfa_policy: Some("OPTIONAL".into()),
                ..Default::default()
            })
            .await
            .expect("organizations.update parses");
        assert_eq!(r.organization.organization_name, "Acme Corporation");
    })
    .await;
    let admin = s
        .step("b2b organizations.members.create an admin", async {
            let r = sdk
                .organizations
                .members
                .create(members::CreateRequest {
                    organization_id: org_id.clone(),
                    email_address: "ada@acme.test".into(),
                    name: Some("Ada Lovelace".into()),
                    roles: Some(vec!["stytch_admin".into()]),
                    mfa_phone_number: Some("+15555550100".into()),
                    ..Default::default()
                })
                .await
                .expect("organizations.members.create parses");
            assert!(r.member_id.starts_with("member-test-"));
            let roles: Vec<_> = r.member.roles.iter().map(|x| x.role_id.as_str()).collect();
            assert_eq!(roles, ["stytch_member", "stytch_admin"]);
            assert_eq!(r.member.roles[1].sources[0].type_, "direct_assignment");
            assert!(r.member.is_admin && !r.member.email_address_verified);
            assert_eq!(r.organization.organization_id, org_id);
            r.member_id
        })
        .await;
    s.step("b2b organizations.members.get by member_id", async {
        let r = get_member(&sdk, &org_id, &admin)
            .await
            .expect("organizations.members.get parses");
        assert_eq!(r.member.name, "Ada Lovelace");
        assert_eq!(r.member.mfa_phone_number, "+15555550100");
        assert_eq!(r.member.status, "active");
    })
    .await;
    s.step("b2b organizations.members.update roles and name", async {
        let r = sdk
            .organizations
            .members
            .update(members::UpdateRequest {
                organization_id: org_id.clone(),
                member_id: admin.clone(),
                name: Some("Augusta Ada King".into()),
                roles: Some(Vec::new()),
                ..Default::default()
            })
            .await
            .expect("organizations.members.update parses");
        assert_eq!(r.member.name, "Augusta Ada King");
        assert!(!r.member.is_admin);
        assert_eq!(r.member.roles.len(), 1);
    })
    .await;
    s.step(
        "b2b organizations.members.create refuses stytch_member",
        async {
            refused(
                sdk.organizations
                    .members
                    .create(members::CreateRequest {
                        organization_id: org_id.clone(),
                        email_address: "eve@acme.test".into(),
                        roles: Some(vec!["stytch_member".into()]),
                        ..Default::default()
                    })
                    .await,
                400,
                "cannot_assign_default_rbac_role_id",
            );
        },
    )
    .await;

    // Passwords and member sessions.
    let hank = s
        .step("b2b passwords.migrate a bcrypt hash", async {
            let r = migrate(&sdk, &org_id, "hank@acme.test", vec!["stytch_admin".into()]).await;
            assert!(r.member_created);
            assert!(r.member.email_address_verified);
            assert!(
                r.member
                    .member_password_id
                    .starts_with("member-password-test-")
            );
            assert!(r.member.is_admin);
            r.member_id
        })
        .await;
    let login_reply = s
        .step("b2b passwords.authenticate without MFA", async {
            let r = login(&sdk, &org_id, "hank@acme.test").await;
            assert!(r.member_authenticated);
            assert_eq!(
                (r.member_id.as_str(), r.organization_id.as_str()),
                (hank.as_str(), org_id.as_str())
            );
            assert!(r.intermediate_session_token.is_empty() && r.mfa_required.is_none());
            let session = r.member_session.clone().expect("a member session");
            assert_eq!(factors(&session), [pair("password", "knowledge")]);
            assert_eq!(session.roles, ["stytch_member", "stytch_admin"]);
            assert_eq!((session.expires_at - session.started_at).num_minutes(), 120);
            assert_eq!(session.organization_slug, "acme");
            r
        })
        .await;
    s.step(
        "b2b passwords.authenticate with a wrong password: 401",
        async {
            refused(
                sdk.passwords
                    .authenticate(passwords::AuthenticateRequest {
                        organization_id: org_id.clone(),
                        email_address: "hank@acme.test".into(),
                        password: "not the password".into(),
                        ..Default::default()
                    })
                    .await,
                401,
                "unauthorized_credentials",
            );
        },
    )
    .await;
    s.step("b2b sessions.get_jwks serves the member JWT's key", async {
        let r = sdk
            .sessions
            .get_jwks(sessions::GetJWKSRequest {
                project_id: PROJECT_ID.into(),
            })
            .await
            .expect("sessions.get_jwks parses");
        let header = jwt_part(&login_reply.session_jwt, 0);
        let key = r
            .keys
            .iter()
            .find(|k| Some(k.kid.as_str()) == header["kid"].as_str());
        assert_eq!(key.expect("the signing key").alg, "RS256");
        let claims = jwt_part(&login_reply.session_jwt, 1);
        assert_eq!(claims["sub"], hank.as_str());
        assert_eq!(claims["https://stytch.com/organization"]["slug"], "acme");
    })
    .await;
    s.step(
        "b2b sessions.authenticate by token with an authorization check",
        async {
            let r = sdk
                .sessions
                .authenticate(sessions::AuthenticateRequest {
                    session_token: Some(login_reply.session_token.clone()),
                    authorization_check: Some(sessions::AuthorizationCheck {
                        organization_id: org_id.clone(),
                        resource_id: "stytch.member".into(),
                        action: "create".into(),
                    }),
                    ..Default::default()
                })
                .await
                .expect("sessions.authenticate parses");
            assert_eq!(r.member.member_id, hank);
            assert_eq!(r.member_session.roles, ["stytch_member", "stytch_admin"]);
            let verdict = r.verdict.expect("a verdict");
            assert!(verdict.authorized);
            assert_eq!(verdict.granting_roles, ["stytch_admin"]);
        },
    )
    .await;
    s.step("b2b sessions.authenticate by JWT", async {
        let r = sdk
            .sessions
            .authenticate(sessions::AuthenticateRequest {
                session_jwt: Some(login_reply.session_jwt.clone()),
                ..Default::default()
            })
            .await
            .expect("sessions.authenticate parses");
        let before = login_reply.member_session.as_ref().unwrap();
        assert_eq!(r.member_session.member_session_id, before.member_session_id);
        assert_eq!(r.organization.organization_id, org_id);
    })
    .await;

    // TOTP and recovery codes.
    let totp = s
        .step("b2b totps.create", async {
            let r = sdk
                .totps
                .create(totps::CreateRequest {
                    organization_id: org_id.clone(),
                    member_id: hank.clone(),
                    ..Default::default()
                })
                .await
                .expect("totps.create parses");
            assert!(r.totp_registration_id.starts_with("member-totp-test-"));
            assert!(r.qr_code.starts_with("data:image/png;base64,"));
            assert_eq!((r.secret.len(), r.recovery_codes.len()), (32, 10));
            r
        })
        .await;
    s.step(
        "b2b totps.authenticate steps up the member session",
        async {
            let r = sdk
                .totps
                .authenticate(totps::AuthenticateRequest {
                    session_token: Some(login_reply.session_token.clone()),
                    ..totp_request(&org_id, &hank, code(&totp.secret, 0))
                })
                .await
                .expect("totps.authenticate parses");
            let session = r.member_session.expect("a member session");
            assert_password_and_totp(&session);
            assert_eq!(r.member.totp_registration_id, totp.totp_registration_id);
            assert_eq!(r.member.default_mfa_method, "totp");
            let claims = jwt_part(&r.session_jwt, 1);
            let factors = &claims["https://stytch.com/session"]["authentication_factors"];
            assert_eq!(factors[1]["type"], "totp");
        },
    )
    .await;
    s.step("b2b totps.authenticate with a wrong code: 401", async {
        let right = [
            code(&totp.secret, -1),
            code(&totp.secret, 0),
            code(&totp.secret, 1),
        ];
        let wrong = (0..10)
            .map(|d| format!("{d}{d}{d}{d}{d}{d}"))
            .find(|c| !right.contains(c));
        refused(
            sdk.totps
                .authenticate(totps::AuthenticateRequest {
                    session_token: Some(login_reply.session_token.clone()),
                    ..totp_request(&org_id, &hank, wrong.unwrap())
                })
                .await,
            401,
            "unable_to_authenticate_totp",
        );
    })
    .await;
    s.step("b2b recovery_codes.get", async {
        let r = sdk
            .recovery_codes
            .get(recovery_codes::GetRequest {
                organization_id: org_id.clone(),
                member_id: hank.clone(),
            })
            .await
            .expect("recovery_codes.get parses");
        assert_eq!(r.recovery_codes, totp.recovery_codes);
    })
    .await;
    s.step("b2b recovery_codes.recover in the session", async {
        let r = sdk
            .recovery_codes
            .recover(recovery_codes::RecoverRequest {
                session_jwt: Some(login_reply.session_jwt.clone()),
                ..recover_request(&org_id, &hank, &totp.recovery_codes[0])
            })
            .await
            .expect("recovery_codes.recover parses");
        assert_eq!(r.recovery_codes_remaining, 9);
        let session = r.member_session.expect("a member session");
        assert!(factors(&session).contains(&pair("recovery_codes", "recovery_code")));
    })
    .await;
    s.step("b2b recovery_codes.recover with a used code: 401", async {
        refused(
            sdk.recovery_codes
                .recover(recovery_codes::RecoverRequest {
                    session_token: Some(login_reply.session_token.clone()),
                    ..recover_request(&org_id, &hank, &totp.recovery_codes[0])
                })
                .await,
            401,
            "unable_to_authenticate_recovery_code",
        );
    })
    .await;
    s.step("b2b recovery_codes.rotate", async {
        let r = sdk
            .recovery_codes
            .rotate(recovery_codes::RotateRequest {
                organization_id: org_id.clone(),
                member_id: hank.clone(),
            })
            .await
            .expect("recovery_codes.rotate parses");
        assert_eq!(r.recovery_codes.len(), 10);
        assert!(!r.recovery_codes.contains(&totp.recovery_codes[1]));
    })
    .await;
    s.step("b2b organizations.members.delete_totp", async {
        let r = sdk
            .organizations
            .members
            .delete_totp(members::DeleteTOTPRequest {
                organization_id: org_id.clone(),
                member_id: hank.clone(),
            })
            .await
            .expect("organizations.members.delete_totp parses");
        assert!(r.member.totp_registration_id.is_empty());
    })
    .await;

    // MFA required: an intermediate session, completed by TOTP.
    s.step(
        "b2b MFA: passwords.authenticate gives an intermediate session, totps complete it",
        async {
            let wayne = create_organization(&sdk, "wayne", "REQUIRED_FOR_ALL").await;
            let member = migrate(&sdk, &wayne.organization_id, "bruce@wayne.test", Vec::new())
                .await
                .member_id;
            let first = login(&sdk, &wayne.organization_id, "bruce@wayne.test").await;
            assert!(!first.member_authenticated && first.member_session.is_none());
            assert!(first.session_token.is_empty() && first.session_jwt.is_empty());
            assert!(first.mfa_required.is_some());
            let ist = first.intermediate_session_token.clone();
            assert!(!ist.is_empty());
            let created = sdk
                .totps
                .create(totps::CreateRequest {
                    organization_id: wayne.organization_id.clone(),
                    member_id: member.clone(),
                    intermediate_session_token: Some(ist.clone()),
                    ..Default::default()
                })
                .await
                .expect("totps.create parses");
            let r = sdk
                .totps
                .authenticate(totps::AuthenticateRequest {
                    intermediate_session_token: Some(ist),
                    session_duration_minutes: Some(60),
                    ..totp_request(&wayne.organization_id, &member, code(&created.secret, 0))
                })
                .await
                .expect("totps.authenticate parses");
            let session = r.member_session.expect("a member session");
            assert_password_and_totp(&session);
            assert_eq!(session.organization_id, wayne.organization_id);
            let second = login(&sdk, &wayne.organization_id, "bruce@wayne.test").await;
            let options = second.mfa_required.unwrap().member_options.unwrap();
            assert_eq!(options.totp_registration_id, created.totp_registration_id);
        },
    )
    .await;

    // Revocation and deletion.
    s.step(
        "b2b sessions.revoke, then the session is gone: 404",
        async {
            sdk.sessions
                .revoke(sessions::RevokeRequest {
                    session_token: Some(login_reply.session_token.clone()),
                    ..Default::default()
                })
                .await
                .expect("sessions.revoke parses");
            refused(
                sdk.sessions
                    .authenticate(sessions::AuthenticateRequest {
                        session_jwt: Some(login_reply.session_jwt.clone()),
                        ..Default::default()
                    })
                    .await,
                404,
                "session_not_found",
            );
        },
    )
    .await;
    s.step("b2b organizations.members.delete, then 404", async {
        let r = sdk
            .organizations
            .members
            .delete(members::DeleteRequest {
                organization_id: org_id.clone(),
                member_id: admin.clone(),
            })
            .await
            .expect("organizations.members.delete parses");
        assert_eq!(r.member_id, admin);
        refused(
            get_member(&sdk, &org_id, &admin).await,
            404,
            "member_not_found",
        );
    })
    .await;
    s.step("b2b organizations.delete, then 404", async {
        let r = sdk
            .organizations
            .delete(organizations::DeleteRequest {
                organization_id: org_id.clone(),
            })
            .await
            .expect("organizations.delete parses");
        assert_eq!(r.organization_id, org_id);
        refused(
            get_organization(&sdk, &org_id).await,
            404,
            "organization_not_found",
        );
    })
    .await;

    let total = report::write("b2b", &s.passed);
    eprintln!(
        "stytch sdk 11.1.0: {} B2B steps passed ({total} in the report)",
        s.passed.len()
    );
}
