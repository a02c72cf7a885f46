#!/usr/bin/env bash
# Build MarginFace's CPU image on this machine, without an image registry and without HTTPS inside the
# build:
#   1. the engine (scripts/docker_engine.sh start) and the local base image (scripts/docker_base.sh);
#   2. docker/wheelhouse/: every Python dependency of the image as a wheel for the image's platform
#      (`pip download` with this machine's pip configuration and CA bundle; kept between runs);
#   3. docker build --network host --build-arg BASE=marginface-base:bookworm -f docker/Dockerfile .
#
#   scripts/docker_build.sh [TAG]            (default marginface:cpu)
#   MARGINFACE_BASE=debian:bookworm-slim     use the public base instead of making one
#   MARGINFACE_WHEEL_PLATFORM                wheel platform (default manylinux_2_28_x86_64)
# Prints the image id on stdout; progress on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-marginface:cpu}
BASE=${MARGINFACE_BASE:-marginface-base:bookworm}
PLATFORM=${MARGINFACE_WHEEL_PLATFORM:-manylinux_2_28_x86_64}
PY=${PYTHON:-python3}

say() { echo "[docker_build] $*" >&2; }

bash scripts/docker_engine.sh start
eval "$(bash scripts/docker_engine.sh env)"
if [ "$BASE" = marginface-base:bookworm ]; then bash scripts/docker_base.sh; fi

# The requirement list the Dockerfile installs: core dependencies + the `cpu` extra + the build backend.
reqs=$(mktemp)
trap 'rm -f "$reqs"' EXIT
"$PY" - >"$reqs" <<'EOF'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["cpu"] + ["setuptools>=68"]))
EOF
stamp=docker/wheelhouse/.requirements
if ! cmp -s "$reqs" "$stamp" 2>/dev/null; then
  say "filling docker/wheelhouse (pip download, cp311 $PLATFORM)"
  find docker/wheelhouse -name '*.whl' -delete
  "$PY" -m pip download -q --disable-pip-version-check --only-binary=:all: \
    --implementation cp --python-version 3.11 --abi cp311 \
    --platform "$PLATFORM" --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    -d docker/wheelhouse -r "$reqs" 2>&1 | { grep -v "is ignored: it is neither a file" || true; } >&2
  cp "$reqs" "$stamp"
fi
say "wheelhouse: $(find docker/wheelhouse -name '*.whl' | wc -l) wheels, $(du -sh docker/wheelhouse | cut -f1)"

say "docker build $TAG (base $BASE)"
docker build --network host --build-arg BASE="$BASE" -f docker/Dockerfile -t "$TAG" . >&2
docker image inspect "$TAG" --format '{{.Id}}'
