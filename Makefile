# OmniNode Bridge. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BUF := $(GO) tool -modfile=tools/go.mod buf
PKGS := ./...
# Packages whose tests run with -race (everything with concurrency).
RACE ?= -race
TEST_TIMEOUT ?= 25m

.PHONY: help
help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build the omnibridge binary into ./bin
	$(GO) build -o bin/omnibridge ./cmd/omnibridge

.PHONY: run
run: demo ## Alias of demo

.PHONY: demo
demo: ## Run the whole loop on embedded defaults with demo services (no servers needed)
	$(GO) run ./cmd/omnibridge dev --demo

.PHONY: dev
dev: ## Run the control plane, broker and dashboard on embedded defaults
	$(GO) run ./cmd/omnibridge dev

.PHONY: test-deps
test-deps: ## Install what the tests need (Debian packages, Consul build); no-op when present
	bash scripts/test-deps.sh

.PHONY: test
test: test-deps ## Install test dependencies, then run every test (real PostgreSQL, Redis, Kafka, Consul)
	PATH="$${OMNIBRIDGE_CACHE:-$$HOME/.cache/omnibridge}/bin:$$PATH" $(GO) test $(RACE) -timeout $(TEST_TIMEOUT) -count=1 $(PKGS)

.PHONY: generate
generate: ## Regenerate gen/ from proto/ with buf (local plugins only)
	rm -rf gen
	$(BUF) generate

.PHONY: checkgenerate
checkgenerate: generate ## Fail when gen/ does not match proto/
	@git diff --exit-code -- gen || (echo "gen/ is out of date: run make generate and commit"; exit 1)
	@test -z "$$(git status --porcelain -- gen)" || (echo "gen/ has untracked files: run make generate and commit"; git status --porcelain -- gen; exit 1)

.PHONY: lint
lint: ## buf lint, gofmt and go vet
	$(BUF) lint
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); test -z "$$out" || (echo "gofmt needed:"; echo "$$out"; exit 1)
	$(GO) vet $(PKGS)

.PHONY: breaking
breaking: ## Check proto/ for breaking changes against the previous commit
	$(BUF) breaking --against '.git#ref=HEAD~1'

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 20s)
	bash scripts/fuzz.sh $(or $(FUZZTIME),20s)

.PHONY: bench
bench: ## Benchmarks side by side (sidecar vs nginx/HAProxy, event pipeline, closed loop, micro); PROFILE=1 saves profiles; NICE=-10 raises priority on a busy machine
	$(GO) build -o "$${TMPDIR:-/tmp}/omnibridge-benchrun" ./bench/cmd/benchrun
	$(if $(NICE),nice -n $(NICE) )"$${TMPDIR:-/tmp}/omnibridge-benchrun" -repo . $(if $(filter 1,$(PROFILE)),-profile) $(BENCH_ARGS)

.PHONY: bench-smoke
bench-smoke: ## Every benchmark scenario once at tiny scale: checks the harness works, asserts no timing
	$(GO) run ./bench/cmd/benchrun -repo . -smoke -out "$${TMPDIR:-/tmp}/omnibridge-bench-smoke" $(BENCH_ARGS)

.PHONY: soak
soak: ## Soak the topology under load with scheduled faults for DURATION (default 30m; SOAK_SHORT=1: 1m); results in soak-results/
	bash scripts/soak.sh $(or $(DURATION),30m)
