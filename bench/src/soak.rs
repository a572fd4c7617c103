//! The soak: many mixed `POST /unit/customer-token` requests through one server, its RSS read
//! every 1,000 requests, each answer checked against the status its kind must get, and the
//! latency of each tenth of the run. Session JWTs live 5 minutes and a step-up counts for
//! `STEP_UP_MAX_AGE` (300 s), so the users step up again every 2 minutes, as a client would.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cpu::{READ_ONLY_SCOPE, SENSITIVE_SCOPE, Sender, rss_kib, token_body};
use crate::measure::Error;
use local_stack::stack::LocalStack;

/// What a soak request is, the status it must get, and its share of every 20 requests.
pub const KINDS: [(&str, u16, usize); 5] = [
    ("read-only token", 200, 10),
    ("sensitive token (after step-up)", 200, 4),
    ("sensitive without step-up", 403, 2),
    ("no session", 401, 2),
    ("invalid body", 400, 2),
];

/// The kind of request `i`.
pub fn kind_of(i: usize) -> usize {
    let mut slot = i % 20;
    for (k, (_, _, share)) in KINDS.iter().enumerate() {
        if slot < *share {
            return k;
        }
        slot -= share;
    }
    0
}

/// A stepped-up user: its TOTP key, to step up again.
struct User {
    jwt: String,
    key: Vec<u8>,
}

/// The sessions the soak's requests carry, refreshed while it runs.
pub struct Sessions {
    stepped: RwLock<Vec<User>>,
    plain: RwLock<String>,
    api_url: String,
}

impl Sessions {
    /// `users` stepped-up users (customers approved through the API at `api_url`) and one
    /// session without step-up.
    pub async fn new(
        stack: &LocalStack,
        api_url: &str,
        http: &reqwest::Client,
        users: usize,
    ) -> Result<Arc<Self>, Error> {
        let mut stepped = Vec::new();
        for _ in 0..users {
            let (_, jwt, key) = crate::cpu::stepped_up_user(stack, api_url, http).await?;
            stepped.push(User { jwt, key });
        }
        let (_, plain, _) = stack.sign_up(http).await?;
        Ok(Arc::new(Self {
            stepped: RwLock::new(stepped),
            plain: RwLock::new(plain),
            api_url: api_url.to_owned(),
        }))
    }

    /// Steps every user up again (a new code, a new JWT) and signs up a new plain session.
    pub async fn refresh(&self, stack: &LocalStack, http: &reqwest::Client) -> Result<(), Error> {
        let old: Vec<(String, Vec<u8>)> = self
            .stepped
            .read()
            .expect("lock")
            .iter()
            .map(|u| (u.jwt.clone(), u.key.clone()))
            .collect();
        let mut fresh = Vec::new();
        for (jwt, key) in old {
            let jwt = crate::cpu::step_up(http, &self.api_url, &jwt, &key).await?;
            fresh.push(User { jwt, key });
        }
        *self.stepped.write().expect("lock") = fresh;
        *self.plain.write().expect("lock") = stack.sign_up(http).await?.1;
        Ok(())
    }

    /// Request `i`: its JWT (if any) and body.
    pub fn request(&self, i: usize) -> (Option<String>, String) {
        let stepped = self.stepped.read().expect("lock");
        let user = || stepped[i / 20 % stepped.len()].jwt.clone();
        match kind_of(i) {
            0 => (Some(user()), token_body(READ_ONLY_SCOPE)),
            1 => (Some(user()), token_body(SENSITIVE_SCOPE)),
            2 => (
                Some(self.plain.read().expect("lock").clone()),
                token_body(SENSITIVE_SCOPE),
            ),
            3 => (None, token_body(READ_ONLY_SCOPE)),
            _ => (Some(user()), json!({"expires_in": -5}).to_string()),
        }
    }
}

/// What one soak found.
#[derive(Debug, Default)]
pub struct Soak {
    /// Requests sent.
    pub requests: usize,
    /// How long they took.
    pub elapsed: Duration,
    /// Per kind: requests, answers with another status than the kind's, latencies in ms.
    pub kinds: Vec<(usize, usize, Vec<f64>)>,
    /// `(requests so far, RSS in KiB)`, every 1,000 requests.
    pub rss: Vec<(usize, u64)>,
    /// The requests of the warm-up (RSS growth is counted from its end).
    pub warm_up: usize,
    /// Per tenth of the run: (p50, p99) latency in ms over all kinds.
    pub tenths: Vec<(f64, f64)>,
    /// The first unexpected answers (kind, status), for the report.
    pub surprises: Vec<(usize, u16)>,
}

impl Soak {
    /// RSS at the end of the warm-up and at the end, in KiB.
    pub fn growth(&self) -> (u64, u64, u64) {
        let warm = self
            .rss
            .iter()
            .find(|(n, _)| *n >= self.warm_up)
            .map_or(0, |(_, k)| *k);
        let end = self.rss.last().map_or(0, |(_, k)| *k);
        let max = self.rss.iter().map(|(_, k)| *k).max().unwrap_or(0);
        (warm, end, max)
    }

    /// Answers that were not the status of their kind.
    pub fn unexpected(&self) -> usize {
        self.kinds.iter().map(|(_, u, _)| u).sum()
    }
}

/// Sends `n` requests of the mix one after the other through `send`, reading the RSS of `pid`
/// every 1,000 and refreshing the sessions every 2 minutes.
pub async fn run(
    n: usize,
    pid: u32,
    sessions: Arc<Sessions>,
    stack: &LocalStack,
    send: Sender,
) -> Result<Soak, Error> {
    let http = reqwest::Client::new();
    let mut soak = Soak {
        kinds: KINDS.iter().map(|_| (0, 0, Vec::new())).collect(),
        warm_up: n / 10,
        ..Soak::default()
    };
    let mut all = Vec::with_capacity(n);
    let started = Instant::now();
    let mut refreshed = Instant::now();
    for i in 0..n {
        if i % 1000 == 0 {
            soak.rss
                .push((i, rss_kib(pid).ok_or("the server is gone")?));
            if refreshed.elapsed() > Duration::from_secs(120) {
                sessions.refresh(stack, &http).await?;
                refreshed = Instant::now();
            }
            if i % 10_000 == 0 {
                eprintln!("bench: soak, {i} of {n}");
            }
        }
        let (jwt, body) = sessions.request(i);
        let kind = kind_of(i);
        let sent = Instant::now();
        let status = send(jwt, body).await;
        let ms = sent.elapsed().as_secs_f64() * 1e3;
        let entry = &mut soak.kinds[kind];
        entry.0 += 1;
        entry.2.push(ms);
        if status != KINDS[kind].1 {
            entry.1 += 1;
            if soak.surprises.len() < 5 {
                soak.surprises.push((kind, status));
            }
        }
        all.push(ms);
    }
    soak.rss
        .push((n, rss_kib(pid).ok_or("the server is gone")?));
    soak.requests = n;
    soak.elapsed = started.elapsed();
    let tenth = (n / 10).max(1);
    soak.tenths = all
        .chunks(tenth)
        .map(|c| {
            let v = c.to_vec();
            (
                crate::measure::percentile(v.clone(), 0.5),
                crate::measure::percentile(v, 0.99),
            )
        })
        .collect();
    Ok(soak)
}

/// The two soaks.
pub struct Soaks {
    /// The release customer-token bootstrap, DynamoDB store in moto, the default settings.
    pub bootstrap: Soak,
    /// The local stack's HTTP server (`local-stack`, memory store).
    pub local: Soak,
}

/// Soaks the release bootstrap (on `stack`'s moto table) and the local stack's server with
/// `options.soak_requests` requests each.
pub async fn both(options: &crate::measure::Options, stack: &LocalStack) -> Result<Soaks, Error> {
    let n = options.soak_requests;
    let http = reqwest::Client::new();
    eprintln!("bench: soak of the release bootstrap ({n} requests)");
    let exe = options
        .bootstrap_dir
        .join("customer-token")
        .join("bootstrap");
    let (runtime, child) =
        crate::cpu::spawn_function(&exe, "customer-token", stack, &options.moto_url, &[]).await?;
    let pid = child.id().ok_or("the bootstrap ended")?;
    let sessions = Sessions::new(stack, &stack.api_url, &http, 8).await?;
    let send = crate::cpu::invoke_sender(runtime);
    let bootstrap = run(n, pid, sessions, stack, send).await?;
    drop(child);

    eprintln!("bench: soak of the local stack ({n} requests)");
    let sandboxes = crate::measure::memory_stack().await?;
    let exe = std::env::current_exe()?.with_file_name("local-stack");
    let (server, url) = crate::cpu::spawn_local_server(&exe, &sandboxes, &[]).await?;
    let pid = server.id().ok_or("the server ended")?;
    let sessions = Sessions::new(&sandboxes, &url, &http, 8).await?;
    let send = crate::cpu::http_sender(&format!("{url}/unit/customer-token"), 1)?;
    let local = run(n, pid, sessions, &sandboxes, send).await?;
    drop(server);
    Ok(Soaks { bootstrap, local })
}

/// The soak section of `BENCHMARKS.md`, and its plots in `plots`.
pub fn report(soaks: &Soaks, plots: &std::path::Path) -> Result<String, Error> {
    draw(soaks, plots)?;
    let mut out = String::from("## Soak\n\n");
    out.push_str(&format!(
        "{} requests one after another through each server, in a fixed mix per 20: {}. The bootstrap runs with the \
         default settings (a sensitive scope's session confirmed at Stytch) and the DynamoDB store in moto; the local \
         stack with the memory store. Eight stepped-up users share the tokens; they step up again every 2 minutes, as the \
         JWTs last 5 and a step-up counts for 300 s. RSS is read every 1,000 requests; the first tenth is the warm-up.\n\n",
        soaks.bootstrap.requests,
        KINDS
            .iter()
            .map(|(name, status, share)| format!("{share} {name} ({status})"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out.push_str(&memory_table(soaks));
    out.push_str(&latency_tables(soaks));
    Ok(out)
}

/// MiB from KiB.
fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The soak's plots in `plots`: RSS over each soak, and the latency of each kind of request.
fn draw(soaks: &Soaks, plots: &std::path::Path) -> Result<(), Error> {
    use crate::plot::{Series, cumulative, lines};
    let rss = |name: &str, s: &Soak| Series {
        name: name.into(),
        points: s.rss.iter().map(|(n, k)| (*n as f64, mib(*k))).collect(),
    };
    lines(
        &plots.join("soak-rss.png"),
        "RSS over the soak",
        "requests",
        "RSS (MiB)",
        &[
            rss("release bootstrap, DynamoDB store", &soaks.bootstrap),
            rss("local stack, memory store", &soaks.local),
        ],
        false,
    )?;
    let latency: Vec<Series> = KINDS
        .iter()
        .zip(&soaks.bootstrap.kinds)
        .map(|((name, status, _), (_, _, ms))| Series {
            name: format!("{name} ({status})"),
            points: cumulative(ms),
        })
        .collect();
    lines(
        &plots.join("latency.png"),
        "Latency per kind of request (release bootstrap soak, Runtime API to answer)",
        "ms (log scale)",
        "% of requests",
        &latency,
        true,
    )?;

    Ok(())
}

/// The RSS table of both soaks, their plot, and the first unexpected answers of each.
fn memory_table(soaks: &Soaks) -> String {
    let mut out = String::new();
    out.push_str("| server | requests | time | RSS after warm-up | RSS at the end | peak RSS | growth after warm-up | answers not of their kind's status |\n|---|---|---|---|---|---|---|---|\n");
    for (name, s) in [
        ("release bootstrap, DynamoDB store", &soaks.bootstrap),
        ("local stack, memory store", &soaks.local),
    ] {
        let (warm, end, max) = s.growth();
        let grown = end as f64 - warm as f64;
        out.push_str(&format!(
            "| {name} | {} | {:.0} s | {:.2} MiB | {:.2} MiB | {:.2} MiB | {:+.2} MiB ({:+.1} bytes per request) | {} |\n",
            s.requests,
            s.elapsed.as_secs_f64(),
            mib(warm),
            mib(end),
            mib(max),
            grown / 1024.0,
            grown * 1024.0 / (s.requests - s.warm_up).max(1) as f64,
            s.unexpected()
        ));
    }
    out.push_str("\n![RSS over the soak](benchmarks/soak-rss.png)\n\n");
    for (name, s) in [
        ("release bootstrap", &soaks.bootstrap),
        ("local stack", &soaks.local),
    ] {
        if !s.surprises.is_empty() {
            let first: Vec<String> = s
                .surprises
                .iter()
                .map(|(k, status)| format!("{} got {status}", KINDS[*k].0))
                .collect();
            out.push_str(&format!(
                "Unexpected answers of the {name}, first ones: {}.\n\n",
                first.join("; ")
            ));
        }
    }
    out
}

/// The latency of each tenth of the bootstrap's soak, and of each kind of request, with its
/// plot.
fn latency_tables(soaks: &Soaks) -> String {
    let mut out = String::new();
    out.push_str("Latency (ms) of each tenth of the bootstrap's soak, all kinds together: steady if the tenths agree.\n\n| tenth | p50 | p99 |\n|---|---|---|\n");
    for (i, (p50, p99)) in soaks.bootstrap.tenths.iter().enumerate() {
        out.push_str(&format!("| {} | {p50:.2} | {p99:.2} |\n", i + 1));
    }
    out.push_str(
        "\n| kind (bootstrap soak) | requests | p50 | p99 | max |\n|---|---|---|---|---|\n",
    );
    for ((name, status, _), (count, _, ms)) in KINDS.iter().zip(&soaks.bootstrap.kinds) {
        out.push_str(&format!(
            "| {name} ({status}) | {count} | {:.2} ms | {:.2} ms | {:.2} ms |\n",
            crate::measure::percentile(ms.clone(), 0.5),
            crate::measure::percentile(ms.clone(), 0.99),
            ms.iter().copied().fold(0.0, f64::max)
        ));
    }
    out.push_str("\n![latency per kind](benchmarks/latency.png)\n\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_has_each_kind_in_its_share() {
        let mut seen = [0usize; KINDS.len()];
        for i in 0..2000 {
            seen[kind_of(i)] += 1;
        }
        for (k, (_, _, share)) in KINDS.iter().enumerate() {
            assert_eq!(seen[k], share * 100, "kind {k}");
        }
        assert_eq!(KINDS.iter().map(|k| k.2).sum::<usize>(), 20);
    }
}
