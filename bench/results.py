"""Benchmark tables → ``bench/RESULTS.md`` (one table per benchmark, with machine and date) and plots.

A table is a dict: ``title``, ``columns`` (list of str), ``rows`` (list of lists), optional ``notes``
(list of str), ``plots`` (paths of PNGs under ``bench/img``), ``text`` (preformatted output of a benchmark
that only prints) and ``skipped`` (why it did not run).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
IMG_DIR = BENCH_DIR / "img"
OUT_DIR = BENCH_DIR / "out"  # gitignored scratch space (exported models)


def timed(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall seconds of ``fn`` over ``repeats`` runs after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def machine() -> str:
    """CPU model, cores, memory and load: the context every number here depends on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    gpu = "no GPU"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return f"{cpu}, {os.cpu_count()} cores{memory}, {gpu}; load average {load:.1f} at start"


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def table_markdown(table: dict) -> str:
    lines = [f"## {table['title']}", ""]
    if table.get("skipped"):
        lines += [f"_Skipped: {table['skipped']}_", ""]
    if table.get("columns") and table.get("rows"):
        lines.append("| " + " | ".join(table["columns"]) + " |")
        lines.append("|" + "---|" * len(table["columns"]))
        for row in table["rows"]:
            lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
        lines.append("")
    if table.get("text"):
        lines += ["```", table["text"].rstrip(), "```", ""]
    for note in table.get("notes", []):
        lines.append(f"- {note}")
    if table.get("notes"):
        lines.append("")
    for plot in table.get("plots", []):
        rel = Path(plot).resolve().relative_to(BENCH_DIR)
        lines += [f"![{table['title']}]({rel.as_posix()})", ""]
    return "\n".join(lines)


def write_results(tables: list[dict], path: Path, command: str, started: float, host: str) -> Path:
    """Write the whole report (overwrites ``path``)."""
    elapsed = time.time() - started
    head = [
        "# MarginFace benchmarks",
        "",
        f"- Command: `{command}`",
        f"- Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC}; "
        f"total run time {elapsed / 60:.1f} min",
        f"- Machine: {host}",
        "- Each number is measured beside its peer in the same run; the CPU may be shared with other work, "
        "so compare rows of one table rather than numbers across runs.",
        "",
    ]
    body = [table_markdown(t) for t in tables]
    path.write_text("\n".join(head + body))
    return path


def line_plot(path: Path, title: str, xlabel: str, ylabel: str, series: dict[str, tuple[list, list]],
              logx: bool = False, logy: bool = False) -> Path:
    """A small line chart with one line per series (x values, y values)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", label=label)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log", base=2)
    if logy:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def update_results(tables: list[dict], path: Path, command: str, host: str) -> Path:
    """Replace (or append) only these tables' sections in ``path``, each stamped with command, date, machine.

    A section runs from its ``## title`` line to the next ``## `` line; other sections stay as they are.
    """
    text = path.read_text() if path.exists() else "# MarginFace benchmarks\n"
    stamp = f"`{command}`, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC}; {host}"
    for table in tables:
        section = table_markdown({**table, "notes": [*table.get("notes", []), f"Measured by {stamp}."]})
        lines = text.split("\n")
        head = f"## {table['title']}"
        if head in lines:
            start = lines.index(head)
            end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
            lines[start:end] = section.rstrip("\n").split("\n") + [""]
            text = "\n".join(lines)
        else:
            text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n")
    return path


def main_for(run: Callable[[bool], list[dict]], doc: str | None) -> None:
    """Command-line entry for one benchmark module: ``--quick``, then its tables printed as markdown.

    ``--write`` also puts them into ``bench/RESULTS.md``, replacing only their own sections.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--write", action="store_true", help="update these sections of bench/RESULTS.md")
    args = parser.parse_args()
    host = machine()
    tables = run(args.quick)
    for table in tables:
        print(table_markdown(table))
    if args.write:
        command = f"python -m bench.{Path(sys.argv[0]).stem}" + " ".join(["", *sys.argv[1:]]).rstrip()
        update_results(tables, BENCH_DIR / "RESULTS.md", command, host)
