#!/usr/bin/env bash
# Fetches the CustomResourceDefinitions the Kubernetes manifests in envoy/k8s/
# are written against, for tests/e2e/k8s-schemas.test.ts: Envoy Gateway's own
# and the Gateway API's (github.com/envoyproxy/gateway, which ships both) and
# Istio's (istio.io/api). Both come from the Go module proxy as module zips,
# pinned by version and checked against their SHA-256; only the CRD files are
# kept, in .k8s-schemas/ (not committed). Idempotent and quiet: nothing to do
# when the files are there.
#
#   bash scripts/k8s/install-schemas.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

DEST=.k8s-schemas
# The Envoy Gateway release the manifest is checked against (envoy/k8s/envoy-gateway/prefix-router.yaml).
EG_VERSION=v1.9.1
EG_SHA256=bf9a96d6a5ff39739ae23add1f199ae34e7af21a82ce80d89fb515705ea65a1e
ISTIO_API_VERSION=v1.32.0
ISTIO_API_SHA256=127b4bd504fd0ab365d31dd97a2ad81ea8c5cc4093ff2a90d0d947744d3504c8
STAMP="$DEST/versions"
WANT="envoy-gateway $EG_VERSION, istio.io/api $ISTIO_API_VERSION"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi
rm -rf "$DEST"
mkdir -p "$DEST"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

fetch() { # module version sha256 file
  curl -fsS --retry 3 -m 300 -o "$4" "https://proxy.golang.org/$1/@v/$2.zip"
  echo "$3  $4" | sha256sum -c --quiet -
}
# Copies the zip's members under $2 whose names end in one of the given suffixes into $DEST (flat).
extract() { # zip prefix suffix...
  python3 - "$@" "$DEST" <<'PY'
import os, sys, zipfile
zip_path, prefix, *suffixes, dest = sys.argv[1:]
with zipfile.ZipFile(zip_path) as z:
    found = 0
    for name in z.namelist():
        if name.startswith(prefix) and any(name.endswith(s) for s in suffixes):
            with open(os.path.join(dest, os.path.basename(name)), "wb") as out:
                out.write(z.read(name))
            found += 1
    if found != len(suffixes):
        sys.exit(f"{zip_path}: expected {len(suffixes)} files under {prefix}, found {found}")
PY
}

echo "fetching Envoy Gateway $EG_VERSION and istio.io/api $ISTIO_API_VERSION CRDs (Go module proxy)" >&2
fetch github.com/envoyproxy/gateway "$EG_VERSION" "$EG_SHA256" "$tmp/eg.zip"
extract "$tmp/eg.zip" "github.com/envoyproxy/gateway@$EG_VERSION/charts/gateway-helm/charts/crds/crds/" \
  generated/gateway.envoyproxy.io_envoyproxies.yaml \
  generated/gateway.envoyproxy.io_envoyextensionpolicies.yaml \
  generated/gateway.envoyproxy.io_backendtrafficpolicies.yaml \
  generated/gateway.envoyproxy.io_clienttrafficpolicies.yaml \
  generated/gateway.envoyproxy.io_envoypatchpolicies.yaml \
  /gatewayapi-crds.yaml
fetch istio.io/api "$ISTIO_API_VERSION" "$ISTIO_API_SHA256" "$tmp/istio-api.zip"
extract "$tmp/istio-api.zip" "istio.io/api@$ISTIO_API_VERSION/kubernetes/" customresourcedefinitions.gen.yaml
echo "$WANT" > "$STAMP"
