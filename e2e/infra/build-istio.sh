#!/usr/bin/env bash
# Builds istiod (pilot-discovery) and istioctl from the istio.io/istio module through the Go module proxy, into
# $CACHE/bin/istio-<version>/, unless both are there already. A small module lists both commands as tools (no
# replace directives needed) and builds them in one `go build`, so the packages they share are compiled once and
# the two links run in parallel.
# Usage: build-istio.sh <cache-dir>
set -euo pipefail
# shellcheck source=versions.sh
source "$(dirname "${BASH_SOURCE[0]}")/versions.sh"
CACHE=${1:?cache dir}
OUT="$CACHE/bin/istio-$ISTIO_VERSION"
PKGS=(istio.io/istio/pilot/cmd/pilot-discovery istio.io/istio/istioctl/cmd/istioctl)
export GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOTOOLCHAIN=local
start=$SECONDS

[ -x "$OUT/pilot-discovery" ] && [ -x "$OUT/istioctl" ] && { echo "$OUT"; exit 0; }
mod="$CACHE/src/istio-$ISTIO_VERSION"
mkdir -p "$mod" "$OUT"
cd "$mod"
if [ ! -f go.mod ]; then
  printf 'module devloop.local/istiobuild\n\ngo 1.26.0\n' > go.mod.tmp && mv go.mod.tmp go.mod
  echo "package main" > tools.go
  echo "$(date -u +%T) resolving istio.io/istio@$ISTIO_VERSION" >&2
  go get -tool "${PKGS[@]/%/@$ISTIO_VERSION}"
fi
echo "$(date -u +%T) building pilot-discovery and istioctl $ISTIO_VERSION" >&2
tmp=$(mktemp -d "$OUT/.build.XXXXXX")
# -s -w: no symbol tables or DWARF (smaller, faster links); the version shows in `istioctl version --remote=false`.
go build -trimpath -ldflags "-s -w -X istio.io/istio/pkg/version.buildVersion=$ISTIO_VERSION -X istio.io/istio/pkg/version.buildStatus=Clean" \
  -o "$tmp/" "${PKGS[@]}"
mv "$tmp/pilot-discovery" "$tmp/istioctl" "$OUT/" && rmdir "$tmp"
echo "$(date -u +%T) built istio $ISTIO_VERSION in $((SECONDS - start))s" >&2
echo "$OUT"
