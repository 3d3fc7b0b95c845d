# trailwatch — make targets. `make test` is the README's second command.
GO ?= go
BENCHTIME ?= 1s

.PHONY: run test unit lint bench compare fuzz-smoke rules-test tidy-check build services-start services-stop soak soak-short load

build:
	$(GO) build -o bin/trailwatch ./cmd/trailwatch

run:
	$(GO) run ./cmd/trailwatch run

## test: the whole suite against a real Kafka broker and OpenSearch node
test:
	bash scripts/test.sh

## unit: the suite without starting services (integration tests skip)
unit:
	$(GO) test -race -shuffle=on -timeout 10m ./...

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

rules-test:
	$(GO) test -count=1 ./rules/...
	$(GO) run ./cmd/trailwatch rules lint rules
	$(GO) run ./cmd/trailwatch rules test rules

bench:
	bash scripts/bench.sh

## compare: trailwatch parse vs rsyslog's lognormalizer on the same nginx file
compare:
	bash scripts/compare-lognormalizer.sh

fuzz-smoke:
	bash scripts/fuzz-smoke.sh

tidy-check:
	cp go.mod /tmp/tw-go.mod.bak && cp go.sum /tmp/tw-go.sum.bak
	$(GO) mod tidy
	@if ! diff -q go.mod /tmp/tw-go.mod.bak >/dev/null || ! diff -q go.sum /tmp/tw-go.sum.bak >/dev/null; then \
		cp /tmp/tw-go.mod.bak go.mod; cp /tmp/tw-go.sum.bak go.sum; \
		echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; fi

## soak-short: the proof harness's short profile (CI, ~2 min): real nginx/HAProxy,
## stage processes, faults, verifier (internal/soak, docs/reliability.md)
soak-short:
	bash scripts/soak.sh short

## soak: the full profile (~10 min) on a Kafka/OpenSearch pair of its own (ports 29xxx),
## with the broker restart and the OpenSearch outage; stops that pair at exit
soak:
	bash scripts/soak.sh full

## load: throughput and alert latency without faults (docs/benchmarks.md)
load:
	bash scripts/soak.sh load

services-start:
	bash scripts/services.sh start

services-stop:
	bash scripts/services.sh stop
