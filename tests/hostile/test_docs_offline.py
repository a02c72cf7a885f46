"""/docs is served from the package: the page references only local assets and renders in Chromium with
every non-local request blocked (an offline machine)."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.console.live import CHROMIUM_ARGS, chromium_path
from tests.server.servers import free_port


def test_docs_page_references_only_packaged_assets(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(home=tmp_path, auth=False), load_packs=False)) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        urls += re.findall(r"url: '([^']+)'", page.text)  # the OpenAPI document
        assert urls and not [u for u in urls if "//" in u]  # nothing from a CDN
        for url in urls:
            r = client.get(url)
            assert r.status_code == 200, url
        assert client.get("/docs-assets/swagger-ui-bundle.js").headers["content-type"].startswith(
            ("application/javascript", "text/javascript")
        )
        assert client.get("/docs-assets/LICENSE").status_code == 200
        assert client.get("/redoc").status_code == 404  # ReDoc would come from a CDN


def test_docs_render_offline_in_chromium(tmp_path: Path) -> None:
    executable = chromium_path()
    if executable is None:
        pytest.skip("Chromium is not installed (scripts/ci/setup_chromium.sh installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (dev extra)")
    app = create_app(Settings(home=tmp_path, auth=False), load_packs=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    blocked: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page()

            def offline(route) -> None:
                if route.request.url.startswith(f"http://127.0.0.1:{port}/"):
                    route.continue_()
                else:
                    blocked.append(route.request.url)
                    route.abort()

            page.route("**/*", offline)
            page.goto(f"http://127.0.0.1:{port}/docs")
            page.wait_for_selector(".opblock", timeout=30_000)
            operations = page.locator(".opblock").count()
            title = page.locator(".info .title").inner_text()
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert operations >= 10 and "MarginFace" in title
    assert blocked == []
