# Wraps cargo, cargo lambda and sam; every target prints the commands it runs.
# `make help` lists the targets.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV        := .venv
BIN         := $(VENV)/bin
NODE_BIN    := tools/node_modules/.bin
# The stack the deploy targets act on: the name sam deploy saved in infra/samconfig.toml (its deploy
# section comes after the global one, so the last stack_name wins), unless given: make deploy STACK=...
STACK       ?= $(or $(shell awk -F'"' '/^stack_name *=/ { name = $$2 } END { print name }' infra/samconfig.toml),first-response)
FN          ?= alarm-router
EVENT       ?= events/alarm-router/metric-alarm.json
MOTO_PORT   ?= 5055
SLACK_PORT  ?= 4003
# Release builds for Lambda keep their own target directory, apart from the debug builds of make test.
LAMBDA_TARGET := $(CURDIR)/target/lambda-release

export SAM_CLI_TELEMETRY := 0
# Local runs only ever talk to the emulator, with fixed test credentials, and they route with
# the sample rules unless told otherwise (ROUTES=infra/routes.yaml tries your own).
ROUTES      ?= infra/routes.example.yaml
HISTORY     ?= events/histories/storm.jsonl
INPUT       ?= events/first-response/restart-verified.json
REPLAY_ARGS ?=
LOCAL_ENV := AWS_ENDPOINT_URL=http://127.0.0.1:$(MOTO_PORT) AWS_REGION=$${AWS_REGION:-eu-west-1} \
	SLACK_API_URL=http://127.0.0.1:$(SLACK_PORT)/api/ ROUTES_FILE=$(ROUTES)

.PHONY: help
help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: tools/requirements.txt
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	touch $@

tools/node_modules/.installed: tools/package.json tools/package-lock.json
	npm ci --prefix tools --no-audit --no-fund --loglevel=error
	touch $@

.PHONY: setup
setup: $(VENV)/.installed tools/node_modules/.installed ## Install the pinned local tools (moto, sam, cfn-lint, asl-validator)

.PHONY: build
build: ## Build every function (debug)
	cargo build --workspace

.PHONY: emulator
emulator: setup ## Start the local AWS emulator (moto server on 127.0.0.1:$(MOTO_PORT))
	MOTO_PORT=$(MOTO_PORT) tools/emulator.sh aws start

.PHONY: emulator-stop
emulator-stop: ## Stop the local AWS emulator
	MOTO_PORT=$(MOTO_PORT) tools/emulator.sh aws stop

.PHONY: slack-emulator
slack-emulator: setup ## Start the local Slack API emulator (emulate on port $(SLACK_PORT), seeded from tools/slack-emulator.yaml)
	SLACK_PORT=$(SLACK_PORT) tools/emulator.sh slack start

.PHONY: slack-emulator-stop
slack-emulator-stop: ## Stop the local Slack API emulator
	SLACK_PORT=$(SLACK_PORT) tools/emulator.sh slack stop

.PHONY: invoke
invoke: emulator $(if $(filter slack-channel-creator,$(FN)),slack-emulator) ## Run FN on EVENT against the emulator: make invoke FN=alarm-router EVENT=events/alarm-router/metric-alarm.json
	$(LOCAL_ENV) cargo run --quiet -p local-invoke -- $(FN) $(EVENT)

.PHONY: demo
demo: emulator slack-emulator ## The main job: replay the sample alarm through router and state machine, offline (three paths)
	cargo build --quiet -p replay
	$(LOCAL_ENV) tools/demo.sh

.PHONY: replay
replay: emulator slack-emulator ## Replay any alarm event through router and state machine: make replay EVENT=events/alarm-router/metric-alarm.json
	cargo build --quiet -p replay
	$(LOCAL_ENV) target/debug/replay event $(EVENT)

.PHONY: replay-run
replay-run: emulator slack-emulator ## Run the state machine on an execution input: make replay-run INPUT=events/first-response/restart-verified.json [REPLAY_ARGS=--alarm-stays]
	cargo build --quiet -p replay
	$(LOCAL_ENV) target/debug/replay run statemachines/first-response.asl.json --input $(INPUT) $(REPLAY_ARGS)

.PHONY: history
history: emulator slack-emulator ## Replay a whole alarm history (JSON Lines): make history HISTORY=events/histories/maintenance-night.jsonl [REPORT=report.html]
	cargo build --quiet -p replay
	$(LOCAL_ENV) target/debug/replay history $(HISTORY) $(if $(REPORT),--report $(REPORT))

# Storms of these sizes (alarms in one group, generated into target/bench-history/ by tools/histories.py).
BENCH_STORMS ?= 100 1000
BENCH_ROW := import json,sys; s = json.loads(sys.stdin.read().splitlines()[-1]); \
	c = s.get("dynamodbCapacityPerEvent") or {}; \
	print("%6s %7s %9s %9s %15s %10s %9s %9s" % (sys.argv[1], s["events"], s["wallSeconds"], s["eventsPerSecond"], \
	s.get("dynamodbCalls"), s.get("dynamodbCallsPerEvent"), c.get("read"), c.get("write")))

.PHONY: bench-history
bench-history: emulator slack-emulator ## Benchmark (not a test): events/s, DynamoDB calls and capacity units per event for storms of 100 and 1,000 alarms in one group
	mkdir -p target/bench-history
	for hosts in $(BENCH_STORMS); do $(BIN)/python tools/histories.py storm $$hosts target/bench-history/storm-$$hosts.jsonl; done
	cargo build --quiet -p replay
	@echo "Capacity units are the emulator's count by AWS's item-size rules (moto itself reports a fixed 1.0); see tools/moto_server.py"
	@printf '%6s %7s %9s %9s %15s %10s %9s %9s\n' alarms events "wall s" events/s "DynamoDB calls" "per event" "RCU/event" "WCU/event"
	for hosts in $(BENCH_STORMS); do \
	  $(LOCAL_ENV) cargo run --quiet -p replay -- history --quiet target/bench-history/storm-$$hosts.jsonl \
	    | $(BIN)/python -c '$(BENCH_ROW)' $$hosts; \
	done

# make bench builds its own x86_64 release binaries from a snapshot of the sources (the work tree, or
# BENCH_REV=<commit>) with the sample rules compiled in, apart from make test's debug target, and
# measures against emulators of its own, started empty on their own ports and stopped afterwards:
# what earlier runs left in moto would change the figures (moto's ListCommands lists every command).
BENCH_REV        ?=
BENCH_SRC        := target/bench/src
BENCH_TARGET     := $(CURDIR)/target/bench-release
BENCH_MOTO_PORT  ?= 5056
BENCH_SLACK_PORT ?= 4004
BENCH_ARGS       ?=
BENCH_EMULATORS  := MOTO_PORT=$(BENCH_MOTO_PORT) tools/emulator.sh aws
BENCH_SLACK      := SLACK_PORT=$(BENCH_SLACK_PORT) tools/emulator.sh slack

$(VENV)/.bench-installed: tools/bench/requirements.txt $(VENV)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check -r tools/bench/requirements.txt
	touch $@

.PHONY: bench-build
bench-build: $(VENV)/.installed ## Release-build (x86_64) the four functions and replay for make bench, from a snapshot with the sample rules
	$(BIN)/python tools/bench/bench.py snapshot --to $(BENCH_SRC) $(if $(BENCH_REV),--rev $(BENCH_REV))
	cd $(BENCH_SRC) && CARGO_TARGET_DIR=$(BENCH_TARGET) nice cargo build --release \
	  -p alarm-router -p failure-counter -p restart-and-verify -p slack-channel-creator
	cd $(BENCH_SRC) && CARGO_TARGET_DIR=$(BENCH_TARGET) nice cargo build --release -p replay

.PHONY: bench
bench: setup $(VENV)/.bench-installed bench-build ## Benchmark (not a test): each function vs a Python peer (cold start, RSS, latency), zip sizes, breaker cost, replay speed; table + target/bench/latest.json
	$(BENCH_EMULATORS) stop && $(BENCH_SLACK) stop
	$(BENCH_EMULATORS) start && $(BENCH_SLACK) start
	status=0; $(BIN)/python tools/bench/bench.py run --src $(BENCH_SRC) --release $(BENCH_TARGET)/release \
	  --moto http://127.0.0.1:$(BENCH_MOTO_PORT) --slack http://127.0.0.1:$(BENCH_SLACK_PORT)/api/ \
	  --out target/bench/latest.json $(BENCH_ARGS) || status=$$?; \
	$(BENCH_EMULATORS) stop; $(BENCH_SLACK) stop; exit $$status

.PHONY: diagram
diagram: ## Print the first-response state machine as a Mermaid flowchart
	cargo run --quiet -p replay -- diagram statemachines/first-response.asl.json

.PHONY: fmt
fmt: ## Format the code
	cargo fmt --all

.PHONY: lint
lint: setup ## Static checks: rustfmt, clippy, the ASL linter, cfn-lint, sam validate --lint
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(NODE_BIN)/asl-validator --json-path statemachines/first-response.asl.json
	$(BIN)/cfn-lint infra/template.yaml
	cd infra && ../$(BIN)/sam validate --lint --template template.yaml

.PHONY: test
test: setup lint ## Every test and check: unit, contract, end-to-end against moto, linters, template safety
	$(BIN)/python tools/check_template.py infra/template.yaml
	cargo test --workspace
	cargo run --quiet -p ops -- check --strict infra/routes.yaml
	cargo run --quiet -p ops -- check --strict infra/routes.example.yaml

.PHONY: explain
explain: ## Say what the rules would do with an alarm event, and why: make explain EVENT=... [ROUTES=...]
	cargo run --quiet -p ops -- explain $(EVENT) --routes $(ROUTES)

.PHONY: check-rules
check-rules: ## Check a rules file without an event: errors, shadowed rules, what acts on infrastructure: make check-rules ROUTES=infra/routes.yaml
	cargo run --quiet -p ops -- check $(ROUTES)

$(VENV)/.deploy-tools: tools/requirements-deploy.txt $(VENV)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check -r tools/requirements-deploy.txt
	touch $@

.PHONY: deploy-tools
deploy-tools: $(VENV)/.deploy-tools ## Install cargo-lambda and zig for release builds

.PHONY: sam-build
sam-build: setup deploy-tools ## Release-build the functions for arm64 with sam build (slow: its own target dir)
	cd infra && PATH=$(CURDIR)/$(BIN):$$PATH CARGO_TARGET_DIR=$(LAMBDA_TARGET) ../$(BIN)/sam build --template template.yaml

# Credentials, region (and the functions deploy-fn updates) are checked in seconds, before a
# release build of 10-18 minutes; the region and profile it resolves are passed on to sam and
# cargo lambda, so all three agree on where the stack is.
PREFLIGHT := $(BIN)/python tools/preflight.py
# The PagerDuty webhook function runs slack-channel-creator's binary too (when the stack has one).
FN_FUNCTIONS = --function $(STACK)-$(FN) \
	$(if $(filter slack-channel-creator,$(FN)),--optional-function $(STACK)-pagerduty-webhook)

.PHONY: preflight
preflight: $(VENV)/.installed ## Check AWS credentials and region for a deploy, without building (make deploy and deploy-fn run it first)
	$(PREFLIGHT) $(PREFLIGHT_ARGS)

.PHONY: deploy
deploy: PREFLIGHT_ARGS = --check-concurrency
deploy: preflight ## Check credentials, release-build, deploy the stack (sam deploy --guided on first use, while infra/samconfig.toml has no region)
	$(MAKE) --no-print-directory sam-build
	options=$$($(PREFLIGHT) --quiet --print-aws-options); \
	cd infra && if grep -q '^region' samconfig.toml; then ../$(BIN)/sam deploy --stack-name $(STACK) $$options; \
	else ../$(BIN)/sam deploy --guided --stack-name $(STACK) $$options; fi

.PHONY: deploy-fn
deploy-fn: PREFLIGHT_ARGS = $(FN_FUNCTIONS)
deploy-fn: preflight deploy-tools ## Build and deploy one function's code to the deployed stack: make deploy-fn FN=alarm-router (FN=slack-channel-creator updates the webhook function too)
	PATH=$(CURDIR)/$(BIN):$$PATH CARGO_TARGET_DIR=$(LAMBDA_TARGET) cargo lambda build --release --arm64 --bin $(FN)
	options=$$($(PREFLIGHT) --quiet --print-aws-options); \
	functions=$$($(PREFLIGHT) --quiet $(FN_FUNCTIONS) --print-functions); \
	for function in $$functions; do \
	  PATH=$(CURDIR)/$(BIN):$$PATH CARGO_TARGET_DIR=$(LAMBDA_TARGET) cargo lambda deploy $$options --binary-name $(FN) $$function; \
	done

.PHONY: delete-stack
delete-stack: preflight ## Delete the deployed stack with sam delete (it asks first); see the README for what stays behind
	options=$$($(PREFLIGHT) --quiet --print-aws-options); \
	cd infra && ../$(BIN)/sam delete --stack-name $(STACK) $$options

.PHONY: clean
clean: emulator-stop slack-emulator-stop ## Remove build output and local state
	cargo clean
	rm -rf .local infra/.aws-sam
