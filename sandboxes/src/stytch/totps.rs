//! TOTP: `POST /v1/totps`, `/v1/totps/authenticate`, `/v1/totps/recover`, `/v1/totps/recovery_codes`
//! and `DELETE /v1/users/totps/{id}`.

use super::*;

pub(super) async fn delete_totp(
    State(s): State<Arc<Stytch>>,
    Path(totp_id): Path<String>,
) -> Reply {
    let mut data = s.data();
    let user = data
        .users
        .values_mut()
        .find(|u| u.totp.as_ref().is_some_and(|t| t.totp_id == totp_id))
        .ok_or_else(totp_not_found)?;
    user.totp = None;
    let user_id = user.user_id.clone();
    let user = user_json(user);
    ok(json!({"user_id": user_id, "user": user}))
}

pub(super) async fn create_totp(State(s): State<Arc<Stytch>>, bytes: Bytes) -> Reply {
    let body = object(&bytes)?;
    let user_id = required(&body, "user_id", "invalid_user_id")?;
    let minutes = expiration_minutes(&body, 1440)?;
    let mut data = s.data();
    let user = data.users.get_mut(user_id).ok_or_else(not_found_user)?;
    match &user.totp {
        Some(t) if t.verified => {
            return Err(bad(
                "active_totp_exists",
                "The user already has an active TOTP; only one is allowed.",
            ));
        }
        Some(t) if t.expires_at > now() => {
            return Err(bad(
                "pending_totp_exists",
                "The user has a pending TOTP; delete it or authenticate it first.",
            ));
        }
        _ => {}
    }
    let secret = totp::new_secret();
    let codes = totp::recovery_codes();
    let account = user
        .email
        .as_ref()
        .map(|(_, e)| e.clone())
        .unwrap_or_else(|| user.user_id.clone());
    let totp = pending_totp(&secret, &codes, minutes);
    let totp_id = totp.totp_id.clone();
    user.totp = Some(totp);
    let uri = totp::otpauth_uri("stytch-unit-bridge", &account, &secret);
    let user = user_json(user);
    ok(json!({
        "totp_id": totp_id, "secret": secret, "qr_code": crate::qr::qr_data_url(&uri),
        "recovery_codes": codes, "user_id": user_id, "user": user,
    }))
}

/// `expiration_minutes` (5 to 1440), or `default`.
pub(super) fn expiration_minutes(body: &Map<String, Value>, default: i64) -> Result<i64, Response> {
    match body.get("expiration_minutes") {
        None => Ok(default),
        Some(v) => v
            .as_i64()
            .filter(|m| (5..=1440).contains(m))
            .ok_or_else(|| {
                bad(
                    "invalid_expiration_minutes",
                    "expiration_minutes must be between 5 and 1440.",
                )
            }),
    }
}

/// A new, unverified TOTP with `secret` and its recovery `codes`, pending for `minutes`.
fn pending_totp(secret: &str, codes: &[String], minutes: i64) -> Totp {
    Totp {
        totp_id: format!("totp-test-{}", uuid()),
        key: totp::base32_decode(secret).unwrap_or_default(),
        secret: secret.to_owned(),
        verified: false,
        expires_at: now() + time::Duration::minutes(minutes),
        used_steps: HashSet::new(),
        recovery: codes
            .iter()
            .map(|c| {
                (
                    format!("totp-recovery-code-test-{}", uuid()),
                    c.clone(),
                    false,
                )
            })
            .collect(),
    }
}

pub(super) fn looks_like_recovery_code(code: &str) -> bool {
    code.len() == 14 && code.split('-').count() == 3 && code.split('-').all(|p| p.len() == 4)
}

/// Shared end of the TOTP and recovery flows: put `f` on the caller's session, or a new one.
pub(super) fn finish(
    s: &Stytch,
    data: &mut Data,
    body: &Map<String, Value>,
    user_id: &str,
    f: Value,
) -> Result<Value, Response> {
    let minutes = duration_minutes(body)?;
    let session_id = match s.find_session(data, body)? {
        Some(id) => {
            let session = data.sessions.get_mut(&id).ok_or_else(not_found_user)?;
            if session.user_id != user_id {
                return Err(error(
                    StatusCode::NOT_FOUND,
                    "session_not_found",
                    "Session could not be found.",
                ));
            }
            add_factor(session, f);
            session.last_accessed_at = now();
            if let Some(m) = minutes {
                session.expires_at = now() + time::Duration::minutes(m);
            }
            Some(id)
        }
        None => minutes.map(|m| s.new_session(data, user_id, m, f)),
    };
    Ok(s.session_reply(data, user_id, session_id.as_deref()))
}

/// Refuses what is not a TOTP code (six digits), naming a recovery code sent instead.
pub(super) fn check_totp_format(code: &str) -> Result<(), Response> {
    if looks_like_recovery_code(code) {
        return Err(bad(
            "recovery_code_used_as_totp_code",
            "A recovery code was sent as a TOTP code.",
        ));
    }
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad("invalid_totp_code", "The TOTP code must be 6 digits."));
    }
    Ok(())
}

/// Checks `code` against a live (verified or pending) TOTP, spending its step and verifying it.
pub(super) fn spend_totp_code<'a>(
    totp: Option<&'a mut Totp>,
    code: &str,
) -> Result<&'a mut Totp, Response> {
    let t = totp
        .filter(|t| t.verified || t.expires_at > now())
        .ok_or_else(totp_not_found)?;
    let step = totp::matching_step(&t.key, code, now().unix_timestamp()).ok_or_else(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "unable_to_authenticate_totp",
            "The TOTP code is incorrect.",
        )
    })?;
    if !t.used_steps.insert(step) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "totp_code_already_authenticated",
            "This TOTP code has already been used.",
        ));
    }
    t.verified = true;
    Ok(t)
}

/// Refuses what is not a recovery code, naming a TOTP code sent instead.
pub(super) fn check_recovery_format(code: &str) -> Result<(), Response> {
    if code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad(
            "totp_code_used_as_recovery_code",
            "A TOTP code was sent as a recovery code.",
        ));
    }
    if !looks_like_recovery_code(code) {
        return Err(bad(
            "invalid_recovery_code",
            "The recovery code is malformed.",
        ));
    }
    Ok(())
}

/// Spends an unused recovery code of `t`; its id.
pub(super) fn spend_recovery_code(t: &mut Totp, code: &str) -> Result<String, Response> {
    let entry = t
        .recovery
        .iter_mut()
        .find(|(_, c, used)| c == code && !used)
        .ok_or_else(|| {
            error(
                StatusCode::UNAUTHORIZED,
                "unable_to_authenticate_recovery_code",
                "The recovery code is incorrect or used.",
            )
        })?;
    entry.2 = true;
    Ok(entry.0.clone())
}

/// The recovery codes of `t` not used yet.
pub(super) fn unused_codes(t: &Totp) -> Vec<&str> {
    t.recovery
        .iter()
        .filter(|(_, _, used)| !used)
        .map(|(_, c, _)| c.as_str())
        .collect()
}

pub(super) async fn authenticate_totp(State(s): State<Arc<Stytch>>, bytes: Bytes) -> Reply {
    let body = object(&bytes)?;
    let user_id = required(&body, "user_id", "invalid_user_id")?;
    let code = required(&body, "totp_code", "invalid_totp_code")?;
    check_totp_format(code)?;
    let mut data = s.data();
    let user = data.users.get_mut(user_id).ok_or_else(not_found_user)?;
    let t = spend_totp_code(user.totp.as_mut(), code)?;
    let f = factor(
        "totp",
        now(),
        Some(("authenticator_app_factor", json!({"totp_id": t.totp_id}))),
    );
    let totp_id = t.totp_id.clone();
    let mut reply = finish(&s, &mut data, &body, user_id, f)?;
    reply["totp_id"] = json!(totp_id);
    ok(reply)
}

pub(super) async fn recover_totp(State(s): State<Arc<Stytch>>, bytes: Bytes) -> Reply {
    let body = object(&bytes)?;
    let user_id = required(&body, "user_id", "invalid_user_id")?;
    let code = required(&body, "recovery_code", "invalid_recovery_code")?;
    check_recovery_format(code)?;
    let mut data = s.data();
    let user = data.users.get_mut(user_id).ok_or_else(not_found_user)?;
    let t = user.totp.as_mut().filter(|t| t.verified).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "recovery_codes_not_found",
            "No recovery codes for this user.",
        )
    })?;
    let entry = spend_recovery_code(t, code)?;
    let f = factor(
        "recovery_codes",
        now(),
        Some((
            "recovery_code_factor",
            json!({"totp_recovery_code_id": entry}),
        )),
    );
    let totp_id = t.totp_id.clone();
    let mut reply = finish(&s, &mut data, &body, user_id, f)?;
    reply["totp_id"] = json!(totp_id);
    ok(reply)
}

pub(super) async fn recovery_codes(State(s): State<Arc<Stytch>>, bytes: Bytes) -> Reply {
    let body = object(&bytes)?;
    let user_id = required(&body, "user_id", "invalid_user_id")?;
    let data = s.data();
    let user = data.users.get(user_id).ok_or_else(not_found_user)?;
    let totps: Vec<Value> = user
        .totp
        .iter()
        .map(|t| {
            let codes = unused_codes(t);
            json!({"totp_id": t.totp_id, "verified": t.verified, "recovery_codes": codes})
        })
        .collect();
    ok(json!({"user_id": user_id, "totps": totps}))
}
