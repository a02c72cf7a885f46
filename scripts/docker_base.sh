#!/usr/bin/env bash
# Make the base image of docker/Dockerfile locally, without any image registry:
#   debootstrap --variant=minbase bookworm  ->  docker import  ->  marginface-base:bookworm
# A minbase bookworm root is what the public `debian:bookworm-slim` is made of (docker/Dockerfile installs
# python3 on top either way), so the image built from it is the image users build from the public one:
#   docker build --build-arg BASE=marginface-base:bookworm -f docker/Dockerfile .   (here)
#   docker build -f docker/Dockerfile .                                             (public debian:bookworm-slim)
# Idempotent: an existing image is kept (pass --force to remake it). Needs root, debootstrap (apt) and a
# running engine (scripts/docker_engine.sh start; DOCKER_HOST is taken from it).
#   MARGINFACE_DEBIAN_MIRROR  mirror for debootstrap (default http://deb.debian.org/debian)
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${MARGINFACE_BASE_TAG:-marginface-base:bookworm}
MIRROR=${MARGINFACE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
eval "$(bash scripts/docker_engine.sh env)"

say() { echo "[docker_base] $*" >&2; }

if [ "${1:-}" != "--force" ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  say "$TAG already present"
  exit 0
fi
if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap (apt)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
fi
dir=$(mktemp -d /var/tmp/marginface-base.XXXXXX)
# debootstrap mounts /proc and /sys inside the root while it runs: unmount before removing anything.
trap 'umount "$dir/proc" "$dir/sys" 2>/dev/null || true; rm -rf --one-file-system "$dir"' EXIT
say "debootstrap --variant=minbase bookworm (a few minutes)"
debootstrap --variant=minbase bookworm "$dir" "$MIRROR" >"$dir.log" 2>&1 || {
  tail -n 20 "$dir.log" >&2; exit 1; }
rm -f "$dir.log"
# What the slim image drops: apt lists and caches, docs and man pages stay out of the layers.
find "$dir"/var/lib/apt/lists -type f -delete
rm -rf "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
  "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/*
printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\n' "$MIRROR" \
  >"$dir/etc/apt/sources.list.d/debian.sources"
printf '\nTypes: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n' \
  >>"$dir/etc/apt/sources.list.d/debian.sources"
: >"$dir/etc/apt/sources.list"
chmod 755 "$dir"  # mktemp made it 0700: the image's / must be traversable by the non-root user
tar -C "$dir" -c . | docker import --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' - "$TAG" >/dev/null
say "made $TAG ($(docker image inspect "$TAG" --format '{{.Size}}') bytes)"
