//! Webhook delivery with retries, as Svix (for Stytch) and Unit do: the same message id on every
//! attempt, a fresh signature per attempt, success on any 2xx, retries on anything else.
//!
//! The real Svix schedule (immediately, 5 s, 5 min, 30 min, 2 h, ...) is too slow for a local
//! stack, so the sandbox compresses it; the shape (stable id, growing delays) is the same.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::HeaderMap;
use serde::Serialize;

/// Signs one attempt: gets the attempt's epoch seconds and the body, returns the headers.
pub type Signer = Arc<dyn Fn(i64, &[u8]) -> HeaderMap + Send + Sync>;

/// One delivery attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// HTTP status, if the receiver answered.
    pub status: Option<u16>,
    /// Transport error, if it did not.
    pub error: Option<String>,
    /// The signature headers sent with it (so a test can check them with an SDK's verifier).
    pub headers: std::collections::BTreeMap<String, String>,
}

/// One message and its attempts.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// Stable message id (`svix-id`, or Unit's event id).
    pub id: String,
    /// Event type.
    pub event_type: String,
    /// Target URL.
    pub url: String,
    /// Attempts so far.
    pub attempts: Vec<Attempt>,
    /// A 2xx was received.
    pub delivered: bool,
    /// The exact body sent.
    pub body: serde_json::Value,
}

/// The webhook sender of one sandbox.
pub struct Sender {
    client: reqwest::Client,
    schedule: Vec<Duration>,
    log: Mutex<Vec<Delivery>>,
    /// When false, messages are logged but never sent (webhooks lost on the way).
    enabled: std::sync::atomic::AtomicBool,
}

impl Sender {
    /// A sender retrying after each delay of `schedule` (first attempt immediate).
    pub fn new(schedule: Vec<Duration>) -> Arc<Self> {
        Arc::new(Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap_or_else(|e| panic!("cannot build the webhook client: {e}")),
            schedule,
            log: Mutex::new(Vec::new()),
            enabled: std::sync::atomic::AtomicBool::new(true),
        })
    }

    /// Turns delivery on or off (off: every new message is lost, as with Unit's `AtMostOnce`).
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled
            .store(enabled, std::sync::atomic::Ordering::SeqCst);
    }

    /// The compressed Svix-like schedule: 1 s, 2 s, 5 s, 10 s, 30 s, 60 s.
    pub fn default_schedule() -> Vec<Duration> {
        [1, 2, 5, 10, 30, 60]
            .into_iter()
            .map(Duration::from_secs)
            .collect()
    }

    /// Deliveries so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn record(&self, id: &str, attempt: Attempt, delivered: bool) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = log.iter_mut().rev().find(|d| d.id == id) {
            d.attempts.push(attempt);
            d.delivered |= delivered;
        }
    }

    /// Sends `body` to `url` in the background until a 2xx or the schedule is exhausted.
    pub fn send(
        self: &Arc<Self>,
        url: String,
        id: String,
        event_type: String,
        body: Vec<u8>,
        sign: Signer,
    ) {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Delivery {
                id: id.clone(),
                event_type,
                url: url.clone(),
                attempts: Vec::new(),
                delivered: false,
                body: serde_json::from_slice(&body).unwrap_or_default(),
            });
        if !self.enabled.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let delays = std::iter::once(Duration::ZERO).chain(this.schedule.clone());
            for delay in delays {
                tokio::time::sleep(delay).await;
                let (attempt, delivered) = this.attempt(&url, &body, &sign).await;
                this.record(&id, attempt, delivered);
                if delivered {
                    return;
                }
            }
            tracing::warn!(id, url, "webhook gave up after every retry");
        });
    }

    /// One attempt, freshly signed: what happened, and whether it was delivered (a 2xx).
    async fn attempt(&self, url: &str, body: &[u8], sign: &Signer) -> (Attempt, bool) {
        let headers = sign(crate::now().unix_timestamp(), body);
        let sent = headers
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
            .collect::<std::collections::BTreeMap<_, _>>();
        let result = self
            .client
            .post(url)
            .headers(headers)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .send()
            .await;
        match result {
            Ok(response) => (
                Attempt {
                    status: Some(response.status().as_u16()),
                    error: None,
                    headers: sent,
                },
                response.status().is_success(),
            ),
            Err(e) => (
                Attempt {
                    status: None,
                    error: Some(e.to_string()),
                    headers: sent,
                },
                false,
            ),
        }
    }
}
