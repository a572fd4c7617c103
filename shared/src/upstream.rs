//! The HTTP transport under the Stytch and Unit clients: one connection pool per cold start,
//! per-attempt timeouts, and retries of 429/5xx/timeouts with capped exponential backoff and full
//! jitter, inside a deadline (the Lambda invocation's). Each call is one `upstream` span
//! (service, method, route, status, attempts, ms) closed by one `upstream call` event, so the JSON
//! logs show every call to Stytch and Unit inside its request's span.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use tokio::time::Instant;
use tracing::Instrument;

/// How a call may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Reads, and creates carrying an idempotency key: any retryable failure is retried.
    Safe,
    /// A create without an idempotency key: retried only when the request surely never left
    /// (connection refused), never after it may have reached the server.
    OnlyUnsent,
    /// A slow create with an idempotency key (Unit's application: a KYC check that may take
    /// far longer than an ordinary call): each attempt may take this long, an answer saying it
    /// was not done (5xx, 429) is retried, but a timeout or a dropped connection is not. The
    /// first attempt may still be running at Unit, and a second would race it.
    Slow(Duration),
}

impl Retry {
    /// Whether an answered 5xx or 429 is retried.
    fn retries_answers(self) -> bool {
        matches!(self, Self::Safe | Self::Slow(_))
    }
}

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff ceiling; doubles per attempt.
    pub base_delay: Duration,
    /// Cap of one backoff.
    pub max_delay: Duration,
    /// Timeout of one attempt (connect to last body byte).
    pub attempt_timeout: Duration,
}

impl RetryPolicy {
    /// The policy from configuration values.
    pub fn new(max_attempts: u32, attempt_timeout: Duration) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            attempt_timeout,
        }
    }

    /// Full-jitter backoff before attempt `attempt + 1` (`attempt` counts from 1).
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_delay);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(fastrand::u64(0..=millis))
    }
}

/// A response whose status may be anything; the client decodes it.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// Final HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// Response body.
    pub body: Bytes,
    /// Attempts made.
    pub attempts: u32,
}

impl RawResponse {
    /// Seconds to wait from a `Retry-After` header, in either of its forms (RFC 9110 §10.2.3):
    /// delta-seconds, or an HTTP date (seconds from now; a date past is 0).
    pub fn retry_after(&self) -> Option<u64> {
        let value = self
            .headers
            .get(http::header::RETRY_AFTER)?
            .to_str()
            .ok()?
            .trim();
        if let Ok(seconds) = value.parse() {
            return Some(seconds);
        }
        let at = httpdate::parse_http_date(value).ok()?;
        Some(
            at.duration_since(std::time::SystemTime::now())
                .map_or(0, |d| d.as_secs_f64().ceil() as u64),
        )
    }
}

/// A failure below HTTP: nothing usable came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// Every attempt timed out, or the deadline left no room for another.
    #[error("{service} timed out after {attempts} attempt(s)")]
    Timeout {
        service: &'static str,
        attempts: u32,
    },
    /// The service could not be reached.
    #[error("{service} unreachable after {attempts} attempt(s): {message}")]
    Unreachable {
        service: &'static str,
        attempts: u32,
        message: String,
    },
    /// The service answered with a body we cannot read.
    #[error("{service} sent an unreadable response ({status}): {message}")]
    Decode {
        service: &'static str,
        status: u16,
        message: String,
    },
}

impl TransportError {
    /// Attempts made.
    pub fn attempts(&self) -> u32 {
        match self {
            Self::Timeout { attempts, .. } | Self::Unreachable { attempts, .. } => *attempts,
            // An unreadable answer came from the last attempt; how many preceded it is not kept.
            Self::Decode { .. } => 1,
        }
    }
}

/// One upstream service: a shared `reqwest::Client`, a base URL (which may carry a path) and a
/// retry policy.
#[derive(Debug, Clone)]
pub struct Upstream {
    service: &'static str,
    client: reqwest::Client,
    base_url: String,
    policy: RetryPolicy,
}

/// Builds the one HTTP client of a cold start (rustls with aws-lc-rs, HTTP/2 where offered).
///
/// Redirects are not followed: Stytch's and Unit's APIs answer where they are asked, and a 3xx
/// reaches the client as the unexpected status it is (nor does a credential follow it anywhere).
pub fn http_client(connect_timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(50))
        .user_agent(concat!("stytch-unit-bridge/", env!("CARGO_PKG_VERSION")))
        .build()
        // Building fails only if the TLS backend cannot initialise: nothing can work then.
        .unwrap_or_else(|e| panic!("cannot build the HTTP client: {e}"))
}

/// A request to send.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// Method.
    pub method: Method,
    /// Path below the base URL, starting with `/`, already percent-encoded.
    pub path: &'a str,
    /// Extra headers (auth, content type).
    pub headers: HeaderMap,
    /// JSON body (shared, not copied, by every attempt).
    pub body: Option<Bytes>,
    /// Retry rule.
    pub retry: Retry,
    /// No attempt starts, and none runs, past this instant.
    pub deadline: Instant,
}

enum Outcome {
    Done(RawResponse),
    Retryable(RawResponse),
    Failed(TransportError, /* sent: */ bool),
}

impl Upstream {
    /// A service at `base_url` (no trailing slash needed; a path prefix is kept).
    pub fn new(
        service: &'static str,
        client: reqwest::Client,
        base_url: &str,
        policy: RetryPolicy,
    ) -> Self {
        Self {
            service,
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            policy,
        }
    }

    /// The base URL joined with `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Sends `call`, retrying per the policy. Returns the last response, whatever its status,
    /// or the transport failure.
    pub async fn send(&self, call: Call<'_>) -> Result<RawResponse, TransportError> {
        let span = tracing::info_span!(
            "upstream",
            service = self.service,
            method = %call.method,
            route = call.path,
            status = tracing::field::Empty,
            attempts = tracing::field::Empty,
            ms = tracing::field::Empty,
        );
        async {
            let started = Instant::now();
            let result = self.send_with_retries(call).await;
            let span = tracing::Span::current();
            let attempts = match &result {
                Ok(response) => {
                    span.record("status", response.status.as_u16());
                    response.attempts
                }
                Err(e) => e.attempts(),
            };
            span.record("attempts", attempts);
            span.record(
                "ms",
                u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            );
            tracing::info!("upstream call");
            result
        }
        .instrument(span)
        .await
    }

    async fn send_with_retries(&self, call: Call<'_>) -> Result<RawResponse, TransportError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let left = call.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(TransportError::Timeout {
                    service: self.service,
                    attempts: attempt - 1,
                });
            }
            let timeout = left.min(match call.retry {
                Retry::Slow(attempt_timeout) => attempt_timeout,
                _ => self.policy.attempt_timeout,
            });
            let outcome = self.attempt(&call, timeout, attempt).await;
            let may_retry = attempt < self.policy.max_attempts;
            let (delay, last) = match outcome {
                Outcome::Done(response) => return Ok(response),
                Outcome::Retryable(response) if may_retry && call.retry.retries_answers() => {
                    let backoff = self.policy.backoff(attempt);
                    let wanted = response
                        .retry_after()
                        .map(Duration::from_secs)
                        .unwrap_or_default();
                    (backoff.max(wanted), Ok(response))
                }
                Outcome::Retryable(response) => return Ok(response),
                Outcome::Failed(error, sent)
                    if may_retry && (call.retry == Retry::Safe || !sent) =>
                {
                    (self.policy.backoff(attempt), Err(error))
                }
                Outcome::Failed(error, _) => return Err(error),
            };
            if Instant::now() + delay >= call.deadline {
                return last;
            }
            tracing::debug!(
                service = self.service,
                attempt,
                delay_ms = delay.as_millis() as u64,
                "retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(&self, call: &Call<'_>, timeout: Duration, attempt: u32) -> Outcome {
        let mut request = self
            .client
            .request(call.method.clone(), self.url(call.path))
            .headers(call.headers.clone())
            .timeout(timeout);
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(self.transport_error(&e, attempt), !e.is_connect()),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Outcome::Failed(self.transport_error(&e, attempt), true),
        };
        let raw = RawResponse {
            status,
            headers,
            body,
            attempts: attempt,
        };
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            tracing::warn!(
                service = self.service,
                status = status.as_u16(),
                attempt,
                "upstream answered a retryable status"
            );
            Outcome::Retryable(raw)
        } else {
            Outcome::Done(raw)
        }
    }

    fn transport_error(&self, e: &reqwest::Error, attempts: u32) -> TransportError {
        tracing::warn!(service = self.service, attempts, error = %e, "upstream request failed");
        if e.is_timeout() {
            TransportError::Timeout {
                service: self.service,
                attempts,
            }
        } else {
            TransportError::Unreachable {
                service: self.service,
                attempts,
                // reqwest's Display carries the URL, never headers; strip it anyway.
                message: e.without_url_ref().to_string(),
            }
        }
    }
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut message = self.to_string();
        if let Some(url) = self.url() {
            message = message.replace(url.as_str(), "<url>");
        }
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn upstream(server: &MockServer, attempts: u32) -> Upstream {
        let policy = RetryPolicy {
            max_attempts: attempts,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            attempt_timeout: Duration::from_millis(300),
        };
        Upstream::new(
            "test",
            http_client(Duration::from_secs(1)),
            &format!("{}/prefix/", server.uri()),
            policy,
        )
    }

    fn call(retry: Retry) -> Call<'static> {
        Call {
            method: Method::POST,
            path: "/things",
            headers: HeaderMap::new(),
            body: Some(Bytes::from_static(b"{}")),
            retry,
            deadline: Instant::now() + Duration::from_secs(30),
        }
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let p = RetryPolicy::new(5, Duration::from_secs(1));
        for attempt in 1..40 {
            let d = p.backoff(attempt);
            assert!(
                d <= p.max_delay && d <= p.base_delay * 2u32.pow(attempt.min(20) - 1),
                "{attempt}: {d:?}"
            );
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| p.backoff(5)).collect();
        assert!(spread.len() > 5, "no jitter: {spread:?}");
    }

    #[tokio::test]
    async fn server_errors_are_retried_then_returned() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/prefix/things"))
            .respond_with(ResponseTemplate::new(503))
            .expect(3)
            .mount(&server)
            .await;
        let r = upstream(&server, 3).send(call(Retry::Safe)).await.unwrap();
        assert_eq!((r.status.as_u16(), r.attempts), (503, 3));
    }

    #[tokio::test]
    async fn a_redirect_is_answered_not_followed() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/prefix/things"))
            .respond_with(ResponseTemplate::new(307).insert_header("location", "/prefix/elsewhere"))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(path("/prefix/elsewhere"))
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&server)
            .await;
        let r = upstream(&server, 3).send(call(Retry::Safe)).await.unwrap();
        assert_eq!((r.status.as_u16(), r.attempts), (307, 1));
    }

    #[tokio::test]
    async fn a_create_without_idempotency_key_is_not_retried_after_sending() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500))
            .expect(1)
            .mount(&server)
            .await;
        let r = upstream(&server, 3)
            .send(call(Retry::OnlyUnsent))
            .await
            .unwrap();
        assert_eq!((r.status.as_u16(), r.attempts), (500, 1));
    }

    #[tokio::test]
    async fn success_after_a_429_and_timeouts_become_errors() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(429))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201).set_body_string("ok"))
            .mount(&server)
            .await;
        let r = upstream(&server, 3).send(call(Retry::Safe)).await.unwrap();
        assert_eq!(
            (r.status.as_u16(), r.attempts, &r.body[..]),
            (201, 2, &b"ok"[..])
        );

        let slow = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
            .expect(3)
            .mount(&slow)
            .await;
        let err = upstream(&slow, 2)
            .send(call(Retry::Safe))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            TransportError::Timeout {
                service: "test",
                attempts: 2
            }
        );
        // Without a key, a timed-out create may have landed: no second attempt.
        let err = upstream(&slow, 2)
            .send(call(Retry::OnlyUnsent))
            .await
            .unwrap_err();
        assert!(
            matches!(err, TransportError::Timeout { attempts: 1, .. }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn the_deadline_bounds_all_attempts() {
        let slow = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
            .mount(&slow)
            .await;
        let mut c = call(Retry::Safe);
        c.deadline = Instant::now() + Duration::from_millis(450);
        let started = Instant::now();
        let err = upstream(&slow, 10).send(c).await.unwrap_err();
        assert!(matches!(err, TransportError::Timeout { .. }), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_even_for_an_unkeyed_create() {
        // A port with nothing listening: the request never left.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(1),
            ..RetryPolicy::new(3, Duration::from_secs(1))
        };
        let u = Upstream::new(
            "test",
            http_client(Duration::from_secs(1)),
            &format!("http://127.0.0.1:{port}"),
            policy,
        );
        let err = u.send(call(Retry::OnlyUnsent)).await.unwrap_err();
        assert!(
            matches!(err, TransportError::Unreachable { attempts: 3, .. }),
            "{err:?}"
        );
    }
}
