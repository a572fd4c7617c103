//! The end-to-end suite: one test binary, a module per route or story, on the `e2e` support
//! library (`tests/support/`). Each module drives the local stack over HTTP (or the real function
//! binaries through a local Lambda Runtime API) with DynamoDB and Secrets Manager in moto and the
//! Stytch and Unit sandboxes; run it with `cargo test -p e2e --test suite -- --include-ignored` and a
//! `MOTO_URL` (the test command starts moto), or one module with a filter (`-- signup::`).

// Scenarios are held to 80 lines by `no_scenario_is_longer_than_80_lines`, not by clippy's 60.
#![allow(clippy::too_many_lines)]

mod cards;
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

/// Every module's source, for the length check below.
const SOURCES: [(&str, &str); 12] = [
    ("cards.rs", include_str!("cards.rs")),
    ("concurrency.rs", include_str!("concurrency.rs")),
    ("customer_token.rs", include_str!("customer_token.rs")),
    ("events.rs", include_str!("events.rs")),
    ("faults.rs", include_str!("faults.rs")),
    ("hostile_jwts.rs", include_str!("hostile_jwts.rs")),
    ("hostile_webhooks.rs", include_str!("hostile_webhooks.rs")),
    ("local_stack.rs", include_str!("local_stack.rs")),
    ("operator.rs", include_str!("operator.rs")),
    ("runtime_api.rs", include_str!("runtime_api.rs")),
    ("signup.rs", include_str!("signup.rs")),
    ("totp.rs", include_str!("totp.rs")),
];

/// The longest a scenario (a test function) of this suite may be, in lines that are neither blank
/// nor comments: past that, a story is told in named steps.
const MAX_SCENARIO_LINES: usize = 80;

/// The test functions of a module's source (at the top level, marked `#[test]` or
/// `#[tokio::test]`, up to their closing brace at column 0) with their length in lines that are
/// neither blank nor comments.
fn scenario_lengths(source: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut marked = false;
    let mut current: Option<(String, usize)> = None;
    for line in source.lines() {
        if current.is_none() {
            if line.starts_with("#[") {
                marked |= line.contains("test]") || line.contains("test(");
                continue;
            }
            let head = line.strip_prefix("async ").unwrap_or(line);
            match head.strip_prefix("fn ") {
                Some(rest) if marked => {
                    let name = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    current = Some((name, 0));
                }
                _ => {
                    if !line.starts_with("//") {
                        marked = false;
                    }
                    continue;
                }
            }
        }
        if let Some((_, n)) = &mut current {
            let t = line.trim();
            if !t.is_empty() && !t.starts_with("//") {
                *n += 1;
            }
        }
        if line == "}"
            && let Some(done) = current.take()
        {
            out.push(done);
            marked = false;
        }
    }
    out
}

#[test]
fn no_scenario_is_longer_than_80_lines() {
    let mut long = Vec::new();
    for (file, source) in SOURCES {
        let found = scenario_lengths(source);
        assert!(!found.is_empty(), "{file}: no scenario found");
        long.extend(
            found
                .into_iter()
                .filter(|(_, n)| *n > MAX_SCENARIO_LINES)
                .map(|(name, n)| format!("{file}: {name} ({n} lines)")),
        );
    }
    assert!(long.is_empty(), "split these into named steps: {long:#?}");
}

#[test]
fn the_length_check_counts_the_code_lines_of_test_functions() {
    let source = "#[tokio::test]\n#[ignore = \"moto\"]\nasync fn short() {\n    // a comment\n\n    one();\n}\n\nfn helper() {\n    two();\n}\n\n#[test]\nfn other() {\n    two();\n    three();\n}\n";
    assert_eq!(
        scenario_lengths(source),
        [("short".to_owned(), 3), ("other".to_owned(), 4)]
    );
}
