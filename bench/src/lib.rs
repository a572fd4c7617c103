//! The benchmark harness of stytch-unit-bridge (`make bench`), and the two pieces the tests share
//! with it: a local Lambda Runtime API that drives the release `bootstrap`s as Lambda does, and
//! the renderer that fills in the sample events of `events/` for a running local stack.

pub mod cpu;
pub mod measure;
pub mod plot;
pub mod runtime_api;
pub mod sample_events;
pub mod soak;
