//! Member sessions: their JWTs, `POST /v1/b2b/sessions/authenticate`, `GET /v1/b2b/sessions`
//! and `POST /v1/b2b/sessions/revoke`.

use super::*;

/// Adds or refreshes a factor (one per type and delivery method).
pub(super) fn merge_factor(factors: &mut Vec<Value>, f: Value) {
    factors.retain(|x| x["type"] != f["type"] || x["delivery_method"] != f["delivery_method"]);
    factors.push(f);
}

impl MemberSession {
    /// Marks the session used; `minutes` (when given) sets its end from now.
    pub(super) fn refresh(&mut self, minutes: Option<i64>) {
        self.last_accessed_at = now();
        if let Some(m) = minutes {
            self.expires_at = now() + time::Duration::minutes(m);
        }
    }
}

pub(super) fn new_member_session(
    data: &mut B2bData,
    member_id: &str,
    minutes: i64,
    factors: Vec<Value>,
) -> String {
    let at = now();
    let session_id = format!("session-test-{}", uuid());
    let organization_id = data
        .members
        .get(member_id)
        .map(|m| m.organization_id.clone())
        .unwrap_or_default();
    let session = MemberSession {
        session_id: session_id.clone(),
        member_id: member_id.to_owned(),
        organization_id,
        token: secret_token(),
        started_at: at,
        last_accessed_at: at,
        expires_at: at + time::Duration::minutes(minutes),
        factors,
    };
    data.sessions.insert(session_id.clone(), session);
    session_id
}

/// Removes and returns the live intermediate session `token` of the member.
pub(super) fn take_intermediate(
    data: &mut B2bData,
    token: &str,
    organization_id: &str,
    member_id: &str,
) -> Result<Intermediate, Response> {
    let ist = data
        .intermediate
        .get(token)
        .filter(|i| i.expires_at > now())
        .ok_or_else(intermediate_not_found)?;
    if ist.organization_id != organization_id {
        return Err(bad(
            "invalid_intermediate_session_token_for_organization",
            "The intermediate session token belongs to another organization.",
        ));
    }
    if ist.member_id != member_id {
        return Err(intermediate_not_found());
    }
    data.intermediate
        .remove(token)
        .ok_or_else(intermediate_not_found)
}

fn session_json(data: &B2bData, s: &MemberSession) -> Value {
    let member = data.members.get(&s.member_id);
    let slug = data
        .organizations
        .get(&s.organization_id)
        .map_or("", |o| o.slug.as_str());
    json!({
        "member_session_id": s.session_id,
        "member_id": s.member_id,
        "organization_id": s.organization_id,
        "organization_slug": slug,
        "started_at": rfc3339(s.started_at),
        "last_accessed_at": rfc3339(s.last_accessed_at),
        "expires_at": rfc3339(s.expires_at),
        "authentication_factors": s.factors,
        "roles": member.map(roles_of).unwrap_or_default(),
        "custom_claims": {},
    })
}

impl SessionLike for MemberSession {
    fn token(&self) -> &str {
        &self.token
    }
    fn session_id(&self) -> &str {
        &self.session_id
    }
    fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }
}

impl Stytch {
    /// A member session JWT as Stytch issues it (§10.1), valid 300 s.
    fn member_jwt(&self, data: &B2bData, s: &MemberSession) -> String {
        let pid = &self.settings.project_id;
        let iat = now().unix_timestamp();
        let session = session_json(data, s);
        let keys = self.b2b.keys();
        let mut claims = session_claims(
            pid,
            &s.member_id,
            iat,
            json!({
                "id": s.session_id,
                "started_at": session["started_at"],
                "last_accessed_at": session["last_accessed_at"],
                "expires_at": session["expires_at"],
                "attributes": {"ip_address": "", "user_agent": ""},
                "authentication_factors": s.factors,
                "roles": session["roles"],
            }),
        );
        claims["https://stytch.com/organization"] = json!({
            "organization_id": s.organization_id,
            "slug": session["organization_slug"],
        });
        keys[keys.len() - 1].sign(&claims)
    }

    /// The live member session a body's `session_token` or `session_jwt` names, if it names one.
    pub(super) fn member_session_of(
        &self,
        data: &B2bData,
        body: &Map<String, Value>,
    ) -> Result<Option<String>, Response> {
        named_session(
            body,
            || self.b2b.keys(),
            &self.settings.project_id,
            &data.sessions,
        )
    }

    /// `{member_id, member, organization, member_session, session_token, session_jwt}`, with
    /// `member_session: null` and empty strings without a session.
    pub(super) fn member_session_reply(
        &self,
        data: &B2bData,
        member_id: &str,
        session_id: Option<&str>,
    ) -> Value {
        let mut reply = data.member_reply(member_id);
        match session_id.and_then(|id| data.sessions.get(id)) {
            Some(s) => {
                reply["member_session"] = session_json(data, s);
                reply["session_token"] = json!(s.token);
                reply["session_jwt"] = json!(self.member_jwt(data, s));
            }
            None => {
                reply["member_session"] = Value::Null;
                reply["session_token"] = json!("");
                reply["session_jwt"] = json!("");
            }
        }
        reply
    }
}

/// An `authorization_check`: the verdict, or 403. `stytch_admin` may do anything,
/// `stytch_member` act on `stytch.self` (the sandbox has no custom resources).
fn authorize(data: &B2bData, s: &MemberSession, check: &Value) -> Result<Value, Response> {
    let field = |k: &str| check[k].as_str().filter(|v| !v.is_empty());
    let (Some(org), Some(resource), Some(_action)) = (
        field("organization_id"),
        field("resource_id"),
        field("action"),
    ) else {
        return Err(bad(
            "invalid_request_body",
            "authorization_check needs organization_id, resource_id and action.",
        ));
    };
    if data.organization_id(org).ok().as_deref() != Some(s.organization_id.as_str()) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "session_authorization_tenancy_error",
            "The session does not belong to this organization.",
        ));
    }
    let roles = data
        .members
        .get(&s.member_id)
        .map(roles_of)
        .unwrap_or_default();
    let granting: Vec<String> = roles
        .into_iter()
        .filter(|r| r == ADMIN_ROLE || (r == MEMBER_ROLE && resource == "stytch.self"))
        .collect();
    if granting.is_empty() {
        return Err(error(
            StatusCode::FORBIDDEN,
            "session_authorization_error",
            "The member is not authorized to perform this action.",
        ));
    }
    Ok(json!({"authorized": true, "granting_roles": granting}))
}

pub(super) async fn authenticate_member_session(
    State(s): State<Arc<Stytch>>,
    bytes: Bytes,
) -> Reply {
    let body = object(&bytes)?;
    let minutes = duration_minutes(&body)?;
    let mut data = s.b2b.data();
    let id = s.member_session_of(&data, &body)?.ok_or_else(|| {
        bad(
            "no_session_arguments",
            "Provide one of session_token and session_jwt.",
        )
    })?;
    let verdict = match body.get("authorization_check") {
        Some(check) => Some(authorize(&data, &data.sessions[&id], check)?),
        None => None,
    };
    let session = data.sessions.get_mut(&id).ok_or_else(session_not_found)?;
    session.refresh(minutes);
    let member_id = session.member_id.clone();
    let mut reply = s.member_session_reply(&data, &member_id, Some(&id));
    if let Some(verdict) = verdict {
        reply["verdict"] = verdict;
    }
    ok(reply)
}

/// `GET /v1/b2b/sessions?organization_id=&member_id=`: the member's live sessions, oldest first.
pub(super) async fn get_member_sessions(
    State(s): State<Arc<Stytch>>,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Reply {
    let field = |k: &str| query.get(k).map(String::as_str).unwrap_or("");
    let data = s.b2b.data();
    let org = data.organization_id(field("organization_id"))?;
    let member = data.member_id(&org, field("member_id"))?;
    let mut sessions: Vec<&MemberSession> = data
        .sessions
        .values()
        .filter(|x| x.member_id == member && x.expires_at > now())
        .collect();
    sessions.sort_by_key(|x| x.started_at);
    let sessions: Vec<Value> = sessions
        .into_iter()
        .map(|x| session_json(&data, x))
        .collect();
    ok(json!({"member_sessions": sessions}))
}

/// Revokes one session (`member_session_id`, `session_token` or `session_jwt`) or all of a
/// member's (`member_id`).
pub(super) async fn revoke_member_session(State(s): State<Arc<Stytch>>, bytes: Bytes) -> Reply {
    let body = object(&bytes)?;
    let given = [
        "member_session_id",
        "session_token",
        "session_jwt",
        "member_id",
    ]
    .into_iter()
    .filter(|k| {
        body.get(*k)
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty())
    })
    .count();
    if given != 1 {
        let (kind, message) = match given {
            0 => (
                "no_session_revoke_arguments",
                "Provide a session or a member.",
            ),
            _ => (
                "too_many_session_revoke_arguments",
                "Provide one session or member.",
            ),
        };
        return Err(bad(kind, message));
    }
    let mut data = s.b2b.data();
    if let Some(member) = text(&body, "member_id")? {
        if !data.members.contains_key(member) {
            return Err(member_not_found());
        }
        data.sessions.retain(|_, x| x.member_id != member);
        return ok(json!({}));
    }
    let id = match text(&body, "member_session_id")? {
        Some(id) => id.to_owned(),
        None => s
            .member_session_of(&data, &body)?
            .ok_or_else(session_not_found)?,
    };
    data.sessions.remove(&id).ok_or_else(session_not_found)?;
    ok(json!({}))
}
