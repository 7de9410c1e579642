# Switchyard — see README.md. Every target that talks to AWS runs against the local
# emulator started by scripts/with-emulator.sh unless AWS_ENDPOINT_URL already answers.
SHELL := bash
EMU := scripts/with-emulator.sh
CARGO ?= cargo

.PHONY: setup test bench demo dev lint fmt build-local lint-infra build image deploy destroy job-user agents

INFRA = $$(scripts/infra-venv.sh)
ARCH ?= arm64
STACK ?= switchyard
REGION ?= $(or $(AWS_REGION),us-east-1)
# What CloudFormation must be told the template creates: IAM roles, one of them named
# (WorkerScopedRole's RoleName: the task role's policy names it) → CAPABILITY_NAMED_IAM.
# Checked against the template's resources by tests/tests/infra.rs.
CAPABILITIES := CAPABILITY_IAM CAPABILITY_NAMED_IAM

build-local:
	$(CARGO) build -p switchyard-cli -p switchyard-worker

demo: build-local job-user $(if $(AGENT),agents) ## the whole system on the local emulator (AGENT=claude-code: a real agent CLI as the job)
	$(EMU) target/debug/switchyard demo $(if $(AGENT),--agent $(AGENT))

dev: build-local job-user ## the local runtime until Ctrl-C (API on 127.0.0.1:8787)
	$(EMU) target/debug/switchyard dev

setup: ## install the pinned emulator into .venv/
	$(EMU) true

job-user: ## the job users: each running job leases a uid of its own (the image has 8; 32 here, for many local workers)
	@if [ "$$(id -u)" != 0 ]; then echo "not root: local workers run jobs as your own user, without isolation"; else \
	  for i in $$(seq 0 31); do id switchyard-job-$$i >/dev/null 2>&1 || useradd --system --user-group \
	    --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin switchyard-job-$$i || exit 1; done; fi

agents: ## the coding agent CLIs (pinned: Claude Code from npm, aider from PyPI) that agent projects, their tests and `make demo AGENT=…` run
	@scripts/install-agents.sh >/dev/null

test: lint-infra job-user agents ## all tests, against the emulator this starts itself
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) check -p switchyard-tests --features localstack --tests
	$(CARGO) build -p switchyard-cli -p switchyard-worker   # executables the tests launch
	$(EMU) .venv/bin/python scripts/test_moto_serve.py   # the emulator enforces the AWS rules we depend on
	@mkdir -p .switchyard
	@set -o pipefail; $(EMU) scripts/with-stack.sh $(CARGO) test --workspace --all-targets 2>&1 | tee .switchyard/test.log; status=$$?; \
	  awk '/^test result:/ { p += $$4; f += $$6 } END { printf "%d passed, %d failed\n", p, f }' .switchyard/test.log; \
	  exit $$status

bench: agents ## benchmarks against the emulator (prints `bench <name> = <number> <unit>`)
	$(CARGO) build --profile perf -p switchyard-cli -p switchyard-worker
	$(EMU) sh -c 'target/perf/switchyard bench all && scripts/emulator-peak-rss.sh'

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

lint-infra: ## cfn-lint and sam validate on infra/template.yaml (offline)
	@bin=$(INFRA); $$bin/cfn-lint infra/template.yaml && echo "cfn-lint: ok"
	@bin=$(INFRA); SAM_CLI_TELEMETRY=0 $$bin/sam validate --template-file infra/template.yaml --region $(REGION)

build: ## the five Lambda zips (cargo lambda; ARCH=arm64 for AWS, ARCH=x86-64 where no aarch64 target)
	@bin=$(INFRA); PATH="$$bin:$$PATH" cargo lambda build --release --$(ARCH) --output-format zip \
	  -p intake-email -p api -p responder -p reaper -p task-events
	@ls -l target/lambda/*/bootstrap.zip

image: ## build the worker image and push it to ECR (needs Docker and AWS credentials)
	@test -n "$(IMAGE)" || { echo "set IMAGE=<account>.dkr.ecr.<region>.amazonaws.com/switchyard-worker:<tag>"; exit 2; }
	docker build -f infra/worker.Dockerfile --platform linux/$(ARCH) $(if $(JOB_TOOL_INSTALL),--build-arg JOB_TOOL_INSTALL="$(JOB_TOOL_INSTALL)") $(if $(AGENT_CLIS),--build-arg AGENT_CLIS="$(AGENT_CLIS)") -t $(IMAGE) .
	aws ecr get-login-password --region $(REGION) | docker login --username AWS --password-stdin $${IMAGE%%/*}
	docker push $(IMAGE)

deploy: ## sam build + sam deploy (guided the first time; answers saved in infra/samconfig.toml)
	@bin=$(INFRA); cd infra && PATH="$$bin:$$PATH" SAM_CLI_TELEMETRY=0 sam build --beta-features
	@bin=$(INFRA); cd infra && if grep -q parameter_overrides samconfig.toml; then \
	  PATH="$$bin:$$PATH" SAM_CLI_TELEMETRY=0 sam deploy --stack-name $(STACK) --region $(REGION) --capabilities $(CAPABILITIES); \
	else PATH="$$bin:$$PATH" SAM_CLI_TELEMETRY=0 sam deploy --guided --stack-name $(STACK) --region $(REGION) --capabilities $(CAPABILITIES); fi
	@bin=$(INFRA); $$bin/python scripts/activate-receipt-rules.py $(STACK) $(REGION)

destroy: ## delete the stack (the table is retained)
	@bin=$(INFRA); PATH="$$bin:$$PATH" SAM_CLI_TELEMETRY=0 sam delete --stack-name $(STACK) --region $(REGION)
