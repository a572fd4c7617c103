# The two commands of the README, and a few helpers.
.PHONY: run test fmt lint

## run: serve every route on http://127.0.0.1:3000 (see README: Run locally)
run:
	cargo run --quiet -p local-stack --bin local-stack

## test: install pinned tools, start moto, run fmt, clippy, cfn-lint, unit and end-to-end tests
test:
	bash local/tools/test.sh

fmt:
	cargo fmt --all

lint:
	cargo clippy --workspace --all-targets -- -D warnings
