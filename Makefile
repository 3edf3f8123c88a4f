VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build run test bench lint peers

build: ## build a static binary into bin/hearth (lexicon schemas from the pinned indigo module)
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o bin/hearth ./cmd/hearth

run: build ## run a local PDS on embedded defaults (dev mode)
	./bin/hearth dev

test: ## install the test peers and run every test
	scripts/test.sh

bench: ## run the benchmarks in bench/
	go test -run '^$$' -bench . -benchmem ./bench/...

# staticcheck, pinned in tools/go.mod, is built by scripts/install-test-peers.sh.
STATICCHECK ?= .peers/bin/staticcheck

lint: ## gofmt, go vet and staticcheck
	test -z "$$(gofmt -l $$(git ls-files '*.go'))"
	go vet ./...
	@test -x $(STATICCHECK) || { echo "lint: $(STATICCHECK) missing: run make peers" >&2; exit 1; }
	$(STATICCHECK) ./...

peers: ## install the test peers only
	scripts/install-test-peers.sh
