//! The conformance report `target/conformance/stytch.json` (read by `make test` and held
//! against README.md's sandbox table): the steps of every suite of this workspace, one count.
//! Each suite (one test binary each) writes its own part under `target/conformance/stytch/`,
//! then rewrites the report from all parts, so the last suite to run leaves the total.

use std::path::Path;

/// Records `suite`'s passed steps and rewrites the combined report; its step count.
pub fn write(suite: &str, passed: &[&str]) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/conformance");
    let parts = dir.join("stytch");
    std::fs::create_dir_all(&parts).unwrap();
    let part = serde_json::json!({"suite": suite, "passed": passed});
    std::fs::write(parts.join(format!("{suite}.json")), part.to_string()).unwrap();
    let mut suites: Vec<serde_json::Value> = std::fs::read_dir(&parts)
        .unwrap()
        .filter_map(|entry| std::fs::read(entry.ok()?.path()).ok())
        .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
        .collect();
    // The consumer suite first, then the others by name.
    suites.sort_by_key(|s| (s["suite"] != "consumer", s["suite"].to_string()));
    let passed: Vec<serde_json::Value> = suites
        .iter()
        .flat_map(|s| s["passed"].as_array().cloned().unwrap_or_default())
        .collect();
    let report = serde_json::json!({
        "sdk": "stytch (Rust)",
        "version": "11.1.0",
        "steps": passed.len(),
        "suites": suites.iter().map(|s| s["suite"].clone()).collect::<Vec<_>>(),
        "passed": passed,
    });
    std::fs::write(dir.join("stytch.json"), report.to_string()).unwrap();
    passed.len()
}
