//! Business metrics as CloudWatch Embedded Metric Format (EMF) records: one JSON line on stdout
//! per event, which CloudWatch Logs turns into metrics (no API call, no SDK). A small writer of
//! the documented format (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
//! `_aws.Timestamp` (epoch ms), `_aws.CloudWatchMetrics[{Namespace, Dimensions, Metrics}]`, and
//! each dimension and metric value as a top-level member.
//!
//! Dimensions are few and of low cardinality (the environment, and per metric a kind, a source
//! or a service: never a user id). The namespace and the environment come from
//! `METRICS_NAMESPACE` (default `StytchUnitBridge`) and `METRICS_ENVIRONMENT` (default `dev`).
//!
//! With `LogFormat: JSON`, Lambda drops a JSON line whose `level` is below the function's
//! `ApplicationLogLevel` and treats a line without one as INFO. So every record carries a
//! `level`: INFO, or the configured level (`AWS_LAMBDA_LOG_LEVEL`) when that is above INFO, the
//! lowest level that still passes: metrics survive every log level the template allows.
//! Records are written only on Lambda (`AWS_LAMBDA_FUNCTION_NAME` set), never by the local stack.

use std::io::Write as _;
use std::sync::OnceLock;

/// One business event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// A customer token was issued (`Kind`: `sensitive` or `read_only`).
    TokenIssued { sensitive: bool },
    /// A session stepped up with a second factor.
    StepUp,
    /// A TOTP or recovery-code check was refused by the per-user lockout.
    TotpLockout,
    /// A webhook was verified and applied (`Source`: `stytch` or `unit`).
    WebhookApplied { source: &'static str },
    /// A webhook was refused: bad signature, stale timestamp, missing headers (`Source`).
    WebhookRefused { source: &'static str },
    /// A call to Stytch or Unit failed after its retries (`Service`, `Kind`: `timeout`,
    /// `rate_limited` or `unavailable`).
    UpstreamFailure {
        service: &'static str,
        kind: &'static str,
    },
    /// Stytch or Unit refused the deployment's own credential (`Service`): every call to it
    /// fails until an operator fixes the secret. Alarmed on.
    CredentialsRefused { service: &'static str },
    /// A store write lost a race and was retried (optimistic concurrency).
    StoreConflict,
    /// Unit refused an application for its identity (a duplicate SSN, any identity reason):
    /// deployment-wide, since scripted sign-ups defeat per-user limits.
    IdentityRefused,
    /// Today's new applications and forms passed 80 % of `DAILY_APPLICATIONS_CAP` (or met it).
    DailyApplicationsHigh,
    /// Something only an attacker (or a broken upstream) would cause was refused (`Alert`: the
    /// `alert` field of its ERROR line). Every one is alarmed on.
    SecurityAlert { alert: &'static str },
}

/// Refuses something only an attacker (or a broken upstream) would cause: one ERROR line with an
/// `alert` field naming it, and the `SecurityAlerts` metric the template alarms on.
pub fn alert(alert: &'static str, detail: &str) {
    tracing::error!(alert, "{detail}");
    emit(Metric::SecurityAlert { alert });
}

/// A dimension of a metric: its name and value.
type Dimension = (&'static str, &'static str);

impl Metric {
    /// The metric's name and its own dimensions (none, one or two).
    fn parts(self) -> (&'static str, Vec<Dimension>) {
        match self {
            Metric::TokenIssued { sensitive } => (
                "TokensIssued",
                vec![("Kind", if sensitive { "sensitive" } else { "read_only" })],
            ),
            Metric::StepUp => ("StepUps", vec![]),
            Metric::TotpLockout => ("TotpLockouts", vec![]),
            Metric::WebhookApplied { source } => ("WebhooksApplied", vec![("Source", source)]),
            Metric::WebhookRefused { source } => ("WebhooksRefused", vec![("Source", source)]),
            Metric::UpstreamFailure { service, kind } => (
                "UpstreamFailures",
                vec![("Service", service), ("Kind", kind)],
            ),
            Metric::CredentialsRefused { service } => {
                ("CredentialsRefused", vec![("Service", service)])
            }
            Metric::StoreConflict => ("StoreConflicts", vec![]),
            Metric::IdentityRefused => ("IdentityRefusals", vec![]),
            Metric::DailyApplicationsHigh => ("DailyApplicationsHigh", vec![]),
            Metric::SecurityAlert { alert } => ("SecurityAlerts", vec![("Alert", alert)]),
        }
    }
}

/// Where and how records are written: read once per cold start.
struct Sink {
    namespace: String,
    environment: String,
    level: &'static str,
}

fn sink() -> Option<&'static Sink> {
    static SINK: OnceLock<Option<Sink>> = OnceLock::new();
    SINK.get_or_init(|| {
        std::env::var_os("AWS_LAMBDA_FUNCTION_NAME")?;
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        Some(Sink {
            namespace: var("METRICS_NAMESPACE", "StytchUnitBridge"),
            environment: var("METRICS_ENVIRONMENT", "dev"),
            level: level_for(std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref()),
        })
    })
    .as_ref()
}

/// The level a record carries: INFO, or the function's log level when that is above INFO.
pub fn level_for(configured: Option<&str>) -> &'static str {
    match configured.map(str::to_ascii_uppercase).as_deref() {
        Some("WARN") => "WARN",
        Some("ERROR") => "ERROR",
        Some("FATAL") => "FATAL",
        _ => "INFO",
    }
}

/// Records `metric` (a count of 1), on Lambda only.
pub fn emit(metric: Metric) {
    let Some(sink) = sink() else {
        return;
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let line = record(
        metric,
        &sink.namespace,
        &sink.environment,
        sink.level,
        now as i64,
    );
    // One write per line, so that records never interleave with log lines.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

/// The EMF record of one `metric` event: the metric under the environment alone and, where the
/// metric has dimensions of its own, under those too.
pub fn record(
    metric: Metric,
    namespace: &str,
    environment: &str,
    level: &str,
    timestamp_ms: i64,
) -> String {
    let (name, own) = metric.parts();
    let mut sets = vec![vec!["Environment"]];
    let mut member = serde_json::Map::new();
    member.insert("Environment".into(), environment.into());
    let mut full = vec!["Environment"];
    for (key, value) in own {
        full.push(key);
        member.insert(key.into(), value.into());
    }
    if full.len() > 1 {
        sets.push(full);
    }
    member.insert("level".into(), level.into());
    member.insert(name.into(), 1.into());
    member.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": sets,
                "Metrics": [{"Name": name, "Unit": "Count"}],
            }],
        }),
    );
    serde_json::Value::Object(member).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Lambda keeps of a JSON line under `ApplicationLogLevel` `threshold`.
    fn lambda_keeps(line: &str, threshold: &str) -> bool {
        const ORDER: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
        let rank = |l: &str| ORDER.iter().position(|o| o.eq_ignore_ascii_case(l));
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let level = v["level"].as_str().unwrap_or("INFO");
        rank(level) >= rank(threshold)
    }

    #[test]
    fn a_record_is_emf_with_low_cardinality_dimensions() {
        let line = record(
            Metric::UpstreamFailure {
                service: "unit",
                kind: "timeout",
            },
            "StytchUnitBridge",
            "prod",
            "INFO",
            1_764_000_000_000,
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let spec = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(spec["Namespace"], "StytchUnitBridge");
        assert_eq!(
            spec["Dimensions"],
            serde_json::json!([["Environment"], ["Environment", "Service", "Kind"]])
        );
        assert_eq!(
            spec["Metrics"][0],
            serde_json::json!({"Name": "UpstreamFailures", "Unit": "Count"})
        );
        assert_eq!(
            (
                v["Environment"].as_str(),
                v["Service"].as_str(),
                v["Kind"].as_str()
            ),
            (Some("prod"), Some("unit"), Some("timeout"))
        );
        assert_eq!(v["UpstreamFailures"], 1);
        assert_eq!(v["_aws"]["Timestamp"], 1_764_000_000_000_i64);
        let plain = record(Metric::StepUp, "N", "dev", "INFO", 0);
        let v: serde_json::Value = serde_json::from_str(&plain).unwrap();
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Environment"]])
        );
    }

    #[test]
    fn records_survive_every_log_level_the_template_allows() {
        let template =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))
                .unwrap();
        let allowed = template
            .split("  LogLevel:")
            .nth(1)
            .and_then(|s| s.split("AllowedValues: [").nth(1))
            .and_then(|s| s.split(']').next())
            .expect("the template's LogLevel has AllowedValues");
        let levels: Vec<&str> = allowed.split(',').map(str::trim).collect();
        assert!(
            levels.contains(&"WARN") && levels.contains(&"ERROR"),
            "{levels:?}"
        );
        for level in levels {
            let line = record(Metric::TotpLockout, "N", "dev", level_for(Some(level)), 0);
            assert!(lambda_keeps(&line, level), "{level}: {line}");
        }
        // Without a level, a WARN function would drop it: the reason records carry one.
        assert!(!lambda_keeps(r#"{"TotpLockouts": 1}"#, "WARN"));
    }
}
