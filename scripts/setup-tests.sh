#!/usr/bin/env bash
# Installs (or checks) everything the test suite needs. .ci/run always runs it.
# The tests need the Rust toolchain with rustfmt and clippy, Chromium for the buddy
# page's browser test, node with the npm packages of tests/js for the interop test,
# PostgreSQL for the PostgreSQL backend's tests, and
# both binaries installed with `cargo install --path` into target/install-check.
# Under CI=true a missing dependency is an error, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

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

# A browser for the buddy page's end-to-end test (tests/tests/e2e/browser.rs): Debian's
# chromium, installed here when missing and this user may install packages.
have_chromium() { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }
if ! have_chromium; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup-tests: installing chromium (apt-get)" >&2
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 || true
  fi
  if ! have_chromium; then
    if [ "${CI:-}" = "true" ]; then
      missing+=("chromium (apt-get install chromium) for the buddy page test")
    else
      echo "setup-tests: chromium is missing; the browser test will be skipped (apt-get install chromium)" >&2
    fi
  fi
fi

# A real automerge-repo client for the interop test (tests/tests/e2e/interop.rs): the npm
# packages pinned by tests/js/package-lock.json. `npm install` installs exactly those
# versions (`npm ci` of npm 11 refuses the lockfile over cbor-extract's optional
# per-platform packages, which npm leaves out of it).
have_node() { command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; }
if ! have_node && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "setup-tests: installing node and npm (apt-get)" >&2
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null 2>&1 || true
fi
if have_node; then
  if ! (cd tests/js && npm install --no-audit --no-fund --loglevel=error >/dev/null); then
    missing+=("the npm packages of tests/js (cd tests/js && npm install)")
  fi
elif [ "${CI:-}" = "true" ]; then
  missing+=("node and npm (apt-get install nodejs npm) for the automerge-repo interop test")
else
  echo "setup-tests: node/npm are missing; the interop test will be skipped (apt-get install nodejs npm)" >&2
fi

# PostgreSQL for the PostgreSQL backend's tests (crates/store/tests/postgres.rs): Debian's
# postgresql package, installed here when missing. The tests start a throwaway cluster of
# their own (nudge-testkit's postgres.rs) and stop it; the package's own cluster is not
# used, and as root they run it as the package's `postgres` user (through util-linux's
# setpriv).
have_postgres() {
  command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ] && return 0
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}
if ! have_postgres && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "setup-tests: installing postgresql (apt-get)" >&2
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null 2>&1 || true
fi
if ! have_postgres || ! command -v setpriv >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ]; then
    missing+=("PostgreSQL and setpriv (apt-get install postgresql util-linux) for the PostgreSQL backend's tests")
  else
    echo "setup-tests: PostgreSQL is missing; its tests will say they skipped (apt-get install postgresql)" >&2
  fi
fi

# README's install commands, checked by tests/tests/e2e/install.rs: both binaries
# installed into target/install-check (debug profile, sharing the workspace's build; done
# here because re-linking target/debug while tests run would pull binaries from under them).
if command -v cargo >/dev/null 2>&1; then
  mkdir -p target
  for package in client-cli server; do
    if ! CARGO_TARGET_DIR="$PWD/target" cargo install --quiet --path "$package" --debug --locked \
        --root target/install-check >/dev/null 2>target/install-check.log; then
      cat target/install-check.log >&2
      missing+=("a working \`cargo install --path $package\` (see the errors above)")
    fi
  done
fi

if [ ${#missing[@]} -gt 0 ]; then
  for m in "${missing[@]}"; do echo "setup-tests: missing: $m" >&2; done
  exit 1
fi
echo "setup-tests: ready ($(cargo --version); $(chromium --version 2>/dev/null || echo 'no chromium'); node $(node --version 2>/dev/null || echo 'missing'); $(ls -d /usr/lib/postgresql/*/ 2>/dev/null | tail -1 | xargs -r basename | sed 's/^/PostgreSQL /'))"
