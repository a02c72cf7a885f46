"""The console's files: shipped in the package, nothing from another origin, no HTML built from data."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

from tests.server.servers import REPO_ROOT

STATIC = REPO_ROOT / "app" / "console" / "static"


def static_files() -> list[Path]:
    return sorted(p for p in STATIC.rglob("*") if p.is_file())


def test_every_console_file_is_package_data() -> None:
    tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ reads pyproject.toml")
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["app.console"]
    base = REPO_ROOT / "app" / "console"
    missing = [
        str(p.relative_to(base))
        for p in static_files()
        if not any(fnmatch.fnmatch(str(p.relative_to(base)), g) for g in globs)
    ]
    assert static_files() and not missing, f"add to package-data: {missing}"


def test_nothing_from_another_origin_and_no_inline_script() -> None:
    for path in static_files():
        text = path.read_text()
        # the SVG namespace is an identifier, not a fetch
        urls = [u for u in re.findall(r"(?:https?:)?//[\w.-]+\.\w+", text) if "www.w3.org" not in u]
        assert not urls, f"{path.name} refers to another origin: {urls}"
    html = (STATIC / "index.html").read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all('src="/console/' in attrs and not body.strip() for attrs, body in scripts)
    assert not re.search(r"\son[a-z]+=", html), "inline event handler in index.html"
    assert "style=" not in html


def test_scripts_never_parse_data_as_html() -> None:
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function")
    for path in STATIC.rglob("*.js"):
        found = sinks.findall(path.read_text())
        assert not found, f"{path.name} uses {found}"


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_text_colours_meet_wcag_aa() -> None:
    """Every text/background pair of the palette has a contrast of at least 4.5:1 (WCAG AA, small text)."""
    css = (STATIC / "console.css").read_text()
    var = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})", css))
    white = "#ffffff"
    pairs = {
        "text": (var["fg"], var["bg"]),
        "muted text": (var["muted"], var["bg"]),
        "muted on cards": (var["muted"], var["card"]),
        "links": (var["accent"], var["card"]),
        "buttons": (var["accent-fg"], var["accent"]),
        "danger buttons": (white, var["danger"]),
        "match labels": (white, var["match"]),
        "unknown labels": (white, var["unknown"]),
        "ok notices": ("#14532d", var["ok-bg"]),
        "error notices": ("#7f1d1d", var["err-bg"]),
        "nav links": ("#e2e8f0", "#0f172a"),
    }
    low = {name: round(contrast(*pair), 2) for name, pair in pairs.items() if contrast(*pair) < 4.5}
    assert not low, f"below 4.5:1: {low}"
