//! CPU per exchange: the process CPU time (user + system, from `/proc/<pid>/stat`) a server
//! spends per `POST /unit/customer-token`, measured on its own core while the bench, the
//! sandboxes and moto run on the other. Two servers: the local stack's HTTP server (the
//! `local-stack` binary, memory store) under 64 connections, and a function's release `bootstrap`
//! on the local Lambda Runtime API (the deployed path, DynamoDB store in moto), one invocation at
//! a time as on classic Lambda or `AWS_LAMBDA_MAX_CONCURRENCY` at once as on Managed Instances.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::measure::Error;
use local_stack::runtime_api::RuntimeApi;
use local_stack::stack::LocalStack;

/// `USER_HZ`: the unit of `utime` and `stime` in `/proc/<pid>/stat` (100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// Limits lifted for the bench: its users ask for far more tokens and codes than a person, and
/// one run opens thousands of applications in a day.
pub const BENCH_LIMITS: [(&str, &str); 5] = [
    ("TOKENS_PER_USER", "1000000000/600"),
    ("TOTP_MAX_FAILURES", "1000000"),
    ("TOTP_DAILY_CEILING", "1000000"),
    ("TOTP_ENROLMENTS_PER_USER", "1000000/3600"),
    ("DAILY_APPLICATIONS_CAP", "1000000000"),
];

/// The scope of a sensitive exchange (after step-up) and of a read-only one.
pub const SENSITIVE_SCOPE: &str = "customers cards-write";
pub const READ_ONLY_SCOPE: &str = "customers accounts";

/// The CPU time `pid` has used so far, user and system, over all its threads (ended ones too).
pub fn process_cpu(pid: u32) -> Option<Duration> {
    stat_cpu(&format!("/proc/{pid}/stat"))
}

/// The CPU time of the calling thread so far.
fn thread_cpu() -> Option<Duration> {
    stat_cpu("/proc/thread-self/stat")
}

/// `utime + stime` of a `/proc/.../stat` file.
fn stat_cpu(path: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_secs_f64((utime + stime) / TICKS_PER_SECOND))
}

/// The resident set size of `pid` now, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// The peak resident set size of `pid` so far, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// A KiB figure of `/proc/<pid>/status`.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Pins every thread of `pid` (and so the threads they start) to `cores` (a `taskset` list such
/// as `0` or `1`). False where it cannot be done (no `taskset`).
pub fn pin(pid: u32, cores: &str) -> bool {
    taskset(&["-a", "-p", "-c", cores, &pid.to_string()])
}

/// Runs `taskset` with `args`; whether it succeeded.
fn taskset(args: &[&str]) -> bool {
    std::process::Command::new("taskset")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One measured run: what was sent, how long it took, and the server's CPU over it.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// Requests answered in the measured window.
    pub requests: usize,
    /// The measured window.
    pub elapsed: Duration,
    /// The server's process CPU over the window.
    pub cpu: Duration,
    /// Answers by status.
    pub statuses: BTreeMap<u16, usize>,
    /// Whether the server and the load ran on separate cores.
    pub pinned: bool,
}

impl Run {
    /// Process CPU per request, in µs.
    pub fn cpu_per_request_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64
    }

    /// Requests per second.
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The statuses, `{200}` or `{200: 9, 429: 1}`.
    pub fn statuses_text(&self) -> String {
        if self.statuses.len() == 1 {
            let (s, _) = self.statuses.iter().next().expect("one");
            return format!("{{{s}}}");
        }
        let parts: Vec<String> = self
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        format!("{{{}}}", parts.join(", "))
    }
}

/// A user at the Stytch sandbox with an approved Unit customer (recorded by the API at
/// `api_url`) and a session JWT carrying a TOTP factor authenticated just now: (user id, JWT,
/// TOTP key).
pub async fn stepped_up_user(
    stack: &LocalStack,
    api_url: &str,
    http: &reqwest::Client,
) -> Result<(String, String, Vec<u8>), Error> {
    let (user_id, jwt, email) = stack.sign_up(http).await?;
    // The bank account's e-mail (the application's) proven in the session binds the
    // authenticator enrolled next.
    let jwt = stack.prove_email(http, &jwt, &email).await?;
    let applied = http
        .post(format!("{api_url}/onboarding/application"))
        .bearer_auth(&jwt)
        .json(&crate::measure::kyc(&email))
        .send()
        .await?;
    if !applied.status().is_success() {
        return Err(format!("application for {user_id}: {}", applied.text().await?).into());
    }
    let key = local_stack::sample_events::enrol_totp(http, api_url, &jwt).await?;
    let stepped = step_up(http, api_url, &jwt, &key)
        .await
        .map_err(|e| format!("{user_id}: {e}"))?;
    Ok((user_id, stepped, key))
}

/// Steps the session of `jwt` up with the current code of `key` at the API at `api_url`; the
/// new session JWT.
pub async fn step_up(
    http: &reqwest::Client,
    api_url: &str,
    jwt: &str,
    key: &[u8],
) -> Result<String, Error> {
    let code = sandboxes::totp::code_at(key, sandboxes::now().unix_timestamp());
    let stepped: Value = http
        .post(format!("{api_url}/mfa/totp/authenticate"))
        .bearer_auth(jwt)
        .json(&json!({"totp_code": code}))
        .send()
        .await?
        .json()
        .await?;
    Ok(stepped["session_jwt"]
        .as_str()
        .ok_or(format!("no step-up: {stepped}"))?
        .to_owned())
}

/// An API Gateway (HTTP API v2.0) event of `POST /unit/customer-token` with `jwt` and `body`,
/// from the sample event of that route.
pub fn token_event(jwt: Option<&str>, body: &str) -> Result<String, Error> {
    let path = local_stack::sample_events::dir().join("customer-token-step-up-required.json");
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let headers = event["headers"]
        .as_object_mut()
        .ok_or("the sample event has headers")?;
    match jwt {
        Some(jwt) => headers.insert("authorization".into(), format!("Bearer {jwt}").into()),
        None => headers.remove("authorization"),
    };
    event["body"] = body.into();
    if let Some(object) = event.as_object_mut() {
        object.remove("_comment");
    }
    Ok(event.to_string())
}

/// The body of an exchange for `scope`.
pub fn token_body(scope: &str) -> String {
    json!({ "scope": scope }).to_string()
}

/// A free loopback port (bound and released).
fn free_port() -> Result<u16, Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The `local-stack` binary serving only the API (the sandboxes are `stack`'s, in this process),
/// with the memory store, on its own port; waits until it answers.
pub async fn spawn_local_server(
    exe: &Path,
    stack: &LocalStack,
    extra: &[(&str, &str)],
) -> Result<(tokio::process::Child, String), Error> {
    let secrets = crate::measure::secrets_json(stack).await?;
    let port = free_port()?;
    let config = &stack.app.config;
    let mut command = tokio::process::Command::new(exe);
    command
        .env_clear()
        .env("PORT", port.to_string())
        .env("STYTCH_API_URL", &config.stytch_api_url)
        .env("STYTCH_PROJECT_ID", &config.stytch_project_id)
        .env("UNIT_API_URL", &config.unit_api_url)
        .env("SECRETS_JSON", secrets)
        .env("STORE", "memory")
        // One worker for the one core it is pinned to.
        .env("TOKIO_WORKER_THREADS", "1")
        .env("RUST_LOG", "error")
        .envs(BENCH_LIMITS)
        .envs(extra.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let child = command
        .spawn()
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(format!("{url}/demo")).send().await.is_ok() {
            return Ok((child, url));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err(format!("{} did not answer on {url}", exe.display()).into())
}

/// What each request of a load is: a body and a JWT.
pub type Mix = Arc<dyn Fn(usize) -> (Option<String>, String) + Send + Sync>;

/// Sends one exchange (JWT, body) to the server under test and returns the status it got
/// (0 when there was no answer).
pub type Sender =
    Arc<dyn Fn(Option<String>, String) -> Pin<Box<dyn Future<Output = u16> + Send>> + Send + Sync>;

/// A [`Sender`] posting to `url` (`POST /unit/customer-token`) over one pool of `connections`.
pub fn http_sender(url: &str, connections: usize) -> Result<Sender, Error> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()?;
    let url = url.to_owned();
    Ok(Arc::new(move |jwt, body| {
        let mut request = http.post(&url).body(body);
        if let Some(jwt) = jwt {
            request = request.bearer_auth(jwt);
        }
        Box::pin(async move {
            match request.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let _ = r.bytes().await;
                    status
                }
                Err(_) => 0,
            }
        })
    }))
}

/// A [`Sender`] invoking the function on `runtime` with the exchange as an API Gateway event.
pub fn invoke_sender(runtime: Arc<RuntimeApi>) -> Sender {
    Arc::new(move |jwt, body| {
        let runtime = runtime.clone();
        Box::pin(async move {
            let Ok(event) = token_event(jwt.as_deref(), &body) else {
                return 0;
            };
            match runtime.invoke(event).await {
                Ok(answer) => answer["statusCode"].as_u64().unwrap_or(0) as u16,
                Err(_) => 0,
            }
        })
    })
}

/// Sends `mix` through `send` from `concurrency` clients for `warm_up`, then measures `window`
/// with the CPU of the server `pid`.
pub async fn load(
    send: Sender,
    pid: u32,
    concurrency: usize,
    warm_up: Duration,
    window: Duration,
    mix: Mix,
) -> Result<Run, Error> {
    let window_start = Instant::now() + warm_up;
    let end = window_start + window;
    let shared = Arc::new(Mutex::new(Run::default()));
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..concurrency {
        let (send, shared, mix) = (send.clone(), shared.clone(), mix.clone());
        tasks.spawn(async move {
            let mut i = c;
            loop {
                let (jwt, body) = mix(i);
                i += concurrency;
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let status = send(jwt, body).await;
                if sent >= window_start {
                    let mut run = shared.lock().expect("lock");
                    run.requests += 1;
                    *run.statuses.entry(status).or_default() += 1;
                }
            }
        });
    }
    tokio::time::sleep_until(window_start.into()).await;
    let cpu_start = process_cpu(pid).ok_or("no CPU figure")?;
    tokio::time::sleep_until(end.into()).await;
    let cpu_end = process_cpu(pid).ok_or("no CPU figure")?;
    tasks.join_all().await;
    let mut run = Arc::try_unwrap(shared)
        .map_err(|_| "the clients are done")?
        .into_inner()?;
    run.elapsed = window;
    run.cpu = cpu_end.saturating_sub(cpu_start);
    Ok(run)
}

/// `(name, share of the samples in %)`, largest first.
pub type Shares = Vec<(String, f64)>;

/// A `perf record` of `pid` while it runs, stopped (SIGINT) by [`Profile::finish`].
pub struct Profile {
    child: std::process::Child,
    data: PathBuf,
}

impl Profile {
    /// Starts sampling `pid` into `data`, or None where perf cannot.
    pub fn start(pid: u32, data: &Path) -> Option<Self> {
        let child = std::process::Command::new("perf")
            .args(["record", "-F", "1999", "-g", "-q", "-o"])
            .arg(data)
            .args(["-p", &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        Some(Self {
            child,
            data: data.to_owned(),
        })
    }

    /// Stops sampling and summarises the samples by crate: `(crate, share in %)`, largest
    /// first, and the top symbols.
    pub fn finish(mut self) -> Option<(Shares, Shares)> {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let out = std::process::Command::new("perf")
            .args(["report", "--stdio", "--no-children", "-g", "none"])
            .args(["--sort", "dso,symbol", "--percent-limit", "0", "-i"])
            .arg(&self.data)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        Some(by_crate(&text))
    }
}

/// Runs `load` under `perf record` of `pid` into `data`: the profile of `server`, where perf
/// works.
async fn profiled(
    pid: u32,
    data: PathBuf,
    server: &str,
    load: impl Future<Output = Result<Run, Error>>,
) -> Result<Option<Profiled>, Error> {
    let profile = Profile::start(pid, &data);
    load.await?;
    Ok(profile
        .and_then(Profile::finish)
        .map(|(crates, symbols)| Profiled {
            server: server.into(),
            crates,
            symbols,
        }))
}

/// Groups `perf report --sort dso,symbol` lines by the crate each symbol belongs to.
pub fn by_crate(report: &str) -> (Shares, Shares) {
    let mut crates: BTreeMap<String, f64> = BTreeMap::new();
    let mut symbols = Vec::new();
    for line in report.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let mut parts = line.splitn(2, char::is_whitespace);
        let Some(share) = parts
            .next()
            .and_then(|p| p.strip_suffix('%'))
            .and_then(|p| p.parse::<f64>().ok())
        else {
            continue;
        };
        let rest = parts.next().unwrap_or_default().trim();
        let (dso, symbol) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let symbol = symbol.trim();
        let kernel = symbol.starts_with("[k]");
        // perf pads the symbol column and may print further columns after it.
        let symbol = symbol
            .trim_start_matches("[k]")
            .trim_start_matches("[.]")
            .trim()
            .split("  ")
            .next()
            .unwrap_or_default();
        let name = crate_of(dso, symbol, kernel);
        *crates.entry(name).or_default() += share;
        symbols.push((symbol.to_owned(), share));
    }
    let mut crates: Vec<(String, f64)> = crates.into_iter().collect();
    crates.sort_by(|a, b| b.1.total_cmp(&a.1));
    symbols.truncate(15);
    (crates, symbols)
}

/// The crate (or library) a sampled symbol belongs to. Generic code is named by the first
/// crate in its path that is not the standard library's (`core::ptr::drop_in_place<hyper::…>`
/// is hyper's).
fn crate_of(dso: &str, symbol: &str, kernel: bool) -> String {
    if kernel || dso.starts_with("[kernel") {
        return "kernel (system calls, network stack)".into();
    }
    if dso.starts_with("libc") || dso.starts_with("ld-linux") {
        let what = if symbol.contains("malloc")
            || symbol.contains("free")
            || symbol.contains("realloc")
            || symbol.starts_with("_int_")
        {
            "malloc"
        } else {
            "other"
        };
        return format!("libc ({what})");
    }
    if symbol.starts_with("aws_lc_") {
        return "aws-lc (RSA, SHA-2, HMAC)".into();
    }
    const STD: [&str; 4] = ["core", "alloc", "std", "hashbrown"];
    let mut fallback = None;
    for token in symbol.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
        let Some((head, _)) = token.split_once("::") else {
            continue;
        };
        if head.is_empty() || head.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
            continue;
        }
        if STD.contains(&head) {
            fallback.get_or_insert(head);
            continue;
        }
        return head.replace('_', "-");
    }
    match fallback {
        Some(std) => format!("{std} (standard library)"),
        None if symbol.starts_with("0x") => "unresolved".into(),
        None => format!("{dso} (other)"),
    }
}

/// Where the servers under test are and how long to load them.
pub struct Options {
    /// moto's URL (DynamoDB and Secrets Manager).
    pub moto_url: String,
    /// The release bootstraps (`<dir>/<function>/bootstrap`).
    pub bootstrap_dir: PathBuf,
    /// The `--profile profiling` builds (`local-stack`, `customer-token`): symbols for perf.
    pub profiling_dir: PathBuf,
    /// Seconds of each measured window.
    pub seconds: u64,
    /// Where to keep `perf record` data; no profiles without it.
    pub perf_dir: Option<PathBuf>,
    /// moto's process, to keep it off the measured core.
    pub moto_pid: Option<u32>,
}

/// One row of the CPU table.
pub struct Row {
    /// Which server, how it was driven.
    pub server: String,
    /// The scope asked for and how the session was checked.
    pub exchange: String,
    /// The measured window.
    pub run: Run,
    /// Whether the 75 µs budget applies (the session checked locally, one invocation at a time).
    pub budgeted: bool,
}

/// A profile of one server: shares by crate and the top symbols.
pub struct Profiled {
    /// Which server.
    pub server: String,
    /// `(crate, %)`, largest first.
    pub crates: Vec<(String, f64)>,
    /// `(symbol, %)`, largest first.
    pub symbols: Vec<(String, f64)>,
}

/// Everything [`measure`] found.
#[derive(Default)]
pub struct Figures {
    /// The CPU table.
    pub rows: Vec<Row>,
    /// The profiles (where perf works).
    pub profiles: Vec<Profiled>,
    /// CPU per DynamoDB `GetItem` at moto, in µs: through the AWS SDK client the functions
    /// use, and as one plain HTTP POST of the same request (unsigned, through reqwest).
    pub store_call: Option<(f64, f64)>,
}

/// CPU per `GetItem` at moto on one thread (a current-thread runtime on core 0): the AWS SDK's
/// call, as `shared::store::DynamoStore` makes it, next to a plain HTTP POST of the same JSON.
/// What the SDK adds on top of the HTTP exchange is its own work per call (the orchestrator,
/// interceptors, endpoint resolution, SigV4 signing, retries' bookkeeping).
fn store_call_cpu(moto: String, calls: u32) -> Result<(f64, f64), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let aws = local_stack::stack::local_aws(&moto).await;
        let table = format!("bench-calls-{}", sandboxes::random_hex(4));
        let client = aws_sdk_dynamodb::Client::new(&aws);
        shared::store::DynamoStore::new(client.clone(), &table)
            .create_table_if_missing()
            .await?;
        let key = aws_sdk_dynamodb::types::AttributeValue::S("user#bench".into());
        let sdk = || {
            client
                .get_item()
                .table_name(&table)
                .key("pk", key.clone())
                .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("user".into()))
                .consistent_read(true)
                .send()
        };
        let http = reqwest::Client::new();
        let body = json!({"TableName": table, "Key": {"pk": {"S": "user#bench"}, "sk": {"S": "user"}},
            "ConsistentRead": true})
        .to_string();
        let raw = || {
            http.post(&moto)
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-amz-target", "DynamoDB_20120810.GetItem")
                .header(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=test/20261201/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
                )
                .body(body.clone())
                .send()
        };
        for _ in 0..50 {
            sdk().await?;
            raw().await?.bytes().await?;
        }
        let start = thread_cpu().ok_or("no thread CPU")?;
        for _ in 0..calls {
            sdk().await?;
        }
        let mid = thread_cpu().ok_or("no thread CPU")?;
        for _ in 0..calls {
            let answer = raw().await?;
            if !answer.status().is_success() {
                return Err(format!("moto answered {}", answer.status()).into());
            }
            answer.bytes().await?;
        }
        let end = thread_cpu().ok_or("no thread CPU")?;
        let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(calls);
        Ok((per(mid - start), per(end - mid)))
    })
}

fn constant(jwt: &str, body: String) -> Mix {
    let jwt = jwt.to_owned();
    Arc::new(move |_| (Some(jwt.clone()), body.clone()))
}

/// The trust store a bootstrap reads at start-up, as on Lambda: `provided.al2023` keeps its roots
/// in one bundle, where a Debian host's `/etc/ssl/certs` holds about 290 files that
/// rustls-native-certs would open one by one at every cold start (6.5 ms more per start on this
/// machine: docs/performance.md). `SSL_CERT_FILE` points it at the host's bundle instead.
fn lambda_like_trust_store() -> Option<(&'static str, &'static str)> {
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ]
    .into_iter()
    .find(|p| Path::new(p).is_file())
    .map(|p| ("SSL_CERT_FILE", p))
}

/// A function's bootstrap on `runtime` with the deployment's settings plus `extra`.
pub fn spawn_on(
    runtime: &RuntimeApi,
    exe: &Path,
    function: &str,
    stack: &LocalStack,
    moto: &str,
    extra: &[(&str, &str)],
) -> Result<tokio::process::Child, Error> {
    let mut command = local_stack::runtime_api::bootstrap_command(
        exe,
        function,
        runtime,
        &stack.app.config,
        moto,
    )?;
    Ok(command
        .env("AWS_LAMBDA_LOG_LEVEL", "WARN")
        .envs(BENCH_LIMITS)
        .envs(lambda_like_trust_store())
        .envs(extra.iter().copied())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e} (run `make package` first)", exe.display()))?)
}

/// A function's bootstrap on a fresh Runtime API with the deployment's settings plus `extra`;
/// returns once its init is over.
pub async fn spawn_function(
    exe: &Path,
    function: &str,
    stack: &LocalStack,
    moto: &str,
    extra: &[(&str, &str)],
) -> Result<(Arc<RuntimeApi>, tokio::process::Child), Error> {
    let runtime = Arc::new(RuntimeApi::start().await);
    let child = spawn_on(&runtime, exe, function, stack, moto, extra)?;
    for _ in 0..400 {
        if runtime.first_poll().is_some() {
            return Ok((runtime, child));
        }
        if let Some(e) = runtime.init_error() {
            return Err(format!("{function}: init failed: {e}").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("{function}: no poll of the Runtime API within 4 s").into())
}

/// One bootstrap run of the CPU table.
struct Case<'a> {
    scope: &'a str,
    label: &'a str,
    extra: &'a [(&'a str, &'a str)],
    concurrency: usize,
    how: &'a str,
}

/// The setting of a server whose sessions are checked locally (the budgeted runs).
const CHECK_LOCAL: [(&str, &str); 1] = [("SESSION_CHECK", "local")];

/// The bootstrap's runs: classic Lambda (one invocation at a time) with each scope and session
/// check, and Managed Instances (8 at once) with each scope.
fn bootstrap_cases() -> [Case<'static>; 5] {
    const CLASSIC: &str = "classic Lambda: one invocation at a time";
    const MANAGED: &str = "Managed Instances: AWS_LAMBDA_MAX_CONCURRENCY=8, 8 invocations at once";
    const LOCAL: &str = "sensitive (session checked locally)";
    const MANAGED_SETTINGS: &[(&str, &str)] = &[
        ("SESSION_CHECK", "local"),
        ("AWS_LAMBDA_MAX_CONCURRENCY", "8"),
    ];
    [
        Case {
            scope: SENSITIVE_SCOPE,
            label: LOCAL,
            extra: &CHECK_LOCAL,
            concurrency: 1,
            how: CLASSIC,
        },
        Case {
            scope: READ_ONLY_SCOPE,
            label: "read-only",
            extra: &CHECK_LOCAL,
            concurrency: 1,
            how: CLASSIC,
        },
        Case {
            scope: SENSITIVE_SCOPE,
            label: "sensitive (session confirmed at Stytch, the default)",
            extra: &[],
            concurrency: 1,
            how: CLASSIC,
        },
        Case {
            scope: SENSITIVE_SCOPE,
            label: LOCAL,
            extra: MANAGED_SETTINGS,
            concurrency: 8,
            how: MANAGED,
        },
        Case {
            scope: READ_ONLY_SCOPE,
            label: "read-only",
            extra: MANAGED_SETTINGS,
            concurrency: 8,
            how: MANAGED,
        },
    ]
}

/// What every measured window of [`measure`] shares.
struct Setup {
    http: reqwest::Client,
    /// The warm-up before each window.
    warm: Duration,
    /// Each measured window.
    window: Duration,
    /// Whether this process runs on core 1, leaving core 0 to the server under test.
    pinned_self: bool,
}

impl Setup {
    /// [`load`] of the server `pid` with this warm-up and window.
    fn load(
        &self,
        send: Sender,
        pid: u32,
        concurrency: usize,
        mix: Mix,
    ) -> impl Future<Output = Result<Run, Error>> {
        load(send, pid, concurrency, self.warm, self.window, mix)
    }
}

/// The CPU table (and, with `perf_dir`, a profile of each server).
pub async fn measure(options: &Options) -> Result<Figures, Error> {
    let mut figures = Figures::default();
    let me = std::process::id();
    // The server under test on core 0; this process (load, sandboxes, Runtime API) on core 1.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned_self = cores >= 2 && pin(me, "1");
    let all_cores = format!("0-{}", cores - 1);
    if let Some(moto) = options.moto_pid.filter(|_| pinned_self) {
        pin(moto, "1");
    }
    let setup = Setup {
        http: reqwest::Client::new(),
        warm: Duration::from_secs(2),
        window: Duration::from_secs(options.seconds),
        pinned_self,
    };

    local_stack_cpu(options, &setup, &mut figures).await?;

    // The release bootstrap on the Runtime API, DynamoDB in moto.
    let (stack, _, _) = crate::measure::stack_on_moto(&options.moto_url).await?;
    bootstrap_cpu(options, &setup, &stack, &mut figures).await?;
    eprintln!("bench: cpu, one DynamoDB call");
    figures.store_call = Some(store_call_on_core_0(options, pinned_self)?);
    if pinned_self {
        pin(me, &all_cores);
        if let Some(moto) = options.moto_pid {
            pin(moto, &all_cores);
        }
    }
    Ok(figures)
}

/// The local stack's HTTP server (memory store, 64 connections): a row per scope, and its
/// profile with `perf_dir`.
async fn local_stack_cpu(
    options: &Options,
    setup: &Setup,
    figures: &mut Figures,
) -> Result<(), Error> {
    let stack = crate::measure::memory_stack().await?;
    let local = options.profiling_dir.join("local-stack");
    let (server, url) = spawn_local_server(&local, &stack, &CHECK_LOCAL).await?;
    let pid = server.id().ok_or("the server ended")?;
    let pinned = setup.pinned_self && pin(pid, "0");
    let (_, jwt, _) = stepped_up_user(&stack, &url, &setup.http).await?;
    let token_url = format!("{url}/unit/customer-token");
    for (scope, label) in [
        (SENSITIVE_SCOPE, "sensitive (session checked locally)"),
        (READ_ONLY_SCOPE, "read-only"),
    ] {
        eprintln!("bench: cpu, local stack, {label}");
        let mix = constant(&jwt, token_body(scope));
        let mut run = setup
            .load(http_sender(&token_url, 64)?, pid, 64, mix)
            .await?;
        run.pinned = pinned;
        figures.rows.push(Row {
            server: "local stack HTTP server, 64 connections".into(),
            exchange: label.into(),
            run,
            budgeted: true,
        });
    }
    if let Some(dir) = &options.perf_dir {
        let mix = constant(&jwt, token_body(SENSITIVE_SCOPE));
        let run = setup.load(http_sender(&token_url, 64)?, pid, 64, mix);
        let server = "local stack HTTP server (sensitive scope, 64 connections)";
        let data = dir.join("local-stack.perf.data");
        figures
            .profiles
            .extend(profiled(pid, data, server, run).await?);
    }
    Ok(())
}

/// The release bootstrap on the Runtime API with `stack`'s DynamoDB table in moto: a row per
/// [`bootstrap_cases`] run, and the profile of a `--profile profiling` build with `perf_dir`.
async fn bootstrap_cpu(
    options: &Options,
    setup: &Setup,
    stack: &LocalStack,
    figures: &mut Figures,
) -> Result<(), Error> {
    let (_, jwt, _) = stepped_up_user(stack, &stack.api_url, &setup.http).await?;
    let release = options
        .bootstrap_dir
        .join("customer-token")
        .join("bootstrap");
    for Case {
        scope,
        label,
        extra,
        concurrency,
        how,
    } in bootstrap_cases()
    {
        eprintln!("bench: cpu, bootstrap, {how}, {label}");
        let (runtime, child) =
            spawn_function(&release, "customer-token", stack, &options.moto_url, extra).await?;
        let pid = child.id().ok_or("the bootstrap ended")?;
        let pinned = setup.pinned_self && pin(pid, "0");
        let mix = constant(&jwt, token_body(scope));
        let mut run = setup
            .load(invoke_sender(runtime), pid, concurrency, mix)
            .await?;
        run.pinned = pinned;
        figures.rows.push(Row {
            server: format!("release bootstrap, DynamoDB store, {how}"),
            exchange: label.into(),
            run,
            budgeted: concurrency == 1 && !extra.is_empty(),
        });
    }
    if let Some(dir) = &options.perf_dir {
        let exe = options.profiling_dir.join("customer-token");
        let (runtime, child) = spawn_function(
            &exe,
            "customer-token",
            stack,
            &options.moto_url,
            &CHECK_LOCAL,
        )
        .await?;
        let pid = child.id().ok_or("the bootstrap ended")?;
        if setup.pinned_self {
            pin(pid, "0");
        }
        let mix = constant(&jwt, token_body(SENSITIVE_SCOPE));
        let run = setup.load(invoke_sender(runtime), pid, 1, mix);
        let server =
            "bootstrap on the Runtime API (sensitive scope, DynamoDB store, one at a time)";
        let data = dir.join("bootstrap.perf.data");
        figures
            .profiles
            .extend(profiled(pid, data, server, run).await?);
    }
    Ok(())
}

/// [`store_call_cpu`] on a thread of its own, alone on core 0 (where the servers ran) when this
/// process is pinned.
fn store_call_on_core_0(options: &Options, pinned_self: bool) -> Result<(f64, f64), Error> {
    let moto = options.moto_url.clone();
    Ok(std::thread::spawn(move || {
        // This thread alone on core 0, where the servers ran.
        let tid = std::fs::read_link("/proc/thread-self")
            .ok()
            .and_then(|link| link.file_name()?.to_str()?.parse::<u32>().ok());
        if let Some(tid) = tid.filter(|_| pinned_self) {
            taskset(&["-p", "-c", "0", &tid.to_string()]);
        }
        store_call_cpu(moto, 3000).map_err(|e| e.to_string())
    })
    .join()
    .map_err(|_| "the DynamoDB call measurement panicked")??)
}

/// The figures as a section of `BENCHMARKS.md`.
pub fn report(figures: &Figures) -> String {
    let mut out = String::from("## CPU per token exchange\n\n");
    out.push_str(
        "Process CPU (user + system, `/proc/<pid>/stat`) of the server per `POST /unit/customer-token` answered, over a \
         measured window after 2 s of warm-up. The server runs pinned to core 0; the load, both sandboxes, the Runtime API \
         and moto share core 1. The local stack's HTTP server is the `local-stack` binary with the memory store, serving only \
         the API, under 64 keep-alive connections. The bootstrap is the release `customer-token` build that `make package` \
         zips, on the local Runtime API, with the DynamoDB store in moto (two store writes per exchange: the token slot, which returns the record, and the audit). A \
         sensitive scope's session confirmed at Stytch (the default, one Stytch call more) is shown on its own row.\n\n",
    );
    out.push_str(
        "| server | exchange | requests | requests/s | CPU per request |\n|---|---|---|---|---|\n",
    );
    for row in &figures.rows {
        let r = &row.run;
        out.push_str(&format!(
            "| {} | {} | {} {} | {:.0} | {:.0} µs{} |\n",
            row.server,
            row.exchange,
            r.requests,
            r.statuses_text(),
            r.rate(),
            r.cpu_per_request_us(),
            if r.pinned {
                ""
            } else {
                " (not pinned: one core)"
            }
        ));
    }
    out.push('\n');
    if let Some((sdk, raw)) = figures.store_call {
        out.push_str(&format!(
            "One DynamoDB `GetItem` at moto, CPU of the calling thread (a current-thread runtime on core 0) per call: \
             **{sdk:.0} µs** through the AWS SDK client the functions use, **{raw:.0} µs** as a plain HTTP POST of the same \
             request through reqwest. The difference is the SDK's own work per call; the exchange makes two store calls.\n\n"
        ));
    }
    for p in &figures.profiles {
        out.push_str(&format!(
            "### Where the time goes: {}\n\n`perf record -F 1999 -g` of a `--profile profiling` build (release code with symbols), \
             self time grouped by the crate of each symbol (generic code counts for the first crate in its path that is not \
             the standard library).\n\n| crate | share |\n|---|---|\n",
            p.server
        ));
        for (c, share) in p.crates.iter().filter(|(_, s)| *s >= 0.5) {
            out.push_str(&format!("| {c} | {share:.1}% |\n"));
        }
        out.push_str(
            "\n<details><summary>Top symbols</summary>\n\n| symbol | share |\n|---|---|\n",
        );
        for (sym, share) in &p.symbols {
            let sym: String = sym.chars().take(100).collect();
            out.push_str(&format!(
                "| `{}` | {share:.1}% |\n",
                sym.replace('|', "\\|")
            ));
        }
        out.push_str("\n</details>\n\n");
    }
    out
}

/// The figures as plain text (what `bench cpu` prints).
pub fn text(figures: &Figures) -> String {
    let mut out = String::new();
    for row in &figures.rows {
        let r = &row.run;
        out.push_str(&format!(
            "{:>7.1} µs CPU/request  {:>7.0} req/s  {:>6} requests  {}  {} | {}{}\n",
            r.cpu_per_request_us(),
            r.rate(),
            r.requests,
            r.statuses_text(),
            row.server,
            row.exchange,
            if r.pinned { "" } else { " (not pinned)" }
        ));
    }
    if let Some((sdk, raw)) = figures.store_call {
        out.push_str(&format!(
            "{sdk:>7.1} µs CPU/call  DynamoDB GetItem through the AWS SDK\n{raw:>7.1} µs CPU/call  the same as a plain HTTP POST\n"
        ));
    }
    for p in &figures.profiles {
        out.push_str(&format!("\nprofile: {}\n", p.server));
        for (c, share) in p.crates.iter().take(14) {
            out.push_str(&format!("  {share:>5.1}%  {c}\n"));
        }
        out.push_str("  top symbols:\n");
        for (s, share) in &p.symbols {
            let s: String = s.chars().take(110).collect();
            out.push_str(&format!("  {share:>5.1}%  {s}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_are_grouped_by_their_crate() {
        let report = "# header\n\
            \n    10.00%  bootstrap  [.] aws_lc_0_47_0_bn_sqrx8x_internal\n\
            \x20    5.00%  libc.so.6  [.] _int_malloc\n\
            \x20    4.00%  [kernel.kallsyms]  [k] tcp_sendmsg\n\
            \x20    3.00%  bootstrap  [.] core::ptr::drop_in_place<hyper::proto::h1::conn::State>\n\
            \x20    2.00%  bootstrap  [.] <serde_json::de::Deserializer<R> as core::Deserializer>::deserialize_any\n\
            \x20    1.00%  bootstrap  [.] hyper::proto::h1::role::parse_headers\n\
            \x20    0.50%  bootstrap  [.] core::fmt::write                     -      -   \n";
        let (crates, symbols) = by_crate(report);
        let share = |name: &str| {
            crates
                .iter()
                .find(|(c, _)| c == name)
                .map(|(_, s)| *s)
                .unwrap_or_default()
        };
        assert_eq!(share("aws-lc (RSA, SHA-2, HMAC)"), 10.0);
        assert_eq!(share("libc (malloc)"), 5.0);
        assert_eq!(share("kernel (system calls, network stack)"), 4.0);
        assert_eq!(share("hyper"), 4.0);
        assert_eq!(share("serde-json"), 2.0);
        assert_eq!(share("core (standard library)"), 0.5);
        assert_eq!(symbols.len(), 7);
        assert_eq!(crates[0].0, "aws-lc (RSA, SHA-2, HMAC)");
        assert!(
            symbols.iter().any(|(s, _)| s == "core::fmt::write"),
            "{symbols:?}"
        );
    }

    #[test]
    fn the_cpu_of_this_process_is_read() {
        let pid = std::process::id();
        let before = process_cpu(pid).expect("own stat");
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(100) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        let after = process_cpu(pid).expect("own stat");
        assert!(
            after >= before + Duration::from_millis(50),
            "{before:?} {after:?}"
        );
        assert!(rss_kib(pid).is_some_and(|k| k > 100));
    }
}
