//! Lambda entry point of customer-token: build the state once per cold start, then serve.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::run(customer_token::handle).await
}
