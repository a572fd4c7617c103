//! `bridge-admin`: operator commands against a deployment of stytch-unit-bridge (or the local
//! stack). `link-customer` and `link-customers` read the same environment variables as the Lambda
//! functions (`STYTCH_PROJECT_ID`, `UNIT_API_URL`, `SECRET_ID`, `TABLE_NAME`, ...) and use the
//! operator's AWS credentials (the SDK's default chain), so they act on the deployment's secret
//! and table; `smoke` walks the whole flow against a deployment's API with test credentials.

mod link;
mod probe;
mod smoke;
mod target;

use std::sync::Arc;

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
    /// Binds one existing Unit customer to a Stytch user, with the checks of `link-customers`:
    /// our binding first (pending), then the customer's `jwtSubject` PATCHed at Unit, then the
    /// customer recorded.
    LinkCustomer {
        /// The Stytch user id (`user-test-...` or `user-live-...`).
        user_id: String,
        /// The Unit customer id.
        customer_id: String,
        /// Link even when the user's verified e-mail and phone differ from the customer's.
        #[arg(long)]
        accept_mismatch: bool,
        /// Replace a customer our record of the user already holds.
        #[arg(long)]
        replace: bool,
    },
    /// Binds many existing Unit customers to Stytch users from a CSV file of
    /// `stytch_user_id,unit_customer_id` rows: checked row by row, idempotent and resumable
    /// (rerun the same file to finish an interrupted run).
    LinkCustomers(link::Args),
    /// Walks the flow a frontend follows against a deployment's API (or the local stack) with
    /// Stytch and Unit test credentials: sign-up, onboarding, Unit's approval, TOTP step-up, a
    /// customer token used at Unit, the audit item, clean-up.
    Smoke(smoke::Args),
    /// Asks Stytch's and Unit's test environments the questions their documents leave open and
    /// prints each answer beside our reading in docs/ (test credentials only).
    Probe(probe::Args),
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    shared::telemetry::init_local();
    let code = match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bridge-admin: {e}");
            1
        }
    };
    std::process::exit(code);
}

async fn app() -> Result<Arc<shared::App>, target::Failure> {
    shared::App::from_env()
        .await
        .map(Arc::new)
        .map_err(|e| target::Failure(e.to_string()))
}

async fn run(cli: Cli) -> Result<i32, target::Failure> {
    match cli.command {
        Command::LinkCustomer {
            user_id,
            customer_id,
            accept_mismatch,
            replace,
        } => {
            let row = link::Row {
                line: 1,
                user_id,
                customer_id,
            };
            let outcome = match link::malformed(&row) {
                Some(refused) => refused,
                None => {
                    let options = link::Options {
                        dry_run: false,
                        accept_mismatch,
                        replace,
                    };
                    link::link_row(&*app().await?, &row, options).await
                }
            };
            match outcome {
                link::Outcome::Linked => println!(
                    "linked: Unit customer {} now has jwtSubject {}, and our record holds it",
                    row.customer_id, row.user_id
                ),
                link::Outcome::AlreadyLinked | link::Outcome::WouldLink => println!(
                    "already linked: Unit customer {} has jwtSubject {}, and our record holds it",
                    row.customer_id, row.user_id
                ),
                link::Outcome::Skipped(reason, detail) => {
                    return Err(target::Failure(format!("{reason}: {detail}")));
                }
                link::Outcome::Failed(detail) => {
                    return Err(target::Failure(format!("failed: {detail}")));
                }
            }
            Ok(0)
        }
        Command::LinkCustomers(args) => {
            let app = app().await?;
            if link::run(app, args).await? {
                Ok(0)
            } else {
                eprintln!(
                    "bridge-admin: some rows were not linked (see above); rerun the same file after fixing them"
                );
                Ok(1)
            }
        }
        Command::Smoke(args) => {
            smoke::run(args).await?;
            Ok(0)
        }
        Command::Probe(args) => Ok(if probe::run(args).await? { 0 } else { 1 }),
    }
}
