//! Authorized users (docs/unit-api.md §13): `POST` and `DELETE /customers/{id}/authorized-users`
//! (`addAuthorizedUsers`, `removeAuthorizedUsers`; the org token, gated by the spec; 200 with the
//! whole customer, and `customer.updated` when something changed), and the reads Unit documents
//! outside its spec, `GET /customers/{id}/authorized-users[/{authorizedUserId}]` (the org token),
//! which give each authorized user the id a token request's `authorizedUserResource` names.
//!
//! Readings (OQ11, OQ14): the e-mail is the key, compared without regard to case: adding an
//! e-mail that is there updates that user in place (its id kept), removing one that is not there
//! changes nothing (200, no event); within one add, a later entry with the same e-mail wins. An
//! archived customer's users cannot change (400). Two users, or a user and the contact, may share
//! a `jwtSubject`. Any customer may hold authorized users (Unit documents them for individuals
//! too, "for very specific use cases"); only a business customer's reach its token (R1). The
//! read resources are typed `authorizedUserResource`, the type the token relationship names; a
//! removed user's id is not reused, and a user added again gets a new one.

use super::*;

const USERS: &str = "authorizedUsers";

fn email_key(user: &Value) -> String {
    user["email"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// The `jwtSubject`s a customer token's JWT may carry: an individual's `jwtSubject`; a business
/// customer's contact's and every authorized user's (reading R1 of §13).
pub(super) fn subjects(c: &Customer) -> Vec<String> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    if c.kind != "businessCustomer" {
        return text(c.attributes.get("jwtSubject")).into_iter().collect();
    }
    let contact = text(
        c.attributes
            .get("contact")
            .and_then(|x| x.get("jwtSubject")),
    );
    let users = c
        .attributes
        .get(USERS)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|x| text(x.get("jwtSubject")));
    contact.into_iter().chain(users).collect()
}

pub(super) async fn add_authorized_users(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Reply {
    u.org(&headers)?;
    let (a, _) = data_of(&bytes, &["addAuthorizedUsers"])?;
    let added = list_attribute(&a, USERS, |v| v["email"].is_string())?;
    change_users(&u, &id, |users| {
        let mut changed = false;
        for user in added {
            match users.iter_mut().find(|x| email_key(x) == email_key(&user)) {
                Some(existing) if *existing == user => {}
                Some(existing) => {
                    *existing = user;
                    changed = true;
                }
                None => {
                    users.push(user);
                    changed = true;
                }
            }
        }
        changed
    })
}

pub(super) async fn remove_authorized_users(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Reply {
    u.org(&headers)?;
    let (a, _) = data_of(&bytes, &["removeAuthorizedUsers"])?;
    let emails: Vec<String> = list_attribute(&a, "authorizedUsersEmails", Value::is_string)?
        .iter()
        .map(|e| e.as_str().unwrap_or_default().to_ascii_lowercase())
        .collect();
    change_users(&u, &id, |users| {
        let before = users.len();
        users.retain(|x| !emails.contains(&email_key(x)));
        users.len() != before
    })
}

/// Array attribute `k` whose items all pass `ok` (else 400 pointing at it).
fn list_attribute(
    a: &Map<String, Value>,
    k: &str,
    ok: impl Fn(&Value) -> bool,
) -> Result<Vec<Value>, Response> {
    match a.get(k).and_then(Value::as_array) {
        Some(list) if list.iter().all(ok) => Ok(list.clone()),
        _ => Err(errors(
            StatusCode::BAD_REQUEST,
            vec![invalid(
                &format!("{k} is required: an array"),
                &format!("/data/attributes/{k}"),
            )],
        )),
    }
}

/// Changes customer `id`'s authorized users with `change` (true when it changed them): 404 for an
/// unknown customer, 400 for an archived one. A change gives new users their ids and sends
/// `customer.updated`. Answers the whole customer (200).
fn change_users(u: &Unit, id: &str, change: impl FnOnce(&mut Vec<Value>) -> bool) -> Reply {
    let mut events = Vec::new();
    let body = {
        let mut data = u.data();
        let n = customer_number(&data, id)?;
        let c = data
            .customers
            .get_mut(&n)
            .ok_or_else(|| not_found("customer", id))?;
        if c.attributes.get("status").and_then(Value::as_str) == Some("Archived") {
            return Err(errors(
                StatusCode::BAD_REQUEST,
                vec![e(
                    StatusCode::BAD_REQUEST,
                    "Invalid customer status",
                    Some("invalid_customer_status"),
                    "the customer is archived: its authorized users cannot change",
                    None,
                )],
            ));
        }
        let mut users = c
            .attributes
            .get(USERS)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if change(&mut users) {
            c.attributes.insert(USERS.into(), Value::Array(users));
            let (kind, tags) = (c.kind, c.attributes.get("tags").cloned());
            sync_user_ids(&mut data, n);
            let customer = json!({"customer": {"data": {"type": kind, "id": n.to_string()}}});
            let tags = tags.unwrap_or(json!({}));
            events.push(u.event(&mut data, "customer.updated", tags, customer));
        }
        json!({"data": Unit::customer_json(n, &data.customers[&n])})
    };
    u.send_events(events);
    Ok(doc(StatusCode::OK, body))
}

/// Gives every authorized user of customer `n` an id (users set by a PATCH get theirs here) and
/// forgets the ids of users no longer there.
fn sync_user_ids(data: &mut Data, n: u64) {
    let Some(c) = data.customers.get_mut(&n) else {
        return;
    };
    let emails: Vec<String> = c
        .attributes
        .get(USERS)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(email_key)
        .collect();
    c.user_ids.retain(|e, _| emails.contains(e));
    for email in emails {
        let next = data.next_id + 1;
        match data.customers.get_mut(&n) {
            Some(c) if !c.user_ids.contains_key(&email) => {
                c.user_ids.insert(email, next);
                data.next_id = next;
            }
            _ => {}
        }
    }
}

/// Customer `n`'s authorized users as resources, with their ids.
fn user_resources(data: &mut Data, n: u64) -> Vec<(u64, Value)> {
    sync_user_ids(data, n);
    let Some(c) = data.customers.get(&n) else {
        return Vec::new();
    };
    let customer = json!({"customer": {"data": {"type": c.kind, "id": n.to_string()}}});
    c.attributes
        .get(USERS)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|user| {
            let id = *c.user_ids.get(&email_key(user))?;
            let resource = json!({"type": "authorizedUserResource", "id": id.to_string(),
                                  "attributes": user, "relationships": customer});
            Some((id, resource))
        })
        .collect()
}

/// Customer `n`'s authorized user whose id is `user`, if it has one.
pub(super) fn authorized_user(data: &mut Data, n: u64, user: u64) -> Option<Value> {
    user_resources(data, n)
        .into_iter()
        .find(|(id, _)| *id == user)
        .map(|(_, resource)| resource["attributes"].clone())
}

/// `GET /customers/{id}/authorized-users` (`filter[jwtSubject]`): the customer's authorized users.
pub(super) async fn list_authorized_users(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Reply {
    u.org(&headers)?;
    let mut data = u.data();
    let n = customer_number(&data, &id)?;
    let subject = query.get("filter[jwtSubject]");
    let list: Vec<Value> = user_resources(&mut data, n)
        .into_iter()
        .map(|(_, resource)| resource)
        .filter(|r| subject.is_none_or(|s| r["attributes"]["jwtSubject"].as_str() == Some(s)))
        .collect();
    let total = list.len();
    Ok(doc(
        StatusCode::OK,
        json!({"data": list, "meta": {"pagination": {"total": total, "limit": 100, "offset": 0}}}),
    ))
}

/// `GET /customers/{id}/authorized-users/{authorizedUserId}`: one authorized user.
pub(super) async fn get_authorized_user(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    Path((id, user)): Path<(String, String)>,
) -> Reply {
    u.org(&headers)?;
    let mut data = u.data();
    let n = customer_number(&data, &id)?;
    let wanted = parse_id(&user).ok_or_else(|| not_found("authorizedUser", &user))?;
    let (_, resource) = user_resources(&mut data, n)
        .into_iter()
        .find(|(i, _)| *i == wanted)
        .ok_or_else(|| not_found("authorizedUser", &user))?;
    Ok(doc(StatusCode::OK, json!({ "data": resource })))
}
