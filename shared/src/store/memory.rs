//! In-memory `UserStore`: the local runner's default and the unit tests' fake. Same semantics as
//! DynamoDB (the contract suite checks both); state is lost on exit.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    ApplicationLinks, Attempt, AuditEntry, AuditLog, EventMarkers, RateLimits, StoreError,
    TokenSlot, UserRecord, UserRecords, check_new,
};

#[derive(Default)]
struct State {
    users: HashMap<String, UserRecord>,
    applications: HashMap<String, crate::domain::UserId>,
    events: HashMap<String, i64>,
    audit: BTreeMap<(String, String, String), AuditEntry>,
    /// key -> (count, window start)
    attempts: HashMap<String, (u32, i64)>,
    /// user id -> (customer tokens, window start): beside the record, as in DynamoDB, so an
    /// update of the record leaves it alone.
    tokens: HashMap<String, (u32, i64)>,
}

/// Counts one in `counter` (count, window start) unless `max` are counted in a window of
/// `window` seconds that has not passed; `Err(retry_after)` when it is full.
fn count(counter: &mut (u32, i64), max: u32, window: u32, now: i64) -> Result<u32, u64> {
    if counter.1 + i64::from(window) <= now {
        *counter = (0, now);
    }
    if counter.0 >= max {
        return Err(u64::try_from(counter.1 + i64::from(window) - now)
            .unwrap_or(1)
            .max(1));
    }
    counter.0 += 1;
    Ok(counter.0)
}

/// A `UserStore` in process memory.
#[derive(Default)]
pub struct MemoryStore(Mutex<State>);

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-written record (every write is
        // one insert), so a poisoned lock is still consistent.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl UserRecords for MemoryStore {
    async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.state().users.get(user_id).cloned())
    }

    async fn create_user(&self, record: &UserRecord) -> Result<(), StoreError> {
        check_new(record)?;
        let mut state = self.state();
        if state.users.contains_key(record.user_id.as_str()) {
            return Err(StoreError::AlreadyExists);
        }
        state
            .users
            .insert(record.user_id.to_string(), record.clone());
        Ok(())
    }

    async fn update_user(&self, record: &UserRecord) -> Result<UserRecord, StoreError> {
        let mut state = self.state();
        let stored = state
            .users
            .get_mut(record.user_id.as_str())
            .ok_or(StoreError::NotFound)?;
        if stored.version != record.version {
            return Err(StoreError::VersionConflict);
        }
        let updated = UserRecord {
            version: record.version + 1,
            ..record.clone()
        };
        *stored = updated.clone();
        Ok(updated)
    }
}

#[async_trait]
impl ApplicationLinks for MemoryStore {
    async fn link_application(
        &self,
        application_id: &str,
        user_id: &crate::domain::UserId,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        match state.applications.get(application_id) {
            Some(existing) if existing != user_id => Err(StoreError::Conflict(format!(
                "application {application_id} is bound to another user"
            ))),
            Some(_) => Ok(()),
            None => {
                state
                    .applications
                    .insert(application_id.to_owned(), user_id.clone());
                Ok(())
            }
        }
    }

    async fn unlink_application(
        &self,
        application_id: &str,
        user_id: &crate::domain::UserId,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        match state.applications.get(application_id) {
            Some(existing) if existing != user_id => Err(StoreError::Conflict(format!(
                "application {application_id} is bound to another user"
            ))),
            Some(_) => {
                state.applications.remove(application_id);
                Ok(())
            }
            None => Ok(()),
        }
    }

    async fn user_for_application(
        &self,
        application_id: &str,
    ) -> Result<Option<crate::domain::UserId>, StoreError> {
        Ok(self.state().applications.get(application_id).cloned())
    }
}

#[async_trait]
impl EventMarkers for MemoryStore {
    async fn record_event(&self, event_id: &str, expires_at: i64) -> Result<bool, StoreError> {
        let mut state = self.state();
        if state.events.contains_key(event_id) {
            return Ok(false);
        }
        state.events.insert(event_id.to_owned(), expires_at);
        Ok(true)
    }

    async fn event_processed(&self, event_id: &str) -> Result<bool, StoreError> {
        Ok(self.state().events.contains_key(event_id))
    }
}

#[async_trait]
impl AuditLog for MemoryStore {
    async fn put_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let key = (
            entry.user_id.to_string(),
            entry.issued_at.clone(),
            entry.request_id.clone(),
        );
        self.state().audit.insert(key, entry.clone());
        Ok(())
    }

    async fn audit_for_user(&self, user_id: &str) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(self
            .state()
            .audit
            .iter()
            .filter(|((user, _, _), _)| user == user_id)
            .map(|(_, entry)| entry.clone())
            .collect())
    }
}

#[async_trait]
impl RateLimits for MemoryStore {
    async fn reserve_attempt(
        &self,
        key: &str,
        max: u32,
        window: u32,
        now: i64,
    ) -> Result<Attempt, StoreError> {
        let mut state = self.state();
        let counter = state.attempts.entry(key.to_owned()).or_insert((0, now));
        Ok(match count(counter, max, window, now) {
            Ok(count) => Attempt::Granted { count },
            Err(retry_after) => Attempt::Refused { retry_after },
        })
    }

    async fn release_attempt(&self, key: &str) -> Result<(), StoreError> {
        if let Some(entry) = self.state().attempts.get_mut(key) {
            entry.0 = entry.0.saturating_sub(1);
        }
        Ok(())
    }

    async fn clear_attempts(&self, key: &str) -> Result<(), StoreError> {
        self.state().attempts.remove(key);
        Ok(())
    }

    async fn take_token_slot(
        &self,
        user_id: &str,
        max: u32,
        window: u32,
        now: i64,
    ) -> Result<TokenSlot, StoreError> {
        let mut state = self.state();
        let record = match state.users.get(user_id) {
            None => return Ok(TokenSlot::NoUser),
            Some(r) if r.deleted => return Ok(TokenSlot::Deleted),
            Some(r) => r.clone(),
        };
        let counter = state.tokens.entry(user_id.to_owned()).or_insert((0, now));
        Ok(match count(counter, max, window, now) {
            Ok(_) => TokenSlot::Taken(record),
            Err(retry_after) => TokenSlot::Full { retry_after },
        })
    }

    async fn give_back_token_slot(&self, user_id: &str) -> Result<(), StoreError> {
        if let Some(counter) = self.state().tokens.get_mut(user_id) {
            counter.0 = counter.0.saturating_sub(1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn memory_passes_the_contract() {
        super::super::contract::run(std::sync::Arc::new(super::MemoryStore::new())).await;
    }
}
