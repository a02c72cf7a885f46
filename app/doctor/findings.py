"""A doctor finding (one thing checked) and the report: text for people, JSON for scripts, a log summary."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["ok", "warn", "fail", "skip"]
MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL", "skip": "--  "}


@dataclass
class Finding:
    """``what`` was checked; ``detail`` is what was found; for anything that cannot work, ``why`` and the
    command that fixes it (``fix``)."""

    what: str
    status: Status
    detail: str = ""
    why: str | None = None
    fix: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def render_text(findings: list[Finding]) -> str:
    lines = []
    for f in findings:
        lines.append(f"[{MARK[f.status]}] {f.what}: {f.detail}".rstrip(": "))
        if f.why:
            lines.append(f"         why: {f.why}")
        if f.fix:
            lines.append(f"         fix: {f.fix}")
    failed = sum(f.status == "fail" for f in findings)
    warned = sum(f.status == "warn" for f in findings)
    lines.append(
        f"{failed} problem(s), {warned} warning(s)" if failed or warned else "everything checked is OK"
    )
    return "\n".join(lines)


def render_json(findings: list[Finding]) -> str:
    ok = not any(f.status == "fail" for f in findings)
    return json.dumps({"ok": ok, "findings": [asdict(f) for f in findings]}, indent=2)


def summary_line(findings: list[Finding]) -> str:
    """One line for the server log: each finding as what=detail, then the problems."""
    parts = [f"{f.what}={f.detail}" for f in findings if f.status == "ok" and f.detail]
    skipped = [f.what for f in findings if f.status == "skip"]
    if skipped:
        parts.append(f"not in use (no GPU expected): {', '.join(skipped)}")
    problems = [
        f"{f.what}: {f.why or f.detail} (fix: {f.fix})" for f in findings if f.status in ("warn", "fail")
    ]
    text = "; ".join(parts)
    if problems:
        text += " | PROBLEMS: " + "; ".join(problems)
    return text
