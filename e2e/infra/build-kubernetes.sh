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
# kubeadm provisions the kind node (it runs inside the node image, see lib/kind.sh).
COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl kubeadm)
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
  fi
  # A module made before a component joined the list lacks its tool line: add what is missing.
  for c in "${COMPONENTS[@]}"; do
    grep -qF "k8s.io/kubernetes/cmd/$c" go.mod || go get -tool "k8s.io/kubernetes/cmd/$c@$K8S_VERSION"
  done
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

# build_module_tool <name> <version> <package> [ldflags]: one program from its Go module (no replace directives
# needed), into $CACHE/bin/<name>-<version>/<name>, unless it is there already.
build_module_tool() {
  local name=$1 version=$2 pkg=$3 ldflags=${4:-}
  local out="$CACHE/bin/$name-$version" mod="$CACHE/src/$name-$version"
  [ -x "$out/$name" ] && return 0
  mkdir -p "$mod" "$out"
  (
    cd "$mod"
    if [ ! -f go.mod ]; then
      printf 'module devloop.local/%sbuild\n\ngo 1.25.0\n' "$name" > go.mod
      go get -tool "$pkg@$version"
    fi
    echo "$(date -u +%T) building $name $version" >&2
    go build -trimpath -ldflags "-s -w $ldflags" -o "$out/$name.tmp" "$pkg"
  )
  mv "$out/$name.tmp" "$out/$name"
}

build_module_tool etcd "$ETCD_VERSION" go.etcd.io/etcd/server/v3
build_module_tool coredns "$COREDNS_VERSION" github.com/coredns/coredns
# helm, for rendering Helm charts (`helm template`) in tests and for users.
build_module_tool helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
# kind, for the kind cluster (its node image is assembled locally, see lib/kind.sh).
build_module_tool kind "$KIND_VERSION" sigs.k8s.io/kind
build_module_tool crictl "$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION"
echo "$OUT"
