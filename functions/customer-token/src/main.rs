//! Lambda entry point of customer-token: build the state once per cold start, then serve.

fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::start(customer_token::handle)
}
