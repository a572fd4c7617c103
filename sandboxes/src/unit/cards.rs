//! Cards (docs/unit-api.md §12): individual virtual debit cards on deposit accounts, read and
//! changed by the org token or by customer tokens, as Unit gates them.
//!
//! - `POST /cards` (`createCard`): `individualVirtualDebitCard` only (other types get 400); the
//!   account must be open and belong to an active individual customer; 201, `Active`.
//! - `GET /cards` (`getCardsList`), `GET /cards/{id}` (`getCard`): scope `cards` or
//!   `cards-write`.
//! - `POST /cards/{id}/freeze`, `/unfreeze`, `/report-lost`, `/report-stolen`, `/close`: scope
//!   `cards-write`; 200 with the card. `Lost`, `Stolen` and `ClosedByCustomer` are final.
//! - `GET /cards/{id}/secure-data/pin/status` (`getCardPinStatus`): scope `cards-sensitive` or
//!   `cards-sensitive-write` (our reading); `NotSet`, the sandbox sets no PIN.
//!
//! A customer token reaches only its customer's cards (403 for another's) and, when it carries
//! `resources`, only the cards named or on the accounts named (403 otherwise).

use axum::routing::MethodRouter;

use super::*;

/// The scopes that read cards, that change them, and that read their secure data.
const READ: &[&str] = &["cards", "cards-write"];
const WRITE: &[&str] = &["cards-write"];
const SENSITIVE: &[&str] = &["cards-sensitive", "cards-sensitive-write"];

/// The card statuses Unit's spec lists (`VirtualCardStatus`, as filters take them).
const STATUSES: &[&str] = &[
    "Active",
    "Inactive",
    "Stolen",
    "Lost",
    "Frozen",
    "ClosedByCustomer",
    "Unknown",
    "SuspectedFraud",
];

/// The sandbox's BIN (nine digits, as the spec's pattern asks).
const BIN: &str = "400000000";

pub(super) struct Card {
    account_id: u64,
    customer_id: u64,
    attributes: Map<String, Value>,
    idempotency_key: Option<String>,
}

impl Card {
    fn status(&self) -> &str {
        self.attributes
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    fn json(&self, id: u64) -> Value {
        json!({
            "type": "individualVirtualDebitCard", "id": id.to_string(),
            "attributes": self.attributes,
            "relationships": {
                "account": {"data": {"type": "depositAccount", "id": self.account_id.to_string()}},
                "customer": {"data": {"type": "customer", "id": self.customer_id.to_string()}},
            },
        })
    }

    /// Whether a customer token's `resources` (none: all its customer's) cover this card: the
    /// card named, or its account.
    fn covered_by(&self, id: u64, resources: Option<&Resources>) -> bool {
        resources.is_none_or(|r| r.cards.contains(&id) || r.accounts.contains(&self.account_id))
    }
}

/// Refuses a customer token another customer's card, or a card outside its `resources` (403).
fn may_touch(grant: &Grant, id: u64, card: &Card) -> Result<(), Response> {
    if grant.customer_id != card.customer_id {
        return Err(forbidden("the card belongs to another customer"));
    }
    if !card.covered_by(id, grant.resources.as_ref()) {
        return Err(forbidden(
            "the token's resources include neither this card nor its account",
        ));
    }
    Ok(())
}

/// What a new card is issued with.
pub(super) struct NewCard {
    account: String,
    customer: Option<String>,
    tags: Value,
    expiry: Option<String>,
    idempotency_key: Option<String>,
}

impl Unit {
    /// Runs `f` on card `id` for the caller: the org token, or a customer token holding one of
    /// `scopes` whose customer holds the card within its `resources`.
    fn with_card(
        &self,
        headers: &HeaderMap,
        id: &str,
        scopes: &[&str],
        f: impl FnOnce(u64, &mut Card) -> Reply,
    ) -> Reply {
        let grant = self.caller(headers, scopes)?;
        let mut data = self.data();
        let n = parse_id(id).ok_or_else(|| not_found("card", id))?;
        let card = data
            .cards
            .get_mut(&n)
            .ok_or_else(|| not_found("card", id))?;
        if let Some(g) = &grant {
            may_touch(g, n, card)?;
        }
        f(n, card)
    }

    /// The account a new card goes on and its customer, checked: it exists (404), a customer
    /// token's customer owns it and its `resources` allow it (403), it is open, and its customer
    /// is an active individual, the one named if any (400).
    fn card_account(
        data: &Data,
        new: &NewCard,
        grant: Option<&Grant>,
    ) -> Result<(u64, u64), Refusal> {
        let pointer = Some("/data/relationships/account");
        let bad = |detail: &str| Refusal(StatusCode::BAD_REQUEST, detail.to_owned(), pointer);
        let id = parse_id(&new.account)
            .filter(|n| data.accounts.contains_key(n))
            .ok_or_else(|| {
                let detail = format!("account {} not found", new.account);
                Refusal(StatusCode::NOT_FOUND, detail, pointer)
            })?;
        let account = &data.accounts[&id];
        if let Some(g) = grant {
            let allowed = g
                .resources
                .as_ref()
                .is_none_or(|r| r.accounts.contains(&id));
            if g.customer_id != account.customer_id || !allowed {
                let detail = "the customer token may not issue cards on this account".to_owned();
                return Err(Refusal(StatusCode::FORBIDDEN, detail, None));
            }
        }
        if account.status() != "Open" {
            return Err(bad("the account is not open"));
        }
        let customer = data.customers.get(&account.customer_id);
        if customer.is_none_or(|c| c.kind != "individualCustomer") {
            return Err(bad("the account must belong to an individual customer"));
        }
        if customer.and_then(|c| c.attributes.get("status")) == Some(&json!("Archived")) {
            return Err(bad("the account's customer is archived"));
        }
        if new
            .customer
            .as_ref()
            .is_some_and(|c| *c != account.customer_id.to_string())
        {
            let detail = "the customer must be the account's customer".to_owned();
            return Err(Refusal(
                StatusCode::BAD_REQUEST,
                detail,
                Some("/data/relationships/customer"),
            ));
        }
        Ok((id, account.customer_id))
    }

    /// Issues an individual virtual debit card, `Active` at once (virtual cards need no
    /// activation); a key seen before gives the original card (OQ1). Returns its id.
    fn issue_card_locked(
        data: &mut Data,
        new: NewCard,
        grant: Option<&Grant>,
    ) -> Result<u64, Refusal> {
        if let Some(k) = &new.idempotency_key
            && let Some((id, _)) = data
                .cards
                .iter()
                .find(|(_, c)| c.idempotency_key.as_ref() == Some(k))
        {
            return Ok(*id);
        }
        let (account_id, customer_id) = Self::card_account(data, &new, grant)?;
        let expiration = expiration_date(new.expiry.as_deref())?;
        data.next_id += 1;
        let id = data.next_id;
        let at = rfc3339_ms(now());
        let attributes = json!({
            "createdAt": at, "updatedAt": at, "last4Digits": format!("{:04}", id % 10_000),
            "expirationDate": expiration, "bin": BIN, "status": "Active", "tags": new.tags,
        });
        let Value::Object(attributes) = attributes else {
            unreachable!("an object literal")
        };
        let card = Card {
            account_id,
            customer_id,
            attributes,
            idempotency_key: new.idempotency_key,
        };
        data.cards.insert(id, card);
        Ok(id)
    }

    /// Opens a deposit account and an individual virtual debit card on it for customer
    /// `customer_id` (what `POST /_sandbox/customers/{id}/card` does) and gives their ids
    /// (account, card). Calling it again gives the same ids.
    pub fn open_card(&self, customer_id: &str) -> Result<(String, String), String> {
        self.open_card_refusing(customer_id).map_err(|r| r.1)
    }

    fn open_card_refusing(&self, customer_id: &str) -> Result<(String, String), Refusal> {
        let key = format!("sandbox-open-card-{customer_id}");
        let mut data = self.data();
        let kind = parse_id(customer_id).and_then(|n| data.customers.get(&n).map(|c| c.kind));
        if kind.is_some_and(|k| k != "individualCustomer") {
            let detail = "only an individual customer gets an individual card".to_owned();
            return Err(Refusal(StatusCode::BAD_REQUEST, detail, None));
        }
        let account = NewAccount {
            customer: customer_id.to_owned(),
            deposit_product: "checking".into(),
            tags: json!({}),
            idempotency_key: Some(key.clone()),
        };
        let account = Self::open_account_locked(&mut data, account)?.to_string();
        let card = NewCard {
            account: account.clone(),
            customer: None,
            tags: json!({}),
            expiry: None,
            idempotency_key: Some(key),
        };
        let card = Self::issue_card_locked(&mut data, card, None)?;
        Ok((account, card.to_string()))
    }

    /// Card `card_id`'s status (`Active`, `Frozen`, `Lost`...), if the card exists.
    pub fn card_status(&self, card_id: &str) -> Option<String> {
        let n = parse_id(card_id)?;
        self.data().cards.get(&n).map(|c| c.status().to_owned())
    }
}

/// A card's `expirationDate` (YYYY-MM): the requested `expiryDate` (MM/yy, yyyy-MM or yy-MM),
/// which must be 3 to 5 years away (Unit's docs), or by default 4 years from now.
fn expiration_date(requested: Option<&str>) -> Result<String, Refusal> {
    let today = now();
    let (year, month) = (today.year(), i32::from(u8::from(today.month())));
    let Some(text) = requested else {
        return Ok(format!("{:04}-{month:02}", year + 4));
    };
    match parse_expiry(text) {
        Some((y, m)) if (36..=60).contains(&((y - year) * 12 + m - month)) => {
            Ok(format!("{y:04}-{m:02}"))
        }
        _ => Err(Refusal(
            StatusCode::BAD_REQUEST,
            "expiryDate must be MM/yy, yyyy-MM or yy-MM, 3 to 5 years away".into(),
            Some("/data/attributes/expiryDate"),
        )),
    }
}

fn parse_expiry(text: &str) -> Option<(i32, i32)> {
    let (year, month) = match text.split_once('/') {
        Some((m, y)) if y.len() == 2 => (2000 + y.parse::<i32>().ok()?, m),
        Some(_) => return None,
        None => {
            let (y, m) = text.split_once('-')?;
            let y: i32 = y.parse().ok()?;
            (if y < 100 { 2000 + y } else { y }, m)
        }
    };
    let month: i32 = month.parse().ok()?;
    (1..=12).contains(&month).then_some((year, month))
}

/// `POST /cards`: the org token, or a customer token with `cards-write` on its own account.
pub(super) async fn create_card(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Reply {
    let grant = u.caller(&headers, WRITE)?;
    let (a, relationships) = data_of(&bytes, &["individualVirtualDebitCard"])?;
    let Some(account) = relationships["account"]["data"]["id"].as_str() else {
        return Err(errors(
            StatusCode::BAD_REQUEST,
            vec![invalid(
                "relationships.account is required",
                "/data/relationships/account",
            )],
        ));
    };
    let new = NewCard {
        account: account.to_owned(),
        customer: relationships["customer"]["data"]["id"]
            .as_str()
            .map(str::to_owned),
        tags: a.get("tags").cloned().unwrap_or(json!({})),
        expiry: string_field(&a, "expiryDate"),
        idempotency_key: string_field(&a, "idempotencyKey"),
    };
    let mut data = u.data();
    let id = Unit::issue_card_locked(&mut data, new, grant.as_ref()).map_err(Refusal::response)?;
    Ok(doc(
        StatusCode::CREATED,
        json!({"data": data.cards[&id].json(id)}),
    ))
}

/// `GET /cards/{id}` (an `include` is not answered with `included`).
pub(super) async fn get_card(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    u.with_card(&headers, &id, READ, |n, card| {
        Ok(doc(StatusCode::OK, json!({"data": card.json(n)})))
    })
}

/// `GET /cards/{id}/secure-data/pin/status`: `NotSet` (the sandbox sets no PIN).
pub(super) async fn pin_status(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    u.with_card(&headers, &id, SENSITIVE, |_, _| {
        Ok(doc(
            StatusCode::OK,
            json!({"data": {"type": "pinStatus", "attributes": {"status": "NotSet"}}}),
        ))
    })
}

/// A change of a card's status.
#[derive(Clone, Copy)]
pub(super) enum CardAction {
    Freeze,
    Unfreeze,
    ReportLost,
    ReportStolen,
    Close,
}

impl CardAction {
    /// The status this action leads to from `status`, or why it cannot be taken. `Lost`,
    /// `Stolen` and `ClosedByCustomer` cannot be reopened (Unit's card statuses), so nothing
    /// moves a card out of them.
    fn next(self, status: &str) -> Result<&'static str, String> {
        if matches!(status, "Lost" | "Stolen" | "ClosedByCustomer") {
            return Err(format!(
                "the card is {status}, which is final: it cannot be frozen, unfrozen, reported or closed"
            ));
        }
        match (self, status) {
            (Self::Freeze, "Active" | "Inactive") => Ok("Frozen"),
            (Self::Freeze, s) => Err(format!(
                "the card is {s}: only an Active or Inactive card can be frozen"
            )),
            (Self::Unfreeze, "Frozen") => Ok("Active"),
            (Self::Unfreeze, s) => Err(format!(
                "the card is {s}: only a Frozen card can be unfrozen"
            )),
            (Self::ReportLost, _) => Ok("Lost"),
            (Self::ReportStolen, _) => Ok("Stolen"),
            (Self::Close, _) => Ok("ClosedByCustomer"),
        }
    }
}

/// The route of one card action: scope `cards-write`; 200 with the card, or 400 when its status
/// does not allow the action.
pub(super) fn card_action(action: CardAction) -> MethodRouter<Arc<Unit>> {
    post(
        move |State(u): State<Arc<Unit>>, headers: HeaderMap, Path(id): Path<String>| async move {
            u.with_card(&headers, &id, WRITE, |n, card| {
                let next = action.next(card.status()).map_err(|detail| {
                    error(StatusCode::BAD_REQUEST, "Invalid card status", &detail)
                })?;
                card.attributes.insert("status".into(), json!(next));
                card.attributes
                    .insert("updatedAt".into(), json!(rfc3339_ms(now())));
                Ok(doc(StatusCode::OK, json!({"data": card.json(n)})))
            })
        },
    )
}

/// `page[limit]` (at most 1000, 100 by default), `page[offset]` and `sort` (`createdAt`, the
/// default, or `-createdAt`) of a list call: (limit, offset, newest first).
fn page_of(query: &HashMap<String, String>) -> Result<(usize, usize, bool), Response> {
    let bad = |detail: &str, pointer: &str| {
        errors(StatusCode::BAD_REQUEST, vec![invalid(detail, pointer)])
    };
    let number = |key: &str, default: usize| match query.get(key) {
        None => Some(default),
        Some(v) => v.parse::<usize>().ok(),
    };
    let limit = number("page[limit]", 100)
        .filter(|l| *l <= 1000)
        .ok_or_else(|| {
            bad(
                "page[limit] must be an integer from 0 to 1000",
                "/page/limit",
            )
        })?;
    let offset = number("page[offset]", 0).ok_or_else(|| {
        bad(
            "page[offset] must be a non-negative integer",
            "/page/offset",
        )
    })?;
    let newest_first = match query.get("sort").map(String::as_str) {
        None | Some("" | "createdAt") => false,
        Some("-createdAt") => true,
        Some(_) => return Err(bad("sort must be createdAt or -createdAt", "/sort")),
    };
    Ok((limit, offset, newest_first))
}

/// The filters of `GET /cards` as one predicate: `filter[customerId]`, `filter[accountId]`,
/// `filter[status][i]` (the spec's statuses) and `filter[tags]` (a JSON object).
fn card_filter(query: &HashMap<String, String>) -> Result<impl Fn(&Card) -> bool, Response> {
    let statuses: Vec<String> = query
        .iter()
        .filter(|(k, _)| k.starts_with("filter[status]"))
        .map(|(_, v)| v.clone())
        .collect();
    let tags: Map<String, Value> = match query.get("filter[tags]") {
        None => Map::new(),
        Some(text) => serde_json::from_str(text).map_err(|_| {
            let problem = invalid("filter[tags] must be a JSON object", "/filter/tags");
            errors(StatusCode::BAD_REQUEST, vec![problem])
        })?,
    };
    if let Some(s) = statuses.iter().find(|s| !STATUSES.contains(&s.as_str())) {
        let problem = invalid(&format!("unknown card status {s}"), "/filter/status");
        return Err(errors(StatusCode::BAD_REQUEST, vec![problem]));
    }
    let customer = query.get("filter[customerId]").cloned();
    let account = query.get("filter[accountId]").cloned();
    Ok(move |c: &Card| {
        customer
            .as_ref()
            .is_none_or(|id| *id == c.customer_id.to_string())
            && account
                .as_ref()
                .is_none_or(|id| *id == c.account_id.to_string())
            && (statuses.is_empty() || statuses.iter().any(|s| s == c.status()))
            && tags
                .iter()
                .all(|(k, v)| c.attributes.get("tags").and_then(|t| t.get(k)) == Some(v))
    })
}

/// `GET /cards`: the org token sees every card; a customer token its customer's cards within its
/// `resources`. Filtered, sorted and paged as the spec says, with `meta.pagination`.
pub(super) async fn list_cards(
    State(u): State<Arc<Unit>>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Reply {
    let grant = u.caller(&headers, READ)?;
    let (limit, offset, newest_first) = page_of(&query)?;
    let wanted = card_filter(&query)?;
    let data = u.data();
    let visible = |(id, c): &(&u64, &Card)| {
        grant.as_ref().is_none_or(|g| {
            g.customer_id == c.customer_id && c.covered_by(**id, g.resources.as_ref())
        })
    };
    let mut matching: Vec<Value> = data
        .cards
        .iter()
        .filter(|entry| visible(entry) && wanted(entry.1))
        .map(|(id, c)| c.json(*id))
        .collect();
    if newest_first {
        matching.reverse();
    }
    let total = matching.len();
    let list: Vec<Value> = matching.into_iter().skip(offset).take(limit).collect();
    Ok(doc(
        StatusCode::OK,
        json!({"data": list, "meta": {"pagination": {"total": total, "limit": limit, "offset": offset}}}),
    ))
}

/// `POST /_sandbox/customers/{id}/card` (no auth): opens a deposit account and an individual
/// virtual debit card for the customer; 201 `{"accountId", "cardId"}`, the same ids every time.
pub(super) async fn sandbox_open_card(
    State(u): State<Arc<Unit>>,
    Path(id): Path<String>,
) -> Response {
    match u.open_card_refusing(&id) {
        Ok((account, card)) => (
            StatusCode::CREATED,
            Json(json!({"accountId": account, "cardId": card})),
        )
            .into_response(),
        Err(refusal) => refusal.response(),
    }
}
