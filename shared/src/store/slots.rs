//! Slots taken from rate limits, held by a guard: given back unless the work they protected
//! committed (or may have, as a request Unit may have acted on).

use std::sync::Arc;

use super::UserStore;

/// One slot: of a windowed limit's key, or of a user's customer-token limit.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    /// A slot of [`RateLimits::reserve_attempt`](super::RateLimits::reserve_attempt)'s `key`.
    Attempt(String),
    /// A slot of [`RateLimits::take_token_slot`](super::RateLimits::take_token_slot).
    Token(String),
}

/// Slots taken for one piece of work. [`Slots::keep`] when the work committed; otherwise they
/// are given back: by [`Slots::give_back`], or, when the guard is dropped on an early return,
/// by a task spawned from its `Drop` (best effort: a slot not given back only runs out with its
/// window, which errs on the side of the limit).
#[must_use = "slots are given back when dropped; keep() them once the work committed"]
pub struct Slots {
    store: Arc<dyn UserStore>,
    held: Vec<Slot>,
}

impl Slots {
    /// No slots yet, on `store`.
    pub fn new(store: Arc<dyn UserStore>) -> Self {
        Self {
            store,
            held: Vec::new(),
        }
    }

    /// Holds a slot already taken of `key` (a windowed limit).
    pub fn hold_attempt(&mut self, key: impl Into<String>) {
        self.held.push(Slot::Attempt(key.into()));
    }

    /// Holds a customer-token slot already taken for `user_id`.
    pub fn hold_token(&mut self, user_id: impl Into<String>) {
        self.held.push(Slot::Token(user_id.into()));
    }

    /// The work committed (or may have): the slots count.
    pub fn keep(mut self) {
        self.held.clear();
    }

    /// The work surely did not happen: every slot is given back now.
    pub async fn give_back(mut self) {
        let held = std::mem::take(&mut self.held);
        release(&*self.store, held).await;
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        let held = std::mem::take(&mut self.held);
        if held.is_empty() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let store = self.store.clone();
                runtime.spawn(async move { release(&*store, held).await });
            }
            Err(_) => {
                tracing::warn!("slots dropped outside a runtime; they run out with their window")
            }
        }
    }
}

/// Gives back each slot; a failure is only logged (the slot then runs out with its window).
async fn release(store: &dyn UserStore, held: Vec<Slot>) {
    for slot in held {
        let result = match &slot {
            Slot::Attempt(key) => store.release_attempt(key).await,
            Slot::Token(user_id) => store.give_back_token_slot(user_id).await,
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, ?slot, "could not give back a slot");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Attempt, MemoryStore, RateLimits};

    async fn count(store: &MemoryStore, key: &str) -> u32 {
        match store.reserve_attempt(key, 100, 600, 1000).await.unwrap() {
            Attempt::Granted { count } => count - 1,
            Attempt::Refused { .. } => 100,
        }
    }

    #[tokio::test]
    async fn kept_slots_count_and_dropped_or_given_back_ones_do_not() {
        let store = Arc::new(MemoryStore::new());
        for key in ["kept", "given", "dropped"] {
            store.reserve_attempt(key, 100, 600, 1000).await.unwrap();
        }
        let mut kept = Slots::new(store.clone());
        kept.hold_attempt("kept");
        kept.keep();
        let mut given = Slots::new(store.clone());
        given.hold_attempt("given");
        given.give_back().await;
        {
            let mut dropped = Slots::new(store.clone());
            dropped.hold_attempt("dropped");
        }
        // The dropped guard's give-back runs on its own task.
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(count(&store, "kept").await, 1);
        assert_eq!(count(&store, "given").await, 0);
        assert_eq!(count(&store, "dropped").await, 0);
    }
}
