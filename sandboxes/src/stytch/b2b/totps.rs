//! B2B TOTP and recovery codes: `POST /v1/b2b/totp`, `/v1/b2b/totp/authenticate`,
//! `/v1/b2b/recovery_codes/recover`, `/v1/b2b/recovery_codes/rotate` and `GET
//! /v1/b2b/recovery_codes/{organization_id}/{member_id}`.

use super::*;

/// Where a second factor goes: the member's session, or its intermediate session (by token).
pub(super) enum Target {
    Session(String),
    Intermediate(String),
}

impl Stytch {
    /// The session or intermediate session a second factor completes (checked before the code
    /// is spent).
    fn mfa_target(
        &self,
        data: &B2bData,
        body: &Map<String, Value>,
        organization_id: &str,
        member_id: &str,
    ) -> Result<Target, Response> {
        let session = self.member_session_of(data, body)?;
        let ist = text(body, "intermediate_session_token")?.filter(|t| !t.is_empty());
        match (session, ist) {
            (Some(_), Some(_)) => Err(bad(
                "too_many_session_arguments",
                "Provide a session or an intermediate session token, not both.",
            )),
            (Some(id), None) if data.sessions[&id].member_id == member_id => {
                Ok(Target::Session(id))
            }
            (Some(_), None) => Err(session_not_found()),
            (None, Some(token)) => {
                let ist = data
                    .intermediate
                    .get(token)
                    .filter(|i| i.expires_at > now() && i.member_id == member_id)
                    .ok_or_else(intermediate_not_found)?;
                if ist.organization_id != organization_id {
                    return Err(bad(
                        "invalid_intermediate_session_token_for_organization",
                        "The intermediate session token belongs to another organization.",
                    ));
                }
                Ok(Target::Intermediate(token.to_owned()))
            }
            (None, None) => Err(bad(
                "action_available_only_once_primary_authentication_is_met",
                "Pass the member's session or intermediate session token.",
            )),
        }
    }
}

/// Adds `f` to the target: the session gains it, an intermediate session becomes a session.
fn finish(
    data: &mut B2bData,
    target: Target,
    member_id: &str,
    f: Value,
    minutes: Option<i64>,
) -> Result<String, Response> {
    match target {
        Target::Session(id) => {
            let session = data.sessions.get_mut(&id).ok_or_else(session_not_found)?;
            merge_factor(&mut session.factors, f);
            session.refresh(minutes);
            Ok(id)
        }
        Target::Intermediate(token) => {
            let mut factors = data
                .intermediate
                .remove(&token)
                .ok_or_else(intermediate_not_found)?
                .factors;
            merge_factor(&mut factors, f);
            Ok(new_member_session(
                data,
                member_id,
                minutes.unwrap_or(60),
                factors,
            ))
        }
    }
}

pub(super) async fn create_member_totp(State(s): State<Arc<Stytch>>, bytes: Bytes) -> Reply {
    let body = object(&bytes)?;
    let minutes = expiration_minutes(&body, 60)?;
    let mut data = s.b2b.data();
    let (org, member_id) = data.target(&body)?;
    let passed = ["session_token", "session_jwt", "intermediate_session_token"];
    if passed.iter().any(|k| body.contains_key(*k)) {
        s.mfa_target(&data, &body, &org, &member_id)?;
    }
    let issuer = data.organizations[&org].name.clone();
    let m = data.member(&member_id)?;
    active(m)?;
    match &m.totp {
        Some(t) if t.verified => {
            return Err(bad(
                "active_totp_exists",
                "The member already has an active TOTP registration.",
            ));
        }
        Some(t) if t.expires_at > now() => {
            return Err(bad(
                "pending_totp_exists",
                "The member has a pending TOTP registration; delete it or authenticate it first.",
            ));
        }
        _ => {}
    }
    let (secret, codes) = (totp::new_secret(), totp::recovery_codes());
    let uri = totp::otpauth_uri(&issuer, &m.email_address, &secret);
    let id = format!("member-totp-test-{}", uuid());
    m.totp = Some(Totp {
        totp_id: id.clone(),
        key: totp::base32_decode(&secret).unwrap_or_default(),
        secret: secret.clone(),
        verified: false,
        expires_at: now() + time::Duration::minutes(minutes),
        used_steps: HashSet::new(),
        recovery: codes.iter().map(|c| (uuid(), c.clone(), false)).collect(),
    });
    let mut reply = data.member_reply(&member_id);
    reply["totp_registration_id"] = json!(id);
    reply["secret"] = json!(secret);
    reply["qr_code"] = json!(crate::qr::qr_data_url(&uri));
    reply["recovery_codes"] = json!(codes);
    ok(reply)
}

/// Checks a TOTP code against the member's registration, spending its step.
fn check_code(m: &mut Member, code: &str) -> Result<(), Response> {
    check_totp_format(code)?;
    spend_totp_code(m.totp.as_mut(), code).map(|_| ())
}

/// `set_mfa_enrollment`: `Some(true)` for `enroll`, `Some(false)` for `unenroll`.
fn enrollment(body: &Map<String, Value>) -> Result<Option<bool>, Response> {
    match text(body, "set_mfa_enrollment")? {
        None => Ok(None),
        Some("enroll") => Ok(Some(true)),
        Some("unenroll") => Ok(Some(false)),
        Some(_) => Err(bad(
            "invalid_request_value",
            "set_mfa_enrollment must be enroll or unenroll.",
        )),
    }
}

pub(super) async fn authenticate_member_totp(State(s): State<Arc<Stytch>>, bytes: Bytes) -> Reply {
    let body = object(&bytes)?;
    let code = required(&body, "code", "invalid_totp_code")?;
    let minutes = duration_minutes(&body)?;
    let (enroll, make_default) = (enrollment(&body)?, flag(&body, "set_default_mfa")?);
    let (reply, changed) = {
        let mut data = s.b2b.data();
        let (org, member_id) = data.target(&body)?;
        let target = s.mfa_target(&data, &body, &org, &member_id)?;
        let required_for_all =
            data.organizations[&org].settings["mfa_policy"] == "REQUIRED_FOR_ALL";
        let before = data.member_json(&member_id);
        let m = data.member(&member_id)?;
        active(m)?;
        check_code(m, code)?;
        if m.default_mfa_method.is_empty() || make_default == Some(true) {
            m.default_mfa_method = "totp".into();
        }
        if let Some(enroll) = enroll.filter(|_| !required_for_all) {
            m.mfa_enrolled = enroll;
        }
        let f = factor("totp", now(), None);
        let session = finish(&mut data, target, &member_id, f, minutes)?;
        let changed = data.touched(&member_id, &before);
        (
            s.member_session_reply(&data, &member_id, Some(&session)),
            changed,
        )
    };
    s.member_updated(reply, changed)
}

/// The member's verified registration (recovery codes exist only for one).
fn verified_totp(m: &mut Member) -> Result<&mut Totp, Response> {
    m.totp.as_mut().filter(|t| t.verified).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "recovery_codes_not_found",
            "No recovery codes for this member.",
        )
    })
}

/// Spends a recovery code; the number of codes left.
fn spend_member_recovery_code(m: &mut Member, code: &str) -> Result<usize, Response> {
    check_recovery_format(code)?;
    let t = verified_totp(m)?;
    spend_recovery_code(t, code)?;
    Ok(unused_codes(t).len())
}

pub(super) async fn recover(State(s): State<Arc<Stytch>>, bytes: Bytes) -> Reply {
    let body = object(&bytes)?;
    let code = required(&body, "recovery_code", "invalid_recovery_code")?;
    let minutes = duration_minutes(&body)?;
    let mut data = s.b2b.data();
    let (org, member_id) = data.target(&body)?;
    let target = s.mfa_target(&data, &body, &org, &member_id)?;
    let m = data.member(&member_id)?;
    active(m)?;
    let remaining = spend_member_recovery_code(m, code)?;
    let f = factor("recovery_codes", now(), None);
    let session = finish(&mut data, target, &member_id, f, minutes)?;
    let mut reply = s.member_session_reply(&data, &member_id, Some(&session));
    reply["recovery_codes_remaining"] = json!(remaining);
    ok(reply)
}

pub(super) async fn get_recovery_codes(
    State(s): State<Arc<Stytch>>,
    Path((organization, member)): Path<(String, String)>,
) -> Reply {
    let mut data = s.b2b.data();
    let org = data.organization_id(&organization)?;
    let id = data.member_id(&org, &member)?;
    let codes: Vec<String> = unused_codes(verified_totp(data.member(&id)?)?)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut reply = data.member_reply(&id);
    reply["recovery_codes"] = json!(codes);
    ok(reply)
}

/// New recovery codes; the old ones stop working.
pub(super) async fn rotate_recovery_codes(State(s): State<Arc<Stytch>>, bytes: Bytes) -> Reply {
    let body = object(&bytes)?;
    let mut data = s.b2b.data();
    let (_, id) = data.target(&body)?;
    let t = verified_totp(data.member(&id)?)?;
    let codes = totp::recovery_codes();
    t.recovery = codes.iter().map(|c| (uuid(), c.clone(), false)).collect();
    let mut reply = data.member_reply(&id);
    reply["recovery_codes"] = json!(codes);
    ok(reply)
}
