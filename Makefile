# Everything the project needs is installed from here: system packages (apt-get), node
# modules (npm ci), the native addon and helpers (node-gyp), the TypeScript build (tsc).
SHELL := /bin/bash
.DEFAULT_GOAL := build

APT_PACKAGES := build-essential python3 pkg-config libseccomp-dev nlohmann-json3-dev busybox-static zstd \
                iproute2 iptables tmux runc procps docker-registry skopeo apache2-utils openssl
# git, bzip2: remote build contexts (POST /build?remote=…): Git repositories, .tar.bz2 archives
APT_PACKAGES += git bzip2
# real Docker API clients for the compat tests (test/compat)
APT_PACKAGES += python3-docker
# docker-compose v1 (python, on docker-py) for test/integration/compose.test.ts
APT_PACKAGES += docker-compose
# PostgreSQL's server, initdb, pg_isready and psql, from which test/integration/compat-app.test.ts
# makes its database image offline (the app image takes the node that runs the tests)
APT_PACKAGES += postgresql-15
# the cgroup v2 test VM (make vm-test, tools/vm-run): qemu, a Debian kernel with 9p modules, cpio
APT_PACKAGES += qemu-system-x86 linux-image-amd64 cpio xz-utils
# make lint / make format: the C++ formatter for native/ (.clang-format)
APT_PACKAGES += clang-format
# rootless skiffd (a non-root user's bin/skiffd): the user namespace from /etc/subuid (newuidmap,
# newgidmap), rootlesskit for the namespaces and the port API, slirp4netns for the network
APT_PACKAGES += rootlesskit slirp4netns uidmap
# rootless: fuse-overlayfs for container roots where the kernel's overlayfs cannot be mounted in
# the user namespace (old kernel, data root without user.* xattrs); the kernel's stays first
APT_PACKAGES += fuse-overlayfs
# the cgroup lab's browser view (skiffd --ui-addr) is tested in a real browser: Debian's chromium,
# driven by playwright-core from npm
APT_PACKAGES += chromium
# swarm mode: managers run Debian's etcd (raft) as the cluster's store; etcdctl for the tests
APT_PACKAGES += etcd-server etcd-client
NATIVE_CXX := $(shell find native -name '*.cc' -o -name '*.h')
NATIVE_SOURCES := $(NATIVE_CXX) binding.gyp
TS_SOURCES := $(shell find src cli bench -name '*.ts') tsconfig.json
# What ESLint (eslint.config.mjs) and Prettier (.prettierrc) look at.
LINT_DIRS := src cli bench test
NATIVE_OUT := build/Release/skiff_native.node build/Release/skiff-init build/Release/skiff-monitor

# Test flags: unit tests need nothing; integration tests need root and a real kernel.
JEST_FLAGS ?=

.PHONY: deps build start lint format test unit integration vm-test bench peers clean

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

# The cgroup, isolation and lifecycle integration tests inside a throwaway qemu VM with a pure
# cgroup v2 hierarchy (test/vm/run-suite, tools/vm-run; see README "cgroup v2 VM").
vm-test: build
	test/vm/run-suite

# Lint and format checks (issue 13: so the shape stays): ESLint's rules, including the function
# size limit; Prettier's and clang-format's layout, checked only (`make format` applies them).
lint: deps
	npx eslint $(LINT_DIRS)
	npx prettier --check --log-level warn $(LINT_DIRS)
	clang-format --dry-run --Werror $(NATIVE_CXX)

format: deps
	npx prettier --write --log-level warn $(LINT_DIRS)
	clang-format -i $(NATIVE_CXX)

# Every test, after the lint checks; integration files run one at a time (they share cgroups,
# CPU and the kernel).
# Tests are type-checked first: ts-jest compiles them without type checks.
# Then the VM suite (pure cgroup v2), unless this machine cannot run qemu at all (one line says
# so); a failure of either fails the target.
test: lint build
	npx tsc -p tsconfig.test.json
	@rc=0; npx jest --runInBand $(JEST_FLAGS) || rc=$$?; \
	test/vm/run-suite --if-possible || rc=1; \
	exit $$rc

# The peer the benchmarks compare with: Debian's dockerd (docker.io, with its containerd),
# unpacked into .peers rather than installed, so that it never replaces the docker CLI or starts
# a system daemon; the benches start it in their own namespaces and folders.
PEER_PACKAGES := docker.io containerd
peers: deps
	@if [ ! -x .peers/usr/sbin/dockerd ]; then \
	  rm -rf .peers.tmp && mkdir -p .peers.tmp && cd .peers.tmp && \
	  apt-get download $(PEER_PACKAGES) && for d in *.deb; do dpkg -x "$$d" ../.peers; done && \
	  cd .. && rm -rf .peers.tmp; \
	fi

bench: build peers
	node dist/bench/runtime.js
	node dist/bench/pull.js
	node dist/bench/api.js
	node dist/bench/network.js
	node dist/bench/rootless.js
	node dist/bench/build.js
	node dist/bench/metrics.js
	node dist/bench/cli.js
	node dist/bench/swarm.js

clean:
	rm -rf build dist
