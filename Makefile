# Swapmeet: `make run` starts everything, `make test` tests everything.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
TOOLS_DIR := $(shell $(GO) env GOPATH)/bin/swapmeet-tools

# Code generators, pinned. Each is built once into a versioned directory.
BUF_VERSION                  := v1.61.0
PROTOC_GEN_GO_VERSION        := v1.36.12
PROTOC_GEN_CONNECT_GO_VERSION := v1.21.1
SQLC_VERSION                 := v1.30.0

BUF                   := $(TOOLS_DIR)/buf-$(BUF_VERSION)/buf
PROTOC_GEN_GO         := $(TOOLS_DIR)/protoc-gen-go-$(PROTOC_GEN_GO_VERSION)/protoc-gen-go
PROTOC_GEN_CONNECT_GO := $(TOOLS_DIR)/protoc-gen-connect-go-$(PROTOC_GEN_CONNECT_GO_VERSION)/protoc-gen-connect-go
SQLC                  := $(TOOLS_DIR)/sqlc-$(SQLC_VERSION)/sqlc

# Every generated path; check-generated fails if regenerating changes any.
GENERATED := internal/gen db/sqlc web/src/gen

# The web app (web/): npm packages pinned by web/package-lock.json, among
# them protoc-gen-es for `make generate`. `npm ci` runs when the lock changes.
NPM      ?= npm
WEB_DEPS := web/node_modules/.package-lock.json

# Short fuzz runs in `make test`: package:target pairs, each run for FUZZ_TIME.
# The budget is a count of executions, not a duration: Go 1.26's coordinator can
# report a spurious "context deadline exceeded" when a duration runs out while a
# worker is mid-call (golang/go#75804), which a count never does.
FUZZ_TARGETS := ./internal/consistency:FuzzParseToken ./internal/consistency:FuzzParseWriteToken ./internal/app:FuzzValidateSignUp ./internal/app:FuzzValidateListing ./internal/media:FuzzInspect
FUZZ_TIME    ?= 50000x

# The tests that run on Postgres clusters of their own (scripts/services.sh cluster).
CLUSTER_TESTS := ^(TestFailoverIsFollowedThroughTheMultiHostURL|TestRestoreMovesTheReadSideOntoTheNewHistory|TestCopyWithoutRecoveryIsRefused)$$

SERVICES_ENV := eval "$$(scripts/services.sh env)"

.PHONY: help
help: ## Show the targets.
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: up
up: ## Install (first time) and start Postgres, Redis, MinIO and FerretDB on loopback.
	scripts/services.sh up

.PHONY: down
down: ## Stop the services that `make up` started (data is kept in .data/).
	scripts/services.sh down

.PHONY: build
build: web ## Build bin/swapmeet, with the web app embedded.
	@# -buildvcs=auto: `swapmeet version` names the commit whatever GOFLAGS says.
	$(GO) build -buildvcs=auto -o bin/swapmeet ./cmd/swapmeet

$(WEB_DEPS): web/package.json web/package-lock.json
	cd web && $(NPM) ci --no-audit --no-fund
	touch $@

.PHONY: web
web: $(WEB_DEPS) ## Build the web app (Vite) into internal/web/dist/app, which the binary embeds.
	cd web && $(NPM) run build

.PHONY: migrate
migrate: up build ## Apply pending migrations to the local database.
	$(SERVICES_ENV); bin/swapmeet migrate

.PHONY: run
run: up build ## Start the services, migrate, and run the API and the CDC (Ctrl-C stops).
	scripts/run.sh bin/swapmeet

.PHONY: test
test: up ## Start the services and run every test (Go, then the browser test), then short fuzz runs.
	$(SERVICES_ENV); $(GO) test -race -count=1 -timeout 20m -skip '$(CLUSTER_TESTS)' $$($(GO) list ./... | grep -v '/cdc')
	@# The failover and restore tests start Postgres clusters of their own
	@# (initdb, base backups): run alone, so that their load does not stretch
	@# the deadlines of the streaming tests running beside them.
	$(SERVICES_ENV); $(GO) test -race -count=1 -timeout 10m -run '$(CLUSTER_TESTS)' ./cmd/swapmeet/
	@# The CDC packages one at a time, as one package they were: their tests
	@# wait on replication latency, and the 200,000-row memory test's WAL
	@# slows every other walsender while it is decoded.
	$(SERVICES_ENV); $(GO) test -race -count=1 -p 1 -timeout 30m ./cdc/...
	@# Read latency under a sign-in flood is measured without the race
	@# detector: under it, argon2id cannot be preempted (see internal/rpc/abuse_test.go).
	$(SERVICES_ENV); $(GO) test -count=1 -run '^TestSignInFlood$$' ./internal/rpc/
	$(MAKE) --no-print-directory test-cluster
	$(MAKE) --no-print-directory e2e
	$(MAKE) --no-print-directory fuzz

# The Redis tests again on a local Redis Cluster of 3 masters (scripts/services.sh
# up redis-cluster; `make up` does not start it): the cache, the applied
# position and the rate limits, the CDC tests that evict, replay and publish
# through a crash, the read-your-writes tests of the API (with the near cache,
# over three replicas), and the change feed with the Watch streams that
# follow it.
REDIS_CLUSTER_RUN := ^(TestCDCSurvivesSIGKILL|TestFailoverUnderLoad|TestZombieLeaderIsFenced|TestReplayIsIdempotent|TestCatchUpIsolation|TestVerifyIsExact|TestStaleFillCannotPersist|TestConsistencyTokensOnListings|TestConsistencyTokenTimesOutAsUnavailable|TestSignUpThenGetUserReadsTheProjection|TestUpdateProfileReachesReadsAndEvictsTheCache|TestSearchFloodSparesCorrectnessData|TestReplicasShareEverythingAClientReliesOn|TestReadYourWritesAcrossReplicasWithTheNearCache|TestWatchOrdersResumesWithoutGapOrRepeat|TestWatchOrdersResyncsBeyondTheHistory|TestWatchStreamsSurviveCDCKill)$$
REDIS_CLUSTER_ENV := $(SERVICES_ENV); export SWAPMEET_REDIS_URL="$$SWAPMEET_REDIS_CLUSTER_URL"

.PHONY: test-cluster
test-cluster: up ## Run the Redis-facing tests against a local 3-master Redis Cluster.
	scripts/services.sh up redis-cluster
	$(REDIS_CLUSTER_ENV); $(GO) test -race -count=1 -timeout 10m ./internal/cache/... ./internal/consistency/... ./internal/ratelimit/... ./internal/feed/... ./internal/live/...
	@# One package at a time, as in the main pass: a CDC test's WAL slows every
	@# walsender, and with it the token reads of the replicas' test.
	$(REDIS_CLUSTER_ENV); $(GO) test -race -count=1 -p 1 -timeout 15m -run '$(REDIS_CLUSTER_RUN)' ./cdc/ ./cdc/projection/ ./internal/rpc/ ./cmd/swapmeet/

# The browser test: Debian's chromium (installed when missing), driven by
# playwright-core, against a private `swapmeet serve` + `swapmeet cdc` that
# web/e2e/stack starts on the running services and removes afterwards.
E2E_RUN := $(GO) run ./web/e2e/stack -bin bin/swapmeet -logs web/e2e/output -- node --test --test-reporter=spec web/e2e/flow.test.mjs

.PHONY: e2e
e2e: up build ## Run the browser end-to-end test (screenshots in web/e2e/output/screenshots).
	web/e2e/ensure-chromium.sh
	rm -rf web/e2e/output/screenshots
	$(SERVICES_ENV); $(E2E_RUN)

.PHONY: screenshots
screenshots: up build ## Run the browser test and keep its screenshots in web/screenshots (shown in the README).
	web/e2e/ensure-chromium.sh
	rm -f web/screenshots/*.png
	$(SERVICES_ENV); E2E_SCREENSHOTS=web/screenshots $(E2E_RUN)

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZ_TIME executions (FUZZ_TIME=30s for a timed run).
	for t in $(FUZZ_TARGETS); do \
		$(GO) test -run='^$$' -fuzz="^$${t#*:}$$" -fuzztime=$(FUZZ_TIME) "$${t%%:*}"; \
	done

.PHONY: lint
lint: $(BUF) ## go vet and buf lint.
	$(GO) vet ./...
	$(BUF) lint proto

.PHONY: tools
tools: $(BUF) $(PROTOC_GEN_GO) $(PROTOC_GEN_CONNECT_GO) $(SQLC) ## Build the pinned code generators.

$(BUF):
	scripts/gotool.sh github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION) $@
$(PROTOC_GEN_GO):
	scripts/gotool.sh google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION) $@
$(PROTOC_GEN_CONNECT_GO):
	scripts/gotool.sh connectrpc.com/connect/cmd/protoc-gen-connect-go@$(PROTOC_GEN_CONNECT_GO_VERSION) $@
$(SQLC):
	scripts/gotool.sh github.com/sqlc-dev/sqlc/cmd/sqlc@$(SQLC_VERSION) $@

.PHONY: generate
generate: tools $(WEB_DEPS) ## Regenerate protobuf/Connect code (Go and TypeScript) and sqlc queries from scratch.
	rm -rf $(GENERATED)
	PATH="$(dir $(PROTOC_GEN_GO)):$(dir $(PROTOC_GEN_CONNECT_GO)):$$PATH" $(BUF) generate
	$(BUF) generate --template web/buf.gen.yaml
	$(SQLC) generate

# Every pause between retries goes through internal/wait, so that each one
# is jittered, bounded and ends at shutdown: no time.Sleep and no doubling
# outside it (tests may sleep to make a moment happen, never to wait).
STRAY_WAITS := time\.Sleep\(|min\((max\()?2 ?\* ?[a-z]|min\([a-z.]+ ?\* ?2

.PHONY: check-rules
check-rules: ## Fail if go.mod is untidy (both modules) or a backoff is written outside internal/wait.
	$(GO) mod tidy -diff
	cd scripts/ferretdb && $(GO) mod tidy -diff
	@if git grep -nE '$(STRAY_WAITS)' -- '*.go' ':!*_test.go' ':!internal/wait/'; then \
		echo "a sleep or backoff outside internal/wait: use wait.Backoff, wait.Sleep or wait.Every"; exit 1; fi

.PHONY: check-generated
check-generated: generate check-rules ## Fail if the protos fail buf lint or the committed generated code differs from a fresh generation (and check-rules).
	$(BUF) lint proto
	@if [[ -n "$$(git status --porcelain -- $(GENERATED))" ]]; then \
		echo "generated code is stale; run 'make generate' and commit:"; \
		git status --porcelain -- $(GENERATED); git diff --stat -- $(GENERATED); exit 1; \
	fi
	@echo "generated code is up to date"

.PHONY: clean
clean: ## Remove build output (not the service data; see scripts/services.sh clean).
	rm -rf bin internal/web/dist/app web/e2e/output

.PHONY: bench
bench: up ## Measure each performance target against its reference, in one run.
	scripts/services.sh tools
	$(SERVICES_ENV); $(GO) run ./cmd/swapmeet-bench $(BENCH_FLAGS)
