//! Tracing set-up: JSON lines on Lambda (what CloudWatch and `LogFormat: JSON` expect), compact
//! text locally. Level from `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`, else `info`.
//!
//! Nothing secret is ever a field: tokens, JWTs and SSNs are wrapped in `SecretString`, whose
//! `Debug` is redacted, and handlers log ids, never bodies.

use tracing_subscriber::EnvFilter;

fn filter() -> EnvFilter {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    EnvFilter::try_new(level.to_lowercase()).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// JSON logs for the Lambda functions (no ANSI, no timestamps: CloudWatch adds them).
pub fn init_lambda() {
    init_json(filter(), std::io::stdout);
}

/// The Lambda functions' JSON logs at `level` (an `EnvFilter` directive), written to `writer`:
/// how the end-to-end suite captures every line to scan it for secrets.
pub fn init_json_to<W>(level: &str, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    init_json(
        EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info")),
        writer,
    );
}

fn init_json<W>(filter: EnvFilter, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        // Each line names its spans: the request (with its id) and, inside a call to Stytch or
        // Unit, the `upstream` span (service, route, status, attempts, ms).
        .with_current_span(false)
        .with_span_list(true)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .with_writer(writer)
        .try_init();
}

/// Human-readable logs for the local runner, on stderr (stdout carries its banner and reports).
pub fn init_local() {
    let _ = tracing_subscriber::fmt()
        .compact()
        .with_env_filter(filter())
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}
