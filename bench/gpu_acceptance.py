"""GPU acceptance in one command (under 8 minutes on one H200): install the `gpu` extras, then

1. providers: CUDA and TensorRT (fp16) execution providers against CPU on real aligned faces (cosine ≥ 0.999
   per face) through the server's own ``Embedder`` (no silent fallback: the provider in use is checked);
2. export: ``marginface export --tensorrt`` on an iresnet50 checkpoint; the server path (``FacePipeline``
   with ``MARGINFACE_TENSORRT_ENGINE=1``, then ``/verify`` over the app) serves with the engine and the same
   parity;
3. faiss: GPU flat search against CPU flat search (same top-10) and queries/s at 10M × 512;
4. embedding: iresnet50 fp16 faces/s at batch 1/32/128 through ``TensorRTEmbedder`` and ``Embedder``
   (ORT TensorRT EP) beside the bare engine / bare ORT session in the same run;
5. trainer: images/s of iresnet50 bf16 at batch 128, the trainer beside a bare PyTorch loop.

    python -m bench.gpu_acceptance                 # on the GPU machine; writes bench/out/gpu_acceptance.json
    python -m bench.gpu_acceptance --write         # ... and its section of bench/RESULTS.md
    python -m bench.gpu_acceptance --dry-run       # CPU: everything that needs no device (CI runs this)

``--dry-run`` runs every step with CPU stand-ins (small model, 100k vectors, CPU provider as the "GPU"
side) and checks the refusals that stand in for the device (export --tensorrt, the engine runtime).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

from bench.gpu_steps import (
    embedding_step,
    export_step,
    faiss_step,
    install_step,
    providers_step,
    trainer_step,
)
from bench.results import BENCH_DIR, machine, update_results

REPO = BENCH_DIR.parent
TITLE = "GPU acceptance (CUDA / TensorRT / faiss-gpu / trainer)"
STEPS = [
    ("providers", providers_step),
    ("export", export_step),
    ("faiss", faiss_step),
    ("embedding", embedding_step),
    ("trainer", trainer_step),
]


def run_steps(dry_run: bool, work: Path, budget_s: float) -> dict:
    """Every step in order; a failing step is recorded (with its error) and the next one still runs."""
    results: dict = {"dry_run": dry_run, "machine": machine(), "steps": {}}
    started = time.monotonic()
    for name, step in STEPS:
        left = budget_s - (time.monotonic() - started)
        t0 = time.monotonic()
        print(f"[gpu_acceptance] {name} ({left:.0f} s of the budget left)", file=sys.stderr, flush=True)
        if left <= 0:
            results["steps"][name] = {"status": "skipped", "why": "time budget spent"}
            continue
        try:
            outcome = step(dry_run=dry_run, work=work)
        except Exception as exc:  # noqa: BLE001 - one failing step must not hide the others
            outcome = {
                "status": "fail",
                "why": f"{type(exc).__name__}: {exc}",
                "trace": traceback.format_exc(),
            }
        outcome["seconds"] = round(time.monotonic() - t0, 1)
        results["steps"][name] = outcome
        print(f"[gpu_acceptance] {name}: {outcome['status']} in {outcome['seconds']} s", file=sys.stderr)
    results["seconds"] = round(time.monotonic() - started, 1)
    results["ok"] = all(s["status"] in ("ok", "skipped") for s in results["steps"].values())
    return results


def tables(results: dict) -> list[dict]:
    """One table for bench/RESULTS.md: each step's status, checks and numbers."""
    rows = []
    for name, step in results["steps"].items():
        numbers = "; ".join(f"{k}: {v}" for k, v in step.get("numbers", {}).items())
        rows.append([name, step["status"], step.get("seconds", "–"), step.get("why", ""), numbers])
    notes = [
        f"{'DRY RUN on the CPU (stand-ins, no device)' if results['dry_run'] else 'On the GPU machine'}; "
        f"total {results['seconds']} s.",
        "Every speed is measured beside its bare peer in the same run (same batch, same model).",
    ]
    return [
        {
            "title": TITLE,
            "columns": ["step", "status", "s", "why / note", "numbers"],
            "rows": rows,
            "notes": notes,
        }
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU only: everything that needs no device")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out" / "gpu_acceptance.json")
    parser.add_argument("--write", action="store_true", help="also update this section of bench/RESULTS.md")
    parser.add_argument("--no-install", action="store_true", help="use this environment as it is")
    parser.add_argument("--wheelhouse", type=Path, help="install the extras from these wheels (offline)")
    parser.add_argument("--budget-s", type=float, default=450.0, help="stop starting steps after this")
    args = parser.parse_args(argv)
    work = args.out.parent / "gpu_acceptance_work"
    work.mkdir(parents=True, exist_ok=True)

    if not args.no_install:
        install = install_step(dry_run=args.dry_run, work=work, wheelhouse=args.wheelhouse)
        if install.get("python"):  # a fresh environment with the GPU extras: go on in it
            command = [
                install["python"],
                "-m",
                "bench.gpu_acceptance",
                "--no-install",
                "--out",
                str(args.out),
                "--budget-s",
                str(args.budget_s - install["seconds"]),
            ] + (["--write"] if args.write else [])
            done = subprocess.run(command, cwd=REPO, env=os.environ | install.get("env", {}))
            _merge_install(args.out, install)
            return done.returncode
    else:
        install = {"status": "skipped", "why": "--no-install: the running environment is used"}
    results = run_steps(args.dry_run, work, args.budget_s)
    results["steps"] = {"install": install, **results["steps"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    for table in tables(results):
        from bench.results import table_markdown

        print(table_markdown(table))
    if args.write:
        command = "python -m bench.gpu_acceptance" + (" --dry-run" if args.dry_run else "")
        update_results(tables(results), BENCH_DIR / "RESULTS.md", command, results["machine"])
    print(f"[gpu_acceptance] results in {args.out}", file=sys.stderr)
    return 0 if results["ok"] else 1


def _merge_install(out: Path, install: dict) -> None:
    if out.is_file():
        results = json.loads(out.read_text())
        results["steps"]["install"] = {k: v for k, v in install.items() if k not in ("python", "env")}
        out.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(main())
