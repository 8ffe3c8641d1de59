#!/usr/bin/env bash
# Builds the Kubernetes binaries (and etcd, CoreDNS, helm) from their Go modules through the Go module proxy,
# cached by version under $CACHE so a second run builds nothing.
# Usage: build-kubernetes.sh <cache-dir>
set -euo pipefail
# shellcheck source=versions.sh
source "$(dirname "${BASH_SOURCE[0]}")/versions.sh"
CACHE=${1:?cache dir}
STAGING_VERSION="v0.${K8S_VERSION#v1.}"
OUT="$CACHE/bin/kubernetes-$K8S_VERSION"
COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
STAGING=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider cluster-bootstrap
  code-generator component-base component-helpers controller-manager cri-api cri-client csi-translation-lib
  dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy
  kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission sample-apiserver sample-cli-plugin
  sample-controller)
export GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOTOOLCHAIN=local

have_all() { for c in "$@"; do [ -x "$OUT/$c" ] || return 1; done; }

if ! have_all "${COMPONENTS[@]}"; then
  mod="$CACHE/src/kubernetes-$K8S_VERSION"
  mkdir -p "$mod" "$OUT"
  cd "$mod"
  if [ ! -f go.mod ]; then
    { echo "module devloop.local/k8sbuild"; echo; echo "go 1.25.0"; echo; echo "godebug default=go1.25"; echo;
      for m in "${STAGING[@]}"; do echo "replace k8s.io/$m => k8s.io/$m $STAGING_VERSION"; done; } > go.mod
    echo "package main" > tools.go
    for c in "${COMPONENTS[@]}"; do go get -tool "k8s.io/kubernetes/cmd/$c@$K8S_VERSION"; done
  fi
  date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
    ld+=" -X $pkg.gitCommit=module-$K8S_VERSION -X $pkg.buildDate=$date"
  done
  for c in "${COMPONENTS[@]}"; do
    [ -x "$OUT/$c" ] && continue
    echo "$(date -u +%T) building $c $K8S_VERSION" >&2
    # kubelet needs cgo-free build too; all components build with CGO off.
    go build -trimpath -ldflags "$ld" -o "$OUT/$c.tmp" "k8s.io/kubernetes/cmd/$c"
    mv "$OUT/$c.tmp" "$OUT/$c"
  done
fi

ETCD_OUT="$CACHE/bin/etcd-$ETCD_VERSION"
if [ ! -x "$ETCD_OUT/etcd" ]; then
  mod="$CACHE/src/etcd-$ETCD_VERSION"; mkdir -p "$mod" "$ETCD_OUT"; cd "$mod"
  if [ ! -f go.mod ]; then
    printf 'module devloop.local/etcdbuild\n\ngo 1.25.0\n' > go.mod
    go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  fi
  echo "$(date -u +%T) building etcd $ETCD_VERSION" >&2
  go build -trimpath -ldflags "-s -w" -o "$ETCD_OUT/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$ETCD_OUT/etcd.tmp" "$ETCD_OUT/etcd"
fi

COREDNS_OUT="$CACHE/bin/coredns-$COREDNS_VERSION"
if [ ! -x "$COREDNS_OUT/coredns" ]; then
  mod="$CACHE/src/coredns-$COREDNS_VERSION"; mkdir -p "$mod" "$COREDNS_OUT"; cd "$mod"
  if [ ! -f go.mod ]; then
    printf 'module devloop.local/corednsbuild\n\ngo 1.25.0\n' > go.mod
    go get -tool "github.com/coredns/coredns@$COREDNS_VERSION"
  fi
  echo "$(date -u +%T) building coredns $COREDNS_VERSION" >&2
  go build -trimpath -ldflags "-s -w" -o "$COREDNS_OUT/coredns.tmp" github.com/coredns/coredns
  mv "$COREDNS_OUT/coredns.tmp" "$COREDNS_OUT/coredns"
fi
# helm, for rendering Helm charts (`helm template`) in tests and for users.
HELM_OUT="$CACHE/bin/helm-$HELM_VERSION"
if [ ! -x "$HELM_OUT/helm" ]; then
  mod="$CACHE/src/helm-$HELM_VERSION"; mkdir -p "$mod" "$HELM_OUT"; cd "$mod"
  if [ ! -f go.mod ]; then
    printf 'module devloop.local/helmbuild\n\ngo 1.25.0\n' > go.mod
    go get -tool "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  fi
  echo "$(date -u +%T) building helm $HELM_VERSION" >&2
  go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    -o "$HELM_OUT/helm.tmp" helm.sh/helm/v3/cmd/helm
  mv "$HELM_OUT/helm.tmp" "$HELM_OUT/helm"
fi
echo "$OUT"
