//! Passwords: `POST /v1/b2b/passwords/migrate` (a bcrypt hash; creates the member if absent)
//! and `POST /v1/b2b/passwords/authenticate` (organization-scoped, with MFA).

use super::*;

pub(super) async fn migrate_password(State(s): State<Arc<Stytch>>, bytes: Bytes) -> Reply {
    let body = object(&bytes)?;
    let organization = required(&body, "organization_id", "invalid_organization_id")?;
    let email = required(&body, "email_address", "invalid_email")?;
    let hash = required(&body, "hash", "invalid_hash")?;
    if text(&body, "hash_type")? != Some("bcrypt") {
        return Err(bad(
            "invalid_hash_type",
            "The sandbox migrates bcrypt hashes only (hash_type \"bcrypt\").",
        ));
    }
    if hash.parse::<bcrypt::HashParts>().is_err() {
        return Err(bad("invalid_bcrypt_hash", "The hash is not a bcrypt hash."));
    }
    let (reply, event) = {
        let mut data = s.b2b.data();
        let org = data.organization_id(organization)?;
        let (id, before) = match data.member_by_email(&org, email) {
            Some(id) => {
                let before = data.member_json(&id);
                apply_update(&mut data, &id, &body)?;
                (id, Some(before))
            }
            None => (new_member(&mut data, &org, &body)?, None),
        };
        let m = data.member(&id)?;
        m.password = Some((format!("member-password-test-{}", uuid()), hash.to_owned()));
        m.email_address_verified = true;
        let event = match &before {
            Some(before) => data.touched(&id, before).map(|m| ("UPDATE", m)),
            None => Some(("CREATE", data.member_json(&id))),
        };
        let mut reply = data.member_reply(&id);
        reply["member_created"] = json!(before.is_none());
        (reply, event)
    };
    if let Some((action, member)) = event {
        let id = reply["member_id"].as_str().unwrap_or_default();
        s.emit_b2b("member", action, id, Some(member));
    }
    ok(reply)
}

fn wrong_credentials() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "unauthorized_credentials",
        "Unauthorized credentials.",
    )
}

pub(super) async fn authenticate_member_password(
    State(s): State<Arc<Stytch>>,
    bytes: Bytes,
) -> Reply {
    let body = object(&bytes)?;
    let organization = required(&body, "organization_id", "invalid_organization_id")?;
    let email = required(&body, "email_address", "invalid_email")?;
    let password = required(&body, "password", "unauthorized_credentials")?.to_owned();
    duration_minutes(&body)?;
    let (member_id, hash) = {
        let data = s.b2b.data();
        let org = data.organization_id(organization)?;
        let id = data
            .member_by_email(&org, email)
            .ok_or_else(member_not_found)?;
        let hash = data.members[&id].password.as_ref().map(|(_, h)| h.clone());
        (id, hash.ok_or_else(wrong_credentials)?)
    };
    // bcrypt is slow by design: off the async workers, and without the lock.
    let matches = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
        .await
        .is_ok_and(|r| r.unwrap_or(false));
    if !matches {
        return Err(wrong_credentials());
    }
    let (reply, activated) = {
        let mut data = s.b2b.data();
        let before = data.member_json(&member_id);
        data.member(&member_id)?.status = "active";
        let activated = data.touched(&member_id, &before);
        (s.password_login(&mut data, &member_id, &body)?, activated)
    };
    if let Some(m) = activated {
        s.emit_b2b("member", "UPDATE", &member_id, Some(m));
    }
    ok(reply)
}

impl Stytch {
    /// After a right password: a member session (the one passed in gains the factor), or, when
    /// MFA is required and no session was passed, an intermediate session.
    fn password_login(
        &self,
        data: &mut B2bData,
        member_id: &str,
        body: &Map<String, Value>,
    ) -> Result<Value, Response> {
        let minutes = duration_minutes(body)?;
        let password = factor("password", now(), None);
        let organization_id = data.member(member_id)?.organization_id.clone();
        if let Some(id) = self.member_session_of(data, body)? {
            let session = data.sessions.get_mut(&id).ok_or_else(session_not_found)?;
            if session.member_id != member_id {
                return Err(session_not_found());
            }
            merge_factor(&mut session.factors, password);
            session.refresh(minutes);
            return Ok(self.login_reply(data, member_id, Some(&id), None));
        }
        let mut factors = match text(body, "intermediate_session_token")? {
            Some(token) if !token.is_empty() => {
                take_intermediate(data, token, &organization_id, member_id)?.factors
            }
            _ => Vec::new(),
        };
        merge_factor(&mut factors, password);
        if data.mfa_required(member_id) {
            let token = format!("ist-test-{}", secret_token());
            let expires_at = now() + time::Duration::minutes(INTERMEDIATE_MINUTES);
            let ist = Intermediate {
                member_id: member_id.to_owned(),
                organization_id,
                factors,
                expires_at,
            };
            data.intermediate.insert(token.clone(), ist);
            return Ok(self.login_reply(data, member_id, None, Some((&token, expires_at))));
        }
        let id = new_member_session(data, member_id, minutes.unwrap_or(60), factors);
        Ok(self.login_reply(data, member_id, Some(&id), None))
    }

    /// The password authenticate answer: logged in (`session`) or waiting for MFA (`ist`).
    fn login_reply(
        &self,
        data: &B2bData,
        member_id: &str,
        session: Option<&str>,
        ist: Option<(&str, OffsetDateTime)>,
    ) -> Value {
        let mut reply = self.member_session_reply(data, member_id, session);
        reply["organization_id"] = reply["organization"]["organization_id"].clone();
        reply["member_authenticated"] = json!(session.is_some());
        reply["intermediate_session_token"] = json!(ist.map_or("", |(t, _)| t));
        reply["intermediate_session_token_expires_at"] = json!(ist.map(|(_, at)| rfc3339(at)));
        reply["mfa_required"] = match ist {
            Some(_) => json!({
                "member_options": {
                    "mfa_phone_number": reply["member"]["mfa_phone_number"],
                    "totp_registration_id": reply["member"]["totp_registration_id"],
                },
                "secondary_auth_initiated": null,
            }),
            None => Value::Null,
        };
        reply["primary_required"] = Value::Null;
        reply
    }
}
