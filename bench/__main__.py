"""``python -m bench [--quick]``: every benchmark, one ``bench/RESULTS.md`` with a table per benchmark.

Benchmarks owned by other modules are found by name. A module with ``run(quick) -> list[table]`` is called
in process; one that only prints is run as a subprocess and its output kept verbatim; an absent one is
listed as skipped.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import subprocess
import sys
import time
import traceback
from pathlib import Path

from bench.results import BENCH_DIR, machine, write_results

REPO = BENCH_DIR.parent
# (module, title, extra arguments for a printing script: quick run, full run)
BENCHMARKS: list[tuple[str, str, list[str], list[str]]] = [
    ("bench.bench_embedding", "Embedding and detection", [], []),
    ("bench.bench_search", "Gallery search", [], []),
    ("bench.bench_inference", "Inference overhead vs bare ONNX Runtime", ["--repeats", "10"], []),
    ("bench.bench_sface_fold", "SFace / YuNet pack graphs vs published int8", ["--repeats", "5"], []),
    ("bench.bench_server", "Server load (concurrency 1/4/16 vs plain loop)",
     ["--faces", "10000", "--requests", "30"], []),
    ("bench.bench_training", "Training", [], []),
    ("bench.bench_finetune", "Fine-tuning SFace on CelebA (held-out, LFW, compatibility)", [], []),
    ("bench.bench_hostile", "Hostile uploads: peak memory and schema fuzzing", [], []),
    ("bench.bench_integrity", "Integrity: model-based random walks against real servers", ["--quick"], []),
    ("bench.bench_openset", "Open-set identification: calibrated vs fixed threshold", [], []),
    ("bench.bench_monitors", "Camera monitors: 5 fps streams sustained, event latency", [], []),
    ("bench.bench_docker", "Docker image (CPU): size, build time, cold start", [], []),
    ("bench.bench_throughput", "Throughput: every core busy (issue 17)", [], []),
]
SUBPROCESS_TIMEOUT_S = 900


def _run_script(module: str, title: str, args: list[str]) -> dict:
    path = REPO / (module.replace(".", "/") + ".py")
    command = [sys.executable, str(path.relative_to(REPO)), *args]
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"title": title, "skipped": f"`{' '.join(command[1:])}` ran over {SUBPROCESS_TIMEOUT_S} s"}
    table = {"title": title, "text": done.stdout.strip() or "(no output)",
             "notes": [f"`python {' '.join(command[1:])}` ({time.perf_counter() - started:.0f} s); "
                       "the script prints its own table, kept verbatim."]}
    if done.returncode != 0:
        table["notes"].append(f"exit code {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
    return table


def run_all(quick: bool, only: list[str] | None = None) -> list[dict]:
    tables: list[dict] = []
    for module, title, quick_args, full_args in BENCHMARKS:
        if only and not any(name in module for name in only):
            continue
        if importlib.util.find_spec(module) is None:
            tables.append({"title": title, "skipped": f"{module} is not in this checkout yet"})
            continue
        print(f"[bench] {module} ({'quick' if quick else 'full'})", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            loaded = importlib.import_module(module)
            if hasattr(loaded, "run"):
                produced = loaded.run(quick)
                if produced:
                    elapsed = time.perf_counter() - started
                    produced[-1].setdefault("notes", []).append(f"{module} (all its tables): {elapsed:.0f} s")
                tables.extend(produced)
            else:
                tables.append(_run_script(module, title, quick_args if quick else full_args))
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not lose the others' results
            traceback.print_exc()
            tables.append({"title": title, "skipped": f"failed: {type(exc).__name__}: {exc}"})
    return tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (no 1M gallery), fewer repeats")
    parser.add_argument("--only", nargs="*", help="run only benchmarks whose module name contains these")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "RESULTS.md")
    args = parser.parse_args(argv)
    started = time.time()
    host = machine()
    tables = run_all(args.quick, args.only)
    command = "python -m bench" + (" --quick" if args.quick else "")
    path = write_results(tables, args.out, command, started, host)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
