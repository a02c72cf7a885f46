#!/usr/bin/env bash
# FFmpeg's command-line tool for the monitor tests (tests/monitors): it encodes the test video and serves
# it as RTSP in listen mode. PyAV (pip) brings its own libraries; only the binary comes from Debian.
# Idempotent; exits 0 when it cannot install (those tests then skip with a reason).
set -u
if command -v ffmpeg >/dev/null 2>&1; then
  echo "setup_ffmpeg: ffmpeg present ($(ffmpeg -version | head -n1))"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup_ffmpeg: no apt-get; install ffmpeg yourself (monitor stream tests will skip)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "setup_ffmpeg: not root and no sudo; monitor stream tests will skip"; exit 0; fi
fi
for attempt in 1 2 3 4 5 6; do
  if $SUDO apt-get update -q >/dev/null 2>&1 \
     && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends ffmpeg >/dev/null 2>&1; then
    echo "setup_ffmpeg: installed $(ffmpeg -version | head -n1)"
    exit 0
  fi
  echo "setup_ffmpeg: apt busy or failed (attempt $attempt); retrying in 10 s"
  sleep 10
done
echo "setup_ffmpeg: could not install ffmpeg; monitor stream tests will skip"
exit 0
