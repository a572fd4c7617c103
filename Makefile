# The two commands of the README, and a few helpers.
.PHONY: run test demo smoke package managed-instances bench profile-matrix fuzz events fmt lint

## run: serve every route on http://127.0.0.1:3000 (see README: Run locally)
run:
	cargo run --quiet -p local-stack --bin local-stack

## demo: script the whole walkthrough (signup, onboarding, TOTP, customer token) against a local stack
demo:
	cargo run --quiet -p local-stack --bin local-stack -- demo

## test: install pinned tools, start moto, run fmt, clippy, cfn-lint, unit and end-to-end tests
test:
	bash tools/test.sh

## smoke: walk the whole flow against API_URL with test credentials (see README: Deploy, step 7);
## PROBE=1: ask Stytch and Unit the open questions instead (README: Deploy, step 8)
smoke:
	cargo run --quiet -p bridge-admin -- $(if $(PROBE),probe,smoke) $(SMOKE_ARGS)

## package: release builds for Lambda (glibc 2.34, zig via cargo-lambda), glibc check, zips and sizes
package:
	bash tools/package.sh

## managed-instances: write template-managed-instances.yaml, the Lambda Managed Instances variant (docs/managed-instances.md)
managed-instances:
	bash tools/managed_instances.sh

## bench: cold start, memory, size, JWT, overhead and throughput figures; rewrites BENCHMARKS.md
bench:
	bash tools/bench.sh

## profile-matrix: what each release-profile setting buys (size, cold start, JWT verify); rewrites BENCHMARKS-release-profile.md
profile-matrix:
	bash tools/profile_matrix.sh

## fuzz: the fuzz targets for FUZZ_SECONDS each (default 20; e.g. FUZZ_SECONDS=3600 make fuzz for a long run)
fuzz:
	bash tools/fuzz.sh

## events: rewrite events/*.json and events/manifest.json from tools/make_events.py
events:
	python3 tools/make_events.py

fmt:
	cargo fmt --all

lint:
	cargo clippy --workspace --all-targets -- -D warnings
