#!/usr/bin/env bash
# CI hook for the tests marked `docker` (tests/docker/test_image_run.py, test_scale_out.py): install and start
# MarginFace's private Docker engine (scripts/docker_engine.sh) and debootstrap for the local base image.
# Never fatal: when the engine cannot start, the reason goes to $MARGINFACE_DOCKER_NOTE and the tests skip
# with it. The image itself is built (once, layers cached in the engine's data root) by the tests' fixture.
set -uo pipefail
cd "$(dirname "$0")/../.."
note=${MARGINFACE_DOCKER_NOTE:-/tmp/marginface-docker-setup.txt}
log=$(mktemp)
if [ "$(id -u)" = 0 ] && ! command -v debootstrap >/dev/null && command -v apt-get >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null 2>&1 || true
fi
if bash scripts/docker_engine.sh start 2>"$log"; then
  rm -f "$note"
  cat "$log" >&2
  echo "[setup_docker] engine ready; the docker tests will build marginface:cpu (cached layers)"
else
  reason=$(tail -n 3 "$log" | tr '\n' ' ')
  echo "setup_docker.sh could not start a Docker engine: ${reason:-unknown reason}" >"$note"
  echo "[setup_docker] no Docker engine: ${reason}; the docker tests will skip"
fi
rm -f "$log"
exit 0
