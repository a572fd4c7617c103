//! Customer tokens: `POST /customers/{id}/token` (the JWT route, gated as Unit gates it) and
//! `POST /customers/{id}/token/verification`.

use super::*;

pub(super) async fn create_token(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Reply {
    u.org(&headers)?;
    let (a, _) = data_of(&bytes, &["customerToken"])?;
    let (customer_id, jwt_subject) = {
        let data = u.data();
        let n = parse_id(&id)
            .filter(|n| data.customers.contains_key(n))
            .ok_or_else(|| not_found("customer", &id))?;
        (
            n,
            data.customers[&n]
                .attributes
                .get("jwtSubject")
                .and_then(Value::as_str)
                .map(str::to_owned),
        )
    };
    let (scopes, expires_in) = token_request(&a)?;
    check_second_factor(&u, &a, &scopes, customer_id, jwt_subject.as_deref()).await?;
    let token = format!("v2.public.{}", random_hex(48));
    u.data().grants.insert(
        token.clone(),
        Grant {
            customer_id,
            scopes,
            expires_at: now() + time::Duration::seconds(expires_in),
        },
    );
    Ok(doc(
        StatusCode::CREATED,
        json!({"data": {"type": "customerBearerToken", "attributes": {"token": token, "expiresIn": expires_in}}}),
    ))
}

/// Validates a token request's `scope`, `expiresIn` and `resources`, every problem in one 400;
/// gives the scopes and the lifetime in seconds (86400 by default).
fn token_request(a: &Map<String, Value>) -> Result<(Vec<String>, i64), Response> {
    let mut problems = Vec::new();
    let scope = string_field(a, "scope").unwrap_or_default();
    let scopes: Vec<String> = scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() {
        problems.push(invalid("scope is required", "/data/attributes/scope"));
    }
    for s in scopes.iter().filter(|s| !SCOPES.contains(&s.as_str())) {
        problems.push(invalid(
            &format!("unknown scope {s}"),
            "/data/attributes/scope",
        ));
    }
    let expires_in = match a.get("expiresIn") {
        None => 86_400,
        Some(v) => match v.as_i64() {
            Some(n @ 1..=86_400) => n,
            _ => {
                problems.push(invalid(
                    "expiresIn must be between 1 and 86400",
                    "/data/attributes/expiresIn",
                ));
                0
            }
        },
    };
    if let Some(r) = a.get("resources")
        && !r.as_array().is_some_and(|list| {
            !list.is_empty()
                && list.iter().all(|x| {
                    matches!(x["type"].as_str(), Some("card" | "account")) && x["ids"].is_array()
                })
        })
    {
        problems.push(invalid(
            "resources must be a non-empty list of {type: card|account, ids}",
            "/data/attributes/resources",
        ));
    }
    if !problems.is_empty() {
        return Err(errors(StatusCode::BAD_REQUEST, problems));
    }
    Ok((scopes, expires_in))
}

/// Unit's 2FA gate: a `jwtToken`, when sent, must be valid for the customer (401 otherwise);
/// without one, 2FA scopes need the verification token and code (403 otherwise).
async fn check_second_factor(
    u: &Unit,
    a: &Map<String, Value>,
    scopes: &[String],
    customer_id: u64,
    jwt_subject: Option<&str>,
) -> Result<(), Response> {
    let needs_2fa = scopes
        .iter()
        .any(|s| TWO_FACTOR_SCOPES.contains(&s.as_str()));
    if let Some(jwt) = string_field(a, "jwtToken") {
        u.check_jwt(&jwt, jwt_subject)
            .await
            .map_err(|reason| error(StatusCode::UNAUTHORIZED, "Unauthorized", &reason))?;
    } else if needs_2fa {
        let otp_ok = match (
            string_field(a, "verificationToken"),
            string_field(a, "verificationCode"),
        ) {
            (Some(t), Some(code)) => {
                code == "000001" && u.data().verifications.get(&t) == Some(&customer_id)
            }
            _ => false,
        };
        if !otp_ok {
            return Err(error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "the requested scopes need two-factor authentication: jwtToken, or verificationToken and verificationCode",
            ));
        }
    }
    Ok(())
}

pub(super) async fn token_verification(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Reply {
    u.org(&headers)?;
    let (a, _) = data_of(&bytes, &["customerTokenVerification"])?;
    if !matches!(
        a.get("channel").and_then(Value::as_str),
        Some("sms" | "call")
    ) {
        return Err(errors(
            StatusCode::BAD_REQUEST,
            vec![invalid(
                "channel must be sms or call",
                "/data/attributes/channel",
            )],
        ));
    }
    let mut data = u.data();
    let n = parse_id(&id)
        .filter(|n| data.customers.contains_key(n))
        .ok_or_else(|| not_found("customer", &id))?;
    let token = random_hex(16);
    data.verifications.insert(token.clone(), n);
    Ok(doc(
        StatusCode::CREATED,
        json!({"data": {"type": "customerTokenVerification", "attributes": {"verificationToken": token}}}),
    ))
}
