"""``marginface doctor``: what the runtime finds (Python, ONNX Runtime and its providers, CUDA, cuDNN,
TensorRT, FAISS GPU support, packs, store) and, for each thing that cannot work, why and the fix."""

from __future__ import annotations

import functools
import logging

from app.doctor.findings import Finding, render_json, render_text, summary_line
from app.doctor.packs_store import check_packs, check_store
from app.doctor.runtime import check_cuda, check_faiss, check_onnxruntime, check_python, wants_gpu

__all__ = ["Finding", "diagnose", "log_startup_summary", "render_json", "render_text"]


def diagnose(
    settings=None, *, verify_packs: bool = True, store: bool = True, gpu: bool | None = None
) -> list[Finding]:
    """Every check, in order. ``gpu``: expect a GPU (None: when the providers or installed builds do)."""
    findings: list[Finding] = []
    if settings is None:
        from pydantic import ValidationError

        from app.settings import Settings

        try:
            settings = Settings()
        except ValidationError as exc:
            first = exc.errors()[0]
            name = (
                "MARGINFACE_" + str(first["loc"][0]).upper() if first.get("loc") else "a MARGINFACE_ variable"
            )
            findings.append(
                Finding(
                    "settings",
                    "fail",
                    f"{name} is invalid",
                    why=first["msg"],
                    fix=f"correct or unset {name} (see docs/server.md)",
                )
            )
            settings = Settings.model_construct()
    want_gpu = wants_gpu(settings.providers) if gpu is None else gpu
    findings += list(_runtime(want_gpu))
    findings += check_packs(list(settings.packs), verify_packs)
    if store:
        findings.append(check_store(settings.resolved_database_url()))
    return findings


@functools.lru_cache(maxsize=2)
def _runtime(want_gpu: bool) -> tuple[Finding, ...]:
    """The installed runtime does not change while a process runs: checked once per process."""
    return (check_python(), *check_onnxruntime(want_gpu), *check_cuda(want_gpu), check_faiss(want_gpu))


def log_startup_summary(settings, log: logging.Logger | None = None) -> None:
    """The doctor's runtime summary in one log line at server start-up (never raises)."""
    log = log or logging.getLogger("marginface.server")
    try:
        findings = diagnose(settings, verify_packs=False, store=False)
    except Exception as exc:  # noqa: BLE001 - a diagnostic must never stop the server
        log.warning("doctor: the start-up checks failed: %s", exc)
        return
    bad = any(f.status in ("warn", "fail") for f in findings)
    (log.warning if bad else log.info)("doctor: %s", summary_line(findings))
