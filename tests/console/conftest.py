"""Console fixtures: a live server with auth, Chromium through Playwright, photos of real faces."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console.live import CHROMIUM_ARGS, LiveServer, artifacts_dir, chromium_path, make_keys
from tests.server.conftest import (  # noqa: F401 - fixtures shared with the server tests
    astronaut_jpeg,
    make_client,
    make_settings,
    t1_bgr,
    t1_faces,
)


@pytest.fixture(scope="module")
def live(default_pack: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A running server with auth on: {"url", "admin", "plain", "server"}."""
    folder = tmp_path_factory.mktemp("console_live")
    url = f"sqlite:///{folder / 'marginface.db'}"
    tokens = make_keys(url)
    server = LiveServer(url, folder / "server.log").start()
    try:
        yield {"url": server.url, "server": server, **tokens}
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Debian Chromium; the test is skipped when it or Playwright is missing."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("Chromium is not installed (scripts/ci/setup_chromium.sh installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (dev extra)")
    sync_api.expect.set_options(timeout=20_000)  # a shared 2-core CI machine can be slow
    with sync_api.sync_playwright() as p:
        # a fake camera (a test pattern, no face) so the webcam path runs without a device
        fake_camera = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
        browser = p.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS + fake_camera
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, live, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh tab (own sessionStorage) that fails the test on any JavaScript error or dialog."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    dialogs: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # "Failed to load resource" is Chromium noting an HTTP error answer (a 401 on a wrong key): expected.
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )

    def on_dialog(dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.js_errors = errors
    page.dialogs = dialogs
    yield page
    # the last state of every test, for when one fails
    page.screenshot(path=str(artifacts_dir() / f"last_{request.node.name}.png"), full_page=True)
    context.close()


@pytest.fixture(scope="session")
def shots() -> Path:
    return artifacts_dir()
