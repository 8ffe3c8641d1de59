# Shared settings and helpers for infra.sh: paths, logging, daemon lifecycle (pid files + logs), waiting.
# shellcheck shell=bash

INFRA_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../versions.sh
source "$INFRA_SRC/versions.sh"

STATE=${DEVLOOP_INFRA_DIR:-/var/lib/devloop-infra}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/devloop/infra
RUN_DIR=$STATE/run
LOG_DIR=$STATE/logs
PKI=$STATE/pki
KUBECONFIGS=$STATE/kubeconfig
ADMIN_KUBECONFIG=$KUBECONFIGS/admin.kubeconfig

REGISTRY=127.0.0.1:5000
DOCKER_SOCK=/var/run/docker.sock
# The cluster's containerd keeps its socket and runtime state out of /run/containerd: dockerd takes any socket it
# finds at /run/containerd/containerd.sock for a system containerd and will not start when that one is gone.
CONTAINERD_RUN=/run/devloop-containerd
CONTAINERD_SOCK=$CONTAINERD_RUN/containerd.sock

# The node's own address: a bridge with no ports that only this machine can reach. The API server and the kubelet
# listen here (pods reach the API server through the kubernetes Service, so it cannot be loopback).
NODE_LINK=devloop0
NODE_IP=10.200.0.1
NODE_NAME=devloop-node
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SERVICE_IP=10.96.0.1
DNS_SERVICE_IP=10.96.0.10
CLUSTER_DOMAIN=cluster.local

K8S_BIN=$CACHE/bin/kubernetes-$K8S_VERSION
ETCD_BIN=$CACHE/bin/etcd-$ETCD_VERSION
COREDNS_BIN=$CACHE/bin/coredns-$COREDNS_VERSION
KUBECTL=$K8S_BIN/kubectl
HELM=$CACHE/bin/helm-$HELM_VERSION/helm

PAUSE_IMAGE=$REGISTRY/pause:$PAUSE_TAG
COREDNS_IMAGE=$REGISTRY/coredns:$COREDNS_VERSION

log() { printf '%s infra: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { printf 'infra: error: %s\n' "$*" >&2; exit 1; }

# Prints the last lines of a daemon's log, framed, to stderr.
show_log() {
  local name=$1 file=$LOG_DIR/$1.log
  [ -f "$file" ] || { echo "  (no log at $file)" >&2; return 0; }
  printf -- '----- last lines of %s -----\n' "$file" >&2
  tail -n "${2:-40}" "$file" >&2
  printf -- '----- end of %s -----\n' "$name" >&2
}

pid_of() { local f=$RUN_DIR/$1.pid; [ -f "$f" ] && cat "$f"; }

# True when the daemon recorded in run/<name>.pid is alive (and is not a recycled pid of another program).
is_running() {
  local pid; pid=$(pid_of "$1") || return 1
  [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  local program; program=$(cat "$RUN_DIR/$1.exe" 2>/dev/null) || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -xF "$program" >/dev/null
}

# start_daemon <name> <command> [args...]: runs it in its own session, output appended to logs/<name>.log.
start_daemon() {
  local name=$1; shift
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  printf '\n===== %s starting %s =====\n' "$(date -u +%FT%TZ)" "$*" >>"$LOG_DIR/$name.log"
  # fd 9 is up's lock: daemons must not inherit it, or they would hold it for their whole life.
  setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null 9>&- &
  local pid=$!
  echo "$pid" >"$RUN_DIR/$name.pid"
  echo "$1" >"$RUN_DIR/$name.exe"
  # Until the forked shell has exec'd, the pid's command line is still this script's; health checks must not
  # mistake that window for an exited daemon.
  local i
  for ((i = 0; i < 50; i++)); do is_running "$name" && break; [ -d "/proc/$pid" ] || break; sleep 0.1; done
  log "started $name (pid $pid, log $LOG_DIR/$name.log)"
}

# ensure_daemon <name> <command> [args...]: starts the daemon unless it already runs with exactly these arguments;
# one running with other arguments (flags changed since it was started) is restarted.
ensure_daemon() {
  local name=$1; shift
  local args; args=$(printf '%q ' "$@")
  if is_running "$name"; then
    [ "$(cat "$RUN_DIR/$name.args" 2>/dev/null)" = "$args" ] && return 0
    log "arguments of $name changed; restarting it"
    stop_daemon "$name"
  fi
  start_daemon "$name" "$@"
  printf '%s' "$args" >"$RUN_DIR/$name.args"
}

# stop_daemon <name>: SIGTERM, then SIGKILL after a grace period. Quiet when it is not running.
stop_daemon() {
  local name=$1 grace=${2:-20}
  if is_running "$name"; then
    local pid; pid=$(pid_of "$name")
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < grace * 10; i++)); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    if [ -d "/proc/$pid" ]; then log "$name did not exit in ${grace}s; killing"; kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.exe" "$RUN_DIR/$name.args"
}

# wait_until <name> <seconds> <command...>: polls the command; on timeout prints the daemon's log and fails.
wait_until() {
  local name=$1 timeout=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [ -f "$RUN_DIR/$name.pid" ] && ! is_running "$name"; then
      show_log "$name"; die "$name exited during startup (see $LOG_DIR/$name.log)"
    fi
    if ((SECONDS >= deadline)); then
      show_log "$name"; die "$name not healthy after ${timeout}s (check: $*)"
    fi
    sleep 0.5
  done
}

# write_file <path>: stdin → path, touching the file only when its content changes (kube-proxy exits when its
# config file is rewritten, and an unchanged file must not restart anything).
# CONFIG_CHANGED records that some write_file changed a file, so the caller can restart its daemon.
CONFIG_CHANGED=false
write_file() {
  local tmp; tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; CONFIG_CHANGED=true; fi
}

# restart_if_changed <name>: stops a running daemon whose configuration was just rewritten (up starts it again).
restart_if_changed() {
  if $CONFIG_CHANGED && is_running "$1"; then log "configuration of $1 changed; restarting it"; stop_daemon "$1"; fi
  CONFIG_CHANGED=false
}

http_ok() { curl -fs --max-time 3 -o /dev/null "$@"; }

# Runs a phase and records how long it took (printed at the end of `up`).
PHASE_TIMES=()
phase() {
  local name=$1; shift
  local start=$SECONDS
  "$@"
  PHASE_TIMES+=("$(printf '%-22s %4ds' "$name" $((SECONDS - start)))")
}

need_root() { [ "$(id -u)" = 0 ] || die "infra.sh must run as root (it starts dockerd, containerd and the kubelet)"; }

kubectl_admin() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }
