//! Organizations: `POST /v1/b2b/organizations`, `GET`/`PUT`/`DELETE
//! /v1/b2b/organizations/{organization_id}`.

use super::*;

/// The settings Stytch answers on every organization, with their defaults (RS11 `Organization`
/// requires each; the defaults are those its `CreateRequest` documents).
fn default_settings() -> Map<String, Value> {
    let defaults = json!({
        "organization_logo_url": "",
        "sso_jit_provisioning": "ALL_ALLOWED", "sso_jit_provisioning_allowed_connections": [],
        "sso_default_connection_id": null,
        "email_allowed_domains": [], "email_jit_provisioning": "NOT_ALLOWED",
        "email_invites": "ALL_ALLOWED",
        "auth_methods": "ALL_ALLOWED", "allowed_auth_methods": [],
        "mfa_policy": "OPTIONAL", "mfa_methods": "ALL_ALLOWED", "allowed_mfa_methods": [],
        "rbac_email_implicit_role_assignments": [],
        "oauth_tenant_jit_provisioning": "NOT_ALLOWED", "allowed_oauth_tenants": {},
        "claimed_email_domains": [],
        "first_party_connected_apps_allowed_type": "ALL_ALLOWED",
        "allowed_first_party_connected_apps": [],
        "third_party_connected_apps_allowed_type": "ALL_ALLOWED",
        "allowed_third_party_connected_apps": [],
    });
    match defaults {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

const ALL_RESTRICTED: &[&str] = &["ALL_ALLOWED", "RESTRICTED"];
const ALL_RESTRICTED_NOT: &[&str] = &["ALL_ALLOWED", "RESTRICTED", "NOT_ALLOWED"];

/// The settings that take one of a few values, and the error type of another value.
const ENUMS: &[(&str, &[&str], &str)] = &[
    (
        "mfa_policy",
        &["OPTIONAL", "REQUIRED_FOR_ALL"],
        "invalid_organization_mfa_policy",
    ),
    (
        "auth_methods",
        ALL_RESTRICTED,
        "invalid_organization_auth_method_settings",
    ),
    (
        "mfa_methods",
        ALL_RESTRICTED,
        "invalid_organization_mfa_factor_setting",
    ),
    (
        "sso_jit_provisioning",
        ALL_RESTRICTED_NOT,
        "invalid_organization_auth_factor_setting",
    ),
    (
        "email_jit_provisioning",
        &["RESTRICTED", "NOT_ALLOWED"],
        "invalid_organization_auth_factor_setting",
    ),
    (
        "email_invites",
        ALL_RESTRICTED_NOT,
        "invalid_organization_auth_factor_setting",
    ),
    (
        "oauth_tenant_jit_provisioning",
        &["RESTRICTED", "NOT_ALLOWED"],
        "invalid_organization_auth_factor_setting",
    ),
    (
        "first_party_connected_apps_allowed_type",
        ALL_RESTRICTED_NOT,
        "invalid_request_value",
    ),
    (
        "third_party_connected_apps_allowed_type",
        ALL_RESTRICTED_NOT,
        "invalid_request_value",
    ),
];

/// Applies the settings `body` gives (each checked against its default's type and, for the
/// enumerations, its values).
fn apply_settings(
    settings: &mut Map<String, Value>,
    body: &Map<String, Value>,
) -> Result<(), Response> {
    for (field, default) in default_settings() {
        let Some(given) = body.get(&field) else {
            continue;
        };
        let same_kind = match &default {
            Value::Null | Value::String(_) => given.is_string(),
            Value::Array(_) => given.is_array(),
            _ => given.is_object(),
        };
        if !same_kind {
            return Err(bad(
                "invalid_request_body",
                &format!("{field} has the wrong type."),
            ));
        }
        if let Some((_, allowed, error_type)) = ENUMS.iter().find(|(f, ..)| *f == field)
            && !given.as_str().is_some_and(|v| allowed.contains(&v))
        {
            return Err(bad(
                error_type,
                &format!("{field} must be one of {}.", allowed.join(", ")),
            ));
        }
        settings.insert(field, given.clone());
    }
    Ok(())
}

pub(super) fn organization_json(o: &Organization) -> Value {
    let mut org = json!({
        "organization_id": o.organization_id,
        "organization_name": o.name,
        "organization_slug": o.slug,
        "organization_external_id": o.external_id,
        "trusted_metadata": o.trusted_metadata,
        "sso_active_connections": [],
        "scim_active_connection": null,
        "custom_roles": [],
        "created_at": rfc3339(o.created_at),
        "updated_at": rfc3339(o.updated_at),
    });
    for (k, v) in &o.settings {
        org[k] = v.clone();
    }
    org
}

/// `organization_name`, if given: 1 to 128 characters.
fn organization_name(body: &Map<String, Value>) -> Result<Option<String>, Response> {
    match text(body, "organization_name")? {
        None => Ok(None),
        Some(n) if (1..=128).contains(&n.trim().chars().count()) => Ok(Some(n.to_owned())),
        Some(_) => Err(bad(
            "invalid_organization_name",
            "organization_name must have 1 to 128 characters.",
        )),
    }
}

/// `organization_slug`, if given: 2 to 128 alphanumerics or `-._~`, not another's.
fn organization_slug(
    data: &B2bData,
    body: &Map<String, Value>,
    own_id: &str,
) -> Result<Option<String>, Response> {
    let Some(slug) = text(body, "organization_slug")? else {
        return Ok(None);
    };
    let valid = (2..=128).contains(&slug.chars().count())
        && slug
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
    if !valid {
        return Err(bad(
            "invalid_organization_slug",
            "organization_slug must have 2 to 128 alphanumerics or - . _ ~.",
        ));
    }
    if data
        .organizations
        .values()
        .any(|o| o.slug == slug && o.organization_id != own_id)
    {
        return Err(bad(
            "organization_slug_already_used",
            "Another organization has this slug.",
        ));
    }
    Ok(Some(slug.to_owned()))
}

pub(super) async fn create_organization(State(s): State<Arc<Stytch>>, bytes: Bytes) -> Reply {
    let body = object(&bytes)?;
    let name = organization_name(&body)?.ok_or_else(|| {
        bad(
            "organization_name_missing",
            "organization_name is required.",
        )
    })?;
    let mut settings = default_settings();
    apply_settings(&mut settings, &body)?;
    let mut trusted_metadata = Map::new();
    merge_metadata(&mut trusted_metadata, &body, "trusted_metadata")?;
    let external_id = text(&body, "organization_external_id")?.unwrap_or("");
    let (id, org) = {
        let mut data = s.b2b.data();
        // The create page calls the slug required, the SDKs optional: required here (OQ15).
        let slug = organization_slug(&data, &body, "")?.ok_or_else(|| {
            bad(
                "invalid_organization_slug",
                "organization_slug is required.",
            )
        })?;
        let at = now();
        let org = Organization {
            organization_id: format!("organization-test-{}", uuid()),
            name,
            slug,
            external_id: external_id.to_owned(),
            settings,
            trusted_metadata,
            created_at: at,
            updated_at: at,
        };
        let json = organization_json(&org);
        let id = org.organization_id.clone();
        data.organizations.insert(id.clone(), org);
        (id, json)
    };
    organization_changed(&s, "CREATE", &id, org)
}

/// Sends the organization event `action` and answers the organization.
fn organization_changed(s: &Stytch, action: &str, id: &str, org: Value) -> Reply {
    s.emit_b2b("organization", action, id, Some(org.clone()));
    ok(json!({"organization": org}))
}

pub(super) async fn get_organization(
    State(s): State<Arc<Stytch>>,
    Path(key): Path<String>,
) -> Reply {
    let data = s.b2b.data();
    let id = data.organization_id(&key)?;
    ok(json!({"organization": data.organization_json(&id)}))
}

pub(super) async fn update_organization(
    State(s): State<Arc<Stytch>>,
    Path(key): Path<String>,
    bytes: Bytes,
) -> Reply {
    let body = object(&bytes)?;
    let name = organization_name(&body)?;
    let (id, org) = {
        let mut data = s.b2b.data();
        let id = data.organization_id(&key)?;
        let slug = organization_slug(&data, &body, &id)?;
        let external_id = text(&body, "organization_external_id")?;
        let o = data
            .organizations
            .get_mut(&id)
            .ok_or_else(organization_not_found)?;
        let mut settings = o.settings.clone();
        apply_settings(&mut settings, &body)?;
        merge_metadata(&mut o.trusted_metadata, &body, "trusted_metadata")?;
        o.settings = settings;
        o.name = name.unwrap_or_else(|| o.name.clone());
        o.slug = slug.unwrap_or_else(|| o.slug.clone());
        o.external_id = external_id.map_or_else(|| o.external_id.clone(), str::to_owned);
        o.updated_at = now();
        (id, organization_json(o))
    };
    organization_changed(&s, "UPDATE", &id, org)
}

/// Deletes the organization with its members and their sessions (one organization event, OQ14).
pub(super) async fn delete_organization(
    State(s): State<Arc<Stytch>>,
    Path(key): Path<String>,
) -> Reply {
    let id = {
        let mut data = s.b2b.data();
        let id = data.organization_id(&key)?;
        data.organizations.remove(&id);
        data.members.retain(|_, m| m.organization_id != id);
        data.sessions.retain(|_, x| x.organization_id != id);
        data.intermediate.retain(|_, x| x.organization_id != id);
        id
    };
    s.emit_b2b("organization", "DELETE", &id, None);
    ok(json!({"organization_id": id}))
}
