//! The contract every `UserStore` adapter passes: memory in unit tests, DynamoDB through moto.

use std::sync::Arc;

use super::{AuditEntry, StoreError, UserRecord, UserStore};

fn record(user_id: &str) -> UserRecord {
    UserRecord {
        email: Some("ada@example.com".into()),
        phone: None,
        first_name: Some("Ada".into()),
        last_name: Some("Lovelace".into()),
        created_at: "2026-11-25T09:00:00Z".into(),
        updated_at: "2026-11-25T09:00:00Z".into(),
        ..UserRecord::new(user_id.parse().expect("a user id"))
    }
}

/// `n` runs of `task` at once, each answer unwrapped.
async fn at_once<T, F>(n: usize, task: impl Fn() -> F) -> Vec<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T, StoreError>> + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        tasks.spawn(task());
    }
    tasks
        .join_all()
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

/// Runs the whole contract against `store` with ids unique to this run.
pub(crate) async fn run(store: Arc<dyn UserStore>) {
    let run = uuid::Uuid::new_v4().to_string();
    creates_are_conditional(&*store, &run).await;
    updates_are_versioned(&*store, &run).await;
    concurrent_writers_do_not_clash(store.clone(), &run).await;
    applications_link_once(&*store, &run).await;
    events_are_recorded_once(&*store, &run).await;
    audit_entries_are_kept_in_order(&*store, &run).await;
    attempts_are_limited_per_window(store.clone(), &run).await;
    token_slots_are_limited_per_window(store.clone(), &run).await;
}

async fn token_slots_are_limited_per_window(store: Arc<dyn UserStore>, run: &str) {
    use super::TokenSlot;
    let id = format!("user-test-{run}-tokens");
    let t0 = 1_800_000_000;
    // No record: no slot, and nothing written.
    assert_eq!(
        store.take_token_slot(&id, 5, 900, t0).await.unwrap(),
        TokenSlot::NoUser
    );
    store.give_back_token_slot(&id).await.unwrap();
    assert_eq!(store.get_user(&id).await.unwrap(), None, "nothing created");
    store.create_user(&record(&id)).await.unwrap();
    // Concurrent requests never exceed the limit; each slot comes with the record.
    let slots = at_once(12, || {
        let (store, id) = (store.clone(), id.clone());
        async move { store.take_token_slot(&id, 5, 900, t0).await }
    })
    .await;
    let stored = store.get_user(&id).await.unwrap().unwrap();
    assert_eq!(
        slots
            .iter()
            .filter(|s| **s == TokenSlot::Taken(stored.clone()))
            .count(),
        5,
        "{slots:?}"
    );
    assert_eq!(
        slots
            .iter()
            .filter(|s| **s == TokenSlot::Full { retry_after: 900 })
            .count(),
        7,
        "{slots:?}"
    );
    // An update of the record keeps the count.
    let mut changed = stored.clone();
    changed.customer_id = Some("10000".parse().unwrap());
    changed.phone = Some("+15555550100".into());
    let changed = store.update_user(&changed).await.unwrap();
    assert_eq!(
        store.take_token_slot(&id, 5, 900, t0 + 100).await.unwrap(),
        TokenSlot::Full { retry_after: 800 },
        "the update reset the count"
    );
    assert_eq!(store.get_user(&id).await.unwrap(), Some(changed.clone()));
    // A slot given back is taken again, once.
    store.give_back_token_slot(&id).await.unwrap();
    assert_eq!(
        store.take_token_slot(&id, 5, 900, t0 + 100).await.unwrap(),
        TokenSlot::Taken(changed.clone())
    );
    assert!(matches!(
        store.take_token_slot(&id, 5, 900, t0 + 100).await.unwrap(),
        TokenSlot::Full { .. }
    ));
    // After the window a new one starts with this token, and a concurrent restart counts once
    // per request.
    let slots = at_once(3, || {
        let (store, id) = (store.clone(), id.clone());
        async move { store.take_token_slot(&id, 5, 900, t0 + 900).await }
    })
    .await;
    assert!(
        slots
            .iter()
            .all(|s| *s == TokenSlot::Taken(changed.clone())),
        "{slots:?}"
    );
    for _ in 0..2 {
        assert_eq!(
            store.take_token_slot(&id, 5, 900, t0 + 901).await.unwrap(),
            TokenSlot::Taken(changed.clone())
        );
    }
    assert_eq!(
        store.take_token_slot(&id, 5, 900, t0 + 901).await.unwrap(),
        TokenSlot::Full { retry_after: 899 }
    );
    // A deleted user takes none.
    let mut deleted = changed;
    deleted.deleted = true;
    store.update_user(&deleted).await.unwrap();
    assert_eq!(
        store.take_token_slot(&id, 5, 900, t0 + 2000).await.unwrap(),
        TokenSlot::Deleted
    );
}

async fn attempts_are_limited_per_window(store: Arc<dyn UserStore>, run: &str) {
    use super::Attempt;
    let key = format!("totp:{run}");
    let t0 = 1_800_000_000;
    // Concurrent attempts never exceed the limit.
    let results = at_once(12, || {
        let (store, key) = (store.clone(), key.clone());
        async move { store.reserve_attempt(&key, 5, 900, t0).await }
    })
    .await;
    assert_eq!(
        results
            .iter()
            .filter(|a| matches!(a, Attempt::Granted { .. }))
            .count(),
        5,
        "{results:?}"
    );
    assert_eq!(
        store.reserve_attempt(&key, 5, 900, t0 + 100).await.unwrap(),
        Attempt::Refused { retry_after: 800 }
    );
    // A released attempt frees one slot.
    store.release_attempt(&key).await.unwrap();
    assert_eq!(
        store.reserve_attempt(&key, 5, 900, t0 + 100).await.unwrap(),
        Attempt::Granted { count: 5 }
    );
    assert!(matches!(
        store.reserve_attempt(&key, 5, 900, t0 + 100).await.unwrap(),
        Attempt::Refused { .. }
    ));
    // After the window a new one starts.
    assert_eq!(
        store.reserve_attempt(&key, 5, 900, t0 + 900).await.unwrap(),
        Attempt::Granted { count: 1 }
    );
    // Clearing (a success) forgets everything.
    store.clear_attempts(&key).await.unwrap();
    for count in 1..=5 {
        assert_eq!(
            store.reserve_attempt(&key, 5, 900, t0 + 901).await.unwrap(),
            Attempt::Granted { count }
        );
    }
    assert!(matches!(
        store.reserve_attempt(&key, 5, 900, t0 + 901).await.unwrap(),
        Attempt::Refused { .. }
    ));
    store
        .release_attempt(&format!("{key}-never-used"))
        .await
        .unwrap();
}

async fn creates_are_conditional(store: &dyn UserStore, run: &str) {
    let id = format!("user-test-{run}-create");
    assert_eq!(store.get_user(&id).await.unwrap(), None);
    let r = record(&id);
    store.create_user(&r).await.unwrap();
    assert_eq!(
        store.get_user(&id).await.unwrap(),
        Some(r.clone()),
        "a record reads back as written"
    );
    let mut other = record(&id);
    other.email = Some("mallory@example.com".into());
    assert_eq!(
        store.create_user(&other).await,
        Err(StoreError::AlreadyExists)
    );
    assert_eq!(
        store.get_user(&id).await.unwrap(),
        Some(r),
        "a refused create changes nothing"
    );
    let mut v2 = record(&format!("{id}-v2"));
    v2.version = 2;
    assert!(matches!(
        store.create_user(&v2).await,
        Err(StoreError::Corrupt(_))
    ));
}

async fn updates_are_versioned(store: &dyn UserStore, run: &str) {
    let id = format!("user-test-{run}-update");
    store.create_user(&record(&id)).await.unwrap();
    let mut r = store.get_user(&id).await.unwrap().unwrap();
    r.form_id = Some("17".parse().unwrap());
    r.form_url = Some("https://app.s.unit.sh/forms/17".into());
    r.application_id = Some("53".parse().unwrap());
    r.application_status = Some(crate::domain::ApplicationStatus::Pending);
    r.phone = Some("+15555550100".into());
    r.email = None;
    r.updated_at = "2026-11-25T09:01:00Z".into();
    let updated = store.update_user(&r).await.unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(
        store.get_user(&id).await.unwrap(),
        Some(updated.clone()),
        "every field round-trips, None included"
    );
    // A writer still holding version 1 loses, and changes nothing.
    let mut stale = r.clone();
    stale.customer_id = Some("10000".parse().unwrap());
    assert_eq!(
        store.update_user(&stale).await,
        Err(StoreError::VersionConflict)
    );
    assert_eq!(
        store.get_user(&id).await.unwrap().unwrap().customer_id,
        None
    );
    let mut next = updated;
    next.customer_id = Some("10000".parse().unwrap());
    next.application_status = Some(crate::domain::ApplicationStatus::Approved);
    next.deleted = true;
    assert_eq!(store.update_user(&next).await.unwrap().version, 3);
    assert!(store.get_user(&id).await.unwrap().unwrap().deleted);
    let missing = record(&format!("{id}-missing"));
    assert_eq!(store.update_user(&missing).await, Err(StoreError::NotFound));
    assert_eq!(
        store.get_user(&missing.user_id).await.unwrap(),
        None,
        "an update never creates"
    );
}

async fn concurrent_writers_do_not_clash(store: Arc<dyn UserStore>, run: &str) {
    const WRITERS: usize = 8;
    let id = format!("user-test-{run}-race");
    let mut creates = tokio::task::JoinSet::new();
    for n in 0..WRITERS {
        let (store, mut r) = (store.clone(), record(&id));
        r.form_id = Some((n + 1).to_string().parse().unwrap());
        creates.spawn(async move { store.create_user(&r).await });
    }
    let created = creates.join_all().await;
    assert_eq!(
        created.iter().filter(|r| r.is_ok()).count(),
        1,
        "{created:?}"
    );
    assert!(
        created
            .iter()
            .all(|r| matches!(r, Ok(()) | Err(StoreError::AlreadyExists)))
    );

    let base = store.get_user(&id).await.unwrap().unwrap();
    let mut updates = tokio::task::JoinSet::new();
    for n in 0..WRITERS {
        let (store, mut r) = (store.clone(), base.clone());
        r.customer_id = Some((10_000 + n).to_string().parse().unwrap());
        updates.spawn(async move { store.update_user(&r).await });
    }
    let updated = updates.join_all().await;
    let winners: Vec<_> = updated.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{updated:?}");
    let stored = store.get_user(&id).await.unwrap().unwrap();
    assert_eq!(&stored, winners[0]);
    assert_eq!(stored.version, 2);
}

async fn applications_link_once(store: &dyn UserStore, run: &str) {
    let app = format!("{run}-app");
    assert_eq!(store.user_for_application(&app).await.unwrap(), None);
    store
        .link_application(&app, &"user-test-a".parse().unwrap())
        .await
        .unwrap();
    store
        .link_application(&app, &"user-test-a".parse().unwrap())
        .await
        .unwrap();
    assert!(matches!(
        store
            .link_application(&app, &"user-test-b".parse().unwrap())
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.user_for_application(&app).await.unwrap().as_deref(),
        Some("user-test-a")
    );
    // Only its own user undoes a link.
    assert!(matches!(
        store
            .unlink_application(&app, &"user-test-b".parse().unwrap())
            .await,
        Err(StoreError::Conflict(_))
    ));
    store
        .unlink_application(&app, &"user-test-a".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(store.user_for_application(&app).await.unwrap(), None);
    store
        .unlink_application(&app, &"user-test-a".parse().unwrap())
        .await
        .unwrap();
    store
        .link_application(&app, &"user-test-b".parse().unwrap())
        .await
        .unwrap();
}

async fn events_are_recorded_once(store: &dyn UserStore, run: &str) {
    let event = format!("svix:msg_{run}");
    assert!(!store.event_processed(&event).await.unwrap());
    assert!(store.record_event(&event, 4_102_444_800).await.unwrap());
    assert!(!store.record_event(&event, 4_102_444_800).await.unwrap());
    assert!(store.event_processed(&event).await.unwrap());
    assert!(!store.event_processed(&format!("unit:{run}")).await.unwrap());
}

async fn audit_entries_are_kept_in_order(store: &dyn UserStore, run: &str) {
    let user = format!("user-test-{run}-audit");
    let entry = |t: &str, req: &str| AuditEntry {
        event: None,
        user_id: crate::domain::UserId::parse(user.clone()).expect("a user id"),
        customer_id: Some("10000".parse().unwrap()),
        scopes: crate::domain::Scopes::parse("customers cards-write").expect("scopes"),
        issued_at: t.into(),
        request_id: req.into(),
        expires_in: 3600,
        upgradable_scopes: crate::domain::Scopes::default(),
        resources: Vec::new(),
    };
    let mut later = entry("2026-11-25T09:05:00Z", "req-2");
    // A card-limited token for Unit's components: both kept as written.
    later.upgradable_scopes = crate::domain::Scopes::parse("cards-write").expect("scopes");
    later.resources = vec!["card:10001".into(), "card:10002".into()];
    let earlier = entry("2026-11-25T09:00:00Z", "req-1");
    store.put_audit(&later).await.unwrap();
    store.put_audit(&earlier).await.unwrap();
    assert_eq!(
        store.audit_for_user(&user).await.unwrap(),
        vec![earlier, later]
    );
    assert!(
        store
            .audit_for_user("user-test-nobody")
            .await
            .unwrap()
            .is_empty()
    );
}
