//! One-time passcodes by e-mail and SMS: `send`, `login_or_create`, `/v1/otps/authenticate`, and the
//! sandbox's inbox (`GET /_sandbox/otps`).

use super::*;

/// `POST /v1/otps/{email,sms}/{send,login_or_create}`: a passcode to the user's address (a new
/// user for an unknown address with `login_or_create`).
pub(super) async fn send_otp(
    s: &Stytch,
    bytes: &Bytes,
    delivery: &'static str,
    create: bool,
) -> Reply {
    let body = object(bytes)?;
    let (field, error_type) = match delivery {
        "email" => ("email", "invalid_email"),
        _ => ("phone_number", "invalid_phone_number"),
    };
    let address = required(&body, field, error_type)?.to_owned();
    let minutes = expiration_minutes(&body)?;
    let mut data = s.data();
    let (user_id, method_id, created) = recipient(&mut data, &body, delivery, &address, create)?;
    if let Some(session) = s.find_session(&data, &body)?
        && data
            .sessions
            .get(&session)
            .is_some_and(|x| x.user_id != user_id)
    {
        return Err(bad(
            "session_not_found",
            "The session is another user's; adding an address is not modelled by the sandbox.",
        ));
    }
    let mut digits = [0u8; 4];
    let _ = aws_lc_rs::rand::fill(&mut digits);
    let code = format!("{:06}", u32::from_le_bytes(digits) % 1_000_000);
    data.otps.retain(|o| o.method_id != method_id);
    data.otps.push(Otp {
        method_id: method_id.clone(),
        user_id: user_id.clone(),
        delivery,
        address,
        code,
        expires_at: now() + time::Duration::minutes(minutes),
        used: false,
    });
    drop(data);
    let id_field = if delivery == "email" {
        "email_id"
    } else {
        "phone_id"
    };
    let mut reply = json!({"user_id": user_id, id_field: method_id});
    if create {
        reply["user_created"] = json!(created.is_some());
    }
    if let Some(user) = created {
        s.emit("CREATE", &user_id, Some(user));
    }
    ok(reply)
}

/// The passcode's lifetime: `expiration_minutes` (1 to 10), 2 when absent or `null`.
fn expiration_minutes(body: &Map<String, Value>) -> Result<i64, Response> {
    match body.get("expiration_minutes") {
        None | Some(Value::Null) => Ok(2),
        Some(v) => match v.as_i64() {
            Some(m) if (1..=10).contains(&m) => Ok(m),
            _ => Err(bad(
                "invalid_expiration_minutes",
                "expiration_minutes must be between 1 and 10.",
            )),
        },
    }
}

/// The user and address id (`email_id` or `phone_id`) that hold `address`, if any.
fn address_owner(data: &Data, delivery: &str, address: &str) -> Option<(String, String)> {
    data.users.values().find_map(|u| {
        let held = match delivery {
            "email" => u
                .email
                .as_ref()
                .filter(|(_, e)| e.eq_ignore_ascii_case(address)),
            _ => u.phone.as_ref().filter(|(_, p)| *p == address),
        };
        held.map(|(id, _)| (u.user_id.clone(), id.clone()))
    })
}

/// Who a passcode to `address` goes to: `(user_id, method_id, created user)`. An unknown address
/// answers 404, or with `create` (`login_or_create`) makes a new user, whose JSON comes back
/// for the `CREATE` webhook.
fn recipient(
    data: &mut Data,
    body: &Map<String, Value>,
    delivery: &str,
    address: &str,
    create: bool,
) -> Result<(String, String, Option<Value>), Response> {
    if let Some((user_id, method_id)) = address_owner(data, delivery, address) {
        return Ok((user_id, method_id, None));
    }
    if !create {
        let (error_type, message) = match delivery {
            "email" => ("email_not_found", "Email could not be found."),
            _ => ("phone_number_not_found", "Phone number could not be found."),
        };
        return Err(error(StatusCode::NOT_FOUND, error_type, message));
    }
    let user_id = create_user_record(data, body, None)?;
    let created = user_json(&data.users[&user_id]);
    let (user_id, method_id) = address_owner(data, delivery, address).ok_or_else(not_found_user)?;
    Ok((user_id, method_id, Some(created)))
}

pub(super) async fn send_email_otp(State(s): State<Arc<Stytch>>, bytes: Bytes) -> Reply {
    send_otp(&s, &bytes, "email", false).await
}

pub(super) async fn login_or_create_email_otp(State(s): State<Arc<Stytch>>, bytes: Bytes) -> Reply {
    send_otp(&s, &bytes, "email", true).await
}

pub(super) async fn send_sms_otp(State(s): State<Arc<Stytch>>, bytes: Bytes) -> Reply {
    send_otp(&s, &bytes, "sms", false).await
}

pub(super) async fn login_or_create_sms_otp(State(s): State<Arc<Stytch>>, bytes: Bytes) -> Reply {
    send_otp(&s, &bytes, "sms", true).await
}

/// `POST /v1/otps/authenticate`: the passcode joins the session (or starts one).
pub(super) async fn authenticate_otp(State(s): State<Arc<Stytch>>, bytes: Bytes) -> Reply {
    let body = object(&bytes)?;
    let method_id = required(&body, "method_id", "invalid_method_id")?.to_owned();
    let code = required(&body, "code", "otp_code_not_found")?;
    let not_found = || {
        error(
            StatusCode::NOT_FOUND,
            "otp_code_not_found",
            "The passcode is incorrect, expired or already used.",
        )
    };
    let mut data = s.data();
    let otp = data
        .otps
        .iter_mut()
        .find(|o| o.method_id == method_id)
        .filter(|o| !o.used && o.expires_at > now())
        .ok_or_else(not_found)?;
    let matches =
        aws_lc_rs::constant_time::verify_slices_are_equal(otp.code.as_bytes(), code.as_bytes())
            .is_ok();
    if !matches {
        return Err(not_found());
    }
    otp.used = true;
    let user_id = otp.user_id.clone();
    let f = match otp.delivery {
        "email" => factor(
            "email_otp",
            now(),
            Some((
                "email_factor",
                json!({"email_id": otp.method_id, "email_address": otp.address}),
            )),
        ),
        _ => factor(
            "otp",
            now(),
            Some((
                "phone_number_factor",
                json!({"phone_id": otp.method_id, "phone_number": otp.address}),
            )),
        ),
    };
    let delivery = otp.delivery;
    // The passcode proved the address: Stytch marks it verified.
    if let Some(u) = data.users.get_mut(&user_id) {
        match delivery {
            "email" => u.email_verified = true,
            _ => u.phone_verified = true,
        }
    }
    let mut f = f;
    f["delivery_method"] = json!(delivery);
    let mut reply = finish(&s, &mut data, &body, &user_id, f)?;
    reply["method_id"] = json!(method_id);
    reply["reset_sessions"] = json!(false);
    ok(reply)
}

/// `GET /_sandbox/otps`: the passcodes sent, newest first (what an inbox or a phone shows).
pub(super) async fn otps_sent(State(s): State<Arc<Stytch>>) -> Json<Value> {
    let data = s.data();
    Json(json!({"otps": data.otps.iter().rev().map(|o| json!({
        "method_id": o.method_id, "user_id": o.user_id, "delivery": o.delivery,
        "address": o.address, "code": o.code, "used": o.used,
        "expires_at": rfc3339(o.expires_at),
    })).collect::<Vec<_>>()}))
}
