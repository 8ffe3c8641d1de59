# Docker Engine (Debian's docker.io) and the image registry (Debian's docker-registry) on 127.0.0.1:5000.
# shellcheck shell=bash

docker_healthy() { DOCKER_HOST=unix://$DOCKER_SOCK docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# A healthy engine already answering on the socket is adopted (recorded, never stopped by `down`);
# otherwise dockerd is started here with its pid file and log under the state dir.
# dockerd runs with the runc wrapper as its default runtime (runtime/devloop-runc): privileged containers, which
# kind nodes are, need it on machines whose root lacks CAP_SYS_RESOURCE. One started by an older `up` without it is
# restarted once (ensure_daemon compares the arguments).
dockerd_args() {
  echo dockerd --pidfile "$RUN_DIR/dockerd.self.pid" --host "unix://$DOCKER_SOCK" \
    --add-runtime "$RUNC_WRAPPER_NAME=$RUNC_WRAPPER" --default-runtime "$RUNC_WRAPPER_NAME"
}

up_docker() {
  install_runc_wrapper
  local args; read -r -a args <<<"$(dockerd_args)"
  if is_running dockerd && docker_healthy; then
    [ "$(cat "$RUN_DIR/dockerd.args" 2>/dev/null)" = "$(printf '%q ' "${args[@]}")" ] && return 0
    log "dockerd runs without the runc wrapper as default runtime; restarting it"
    stop_daemon dockerd 30
  fi
  if docker_healthy; then
    if [ ! -f "$RUN_DIR/dockerd.adopted" ]; then
      mkdir -p "$RUN_DIR"
      echo "adopted at $(date -u +%FT%TZ)" >"$RUN_DIR/dockerd.adopted"
      log "adopting the Docker engine already running on $DOCKER_SOCK (infra:down leaves it running)"
    fi
    return 0
  fi
  rm -f "$RUN_DIR/dockerd.adopted"
  if [ -S "$DOCKER_SOCK" ] && pgrep -x dockerd >/dev/null; then
    die "a dockerd is running but does not answer on $DOCKER_SOCK; stop it or fix it, then rerun"
  fi
  forget_dead_system_containerd
  ensure_daemon dockerd "${args[@]}"
  wait_until dockerd 60 docker_healthy
}

# dockerd uses a "system containerd" whenever /run/containerd/containerd.sock exists, and fails to start when
# nothing answers there (a socket left behind by a containerd that was killed, e.g. by an older version of this
# script). A socket nobody answers on is removed; a live system containerd is left alone and dockerd uses it.
SYSTEM_CONTAINERD_SOCK=/run/containerd/containerd.sock
forget_dead_system_containerd() {
  [ -S "$SYSTEM_CONTAINERD_SOCK" ] || return 0
  ctr --address "$SYSTEM_CONTAINERD_SOCK" version >/dev/null 2>&1 && return 0
  log "removing $SYSTEM_CONTAINERD_SOCK: no containerd answers there, and dockerd would try to use it"
  rm -f "$SYSTEM_CONTAINERD_SOCK" "$SYSTEM_CONTAINERD_SOCK.ttrpc"
}

down_docker() {
  if [ -f "$RUN_DIR/dockerd.adopted" ]; then
    log "leaving the adopted Docker engine running"
    rm -f "$RUN_DIR/dockerd.adopted"
    return 0
  fi
  stop_daemon dockerd 30
}

registry_healthy() { http_ok "http://$REGISTRY/v2/"; }

up_registry() {
  if registry_healthy; then
    is_running registry || log "a registry not started here already answers on $REGISTRY; using it"
    return 0
  fi
  mkdir -p "$STATE/registry/data"
  write_file "$STATE/registry/config.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $STATE/registry/data
  delete:
    enabled: true
http:
  addr: $REGISTRY
  headers:
    X-Content-Type-Options: [nosniff]
EOF
  ensure_daemon registry docker-registry serve "$STATE/registry/config.yml"
  wait_until registry 30 registry_healthy
}

down_registry() { stop_daemon registry; }

# True when the registry holds <repository>:<tag>.
registry_has() {
  http_ok -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REGISTRY/v2/$1/manifests/$2"
}
