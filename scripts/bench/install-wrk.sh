#!/usr/bin/env bash
# Installs Debian's wrk package (/usr/bin/wrk), the load generator of the
# real-Envoy load test and soak (npm run bench:envoy, soak:envoy;
# scripts/bench/wrk.ts) and of their CI smoke test
# (tests/e2e/envoy-load-smoke.test.ts). Idempotent and quiet: nothing to do
# when wrk is on PATH (where wrk.ts looks for it). apt-get needs root: as root
# it runs directly, otherwise through sudo where sudo works without a password
# (sudo -n); else the script says what to run and fails.
#
#   bash scripts/bench/install-wrk.sh   (apt-get and root, or passwordless sudo: a fresh Debian machine, as in CI)
set -euo pipefail

if command -v wrk >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "wrk is needed for the real-Envoy load test: install it (Debian: apt-get install wrk) and put it on PATH" >&2
  exit 1
fi
if [ "$(id -u)" = "0" ]; then
  as_root() { "$@"; }
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root() { sudo -n "$@"; }
else
  echo "wrk is needed for the real-Envoy load test: apt-get install wrk (as root), or run this script as root" >&2
  exit 1
fi

echo "installing wrk (apt-get)" >&2
as_root apt-get update -qq >&2
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null 2> >(grep -v "^debconf: delaying" >&2)
if ! command -v wrk >/dev/null 2>&1; then
  echo "apt-get installed wrk, but it is not on PATH ($PATH)" >&2
  exit 1
fi
# wrk 4.1 prints its version with its usage and exits 1.
version="$(wrk --version 2>&1 || true)"
echo "${version%%$'\n'*}" >&2
