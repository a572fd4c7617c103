//! Passwords: `POST /v1/passwords` (a user and a session) and `/v1/passwords/authenticate`.

use super::*;

pub(super) async fn create_password(State(s): State<Arc<Stytch>>, bytes: Bytes) -> Reply {
    let body = object(&bytes)?;
    required(&body, "email", "invalid_email")?;
    let password = required(&body, "password", "weak_password")?;
    if password.chars().count() < 8 {
        return Err(bad(
            "weak_password",
            "Password does not meet the strength requirements.",
        ));
    }
    let minutes = duration_minutes(&body)?.unwrap_or(60);
    let (reply, user) = {
        let mut data = s.data();
        let user_id = create_user_record(&mut data, &body, Some(password.to_owned()))?;
        let session_id = s.new_session(
            &mut data,
            &user_id,
            minutes,
            factor("password", now(), None),
        );
        let mut reply = s.session_reply(&data, &user_id, Some(&session_id));
        let email_id = data.users[&user_id]
            .email
            .as_ref()
            .map(|(id, _)| id.clone())
            .unwrap_or_default();
        reply["email_id"] = json!(email_id);
        (reply.clone(), reply["user"].clone())
    };
    s.emit(
        "CREATE",
        reply["user_id"].as_str().unwrap_or_default(),
        Some(user),
    );
    ok(reply)
}

pub(super) async fn authenticate_password(State(s): State<Arc<Stytch>>, bytes: Bytes) -> Reply {
    let body = object(&bytes)?;
    let email = required(&body, "email", "invalid_email")?;
    let password = required(&body, "password", "unauthorized_credentials")?;
    let minutes = duration_minutes(&body)?.unwrap_or(60);
    let mut data = s.data();
    let user = data
        .users
        .values()
        .find(|u| {
            u.email
                .as_ref()
                .is_some_and(|(_, e)| e.eq_ignore_ascii_case(email))
        })
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "email_not_found",
                "Email could not be found.",
            )
        })?;
    let matches = user.password.as_deref().is_some_and(|p| {
        aws_lc_rs::constant_time::verify_slices_are_equal(p.as_bytes(), password.as_bytes()).is_ok()
    });
    if !matches {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_credentials",
            "Unauthorized credentials.",
        ));
    }
    let user_id = user.user_id.clone();
    let existing = s.find_session(&data, &body)?;
    let session_id = match existing {
        Some(id) => {
            let session = data.sessions.get_mut(&id).ok_or_else(not_found_user)?;
            add_factor(session, factor("password", now(), None));
            id
        }
        None => s.new_session(
            &mut data,
            &user_id,
            minutes,
            factor("password", now(), None),
        ),
    };
    ok(s.session_reply(&data, &user_id, Some(&session_id)))
}
