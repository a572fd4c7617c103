//! Sessions: `POST /v1/sessions/authenticate`, `GET /v1/sessions`, `POST /v1/sessions/revoke`.

use super::*;

pub(super) async fn authenticate_session(State(s): State<Arc<Stytch>>, bytes: Bytes) -> Reply {
    let body = object(&bytes)?;
    let minutes = duration_minutes(&body)?;
    let mut data = s.data();
    let session_id = s.find_session(&data, &body)?.ok_or_else(|| {
        bad(
            "no_session_arguments",
            "Provide one of session_token and session_jwt.",
        )
    })?;
    let session = data
        .sessions
        .get_mut(&session_id)
        .ok_or_else(not_found_user)?;
    session.last_accessed_at = now();
    if let Some(m) = minutes {
        session.expires_at = now() + time::Duration::minutes(m);
    }
    let user_id = session.user_id.clone();
    ok(s.session_reply(&data, &user_id, Some(&session_id)))
}

/// `GET /v1/sessions?user_id=`: the user's live sessions.
pub(super) async fn get_sessions(
    State(s): State<Arc<Stytch>>,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Reply {
    let user_id = query
        .get("user_id")
        .filter(|u| !u.is_empty())
        .ok_or_else(|| bad("missing_user_id", "user_id is required."))?;
    let data = s.data();
    if !data.users.contains_key(user_id) {
        return Err(error(
            StatusCode::NOT_FOUND,
            "user_not_found",
            "User could not be found.",
        ));
    }
    let at = now();
    let mut sessions: Vec<&Session> = data
        .sessions
        .values()
        .filter(|x| x.user_id == *user_id && x.expires_at > at)
        .collect();
    sessions.sort_by_key(|x| x.started_at);
    ok(json!({"sessions": sessions.into_iter().map(session_json).collect::<Vec<_>>()}))
}

pub(super) async fn revoke_session(State(s): State<Arc<Stytch>>, bytes: Bytes) -> Reply {
    let body = object(&bytes)?;
    let mut data = s.data();
    let id = match text(&body, "session_id")? {
        Some(id) => Some(id.to_owned()),
        None => s.find_session(&data, &body)?,
    };
    let id = id.ok_or_else(|| {
        bad(
            "no_session_arguments",
            "Provide a session_id, session_token or session_jwt.",
        )
    })?;
    data.sessions.remove(&id).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "session_not_found",
            "Session could not be found.",
        )
    })?;
    ok(json!({}))
}
