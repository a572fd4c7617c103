//! Lambda entry point of signup-webhook: build the state once per cold start, then serve.

fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::start(signup_webhook::handle)
}
