#!/usr/bin/env bash
# Local test infrastructure: Docker Engine, a registry on 127.0.0.1:5000, a single-node Kubernetes cluster run as
# host processes with istiod against it, and a kind cluster on the same Docker engine. See e2e/infra/README.md.
#
#   infra.sh up            bring everything up (idempotent; builds what is missing, cached by version)
#   infra.sh down [--purge] stop what it started (an adopted dockerd keeps running); --purge also deletes the state
#   infra.sh status        what runs, versions, health
#   infra.sh env           shell lines to eval: KUBECONFIG, DOCKER_HOST, DEVLOOP_REGISTRY, DEVLOOP_KIND_KUBECONFIG,
#                          DEVLOOP_ISTIOD, PATH (kind, istioctl)
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$INFRA_SRC/lib/packages.sh"
source "$INFRA_SRC/lib/docker.sh"
source "$INFRA_SRC/lib/images.sh"
source "$INFRA_SRC/lib/certs.sh"
source "$INFRA_SRC/lib/cluster.sh"
source "$INFRA_SRC/lib/kind.sh"
source "$INFRA_SRC/lib/istio.sh"

cmd_env() {
  printf 'export KUBECONFIG=%s\n' "$ADMIN_KUBECONFIG"
  printf 'export DOCKER_HOST=unix://%s\n' "$DOCKER_SOCK"
  printf 'export DEVLOOP_REGISTRY=%s\n' "$REGISTRY"
  printf 'export DEVLOOP_KIND_KUBECONFIG=%s\n' "$KIND_KUBECONFIG"
  printf 'export DEVLOOP_ISTIOD=%s\n' "$ISTIOD_XDS"
  printf 'export PATH="%s:%s:$PATH"\n' "$KIND_BIN_DIR" "$ISTIO_BIN"
}

cmd_up() {
  need_root
  local start=$SECONDS
  mkdir -p "$STATE" "$RUN_DIR" "$LOG_DIR" "$STATE/tmp" "$CACHE"
  # One `up` or `down` at a time: a second caller waits for the first (and then finds everything running).
  exec 9>"$STATE/up.lock"
  flock 9
  log "state in $STATE, cache in $CACHE"
  phase packages ensure_packages
  # The istio build runs alongside the Kubernetes build and the rest of `up` (both are CPU-bound, but their
  # downloads and single-threaded links overlap); istiod waits for it at the end.
  start_istio_build
  phase docker up_docker
  phase registry up_registry
  phase k8s-binaries need_binaries
  link_kubectl
  phase cluster-images up_cluster_images
  phase certs up_certs
  up_cluster
  phase base-images up_base_images
  phase kind up_kind
  phase istiod up_istiod
  link_tool "$ISTIOCTL"
  rm -rf "${STATE:?}/tmp"
  log "phase timings:"
  printf '  %s\n' "${PHASE_TIMES[@]}" >&2
  log "infrastructure up in $((SECONDS - start))s; use it with: eval \"\$(npm run --silent infra:env)\""
}

cmd_down() {
  need_root
  local purge=false
  [ "${1:-}" = --purge ] && purge=true
  mkdir -p "$RUN_DIR"
  exec 9>"$STATE/up.lock"
  flock 9
  local owner=false
  [ -f "$CLUSTER_MARKER" ] && owner=true
  down_istiod
  down_kind "$purge"
  down_cluster
  stop_daemon registry
  down_docker
  if $purge; then
    $owner && unlink_kubectl
    unmount_under "$STATE/"
    log "deleting $STATE"
    rm -rf "${STATE:?}"
  fi
  log "down"
}

# status line: <component> <state> <version> <health>
row() { printf '%-24s %-22s %-16s %s\n' "$@"; }

daemon_state() {
  if is_running "$1"; then echo "running pid $(pid_of "$1")"; else echo stopped; fi
}

health() { if "$@" >/dev/null 2>&1; then echo ok; else echo FAIL; fi; }

bin_version() {
  local out; out=$("$@" 2>/dev/null) || true
  out=$(grep -oE 'v?[0-9]+\.[0-9]+\.[0-9]+[^ ,]*' <<<"$out" | head -n1) || true
  echo "${out:--}"
}

cmd_status() {
  local rc=0 state
  row COMPONENT STATE VERSION HEALTH
  if [ -f "$RUN_DIR/dockerd.adopted" ]; then state=adopted; else state=$(daemon_state dockerd); fi
  local dv; dv=$(DOCKER_HOST=unix://$DOCKER_SOCK docker version --format '{{.Server.Version}}' 2>/dev/null || echo -)
  row dockerd "$state" "$dv" "$(health docker_healthy)"
  if is_running registry; then state=$(daemon_state registry); elif registry_healthy; then state=external; else state=stopped; fi
  row registry "$state" "$(bin_version docker-registry --version)" "$(health registry_healthy)"
  row containerd "$(daemon_state containerd)" "$(bin_version containerd --version)" \
    "$(health ctr --address "$CONTAINERD_SOCK" version)"
  row etcd "$(daemon_state etcd)" "$(bin_version "$ETCD_BIN/etcd" --version)" \
    "$(health http_ok http://127.0.0.1:2379/health)"
  row kube-apiserver "$(daemon_state kube-apiserver)" "$(bin_version "$K8S_BIN/kube-apiserver" --version)" \
    "$(health curl_admin "https://$NODE_IP:6443/readyz")"
  row kube-controller-manager "$(daemon_state kube-controller-manager)" \
    "$(bin_version "$K8S_BIN/kube-controller-manager" --version)" \
    "$(health curl -fsSk --max-time 3 -o /dev/null https://127.0.0.1:10257/healthz)"
  row kube-scheduler "$(daemon_state kube-scheduler)" "$(bin_version "$K8S_BIN/kube-scheduler" --version)" \
    "$(health curl -fsSk --max-time 3 -o /dev/null https://127.0.0.1:10259/healthz)"
  row kubelet "$(daemon_state kubelet)" "$(bin_version "$K8S_BIN/kubelet" --version)" "$(health node_ready)"
  row kube-proxy "$(daemon_state kube-proxy)" "$(bin_version "$K8S_BIN/kube-proxy" --version)" \
    "$(health http_ok http://127.0.0.1:10256/healthz)"
  local dns=-
  if [ -f "$ADMIN_KUBECONFIG" ]; then
    dns=$(kubectl_admin -n kube-system get deployment coredns -o jsonpath='{.status.readyReplicas}/{.spec.replicas} ready' 2>/dev/null || echo -)
  fi
  row coredns "pod: $dns" "$COREDNS_VERSION" "$(health kubectl_admin -n kube-system wait --for=condition=Available --timeout=1s deployment/coredns)"
  local crds=0
  [ -f "$ADMIN_KUBECONFIG" ] && crds=$(kubectl_admin get crd -o name 2>/dev/null | grep -c '\.istio\.io$' || true)
  row istio-crds "$crds CRDs" "$ISTIO_API_VERSION" "$( ((crds > 0)) && echo ok || echo FAIL)"
  row istiod "$(daemon_state istiod)" "$(bin_version "$ISTIOCTL" version --remote=false --short)" "$(health istiod_ready)"
  local kstate; kstate=$(kind_node_state 2>/dev/null || true)
  case ${kstate#* } in true) kstate="running";; false) kstate="stopped";; *) kstate="absent";; esac
  row kind:$KIND_CLUSTER "node $kstate" "$(bin_version "$KIND" version)" "$(health kind_node_ready)"
  local image
  for image in "${BASE_IMAGES[@]}" "$KIND_NODE_IMAGE" "$PAUSE_IMAGE" "$COREDNS_IMAGE"; do
    printf '%-24s %-63s %s\n' image "$image" "$(health image_exists "$image")"
  done
  echo
  echo "state: $STATE   cache: $CACHE   logs: $LOG_DIR"
  # Non-zero when something is unhealthy, so scripts can use `infra.sh status` as a check.
  docker_healthy && registry_healthy && node_ready && istiod_ready && kind_node_ready || rc=1
  return $rc
}

case "${1:-}" in
  up) cmd_up ;;
  down) shift; cmd_down "$@" ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: infra.sh up | down [--purge] | status | env" >&2; exit 2 ;;
esac
