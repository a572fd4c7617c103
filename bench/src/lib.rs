//! The benchmark harness of stytch-unit-bridge (`make bench`): one module per measurement. The
//! local Lambda Runtime API it drives the release `bootstrap`s through, and the renderer of the
//! sample events of `events/`, live in the local runner (`local_stack::runtime_api`,
//! `local_stack::sample_events`), which the tests share.

pub mod cpu;
pub mod jwt;
pub mod measure;
pub mod overhead;
pub mod plot;
pub mod soak;
