//! `local-stack`: runs every route of stytch-unit-bridge on localhost, with in-process Stytch and
//! Unit sandboxes unless real ones are configured (see the README).

use local_stack::settings::Plan;
use local_stack::stack::LocalStack;
use shared::config::{SecretsLocation, StoreLocation};

#[tokio::main]
async fn main() {
    shared::telemetry::init_local();
    if let Err(e) = run().await {
        eprintln!("local-stack: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let state_dir = std::env::var("LOCAL_STATE_DIR").unwrap_or_else(|_| ".local".into());
    let state_dir = std::path::Path::new(&state_dir);
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {}
        Some("demo") => {
            // Its own stack on free ports, so it runs beside `make run`.
            let plan = Plan::resolve(
                |k| match k {
                    "PORT" | "STYTCH_SANDBOX_PORT" | "UNIT_SANDBOX_PORT" => Some("0".into()),
                    _ => std::env::var(k).ok(),
                },
                state_dir,
            )?;
            let stack = LocalStack::start(&plan, None).await?;
            println!(
                "Walkthrough against {} (Stytch {}, Unit {})",
                stack.api_url,
                stack.stytch_url(),
                stack.unit_url()
            );
            return local_stack::demo::run(&stack).await.map_err(Into::into);
        }
        Some("bench") => {
            let var =
                |k: &str, default: &str| std::env::var(k).unwrap_or_else(|_| default.to_owned());
            let number = |k: &str, default: usize| -> Result<usize, String> {
                var(k, &default.to_string())
                    .parse()
                    .map_err(|_| format!("{k} must be a whole number"))
            };
            let options = local_stack::bench::Options {
                moto_url: std::env::var("MOTO_URL")
                    .map_err(|_| "MOTO_URL is not set (make bench starts moto)")?,
                bootstrap_dir: var("BOOTSTRAP_DIR", "target/lambda").into(),
                cold_runs: number("BENCH_COLD_RUNS", 20)?,
                rss_requests: number("BENCH_RSS_REQUESTS", 1000)?,
                overhead_requests: number("BENCH_OVERHEAD_REQUESTS", 2000)?,
                throughput_seconds: number("BENCH_SECONDS", 5)? as u64,
                profile: std::env::var("BENCH_PROFILE")
                    .ok()
                    .and_then(|path| std::fs::read_to_string(path).ok()),
            };
            if std::env::var("BENCH_ONLY").as_deref() == Ok("throughput") {
                let seconds = options.throughput_seconds;
                let (rate, n) = tokio::task::spawn_blocking(move || {
                    local_stack::bench::throughput_only(seconds)
                })
                .await?
                .map_err(|e| e.to_string())?;
                println!("{rate:.0} requests/s ({n} in {seconds} s)");
                return Ok(());
            }
            if std::env::var("BENCH_ONLY").as_deref() == Ok("cold") {
                // `<function> <ms to first poll> <ms to first response>`, medians.
                print!("{}", local_stack::bench::cold_only(&options).await?);
                return Ok(());
            }
            let report = local_stack::bench::run(&options).await?;
            let out = var("BENCH_OUT", "BENCHMARKS.md");
            std::fs::write(&out, report)?;
            println!("wrote {out}");
            return Ok(());
        }
        Some("link-customer") => {
            // An operator action against the configured deployment (the Lambda's variables).
            let args: Vec<String> = std::env::args().skip(2).collect();
            let [user_id, customer_id] = args.as_slice() else {
                return Err(
                    "usage: local-stack link-customer <stytch user_id> <unit customer_id>".into(),
                );
            };
            let app = shared::App::from_env().await?;
            let record =
                signup_webhook::onboarding::link_existing_customer(&app, user_id, customer_id)
                    .await
                    .map_err(|e| format!("{}: {}", e.code, e.message))?;
            println!(
                "linked: Unit customer {customer_id} now has jwtSubject {user_id}; record version {}",
                record.version
            );
            return Ok(());
        }
        Some(other) => {
            return Err(format!(
                "unknown command {other:?}; use `serve` (default), `demo`, `bench` or `link-customer`"
            )
            .into());
        }
    }
    let plan = Plan::resolve(|k| std::env::var(k).ok(), state_dir)?;
    let mut stack = LocalStack::start(&plan, None).await?;
    print_banner(&stack, &plan).await;
    tokio::select! {
        served = stack.wait() => served?,
        _ = tokio::signal::ctrl_c() => eprintln!("local-stack: stopped"),
    }
    Ok(())
}

async fn print_banner(stack: &LocalStack, plan: &Plan) {
    let c = &stack.app.config;
    let base = &stack.api_url;
    println!("stytch-unit-bridge local stack on {base}");
    println!("  demo page: {base}/demo   API description: {base}/openapi.yaml");
    for (_, name, routes) in local_stack::Function::ALL {
        for route in routes {
            println!(
                "  {:<6} {base}{:<26} -> {name}",
                route.method.as_str(),
                route.path
            );
        }
    }
    let secrets = stack.app.secrets.current().await.ok();
    let sandbox = |on: bool| if on { " (sandbox)" } else { "" };
    println!(
        "Stytch:  {}{} project {}",
        c.stytch_api_url,
        sandbox(stack.stytch.is_some()),
        c.stytch_project_id
    );
    if stack.stytch.is_some()
        && let Some(s) = &secrets
    {
        println!(
            "         Basic auth {}:{}",
            c.stytch_project_id,
            s.stytch_secret.expose()
        );
    }
    println!(
        "         JWKS for Unit's JWT settings: {}",
        stack.app.stytch.jwks_url()
    );
    println!(
        "Unit:    {}{}",
        c.unit_api_url,
        sandbox(stack.unit.is_some())
    );
    if stack.unit.is_some()
        && let Some(s) = &secrets
    {
        println!("         org token {}", s.unit_api_token.expose());
    }
    if stack.stytch.is_some() || stack.unit.is_some() {
        println!(
            "         sandbox controls: POST /_sandbox/faults, GET /_sandbox/requests, GET /_sandbox/webhooks"
        );
    }
    println!(
        "Store:   {}",
        match &c.store {
            StoreLocation::Memory => "in memory (lost on exit)".to_owned(),
            StoreLocation::DynamoDb { table_name } => format!("DynamoDB table {table_name}"),
        }
    );
    match (&plan.generated_secrets, &c.secrets) {
        (Some(path), _) => {
            println!("Secrets: generated in {} (local only)", path.display());
            let generated: serde_json::Value = std::fs::read_to_string(path)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            for field in ["stytch_webhook_secret", "unit_webhook_token"] {
                println!(
                    "         {field}: {}",
                    generated[field].as_str().unwrap_or("?")
                );
            }
        }
        (None, SecretsLocation::SecretsManager { secret_id, .. }) => {
            println!("Secrets: Secrets Manager {secret_id}")
        }
        (None, SecretsLocation::File(path)) => println!("Secrets: file {}", path.display()),
        (None, SecretsLocation::Inline(_)) => println!("Secrets: SECRETS_JSON"),
    }
    println!("Ready.");
}
