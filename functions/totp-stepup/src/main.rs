//! Lambda entry point of totp-stepup: build the state once per cold start, then serve.

fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::start(totp_stepup::handle)
}
