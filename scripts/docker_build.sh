#!/usr/bin/env bash
# Build MarginFace's image on this machine, without an image registry and without HTTPS inside the build:
#   1. the engine (scripts/docker_engine.sh start) and the local base image (scripts/docker_base.sh);
#   2. docker/wheelhouse/<flavour>/: every Python dependency of the image as a wheel for the image's
#      platform (`pip download` with this machine's pip configuration and CA bundle; kept between runs,
#      refreshed when pyproject.toml's requirements change);
#   3. a BuildKit build: --network host --build-arg BASE=marginface-base:bookworm -f docker/Dockerfile[.gpu] .
#
#   scripts/docker_build.sh [--gpu] [TAG]    (default tag marginface:cpu, or marginface:gpu with --gpu)
#   MARGINFACE_GPU_EXTRAS=gpu,tensorrt       the GPU image's extras (default gpu: see below)
#   MARGINFACE_BASE=debian:bookworm-slim     use the public base instead of making one
#   MARGINFACE_WHEEL_PLATFORM                wheel platform (default manylinux_2_28_x86_64)
#   MARGINFACE_DOCKER_BUILD_ARGS             more arguments for the build (e.g. --no-cache, --build-arg EXTRAS=gpu)
# Prints the image id on stdout; progress on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=cpu
if [ "${1:-}" = "--gpu" ]; then flavour=gpu; shift; fi
TAG=${1:-marginface:$flavour}
DOCKERFILE=docker/Dockerfile
[ "$flavour" = gpu ] && DOCKERFILE=docker/Dockerfile.gpu
# The GPU image's extras: `gpu` by default here, because `tensorrt` needs NVIDIA's index at install time
# (MARGINFACE_GPU_EXTRAS=gpu,tensorrt where that index is reachable).
EXTRAS=cpu
[ "$flavour" = gpu ] && EXTRAS=${MARGINFACE_GPU_EXTRAS:-gpu}
BASE=${MARGINFACE_BASE:-marginface-base:bookworm}
PLATFORM=${MARGINFACE_WHEEL_PLATFORM:-manylinux_2_28_x86_64}
PY=${PYTHON:-python3}
WHEELS=docker/wheelhouse/$flavour

say() { echo "[docker_build] $*" >&2; }

bash scripts/docker_engine.sh start
eval "$(bash scripts/docker_engine.sh env)"
if [ "$BASE" = marginface-base:bookworm ]; then bash scripts/docker_base.sh; fi

# The requirement list the Dockerfile installs: core dependencies + the flavour's extras + the build backend.
reqs=$(mktemp)
trap 'rm -f "$reqs"' EXIT
"$PY" - "$EXTRAS" >"$reqs" <<'EOF'
import sys
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = [r for name in sys.argv[1].split(",") for r in project["optional-dependencies"][name]]
print("\n".join(project["dependencies"] + extras + ["setuptools>=68"]))
EOF
mkdir -p "$WHEELS"
if ! cmp -s "$reqs" "$WHEELS/.requirements"; then
  say "filling $WHEELS (pip download, cp311 $PLATFORM)"
  find "$WHEELS" -name '*.whl' -delete
  "$PY" -m pip download -q --disable-pip-version-check --only-binary=:all: \
    --implementation cp --python-version 3.11 --abi cp311 \
    --platform "$PLATFORM" --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    -d "$WHEELS" -r "$reqs" 2>&1 | { grep -v "is ignored: it is neither a file" || true; } >&2
  cp "$reqs" "$WHEELS/.requirements"
fi
say "wheelhouse: $(find "$WHEELS" -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELS" | cut -f1)"

# BuildKit: `docker buildx` where installed, else the builder built into Debian's docker.io client.
if docker buildx version >/dev/null 2>&1; then
  build=(docker buildx build --load)
elif [ -x /usr/bin/docker ] && /usr/bin/docker --version | grep -q 'version 20\.'; then
  build=(env DOCKER_BUILDKIT=1 /usr/bin/docker build)
else
  build=(env DOCKER_BUILDKIT=1 docker build)
fi
say "${build[*]} $TAG (base $BASE)"
# shellcheck disable=SC2086  # word splitting of the extra arguments is intended
extras_arg=()
[ "$flavour" = gpu ] && extras_arg=(--build-arg "EXTRAS=$EXTRAS")
"${build[@]}" --progress plain --network host --build-arg BASE="$BASE" "${extras_arg[@]}" ${MARGINFACE_DOCKER_BUILD_ARGS:-} \
  -f "$DOCKERFILE" -t "$TAG" . >&2
docker image inspect "$TAG" --format '{{.Id}}'
