#!/usr/bin/env bash
# The web part's tests, as CI runs them (after `make build` and `make model`):
#   1. chromium via apt if missing;
#   2. web/sdk: npm ci, npm run build, and a check that the built SDK equals the
#      committed copy in web/static/sdk (the one bin/earshot embeds);
#   3. node --test test/: the SDK's unit tests and its live tests against a real
#      `earshot serve --demo` (real Redis, real tiny.en), started by the tests;
#   4. scripts/browser-test.sh: the demo page in headless Chromium with a fake mic.
# Artifacts (screenshot, test logs) go to ${ARTIFACTS:-web/sdk/test-artifacts}.
# Env: EARSHOT_BIN (default bin/earshot), CHROMIUM (default /usr/bin/chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export ARTIFACTS=${ARTIFACTS:-web/sdk/test-artifacts}
case $ARTIFACTS in /*) ;; *) ARTIFACTS=$root/$ARTIFACTS ;; esac
mkdir -p "$ARTIFACTS"
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
export EARSHOT_BIN=${EARSHOT_BIN:-$root/bin/earshot}
start=$SECONDS

die() { echo "web-test: $*" >&2; exit 1; }
step() { echo "==> web-test: $* ($((SECONDS - start)) s)"; }

[[ -x $EARSHOT_BIN ]] || die "$EARSHOT_BIN not found: run 'make build' and 'make model' first (or set EARSHOT_BIN)"
command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed: run 'make deps'"
command -v redis-server >/dev/null || die "redis-server is needed: run 'make deps'"

if [[ ! -x $CHROMIUM ]]; then
  step "installing chromium"
  sudo=; [[ $(id -u) == 0 ]] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null \
    || die "could not install chromium with apt"
fi

step "npm ci && npm run build (web/sdk)"
static_sum() { find web/static -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum; }
before=$(static_sum)
# (before the build, which rewrites web/static/sdk)
newer=$(find web/static gateway -type f -newer "$EARSHOT_BIN" -print -quit)
(cd web/sdk && npm ci --no-audit --no-fund --loglevel=error && npm run build) || die "building the SDK failed"

# The built SDK must be what is committed: bin/earshot embeds web/static/sdk.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  if ! git diff --exit-code --stat web/static/sdk; then
    if git diff --quiet HEAD -- web/sdk/src web/sdk/package.json web/sdk/package-lock.json web/sdk/tsconfig.json; then
      die "web/static/sdk is stale: it differs from what web/sdk builds. Run 'cd web/sdk && npm run build' and commit web/static/sdk."
    fi
    echo "web-test: WARNING: web/static/sdk differs from HEAD, as do uncommitted SDK sources; commit the rebuilt web/static/sdk with them" >&2
  fi
fi
# bin/earshot serves the demo page and SDK from its embedded copy: a binary built
# before the web files changed would test old files.
if [[ $(static_sum) != "$before" || -n $newer ]]; then
  if [[ $EARSHOT_BIN == "$root/bin/earshot" ]]; then
    step "web/static or gateway changed after bin/earshot was built: make build"
    make build >/dev/null || die "make build failed"
  else
    echo "web-test: WARNING: $EARSHOT_BIN is older than web/static or gateway; the tests may see old files" >&2
  fi
fi

step "node --test test/ (SDK unit and live tests)"
if ! (cd web/sdk && node --test test/) 2>&1 | tee "$ARTIFACTS/sdk-tests.tap"; then
  die "SDK tests failed (log: $ARTIFACTS/sdk-tests.tap)"
fi

step "scripts/browser-test.sh (demo page in headless Chromium)"
if ! scripts/browser-test.sh 2>&1 | tee "$ARTIFACTS/browser-test.log"; then
  die "browser test failed (log: $ARTIFACTS/browser-test.log, screenshot: $ARTIFACTS/demo.png)"
fi

step "all web tests passed; artifacts in $ARTIFACTS"
