#!/usr/bin/env bash
# Install everything the tests need into .venv (PyTorch CPU, test tools, insightface as the
# alignment reference) and run the whole suite: lint, Dockerfile lint, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[train,dev]' --config-settings editable_mode=compat
# insightface is only the reference for alignment parity and the source of its sample photos;
# --no-deps keeps its GUI and opencv-python (non-headless) out of the environment.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps 'insightface==2.1'
for hook in scripts/ci/setup_*.sh; do
  [ -e "$hook" ] || continue
  echo "[test.sh] $hook"
  bash "$hook"
done
.venv/bin/ruff check .
if ls docker/Dockerfile* >/dev/null 2>&1; then
  # (docker/Dockerfile*.dockerignore are BuildKit's per-Dockerfile ignore files, not Dockerfiles)
  .venv/bin/hadolint $(ls docker/Dockerfile* | grep -v '\.dockerignore$')
fi
exec .venv/bin/python -m pytest -q "$@"
