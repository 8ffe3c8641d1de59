# istiod (Istio's pilot-discovery) as a host process against the host cluster: no injector, no operator, no Envoy.
# Workloads use its plaintext xDS port directly (proxyless gRPC); istioctl checks configuration (`analyze`).
# shellcheck shell=bash

ISTIO_BIN=$CACHE/bin/istio-$ISTIO_VERSION
PILOT_DISCOVERY=$ISTIO_BIN/pilot-discovery
ISTIOCTL=$ISTIO_BIN/istioctl
ISTIO_NAMESPACE=istio-system
# Plaintext xDS on the node address: reachable from pods (through cni0) and from this host.
ISTIOD_XDS=$NODE_IP:15010
ISTIOD_HTTP=127.0.0.1:15080
ISTIOD_MONITORING=127.0.0.1:15014

istio_built() { [ -x "$PILOT_DISCOVERY" ] && [ -x "$ISTIOCTL" ]; }

# The istio build is as long as the Kubernetes build: `up` starts it in the background before that one and waits for
# it only when istiod is about to start (the cluster, kind and the images come up meanwhile).
ISTIO_BUILD_PID=
start_istio_build() {
  istio_built && return 0
  if pgrep -f "build-istio.sh $CACHE" >/dev/null; then return 0; fi
  log "building istio $ISTIO_VERSION (pilot-discovery, istioctl) in the background (log $LOG_DIR/build-istio.log)"
  ISTIO_BUILD_START=$SECONDS
  bash "$INFRA_SRC/build-istio.sh" "$CACHE" >>"$LOG_DIR/build-istio.log" 2>&1 9>&- &
  ISTIO_BUILD_PID=$!
}

need_istio() {
  if [ -n "$ISTIO_BUILD_PID" ]; then
    istio_built || log "waiting for the istio build"
    wait "$ISTIO_BUILD_PID" || { show_log build-istio; die "building istio failed"; }
    log "istio built in the background (started $((SECONDS - ISTIO_BUILD_START))s ago; its own timings: $LOG_DIR/build-istio.log)"
    ISTIO_BUILD_PID=
  fi
  if ! istio_built && pgrep -f "build-istio.sh $CACHE" >/dev/null; then
    log "an istio build into $CACHE is already running; waiting for it"
    while pgrep -f "build-istio.sh $CACHE" >/dev/null; do sleep 10; done
  fi
  if ! istio_built; then
    local start=$SECONDS
    log "building istio $ISTIO_VERSION (log $LOG_DIR/build-istio.log)"
    bash "$INFRA_SRC/build-istio.sh" "$CACHE" >>"$LOG_DIR/build-istio.log" 2>&1 \
      || { show_log build-istio; die "building istio failed"; }
    log "istio built in $((SECONDS - start))s"
  fi
}

istiod_ready() { http_ok "http://$ISTIOD_HTTP/ready"; }

up_istiod() {
  need_istio
  local dir=$STATE/istio
  CONFIG_CHANGED=false
  mkdir -p "$dir"
  kubectl_admin create namespace "$ISTIO_NAMESPACE" --dry-run=client -o yaml \
    | kubectl_admin apply --server-side --field-manager=devloop-infra -f - >/dev/null || die "creating $ISTIO_NAMESPACE failed"
  write_file "$dir/mesh.yaml" <<YAML
rootNamespace: $ISTIO_NAMESPACE
trustDomain: $CLUSTER_DOMAIN
defaultConfig:
  discoveryAddress: $ISTIOD_XDS
YAML
  echo 'networks: {}' | write_file "$dir/meshNetworks.yaml"
  restart_if_changed istiod
  POD_NAMESPACE=$ISTIO_NAMESPACE REVISION=default ensure_daemon istiod "$PILOT_DISCOVERY" discovery \
    --kubeconfig "$ADMIN_KUBECONFIG" --meshConfig "$dir/mesh.yaml" --networksConfig "$dir/meshNetworks.yaml" \
    --domain "$CLUSTER_DOMAIN" --grpcAddr "$ISTIOD_XDS" --secureGRPCAddr 127.0.0.1:15012 \
    --httpAddr "$ISTIOD_HTTP" --monitoringAddr "$ISTIOD_MONITORING" --httpsAddr 127.0.0.1:15017 \
    --ctrlz_address 127.0.0.1 --ctrlz_port 15016 --log_output_level default:info
  wait_until istiod 120 istiod_ready
}

down_istiod() { stop_daemon istiod; }
