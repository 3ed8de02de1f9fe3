#!/usr/bin/env bash
# Installs Debian's prometheus package (prometheus and promtool in /usr/bin)
# for the dashboard and alert-rule checks (tests/e2e/prometheus-rules.test.ts,
# `promtool check rules` in .ci/run). Idempotent and quiet: nothing to do when
# both binaries are there. The package would start its own systemd service
# (listening on :9090); the tests start their own Prometheus on a loopback port
# instead, so while apt-get runs a policy-rc.d that refuses service starts is
# put in place (invoke-rc.d and deb-systemd-invoke both consult it), unless
# the machine already has one (Docker images do).
#
#   bash scripts/prometheus/install.sh   (root and apt-get needed: a fresh Debian machine, as in CI)
set -euo pipefail

if [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ]; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "prometheus is needed for the dashboard and alert checks: apt-get install prometheus (as root)" >&2
  exit 1
fi

POLICY=/usr/sbin/policy-rc.d
placed_policy=""
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# placed by prefix-router scripts/prometheus/install.sh while apt-get runs\nexit 101\n' >"$POLICY"
  chmod 755 "$POLICY"
  placed_policy="yes"
fi
cleanup() { if [ -n "$placed_policy" ]; then rm -f "$POLICY"; fi; }
trap cleanup EXIT

echo "installing prometheus (apt-get; its service is not started)" >&2
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2> >(grep -v "^debconf: delaying" >&2)
/usr/bin/prometheus --version 2>&1 | head -1 >&2
