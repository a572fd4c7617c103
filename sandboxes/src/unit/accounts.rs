//! Deposit accounts (docs/unit-api.md §12): `POST /accounts` (the org token, `createAccount` of
//! Unit's spec, a `depositAccount` only) and `GET /accounts/{id}` (the org token, or a customer
//! token with `accounts` or `accounts-write` for its own account). Answers are the spec's
//! `DepositAccount`.

use super::*;

pub(super) struct Account {
    pub(super) customer_id: u64,
    pub(super) attributes: Map<String, Value>,
    idempotency_key: Option<String>,
}

impl Account {
    pub(super) fn status(&self) -> &str {
        self.attributes
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

/// The routing number of every sandbox account (nine digits, as the spec's pattern asks).
const ROUTING_NUMBER: &str = "812345678";

/// A refusal of the account and card cores: its status, detail and the request pointer it
/// concerns; the HTTP routes answer it in Unit's error shape, the Rust controls as text.
pub(super) struct Refusal(
    pub(super) StatusCode,
    pub(super) String,
    pub(super) Option<&'static str>,
);

impl Refusal {
    pub(super) fn response(self) -> Response {
        let Self(status, detail, pointer) = self;
        match (status, pointer) {
            (StatusCode::NOT_FOUND, _) => errors(
                status,
                vec![e(status, "Not Found", Some("not_found"), &detail, None)],
            ),
            (StatusCode::BAD_REQUEST, Some(p)) => errors(status, vec![invalid(&detail, p)]),
            _ => error(
                status,
                status.canonical_reason().unwrap_or("Error"),
                &detail,
            ),
        }
    }
}

/// What a new account is opened with.
pub(super) struct NewAccount {
    pub(super) customer: String,
    pub(super) deposit_product: String,
    pub(super) tags: Value,
    pub(super) idempotency_key: Option<String>,
}

impl Unit {
    /// Opens a deposit account (a key seen before gives the original account, OQ1). Refuses an
    /// unknown customer (404) and an archived one (400). Returns its id.
    pub(super) fn open_account_locked(data: &mut Data, new: NewAccount) -> Result<u64, Refusal> {
        if let Some(k) = &new.idempotency_key
            && let Some((id, _)) = data
                .accounts
                .iter()
                .find(|(_, a)| a.idempotency_key.as_ref() == Some(k))
        {
            return Ok(*id);
        }
        let pointer = Some("/data/relationships/customer");
        let customer_id = parse_id(&new.customer)
            .filter(|n| data.customers.contains_key(n))
            .ok_or_else(|| {
                let detail = format!("customer {} not found", new.customer);
                Refusal(StatusCode::NOT_FOUND, detail, pointer)
            })?;
        let customer = &data.customers[&customer_id].attributes;
        if customer.get("status").and_then(Value::as_str) == Some("Archived") {
            let detail = "the customer is archived: no account can be opened for it".to_owned();
            return Err(Refusal(StatusCode::BAD_REQUEST, detail, pointer));
        }
        let name = holder_name(customer);
        data.next_id += 1;
        let id = data.next_id;
        let at = rfc3339_ms(now());
        let number = format!("{:010}", 1_000_000_000 + id);
        let attributes = json!({
            "createdAt": at, "updatedAt": at, "name": name,
            "depositProduct": new.deposit_product, "routingNumber": ROUTING_NUMBER,
            "accountNumber": number, "maskedAccountNumber": format!("******{}", &number[6..]),
            "currency": "USD", "balance": 0, "hold": 0, "available": 0,
            "tags": new.tags, "status": "Open",
        });
        let Value::Object(attributes) = attributes else {
            unreachable!("an object literal")
        };
        let account = Account {
            customer_id,
            attributes,
            idempotency_key: new.idempotency_key,
        };
        data.accounts.insert(id, account);
        Ok(id)
    }

    pub(super) fn account_json(id: u64, a: &Account) -> Value {
        json!({
            "type": "depositAccount", "id": id.to_string(), "attributes": a.attributes,
            "relationships": {"customer": {"data": {"type": "customer", "id": a.customer_id.to_string()}}},
        })
    }
}

/// The account holder's name: an individual's first and last name, or a business's name.
fn holder_name(customer: &Map<String, Value>) -> String {
    if let Some(name) = customer.get("name").and_then(Value::as_str) {
        return name.to_owned();
    }
    let full = customer.get("fullName");
    let part = |k: &str| {
        full.and_then(|f| f.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    format!("{} {}", part("first"), part("last"))
        .trim()
        .to_owned()
}

/// `POST /accounts` with a `depositAccount`: `relationships.customer` names the one owner (joint
/// accounts, `relationships.customers`, are not opened by the sandbox); 201 with the account.
pub(super) async fn create_account(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Reply {
    u.org(&headers)?;
    let (a, relationships) = data_of(&bytes, &["depositAccount"])?;
    let Some(customer) = relationships["customer"]["data"]["id"].as_str() else {
        return Err(errors(
            StatusCode::BAD_REQUEST,
            vec![invalid(
                "relationships.customer is required (the sandbox opens single-owner accounts)",
                "/data/relationships/customer",
            )],
        ));
    };
    let new = NewAccount {
        customer: customer.to_owned(),
        deposit_product: string_field(&a, "depositProduct").unwrap_or_default(),
        tags: a.get("tags").cloned().unwrap_or(json!({})),
        idempotency_key: string_field(&a, "idempotencyKey"),
    };
    let mut data = u.data();
    let id = Unit::open_account_locked(&mut data, new).map_err(Refusal::response)?;
    let account = &data.accounts[&id];
    Ok(doc(
        StatusCode::CREATED,
        json!({"data": Unit::account_json(id, account)}),
    ))
}

/// `GET /accounts/{id}`: the org token, or a customer token with `accounts` or `accounts-write`
/// whose customer owns the account and whose `resources` (if any) name it.
pub(super) async fn get_account(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let grant = u.caller(&headers, &["accounts", "accounts-write"])?;
    let data = u.data();
    let n = parse_id(&id)
        .filter(|n| data.accounts.contains_key(n))
        .ok_or_else(|| not_found("account", &id))?;
    let account = &data.accounts[&n];
    if let Some(g) = &grant {
        if g.customer_id != account.customer_id {
            return Err(forbidden("the account belongs to another customer"));
        }
        if g.resources
            .as_ref()
            .is_some_and(|r| !r.accounts.contains(&n))
        {
            return Err(forbidden(
                "the token's resources do not include this account",
            ));
        }
    }
    Ok(doc(
        StatusCode::OK,
        json!({"data": Unit::account_json(n, account)}),
    ))
}
