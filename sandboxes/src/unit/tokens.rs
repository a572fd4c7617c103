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
    let resources = a.get("resources").map(resources_of);
    check_second_factor(&u, &a, &scopes, customer_id, jwt_subject.as_deref()).await?;
    let token = format!("v2.public.{}", random_hex(48));
    u.data().grants.insert(
        token.clone(),
        Grant {
            customer_id,
            scopes,
            expires_at: now() + time::Duration::seconds(expires_in),
            resources,
        },
    );
    Ok(doc(
        StatusCode::CREATED,
        json!({"data": {"type": "customerBearerToken", "attributes": {"token": token, "expiresIn": expires_in}}}),
    ))
}

/// `upgradableScope` (Unit's white-label components upgrade the token with Unit's SMS code): known
/// scope names, and `customer-token-write` in the `scope` beside it, as Unit's components'
/// authentication page says it must be.
fn upgradable_problems(a: &Map<String, Value>, scopes: &[String], problems: &mut Vec<Value>) {
    let Some(upgradable) = a.get("upgradableScope") else {
        return;
    };
    let pointer = "/data/attributes/upgradableScope";
    let names: Vec<&str> = upgradable
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() || names.iter().any(|s| !SCOPES.contains(s)) {
        problems.push(invalid(
            "upgradableScope must be space-separated scope names",
            pointer,
        ));
    }
    if !scopes.iter().any(|s| s == "customer-token-write") {
        problems.push(invalid(
            "upgradableScope needs customer-token-write in scope",
            "/data/attributes/scope",
        ));
    }
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
    upgradable_problems(a, &scopes, &mut problems);
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
                    matches!(x["type"].as_str(), Some("card" | "account"))
                        && x["ids"]
                            .as_array()
                            .is_some_and(|ids| ids.iter().all(Value::is_string))
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

impl Unit {
    /// Who calls a card or account route: `None` for the org token; otherwise the customer
    /// token's grant, which must be known and unexpired (401) and hold one of `scopes` (403,
    /// naming them). Whose resource it is and the `resources` restriction are the route's to check.
    pub(super) fn caller(
        &self,
        headers: &HeaderMap,
        scopes: &[&str],
    ) -> Result<Option<Grant>, Response> {
        if self.org(headers).is_ok() {
            return Ok(None);
        }
        let token = Self::bearer(headers).unwrap_or("");
        let grant = self
            .data()
            .grants
            .get(token)
            .filter(|g| g.expires_at > now())
            .cloned()
            .ok_or_else(unauthorized)?;
        if !grant.scopes.iter().any(|s| scopes.contains(&s.as_str())) {
            let names = scopes.join(" or ");
            return Err(forbidden(&format!(
                "the customer token lacks the scope this call needs: {names}"
            )));
        }
        Ok(Some(grant))
    }
}

/// A token request's `resources` (already validated): the card ids and the account ids it names.
/// An id that is no Unit id names nothing.
fn resources_of(list: &Value) -> Resources {
    let mut r = Resources::default();
    for x in list.as_array().into_iter().flatten() {
        let ids = x["ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|id| id.as_str().and_then(parse_id));
        match x["type"].as_str() {
            Some("card") => r.cards.extend(ids),
            Some("account") => r.accounts.extend(ids),
            _ => {}
        }
    }
    r
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
