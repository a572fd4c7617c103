//! Members: `POST /v1/b2b/organizations/{organization_id}/members`, `GET
//! .../{organization_id}/member?member_id=|email_address=`, `PUT`/`DELETE
//! .../{organization_id}/members/{member_id}` and `DELETE .../members/{member_id}/totp`.

use super::*;

/// The explicit roles a body assigns (`roles`), if it names any.
fn explicit_roles(body: &Map<String, Value>) -> Result<Option<Vec<String>>, Response> {
    let Some(list) = body.get("roles") else {
        return Ok(None);
    };
    let list = list
        .as_array()
        .ok_or_else(|| bad("invalid_request_body", "roles must be a list of role ids."))?;
    let mut roles = Vec::new();
    for role in list {
        let role = role
            .as_str()
            .ok_or_else(|| bad("invalid_request_body", "roles must be a list of role ids."))?;
        if role == MEMBER_ROLE {
            return Err(bad(
                "cannot_assign_default_rbac_role_id",
                "stytch_member is granted to every member and cannot be assigned.",
            ));
        }
        if role != ADMIN_ROLE {
            return Err(bad(
                "invalid_rbac_role_id",
                &format!("The role {role} does not exist in this project."),
            ));
        }
        if !roles.iter().any(|r| r == role) {
            roles.push(role.to_owned());
        }
    }
    Ok(Some(roles))
}

/// `mfa_phone_number`, if given: E.164, or empty to remove it.
fn mfa_phone(body: &Map<String, Value>) -> Result<Option<String>, Response> {
    let Some(p) = text(body, "mfa_phone_number")? else {
        return Ok(None);
    };
    let e164 = p.starts_with('+') && p.len() >= 8 && p[1..].chars().all(|c| c.is_ascii_digit());
    if !p.is_empty() && !e164 {
        return Err(bad(
            "invalid_phone_number",
            "Phone number format is invalid.",
        ));
    }
    Ok(Some(p.to_owned()))
}

/// `email_address` (required when `needed`), not another member's of the organization.
fn member_email(
    data: &B2bData,
    body: &Map<String, Value>,
    organization_id: &str,
    own_id: &str,
) -> Result<Option<String>, Response> {
    let Some(email) = text(body, "email_address")? else {
        return Ok(None);
    };
    if !email.contains('@') || email.starts_with('@') || email.ends_with('@') {
        return Err(bad("invalid_email", "Email format is invalid."));
    }
    if data
        .member_by_email(organization_id, email)
        .is_some_and(|id| id != own_id)
    {
        return Err(bad(
            "duplicate_member_email",
            "A member with this email already exists in the organization.",
        ));
    }
    Ok(Some(email.to_owned()))
}

/// Creates a member of `organization_id` from a create (or password migrate) body.
pub(super) fn new_member(
    data: &mut B2bData,
    organization_id: &str,
    body: &Map<String, Value>,
) -> Result<String, Response> {
    let email = member_email(data, body, organization_id, "")?
        .ok_or_else(|| bad("invalid_email", "email_address is required."))?;
    let roles = explicit_roles(body)?.unwrap_or_default();
    let mfa_phone_number = mfa_phone(body)?.unwrap_or_default();
    let pending = flag(body, "create_member_as_pending")?.unwrap_or(false);
    let mut trusted_metadata = Map::new();
    merge_metadata(&mut trusted_metadata, body, "trusted_metadata")?;
    let mut untrusted_metadata = Map::new();
    merge_metadata(&mut untrusted_metadata, body, "untrusted_metadata")?;
    let at = now();
    let member = Member {
        member_id: format!("member-test-{}", uuid()),
        organization_id: organization_id.to_owned(),
        email_address: email,
        email_address_verified: false,
        status: if pending { "pending" } else { "active" },
        name: text(body, "name")?.unwrap_or("").to_owned(),
        roles,
        is_breakglass: flag(body, "is_breakglass")?.unwrap_or(false),
        mfa_phone_number,
        mfa_enrolled: flag(body, "mfa_enrolled")?.unwrap_or(false),
        default_mfa_method: String::new(),
        password: None,
        totp: None,
        trusted_metadata,
        untrusted_metadata,
        external_id: text(body, "external_id")?.unwrap_or("").to_owned(),
        created_at: at,
        updated_at: at,
    };
    let id = member.member_id.clone();
    data.members.insert(id.clone(), member);
    Ok(id)
}

/// Applies an update (or password migrate) body to a member: what it names changes, the rest
/// stays; `roles` replaces the explicit roles.
pub(super) fn apply_update(
    data: &mut B2bData,
    member_id: &str,
    body: &Map<String, Value>,
) -> Result<(), Response> {
    let organization_id = data.member(member_id)?.organization_id.clone();
    let email = member_email(data, body, &organization_id, member_id)?;
    let roles = explicit_roles(body)?;
    let phone = mfa_phone(body)?;
    let (enrolled, breakglass) = (flag(body, "mfa_enrolled")?, flag(body, "is_breakglass")?);
    let name = text(body, "name")?.map(str::to_owned);
    let external_id = text(body, "external_id")?.map(str::to_owned);
    let m = data.member(member_id)?;
    let mut trusted = m.trusted_metadata.clone();
    merge_metadata(&mut trusted, body, "trusted_metadata")?;
    merge_metadata(&mut m.untrusted_metadata, body, "untrusted_metadata")?;
    m.trusted_metadata = trusted;
    if let Some(email) = email.filter(|e| !e.eq_ignore_ascii_case(&m.email_address)) {
        m.email_address = email;
        m.email_address_verified = false;
    }
    m.roles = roles.unwrap_or_else(|| m.roles.clone());
    m.mfa_phone_number = phone.unwrap_or_else(|| m.mfa_phone_number.clone());
    m.mfa_enrolled = enrolled.unwrap_or(m.mfa_enrolled);
    m.is_breakglass = breakglass.unwrap_or(m.is_breakglass);
    m.name = name.unwrap_or_else(|| m.name.clone());
    m.external_id = external_id.unwrap_or_else(|| m.external_id.clone());
    Ok(())
}

pub(super) async fn create_member(
    State(s): State<Arc<Stytch>>,
    Path(organization): Path<String>,
    bytes: Bytes,
) -> Reply {
    let body = object(&bytes)?;
    let reply = {
        let mut data = s.b2b.data();
        let org = data.organization_id(&organization)?;
        let id = new_member(&mut data, &org, &body)?;
        data.member_reply(&id)
    };
    let id = reply["member_id"].as_str().unwrap_or_default();
    s.emit_b2b("member", "CREATE", id, Some(reply["member"].clone()));
    ok(reply)
}

pub(super) async fn get_member(
    State(s): State<Arc<Stytch>>,
    Path(organization): Path<String>,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Reply {
    let data = s.b2b.data();
    let org = data.organization_id(&organization)?;
    let id = match (query.get("member_id"), query.get("email_address")) {
        (Some(id), _) if !id.is_empty() => data.member_id(&org, id)?,
        (_, Some(email)) if !email.is_empty() => data
            .member_by_email(&org, email)
            .ok_or_else(member_not_found)?,
        _ => {
            return Err(bad(
                "invalid_member_get_fields",
                "Provide a member_id or an email_address.",
            ));
        }
    };
    ok(data.member_reply(&id))
}

pub(super) async fn update_member(
    State(s): State<Arc<Stytch>>,
    Path((organization, member)): Path<(String, String)>,
    bytes: Bytes,
) -> Reply {
    let body = object(&bytes)?;
    change_member(&s, &organization, &member, |data, id| {
        apply_update(data, id, &body)
    })
}

/// Changes `organization`'s member `member` with `change` and answers the member, sending
/// `member.UPDATE` when it changed.
fn change_member(
    s: &Stytch,
    organization: &str,
    member: &str,
    change: impl FnOnce(&mut B2bData, &str) -> Result<(), Response>,
) -> Reply {
    let (reply, changed) = {
        let mut data = s.b2b.data();
        let org = data.organization_id(organization)?;
        let id = data.member_id(&org, member)?;
        let before = data.member_json(&id);
        change(&mut data, &id)?;
        let changed = data.touched(&id, &before);
        (data.member_reply(&id), changed)
    };
    s.member_updated(reply, changed)
}

impl Stytch {
    /// Answers `reply` (naming its `member_id`), first sending `member.UPDATE` with the member
    /// as it now is when it `changed`.
    pub(super) fn member_updated(&self, reply: Value, changed: Option<Value>) -> Reply {
        if let Some(m) = changed {
            self.emit_b2b(
                "member",
                "UPDATE",
                reply["member_id"].as_str().unwrap_or_default(),
                Some(m),
            );
        }
        ok(reply)
    }
}

pub(super) async fn delete_member(
    State(s): State<Arc<Stytch>>,
    Path((organization, member)): Path<(String, String)>,
) -> Reply {
    let id = {
        let mut data = s.b2b.data();
        let org = data.organization_id(&organization)?;
        let id = data.member_id(&org, &member)?;
        data.members.remove(&id);
        data.drop_sessions(|m| m == id);
        id
    };
    s.emit_b2b("member", "DELETE", &id, None);
    ok(json!({"member_id": id}))
}

/// Removes the member's TOTP registration (pending or verified); sessions stay.
pub(super) async fn delete_member_totp(
    State(s): State<Arc<Stytch>>,
    Path((organization, member)): Path<(String, String)>,
) -> Reply {
    change_member(&s, &organization, &member, |data, id| {
        let m = data.member(id)?;
        m.totp.take().ok_or_else(totp_not_found)?;
        if m.default_mfa_method == "totp" {
            m.default_mfa_method.clear();
        }
        Ok(())
    })
}
