//! Request helpers shared by the handlers: routing, bearer tokens, deadlines, request ids. They
//! use only the method, path, headers and body, so API Gateway, `cargo lambda` and the local
//! runner all drive the handlers the same way.

use std::time::Duration;

use http::{Method, header};
use lambda_http::{Request, RequestExt};
use tokio::time::Instant;

use crate::error::ApiError;

/// One route of a function: a path and the methods it takes (`Allow` header form).
#[derive(Debug, Clone)]
pub struct Route {
    /// Exact path, e.g. `/mfa/totp`.
    pub path: &'static str,
    /// The one method it takes.
    pub method: Method,
    /// `Allow` header value.
    pub allow: &'static str,
}

impl Route {
    /// A route for `method path`.
    pub const fn new(method: Method, path: &'static str, allow: &'static str) -> Self {
        Self {
            path,
            method,
            allow,
        }
    }
}

/// The request's path without a trailing slash (`/` stays `/`).
pub fn path(req: &Request) -> &str {
    let p = req.uri().path();
    if p.len() > 1 {
        p.trim_end_matches('/')
    } else {
        p
    }
}

/// Finds the route for the request: 404 for an unknown path, 405 for a wrong method.
pub fn route<'r>(req: &Request, routes: &'r [Route]) -> Result<&'r Route, ApiError> {
    let p = path(req);
    let mut known_path = None;
    for r in routes.iter().filter(|r| r.path == p) {
        if r.method == req.method() {
            return Ok(r);
        }
        known_path = Some(r.allow);
    }
    Err(match known_path {
        Some(allow) => ApiError::method_not_allowed(req.method().as_str(), p, allow),
        None => ApiError::route_not_found(req.method().as_str(), p),
    })
}

/// The `Authorization: Bearer <token>` value; 401 `missing_token` when absent or malformed.
pub fn bearer_token(req: &Request) -> Result<&str, ApiError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized(
            "missing_token",
            "send the Stytch session JWT as Authorization: Bearer <jwt>",
        )
    })?;
    let value = value.to_str().map_err(|_| {
        ApiError::unauthorized("missing_token", "the Authorization header is not readable")
    })?;
    let (scheme, token) = value.split_once(' ').ok_or_else(|| {
        ApiError::unauthorized("missing_token", "expected Authorization: Bearer <jwt>")
    })?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::unauthorized(
            "missing_token",
            "expected Authorization: Bearer <jwt>",
        ));
    }
    Ok(token)
}

/// Time to keep back from the Lambda deadline to answer and flush logs.
const DEADLINE_MARGIN: Duration = Duration::from_millis(250);

/// Longest a request may take where no Lambda deadline applies (local runner, tests).
pub const LOCAL_REQUEST_BUDGET: Duration = Duration::from_secs(25);

/// The instant by which upstream work must be done: the Lambda deadline minus a margin, or
/// `LOCAL_REQUEST_BUDGET` from now outside Lambda.
pub fn deadline(req: &Request) -> Instant {
    let now = Instant::now();
    let lambda_deadline = req.lambda_context_ref().and_then(|ctx| {
        let deadline_ms = i64::try_from(ctx.deadline).ok()?;
        let left_ms = deadline_ms - now_epoch_millis();
        Some(Duration::from_millis(u64::try_from(left_ms).unwrap_or(0)))
    });
    match lambda_deadline {
        Some(left) if !left.is_zero() => now + left.saturating_sub(DEADLINE_MARGIN),
        _ => now + LOCAL_REQUEST_BUDGET,
    }
}

/// The request id: Lambda's, else the caller's `x-request-id`, else a fresh one.
pub fn request_id(req: &Request) -> String {
    if let Some(ctx) = req.lambda_context_ref()
        && !ctx.request_id.is_empty()
    {
        return ctx.request_id.clone();
    }
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("local-{:016x}", fastrand::u64(..)))
}

/// Now in epoch seconds.
pub fn now_epoch() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn now_epoch_millis() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::Body;

    fn req(method: &str, uri: &str, auth: Option<&str>) -> Request {
        let mut b = http::Request::builder().method(method).uri(uri);
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.body(Body::Empty).unwrap()
    }

    const ROUTES: &[Route] = &[
        Route::new(Method::POST, "/mfa/totp", "POST"),
        Route::new(Method::GET, "/onboarding", "GET"),
    ];

    #[test]
    fn routes_match_by_path_and_method() {
        assert_eq!(
            route(&req("POST", "/mfa/totp/", None), ROUTES)
                .unwrap()
                .path,
            "/mfa/totp"
        );
        assert_eq!(
            route(&req("GET", "/onboarding?x=1", None), ROUTES)
                .unwrap()
                .path,
            "/onboarding"
        );
        let e = route(&req("GET", "/mfa/totp", None), ROUTES).unwrap_err();
        assert_eq!((e.status.as_u16(), e.allow), (405, Some("POST")));
        assert_eq!(
            route(&req("GET", "/nope", None), ROUTES)
                .unwrap_err()
                .status,
            404
        );
    }

    #[test]
    fn bearer_tokens_are_read_strictly() {
        assert_eq!(
            bearer_token(&req("GET", "/", Some("Bearer abc.def.ghi"))).unwrap(),
            "abc.def.ghi"
        );
        assert_eq!(
            bearer_token(&req("GET", "/", Some("bearer abc"))).unwrap(),
            "abc"
        );
        for bad in [
            None,
            Some("Basic abc"),
            Some("Bearer"),
            Some("Bearer  "),
            Some("abc"),
        ] {
            let e = bearer_token(&req("GET", "/", bad)).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code),
                (401, "missing_token"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn outside_lambda_the_deadline_is_the_local_budget() {
        let d = deadline(&req("GET", "/", None));
        let left = d - Instant::now();
        assert!(
            left <= LOCAL_REQUEST_BUDGET && left > LOCAL_REQUEST_BUDGET - Duration::from_secs(1)
        );
        assert!(request_id(&req("GET", "/", None)).starts_with("local-"));
    }
}
