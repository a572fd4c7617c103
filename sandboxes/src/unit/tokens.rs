//! Customer tokens: `POST /customers/{id}/token` (the JWT route, gated as Unit gates it) and
//! `POST /customers/{id}/token/verification`.
//!
//! A business customer's token (docs/unit-api.md §13, reading R1): the JWT's `sub` must be the
//! contact's `jwtSubject` or any authorized user's (401 otherwise, as for individuals). A
//! `relationships.authorizedUserResource` (`{data: {type: "authorizedUserResource", id}}`, the
//! id of `GET /customers/{id}/authorized-users`) must name an authorized user of that customer
//! whose `jwtSubject` is the JWT's `sub` (403 pointing at it otherwise); a malformed one, or one
//! sent for an individual customer, is a 400.

use super::*;

pub(super) async fn create_token(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Reply {
    u.org(&headers)?;
    let (a, relationships) = data_of(&bytes, &["customerToken"])?;
    let (customer_id, subjects, business) = {
        let data = u.data();
        let n = customer_number(&data, &id)?;
        let c = &data.customers[&n];
        (n, subjects(c), c.kind == "businessCustomer")
    };
    let (scopes, expires_in) = token_request(&a)?;
    let named = named_user(&relationships, business)?;
    let resources = a.get("resources").map(resources_of);
    let sub = check_second_factor(&u, &a, &scopes, customer_id, &subjects).await?;
    if let Some(user) = named {
        check_named_user(&u, customer_id, user, sub.as_deref())?;
    }
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

/// The authorized user a token request names (`relationships.authorizedUserResource`), if any:
/// 400 when malformed or sent for an individual customer.
fn named_user(relationships: &Value, business: bool) -> Result<Option<u64>, Response> {
    let Some(r) = relationships.get("authorizedUserResource") else {
        return Ok(None);
    };
    let refuse = |detail: &str| {
        errors(
            StatusCode::BAD_REQUEST,
            vec![invalid(
                detail,
                "/data/relationships/authorizedUserResource",
            )],
        )
    };
    let id = (r["data"]["type"] == "authorizedUserResource")
        .then(|| r["data"]["id"].as_str().and_then(parse_id))
        .flatten()
        .ok_or_else(|| {
            refuse("authorizedUserResource must be {data: {type: authorizedUserResource, id}}")
        })?;
    if !business {
        return Err(refuse(
            "authorizedUserResource names an authorized user of a business customer",
        ));
    }
    Ok(Some(id))
}

/// The named authorized user must be the customer's, and carry the JWT's `sub` when a JWT was
/// sent (403 pointing at the relationship otherwise).
fn check_named_user(
    u: &Unit,
    customer_id: u64,
    user: u64,
    sub: Option<&str>,
) -> Result<(), Response> {
    let refuse = |detail: &str| {
        errors(
            StatusCode::FORBIDDEN,
            vec![e(
                StatusCode::FORBIDDEN,
                "Forbidden",
                None,
                detail,
                Some("/data/relationships/authorizedUserResource"),
            )],
        )
    };
    let found = authorized_user(&mut u.data(), customer_id, user).ok_or_else(|| {
        refuse("authorizedUserResource names no authorized user of this customer")
    })?;
    if let Some(s) = sub
        && found["jwtSubject"].as_str() != Some(s)
    {
        return Err(refuse(
            "the JWT subject is not the jwtSubject of the authorized user authorizedUserResource names",
        ));
    }
    Ok(())
}

/// Unit's 2FA gate: a `jwtToken`, when sent, must be valid for the customer (401 otherwise);
/// without one, 2FA scopes need the verification token and code (403 otherwise). Gives the
/// JWT's `sub` when a JWT was sent.
async fn check_second_factor(
    u: &Unit,
    a: &Map<String, Value>,
    scopes: &[String],
    customer_id: u64,
    subjects: &[String],
) -> Result<Option<String>, Response> {
    let needs_2fa = scopes
        .iter()
        .any(|s| TWO_FACTOR_SCOPES.contains(&s.as_str()));
    if let Some(jwt) = string_field(a, "jwtToken") {
        let sub = u
            .check_jwt(&jwt, subjects)
            .await
            .map_err(|reason| error(StatusCode::UNAUTHORIZED, "Unauthorized", &reason))?;
        return Ok(Some(sub));
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
    Ok(None)
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
    let n = customer_number(&data, &id)?;
    let token = random_hex(16);
    data.verifications.insert(token.clone(), n);
    Ok(doc(
        StatusCode::CREATED,
        json!({"data": {"type": "customerTokenVerification", "attributes": {"verificationToken": token}}}),
    ))
}
