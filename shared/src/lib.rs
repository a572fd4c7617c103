//! Shared library of stytch-unit-bridge: configuration, secrets, the user store, Stytch and Unit
//! clients, Stytch session JWT verification, webhook signatures, errors and tracing.

// Tests may run past the 60 lines asked of other functions (Cargo.toml, workspace lints).
#![cfg_attr(test, allow(clippy::too_many_lines))]

#[cfg(feature = "aws")]
pub mod app;
#[cfg(feature = "aws")]
pub mod authenticator;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod jwt;
#[cfg(feature = "aws")]
pub mod lambda;
pub mod metrics;
#[cfg(feature = "aws")]
pub mod onboarding;
pub mod secrets;
pub mod store;
pub mod stytch;
pub mod telemetry;
pub mod unit;
pub mod upstream;
pub mod webhook;

#[cfg(feature = "aws")]
pub use app::{App, StartupError};
pub use error::ApiError;
