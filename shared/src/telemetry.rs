//! Tracing set-up: JSON lines on Lambda (what CloudWatch and `LogFormat: JSON` expect), compact
//! text locally. Level from `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`, else `info`.
//!
//! A level name raises only this workspace's crates ([`OUR_CRATES`]): at `DEBUG` or `TRACE`
//! every dependency stays at `INFO`. Their debug output was never reviewed for secrets, and
//! some of it carries them: lambda_runtime traces each raw event (bearer JWTs, SSNs), hyper and
//! the AWS SDK trace headers and bodies. An explicit directive in `RUST_LOG`
//! (`hyper=debug,...`) is taken as written, for a developer who asks for exactly that.
//!
//! Nothing secret is ever a field: tokens, JWTs and SSNs are wrapped in `SecretString`, whose
//! `Debug` is redacted, and handlers log ids, never bodies.

use tracing_subscriber::EnvFilter;

/// The crates (tracing targets) of this workspace, the only ones a `DEBUG` or `TRACE` level
/// raises.
pub const OUR_CRATES: &[&str] = &[
    "shared",
    "signup_webhook",
    "totp_stepup",
    "customer_token",
    "local_stack",
    "sandboxes",
    "bridge_admin",
];

/// The `EnvFilter` directive for a configured level: a level name above `INFO` (`DEBUG`,
/// `TRACE`, any case) applies to [`OUR_CRATES`] only, everything else staying at `INFO`; other
/// level names apply to all; a directive with `=` or `,` is returned as written.
pub fn directive(level: &str) -> String {
    let level = level.trim();
    if level.contains(['=', ',']) {
        return level.to_owned();
    }
    let level = level.to_lowercase();
    match level.as_str() {
        "debug" | "trace" => std::iter::once("info".to_owned())
            .chain(OUR_CRATES.iter().map(|c| format!("{c}={level}")))
            .collect::<Vec<_>>()
            .join(","),
        "" => "info".to_owned(),
        _ => level,
    }
}

fn env_filter(level: &str) -> EnvFilter {
    EnvFilter::try_new(directive(level)).unwrap_or_else(|_| EnvFilter::new("info"))
}

fn filter() -> EnvFilter {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    env_filter(&level)
}

/// JSON logs for the Lambda functions (no ANSI, no timestamps: CloudWatch adds them).
pub fn init_lambda() {
    init_json(filter(), std::io::stdout);
}

/// The Lambda functions' JSON logs at `level` (as `AWS_LAMBDA_LOG_LEVEL`, see [`directive`]),
/// written to `writer`: how the end-to-end suite captures every line to scan it for secrets.
pub fn init_json_to<W>(level: &str, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    init_json(env_filter(level), writer);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing::Level;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Which of these events the functions would write at `level`.
    fn written_at(level: &str) -> String {
        let lines = Lines::default();
        let sink = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter(env_filter(level))
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::event!(target: "shared::stytch", Level::TRACE, "ours-trace");
            tracing::event!(target: "customer_token::handler", Level::DEBUG, "ours-debug");
            tracing::event!(target: "lambda_runtime", Level::TRACE, "raw JSON event received");
            tracing::event!(target: "hyper::proto::h1", Level::DEBUG, "theirs-debug");
            tracing::event!(target: "aws_smithy_runtime::client", Level::INFO, "theirs-info");
            tracing::event!(target: "reqwest::connect", Level::WARN, "theirs-warn");
        });
        String::from_utf8(lines.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn debug_and_trace_raise_our_crates_only() {
        let trace = written_at("TRACE");
        for ours in ["ours-trace", "ours-debug", "theirs-info", "theirs-warn"] {
            assert!(trace.contains(ours), "{ours} missing at TRACE:\n{trace}");
        }
        for theirs in ["raw JSON event received", "theirs-debug"] {
            assert!(
                !trace.contains(theirs),
                "{theirs} written at TRACE:\n{trace}"
            );
        }
        let debug = written_at("debug");
        assert!(debug.contains("ours-debug") && !debug.contains("ours-trace"));
        assert!(!debug.contains("theirs-debug"), "{debug}");
        let warn = written_at("WARN");
        assert!(!warn.contains("ours-debug") && !warn.contains("theirs-info"));
        assert!(warn.contains("theirs-warn"), "{warn}");
        // A developer's explicit directive is theirs to choose.
        assert!(written_at("hyper=debug").contains("theirs-debug"));
        assert_eq!(directive(""), "info");
    }
}
