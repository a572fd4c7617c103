//! The Stytch sandbox driven by Stytch's official Rust library (`stytch`, pinned in Cargo.toml).
//! Every route the sandbox serves, and every call our functions and `bridge-admin` make, in the
//! shapes the SDK sends: each step asserts that the SDK parsed the answer into its typed struct
//! (a missing or mistyped field fails the call) and that what was sent was stored.
//!
//! The SDK picks `test.stytch.com` or `api.stytch.com` from the project id; it also offers
//! `Client::new_with_base_url`, the one way to point it elsewhere, which is what this suite uses.

mod report;
mod support;

use stytch::client::Vertical;
use stytch::consumer::{otp, otp_email, passwords, sessions, totps, users};
use support::{Steps, code, jwt_part, refusal, refused, start};

const PROJECT_ID: &str = "project-test-11111111-2222-3333-4444-555555555555";
const SECRET: &str = "secret-test-conformance";

fn client(base: &str, secret: &str) -> stytch::consumer::client::Client {
    let url = reqwest::Url::parse(base).expect("a URL");
    let http = || {
        stytch::client::Client::new_with_base_url(
            PROJECT_ID,
            secret,
            url.clone(),
            Vertical::Consumer,
        )
        .expect("an SDK client")
    };
    stytch::consumer::client::Client::new_with_http_client(http(), http())
}

fn has_factor(session: &sessions::Session, kind: &str, delivery: &str) -> bool {
    session.authentication_factors.iter().any(|f| {
        let f = serde_json::to_value(f).expect("factors serialise");
        f["type"] == kind && f["delivery_method"] == delivery
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stytch_sandbox_answers_the_official_rust_sdk() {
    let (base, sandbox, _running) = start(PROJECT_ID, SECRET).await;
    assert_eq!(sandbox.project_id(), PROJECT_ID);
    let sdk = client(&base, SECRET);
    let mut s = Steps::new("stytch sdk");

    // Users.
    let created = s
        .step("users.create with name and both metadata", async {
            let r = sdk
                .users
                .create(users::CreateRequest {
                    email: Some("ada@example.com".into()),
                    name: Some(users::Name {
                        first_name: Some("Ada".into()),
                        last_name: Some("Lovelace".into()),
                        ..Default::default()
                    }),
                    trusted_metadata: Some(serde_json::json!({"tier": "gold"})),
                    untrusted_metadata: Some(serde_json::json!({"theme": "dark"})),
                    ..Default::default()
                })
                .await
                .expect("users.create parses");
            assert!(r.user_id.starts_with("user-test-"), "{}", r.user_id);
            assert_eq!(r.user.user_id, r.user_id);
            assert_eq!(r.status_code.as_u16(), 200);
            assert_eq!(r.user.emails[0].email, "ada@example.com");
            assert_eq!(r.user.emails[0].email_id, r.email_id);
            assert_eq!(
                r.user.trusted_metadata,
                Some(serde_json::json!({"tier": "gold"}))
            );
            r
        })
        .await;
    let user_id = created.user_id.clone();
    s.step("users.get returns what was stored", async {
        let u = sdk
            .users
            .get(users::GetRequest {
                user_id: user_id.clone(),
            })
            .await
            .expect("users.get parses");
        assert_eq!(u.user_id, user_id);
        let name = u.name.expect("a name");
        assert_eq!(name.first_name.as_deref(), Some("Ada"));
        assert_eq!(name.last_name.as_deref(), Some("Lovelace"));
        assert_eq!(
            u.untrusted_metadata,
            Some(serde_json::json!({"theme": "dark"}))
        );
        assert_eq!(
            u.trusted_metadata,
            Some(serde_json::json!({"tier": "gold"}))
        );
        assert!(u.created_at.is_some());
    })
    .await;
    s.step("users.update names and metadata", async {
        let r = sdk
            .users
            .update(users::UpdateRequest {
                user_id: user_id.clone(),
                name: Some(users::Name {
                    first_name: Some("Augusta".into()),
                    middle_name: Some("Ada".into()),
                    last_name: Some("King".into()),
                }),
                untrusted_metadata: Some(serde_json::json!({"theme": "light", "lang": "en"})),
                trusted_metadata: Some(serde_json::json!({"tier": "platinum"})),
                ..Default::default()
            })
            .await
            .expect("users.update parses");
        assert_eq!(r.user_id, user_id);
        let name = r.user.name.expect("a name");
        assert_eq!(name.middle_name.as_deref(), Some("Ada"));
        let u = sdk
            .users
            .get(users::GetRequest {
                user_id: user_id.clone(),
            })
            .await
            .expect("users.get parses");
        assert_eq!(u.name.unwrap().first_name.as_deref(), Some("Augusta"));
        assert_eq!(
            u.untrusted_metadata,
            Some(serde_json::json!({"theme": "light", "lang": "en"}))
        );
        assert_eq!(
            u.trusted_metadata,
            Some(serde_json::json!({"tier": "platinum"}))
        );
        // Top-level merge: a null deletes a key, the others stay.
        let r = sdk
            .users
            .update(users::UpdateRequest {
                user_id: user_id.clone(),
                untrusted_metadata: Some(serde_json::json!({"lang": null})),
                ..Default::default()
            })
            .await
            .expect("users.update parses");
        assert_eq!(
            r.user.untrusted_metadata,
            Some(serde_json::json!({"theme": "light"}))
        );
        assert_eq!(r.user.name.unwrap().last_name.as_deref(), Some("King"));
    })
    .await;
    s.step("users.get of an unknown user: 404 user_not_found", async {
        refused(
            sdk.users
                .get(users::GetRequest {
                    user_id: "user-test-00000000-0000-0000-0000-000000000000".into(),
                })
                .await,
            404,
            "user_not_found",
        );
    })
    .await;
    s.step("a wrong secret: 401 unauthorized_credentials", async {
        let wrong = client(&base, "secret-test-not-this-one");
        refused(
            wrong
                .users
                .get(users::GetRequest {
                    user_id: user_id.clone(),
                })
                .await,
            401,
            "unauthorized_credentials",
        );
    })
    .await;

    // Passwords.
    let signup = s
        .step("passwords.create makes a user with a session", async {
            let r = sdk
                .passwords
                .create(passwords::CreateRequest {
                    email: "grace@example.com".into(),
                    password: "a long and unguessable passphrase 42".into(),
                    session_duration_minutes: Some(60),
                    name: Some(users::Name {
                        first_name: Some("Grace".into()),
                        last_name: Some("Hopper".into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .expect("passwords.create parses");
            assert!(!r.session_token.is_empty() && r.session_jwt.split('.').count() == 3);
            let session = r.session.clone().expect("a session");
            assert_eq!(session.user_id, r.user_id);
            assert!(has_factor(&session, "password", "knowledge"));
            let minutes = (session.expires_at.unwrap() - session.started_at.unwrap()).num_minutes();
            assert!((59..=60).contains(&minutes), "{minutes}");
            assert!(r.user.password.is_some());
            assert_eq!(r.user.emails[0].email, "grace@example.com");
            r
        })
        .await;
    let grace = signup.user_id.clone();
    let login = s
        .step("passwords.authenticate with the right password", async {
            let r = sdk
                .passwords
                .authenticate(passwords::AuthenticateRequest {
                    email: "grace@example.com".into(),
                    password: "a long and unguessable passphrase 42".into(),
                    session_duration_minutes: Some(1440),
                    ..Default::default()
                })
                .await
                .expect("passwords.authenticate parses");
            assert_eq!(r.user_id, grace);
            r
        })
        .await;
    s.step("passwords.authenticate with a wrong password: 401", async {
        refused(
            sdk.passwords
                .authenticate(passwords::AuthenticateRequest {
                    email: "grace@example.com".into(),
                    password: "not the passphrase".into(),
                    ..Default::default()
                })
                .await,
            401,
            "unauthorized_credentials",
        );
    })
    .await;

    // Sessions.
    s.step("sessions.authenticate by token", async {
        let r = sdk
            .sessions
            .authenticate(sessions::AuthenticateRequest {
                session_token: Some(login.session_token.clone()),
                ..Default::default()
            })
            .await
            .expect("sessions.authenticate parses");
        assert_eq!(r.session.user_id, grace);
        assert_eq!(r.user.user_id, grace);
        assert_eq!(r.session_token, login.session_token);
    })
    .await;
    s.step("sessions.authenticate by JWT", async {
        let r = sdk
            .sessions
            .authenticate(sessions::AuthenticateRequest {
                session_jwt: Some(login.session_jwt.clone()),
                ..Default::default()
            })
            .await
            .expect("sessions.authenticate parses");
        assert_eq!(
            r.session.session_id,
            login.session.as_ref().unwrap().session_id
        );
    })
    .await;
    s.step("sessions.get lists the user's sessions", async {
        let r = sdk
            .sessions
            .get(sessions::GetRequest {
                user_id: grace.clone(),
            })
            .await
            .expect("sessions.get parses");
        let ids: Vec<_> = r.sessions.iter().map(|s| s.session_id.as_str()).collect();
        assert_eq!(ids.len(), 2, "{ids:?}");
        assert!(ids.contains(&login.session.as_ref().unwrap().session_id.as_str()));
    })
    .await;
    s.step(
        "sessions.get_jwks serves the key that signed the JWT",
        async {
            let r = sdk
                .sessions
                .get_jwks(sessions::GetJWKSRequest {
                    project_id: PROJECT_ID.into(),
                })
                .await
                .expect("sessions.get_jwks parses");
            let header = jwt_part(&login.session_jwt, 0);
            let key = r
                .keys
                .iter()
                .find(|k| Some(k.kid.as_str()) == header["kid"].as_str())
                .expect("the signing key");
            assert_eq!((key.kty.as_str(), key.alg.as_str()), ("RSA", "RS256"));
        },
    )
    .await;

    // TOTP.
    let totp = s
        .step(
            "totps.create gives a secret, a QR code and recovery codes",
            async {
                let r = sdk
                    .totps
                    .create(totps::CreateRequest {
                        user_id: grace.clone(),
                        expiration_minutes: Some(5),
                    })
                    .await
                    .expect("totps.create parses");
                assert_eq!(r.user_id, grace);
                assert!(r.qr_code.starts_with("data:image/png;base64,"));
                assert_eq!(r.recovery_codes.len(), 10);
                let stored = r.user.totps.iter().find(|t| t.totp_id == r.totp_id);
                assert!(!stored.expect("the TOTP on the user").verified);
                r
            },
        )
        .await;
    s.step("totps.authenticate with a wrong code: 401", async {
        refused(
            sdk.totps
                .authenticate(totps::AuthenticateRequest {
                    user_id: grace.clone(),
                    totp_code: "000000".into(),
                    ..Default::default()
                })
                .await,
            401,
            "unable_to_authenticate_totp",
        );
    })
    .await;
    s.step(
        "totps.authenticate without a session or duration: none started",
        async {
            let r = sdk
                .totps
                .authenticate(totps::AuthenticateRequest {
                    user_id: grace.clone(),
                    totp_code: code(&totp.secret, -1),
                    ..Default::default()
                })
                .await
                .expect("totps.authenticate parses");
            assert_eq!(r.totp_id, totp.totp_id);
            assert!(r.session.is_none() && r.session_token.is_empty());
            assert!(
                r.user
                    .totps
                    .iter()
                    .any(|t| t.totp_id == totp.totp_id && t.verified)
            );
        },
    )
    .await;
    s.step(
        "totps.authenticate with a duration starts a session",
        async {
            let r = sdk
                .totps
                .authenticate(totps::AuthenticateRequest {
                    user_id: grace.clone(),
                    totp_code: code(&totp.secret, 0),
                    session_duration_minutes: Some(30),
                    ..Default::default()
                })
                .await
                .expect("totps.authenticate parses");
            let session = r.session.expect("a session");
            assert!(has_factor(&session, "totp", "authenticator_app"));
            assert!(!has_factor(&session, "password", "knowledge"));
        },
    )
    .await;
    s.step(
        "totps.authenticate steps up a session, keeping its end",
        async {
            let before = login.session.as_ref().unwrap();
            let r = sdk
                .totps
                .authenticate(totps::AuthenticateRequest {
                    user_id: grace.clone(),
                    totp_code: code(&totp.secret, 1),
                    session_token: Some(login.session_token.clone()),
                    session_duration_minutes: Some(1440),
                    ..Default::default()
                })
                .await
                .expect("totps.authenticate parses");
            let session = r.session.expect("a session");
            assert_eq!(session.session_id, before.session_id);
            assert!(has_factor(&session, "password", "knowledge"));
            assert!(has_factor(&session, "totp", "authenticator_app"));
        },
    )
    .await;
    s.step("totps.recovery_codes lists them", async {
        let r = sdk
            .totps
            .recovery_codes(totps::RecoveryCodesRequest {
                user_id: grace.clone(),
            })
            .await
            .expect("totps.recovery_codes parses");
        let listed = r.totps.iter().find(|t| t.totp_id == totp.totp_id).unwrap();
        assert_eq!(listed.recovery_codes, totp.recovery_codes);
    })
    .await;
    s.step("totps.recover with a recovery code and a duration", async {
        let r = sdk
            .totps
            .recover(totps::RecoverRequest {
                user_id: grace.clone(),
                recovery_code: totp.recovery_codes[0].clone(),
                session_duration_minutes: Some(60),
                ..Default::default()
            })
            .await
            .expect("totps.recover parses");
        assert_eq!(r.totp_id, totp.totp_id);
        let session = r.session.expect("a session");
        assert!(has_factor(&session, "recovery_codes", "recovery_code"));
    })
    .await;
    s.step("totps.recover with a used recovery code: 401", async {
        refused(
            sdk.totps
                .recover(totps::RecoverRequest {
                    user_id: grace.clone(),
                    recovery_code: totp.recovery_codes[0].clone(),
                    ..Default::default()
                })
                .await,
            401,
            "unable_to_authenticate_recovery_code",
        );
    })
    .await;
    s.step("users.delete_totp removes the authenticator", async {
        let r = sdk
            .users
            .delete_totp(users::DeleteTOTPRequest {
                totp_id: totp.totp_id.clone(),
            })
            .await
            .expect("users.delete_totp parses");
        assert_eq!(r.user_id, grace);
        assert!(r.user.totps.is_empty());
    })
    .await;

    // One-time passcodes: the user's own address proven in a session.
    let sent = s
        .step(
            "otps.email.send to the user's own address, in a session",
            async {
                let r = sdk
                    .otps
                    .email
                    .send(otp_email::SendRequest {
                        email: "grace@example.com".into(),
                        session_token: Some(login.session_token.clone()),
                        ..Default::default()
                    })
                    .await
                    .expect("otps.email.send parses");
                assert_eq!(r.user_id, grace);
                assert!(!r.email_id.is_empty());
                r
            },
        )
        .await;
    let code = sandbox
        .otp_sent_to(&sent.email_id)
        .expect("the sandbox's inbox has the passcode");
    s.step(
        "otps.authenticate with a wrong code: 404 otp_code_not_found",
        async {
            let wrong = if code == "000000" { "000001" } else { "000000" };
            refused(
                sdk.otps
                    .authenticate(otp::AuthenticateRequest {
                        method_id: sent.email_id.clone(),
                        code: wrong.into(),
                        ..Default::default()
                    })
                    .await,
                404,
                "otp_code_not_found",
            );
        },
    )
    .await;
    s.step(
        "otps.authenticate adds an e-mail factor to the session",
        async {
            let r = sdk
                .otps
                .authenticate(otp::AuthenticateRequest {
                    method_id: sent.email_id.clone(),
                    code: code.clone(),
                    session_token: Some(login.session_token.clone()),
                    ..Default::default()
                })
                .await
                .expect("otps.authenticate parses");
            let session = r.session.expect("a session");
            assert_eq!(
                session.session_id,
                login.session.as_ref().unwrap().session_id
            );
            assert!(has_factor(&session, "email_otp", "email"));
            let factor = session
                .authentication_factors
                .iter()
                .map(|f| serde_json::to_value(f).expect("factors serialise"))
                .find(|f| f["type"] == "email_otp")
                .unwrap();
            assert_eq!(factor["email_factor"]["email_address"], "grace@example.com");
            assert_eq!(r.method_id, sent.email_id);
        },
    )
    .await;

    // Revocation.
    s.step("sessions.revoke, then the session is gone: 404", async {
        let id = login.session.as_ref().unwrap().session_id.clone();
        sdk.sessions
            .revoke(sessions::RevokeRequest {
                session_id: Some(id),
                ..Default::default()
            })
            .await
            .expect("sessions.revoke parses");
        refused(
            sdk.sessions
                .authenticate(sessions::AuthenticateRequest {
                    session_token: Some(login.session_token.clone()),
                    ..Default::default()
                })
                .await,
            404,
            "session_not_found",
        );
    })
    .await;
    s.step("users.delete, then the user is gone", async {
        let r = sdk
            .users
            .delete(users::DeleteRequest {
                user_id: user_id.clone(),
            })
            .await
            .expect("users.delete parses");
        assert_eq!(r.user_id, user_id);
        let e = refusal(sdk.users.get(users::GetRequest { user_id }).await);
        assert_eq!(e.error_type, "user_not_found");
    })
    .await;

    let total = report::write("consumer", &s.passed);
    eprintln!(
        "stytch sdk 11.1.0: {} consumer steps passed ({total} in the report)",
        s.passed.len()
    );
}
