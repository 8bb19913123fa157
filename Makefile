# gingham: the only entry point for building, generating and testing.
SHELL := /bin/bash
BIN   := $(CURDIR)/bin
GO    ?= go
PKGS  := ./...
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/gingham-net/gingham/internal/version.Version=$(VERSION)

# Tests find kube-apiserver and etcd here (envtest), and fail instead of
# skipping when something they need is missing.
export KUBEBUILDER_ASSETS := $(BIN)
export GINGHAM_TEST_REQUIRE := 1

.PHONY: all tools build generate verify vet fmt test test-unit lab lab-down clean

all: build

## tools: install etcd, BIRD, FRR, qemu, CNI plugins (Debian) and build kube-apiserver, controller-gen into bin/
tools:
	@hack/install-tools.sh

$(BIN)/kube-apiserver $(BIN)/controller-gen $(BIN)/etcd:
	@hack/install-tools.sh

## build: all binaries into bin/ (the CNI binary is installed as gingham and gingham-ipam)
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...
	@ln -sf gingham-cni $(BIN)/gingham && ln -sf gingham-cni $(BIN)/gingham-ipam
	CGO_ENABLED=0 $(GO) build -o $(BIN)/gobgp github.com/osrg/gobgp/v4/cmd/gobgp

## generate: deepcopy and CRDs (deploy/crds) from the markers in api/
generate: $(BIN)/controller-gen
	$(BIN)/controller-gen object:headerFile=hack/boilerplate.go.txt paths=./api/...
	$(BIN)/controller-gen crd:crdVersions=v1 paths=./api/... output:crd:dir=deploy/crds
	$(GO) run ./hack/crdgen deploy/crds

## verify: fail when generated files, go.mod or formatting are stale
verify: generate
	$(GO) mod tidy
	cd hack/tools && $(GO) mod tidy
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	@git diff --exit-code -- api deploy go.mod go.sum hack/tools || { echo "generated files are stale: run make generate / go mod tidy"; exit 1; }

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

fmt:
	gofmt -w $$(git ls-files '*.go')

## test: tools, build, image, vet, then every test with -race (integration tests on the real kube-apiserver; privileged tests as root; TestCluster: a real 3-node cluster with gingham from deploy/ and the upstream Granular Checks)
test: tools build image vet
	@[ "$$(id -u)" = 0 ] || { echo "make test runs privileged network-namespace tests and must run as root"; exit 1; }
	GINGHAM_IMAGE_TAG=$(VERSION) $(GO) test -race -count=1 -timeout 25m $(PKGS)

## test-unit: only the tests that need neither root nor the API server
test-unit:
	GINGHAM_TEST_REQUIRE= $(GO) test -race -short $(PKGS)

clean:
	rm -rf $(BIN)

.PHONY: cluster cluster-down test-conformance

CLUSTER_FLAGS ?=
## cluster: a real Kubernetes cluster on this machine (control plane; 3 nodes with containerd, kubelet, kube-proxy behind FRR ToRs), gingham installed from deploy/ with kubectl, a pod matrix printed; left running (root)
cluster: tools build image
	@[ "$$(id -u)" = 0 ] || { echo "make cluster needs root (namespaces, cgroups, mounts)"; exit 1; }
	$(GO) run ./test/cluster up -image-tag $(VERSION) $(CLUSTER_FLAGS)

## test-conformance: Kubernetes' network conformance specs (Granular Checks: Pods and every [sig-network] [Conformance] spec this kernel can run) on a fresh cluster with gingham, then with the bridge baseline, into docs/conformance.md (root; ~40 min)
test-conformance: tools build image
	@[ "$$(id -u)" = 0 ] || { echo "make test-conformance needs root (namespaces, cgroups, mounts)"; exit 1; }
	$(GO) run ./test/cluster conformance -run-dir /var/tmp/gingham-conformance -image-tag $(VERSION) $(CLUSTER_FLAGS)

## cluster-down: remove the cluster and show the host is as it was before make cluster
cluster-down:
	$(GO) run ./test/cluster down

.PHONY: test-lab

## lab: a two-rack cluster in network namespaces (FRR ToRs, BIRD spine, gingham-node, pods), checked and left running
lab: tools build
	$(GO) run ./test/lab up

## lab-down: remove everything make lab created, and show that nothing is left
lab-down:
	$(GO) run ./test/lab down

## test-lab: the lab's topology as tests (harness checks, then the connectivity matrix with the agent)
test-lab: tools build
	@[ "$$(id -u)" = 0 ] || { echo "make test-lab needs root (network namespaces)"; exit 1; }
	$(GO) test -race -count=1 -timeout 10m ./test/e2e/ -run Lab

.PHONY: test-vm

## test-vm: IPIP in a qemu VM (Debian's kernel has ipip, the host's does not): Always/CrossSubnet/Never, MTU, source address, forged IPIP (needs root, qemu; ~1-2 min)
test-vm: tools build
	@[ "$$(id -u)" = 0 ] || { echo "make test-vm needs root (the kernel image is root-only; device nodes in the initramfs)"; exit 1; }
	$(GO) test -count=1 -timeout 10m -v -run 'TestVMIPIPModes|TestVMAgentsIPIPModes' ./test/vm/
	$(GO) test -race -count=1 ./ipip/

FUZZTIME ?= 10s
# FuzzLoadConf (cni/ipamplugin) runs only its seeds, in make test: its
# package starts an API server in TestMain, which every fuzz worker would repeat.
FUZZ_TARGETS := FuzzParse:./api/selector FuzzPoolFromAPI:./api/model FuzzPeerFromAPI:./api/model FuzzParseConf:./cni/attach

.PHONY: fuzz
## fuzz: run the fuzz targets for FUZZTIME each (their seed corpora also run in make test)
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do echo "fuzz $${t%%:*} ($(FUZZTIME))"; $(GO) test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime $(FUZZTIME) $${t#*:}; done

.PHONY: bench-bgp

## bench-bgp: the BGP benchmarks (B3 ingest, B4 BGP->FIB, B5 mesh, B6 propagation, B10 failover, B11 footprint) beside BIRD/FRR/gobgpd in network namespaces, Markdown to stdout (add -results DIR for JSON); root; ~12 min; not part of make test
BENCH_BGP_FLAGS ?=
bench-bgp: tools build
	@[ "$$(id -u)" = 0 ] || { echo "make bench-bgp needs root (network namespaces)"; exit 1; }
	$(GO) run ./test/bench $(BENCH_BGP_FLAGS)

.PHONY: bench

## bench: the benchmark suite B1-B12 of the performance notes (§7), each beside its references in the same run, 3 repetitions, into docs/benchmarks.md + docs/bench/*.svg; root; ~20 min; results kept in BENCH_RESULTS
BENCH_RESULTS ?= /var/tmp/gingham-bench
# Extra flags of the BGP part (./test/bench, B3-B6, B10, B11); its defaults fit the budget.
BENCH_SUITE_BGP_FLAGS ?=
BENCHSUITE := $(BIN)/benchsuite
bench: tools build image
	@[ "$$(id -u)" = 0 ] || { echo "make bench needs root (network namespaces)"; exit 1; }
	$(GO) build -o $(BENCHSUITE) ./test/benchsuite
	@r='$(BENCH_RESULTS)'; s='$(BENCHSUITE)'; rc=0; \
	$$s begin -results "$$r" -command 'make bench' || exit 1; \
	$$s step -results "$$r" -name micro -- $$s micro -results "$$r" || rc=1; \
	$$s step -results "$$r" -name dataplane -- $$s dataplane -results "$$r" || rc=1; \
	$$s step -results "$$r" -name bgp -- $(GO) run ./test/bench -results "$$r" $(BENCH_SUITE_BGP_FLAGS) || rc=1; \
	$$s step -results "$$r" -name cluster -- $$s cluster -results "$$r" -image-tag $(VERSION) || rc=1; \
	$$s end -results "$$r"; \
	$$s report -results "$$r" -out docs/benchmarks.md -charts docs/bench -notes docs/benchmarks-notes.md || rc=1; \
	[ $$rc = 0 ] || echo "make bench: a part failed (see above); the report has what was measured"; \
	exit $$rc

.PHONY: test-reliability

## test-reliability: issue 9's reliability tests in their long variants (API server outage, killed CNI ADDs + IPAM GC, IPAM write faults, agent restarts, peer failure, hostile BGP peers, TCP-MD5, RBAC) plus RELIABILITY_FUZZTIME (20000x) of fuzzing per target, reported in docs/reliability.md (written even when a test fails; raw go test -json in bin/); root; ~20 min
RELIABILITY_JSON := $(BIN)/reliability.json
# Fuzzing budget per target, as an execution count: a duration budget races
# Go 1.26's fuzz coordinator at its deadline on a loaded machine ("context
# deadline exceeded" with no failing input, go.dev/issue/75804).
RELIABILITY_FUZZTIME ?= 20000x
test-reliability: tools build
	@[ "$$(id -u)" = 0 ] || { echo "make test-reliability needs root (network namespaces)"; exit 1; }
	@j='$(RELIABILITY_JSON)'; rc=0; : > "$$j"; \
	run() { echo "test-reliability: go test $$*"; GINGHAM_RELIABILITY_LONG=1 $(GO) test -race -count=1 -json "$$@" >> "$$j" || { rc=1; echo "test-reliability: FAILED: go test $$*"; }; }; \
	run -run '^(TestClaimFaults|TestGC.*)$$' ./ipam/; \
	run -run '^TestRBAC$$' ./deploy/; \
	run -run 'FailureReleases' ./cni/attach/; \
	run -run 'MD5' ./bgp/gobgp/; \
	run -timeout 90m -run '^(TestReliability.*|TestAgentRouteReflector|TestAgentMesh)$$' ./test/e2e/; \
	for t in $(FUZZ_TARGETS); do echo "test-reliability: fuzz $${t%%:*} ($(RELIABILITY_FUZZTIME))"; \
		$(GO) test -json -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime $(RELIABILITY_FUZZTIME) $${t#*:} >> "$$j" || { rc=1; echo "test-reliability: FAILED: fuzz $${t%%:*}"; }; done; \
	$(GO) run ./hack/reliability-report -in "$$j" -out docs/reliability.md -check \
		-command "make test-reliability: go test -race with GINGHAM_RELIABILITY_LONG=1, then each fuzz target for -fuzztime $(RELIABILITY_FUZZTIME)" || rc=1; \
	exit $$rc

.PHONY: image

## image: container images as OCI archives in bin/images/<name>.tar, with no registry, container engine or base image (hack/image): ghcr.io/gingham-net/gingham:$(VERSION) laid out as deploy/image-layout says, and pause, busybox, agnhost (the tags the pinned e2e suite asks for) and coredns, for ctr -n k8s.io images import
image: tools build
	$(GO) run ./hack/image -bin $(BIN) -out $(BIN)/images -version $(VERSION)
