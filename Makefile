# Switchyard — see README.md. Every target that talks to AWS runs against the local
# emulator started by scripts/with-emulator.sh unless AWS_ENDPOINT_URL already answers.
SHELL := bash
EMU := scripts/with-emulator.sh
CARGO ?= cargo

.PHONY: setup test bench demo dev lint fmt build-local

build-local:
	$(CARGO) build -p switchyard-cli -p switchyard-worker

demo: build-local ## the whole system on the local emulator: emails, API calls, interrupts, replies, branches
	$(EMU) target/debug/switchyard demo

dev: build-local ## the local runtime until Ctrl-C (API on 127.0.0.1:8787)
	$(EMU) target/debug/switchyard dev

setup: ## install the pinned emulator into .venv/
	$(EMU) true

test: ## all tests, against the emulator this starts itself
	$(CARGO) fmt --all -- --check
	$(CARGO) check -p switchyard-tests --features localstack --tests
	@mkdir -p .switchyard
	@set -o pipefail; $(EMU) $(CARGO) test --workspace --all-targets 2>&1 | tee .switchyard/test.log; status=$$?; \
	  awk '/^test result:/ { p += $$4; f += $$6 } END { printf "%d passed, %d failed\n", p, f }' .switchyard/test.log; \
	  exit $$status

bench: ## benchmarks against the emulator (prints `bench <name> = <number> <unit>`)
	$(CARGO) build --profile perf -p switchyard-cli -p switchyard-worker
	$(EMU) target/perf/switchyard bench all

lint:
	$(CARGO) clippy --workspace --all-targets

fmt:
	$(CARGO) fmt --all
