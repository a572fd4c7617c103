//! User mappings: the store's ports, one per concern (user records, application links, event
//! markers, the audit trail, rate limits; `UserStore` is all of them), and their adapters
//! (DynamoDB, and memory for local runs and unit tests). Both pass one contract suite
//! (`contract.rs`), so they behave the same: conditional creates, optimistic versioning, and
//! idempotency markers.

use crate::domain::{ApplicationId, ApplicationStatus, CustomerId, FormId, UserId};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[cfg(feature = "aws")]
mod dynamo;
mod memory;
mod slots;

#[cfg(test)]
pub(crate) mod contract;

#[cfg(feature = "aws")]
pub use dynamo::DynamoStore;
pub use memory::MemoryStore;
pub use slots::Slots;

/// A user's onboarding record, keyed by the Stytch `user_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Stytch `user_id` (= Unit `jwtSubject`).
    pub user_id: UserId,
    /// Contact details as Stytch last told us.
    pub email: Option<String>,
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Unit application form.
    pub form_id: Option<FormId>,
    pub form_url: Option<String>,
    /// Unit application and its status. A customer an operator linked without an application
    /// has none (its status is `Approved`; the table links it under
    /// [`customer_link_key`](crate::onboarding::customer_link_key)).
    pub application_id: Option<ApplicationId>,
    pub application_status: Option<ApplicationStatus>,
    /// When a direct application was sent to Unit and its outcome is not known yet (RFC 3339):
    /// set before the create, cleared when the application is recorded or surely not made.
    /// While it is recent, the user's application is `application_pending` and another is
    /// not sent (a retry would race the first at Unit).
    pub application_submitted_at: Option<String>,
    /// Unit customer, once approved.
    pub customer_id: Option<CustomerId>,
    /// When the user first stepped up with a verified TOTP (RFC 3339): from then on, a new
    /// enrolment needs a recent second factor too.
    pub second_factor_verified_at: Option<String>,
    /// A customer an operator is binding (`bridge-admin`), written before Unit is patched: no
    /// token for it until Unit's `jwtSubject` is confirmed and `customer_id` holds it.
    pub pending_customer_id: Option<CustomerId>,
    /// When Unit was last asked for this user's onboarding state (RFC 3339), so that
    /// `GET /onboarding` asks at most once per `ONBOARDING_REFRESH_SECONDS`.
    pub onboarding_checked_at: Option<String>,
    /// The TOTP registration enrolled through `POST /mfa/totp` (Stytch's `totp_id`).
    pub totp_id: Option<String>,
    /// When that TOTP was confirmed by a proof of the contact on the Unit customer (RFC 3339).
    pub totp_confirmed_at: Option<String>,
    /// When Unit's `customer.archived` for `customer_id` was applied (RFC 3339): write and
    /// sensitive tokens are refused from then on, and the user does not apply again.
    pub customer_archived_at: Option<String>,
    /// The Stytch user was deleted.
    pub deleted: bool,
    /// RFC 3339 times.
    pub created_at: String,
    pub updated_at: String,
    /// Optimistic-concurrency version: 1 on create, +1 on every update.
    pub version: u64,
}

/// An audit entry per customer token issued (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub user_id: UserId,
    /// What happened, for entries other than a customer token (e.g. `totp_replaced`); `None`
    /// for a token, whose customer, scopes and lifetime the other fields hold.
    pub event: Option<String>,
    /// The token's customer; `None` for an entry about the user only.
    pub customer_id: Option<CustomerId>,
    pub scopes: crate::domain::Scopes,
    /// RFC 3339.
    pub issued_at: String,
    pub request_id: String,
    pub expires_in: u32,
    /// Scopes Unit's components may upgrade the token to with Unit's SMS code (empty: none).
    pub upgradable_scopes: crate::domain::Scopes,
    /// What the token was limited to, as `card:<id>` or `account:<id>` (empty: the whole
    /// customer).
    pub resources: Vec<String>,
}

/// A store failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A create found the item already there.
    #[error("already exists")]
    AlreadyExists,
    /// An update's expected version is not the stored one (someone else wrote first).
    #[error("version conflict")]
    VersionConflict,
    /// The item to update does not exist.
    #[error("not found")]
    NotFound,
    /// A link points elsewhere (e.g. an application id already bound to another user).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store could not be reached or refused the call (throttling, outage): retryable.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// An item in the store is not in our format.
    #[error("corrupt item: {0}")]
    Corrupt(String),
}

/// The user records, keyed by Stytch `user_id`.
#[async_trait]
pub trait UserRecords: Send + Sync {
    /// The user's record, if any.
    async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError>;

    /// Creates a record (its `version` must be 1); `AlreadyExists` if one is there.
    async fn create_user(&self, record: &UserRecord) -> Result<(), StoreError>;

    /// Writes `record` if the stored version still equals `record.version`, storing it with
    /// `version + 1`, which is returned. `VersionConflict` if another write came first, `NotFound`
    /// if there is no record.
    async fn update_user(&self, record: &UserRecord) -> Result<UserRecord, StoreError>;
}

/// Which user each Unit application belongs to.
#[async_trait]
pub trait ApplicationLinks: Send + Sync {
    /// Binds a Unit application id to a user (idempotent for the same user; `Conflict` for another).
    async fn link_application(
        &self,
        application_id: &str,
        user_id: &UserId,
    ) -> Result<(), StoreError>;

    /// Undoes [`ApplicationLinks::link_application`] for this user (a link to another user is a
    /// `Conflict` and stays; no link is fine).
    async fn unlink_application(
        &self,
        application_id: &str,
        user_id: &UserId,
    ) -> Result<(), StoreError>;

    /// The user an application id (or a customer's link key) is bound to.
    async fn user_for_application(
        &self,
        application_id: &str,
    ) -> Result<Option<UserId>, StoreError>;
}

/// Markers of the webhook events already applied.
#[async_trait]
pub trait EventMarkers: Send + Sync {
    /// Records that event `event_id` has been processed, until `expires_at` (epoch seconds).
    /// Returns `false` if it was already recorded.
    async fn record_event(&self, event_id: &str, expires_at: i64) -> Result<bool, StoreError>;

    /// Whether event `event_id` has been recorded as processed.
    async fn event_processed(&self, event_id: &str) -> Result<bool, StoreError>;
}

/// The audit trail: one entry per customer token, and per authenticator replaced.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends an audit entry.
    async fn put_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;

    /// The user's audit entries, oldest first.
    async fn audit_for_user(&self, user_id: &str) -> Result<Vec<AuditEntry>, StoreError>;
}

/// Rate limits: windows of attempts per key, and the per-user customer-token slots.
#[async_trait]
pub trait RateLimits: Send + Sync {
    /// Reserves one attempt of `key` (e.g. a user's TOTP checks) before it is made: at most
    /// `max` in a window of `window` seconds that starts with the first attempt, atomically, so
    /// concurrent attempts cannot exceed it. A success should [`clear_attempts`]; a failure keeps
    /// its slot; an attempt that never reached the checker should [`release_attempt`].
    ///
    /// [`clear_attempts`]: RateLimits::clear_attempts
    /// [`release_attempt`]: RateLimits::release_attempt
    async fn reserve_attempt(
        &self,
        key: &str,
        max: u32,
        window: u32,
        now: i64,
    ) -> Result<Attempt, StoreError>;

    /// Gives back one reserved attempt of `key`.
    async fn release_attempt(&self, key: &str) -> Result<(), StoreError>;

    /// Forgets the attempts of `key`.
    async fn clear_attempts(&self, key: &str) -> Result<(), StoreError>;

    /// Takes one of the user's customer-token slots and returns the user's record, in one step
    /// (one conditional `UpdateItem` in DynamoDB): at most `max` tokens in a window of `window`
    /// seconds that starts with the first, atomically, so concurrent requests cannot exceed it.
    /// No record, or a deleted one, takes no slot. The count lives beside the record and
    /// [`UserRecords::update_user`] leaves it alone: a write across two concerns, so one call
    /// here. A token that is then not issued should [`give_back_token_slot`].
    ///
    /// [`give_back_token_slot`]: RateLimits::give_back_token_slot
    async fn take_token_slot(
        &self,
        user_id: &str,
        max: u32,
        window: u32,
        now: i64,
    ) -> Result<TokenSlot, StoreError>;

    /// Gives back one slot taken by [`take_token_slot`](RateLimits::take_token_slot).
    async fn give_back_token_slot(&self, user_id: &str) -> Result<(), StoreError>;
}

/// The whole table: every port above, as the DynamoDB adapter and the memory fake implement
/// them. Code that needs one concern takes that port (`&dyn UserRecords`, `&dyn RateLimits`, ...);
/// a `&dyn UserStore` coerces to any of them.
pub trait UserStore: UserRecords + ApplicationLinks + EventMarkers + AuditLog + RateLimits {}

impl<T> UserStore for T where
    T: UserRecords + ApplicationLinks + EventMarkers + AuditLog + RateLimits + ?Sized
{
}

/// The answer of [`RateLimits::take_token_slot`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "answered once per request and taken apart at once, like get_user's Option"
)]
pub enum TokenSlot {
    /// A slot is taken; the user's record as stored.
    Taken(UserRecord),
    /// The window is full (no slot taken): wait this many seconds.
    Full { retry_after: u64 },
    /// There is no record of the user (no slot taken).
    NoUser,
    /// The user's record is marked deleted (no slot taken).
    Deleted,
}

/// The answer of [`RateLimits::reserve_attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Go ahead: this is the `count`th attempt of the window.
    Granted { count: u32 },
    /// Too many attempts: wait this many seconds.
    Refused { retry_after: u64 },
}

/// Checks a record before it is created: a version of 1 and a user id.
fn check_new(record: &UserRecord) -> Result<(), StoreError> {
    if record.user_id.is_empty() || record.version != 1 {
        return Err(StoreError::Corrupt(
            "a new record needs a user id and version 1".into(),
        ));
    }
    Ok(())
}

/// Attempts of [`modify`] before a persistent version conflict is an error.
const MODIFY_ATTEMPTS: usize = 8;

/// Takes one of `limit`'s slots of `key` at `now` (a per-user limit): `Ok(None)` when granted,
/// `Ok(Some(retry_after))` when the window is full.
pub async fn take_slot(
    store: &dyn RateLimits,
    key: &str,
    limit: crate::config::RateLimit,
    now: i64,
) -> Result<Option<u64>, StoreError> {
    Ok(
        match store
            .reserve_attempt(key, limit.max, limit.window_secs(), now)
            .await?
        {
            Attempt::Granted { .. } => None,
            Attempt::Refused { retry_after } => Some(retry_after),
        },
    )
}

/// Gives back a slot of `key` whose work did not happen. A failure is only logged: the slot then
/// expires with its window.
pub async fn give_back(store: &dyn RateLimits, key: &str) {
    if let Err(e) = store.release_attempt(key).await {
        tracing::warn!(error = %e, "could not give back a reserved slot");
    }
}

/// Now as RFC 3339 (UTC, second precision) for record timestamps.
pub fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Now as RFC 3339 with milliseconds (UTC, fixed width, so it sorts as text): audit times.
pub fn timestamp_millis() -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(format)
        .unwrap_or_default()
}

impl UserRecord {
    /// Records an application's status (and customer) on the user's record; `true` if it changed.
    ///
    /// A final status (`Approved`, `Denied`, `Canceled`) of the same application is never replaced,
    /// so out-of-order events cannot move a user backwards; a new application replaces a denied or
    /// canceled one.
    pub fn apply_application(
        &mut self,
        application_id: &ApplicationId,
        status: &ApplicationStatus,
        customer_id: Option<&CustomerId>,
    ) -> bool {
        let record = self;
        let same = record.application_id.as_ref() == Some(application_id);
        // A customer an operator linked from no application has no application id, and its
        // approval is final all the same: no other application's event replaces it.
        let replaceable = (record.application_id.is_none() && record.customer_id.is_none())
            || record
                .application_status
                .as_ref()
                .is_some_and(ApplicationStatus::is_closed);
        if !same && !replaceable {
            tracing::warn!(
                %application_id,
                "event for another application than the user's current one; ignored"
            );
            return false;
        }
        // The submission waiting for its outcome is this application (or was overtaken by it).
        let mut changed = record.application_submitted_at.take().is_some();
        if !same {
            record.application_id = Some(application_id.clone());
            record.application_status = None;
            changed = true;
        }
        let keep = record
            .application_status
            .as_ref()
            .is_some_and(ApplicationStatus::is_final);
        if !keep && record.application_status.as_ref() != Some(status) {
            record.application_status = Some(status.clone());
            changed = true;
        }
        if let Some(c) = customer_id
            && record.customer_id.is_none()
        {
            record.customer_id = Some(c.clone());
            changed = true;
        }
        changed
    }

    /// Records a customer an operator linked: approved, with `customer_id`, and its application
    /// when it came from one. One from no application replaces the user's application as
    /// [`apply_application`](Self::apply_application) would (none, or a closed one), leaving
    /// none. `true` if it changed.
    pub fn link_customer(
        &mut self,
        customer_id: &CustomerId,
        application_id: Option<&ApplicationId>,
    ) -> bool {
        let approved = Some(ApplicationStatus::Approved);
        let mut changed = match application_id {
            Some(a) => self.apply_application(a, &ApplicationStatus::Approved, Some(customer_id)),
            None => {
                let replaceable = self.application_id.is_none()
                    || self
                        .application_status
                        .as_ref()
                        .is_some_and(ApplicationStatus::is_closed);
                let differs = self.application_id.is_some() || self.application_status != approved;
                if !replaceable {
                    tracing::warn!(
                        "the linked customer's user has an open application; it is kept"
                    );
                }
                if replaceable && differs {
                    self.application_id = None;
                    self.application_status = approved;
                    self.application_submitted_at = None;
                }
                replaceable && differs
            }
        };
        if self.customer_id.as_ref() != Some(customer_id) {
            self.customer_id = Some(customer_id.clone());
            changed = true;
        }
        if self.pending_customer_id.take().is_some() {
            changed = true;
        }
        changed
    }

    /// A new record (version 1) for `user_id`.
    pub fn new(user_id: UserId) -> Self {
        let now = timestamp();
        Self {
            user_id,
            email: None,
            phone: None,
            first_name: None,
            last_name: None,
            form_id: None,
            form_url: None,
            application_id: None,
            application_status: None,
            application_submitted_at: None,
            customer_id: None,
            second_factor_verified_at: None,
            pending_customer_id: None,
            onboarding_checked_at: None,
            totp_id: None,
            totp_confirmed_at: None,
            customer_archived_at: None,
            deleted: false,
            created_at: now.clone(),
            updated_at: now,
            version: 1,
        }
    }
}

/// Applies `change` to the user's record with optimistic concurrency: load, change, conditional
/// write, and again from the top when another writer came first. `change` returns `false` when
/// the record needs no write. With `create`, a missing record is created first (racing creators
/// converge on one). Returns the record as stored, or `None` if it is missing and not created.
pub async fn modify(
    store: &dyn UserRecords,
    user_id: &UserId,
    create: bool,
    mut change: impl FnMut(&mut UserRecord) -> bool,
) -> Result<Option<UserRecord>, StoreError> {
    for attempt in 0..MODIFY_ATTEMPTS {
        if attempt > 0 {
            // Another writer came first: back off with full jitter (up to 2^attempt ms) so that
            // many racing writers spread out instead of colliding again.
            let cap = 1u64 << attempt.min(7);
            tokio::time::sleep(std::time::Duration::from_millis(fastrand::u64(0..=cap))).await;
        }
        let current = match store.get_user(user_id).await? {
            Some(record) => record,
            None if create => {
                let mut fresh = UserRecord::new(user_id.clone());
                change(&mut fresh);
                match store.create_user(&fresh).await {
                    Ok(()) => return Ok(Some(fresh)),
                    Err(StoreError::AlreadyExists) => continue,
                    Err(e) => return Err(e),
                }
            }
            None => return Ok(None),
        };
        let mut next = current.clone();
        if !change(&mut next) {
            return Ok(Some(current));
        }
        next.updated_at = timestamp();
        match store.update_user(&next).await {
            Ok(stored) => return Ok(Some(stored)),
            Err(StoreError::VersionConflict | StoreError::NotFound) => {
                crate::metrics::emit(crate::metrics::Metric::StoreConflict);
                continue;
            }
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Unavailable(format!(
        "record {user_id} kept changing under us ({MODIFY_ATTEMPTS} attempts)"
    )))
}

#[cfg(test)]
mod modify_tests {
    use super::*;
    use std::sync::Arc;

    fn id<T: std::str::FromStr>(text: &str) -> T
    where
        T::Err: std::fmt::Debug,
    {
        text.parse().unwrap()
    }

    #[test]
    fn an_operator_linked_customer_is_approved_with_or_without_its_application() {
        // From an application: that application, approved, with its customer.
        let mut r = UserRecord::new(id("user-test-1"));
        assert!(r.link_customer(&id("10000"), Some(&id("53"))));
        assert_eq!(
            (r.application_id.as_deref(), r.application_status.as_ref()),
            (Some("53"), Some(&ApplicationStatus::Approved))
        );
        assert!(
            !r.link_customer(&id("10000"), Some(&id("53"))),
            "a rerun changes nothing"
        );
        // From no application: no application id (never a made-up one), approved.
        let mut r = UserRecord::new(id("user-test-2"));
        r.pending_customer_id = Some(id("10001"));
        assert!(r.link_customer(&id("10001"), None));
        assert_eq!(r.application_id, None);
        assert_eq!(r.application_status, Some(ApplicationStatus::Approved));
        assert_eq!(
            (r.customer_id.as_deref(), r.pending_customer_id.as_deref()),
            (Some("10001"), None)
        );
        assert!(
            !r.link_customer(&id("10001"), None),
            "a rerun changes nothing"
        );
        // It replaces a closed application, and leaves an open one alone (the customer is
        // recorded either way).
        let mut denied = UserRecord::new(id("user-test-3"));
        denied.apply_application(&id("60"), &ApplicationStatus::Denied, None);
        assert!(denied.link_customer(&id("10002"), None));
        assert_eq!(
            (denied.application_id.as_deref(), denied.application_status),
            (None, Some(ApplicationStatus::Approved))
        );
        let mut open = UserRecord::new(id("user-test-4"));
        open.apply_application(&id("61"), &ApplicationStatus::PendingReview, None);
        assert!(open.link_customer(&id("10003"), None));
        assert_eq!(
            (open.application_id.as_deref(), open.application_status),
            (Some("61"), Some(ApplicationStatus::PendingReview))
        );
        assert_eq!(open.customer_id.as_deref(), Some("10003"));
        // Its approval is final: no other application's event replaces it.
        let mut linked = UserRecord::new(id("user-test-5"));
        linked.link_customer(&id("10004"), None);
        assert!(!linked.apply_application(&id("62"), &ApplicationStatus::Denied, None));
        assert_eq!(
            (linked.application_id, linked.application_status),
            (None, Some(ApplicationStatus::Approved))
        );
    }

    #[tokio::test]
    async fn concurrent_modifications_all_land() {
        let store: Arc<dyn UserStore> = Arc::new(MemoryStore::new());
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..4 {
            let store = store.clone();
            tasks.spawn(async move {
                modify(&*store, &"user-test-1".parse().unwrap(), true, |r| {
                    let tags = r.email.get_or_insert_with(String::new);
                    tags.push_str(&n.to_string());
                    true
                })
                .await
            });
        }
        for r in tasks.join_all().await {
            r.unwrap();
        }
        let stored = store.get_user("user-test-1").await.unwrap().unwrap();
        let mut digits: Vec<char> = stored.email.unwrap().chars().collect();
        digits.sort();
        assert_eq!(digits, vec!['0', '1', '2', '3'], "no update was lost");
        assert_eq!(
            modify(&*store, &"user-test-none".parse().unwrap(), false, |_| true)
                .await
                .unwrap(),
            None
        );
        let unchanged = modify(&*store, &"user-test-1".parse().unwrap(), false, |_| false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            unchanged.version, stored.version,
            "no write when nothing changes"
        );
    }
}
