//! Request helpers shared by the handlers: typed routing, bearer tokens, deadlines, request ids. They
//! use only the method, path, headers and body, so API Gateway, `cargo lambda` and the local
//! runner all drive the handlers the same way.

use std::time::Duration;

use http::{Method, header};
use lambda_http::{Request, RequestExt};
use tokio::time::Instant;

use crate::error::ApiError;

/// A function's routes: an enum with one variant per method and path, so that a handler's
/// `match` on it is exhaustive and a route cannot be served by accident.
pub trait Routes: Sized + Copy + 'static {
    /// Every route of the function.
    const ALL: &'static [Self];
    /// The one method it takes.
    fn method(self) -> Method;
    /// Its exact path, e.g. `/mfa/totp`.
    fn path(self) -> &'static str;
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

/// Finds the route for the request: 404 for an unknown path, 405 (with `Allow` from the table)
/// for a method the path does not take.
pub fn route<R: Routes>(req: &Request) -> Result<R, ApiError> {
    let p = path(req);
    let on_path = || R::ALL.iter().copied().filter(|r| r.path() == p);
    if let Some(found) = on_path().find(|r| r.method() == req.method()) {
        return Ok(found);
    }
    let allow: Vec<String> = on_path().map(|r| r.method().to_string()).collect();
    Err(if allow.is_empty() {
        ApiError::route_not_found(req.method().as_str(), p)
    } else {
        ApiError::method_not_allowed(req.method().as_str(), p, &allow.join(", "))
    })
}

/// The `Authorization: Bearer <token>` value; 401 `missing_token` when absent or malformed.
pub fn bearer_token(req: &Request) -> Result<&str, ApiError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::missing_token("send the Stytch session JWT as Authorization: Bearer <jwt>")
    })?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::missing_token("the Authorization header is not readable"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::missing_token("expected Authorization: Bearer <jwt>"))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::missing_token(
            "expected Authorization: Bearer <jwt>",
        ));
    }
    Ok(token)
}

/// Time to keep back from the Lambda deadline to answer and flush logs.
const DEADLINE_MARGIN: Duration = Duration::from_millis(250);

/// Longest a request may take where no Lambda deadline applies (local runner, tests).
pub const LOCAL_REQUEST_BUDGET: Duration = Duration::from_secs(25);

/// The request's JSON body as `T`, for every route that takes one. A blank body (none, or only
/// whitespace) is `T::default()`; a body that is not a `T` is 400 `invalid_request` saying what
/// was `expected` and why, never echoing a value of the body (it may hold a code or an SSN).
pub fn json_body<T: serde::de::DeserializeOwned + Default>(
    req: &Request,
    expected: &str,
) -> Result<T, ApiError> {
    if req.body().iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    required_json_body(req, expected)
}

/// [`json_body`] for a body that must be there: a blank one is refused too.
pub fn required_json_body<T: serde::de::DeserializeOwned>(
    req: &Request,
    expected: &str,
) -> Result<T, ApiError> {
    serde_json::from_slice(req.body().as_ref()).map_err(|e| {
        ApiError::invalid_request(format!("the body must be {expected}: {}", reason(&e)))
    })
}

/// Why a body did not parse, without any value from it: serde's own words only where they name
/// a field, else the kind of error and where.
fn reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let names_a_field = ["missing field", "unknown field", "duplicate field"]
        .iter()
        .any(|p| text.starts_with(p));
    if names_a_field {
        return text;
    }
    let kind = match e.classify() {
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Eof => "cut short",
        serde_json::error::Category::Data => "a value of the wrong type",
        serde_json::error::Category::Io => "unreadable",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}

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

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Code {
        code: Option<String>,
    }

    fn with_body(body: &str) -> Request {
        http::Request::builder()
            .method("POST")
            .uri("/")
            .body(Body::from(body))
            .unwrap()
    }

    #[test]
    fn one_body_parser_defaults_a_blank_body_and_never_echoes_a_value() {
        for blank in ["", "  \n"] {
            assert_eq!(
                json_body::<Code>(&with_body(blank), "x").unwrap(),
                Code::default()
            );
            let e = required_json_body::<Code>(&with_body(blank), "x").unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code.as_str()),
                (400, "invalid_request")
            );
        }
        assert_eq!(
            json_body::<Code>(&with_body(r#"{"code":"123456"}"#), "x").unwrap(),
            Code {
                code: Some("123456".into())
            }
        );
        for bad in [
            r#"{"code": 987654}"#,
            r#"{"code": "987654""#,
            "987654",
            "true",
        ] {
            let e = json_body::<Code>(&with_body(bad), "a code").unwrap_err();
            assert_eq!(e.code, "invalid_request", "{bad}");
            assert!(
                e.message.starts_with("the body must be a code: "),
                "{}",
                e.message
            );
            assert!(!e.message.contains("987654"), "{bad}: {}", e.message);
        }
        let e = json_body::<Code>(&with_body(r#"{"cdoe": "1"}"#), "a code").unwrap_err();
        assert!(e.message.contains("unknown field `cdoe`"), "{}", e.message);
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Test {
        Enrol,
        Onboarding,
        Replace,
    }

    impl Routes for Test {
        const ALL: &'static [Self] = &[Self::Enrol, Self::Onboarding, Self::Replace];
        fn method(self) -> Method {
            match self {
                Self::Enrol => Method::POST,
                Self::Onboarding => Method::GET,
                Self::Replace => Method::PUT,
            }
        }
        fn path(self) -> &'static str {
            match self {
                Self::Enrol | Self::Replace => "/mfa/totp",
                Self::Onboarding => "/onboarding",
            }
        }
    }

    #[test]
    fn routes_match_by_path_and_method() {
        assert_eq!(
            route::<Test>(&req("POST", "/mfa/totp/", None)).unwrap(),
            Test::Enrol
        );
        assert_eq!(
            route::<Test>(&req("GET", "/onboarding?x=1", None)).unwrap(),
            Test::Onboarding
        );
        let e = route::<Test>(&req("GET", "/mfa/totp", None)).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.allow.as_deref()),
            (405, Some("POST, PUT"))
        );
        let e = route::<Test>(&req("POST", "/onboarding", None)).unwrap_err();
        assert_eq!((e.status.as_u16(), e.allow.as_deref()), (405, Some("GET")));
        assert_eq!(
            route::<Test>(&req("GET", "/nope", None))
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
                (e.status.as_u16(), e.code.as_str()),
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
