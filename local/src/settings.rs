//! Local defaults on top of the functions' own configuration: an in-memory store, generated
//! secrets, and a loopback port, each overridable by the variables the Lambda functions read.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use base64::Engine;
use shared::config::{Config, ConfigError};

/// Table used when `AWS_ENDPOINT_URL` points at a local DynamoDB and no `TABLE_NAME` is given.
pub const LOCAL_TABLE: &str = "stytch-unit-bridge-local";

/// Project id used with a local Stytch URL when none is given.
pub const LOCAL_PROJECT_ID: &str = "project-test-00000000-0000-0000-0000-000000000000";

/// What the local runner will run with.
#[derive(Debug)]
pub struct LocalSettings {
    /// The functions' configuration.
    pub config: Config,
    /// Where to listen.
    pub bind: SocketAddr,
    /// Create the DynamoDB table if it is missing (local endpoints only).
    pub create_table: bool,
    /// The secrets file generated for this checkout, if one is used.
    pub generated_secrets: Option<PathBuf>,
}

/// Why the runner cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A setting is missing or malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No Stytch or Unit to talk to.
    #[error(
        "no upstream configured: {0} is not set. The in-process Stytch and Unit sandboxes are not built yet; \
         point the stack at real services (STYTCH_PROJECT_ID with a Stytch test project, UNIT_API_URL=https://api.s.unit.sh) \
         or at your own emulators (STYTCH_API_URL, UNIT_API_URL)"
    )]
    NoUpstream(&'static str),
    /// The generated secrets file could not be written or read.
    #[error("local secrets file {path}: {problem}")]
    SecretsFile { path: String, problem: String },
}

/// Resolves the settings from `lookup` (the environment), writing generated secrets under `state_dir`.
pub fn resolve(
    lookup: impl Fn(&str) -> Option<String>,
    state_dir: &Path,
) -> Result<LocalSettings, SettingsError> {
    let get = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
    let mut overlay: HashMap<&'static str, String> = HashMap::new();

    if get("UNIT_API_URL").is_none() {
        return Err(SettingsError::NoUpstream("UNIT_API_URL"));
    }
    if get("STYTCH_PROJECT_ID").is_none() {
        if get("STYTCH_API_URL").is_none() {
            return Err(SettingsError::NoUpstream(
                "STYTCH_API_URL (or STYTCH_PROJECT_ID)",
            ));
        }
        overlay.insert("STYTCH_PROJECT_ID", LOCAL_PROJECT_ID.into());
    }

    let local_aws = get("AWS_ENDPOINT_URL").is_some() || get("AWS_ENDPOINT_URL_DYNAMODB").is_some();
    if get("STORE").is_none() && get("TABLE_NAME").is_none() {
        if local_aws {
            overlay.insert("TABLE_NAME", LOCAL_TABLE.into());
        } else {
            overlay.insert("STORE", "memory".into());
        }
    }

    let mut generated_secrets = None;
    if ["SECRET_ID", "SECRETS_FILE", "SECRETS_JSON"]
        .iter()
        .all(|k| get(k).is_none())
    {
        let path = state_dir.join("secrets.json");
        ensure_generated_secrets(&path)?;
        overlay.insert("SECRETS_FILE", path.display().to_string());
        generated_secrets = Some(path);
    }

    let config = Config::from_lookup(|k| overlay.get(k).cloned().or_else(|| get(k)))?;
    let port: u16 = match get("PORT") {
        None => 3000,
        Some(p) => p.parse().map_err(|_| ConfigError {
            var: "PORT",
            problem: format!("must be a port number, got {p:?}"),
        })?,
    };
    let ip: IpAddr = match get("BIND_ADDRESS") {
        None => IpAddr::from([127, 0, 0, 1]),
        Some(a) => a.parse().map_err(|_| ConfigError {
            var: "BIND_ADDRESS",
            problem: format!("must be an IP address, got {a:?}"),
        })?,
    };
    let create_table =
        local_aws && matches!(config.store, shared::config::StoreLocation::DynamoDb { .. });
    Ok(LocalSettings {
        config,
        bind: SocketAddr::new(ip, port),
        create_table,
        generated_secrets,
    })
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

    fn resolve_with(vars: &[(&str, &str)], dir: &Path) -> Result<LocalSettings, SettingsError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve(|k| map.get(k).cloned(), dir)
    }

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("local-settings-{:016x}", fastrand_u64()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn fastrand_u64() -> u64 {
        let mut b = [0u8; 8];
        aws_lc_rs::rand::fill(&mut b).unwrap();
        u64::from_le_bytes(b)
    }

    #[test]
    fn without_upstreams_the_runner_says_what_to_set() {
        let dir = temp_dir();
        let e = resolve_with(&[], &dir).unwrap_err();
        assert!(e.to_string().contains("UNIT_API_URL"), "{e}");
        let e = resolve_with(&[("UNIT_API_URL", "http://127.0.0.1:3002")], &dir).unwrap_err();
        assert!(e.to_string().contains("STYTCH_API_URL"), "{e}");
    }

    #[test]
    fn defaults_are_memory_generated_secrets_and_port_3000() {
        let dir = temp_dir();
        let vars = [
            ("UNIT_API_URL", "http://127.0.0.1:3002"),
            ("STYTCH_API_URL", "http://127.0.0.1:3001"),
        ];
        let s = resolve_with(&vars, &dir).unwrap();
        assert_eq!(s.config.store, StoreLocation::Memory);
        assert_eq!(s.config.stytch_project_id, LOCAL_PROJECT_ID);
        assert_eq!(s.bind, "127.0.0.1:3000".parse().unwrap());
        assert!(!s.create_table);
        let file = dir.join("secrets.json");
        assert_eq!(s.config.secrets, SecretsLocation::File(file.clone()));
        let first = std::fs::read_to_string(&file).unwrap();
        shared::secrets::Secrets::parse(&first, "generated", LOCAL_PROJECT_ID).unwrap();
        // Reused on the next start.
        resolve_with(&vars, &dir).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), first);
    }

    #[test]
    fn a_local_aws_endpoint_selects_dynamodb_and_overrides_win() {
        let dir = temp_dir();
        let s = resolve_with(
            &[
                ("UNIT_API_URL", "http://127.0.0.1:3002"),
                ("STYTCH_PROJECT_ID", "project-test-abc"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
                ("SECRET_ID", "bridge"),
                ("PORT", "4000"),
            ],
            &dir,
        )
        .unwrap();
        assert_eq!(
            s.config.store,
            StoreLocation::DynamoDb {
                table_name: LOCAL_TABLE.into()
            }
        );
        assert!(s.create_table);
        assert!(matches!(
            s.config.secrets,
            SecretsLocation::SecretsManager { .. }
        ));
        assert_eq!(s.bind.port(), 4000);
        assert_eq!(s.config.stytch_api_url, "https://test.stytch.com");
        let e = resolve_with(
            &[
                ("UNIT_API_URL", "x"),
                ("STYTCH_PROJECT_ID", "project-test-abc"),
            ],
            &dir,
        )
        .unwrap_err();
        assert!(e.to_string().contains("UNIT_API_URL"), "{e}");
        let e = resolve_with(
            &[
                ("UNIT_API_URL", "http://u"),
                ("STYTCH_PROJECT_ID", "project-test-abc"),
                ("PORT", "http"),
            ],
            &dir,
        )
        .unwrap_err();
        assert!(e.to_string().contains("PORT"), "{e}");
    }
}
