#!/usr/bin/env bash
# Install and start a private Docker engine for MarginFace's image builds and tests, on a machine without a
# running Docker (CI, a build box). Idempotent: a running engine is reused.
#
#   scripts/docker_engine.sh start     install docker.io (apt) if needed, start dockerd, wait until it answers
#   scripts/docker_engine.sh stop      stop the engine this script started (its pid file)
#   scripts/docker_engine.sh status    exit 0 when the engine answers
#   scripts/docker_engine.sh env       print `export DOCKER_HOST=...` for eval
#
# The engine uses the vfs storage driver (works inside containers and without overlayfs), no iptables and
# no bridge: containers run with `--network host`. Its data root (image layers, build cache) lives outside
# the repository so repeated runs on one machine reuse cached layers.
#   MARGINFACE_DOCKER_ROOT   data root      (default /var/lib/marginface-docker)
#   MARGINFACE_DOCKER_SOCK   engine socket  (default /run/marginface-docker/docker.sock)
#   MARGINFACE_DOCKER_STORAGE  storage driver: overlay2 where an overlay mount works here (copy-on-write:
#                              fast builds and container starts), else vfs (works anywhere, copies every
#                              layer); set it to force one
set -euo pipefail

ROOT=${MARGINFACE_DOCKER_ROOT:-/var/lib/marginface-docker}
SOCK=${MARGINFACE_DOCKER_SOCK:-/run/marginface-docker/docker.sock}
RUNDIR=$(dirname "$SOCK")
PIDFILE=$RUNDIR/dockerd.pid
LOG=$RUNDIR/dockerd.log
export DOCKER_HOST=unix://$SOCK

say() { echo "[docker_engine] $*" >&2; }

storage_driver() {
  if [ -n "${MARGINFACE_DOCKER_STORAGE:-}" ]; then echo "$MARGINFACE_DOCKER_STORAGE"; return; fi
  local probe
  mkdir -p "$ROOT"
  probe=$(mktemp -d "$ROOT/.overlay-probe.XXXXXX")
  mkdir -p "$probe"/{lower,upper,work,merged}
  if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
      "$probe/merged" 2>/dev/null; then
    umount "$probe/merged"
    echo overlay2
  else
    echo vfs
  fi
  rm -rf "$probe"
}

answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

install() {
  if command -v dockerd >/dev/null && command -v docker >/dev/null; then return 0; fi
  if [ "$(id -u)" != 0 ]; then say "dockerd is not installed and this is not root"; return 1; fi
  command -v apt-get >/dev/null || { say "no apt-get: install Docker yourself"; return 1; }
  say "installing docker.io (apt)"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >/dev/null
}

start() {
  if answers; then say "engine already running at $DOCKER_HOST"; return 0; fi
  install
  [ "$(id -u)" = 0 ] || { say "starting dockerd needs root"; return 1; }
  mkdir -p "$ROOT" "$RUNDIR"
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    say "dockerd (pid $(cat "$PIDFILE")) is starting"
  else
    rm -f "$PIDFILE" "$SOCK"
    driver=$(storage_driver)
    say "starting dockerd (storage driver $driver)"
    # setsid: the engine outlives the shell that started it (CI steps, test sessions).
    # one data root per driver: images and BuildKit's cache of one driver mean nothing to the other
    setsid dockerd --data-root "$ROOT/$driver" --exec-root "$RUNDIR/exec" --pidfile "$PIDFILE" \
      --host "unix://$SOCK" --storage-driver "$driver" --iptables=false --ip-masq=false --bridge=none \
      >"$LOG" 2>&1 </dev/null &
  fi
  for _ in $(seq 1 60); do
    if answers; then say "engine ready at $DOCKER_HOST (data root $ROOT)"; return 0; fi
    sleep 1
  done
  say "dockerd did not answer within 60 s; last log lines:"
  tail -n 20 "$LOG" >&2 || true
  return 1
}

stop() {
  if [ -f "$PIDFILE" ]; then
    pid=$(cat "$PIDFILE")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    say "stopped dockerd $pid"
  else
    say "no pid file at $PIDFILE"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) answers ;;
  env) echo "export DOCKER_HOST=$DOCKER_HOST" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
