# Host packages from Debian and the Go toolchain check.
# shellcheck shell=bash

# command-or-path → Debian package that provides it.
declare -A DEBIAN_PACKAGES=(
  [dockerd]=docker.io
  [docker-registry]=docker-registry
  [containerd]=containerd
  [runc]=runc
  [/usr/lib/cni/bridge]=containernetworking-plugins
  [conntrack]=conntrack
  [iptables]=iptables
  [debootstrap]=debootstrap
  [openssl]=openssl
  [curl]=curl
  [unzip]=unzip
  [jq]=jq
  [ip]=iproute2
  [ss]=iproute2
)

have() { if [[ $1 == /* ]]; then [ -e "$1" ]; else command -v "$1" >/dev/null 2>&1; fi; }

ensure_packages() {
  local missing=() what
  for what in "${!DEBIAN_PACKAGES[@]}"; do have "$what" || missing+=("${DEBIAN_PACKAGES[$what]}"); done
  if ((${#missing[@]})); then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
  fi
  ensure_go
}

# The Kubernetes build and the golang stand-in image use this machine's Go (>= 1.25 for the Kubernetes module).
# Without one, the toolchain is fetched from the Go module proxy (golang.org/toolchain), as GOTOOLCHAIN does.
GO_MIN_MINOR=25
ensure_go() {
  local minor
  if command -v go >/dev/null 2>&1; then
    minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
    [ "$minor" -ge "$GO_MIN_MINOR" ] 2>/dev/null && return 0
  fi
  local version=${GO_FALLBACK_VERSION:-go1.26.8}
  local root=$CACHE/go-$version
  if [ ! -x "$root/bin/go" ]; then
    local proxy=${GOPROXY:-https://proxy.golang.org}; proxy=${proxy%%,*}
    local zip=$CACHE/downloads/toolchain-$version.zip
    mkdir -p "$CACHE/downloads"
    log "fetching Go toolchain $version from $proxy"
    curl -fsSL -o "$zip.tmp" "$proxy/golang.org/toolchain/@v/v0.0.1-$version.linux-amd64.zip" \
      || die "could not download the Go toolchain $version (install Go >= 1.$GO_MIN_MINOR and retry)"
    mv "$zip.tmp" "$zip"
    rm -rf "$root.tmp" && mkdir -p "$root.tmp" && unzip -q "$zip" -d "$root.tmp"
    mv "$root.tmp/golang.org/toolchain@v0.0.1-$version.linux-amd64" "$root" && rm -rf "$root.tmp"
  fi
  export PATH=$root/bin:$PATH GOTOOLCHAIN=local
}
