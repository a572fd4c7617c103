//! Lambda entry point of totp-stepup: build the state once per cold start, then serve.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::run(totp_stepup::handle).await
}
