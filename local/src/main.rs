//! `local-stack`: runs every route of stytch-unit-bridge on localhost (see the README).

use std::sync::Arc;

use shared::App;
use shared::store::DynamoStore;

#[tokio::main]
async fn main() {
    shared::telemetry::init_local();
    if let Err(e) = run().await {
        eprintln!("local-stack: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let state_dir = std::env::var("LOCAL_STATE_DIR").unwrap_or_else(|_| ".local".into());
    let settings = local_stack::settings::resolve(
        |k| std::env::var(k).ok(),
        std::path::Path::new(&state_dir),
    )?;
    let config = settings.config.clone();
    let aws = match (&config.store, &config.secrets) {
        (
            shared::config::StoreLocation::Memory,
            shared::config::SecretsLocation::File(_) | shared::config::SecretsLocation::Inline(_),
        ) => None,
        _ => Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await),
    };
    if settings.create_table
        && let (shared::config::StoreLocation::DynamoDb { table_name }, Some(aws)) =
            (&config.store, &aws)
    {
        DynamoStore::new(aws_sdk_dynamodb::Client::new(aws), table_name)
            .create_table_if_missing()
            .await?;
    }
    let app = Arc::new(App::build(config, aws).await?);
    let listener = tokio::net::TcpListener::bind(settings.bind)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {}: {e} (set PORT to another port)",
                settings.bind
            )
        })?;
    let base = format!("http://{}", listener.local_addr()?);
    print_banner(&base, &settings, &app);
    tokio::select! {
        served = local_stack::serve(app, listener) => served?,
        _ = tokio::signal::ctrl_c() => eprintln!("local-stack: stopped"),
    }
    Ok(())
}

fn print_banner(base: &str, settings: &local_stack::settings::LocalSettings, app: &App) {
    let c = &settings.config;
    println!("stytch-unit-bridge local stack on {base}");
    for (_, name, routes) in local_stack::Function::ALL {
        for route in routes {
            println!(
                "  {:<6} {base}{:<26} -> {name}",
                route.method.as_str(),
                route.path
            );
        }
    }
    println!(
        "Stytch:  {} (project {})",
        c.stytch_api_url, c.stytch_project_id
    );
    println!(
        "         JWKS for Unit's JWT settings: {}",
        app.stytch.jwks_url()
    );
    println!("Unit:    {}", c.unit_api_url);
    println!(
        "Store:   {}",
        match &c.store {
            shared::config::StoreLocation::Memory => "in memory (lost on exit)".to_owned(),
            shared::config::StoreLocation::DynamoDb { table_name } =>
                format!("DynamoDB table {table_name}"),
        }
    );
    match (&settings.generated_secrets, &c.secrets) {
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
        (None, shared::config::SecretsLocation::SecretsManager { secret_id, .. }) => {
            println!("Secrets: Secrets Manager {secret_id}")
        }
        (None, shared::config::SecretsLocation::File(path)) => {
            println!("Secrets: file {}", path.display())
        }
        (None, shared::config::SecretsLocation::Inline(_)) => println!("Secrets: SECRETS_JSON"),
    }
}
