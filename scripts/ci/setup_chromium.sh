#!/usr/bin/env bash
# Debian's Chromium for the console browser tests (tests/console): Playwright for Python drives it through
# its executable path; Playwright's own browser download is never used (no internet in CI).
# Idempotent; exits 0 when it cannot install (the browser tests then skip with a reason).
set -u
for path in /usr/bin/chromium /usr/lib/chromium/chromium; do
  if [ -x "$path" ]; then
    echo "setup_chromium: chromium present ($("$path" --version 2>/dev/null | head -n1))"
    exit 0
  fi
done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup_chromium: no apt-get; install Chromium yourself (the console browser tests will skip)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "setup_chromium: not root and no sudo; the console browser tests will skip"; exit 0; fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q chromium >/dev/null 2>&1; then
  $SUDO apt-get update -q >/dev/null 2>&1 || true
  $SUDO apt-get install -y -q chromium >/dev/null 2>&1 \
    || { echo "setup_chromium: apt-get install chromium failed; the console browser tests will skip"; exit 0; }
fi
echo "setup_chromium: installed $(/usr/bin/chromium --version 2>/dev/null | head -n1)"
exit 0
