//! Stytch B2B (docs/stytch-api.md §10), held to the official Rust crate's B2B client:
//! organizations, members and their roles, passwords (bcrypt migration and the
//! organization-scoped login, with MFA through an intermediate session), member sessions and
//! their JWTs (a JWKS of their own at `/v1/b2b/sessions/jwks/{project_id}`), B2B TOTP and
//! recovery codes, and Svix-signed `direct.member.*` / `direct.organization.*` webhooks.
//!
//! Readings where §10 leaves a choice, strict where the real service might be:
//! - one project id and secret serve both verticals (the SDKs only change the JWKS path), but
//!   the B2B keys are not the consumer keys (a B2B project is a project of its own), so a member
//!   JWT never verifies against `/v1/sessions/jwks/` and no consumer JWT is a member session;
//! - `organization_slug` is required on create (OQ15); ids, slugs and external ids all name an
//!   organization, ids and external ids a member;
//! - `stytch_member` is implicit and listed first in `member.roles` (source `direct_assignment`,
//!   `details: {}`, as the Svix sample shows); assigning it answers 400
//!   `cannot_assign_default_rbac_role_id` (OQ13); the only other role is `stytch_admin` (no
//!   custom roles); `roles` on update replaces the explicit list; sessions read the member's
//!   current roles. `authorization_check`: `stytch_admin` may do anything, `stytch_member` only
//!   act on `stytch.self`; another organization is 403 `session_authorization_tenancy_error`,
//!   a missing permission 403 `session_authorization_error`;
//! - passwords: `hash_type` `bcrypt` only (400 `invalid_hash_type` otherwise, 400
//!   `invalid_bcrypt_hash` for a malformed hash); migrate creates the member if absent and
//!   verifies its e-mail. Login: an unknown e-mail is 404 `member_not_found`, a wrong or absent
//!   password 401 `unauthorized_credentials`; a pending member becomes active;
//! - MFA is required when the organization's `mfa_policy` is `REQUIRED_FOR_ALL` or the member is
//!   `mfa_enrolled`, whatever factors the member holds: the login then answers
//!   `member_authenticated: false`, an intermediate session token valid 10 minutes, empty
//!   session strings and `member_session: null` (OQ16). A live session of the member passed in
//!   skips MFA and gains the password factor;
//! - TOTP/recovery-code authentication needs the member's session (a step-up: the factor joins
//!   it, `session_duration_minutes` sets its end, else it keeps it) or its intermediate session
//!   token (turned into a member session, 60 minutes unless given), never neither (400
//!   `action_available_only_once_primary_authentication_is_met`); factors carry `type`,
//!   `delivery_method` and times only, no detail object (OQ11);
//! - a TOTP registration shows in `member.totp_registration_id` once verified; a second create
//!   meets 400 `active_totp_exists` (verified) or `pending_totp_exists` (pending, as consumers);
//!   recovery codes are listed and rotated only for a verified registration;
//! - unknown, revoked or expired sessions are 404 `session_not_found` (OQ10); an unknown or
//!   expired intermediate token 404 `intermediate_session_not_found`;
//! - webhooks go to the same endpoint as the consumer ones: `member` and `organization`
//!   CREATE/UPDATE/DELETE, `vertical: "B2B"`; an UPDATE whenever the member object changes
//!   (update, password migrate of an existing member, TOTP verified or deleted, `mfa_enrolled`
//!   or default method set, pending to active; OQ18); deleting an organization emits its DELETE
//!   alone, not one per member (OQ14); custom session claims are not modelled.

use super::*;
use axum::routing::put;

mod members;
mod organizations;
mod passwords;
mod sessions;
mod totps;

use members::*;
use organizations::*;
use passwords::*;
use sessions::*;
use totps::*;

/// The role every member holds implicitly.
const MEMBER_ROLE: &str = "stytch_member";
/// The assignable administrator role.
const ADMIN_ROLE: &str = "stytch_admin";
/// Lifetime of an intermediate session.
const INTERMEDIATE_MINUTES: i64 = 10;

/// The B2B state of the sandbox.
#[derive(Default)]
pub(super) struct B2b {
    data: Mutex<B2bData>,
    /// The B2B project's signing keys, made on first use; the last one signs.
    keys: Mutex<Vec<Arc<Signer>>>,
}

#[derive(Default)]
struct B2bData {
    organizations: HashMap<String, Organization>,
    members: HashMap<String, Member>,
    sessions: HashMap<String, MemberSession>,
    /// Intermediate sessions, by token.
    intermediate: HashMap<String, Intermediate>,
}

struct Organization {
    organization_id: String,
    name: String,
    slug: String,
    external_id: String,
    /// The policy settings as Stytch answers them (defaults filled in).
    settings: Map<String, Value>,
    trusted_metadata: Map<String, Value>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

struct Member {
    member_id: String,
    organization_id: String,
    email_address: String,
    email_address_verified: bool,
    /// `active` or `pending`.
    status: &'static str,
    name: String,
    /// Explicitly assigned roles (`stytch_member` is implicit).
    roles: Vec<String>,
    is_breakglass: bool,
    mfa_phone_number: String,
    mfa_enrolled: bool,
    default_mfa_method: String,
    /// `(member_password_id, bcrypt hash)`.
    password: Option<(String, String)>,
    totp: Option<Totp>,
    trusted_metadata: Map<String, Value>,
    untrusted_metadata: Map<String, Value>,
    external_id: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

struct MemberSession {
    session_id: String,
    member_id: String,
    organization_id: String,
    token: String,
    started_at: OffsetDateTime,
    last_accessed_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    factors: Vec<Value>,
}

/// A primary factor waiting for MFA.
struct Intermediate {
    member_id: String,
    organization_id: String,
    factors: Vec<Value>,
    expires_at: OffsetDateTime,
}

impl B2b {
    fn data(&self) -> std::sync::MutexGuard<'_, B2bData> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The signing keys (one is made on first use).
    fn keys(&self) -> Vec<Arc<Signer>> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if keys.is_empty() {
            keys.push(Arc::new(Signer::generate(format!("jwk-test-{}", uuid()))));
        }
        keys.clone()
    }
}

fn not_found(error_type: &str, what: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        error_type,
        &format!("{what} could not be found."),
    )
}

fn organization_not_found() -> Response {
    not_found("organization_not_found", "Organization")
}

fn member_not_found() -> Response {
    not_found("member_not_found", "Member")
}

fn session_not_found() -> Response {
    not_found("session_not_found", "Session")
}

fn intermediate_not_found() -> Response {
    not_found("intermediate_session_not_found", "Intermediate session")
}

/// A random opaque token (session and intermediate session tokens).
fn secret_token() -> String {
    let mut token = [0u8; 33];
    let _ = aws_lc_rs::rand::fill(&mut token);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token)
}

/// A boolean field, if present.
fn flag(body: &Map<String, Value>, field: &str) -> Result<Option<bool>, Response> {
    match body.get(field) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(bad(
            "invalid_request_body",
            &format!("{field} must be a boolean."),
        )),
    }
}

/// The member's roles as sessions and JWTs list them: `stytch_member`, then the explicit ones.
fn roles_of(m: &Member) -> Vec<String> {
    std::iter::once(MEMBER_ROLE.to_owned())
        .chain(m.roles.iter().filter(|r| *r != MEMBER_ROLE).cloned())
        .collect()
}

fn member_json(m: &Member) -> Value {
    let roles: Vec<Value> = roles_of(m)
        .iter()
        .map(|id| json!({"role_id": id, "sources": [{"type": "direct_assignment", "details": {}}]}))
        .collect();
    let totp_id = m
        .totp
        .as_ref()
        .filter(|t| t.verified)
        .map(|t| t.totp_id.as_str());
    json!({
        "organization_id": m.organization_id, "member_id": m.member_id,
        "email_address": m.email_address, "email_address_verified": m.email_address_verified,
        "status": m.status, "name": m.name, "roles": roles,
        "is_admin": m.roles.iter().any(|r| r == ADMIN_ROLE),
        "is_breakglass": m.is_breakglass, "is_locked": false,
        "member_password_id": m.password.as_ref().map(|(id, _)| id.as_str()).unwrap_or(""),
        "totp_registration_id": totp_id.unwrap_or(""),
        "mfa_enrolled": m.mfa_enrolled, "mfa_phone_number": m.mfa_phone_number,
        "mfa_phone_number_verified": false, "default_mfa_method": m.default_mfa_method,
        "sso_registrations": [], "oauth_registrations": [], "retired_email_addresses": [],
        "trusted_metadata": m.trusted_metadata, "untrusted_metadata": m.untrusted_metadata,
        "created_at": rfc3339(m.created_at), "updated_at": rfc3339(m.updated_at),
        "scim_registration": null, "external_id": m.external_id,
        "lock_created_at": null, "lock_expires_at": null,
    })
}

impl B2bData {
    /// The id of the organization `key` names (its id, slug or external id).
    fn organization_id(&self, key: &str) -> Result<String, Response> {
        self.organizations
            .values()
            .find(|o| o.organization_id == key || o.slug == key || o.external_id == key)
            .map(|o| o.organization_id.clone())
            .ok_or_else(organization_not_found)
    }

    /// The id of the member of `organization_id` that `key` names (its id or external id).
    fn member_id(&self, organization_id: &str, key: &str) -> Result<String, Response> {
        self.members
            .values()
            .find(|m| {
                m.organization_id == organization_id && (m.member_id == key || m.external_id == key)
            })
            .map(|m| m.member_id.clone())
            .ok_or_else(member_not_found)
    }

    /// The organization and member a body's `organization_id` and `member_id` name.
    fn target(&self, body: &Map<String, Value>) -> Result<(String, String), Response> {
        let org = required(body, "organization_id", "invalid_organization_id")?;
        let member = required(body, "member_id", "invalid_member_id")?;
        let org = self.organization_id(org)?;
        let member = self.member_id(&org, member)?;
        Ok((org, member))
    }

    /// The member of `organization_id` with `email` (case-insensitive).
    fn member_by_email(&self, organization_id: &str, email: &str) -> Option<String> {
        self.members
            .values()
            .find(|m| {
                m.organization_id == organization_id && m.email_address.eq_ignore_ascii_case(email)
            })
            .map(|m| m.member_id.clone())
    }

    fn member(&mut self, member_id: &str) -> Result<&mut Member, Response> {
        self.members.get_mut(member_id).ok_or_else(member_not_found)
    }

    fn member_json(&self, member_id: &str) -> Value {
        self.members
            .get(member_id)
            .map(member_json)
            .unwrap_or(Value::Null)
    }

    fn organization_json(&self, organization_id: &str) -> Value {
        self.organizations
            .get(organization_id)
            .map(organization_json)
            .unwrap_or(Value::Null)
    }

    /// `{member_id, member, organization}`.
    fn member_reply(&self, member_id: &str) -> Value {
        let org = self
            .members
            .get(member_id)
            .map(|m| m.organization_id.clone())
            .unwrap_or_default();
        json!({
            "member_id": member_id,
            "member": self.member_json(member_id),
            "organization": self.organization_json(&org),
        })
    }

    /// Marks the member updated if its object differs from `before`; its new object if so.
    fn touched(&mut self, member_id: &str, before: &Value) -> Option<Value> {
        if self.member_json(member_id) == *before {
            return None;
        }
        let m = self.members.get_mut(member_id)?;
        m.updated_at = now();
        Some(member_json(m))
    }

    /// Whether logging in needs a second factor.
    fn mfa_required(&self, member_id: &str) -> bool {
        let Some(m) = self.members.get(member_id) else {
            return false;
        };
        let policy = self
            .organizations
            .get(&m.organization_id)
            .and_then(|o| o.settings.get("mfa_policy"))
            .and_then(Value::as_str);
        m.mfa_enrolled || policy == Some("REQUIRED_FOR_ALL")
    }

    /// Removes every session and intermediate session of the members `gone` selects.
    fn drop_sessions(&mut self, gone: impl Fn(&str) -> bool) {
        self.sessions.retain(|_, s| !gone(&s.member_id));
        self.intermediate.retain(|_, i| !gone(&i.member_id));
    }
}

/// Fails unless the member is active.
fn active(m: &Member) -> Result<(), Response> {
    if m.status == "active" {
        return Ok(());
    }
    Err(bad(
        "action_available_only_for_active_members",
        "This action is available only for active members.",
    ))
}

impl Stytch {
    /// A `direct.{object_type}.{action}` event of the B2B vertical.
    fn emit_b2b(&self, object_type: &str, action: &str, id: &str, object: Option<Value>) {
        let mut event = json!({
            "action": action,
            "event_id": format!("webhook-event-test-{}", uuid()),
            "id": id,
            "object_type": object_type,
            "project_id": self.settings.project_id,
            "source": "DIRECT",
            "timestamp": now().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "vertical": "B2B",
        });
        if let Some(object) = object {
            event[object_type] = object;
        }
        let event_type = format!("direct.{object_type}.{}", action.to_lowercase());
        self.deliver(event_type, &event);
    }
}

/// `GET /v1/b2b/sessions/jwks/{project_id}`: the B2B keys (no authentication needed).
pub(super) async fn jwks(State(s): State<Arc<Stytch>>, Path(project_id): Path<String>) -> Reply {
    if project_id != s.settings.project_id {
        return Err(not_found("project_not_found", "Project"));
    }
    ok(jwks_of(&s.b2b.keys()))
}

/// The B2B routes (all behind Basic auth; the JWKS is routed apart).
pub(super) fn routes() -> axum::Router<Arc<Stytch>> {
    let orgs = "/v1/b2b/organizations";
    axum::Router::new()
        .route(orgs, post(create_organization))
        .route(
            &format!("{orgs}/{{organization_id}}"),
            get(get_organization)
                .put(update_organization)
                .delete(delete_organization),
        )
        .route(
            &format!("{orgs}/{{organization_id}}/members"),
            post(create_member),
        )
        .route(
            &format!("{orgs}/{{organization_id}}/member"),
            get(get_member),
        )
        .route(
            &format!("{orgs}/{{organization_id}}/members/{{member_id}}"),
            put(update_member).delete(delete_member),
        )
        .route(
            &format!("{orgs}/{{organization_id}}/members/{{member_id}}/totp"),
            delete(delete_member_totp),
        )
        .route("/v1/b2b/passwords/migrate", post(migrate_password))
        .route(
            "/v1/b2b/passwords/authenticate",
            post(authenticate_member_password),
        )
        .route("/v1/b2b/sessions", get(get_member_sessions))
        .route(
            "/v1/b2b/sessions/authenticate",
            post(authenticate_member_session),
        )
        .route("/v1/b2b/sessions/revoke", post(revoke_member_session))
        .route("/v1/b2b/totp", post(create_member_totp))
        .route("/v1/b2b/totp/authenticate", post(authenticate_member_totp))
        .route("/v1/b2b/recovery_codes/recover", post(recover))
        .route("/v1/b2b/recovery_codes/rotate", post(rotate_recovery_codes))
        .route(
            "/v1/b2b/recovery_codes/{organization_id}/{member_id}",
            get(get_recovery_codes),
        )
}
