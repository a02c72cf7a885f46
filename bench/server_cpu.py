"""Where a ``/identify`` request's CPU goes (issue 17): the server's own process, its analysis workers and
the load generator, in ms of CPU time per request (``/proc/PID/stat``), beside the single-thread unit.

    .venv/bin/python -m bench.server_cpu [--concurrency 16] [--requests 400] [--rounds 3]

A real ``marginface serve`` (default settings: API keys on) on a 2,000-face gallery, LFW photos asking for
one face each, as bench_throughput's HTTP rows. Each round prints the rate, its ratio to cores × unit (the
unit measured just before and after), and the CPU per request of each process, with the server's threads.
Diagnostic output only: it writes nothing to bench/RESULTS.md. Needs ``../shared/data/lfw``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User + system CPU seconds of a process (or one of its threads)."""
    path = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(x) for x in found]


def threads(pid: int) -> dict[int, float]:
    seen = {}
    for name in os.listdir(f"/proc/{pid}/task"):
        try:
            seen[int(name)] = cpu_seconds(pid, int(name))
        except FileNotFoundError:  # ended meanwhile
            continue
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from bench.bench_throughput import LFW, identify_server, lfw_photos, loop_rate
    from bench.http_load import post_request, run_load
    from models.detectors.policy import DetectionPolicy
    from models.pipeline import FacePipeline
    from models.topology import available_cores, limit_opencv_threads

    if not (LFW / "pairs.txt").is_file():
        raise SystemExit(f"LFW not found at {LFW}")
    limit_opencv_threads(1)
    photos = [p.read_bytes() for p in lfw_photos(120)]
    unit_pipeline, policy = FacePipeline.from_pack("default", ["cpu"], threads=1), DetectionPolicy()
    cores, n = available_cores(), args.requests
    with identify_server(unit_pipeline) as (server, key):
        fields = {"gallery": "bench", "top_k": "1", "max_faces": "1"}
        bodies = [post_request(server.url, "/identify", fields, p, key) for p in photos]
        run_load(server.url, bodies, 4, 40)  # warm-up
        pid = server.proc.pid
        for round_ in range(args.rounds):
            before = loop_rate(unit_pipeline, photos, policy)[0]
            workers = children(pid)
            start = {p: cpu_seconds(p) for p in [pid, *workers]}
            start_threads, start_me = threads(pid), os.times()
            result = run_load(server.url, bodies, args.concurrency, n, warmup=0)
            end = {p: cpu_seconds(p) for p in start}
            end_threads, end_me = threads(pid), os.times()
            after = loop_rate(unit_pipeline, photos, policy)[0]
            unit = (before + after) / 2
            server_ms = (end[pid] - start[pid]) / n * 1000
            workers_ms = sum(end[p] - start[p] for p in workers) / n * 1000
            client_ms = (end_me.user + end_me.system - start_me.user - start_me.system) / n * 1000
            print(f"round {round_ + 1}: {result.rate:.1f} req/s, ratio {result.rate / (cores * unit):.3f} "
                  f"(unit {before:.1f}/{after:.1f} photos/s = {1000 / unit:.1f} ms) | CPU ms/request: server "
                  f"{server_ms:.2f}, workers {workers_ms:.2f} ({workers_ms * unit / 1000:.2f}× unit), load "
                  f"generator {client_ms:.2f}", flush=True)
            busy = sorted(((end_threads[t] - start_threads.get(t, 0.0)) / n * 1000, t) for t in end_threads)
            print("  server threads (ms/request): "
                  + ", ".join(f"{t}: {ms:.2f}" for ms, t in reversed(busy) if ms >= 0.05), flush=True)


if __name__ == "__main__":
    main()
