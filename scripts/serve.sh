#!/usr/bin/env bash
# First-time set-up and start of the MarginFace API server:
#   creates .venv, installs MarginFace (core dependencies, no torch), builds the default model pack when it
#   is missing, creates an admin API key on the very first run (printed once), then serves on :8000.
# Arguments go to `marginface serve` (e.g. --host 0.0.0.0 --port 9000, or --no-auth for a local trial).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
# The inference runtime is an extra: `cpu`, or `gpu` where the GPU build is already installed (never both).
runtime=cpu
.venv/bin/python -m pip show -q onnxruntime-gpu >/dev/null 2>&1 && runtime=gpu
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$runtime]" --config-settings editable_mode=compat
if ! .venv/bin/marginface models info default >/dev/null 2>&1; then
  .venv/bin/marginface models install default
fi
no_auth=0
for arg in "$@"; do [ "$arg" = "--no-auth" ] && no_auth=1; done
if [ "$no_auth" = 0 ]; then
  key=$(.venv/bin/marginface keys create --admin --name first-admin --if-none 2>/dev/null)
  if [ -n "$key" ]; then
    echo "================================================================================"
    echo "First run: an admin API key was created. It is shown only this once; keep it:"
    echo ""
    echo "    export MARGINFACE_KEY=$key"
    echo ""
    echo "Send it as 'Authorization: Bearer \$MARGINFACE_KEY'. More keys: .venv/bin/marginface keys create"
    echo "================================================================================"
  fi
fi
exec .venv/bin/marginface serve "$@"
