//! Users: `POST /v1/users`, `GET`/`PUT`/`DELETE /v1/users/{id}`, and the user-record helpers the
//! password and OTP routes share.

use super::*;

pub(super) fn user_id_prefix() -> String {
    format!("user-test-{}", uuid())
}

pub(super) fn create_user_record(
    data: &mut Data,
    body: &Map<String, Value>,
    password: Option<String>,
) -> Result<String, Response> {
    let email = text(body, "email")?.filter(|e| !e.is_empty());
    if let Some(e) = email {
        if !e.contains('@') {
            return Err(bad("invalid_email", "Email format is invalid."));
        }
        if data.users.values().any(|u| {
            u.email
                .as_ref()
                .is_some_and(|(_, x)| x.eq_ignore_ascii_case(e))
        }) {
            return Err(bad(
                "duplicate_email",
                "A user with this email already exists for this project.",
            ));
        }
    }
    let phone = text(body, "phone_number")?.filter(|p| !p.is_empty());
    if let Some(p) = phone
        && !(p.starts_with('+') && p.len() >= 8 && p[1..].chars().all(|c| c.is_ascii_digit()))
    {
        return Err(bad(
            "invalid_phone_number",
            "Phone number format is invalid.",
        ));
    }
    let name = body.get("name").and_then(Value::as_object);
    let part = |k: &str| {
        name.and_then(|n| n.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let mut trusted_metadata = Map::new();
    merge_metadata(&mut trusted_metadata, body, "trusted_metadata")?;
    let mut untrusted_metadata = Map::new();
    merge_metadata(&mut untrusted_metadata, body, "untrusted_metadata")?;
    let user_id = user_id_prefix();
    data.users.insert(
        user_id.clone(),
        User {
            user_id: user_id.clone(),
            created_at: now(),
            email: email.map(|e| (format!("email-test-{}", uuid()), e.to_owned())),
            phone: phone.map(|p| (format!("phone-number-test-{}", uuid()), p.to_owned())),
            email_verified: false,
            phone_verified: false,
            name: (part("first_name"), part("middle_name"), part("last_name")),
            password,
            totp: None,
            trusted_metadata,
            untrusted_metadata,
        },
    );
    Ok(user_id)
}

pub(super) async fn create_user(State(s): State<Arc<Stytch>>, bytes: Bytes) -> Reply {
    let body = object(&bytes)?;
    let (reply, user) = {
        let mut data = s.data();
        let user_id = create_user_record(&mut data, &body, None)?;
        let u = &data.users[&user_id];
        let user = user_json(u);
        let reply = json!({
            "user_id": user_id,
            "email_id": u.email.as_ref().map(|(id, _)| id.as_str()).unwrap_or(""),
            "phone_id": u.phone.as_ref().map(|(id, _)| id.as_str()).unwrap_or(""),
            "status": "active",
            "user": user,
        });
        (reply, user)
    };
    s.emit(
        "CREATE",
        reply["user_id"].as_str().unwrap_or_default(),
        Some(user),
    );
    ok(reply)
}

pub(super) fn totp_not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "totp_not_found",
        "TOTP could not be found.",
    )
}

pub(super) fn not_found_user() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "user_not_found",
        "User could not be found.",
    )
}

pub(super) async fn get_user(State(s): State<Arc<Stytch>>, Path(user_id): Path<String>) -> Reply {
    let data = s.data();
    let user = data.users.get(&user_id).ok_or_else(not_found_user)?;
    // GET /v1/users/{id} answers the user's fields at the top level.
    ok(user_json(user))
}

pub(super) async fn update_user(
    State(s): State<Arc<Stytch>>,
    Path(user_id): Path<String>,
    bytes: Bytes,
) -> Reply {
    let body = object(&bytes)?;
    let user = {
        let mut data = s.data();
        let user = data.users.get_mut(&user_id).ok_or_else(not_found_user)?;
        if let Some(name) = body.get("name").and_then(Value::as_object) {
            let get = |k: &str, old: &str| {
                name.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or(old)
                    .to_owned()
            };
            user.name = (
                get("first_name", &user.name.0),
                get("middle_name", &user.name.1),
                get("last_name", &user.name.2),
            );
        }
        merge_metadata(&mut user.trusted_metadata, &body, "trusted_metadata")?;
        merge_metadata(&mut user.untrusted_metadata, &body, "untrusted_metadata")?;
        user_json(user)
    };
    s.emit("UPDATE", &user_id, Some(user.clone()));
    let mut reply = json!({"user_id": user_id, "user": user.clone()});
    for k in ["emails", "phone_numbers", "crypto_wallets"] {
        reply[k] = user[k].clone();
    }
    ok(reply)
}

pub(super) async fn delete_user(
    State(s): State<Arc<Stytch>>,
    Path(user_id): Path<String>,
) -> Reply {
    {
        let mut data = s.data();
        data.users.remove(&user_id).ok_or_else(not_found_user)?;
        data.sessions
            .retain(|_, session| session.user_id != user_id);
    }
    s.emit("DELETE", &user_id, None);
    ok(json!({"user_id": user_id}))
}
