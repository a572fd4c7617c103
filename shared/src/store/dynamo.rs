//! DynamoDB `UserStore`: one table, keys `pk` (S) + `sk` (S), TTL attribute `expires_at`.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | user record (and its customer-token counter) | `USER#<user_id>` | `PROFILE` |
//! | application → user | `APP#<application_id>` | `LINK` |
//! | processed event (TTL) | `EVENT#<event_id>` | `EVENT` |
//! | audit entry | `AUDIT#<user_id>` | `<issued_at>#<request_id>` |
//! | attempt counter (TTL) | `ATTEMPTS#<key>` | `ATTEMPTS` |
//!
//! Every write that must not clash is a conditional write; reads are strongly consistent.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TimeToLiveSpecification,
};

use super::{
    ApplicationLinks, Attempt, AuditEntry, AuditLog, EventMarkers, RateLimits, StoreError,
    TokenSlot, UserRecord, UserRecords, check_new,
};

/// The TTL attribute of the table.
pub const TTL_ATTRIBUTE: &str = "expires_at";

type Item = HashMap<String, AttributeValue>;

/// A `UserStore` on a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn unavailable<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let message = DisplayErrorContext(&e).to_string();
    tracing::warn!(error = %message, "DynamoDB call failed");
    StoreError::Unavailable(message)
}

fn is_condition_failure<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error()
        .and_then(|se| se.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

fn string(item: &Item, name: &str) -> Result<String, StoreError> {
    optional(item, name)?.ok_or_else(|| StoreError::Corrupt(format!("missing {name}")))
}

fn optional(item: &Item, name: &str) -> Result<Option<String>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
        Some(_) => Err(StoreError::Corrupt(format!("{name} is not a string"))),
    }
}

/// An optional attribute that must parse as one of the domain's identities.
fn identity<T>(
    item: &Item,
    name: &str,
    parse: fn(String) -> Result<T, crate::domain::Invalid>,
) -> Result<Option<T>, StoreError> {
    optional(item, name)?
        .map(|text| parse(text).map_err(|e| StoreError::Corrupt(format!("{name}: {e}"))))
        .transpose()
}

fn number(item: &Item, name: &str) -> Result<u64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("{name} is not a number"))),
        _ => Err(StoreError::Corrupt(format!("missing {name}"))),
    }
}

fn key_of_attempts(key: &str) -> Item {
    self::key(format!("ATTEMPTS#{key}"), "ATTEMPTS")
}

fn user_key(user_id: &str) -> Item {
    key(format!("USER#{user_id}"), "PROFILE")
}

/// The attributes of a user record that [`user_item`] writes and `update_user` owns: each is
/// set when the record has it and removed when not. The customer-token counter
/// ([`TOKEN_COUNT`], [`TOKEN_WINDOW_START`]) is not among them, so an update leaves it alone.
const USER_ATTRIBUTES: [&str; 21] = [
    "user_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "form_id",
    "form_url",
    "application_id",
    "application_status",
    "customer_id",
    "second_factor_verified_at",
    "pending_customer_id",
    "onboarding_checked_at",
    "totp_id",
    "totp_confirmed_at",
    "customer_archived_at",
    "application_submitted_at",
    "deleted",
    "created_at",
    "updated_at",
    "version",
];

/// Customer tokens counted in the current window, on the user's record.
const TOKEN_COUNT: &str = "token_count";
/// When that window started (epoch seconds).
const TOKEN_WINDOW_START: &str = "token_window_start";

fn user_item(r: &UserRecord) -> Item {
    let mut item = user_key(&r.user_id);
    item.insert("user_id".into(), s(r.user_id.as_str()));
    for (name, value) in [
        ("email", r.email.as_deref()),
        ("phone", r.phone.as_deref()),
        ("first_name", r.first_name.as_deref()),
        ("last_name", r.last_name.as_deref()),
        ("form_id", r.form_id.as_deref()),
        ("form_url", r.form_url.as_deref()),
        ("application_id", r.application_id.as_deref()),
        ("customer_id", r.customer_id.as_deref()),
        (
            "second_factor_verified_at",
            r.second_factor_verified_at.as_deref(),
        ),
        ("pending_customer_id", r.pending_customer_id.as_deref()),
        ("onboarding_checked_at", r.onboarding_checked_at.as_deref()),
        ("totp_id", r.totp_id.as_deref()),
        ("totp_confirmed_at", r.totp_confirmed_at.as_deref()),
        ("customer_archived_at", r.customer_archived_at.as_deref()),
        (
            "application_submitted_at",
            r.application_submitted_at.as_deref(),
        ),
    ] {
        if let Some(v) = value {
            item.insert(name.into(), s(v));
        }
    }
    if let Some(status) = &r.application_status {
        item.insert("application_status".into(), s(status.as_str()));
    }
    item.insert("deleted".into(), AttributeValue::Bool(r.deleted));
    item.insert("created_at".into(), s(&r.created_at));
    item.insert("updated_at".into(), s(&r.updated_at));
    item.insert("version".into(), AttributeValue::N(r.version.to_string()));
    item
}

fn user_from(item: &Item) -> Result<UserRecord, StoreError> {
    use crate::domain::{ApplicationId, CustomerId, FormId, UserId};
    Ok(UserRecord {
        user_id: identity(item, "user_id", UserId::parse)?
            .ok_or_else(|| StoreError::Corrupt("missing user_id".into()))?,
        email: optional(item, "email")?,
        phone: optional(item, "phone")?,
        first_name: optional(item, "first_name")?,
        last_name: optional(item, "last_name")?,
        form_id: identity(item, "form_id", FormId::parse)?,
        form_url: optional(item, "form_url")?,
        application_id: legacy_link_key_is_none(optional(item, "application_id")?)
            .map(ApplicationId::parse)
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("application_id: {e}")))?,
        application_status: optional(item, "application_status")?
            .map(|text: String| crate::domain::ApplicationStatus::parse(&text)),
        customer_id: identity(item, "customer_id", CustomerId::parse)?,
        second_factor_verified_at: optional(item, "second_factor_verified_at")?,
        pending_customer_id: identity(item, "pending_customer_id", CustomerId::parse)?,
        onboarding_checked_at: optional(item, "onboarding_checked_at")?,
        totp_id: optional(item, "totp_id")?,
        totp_confirmed_at: optional(item, "totp_confirmed_at")?,
        customer_archived_at: optional(item, "customer_archived_at")?,
        application_submitted_at: optional(item, "application_submitted_at")?,
        deleted: matches!(item.get("deleted"), Some(AttributeValue::Bool(true))),
        created_at: string(item, "created_at")?,
        updated_at: string(item, "updated_at")?,
        version: number(item, "version")?,
    })
}

/// Records written before 2026-12-05 hold an operator-linked customer's link key
/// (`customer-<id>`) as their `application_id`: such a customer has no application.
fn legacy_link_key_is_none(application_id: Option<String>) -> Option<String> {
    application_id.filter(|id| !id.starts_with("customer-"))
}

fn audit_from(item: &Item) -> Result<AuditEntry, StoreError> {
    let scopes = match item.get("scopes") {
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| {
                v.as_s()
                    .ok()
                    .and_then(|text| crate::domain::Scope::parse(text.as_str()).ok())
                    .ok_or_else(|| StoreError::Corrupt("a scope is not a Unit scope name".into()))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(StoreError::Corrupt("missing scopes".into())),
    };
    Ok(AuditEntry {
        user_id: crate::domain::UserId::parse(string(item, "user_id")?)
            .map_err(|e| StoreError::Corrupt(format!("user_id: {e}")))?,
        event: optional(item, "event")?,
        // An entry about the user only holds an empty customer id.
        customer_id: match optional(item, "customer_id")?.filter(|c| !c.is_empty()) {
            Some(c) => Some(
                crate::domain::CustomerId::parse(c)
                    .map_err(|e| StoreError::Corrupt(format!("customer_id: {e}")))?,
            ),
            None => None,
        },
        scopes,
        issued_at: string(item, "issued_at")?,
        request_id: string(item, "request_id")?,
        expires_in: u32::try_from(number(item, "expires_in")?)
            .map_err(|_| StoreError::Corrupt("expires_in out of range".into()))?,
        upgradable_scopes: match optional(item, "upgradable_scopes")? {
            Some(text) => crate::domain::Scopes::parse(&text)
                .map_err(|(bad, _)| StoreError::Corrupt(format!("upgradable_scopes: {bad}")))?,
            None => crate::domain::Scopes::default(),
        },
        resources: match item.get("resources") {
            Some(AttributeValue::L(list)) => list
                .iter()
                .map(|v| match v {
                    AttributeValue::S(x) => Ok(x.clone()),
                    _ => Err(StoreError::Corrupt("resources".into())),
                })
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
            Some(_) => return Err(StoreError::Corrupt("resources".into())),
        },
    })
}

impl DynamoStore {
    /// A store on `table` through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Creates the table (on-demand, TTL on `expires_at`) unless it exists: for local DynamoDB
    /// endpoints and tests. Deployed tables come from `template.yaml`, with the same schema.
    pub async fn create_table_if_missing(&self) -> Result<(), StoreError> {
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        };
        let key_element = |name: &str, key_type| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("pk")?)
            .attribute_definitions(attribute("sk")?)
            .key_schema(key_element("pk", KeyType::Hash)?)
            .key_schema(key_element("sk", KeyType::Range)?)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_in_use_exception()) =>
            {
                return Ok(());
            }
            Err(e) => return Err(unavailable(e)),
        }
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(TTL_ATTRIBUTE)
            .enabled(true)
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(ttl)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item)
    }

    /// Takes one off the counter `counter` of the item at `key` if it is above zero; nothing if
    /// it is not, and never creates the item.
    async fn give_back(&self, key: Item, counter: &str) -> Result<(), StoreError> {
        let released = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression("ADD #counter :minus")
            .condition_expression("#counter > :zero")
            .expression_attribute_names("#counter", counter)
            .expression_attribute_values(":minus", AttributeValue::N("-1".into()))
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .send()
            .await;
        match released {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// A conditional update of the user's record that returns it: the new item on success, the
    /// old one (if any) with a failed condition. Names `#start`, `#count`, `#deleted` and the
    /// value `:true` are bound.
    fn update_record(
        &self,
        user_id: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(user_key(user_id)))
            .expression_attribute_names("#start", TOKEN_WINDOW_START)
            .expression_attribute_names("#count", TOKEN_COUNT)
            .expression_attribute_names("#deleted", "deleted")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
    }
}

/// The item a failed update condition returned (`ALL_OLD`), if there was one.
fn old_item<R>(e: &SdkError<UpdateItemError, R>) -> Option<&Item> {
    match e.as_service_error() {
        Some(UpdateItemError::ConditionalCheckFailedException(c)) => {
            c.item.as_ref().filter(|item| !item.is_empty())
        }
        _ => None,
    }
}

/// The record a counting update returned: the slot is taken.
fn taken(item: Option<Item>) -> Result<TokenSlot, StoreError> {
    let item = item.ok_or_else(|| StoreError::Corrupt("the update returned no record".into()))?;
    user_from(&item).map(TokenSlot::Taken)
}

/// A full window that started at `start`.
fn full(start: i64, window: u32, now: i64) -> TokenSlot {
    TokenSlot::Full {
        retry_after: u64::try_from(start + i64::from(window) - now)
            .unwrap_or(1)
            .max(1),
    }
}

/// What a failed token count saw on the record.
enum Window {
    /// No record: no slot can be taken.
    NoUser,
    /// A deleted record: no slot can be taken.
    Deleted,
    /// No window yet.
    Unstarted,
    /// A window that started after the cutoff, with `count` tokens.
    Current { start: i64, count: u64 },
    /// A window that started at or before the cutoff.
    Elapsed,
}

fn window_of(item: Option<&Item>, cutoff: i64) -> Result<Window, StoreError> {
    let Some(item) = item else {
        return Ok(Window::NoUser);
    };
    if matches!(item.get("deleted"), Some(AttributeValue::Bool(true))) {
        return Ok(Window::Deleted);
    }
    if !item.contains_key(TOKEN_WINDOW_START) {
        return Ok(Window::Unstarted);
    }
    let start = i64::try_from(number(item, TOKEN_WINDOW_START)?)
        .map_err(|_| StoreError::Corrupt(format!("{TOKEN_WINDOW_START} out of range")))?;
    if start <= cutoff {
        return Ok(Window::Elapsed);
    }
    let count = number(item, TOKEN_COUNT)?;
    Ok(Window::Current { start, count })
}

#[async_trait]
impl UserRecords for DynamoStore {
    async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
        self.get(user_key(user_id))
            .await?
            .as_ref()
            .map(user_from)
            .transpose()
    }

    async fn create_user(&self, record: &UserRecord) -> Result<(), StoreError> {
        check_new(record)?;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(user_item(record)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::AlreadyExists),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn update_user(&self, record: &UserRecord) -> Result<UserRecord, StoreError> {
        let updated = UserRecord {
            version: record.version + 1,
            ..record.clone()
        };
        // An `UpdateItem` of the record's own attributes, not a `PutItem` of the whole item:
        // the token counter beside them must survive an update.
        let mut item = user_item(&updated);
        let (mut set, mut remove) = (Vec::new(), Vec::new());
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(user_key(&updated.user_id)));
        for name in USER_ATTRIBUTES {
            update = update.expression_attribute_names(format!("#{name}"), name);
            match item.remove(name) {
                Some(value) => {
                    update = update.expression_attribute_values(format!(":{name}"), value);
                    set.push(format!("#{name} = :{name}"));
                }
                None => remove.push(format!("#{name}")),
            }
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let written = update
            .update_expression(expression)
            .condition_expression("attribute_exists(pk) AND #version = :expected")
            .expression_attribute_values(":expected", AttributeValue::N(record.version.to_string()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match written {
            Ok(_) => Ok(updated),
            Err(e) if is_condition_failure(&e) => Err(if old_item(&e).is_some() {
                StoreError::VersionConflict
            } else {
                StoreError::NotFound
            }),
            Err(e) => Err(unavailable(e)),
        }
    }
}

#[async_trait]
impl ApplicationLinks for DynamoStore {
    async fn link_application(
        &self,
        application_id: &str,
        user_id: &crate::domain::UserId,
    ) -> Result<(), StoreError> {
        let mut item = key(format!("APP#{application_id}"), "LINK");
        item.insert("user_id".into(), s(user_id.as_str()));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR user_id = :user")
            .expression_attribute_values(":user", s(user_id.as_str()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::Conflict(format!(
                "application {application_id} is bound to another user"
            ))),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn unlink_application(
        &self,
        application_id: &str,
        user_id: &crate::domain::UserId,
    ) -> Result<(), StoreError> {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("APP#{application_id}"), "LINK")))
            .condition_expression("attribute_not_exists(pk) OR user_id = :user")
            .expression_attribute_values(":user", s(user_id.as_str()))
            .send()
            .await;
        match delete {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::Conflict(format!(
                "application {application_id} is bound to another user"
            ))),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn user_for_application(
        &self,
        application_id: &str,
    ) -> Result<Option<crate::domain::UserId>, StoreError> {
        match self
            .get(key(format!("APP#{application_id}"), "LINK"))
            .await?
        {
            Some(item) => identity(&item, "user_id", crate::domain::UserId::parse)?
                .map(Some)
                .ok_or_else(|| StoreError::Corrupt("missing user_id".into())),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl EventMarkers for DynamoStore {
    async fn record_event(&self, event_id: &str, expires_at: i64) -> Result<bool, StoreError> {
        let mut item = key(format!("EVENT#{event_id}"), "EVENT");
        item.insert(
            TTL_ATTRIBUTE.into(),
            AttributeValue::N(expires_at.to_string()),
        );
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn event_processed(&self, event_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .get(key(format!("EVENT#{event_id}"), "EVENT"))
            .await?
            .is_some())
    }
}

#[async_trait]
impl AuditLog for DynamoStore {
    async fn put_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let mut item = key(
            format!("AUDIT#{}", entry.user_id),
            &format!("{}#{}", entry.issued_at, entry.request_id),
        );
        item.insert("user_id".into(), s(entry.user_id.as_str()));
        if let Some(event) = &entry.event {
            item.insert("event".into(), s(event));
        }
        item.insert(
            "customer_id".into(),
            s(entry.customer_id.as_deref().unwrap_or_default()),
        );
        item.insert(
            "scopes".into(),
            AttributeValue::L(entry.scopes.iter().map(|x| s(x.as_str())).collect()),
        );
        item.insert("issued_at".into(), s(&entry.issued_at));
        item.insert("request_id".into(), s(&entry.request_id));
        item.insert(
            "expires_in".into(),
            AttributeValue::N(entry.expires_in.to_string()),
        );
        if !entry.upgradable_scopes.is_empty() {
            item.insert(
                "upgradable_scopes".into(),
                s(entry.upgradable_scopes.to_string()),
            );
        }
        if !entry.resources.is_empty() {
            item.insert(
                "resources".into(),
                AttributeValue::L(entry.resources.iter().map(s).collect()),
            );
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn audit_for_user(&self, user_id: &str) -> Result<Vec<AuditEntry>, StoreError> {
        let mut entries = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(format!("AUDIT#{user_id}")))
                .consistent_read(true)
                .scan_index_forward(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in out.items() {
                entries.push(audit_from(item)?);
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(entries),
            }
        }
    }
}

#[async_trait]
impl RateLimits for DynamoStore {
    async fn reserve_attempt(
        &self,
        key: &str,
        max: u32,
        window: u32,
        now: i64,
    ) -> Result<Attempt, StoreError> {
        let n = |v: i64| AttributeValue::N(v.to_string());
        let cutoff = now - i64::from(window);
        let expires = now + i64::from(window);
        // Count this attempt in the current window, if the window has room.
        let counted = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of_attempts(key)))
            .update_expression(
                "SET window_start = if_not_exists(window_start, :now), expires_at = if_not_exists(expires_at, :exp) \
                 ADD attempts :one",
            )
            .condition_expression("attribute_not_exists(pk) OR (window_start > :cutoff AND attempts < :max)")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":exp", n(expires))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cutoff", n(cutoff))
            .expression_attribute_values(":max", n(i64::from(max)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        match counted {
            Ok(out) => {
                let count = out
                    .attributes()
                    .and_then(|a| number(a, "attempts").ok())
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(max);
                return Ok(Attempt::Granted { count });
            }
            Err(e) if is_condition_failure(&e) => {}
            Err(e) => return Err(unavailable(e)),
        }
        // Full, or the window has passed: start a new window if it has.
        let restarted = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of_attempts(key)))
            .update_expression("SET attempts = :one, window_start = :now, expires_at = :exp")
            .condition_expression("window_start <= :cutoff")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":exp", n(expires))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cutoff", n(cutoff))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match restarted {
            Ok(_) => Ok(Attempt::Granted { count: 1 }),
            Err(e) if is_condition_failure(&e) => {
                let started = old_item(&e).and_then(|item| number(item, "window_start").ok());
                let window_end = started.map_or(expires, |s| s as i64 + i64::from(window));
                Ok(Attempt::Refused {
                    retry_after: u64::try_from(window_end - now).unwrap_or(1).max(1),
                })
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn release_attempt(&self, key: &str) -> Result<(), StoreError> {
        self.give_back(key_of_attempts(key), "attempts").await
    }

    async fn clear_attempts(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_of_attempts(key)))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn take_token_slot(
        &self,
        user_id: &str,
        max: u32,
        window: u32,
        now: i64,
    ) -> Result<TokenSlot, StoreError> {
        let n = |v: i64| AttributeValue::N(v.to_string());
        let cutoff = now - i64::from(window);
        // Count in the current window; restart one that has passed. A request that loses a race
        // to restart counts in the window the winner started.
        let mut restart = false;
        for _ in 0..4 {
            let update = self
                .update_record(user_id)
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":cutoff", n(cutoff));
            let update = if restart {
                update
                    .update_expression("SET #start = :now, #count = :one")
                    .condition_expression(
                        "attribute_exists(pk) AND NOT (#deleted = :true) AND #start <= :cutoff",
                    )
            } else {
                update
                    .update_expression("SET #start = if_not_exists(#start, :now) ADD #count :one")
                    .condition_expression(
                        "attribute_exists(pk) AND NOT (#deleted = :true) \
                         AND (attribute_not_exists(#start) OR (#start > :cutoff AND #count < :max))",
                    )
                    .expression_attribute_values(":max", n(i64::from(max)))
            };
            let old = match update.send().await {
                Ok(out) => return taken(out.attributes),
                Err(e) if is_condition_failure(&e) => old_item(&e).cloned(),
                Err(e) => return Err(unavailable(e)),
            };
            restart = match window_of(old.as_ref(), cutoff)? {
                Window::NoUser => return Ok(TokenSlot::NoUser),
                Window::Deleted => return Ok(TokenSlot::Deleted),
                Window::Current { start, count } if count >= u64::from(max) => {
                    return Ok(full(start, window, now));
                }
                Window::Current { .. } | Window::Unstarted => false,
                Window::Elapsed => true,
            };
        }
        // Still racing after four updates: refuse rather than count past the limit.
        Ok(TokenSlot::Full { retry_after: 1 })
    }

    async fn give_back_token_slot(&self, user_id: &str) -> Result<(), StoreError> {
        self.give_back(user_key(user_id), TOKEN_COUNT).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    #[ignore = "needs moto: `make test` runs it (or set MOTO_URL and pass --include-ignored)"]
    async fn dynamodb_passes_the_contract() {
        let url = std::env::var("MOTO_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .expect("MOTO_URL is not set: run `make test`, which starts moto");
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(url)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .load()
            .await;
        let store = DynamoStore::new(
            Client::new(&config),
            format!("contract-{}", uuid::Uuid::new_v4()),
        );
        store.create_table_if_missing().await.unwrap();
        store.create_table_if_missing().await.unwrap();
        super::super::contract::run(std::sync::Arc::new(store.clone())).await;
        // A record written without `deleted` (by hand, say) is not deleted, as `user_from`
        // reads it: it takes a slot.
        let mut item = user_item(&UserRecord {
            created_at: "t0".into(),
            updated_at: "t0".into(),
            ..UserRecord::new("user-test-written-by-hand".parse().unwrap())
        });
        item.remove("deleted");
        store
            .client
            .put_item()
            .table_name(&store.table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
        assert!(matches!(
            store
                .take_token_slot("user-test-written-by-hand", 1, 60, 1_800_000_000)
                .await
                .unwrap(),
            TokenSlot::Taken(r) if !r.deleted
        ));
    }

    #[test]
    fn an_update_owns_every_attribute_of_a_record_and_not_the_counter() {
        let some = || Some("x".to_owned());
        let full = UserRecord {
            user_id: "user-test-1".parse().unwrap(),
            email: some(),
            phone: some(),
            first_name: some(),
            last_name: some(),
            form_id: Some("17".parse().unwrap()),
            form_url: some(),
            application_id: Some("53".parse().unwrap()),
            application_status: Some(crate::domain::ApplicationStatus::Pending),
            customer_id: Some("10000".parse().unwrap()),
            second_factor_verified_at: some(),
            pending_customer_id: Some("10001".parse().unwrap()),
            onboarding_checked_at: some(),
            totp_id: some(),
            totp_confirmed_at: some(),
            customer_archived_at: some(),
            application_submitted_at: some(),
            deleted: true,
            created_at: "t0".into(),
            updated_at: "t1".into(),
            version: 2,
        };
        let mut written: Vec<String> = user_item(&full).into_keys().collect();
        written.retain(|name| name != "pk" && name != "sk");
        written.sort();
        let mut owned = USER_ATTRIBUTES.map(str::to_owned).to_vec();
        owned.sort();
        assert_eq!(written, owned);
        assert!(
            !owned
                .iter()
                .any(|a| a == TOKEN_COUNT || a == TOKEN_WINDOW_START)
        );
    }

    #[test]
    fn a_record_maps_to_an_item_and_back() {
        let r = UserRecord {
            email: Some("a@b.c".into()),
            customer_id: Some("10000".parse().unwrap()),
            created_at: "t0".into(),
            updated_at: "t1".into(),
            version: 7,
            ..UserRecord::new("user-test-1".parse().unwrap())
        };
        let item = user_item(&r);
        assert_eq!(item["pk"], s("USER#user-test-1"));
        assert!(!item.contains_key("phone"));
        assert_eq!(user_from(&item).unwrap(), r);
        let mut broken = item.clone();
        broken.insert("version".into(), s("seven"));
        assert!(matches!(user_from(&broken), Err(StoreError::Corrupt(_))));
        // Ids are parsed as they are read: one not of its kind is a corrupt item, not a value.
        for (name, value) in [
            ("user_id", "10000"),
            ("customer_id", "customer-10000"),
            ("form_id", "user-test-1"),
            ("pending_customer_id", ""),
        ] {
            let mut wrong = item.clone();
            wrong.insert(name.into(), s(value));
            assert!(
                matches!(user_from(&wrong), Err(StoreError::Corrupt(ref e)) if e.starts_with(name)),
                "{name}"
            );
        }
    }

    #[test]
    fn an_old_records_customer_link_key_reads_as_no_application() {
        // Before 2026-12-05 an operator-linked customer without an application had its link
        // key in `application_id`.
        let mut item = user_item(&UserRecord {
            customer_id: Some("10000".parse().unwrap()),
            application_status: Some(crate::domain::ApplicationStatus::Approved),
            ..UserRecord::new("user-test-1".parse().unwrap())
        });
        item.insert("application_id".into(), s("customer-10000"));
        let r = user_from(&item).unwrap();
        assert_eq!(r.application_id, None);
        assert_eq!(r.customer_id.as_deref(), Some("10000"));
        assert!(
            !user_item(&r).contains_key("application_id"),
            "written back without it"
        );
    }
}
