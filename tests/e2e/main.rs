//! The end-to-end suite: one test binary, a module per route or story, on the `e2e` support
//! library (`tests/support/`). Each module drives the local stack over HTTP (or the real function
//! binaries through a local Lambda Runtime API) with DynamoDB and Secrets Manager in moto and the
//! Stytch and Unit sandboxes; run it with `cargo test -p e2e --test suite -- --include-ignored` and a
//! `MOTO_URL` (the test command starts moto), or one module with a filter (`-- signup::`).

mod concurrency;
mod customer_token;
mod events;
mod faults;
mod hostile_jwts;
mod hostile_webhooks;
mod local_stack;
mod operator;
mod runtime_api;
mod signup;
mod totp;
