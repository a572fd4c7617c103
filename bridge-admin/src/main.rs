//! `bridge-admin`: operator commands against a deployment of stytch-unit-bridge. It reads the
//! same environment variables as the Lambda functions (`STYTCH_PROJECT_ID`, `SECRET_ID`,
//! `TABLE_NAME`, ...) and uses the operator's AWS credentials (the SDK's default chain), so it
//! acts on the deployment's Secrets Manager secret and DynamoDB table.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bridge-admin",
    version,
    about = "Operator commands of stytch-unit-bridge"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Binds an existing Unit customer to a Stytch user: PATCH the customer's `jwtSubject` to
    /// the user id at Unit, then record the customer on the user's record.
    LinkCustomer {
        /// The Stytch user id (`user-test-...` or `user-live-...`).
        user_id: String,
        /// The Unit customer id.
        customer_id: String,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    shared::telemetry::init_local();
    if let Err(e) = run(cli).await {
        eprintln!("bridge-admin: {e}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match cli.command {
        Command::LinkCustomer {
            user_id,
            customer_id,
        } => {
            let app = shared::App::from_env().await?;
            let record = shared::onboarding::link_existing_customer(&app, &user_id, &customer_id)
                .await
                .map_err(|e| format!("{}: {}", e.code, e.message))?;
            println!(
                "linked: Unit customer {customer_id} now has jwtSubject {user_id}; record version {}",
                record.version
            );
        }
    }
    Ok(())
}
