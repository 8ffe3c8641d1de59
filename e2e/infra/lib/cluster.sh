# A single-node Kubernetes cluster run as host processes, in the order hack/local-up-cluster.sh uses:
# containerd → etcd → kube-apiserver → RBAC → controller-manager, scheduler → CNI + kubelet → kube-proxy → CoreDNS.
# shellcheck shell=bash

CLUSTER_DAEMONS=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
CNI_CONF_DIR=$STATE/cni/net.d
CNI_IPAM_DIR=$STATE/cni/ipam
CERTS_D=$STATE/containerd/certs.d

ctr_k8s() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }
curl_admin() { curl -fsS --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$@"; }

need_binaries() {
  local missing=() b
  for b in "$K8S_BIN"/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet,kube-proxy,kubectl,kubeadm} \
    "$ETCD_BIN/etcd" "$COREDNS_BIN/coredns" "$HELM" "$KIND" "$CRICTL"; do
    [ -x "$b" ] || missing+=("$b")
  done
  ((${#missing[@]} == 0)) && return 0
  if pgrep -f "build-kubernetes.sh $CACHE" >/dev/null; then
    log "a Kubernetes build into $CACHE is already running; waiting for it"
    while pgrep -f "build-kubernetes.sh $CACHE" >/dev/null; do sleep 10; done
  fi
  local start=$SECONDS
  log "building Kubernetes $K8S_VERSION, etcd $ETCD_VERSION, CoreDNS $COREDNS_VERSION, helm $HELM_VERSION, kind $KIND_VERSION into $CACHE/bin (log $LOG_DIR/build-kubernetes.log)"
  mkdir -p "$LOG_DIR"
  K8S_VERSION=$K8S_VERSION ETCD_VERSION=$ETCD_VERSION COREDNS_VERSION=$COREDNS_VERSION HELM_VERSION=$HELM_VERSION KIND_VERSION=$KIND_VERSION CRICTL_VERSION=$CRICTL_VERSION \
    bash "$INFRA_SRC/build-kubernetes.sh" "$CACHE" >>"$LOG_DIR/build-kubernetes.log" 2>&1 \
    || { show_log build-kubernetes; die "building the Kubernetes binaries failed"; }
  log "binaries built in $((SECONDS - start))s"
}

# kubectl $K8S_VERSION (`kubectl kustomize`) and helm on PATH for tests and users: links in /usr/local/bin, made
# only where no other program of that name sits in that directory. `down --purge` removes them.
link_tool() {
  local target=$1 link=/usr/local/bin/$(basename "$1")
  if [ ! -e "$link" ] || [[ $(readlink "$link" 2>/dev/null) == */devloop/infra/bin/* ]]; then
    ln -sfn "$target" "$link"
  else
    log "$link exists and is not ours; $(basename "$target") is at $target"
  fi
}

unlink_tool() {
  local link=/usr/local/bin/$1
  [[ $(readlink "$link" 2>/dev/null) == */devloop/infra/bin/* ]] && rm -f "$link"
  return 0
}

link_kubectl() { link_tool "$KUBECTL"; link_tool "$HELM"; link_tool "$KIND"; }
unlink_kubectl() { unlink_tool kubectl; unlink_tool helm; unlink_tool kind; unlink_tool istioctl; }

# The node address lives on a bridge without ports (the kernel here has no dummy module); only this host reaches it.
up_node_link() {
  if ! ip link show "$NODE_LINK" >/dev/null 2>&1; then
    ip link add "$NODE_LINK" type bridge || die "cannot create the $NODE_LINK link"
  fi
  ip addr show dev "$NODE_LINK" | grep "inet $NODE_IP/" >/dev/null || ip addr add "$NODE_IP/32" dev "$NODE_LINK"
  ip link set "$NODE_LINK" up
  # Volume mounts made by the kubelet must propagate into containers (as local-up-cluster.sh does).
  mount --make-rshared /
}

up_containerd() {
  CONFIG_CHANGED=false
  mkdir -p "$STATE/containerd/root" "$CNI_CONF_DIR" "$CNI_IPAM_DIR" "$CONTAINERD_RUN"
  local host
  for host in 127.0.0.1:5000 localhost:5000; do
    mkdir -p "$CERTS_D/$host"
    write_file "$CERTS_D/$host/hosts.toml" <<EOF
# The local registry speaks plain HTTP on loopback.
server = "http://$REGISTRY"

[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve"]
EOF
  done
  write_file "$STATE/containerd/config.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$CONTAINERD_RUN"
oom_score = 0

[grpc]
  address = "$CONTAINERD_SOCK"

[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # CAP_SYS_RESOURCE is missing here: negative oom_score_adj values would fail the sandboxes.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$CONTAINERD_RUN/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CNI_CONF_DIR"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$CERTS_D"
EOF
  write_file "$CNI_CONF_DIR/10-devloop.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "devloop",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$CNI_IPAM_DIR",
        "ranges": [[{ "subnet": "$POD_CIDR" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
  restart_if_changed containerd
  if ! is_running containerd && [ -S "$CONTAINERD_SOCK" ] && ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; then
    die "another containerd answers on $CONTAINERD_SOCK; stop it first"
  fi
  ensure_daemon containerd containerd --config "$STATE/containerd/config.toml"
  wait_until containerd 30 ctr --address "$CONTAINERD_SOCK" version
  if ! ctr_k8s images ls -q | grep -xF "$PAUSE_IMAGE" >/dev/null; then
    log "importing $PAUSE_IMAGE into containerd"
    docker save "$PAUSE_IMAGE" | ctr_k8s images import - >/dev/null || die "ctr images import $PAUSE_IMAGE failed"
  fi
}

# dockerd sets the FORWARD policy to DROP and br_netfilter sends bridged pod traffic through FORWARD, so pod-to-pod
# traffic (after a Service's DNAT, too) is allowed explicitly. Only the pod network: traffic from pods to other
# addresses stays dropped.
FORWARD_CHAIN=DEVLOOP-FORWARD
up_pod_forwarding() {
  iptables -N "$FORWARD_CHAIN" 2>/dev/null || iptables -F "$FORWARD_CHAIN"
  iptables -A "$FORWARD_CHAIN" -s "$POD_CIDR" -d "$POD_CIDR" -m comment --comment "devloop-infra: pod to pod" -j ACCEPT
  iptables -C FORWARD -j "$FORWARD_CHAIN" 2>/dev/null || iptables -I FORWARD 1 -j "$FORWARD_CHAIN"
}

down_pod_forwarding() {
  while iptables -D FORWARD -j "$FORWARD_CHAIN" 2>/dev/null; do :; done
  iptables -F "$FORWARD_CHAIN" 2>/dev/null && iptables -X "$FORWARD_CHAIN" 2>/dev/null
  return 0
}

up_etcd() {
  mkdir -p "$STATE/etcd"
  ensure_daemon etcd "$ETCD_BIN/etcd" --name devloop --data-dir "$STATE/etcd/data" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster devloop=http://127.0.0.1:2380 --unsafe-no-fsync --log-level warn
  wait_until etcd 60 http_ok http://127.0.0.1:2379/health
}

up_apiserver() {
  mkdir -p "$STATE/kube-apiserver"
  ensure_daemon kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers=http://127.0.0.1:2379 \
    --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port=6443 \
    --cert-dir="$STATE/kube-apiserver" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$PKI/ca.crt" \
    --kubelet-preferred-address-types=InternalIP \
    --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User \
    --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$PKI/front-proxy-client.crt" \
    --proxy-client-key-file="$PKI/front-proxy-client.key" \
    --service-account-key-file="$PKI/service-account.pub" \
    --service-account-signing-key-file="$PKI/service-account.key" \
    --service-account-issuer="https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction \
    --allow-privileged=true \
    --profiling=false
  wait_until kube-apiserver 120 curl_admin "https://$NODE_IP:6443/readyz"
}

# Lets the API server's kubelet client identity use the kubelet API (exec, logs, port-forward).
up_rbac() {
  kubectl_admin apply --server-side --field-manager=devloop-infra -f - >/dev/null <<EOF || die "applying RBAC failed"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: devloop-infra:apiserver-kubelet-api-admin
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:kubelet-api-admin
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: $APISERVER_KUBELET_CLIENT_CN
EOF
}

up_controller_manager() {
  local kc=$KUBECONFIGS/controller-manager.kubeconfig
  mkdir -p "$STATE/kube-controller-manager"
  ensure_daemon kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --bind-address=127.0.0.1 --secure-port=10257 --cert-dir="$STATE/kube-controller-manager" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/service-account.key" \
    --use-service-account-credentials=true --service-cluster-ip-range="$SERVICE_CIDR" \
    --leader-elect=false --profiling=false
  wait_until kube-controller-manager 60 curl -fsSk --max-time 3 -o /dev/null https://127.0.0.1:10257/healthz
}

up_scheduler() {
  local kc=$KUBECONFIGS/scheduler.kubeconfig
  mkdir -p "$STATE/kube-scheduler"
  ensure_daemon kube-scheduler "$K8S_BIN/kube-scheduler" \
    --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --bind-address=127.0.0.1 --secure-port=10259 --cert-dir="$STATE/kube-scheduler" \
    --leader-elect=false --profiling=false
  wait_until kube-scheduler 60 curl -fsSk --max-time 3 -o /dev/null https://127.0.0.1:10259/healthz
}

node_ready() {
  [ "$(kubectl_admin get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

up_kubelet() {
  local dir=$STATE/kubelet
  CONFIG_CHANGED=false
  mkdir -p "$dir/root"
  # Pods with dnsPolicy Default get no upstream resolver: nothing in the cluster may query hosts outside it.
  echo '# devloop-infra: no upstream DNS for pods' | write_file "$dir/resolv.conf"
  write_file "$dir/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $PKI/ca.crt }
authorization:
  mode: Webhook
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
# containerd 1.6 has no RuntimeConfig RPC, so the driver is set here; the hierarchy is cgroup v1.
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
# Negative OOM scores are refused on this machine (no CAP_SYS_RESOURCE).
oomScoreAdj: 0
clusterDNS: [$DNS_SERVICE_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: $dir/resolv.conf
# Nothing can be re-pulled from outside: keep images, evict only in real emergencies.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 2%
  nodefs.inodesFree: 2%
  imagefs.available: 2%
serializeImagePulls: false
rotateCertificates: false
serverTLSBootstrap: false
EOF
  restart_if_changed kubelet
  ensure_daemon kubelet "$K8S_BIN/kubelet" --config="$dir/config.yaml" \
    --kubeconfig="$KUBECONFIGS/kubelet.kubeconfig" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" \
    --root-dir="$dir/root"
  wait_until kubelet 60 http_ok http://127.0.0.1:10248/healthz
  wait_until kubelet 120 node_ready
}

up_kube_proxy() {
  local dir=$STATE/kube-proxy
  CONFIG_CHANGED=false
  mkdir -p "$dir"
  write_file "$dir/config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $KUBECONFIGS/kube-proxy.kubeconfig
mode: iptables
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
clusterCIDR: $POD_CIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [$NODE_IP/32]
oomScoreAdj: 0
# Leave the host's conntrack sysctls alone.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
  restart_if_changed kube-proxy
  ensure_daemon kube-proxy "$K8S_BIN/kube-proxy" --config="$dir/config.yaml"
  wait_until kube-proxy 60 http_ok http://127.0.0.1:10256/healthz
}

up_coredns() {
  sed -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|g" -e "s|@DNS_SERVICE_IP@|$DNS_SERVICE_IP|g" \
    -e "s|@CLUSTER_DOMAIN@|$CLUSTER_DOMAIN|g" "$INFRA_SRC/manifests/coredns.yaml" \
    | kubectl_admin apply --server-side --field-manager=devloop-infra --force-conflicts -f - >/dev/null \
    || die "applying CoreDNS failed"
  kubectl_admin -n kube-system rollout status deployment/coredns --timeout=180s >/dev/null || {
    kubectl_admin -n kube-system describe pods -l k8s-app=kube-dns | tail -n 30 >&2
    show_log kubelet; die "CoreDNS did not become ready"
  }
}

up_istio_crds() {
  local dir
  dir=$(cd "$STATE" && go mod download -json "istio.io/api@$ISTIO_API_VERSION" | jq -r .Dir) \
    || die "go mod download istio.io/api@$ISTIO_API_VERSION failed"
  local file=$dir/kubernetes/customresourcedefinitions.gen.yaml
  [ -f "$file" ] || die "$file is missing from istio.io/api@$ISTIO_API_VERSION"
  kubectl_admin apply --server-side --field-manager=devloop-infra --force-conflicts -f "$file" >/dev/null \
    || die "applying the Istio CRDs failed"
  kubectl_admin wait --for=condition=Established --timeout=60s -f "$file" >/dev/null \
    || die "the Istio CRDs were not established"
}

# Marks that this state dir's cluster owns the machine-wide pieces (pod network, iptables chains, node link), so
# that `down` with another DEVLOOP_INFRA_DIR never tears down a cluster it did not start.
CLUSTER_MARKER=$RUN_DIR/cluster.owner

up_cluster() {
  touch "$CLUSTER_MARKER"
  phase node-link up_node_link
  phase containerd up_containerd
  phase pod-forwarding up_pod_forwarding
  phase etcd up_etcd
  phase kube-apiserver up_apiserver
  phase rbac up_rbac
  phase controller-manager up_controller_manager
  phase scheduler up_scheduler
  phase kubelet up_kubelet
  phase kube-proxy up_kube_proxy
  phase coredns up_coredns
  phase istio-crds up_istio_crds
}

# Pod containers outlive the kubelet and containerd (they belong to shims), so `down` removes them explicitly,
# then the network namespaces, CNI rules and mounts they leave.
remove_pods() {
  if ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; then
    local id
    for id in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true; done
    for id in $(ctr_k8s tasks ls -q 2>/dev/null); do
      for _ in 1 2 3 4 5 6 7 8 9 10; do ctr_k8s tasks delete "$id" >/dev/null 2>&1 && break; sleep 0.5; done
    done
    for id in $(ctr_k8s containers ls -q 2>/dev/null); do ctr_k8s containers delete "$id" >/dev/null 2>&1 || true; done
  fi
}

remove_pod_network() {
  local ns
  for ns in /run/netns/cni-*; do [ -e "$ns" ] && ip netns delete "$(basename "$ns")" 2>/dev/null; done
  ip link show cni0 >/dev/null 2>&1 && ip link delete cni0
  rm -rf "${CNI_IPAM_DIR:?}"/*
  local table chain
  for table in nat filter; do
    # Jumps into the per-pod CNI-* chains first, then the chains themselves.
    local rules; rules=$(iptables -t "$table" -S 2>/dev/null | sed -n 's/^-A \(.* -j CNI-.*\)$/-D \1/p') || true
    while read -r rule; do
      [ -n "$rule" ] && { eval "iptables -t $table $rule" 2>/dev/null || true; }
    done <<<"$rules"
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N CNI-/ {print $2}'); do
      iptables -t "$table" -F "$chain" 2>/dev/null; iptables -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
}

unmount_under() {
  local prefix=$1 m
  for m in $(awk -v p="$prefix" 'index($2, p) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
}

down_cluster() {
  local owner=false
  [ -f "$CLUSTER_MARKER" ] && owner=true
  stop_daemon kube-proxy
  if $owner && [ -x "$K8S_BIN/kube-proxy" ] && [ -f "$STATE/kube-proxy/config.yaml" ]; then
    "$K8S_BIN/kube-proxy" --config="$STATE/kube-proxy/config.yaml" --cleanup >/dev/null 2>&1 || true
  fi
  stop_daemon kubelet
  is_running containerd && remove_pods
  stop_daemon kube-scheduler
  stop_daemon kube-controller-manager
  stop_daemon kube-apiserver
  stop_daemon etcd
  stop_daemon containerd
  if $owner; then
    remove_pod_network
    down_pod_forwarding
    unmount_under "$STATE/kubelet/root/"
    unmount_under "$CONTAINERD_RUN/"
    ip link show "$NODE_LINK" >/dev/null 2>&1 && ip link delete "$NODE_LINK"
    rm -f "$CLUSTER_MARKER"
  fi
  return 0
}
