"""A small Dockerfile reader for the tests: instructions with continuation lines joined, exec-form JSON
arrays, and ENV key=value pairs."""

from __future__ import annotations

import json
import shlex
from pathlib import Path


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in file order; comments dropped, backslash continuations joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, rest = full.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def final_stage(path: Path) -> list[tuple[str, str]]:
    """The instructions after the last FROM (what the running image is made of)."""
    items = instructions(path)
    last = max(i for i, (k, _) in enumerate(items) if k == "FROM")
    return items[last:]


def exec_form(args: str) -> list[str]:
    """A JSON exec-form array (``["a", "b"]``); shell form is refused so signals reach the server."""
    value = json.loads(args)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"not an exec-form array: {args}")
    return value


def env(path: Path) -> dict[str, str]:
    """Every ENV of the final stage (``ENV a=1 b=2`` form)."""
    values: dict[str, str] = {}
    for keyword, args in final_stage(path):
        if keyword == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                values[key] = value
    return values


def command(path: Path) -> list[str]:
    """ENTRYPOINT + CMD of the final stage, as the container runs them."""
    entry: list[str] = []
    cmd: list[str] = []
    for keyword, args in final_stage(path):
        if keyword == "ENTRYPOINT":
            entry = exec_form(args)
        elif keyword == "CMD":
            cmd = exec_form(args)
    return entry + cmd


def healthcheck(path: Path) -> tuple[dict[str, str], list[str]]:
    """(options such as --interval, the exec-form CMD) of the final stage's HEALTHCHECK."""
    for keyword, args in final_stage(path):
        if keyword == "HEALTHCHECK":
            options, _, cmd = args.partition("CMD ")
            opts = dict(item.lstrip("-").split("=", 1) for item in options.split())
            return opts, exec_form(cmd)
    raise ValueError(f"{path} has no HEALTHCHECK")
