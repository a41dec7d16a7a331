# Everything the project needs is installed from here: system packages (apt-get), node
# modules (npm ci), the native addon and helpers (node-gyp), the TypeScript build (tsc).
SHELL := /bin/bash
.DEFAULT_GOAL := build

APT_PACKAGES := build-essential python3 pkg-config libseccomp-dev nlohmann-json3-dev busybox-static \
                iproute2 iptables tmux runc procps docker-registry skopeo apache2-utils openssl
NATIVE_SOURCES := $(shell find native -name '*.cc' -o -name '*.h') binding.gyp
TS_SOURCES := $(shell find src cli bench -name '*.ts') tsconfig.json
NATIVE_OUT := build/Release/skiff_native.node build/Release/skiff-init build/Release/skiff-monitor

# Test flags: unit tests need nothing; integration tests need root and a real kernel.
JEST_FLAGS ?=

.PHONY: deps build start test unit integration bench clean

deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then \
	  npm ci --no-audit --no-fund --ignore-scripts; \
	fi

build/Release/.stamp: $(NATIVE_SOURCES) | deps
	npx node-gyp rebuild -j 2
	@touch $@

dist/.stamp: $(TS_SOURCES) | deps
	npx tsc -p tsconfig.json
	@touch $@

build: deps build/Release/.stamp dist/.stamp

start: build
	exec bin/skiffd

unit: build
	npx jest test/unit $(JEST_FLAGS)

integration: build
	npx jest --runInBand test/integration $(JEST_FLAGS)

# Every test; integration files run one at a time (they share cgroups, CPU and the kernel).
# Tests are type-checked first: ts-jest compiles them without type checks.
test: build
	npx tsc -p tsconfig.test.json
	npx jest --runInBand $(JEST_FLAGS)

bench: build
	node dist/bench/runtime.js

clean:
	rm -rf build dist
