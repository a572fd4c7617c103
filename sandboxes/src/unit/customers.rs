//! Customers: `GET /customers/{id}` (the org token, or a customer token for its own customer) and
//! `PATCH /customers/{id}`.

use super::*;

pub(super) async fn get_customer(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let n = parse_id(&id);
    if u.org(&headers).is_err() {
        // A customer bearer token reads its own customer only.
        let token = Unit::bearer(&headers).unwrap_or("");
        let data = u.data();
        let grant = data
            .grants
            .get(token)
            .filter(|g| g.expires_at > now())
            .ok_or_else(|| {
                error(
                    StatusCode::UNAUTHORIZED,
                    "Unauthorized",
                    "the bearer token is missing, invalid or expired",
                )
            })?;
        if Some(grant.customer_id) != n
            || !grant
                .scopes
                .iter()
                .any(|s| s == "customers" || s == "customers-write")
        {
            return Err(error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "the token does not grant access to this customer",
            ));
        }
    }
    let data = u.data();
    let c = n
        .and_then(|n| data.customers.get(&n))
        .ok_or_else(|| not_found("customer", &id))?;
    Ok(doc(
        StatusCode::OK,
        json!({"data": Unit::customer_json(n.unwrap_or(0), c)}),
    ))
}

pub(super) const CUSTOMER_PATCHABLE: &[&str] = &[
    "email",
    "phone",
    "address",
    "dba",
    "tags",
    "authorizedUsers",
    "jwtSubject",
];

pub(super) async fn patch_customer(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Reply {
    u.org(&headers)?;
    let (attributes, _) = data_of(&bytes, &["individualCustomer"])?;
    let problems: Vec<Value> = attributes
        .iter()
        .filter(|(k, v)| {
            !CUSTOMER_PATCHABLE.contains(&k.as_str())
                || (k.as_str() == "jwtSubject" && !(v.is_string() || v.is_null()))
        })
        .map(|(k, _)| {
            invalid(
                &format!("{k} cannot be updated"),
                &format!("/data/attributes/{k}"),
            )
        })
        .collect();
    if !problems.is_empty() {
        return Err(errors(StatusCode::BAD_REQUEST, problems));
    }
    change_customer(&u, &id, |customer| {
        customer.extend(attributes);
        Some(("customer.updated", Map::new()))
    })
}

/// Changes customer `id`'s attributes with `change`, which names the event to send (its type
/// and extra attributes), if any; sends it and answers the customer (200).
fn change_customer(
    u: &Unit,
    id: &str,
    change: impl FnOnce(&mut Map<String, Value>) -> Option<(&'static str, Map<String, Value>)>,
) -> Reply {
    let mut events = Vec::new();
    let body = {
        let mut data = u.data();
        let n = customer_number(&data, id)?;
        let c = data
            .customers
            .get_mut(&n)
            .ok_or_else(|| not_found("customer", id))?;
        let event = change(&mut c.attributes);
        let (kind, tags) = (
            c.kind,
            c.attributes.get("tags").cloned().unwrap_or(json!({})),
        );
        if let Some((event_type, extra)) = event {
            let mut event = u.event(
                &mut data,
                event_type,
                tags,
                json!({"customer": {"data": {"type": kind, "id": id}}}),
            );
            for (k, v) in extra {
                event["attributes"][k] = v;
            }
            events.push(event);
        }
        let c = data
            .customers
            .get(&n)
            .ok_or_else(|| not_found("customer", id))?;
        json!({"data": Unit::customer_json(n, c)})
    };
    u.send_events(events);
    Ok(doc(StatusCode::OK, body))
}

/// The reasons Unit's spec lists for archiving a customer (`ArchiveCustomerRequest`).
const ARCHIVE_REASONS: &[&str] = &[
    "Inactive",
    "FraudACHActivity",
    "FraudCardActivity",
    "FraudCheckActivity",
    "FraudApplicationHistory",
    "FraudAccountActivity",
    "FraudClientIdentified",
    "FraudLinkedToFraudulentCustomer",
];

/// `POST /customers/{id}/archive` (`archiveCustomer`, with a `reason` from the spec's list):
/// the customer's `status` becomes `Archived` with its `archiveReason`, and a `customer.archived`
/// event carries the reason (as unit-node-sdk's `CustomerArchived` types it). Archiving twice
/// answers the customer as it is, with no second event.
pub(super) async fn archive_customer(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Reply {
    u.org(&headers)?;
    let (attributes, _) = data_of(&bytes, &["archiveCustomer"])?;
    let reason = attributes
        .get("reason")
        .and_then(Value::as_str)
        .filter(|r| ARCHIVE_REASONS.contains(r))
        .ok_or_else(|| {
            errors(
                StatusCode::BAD_REQUEST,
                vec![invalid(
                    "reason must be one of Unit's archive reasons",
                    "/data/attributes/reason",
                )],
            )
        })?
        .to_owned();
    change_customer(&u, &id, |customer| {
        if customer.get("status") == Some(&json!("Archived")) {
            return None;
        }
        customer.insert("status".into(), json!("Archived"));
        customer.insert("archiveReason".into(), json!(reason));
        let mut extra = Map::new();
        extra.insert("archiveReason".into(), json!(reason));
        Some(("customer.archived", extra))
    })
}
