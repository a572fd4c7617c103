//! Every sample event in `events/` runs through its function's handler (the code
//! `sam local invoke` runs) against the sandboxes and moto, and gets the status the manifest
//! gives it. The same events drive the real binaries in `runtime_api.rs`.

use e2e::Stack;
use local_stack::Function;
use local_stack::sample_events::{manifest, render};

#[tokio::test]
async fn every_sample_event_gets_its_status_from_its_handler() {
    let stack = Stack::start(&[]).await;
    let entries = manifest().unwrap();
    assert!(entries.len() >= 15, "every route has events");
    let app = &stack.local.app;
    for entry in &entries {
        let rendered = render(&stack.local, &stack.http, entry).await.unwrap();
        let request = lambda_http::request::from_str(&rendered)
            .unwrap_or_else(|e| panic!("{} is not an API Gateway v2 event: {e}", entry.event));
        let function = Function::named(&entry.function)
            .unwrap_or_else(|| panic!("unknown function {}", entry.function));
        let response = function.serve(app.clone(), request).await;
        let body = String::from_utf8_lossy(response.body().as_ref()).to_string();
        assert_eq!(
            response.status().as_u16(),
            entry.status,
            "{}: {body}",
            entry.event
        );
    }
    // Every route of every function has at least one event.
    for function in Function::ALL {
        for (method, path) in function.routes() {
            let covered = entries.iter().any(|e| {
                e.function == function.name() && {
                    let text =
                        std::fs::read_to_string(local_stack::sample_events::dir().join(&e.event))
                            .unwrap();
                    text.contains(&format!("\"rawPath\": \"{path}\""))
                }
            });
            assert!(covered, "no event for {method} {path}");
        }
    }
}
