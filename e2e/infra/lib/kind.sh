# A real kind cluster, "devloop" (node container devloop-control-plane, context kind-devloop in its own kubeconfig),
# on infra's dockerd. Its node image is assembled here from local pieces: `kind build node-image` needs the network.
# shellcheck shell=bash

KIND_BIN_DIR=$CACHE/bin/kind-$KIND_VERSION
KIND=$KIND_BIN_DIR/kind
CRICTL=$CACHE/bin/crictl-$CRICTL_VERSION/crictl
KIND_CLUSTER=devloop
KIND_NODE=$KIND_CLUSTER-control-plane
KIND_CONTEXT=kind-$KIND_CLUSTER
KIND_KUBECONFIG=$KUBECONFIGS/kind-$KIND_CLUSTER.kubeconfig
# Apart from the host cluster's 10.244.0.0/24 and 10.96.0.0/16, so the host can route to both.
KIND_POD_CIDR=10.245.0.0/16
KIND_NODE_POD_CIDR=10.245.0.0/24
KIND_SERVICE_CIDR=10.97.0.0/16
KIND_DNS_IP=10.97.0.10
KIND_MARKER=$RUN_DIR/kind.created
# Debian packages of the node (kind's base image list, minus what only rootless or storage tests need).
KIND_NODE_PACKAGES=(systemd systemd-sysv containerd runc containernetworking-plugins iptables nftables iproute2
  conntrack ethtool socat kmod procps ca-certificates jq libseccomp2 util-linux mount)
RUNC_WRAPPER_NAME=devloop-runc
RUNC_WRAPPER=$STATE/bin/$RUNC_WRAPPER_NAME

export KIND_EXPERIMENTAL_PROVIDER=docker

kubectl_kind() { "$KUBECTL" --kubeconfig "$KIND_KUBECONFIG" --context "$KIND_CONTEXT" "$@"; }

# The node image's tag changes with everything that goes into it, so a changed recipe makes a new image (and `up`
# recreates the cluster on it).
kind_recipe_hash() {
  {
    cat "$INFRA_SRC/lib/kind.sh" "$INFRA_SRC/images/kind-node/Dockerfile" "$INFRA_SRC/runtime/devloop-runc"
    echo "$K8S_VERSION $KIND_VERSION $CRICTL_VERSION $ETCD_VERSION $COREDNS_VERSION $PAUSE_TAG $DEBIAN_SUITE"
  } | sha256sum | cut -c1-10
}
KIND_NODE_IMAGE=devloop/kind-node:$K8S_VERSION-$(kind_recipe_hash)
KIND_BASE_IMAGE=devloop/kind-base:$DEBIAN_SUITE-$(printf '%s ' "${KIND_NODE_PACKAGES[@]}" | sha256sum | cut -c1-10)

# The runc wrapper dockerd uses as its default runtime (see runtime/devloop-runc), at a path that does not depend on
# which checkout ran `up`.
install_runc_wrapper() {
  mkdir -p "$STATE/bin"
  write_file "$RUNC_WRAPPER" <"$INFRA_SRC/runtime/devloop-runc"
  chmod 755 "$RUNC_WRAPPER"
}

kind_files_dir() {
  local dir
  dir=$(cd "$STATE" && go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | jq -r .Dir) \
    || die "go mod download sigs.k8s.io/kind@$KIND_VERSION failed"
  [ -d "$dir/images/base/files" ] || die "$dir/images/base/files is missing"
  echo "$dir/images/base/files"
}

# The node's root file system: debootstrap with the node's packages, cached as a tarball.
build_kind_base() {
  local tarball=$CACHE/images/${KIND_BASE_IMAGE//[\/:]/-}.tar
  if [ ! -f "$tarball" ]; then
    local mirror; mirror=$(debian_mirror)
    local root; root=$(build_context)/rootfs
    mkdir -p "$CACHE/debs"
    log "debootstrap $DEBIAN_SUITE with the kind node's packages from $mirror"
    debootstrap --variant=minbase --cache-dir="$CACHE/debs" --include="$(IFS=,; echo "${KIND_NODE_PACKAGES[*]}")" \
      "$DEBIAN_SUITE" "$root" "$mirror" >"$LOG_DIR/debootstrap-kind.log" 2>&1 \
      || { show_log debootstrap-kind; die "debootstrap of the kind node failed"; }
    find "$root/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
    rm -rf "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/usr/share/info/* \
      "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/dev/* \
      "$root"/proc/* "$root"/sys/* "$root"/tmp/* "$root"/run/*
    mkdir -p "$CACHE/images"
    tar -C "$root" --numeric-owner -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$(dirname "$root")"
  fi
  docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$tarball" "$KIND_BASE_IMAGE" >/dev/null
}

# The images kubeadm asks for (`kubeadm config images list`), made around the binaries infra already has.
build_kind_control_plane_images() {
  local images; images=$("$K8S_BIN/kubeadm" config images list --kubernetes-version "$K8S_VERSION") \
    || die "kubeadm config images list failed"
  local ctx; ctx=$(build_context)
  cat >"$ctx/Dockerfile" <<'DOCKERFILE'
ARG BASE
FROM ${BASE}
ARG NAME
COPY ${NAME} /usr/local/bin/${NAME}
DOCKERFILE
  local image name
  KIND_CP_IMAGES=()
  for image in $images; do
    name=${image##*/}; name=${name%%:*}
    case $name in
      kube-apiserver | kube-controller-manager | kube-scheduler | kube-proxy)
        cp "$K8S_BIN/$name" "$ctx/"
        # kube-proxy programs iptables: it needs the node's userland, not an empty base.
        local base=gcr.io/distroless/static-debian12:latest
        [ "$name" = kube-proxy ] && base=$KIND_BASE_IMAGE
        docker_build --build-arg "BASE=$base" --build-arg "NAME=$name" -t "$image" "$ctx" ;;
      etcd)
        cp "$ETCD_BIN/etcd" "$ctx/"
        docker_build --build-arg BASE=gcr.io/distroless/static-debian12:latest --build-arg NAME=etcd -t "$image" "$ctx" ;;
      pause) docker tag "$PAUSE_IMAGE" "$image"; KIND_PAUSE_IMAGE=$image ;;
      coredns) docker tag "$COREDNS_IMAGE" "$image" ;;
      *) die "kubeadm asks for an image this script cannot make: $image" ;;
    esac
    KIND_CP_IMAGES+=("$image")
  done
  # The CoreDNS Deployment infra applies (manifests/coredns.yaml) uses the registry name.
  KIND_CP_IMAGES+=("$COREDNS_IMAGE")
  rm -rf "$ctx"
}

build_kind_node_image() {
  image_exists "$KIND_BASE_IMAGE" || build_kind_base
  build_kind_control_plane_images
  local ctx; ctx=$(build_context)
  cp -r "$(kind_files_dir)" "$ctx/files" && chmod -R u+w "$ctx/files"
  local d=$ctx/devloop
  mkdir -p "$d/usr/bin" "$d/usr/local/sbin" "$d/etc/containerd" "$d/etc/cni/net.d" "$d/etc/systemd/system/containerd.service.d"
  cp "$K8S_BIN/kubeadm" "$K8S_BIN/kubelet" "$K8S_BIN/kubectl" "$d/usr/bin/"
  mkdir -p "$d/usr/local/bin" && cp "$CRICTL" "$d/usr/local/bin/crictl"
  cp "$INFRA_SRC/runtime/devloop-runc" "$d/usr/local/sbin/devloop-runc"
  cp "$INFRA_SRC/images/kind-node/Dockerfile" "$ctx/"
  # kind's containerd config, adapted: Debian's containerd 1.6 (no fuse-overlayfs proxy), the local pause image,
  # restrict_oom_score_adj (no CAP_SYS_RESOURCE here), runc through the wrapper (privileged pods such as
  # kube-proxy ask for every capability), layers kept (nothing can be pulled again), Debian's CNI plugins.
  cat >"$d/etc/containerd/config.toml" <<TOML
version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$KIND_PAUSE_IMAGE"
  tolerate_missing_hugepages_controller = true
  restrict_oom_score_adj = true
[plugins."io.containerd.grpc.v1.cri".containerd]
  discard_unpacked_layers = false
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  base_runtime_spec = "/etc/containerd/cri-base.json"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true
    BinaryName = "/usr/local/sbin/devloop-runc"
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "/etc/cni/net.d"
TOML
  printf '[Service]\n# Negative OOM scores are refused on this machine (no CAP_SYS_RESOURCE).\nOOMScoreAdjust=0\n' \
    >"$d/etc/systemd/system/containerd.service.d/10-devloop.conf"
  # kindnetd is not on the Go module proxy; one node needs no more than a bridge.
  cat >"$d/etc/cni/net.d/10-devloop.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "kind-devloop",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "$KIND_NODE_POD_CIDR" }]], "routes": [{ "dst": "0.0.0.0/0" }] }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
JSON
  local stage=${KIND_NODE_IMAGE/kind-node:/kind-node-stage:}
  log "building $KIND_NODE_IMAGE"
  docker_build --build-arg "BASE=$KIND_BASE_IMAGE" --build-arg "K8S_VERSION=$K8S_VERSION" -t "$stage" "$ctx"
  # The control-plane images go into the node's containerd now (as `kind build node-image` does), without
  # unpacking (no overlay mounts needed): a containerd runs in a throwaway container of the stage image, imports
  # them, and the container is committed as the node image. kind mounts a volume on /var, which Docker fills from
  # the image, so the node starts with them.
  docker save -o "$ctx/images.tar" "${KIND_CP_IMAGES[@]}"
  local prep=devloop-kind-prep
  docker rm -f "$prep" >/dev/null 2>&1 || true
  docker run -d --name "$prep" --privileged --entrypoint /usr/bin/containerd -v "$ctx/images.tar:/images.tar:ro" \
    "$stage" >/dev/null || die "starting containerd in $stage failed"
  local i
  for ((i = 0; i < 100; i++)); do docker exec "$prep" ctr version >/dev/null 2>&1 && break; sleep 0.2; done
  docker exec "$prep" ctr -n k8s.io images import --no-unpack /images.tar >>"$LOG_DIR/image-build.log" 2>&1 \
    || { docker logs --tail 20 "$prep" >&2; docker rm -f "$prep" >/dev/null; die "importing the control-plane images into the node failed"; }
  docker kill --signal TERM "$prep" >/dev/null && docker wait "$prep" >/dev/null
  docker commit --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' "$prep" "$KIND_NODE_IMAGE" >/dev/null \
    || die "docker commit of the kind node failed"
  docker rm -f "$prep" >/dev/null
  docker rmi "$stage" >/dev/null 2>&1 || true
  rm -rf "$ctx"
}

kind_config() {
  cat <<YAML
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
name: $KIND_CLUSTER
networking:
  apiServerAddress: 127.0.0.1
  disableDefaultCNI: true
  podSubnet: $KIND_POD_CIDR
  serviceSubnet: $KIND_SERVICE_CIDR
nodes:
- role: control-plane
  image: $KIND_NODE_IMAGE
kubeadmConfigPatches:
- |
  kind: InitConfiguration
  # CoreDNS comes from manifests/coredns.yaml: kubeadm's forwards queries outside the cluster.
  skipPhases: [preflight, addon/coredns]
- |
  kind: KubeletConfiguration
  # cgroup v1 here; and negative OOM scores are refused (no CAP_SYS_RESOURCE).
  failCgroupV1: false
  oomScoreAdj: 0
- |
  kind: KubeProxyConfiguration
  oomScoreAdj: 0
YAML
}

kind_node_state() { docker inspect -f '{{.Config.Image}} {{.State.Running}}' "$KIND_NODE" 2>/dev/null; }
kind_node_ip() { docker inspect -f '{{with index .NetworkSettings.Networks "kind"}}{{.IPAddress}}{{end}}' "$KIND_NODE" 2>/dev/null; }
kind_api_ready() { kubectl_kind get --raw /readyz >/dev/null 2>&1; }
kind_node_ready() {
  [ "$(kubectl_kind get node "$KIND_NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

# Privileged containers must work on this engine (kind nodes are privileged).
kind_preflight() {
  docker run --rm --privileged --entrypoint true "debian:$DEBIAN_SUITE-slim" >/dev/null 2>>"$LOG_DIR/kind.log" && return 0
  local runtime; runtime=$(docker info --format '{{.DefaultRuntime}}' 2>/dev/null || echo '?')
  die "this Docker engine cannot run privileged containers (default runtime: $runtime), and kind needs them; \
an engine started by infra.sh uses $RUNC_WRAPPER (see e2e/infra/runtime/devloop-runc). Last lines of $LOG_DIR/kind.log:
$(tail -n 5 "$LOG_DIR/kind.log")"
}

delete_kind_cluster() {
  if [ -x "$KIND" ]; then
    "$KIND" delete cluster --name "$KIND_CLUSTER" --kubeconfig "$KIND_KUBECONFIG" >>"$LOG_DIR/kind.log" 2>&1 || true
  fi
  docker rm -f -v "$KIND_NODE" >/dev/null 2>&1 || true
  rm -f "$KIND_MARKER" "$KIND_KUBECONFIG"
}

up_kind() {
  [ -x "$KIND" ] || die "$KIND is missing (build-kubernetes.sh builds it)"
  mkdir -p "$KUBECONFIGS"
  kind_preflight
  if ! image_exists "$KIND_NODE_IMAGE"; then
    local start=$SECONDS
    build_kind_node_image
    log "built $KIND_NODE_IMAGE in $((SECONDS - start))s"
  fi
  local state; state=$(kind_node_state || true)
  if [ -n "$state" ] && { [ "${state% *}" != "$KIND_NODE_IMAGE" ] || [ ! -f "$KIND_MARKER" ]; }; then
    log "kind node $KIND_NODE runs another image or was never finished; recreating the cluster"
    delete_kind_cluster
    state=''
  fi
  if [ -z "$state" ]; then
    log "creating kind cluster $KIND_CLUSTER (log $LOG_DIR/kind.log)"
    kind_config >"$STATE/kind-config.yaml"
    "$KIND" create cluster --name "$KIND_CLUSTER" --config "$STATE/kind-config.yaml" --kubeconfig "$KIND_KUBECONFIG" \
      --retain >>"$LOG_DIR/kind.log" 2>&1 || {
      show_log kind
      docker logs --tail 30 "$KIND_NODE" >&2 2>&1 || true
      die "kind create cluster failed (the node container is kept for inspection; the next up recreates it)"
    }
    touch "$KIND_MARKER"
  else
    if [ "${state#* }" != true ]; then
      log "starting the stopped kind node $KIND_NODE"
      docker start "$KIND_NODE" >/dev/null || die "docker start $KIND_NODE failed"
    fi
    [ -f "$KIND_KUBECONFIG" ] || "$KIND" export kubeconfig --name "$KIND_CLUSTER" --kubeconfig "$KIND_KUBECONFIG" >>"$LOG_DIR/kind.log" 2>&1
  fi
  local deadline=$((SECONDS + 180))
  until kind_api_ready; do
    ((SECONDS < deadline)) || { docker logs --tail 30 "$KIND_NODE" >&2 2>&1; die "the kind API server did not become ready"; }
    sleep 1
  done
  # The host routes the kind pod network through the node, so tests reach pods by IP as on the host cluster.
  local ip; ip=$(kind_node_ip)
  [ -n "$ip" ] || die "the kind node has no address on the kind network"
  ip route replace "$KIND_POD_CIDR" via "$ip"
  sed -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|g" -e "s|@DNS_SERVICE_IP@|$KIND_DNS_IP|g" \
    -e "s|@CLUSTER_DOMAIN@|$CLUSTER_DOMAIN|g" "$INFRA_SRC/manifests/coredns.yaml" \
    | kubectl_kind apply --server-side --field-manager=devloop-infra --force-conflicts -f - >/dev/null \
    || die "applying CoreDNS to the kind cluster failed"
  deadline=$((SECONDS + 120))
  until kind_node_ready; do
    ((SECONDS < deadline)) || { kubectl_kind describe node "$KIND_NODE" | tail -n 30 >&2; die "the kind node did not become Ready"; }
    sleep 1
  done
  kubectl_kind -n kube-system rollout status deployment/coredns --timeout=180s >/dev/null || {
    kubectl_kind -n kube-system get pods -o wide >&2
    die "CoreDNS did not become ready in the kind cluster"
  }
}

# down: the node container stops (the next `up` starts it again, warm); --purge deletes the cluster.
down_kind() {
  local purge=$1
  ip route del "$KIND_POD_CIDR" 2>/dev/null || true
  docker_healthy || return 0
  if $purge; then
    [ -n "$(kind_node_state || true)" ] && log "deleting kind cluster $KIND_CLUSTER"
    delete_kind_cluster
  elif [ "$(kind_node_state | cut -d' ' -f2)" = true ]; then
    log "stopping kind node $KIND_NODE"
    docker stop "$KIND_NODE" >/dev/null || true
  fi
  return 0
}
