#!/usr/bin/env bash
# Installs (or checks) everything the test suite needs. .ci/run always runs it.
# Today the tests need only the Rust toolchain with rustfmt and clippy; later issues add
# their dependencies here (a browser, npm packages), installed from lockfiles.
# Under CI=true a missing dependency is an error, never a skip.
set -euo pipefail

missing=()
command -v cargo >/dev/null 2>&1 || missing+=("cargo (the Rust toolchain, 1.90 or newer)")
if command -v cargo >/dev/null 2>&1; then
  cargo fmt --version >/dev/null 2>&1 || {
    command -v rustup >/dev/null 2>&1 && rustup component add rustfmt >/dev/null 2>&1 || true
    cargo fmt --version >/dev/null 2>&1 || missing+=("rustfmt (rustup component add rustfmt)")
  }
  cargo clippy --version >/dev/null 2>&1 || {
    command -v rustup >/dev/null 2>&1 && rustup component add clippy >/dev/null 2>&1 || true
    cargo clippy --version >/dev/null 2>&1 || missing+=("clippy (rustup component add clippy)")
  }
fi

if [ ${#missing[@]} -gt 0 ]; then
  for m in "${missing[@]}"; do echo "setup-tests: missing: $m" >&2; done
  exit 1
fi
echo "setup-tests: ready ($(cargo --version))"
