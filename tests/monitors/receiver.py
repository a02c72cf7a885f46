"""A local webhook receiver that can fail requests (HTTP 500) and go down (port closed) on demand."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from app.events.webhooks import SIGNATURE_HEADER, verify


class Receiver:
    def __init__(self, port: int, secret: str, fail_first: int = 0) -> None:
        self.port, self.secret, self.fail_first = port, secret, fail_first
        self.url = f"http://127.0.0.1:{port}/hook"
        self.requests = 0
        self.received: list[dict] = []  # accepted deliveries: event, signature_ok, at
        self._lock = threading.Lock()
        self.httpd: ThreadingHTTPServer | None = None

    def up(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.requests += 1
                    fail = receiver.requests <= receiver.fail_first
                    if not fail:
                        receiver.received.append({
                            "event": json.loads(body)["event"],
                            "signature_ok": verify(receiver.secret, body, self.headers[SIGNATURE_HEADER]),
                            "header_id": self.headers["X-MarginFace-Event-Id"],
                            "at": time.time(),
                        })
                self.send_response(500 if fail else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def down(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def arrivals(self) -> dict[str, float]:
        """Event id → when it first arrived."""
        with self._lock:
            out: dict[str, float] = {}
            for r in self.received:
                out.setdefault(r["event"]["id"], r["at"])
            return out

    def ids(self) -> list[str]:
        with self._lock:
            return [r["event"]["id"] for r in self.received]
