//! `local-stack`: runs every route of stytch-unit-bridge on localhost, with in-process Stytch and
//! Unit sandboxes unless real ones are configured (see the README).

use clap::{Parser, Subcommand};
use local_stack::settings::Plan;
use local_stack::stack::LocalStack;
use shared::config::{SecretsLocation, StoreLocation};

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    shared::telemetry::init_local();
    if let Err(e) = run(cli).await {
        eprintln!("local-stack: {e}");
        std::process::exit(1);
    }
}

/// Runs every route of stytch-unit-bridge on localhost (see the README: Run locally). Every
/// setting is an environment variable, the same the Lambda functions read.
#[derive(Parser)]
#[command(name = "local-stack", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and the sandboxes until Ctrl-C (the default).
    Serve,
    /// Walk the whole flow (signup, onboarding, TOTP, customer token) against a stack of its
    /// own on free ports, so it runs beside `make run`.
    Demo,
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let state_dir = std::env::var("LOCAL_STATE_DIR").unwrap_or_else(|_| ".local".into());
    let state_dir = std::path::Path::new(&state_dir);
    if let Some(Command::Demo) = cli.command {
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
    for function in local_stack::Function::ALL {
        for (method, path) in function.routes() {
            println!(
                "  {:<6} {base}{path:<26} -> {}",
                method.as_str(),
                function.name()
            );
        }
    }
    print_upstreams(stack).await;
    println!(
        "Store:   {}",
        match &c.store {
            StoreLocation::Memory => "in memory (lost on exit)".to_owned(),
            StoreLocation::DynamoDb { table_name } => format!("DynamoDB table {table_name}"),
        }
    );
    print_secrets(stack, plan);
    println!("Ready.");
}

/// The banner's Stytch and Unit lines: where each is, and a sandbox's credentials and controls.
async fn print_upstreams(stack: &LocalStack) {
    let c = &stack.app.config;
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
            "         sandbox controls: POST /_sandbox/faults, GET /_sandbox/requests, GET /_sandbox/webhooks; Unit: POST /_sandbox/customers/{{id}}/card"
        );
    }
}

/// The banner's Secrets line: where the secrets are, and a generated file's webhook secrets.
fn print_secrets(stack: &LocalStack, plan: &Plan) {
    match (&plan.generated_secrets, &stack.app.config.secrets) {
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
}
