//! Local defaults on top of the functions' own configuration: an in-memory store, generated
//! secrets, and a loopback port, each overridable by the variables the Lambda functions read.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use base64::Engine;
use shared::config::{Config, ConfigError};

/// Table used when `AWS_ENDPOINT_URL` points at a local DynamoDB and no `TABLE_NAME` is given.
pub const LOCAL_TABLE: &str = "stytch-unit-bridge-local";

/// Project id of the Stytch sandbox (and of a local Stytch URL given without a project id).
pub const LOCAL_PROJECT_ID: &str = "project-test-00000000-0000-0000-0000-000000000000";

/// Reads one environment variable.
type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What the local runner will run with, before the sandboxes' addresses are known.
pub struct Plan {
    lookup: Lookup,
    overlay: HashMap<&'static str, String>,
    /// Where the API listens.
    pub bind: SocketAddr,
    /// Where the Stytch sandbox listens, if Stytch is not configured.
    pub stytch_sandbox: Option<SocketAddr>,
    /// Where the Unit sandbox listens, if Unit is not configured.
    pub unit_sandbox: Option<SocketAddr>,
    /// Create the DynamoDB table if it is missing (local endpoints only).
    pub create_table: bool,
    /// The secrets file generated for this checkout, if one is used.
    pub generated_secrets: Option<PathBuf>,
    /// The sandboxes' webhook retry delays (`SANDBOX_WEBHOOK_RETRY_MS`, comma-separated
    /// milliseconds; default 1, 2, 5, 10, 30 and 60 s).
    pub webhook_schedule: Vec<std::time::Duration>,
}

/// Why the runner cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A setting is missing or malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The generated secrets file could not be written or read.
    #[error("local secrets file {path}: {problem}")]
    SecretsFile { path: String, problem: String },
}

fn port(
    get: &dyn Fn(&str) -> Option<String>,
    var: &'static str,
    default: u16,
) -> Result<u16, ConfigError> {
    match get(var) {
        None => Ok(default),
        Some(p) => p.parse().map_err(|_| ConfigError {
            var,
            problem: format!("must be a port number, got {p:?}"),
        }),
    }
}

/// The address everything listens on (`BIND_ADDRESS`, default 127.0.0.1).
fn bind_ip(get: &dyn Fn(&str) -> Option<String>) -> Result<IpAddr, ConfigError> {
    match get("BIND_ADDRESS") {
        None => Ok(IpAddr::from([127, 0, 0, 1])),
        Some(a) => a.parse().map_err(|_| ConfigError {
            var: "BIND_ADDRESS",
            problem: format!("must be an IP address, got {a:?}"),
        }),
    }
}

/// Where the Stytch and Unit sandboxes listen, each `None` when its upstream is configured.
/// Without a `STYTCH_PROJECT_ID`, the sandbox's project id goes into `overlay`.
fn sandbox_addresses(
    get: &dyn Fn(&str) -> Option<String>,
    ip: IpAddr,
    overlay: &mut HashMap<&'static str, String>,
) -> Result<(Option<SocketAddr>, Option<SocketAddr>), ConfigError> {
    let stytch_sandbox = if get("STYTCH_API_URL").is_none() && get("STYTCH_PROJECT_ID").is_none() {
        overlay.insert("STYTCH_PROJECT_ID", LOCAL_PROJECT_ID.into());
        Some(SocketAddr::new(ip, port(get, "STYTCH_SANDBOX_PORT", 3001)?))
    } else {
        if get("STYTCH_PROJECT_ID").is_none() {
            overlay.insert("STYTCH_PROJECT_ID", LOCAL_PROJECT_ID.into());
        }
        None
    };
    let unit_sandbox = match get("UNIT_API_URL") {
        None => Some(SocketAddr::new(ip, port(get, "UNIT_SANDBOX_PORT", 3002)?)),
        Some(_) => None,
    };
    Ok((stytch_sandbox, unit_sandbox))
}

/// Puts the default store into `overlay` unless `STORE` or `TABLE_NAME` is set: the local
/// table when an AWS endpoint is local, else memory. Returns whether an AWS endpoint is local.
fn default_store(
    get: &dyn Fn(&str) -> Option<String>,
    overlay: &mut HashMap<&'static str, String>,
) -> bool {
    let local_aws = get("AWS_ENDPOINT_URL").is_some() || get("AWS_ENDPOINT_URL_DYNAMODB").is_some();
    if get("STORE").is_none() && get("TABLE_NAME").is_none() {
        if local_aws {
            overlay.insert("TABLE_NAME", LOCAL_TABLE.into());
        } else {
            overlay.insert("STORE", "memory".into());
        }
    }
    local_aws
}

/// Without `SECRET_ID`, `SECRETS_FILE` or `SECRETS_JSON`, generates (or reuses) the secrets
/// file under `state_dir`, points `overlay` at it and returns its path.
fn default_secrets(
    get: &dyn Fn(&str) -> Option<String>,
    state_dir: &Path,
    overlay: &mut HashMap<&'static str, String>,
) -> Result<Option<PathBuf>, SettingsError> {
    if ["SECRET_ID", "SECRETS_FILE", "SECRETS_JSON"]
        .iter()
        .all(|k| get(k).is_none())
    {
        let path = state_dir.join("secrets.json");
        ensure_generated_secrets(&path)?;
        overlay.insert("SECRETS_FILE", path.display().to_string());
        return Ok(Some(path));
    }
    Ok(None)
}

/// The sandboxes' webhook retry delays (`SANDBOX_WEBHOOK_RETRY_MS`).
fn webhook_schedule(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<std::time::Duration>, ConfigError> {
    match get("SANDBOX_WEBHOOK_RETRY_MS") {
        None => Ok(sandboxes::webhooks::Sender::default_schedule()),
        Some(list) => list
            .split(',')
            .map(|ms| ms.trim().parse().map(std::time::Duration::from_millis))
            .collect::<Result<_, _>>()
            .map_err(|_| ConfigError {
                var: "SANDBOX_WEBHOOK_RETRY_MS",
                problem: format!("must be comma-separated milliseconds, got {list:?}"),
            }),
    }
}

impl Plan {
    /// Resolves the plan from `lookup` (the environment), writing generated secrets under
    /// `state_dir`. A sandbox runs for each upstream that is not configured: Stytch unless
    /// `STYTCH_API_URL` or `STYTCH_PROJECT_ID` is set, Unit unless `UNIT_API_URL` is set.
    pub fn resolve(
        lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
        state_dir: &Path,
    ) -> Result<Self, SettingsError> {
        let get = move |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let mut overlay: HashMap<&'static str, String> = HashMap::new();
        let ip = bind_ip(&get)?;
        let (stytch_sandbox, unit_sandbox) = sandbox_addresses(&get, ip, &mut overlay)?;
        let local_aws = default_store(&get, &mut overlay);
        let generated_secrets = default_secrets(&get, state_dir, &mut overlay)?;
        let webhook_schedule = webhook_schedule(&get)?;
        let bind = SocketAddr::new(ip, port(&get, "PORT", 3000)?);
        let create_table = local_aws
            && (get("STORE").is_none_or(|s| s == "dynamodb"))
            && !overlay.contains_key("STORE");
        let plan = Self {
            lookup: Box::new(get),
            overlay,
            bind,
            stytch_sandbox,
            unit_sandbox,
            create_table,
            generated_secrets,
            webhook_schedule,
        };
        // Fail now, not after binding ports, on a bad setting.
        plan.config(Some("http://127.0.0.1:1"), Some("http://127.0.0.1:1"))?;
        Ok(plan)
    }

    /// The functions' configuration, with the sandboxes' URLs where they run.
    pub fn config(
        &self,
        stytch_sandbox_url: Option<&str>,
        unit_sandbox_url: Option<&str>,
    ) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| match k {
            "STYTCH_API_URL" if self.stytch_sandbox.is_some() => {
                stytch_sandbox_url.map(str::to_owned)
            }
            "UNIT_API_URL" if self.unit_sandbox.is_some() => unit_sandbox_url.map(str::to_owned),
            _ => self.overlay.get(k).cloned().or_else(|| (self.lookup)(k)),
        })
    }
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The system RNG failing means the machine cannot make secrets at all.
    aws_lc_rs::rand::fill(&mut buf)
        .unwrap_or_else(|_| panic!("the system random generator failed"));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Writes a secrets file with fresh random values unless one exists (it is reused across runs,
/// so webhook senders configured once keep working).
fn ensure_generated_secrets(path: &Path) -> Result<(), SettingsError> {
    let err = |problem: String| SettingsError::SecretsFile {
        path: path.display().to_string(),
        problem,
    };
    if path.exists() {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    }
    let mut webhook_key = vec![0u8; 24];
    aws_lc_rs::rand::fill(&mut webhook_key)
        .map_err(|_| err("the system random generator failed".into()))?;
    let secrets = serde_json::json!({
        "stytch_secret": format!("secret-test-{}", random_token(24)),
        "stytch_webhook_secret": format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(webhook_key)),
        "unit_api_token": format!("v2.public.local.{}", random_token(32)),
        "unit_webhook_token": random_token(24),
    });
    let text = serde_json::to_string_pretty(&secrets).map_err(|e| err(e.to_string()))?;
    // Written to a temporary name and renamed, so a crash never leaves half a file.
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(|e| err(e.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| err(e.to_string()))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::config::{SecretsLocation, StoreLocation};

    fn plan(vars: &[(&str, &str)], dir: &Path) -> Result<Plan, SettingsError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Plan::resolve(move |k| map.get(k).cloned(), dir)
    }

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("local-settings-{}", sandboxes::random_hex(8)));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn defaults_are_sandboxes_memory_generated_secrets_and_port_3000() {
        let dir = temp_dir();
        let p = plan(&[], &dir).unwrap();
        assert_eq!(p.bind, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(p.stytch_sandbox, Some("127.0.0.1:3001".parse().unwrap()));
        assert_eq!(p.unit_sandbox, Some("127.0.0.1:3002".parse().unwrap()));
        assert!(!p.create_table);
        let c = p
            .config(Some("http://127.0.0.1:3001"), Some("http://127.0.0.1:3002"))
            .unwrap();
        assert_eq!(c.store, StoreLocation::Memory);
        assert_eq!(c.stytch_project_id, LOCAL_PROJECT_ID);
        assert_eq!(
            (c.stytch_api_url.as_str(), c.unit_api_url.as_str()),
            ("http://127.0.0.1:3001", "http://127.0.0.1:3002")
        );
        let file = dir.join("secrets.json");
        assert_eq!(c.secrets, SecretsLocation::File(file.clone()));
        let first = std::fs::read_to_string(&file).unwrap();
        shared::secrets::Secrets::parse(&first, "generated", LOCAL_PROJECT_ID).unwrap();
        // Reused on the next start.
        plan(&[], &dir).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), first);
    }

    #[test]
    fn configured_upstreams_and_aws_replace_the_local_parts() {
        let dir = temp_dir();
        let p = plan(
            &[
                ("UNIT_API_URL", "https://api.s.unit.sh"),
                ("STYTCH_PROJECT_ID", "project-test-abc"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
                ("SECRET_ID", "bridge"),
                ("PORT", "4000"),
                ("STYTCH_SANDBOX_PORT", "0"),
            ],
            &dir,
        )
        .unwrap();
        assert_eq!((p.stytch_sandbox, p.unit_sandbox), (None, None));
        assert!(p.create_table);
        assert_eq!(p.bind.port(), 4000);
        let c = p.config(None, None).unwrap();
        assert_eq!(
            c.store,
            StoreLocation::DynamoDb {
                table_name: LOCAL_TABLE.into()
            }
        );
        assert!(matches!(c.secrets, SecretsLocation::SecretsManager { .. }));
        assert_eq!(c.stytch_api_url, "https://test.stytch.com");
        assert_eq!(c.unit_api_url, "https://api.s.unit.sh");
    }

    #[test]
    fn bad_settings_fail_before_anything_binds() {
        let dir = temp_dir();
        for (var, value) in [
            ("PORT", "http"),
            ("UNIT_API_URL", "x"),
            ("STYTCH_SANDBOX_PORT", "-1"),
            ("BIND_ADDRESS", "home"),
        ] {
            let e = plan(&[(var, value)], &dir).err().expect("must fail");
            assert!(e.to_string().contains(var), "{var}: {e}");
        }
    }
}
