//! Lambda entry point of signup-webhook: build the state once per cold start, then serve.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::run(signup_webhook::handle).await
}
