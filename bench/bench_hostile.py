"""Peak memory of the server under a hostile upload corpus (``python -m bench.bench_hostile [--write]``).

Two tables:
- the decoder alone, per corpus image: peak RSS of a fresh process decoding it with the current
  ``models.images`` beside the pre-fix decoder (read from git at ``PRE_FIX``: uint16/float intermediates);
- a real ``marginface serve`` (default limits, SQLite, default pack) fed the corpus sequentially, as base64
  JSON, as 16-image enrolments and from many concurrent clients; peak RSS above the warmed-up idle RSS,
  sampled from /proc every few ms (and VmHWM, reset with clear_refs before each scenario).
"""

from __future__ import annotations

import base64
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import httpx
import numpy as np

from bench.results import main_for
from tests.server.servers import ServerProcess

REPO = Path(__file__).resolve().parents[1]
PRE_FIX = "9ae75c9"  # the last commit with the old decode path (uint16 compositing, float 16-bit scaling)
TARGET_MB = 400


def _status_kib(pid: int | str, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    raise KeyError(key)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the server's analysis processes decode the photos, issue 17)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            todo += [int(c) for c in task.read_text().split()]
    return out


def _tree_kib(pid: int, key: str) -> int:
    total = 0
    for member in _tree(pid):
        try:
            total += _status_kib(member, key)
        except (OSError, KeyError):  # a child that just exited
            continue
    return total


class PeakRss:
    """Highest RSS of ``pid`` and its children together while the block runs: a 5 ms sampler of the sum,
    and the sum of VmHWM (reset on entry; an upper bound, as the processes' peaks need not coincide)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakRss:
        try:
            for member in _tree(self.pid):
                Path(f"/proc/{member}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            self._hwm = True
        except OSError:
            self._hwm = False
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, _tree_kib(self.pid, "VmRSS"))
            time.sleep(0.005)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._hwm:
            self.peak_kib = max(self.peak_kib, _tree_kib(self.pid, "VmHWM"))


class Server(ServerProcess):
    """``marginface serve`` in its own home (default pack installed there), store ``<home>/marginface.db``."""

    def __init__(self, home: Path, auth: bool = False, **env: str) -> None:
        url = f"sqlite:///{home / 'marginface.db'}"
        super().__init__(url, home / "server.log", auth=auth, MARGINFACE_HOME=str(home), **env)
        self.home = home

    def __enter__(self) -> Server:
        self.start(timeout=120)
        return self

    def rss_mb(self) -> float:
        """The server's and its analysis processes' RSS together."""
        assert self.proc is not None
        return _tree_kib(self.proc.pid, "VmRSS") / 1024


def install_default_pack(home: Path) -> None:
    code = "from models.packs.install import install_pack; install_pack('default', progress=False)"
    env = os.environ | {"MARGINFACE_HOME": str(home)}
    env.pop("MARGINFACE_PACKS_DIR", None)
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, capture_output=True)


def face_jpeg() -> bytes:
    from skimage import data

    ok, encoded = cv2.imencode(".jpg", data.astronaut()[:, :, ::-1])
    assert ok
    return encoded.tobytes()


def noise_jpeg(target_bytes: int = 9 * 1024 * 1024) -> bytes:
    """A JPEG of noise just under ``target_bytes`` (the largest base64 JSON body a client may send)."""
    rng = np.random.default_rng(0)
    side = 2400
    while True:
        pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 100])
        if len(encoded) <= target_bytes or side < 256:
            return encoded.tobytes()
        side = int(side * 0.9)


def post_image(client: httpx.Client, data: bytes, as_json: bool) -> int:
    if as_json:
        body = {"image": base64.b64encode(data).decode()}
        return client.post("/detect", json=body).status_code
    return client.post("/detect", files={"image": ("x", data, "application/octet-stream")}).status_code


Measured = list[tuple[str, int, Counter, float]]


def scenarios(server: Server, corpus: list[tuple[str, bytes]], quick: bool) -> Measured:
    """(scenario, requests, status counts, peak MB above idle) for each way of sending the corpus."""
    face = face_jpeg()
    big_jpeg = noise_jpeg()
    with httpx.Client(base_url=server.url, timeout=1800) as client:
        assert client.post("/galleries", json={"name": "g"}).status_code == 201
        enrolled = client.post("/galleries/g/enroll", data={"subject": "a"}, files={"image": face})
        assert enrolled.status_code == 201, enrolled.text
        for _ in range(3):
            client.post("/identify", data={"gallery": "g"}, files={"image": face})
            post_image(client, big_jpeg, as_json=True)
        time.sleep(1.0)
        idle = server.rss_mb()
        results = []

        def measure(name: str, work) -> None:
            with PeakRss(server.proc.pid) as peak:
                statuses = work()
            results.append((name, sum(statuses.values()), statuses, peak.peak_kib / 1024 - idle))

        for label, as_json in (("multipart", False), ("base64 JSON", True)):
            def each(j: bool = as_json) -> Counter:
                return Counter(post_image(client, d, j) for _, d in corpus)

            measure(f"each image once, {label}", each)
        big = [d for n, d in corpus if n in ("png8_rgba_40mp", "webp_rgba_40mp", "png16_rgba_40mp")]

        def enroll16() -> Counter:
            out = Counter()
            for data in big:
                files = [("image", (f"{i}.png", data, "application/octet-stream")) for i in range(16)]
                response = client.post("/galleries/g/enroll", data={"subject": "bomb"}, files=files)
                out[response.status_code] += 1
            return out

        measure("enroll with 16 × 40 MP images", enroll16)

        def concurrent() -> Counter:
            pool_items = [d for _, d in corpus] + [big_jpeg, face]
            rng = random.Random(1)
            jobs = [(rng.choice(pool_items), rng.random() < 0.5) for _ in range(48 if quick else 96)]

            def one(job: tuple[bytes, bool]) -> int:
                with httpx.Client(base_url=server.url, timeout=1800) as own:
                    return post_image(own, *job)

            with ThreadPoolExecutor(32) as pool:
                return Counter(pool.map(one, jobs))

        label = f"32 concurrent clients, {48 if quick else 96} mixed requests (corpus + 12 MB JSON)"
        measure(label, concurrent)
    results.append(("idle RSS (MB, after warm-up)", 0, Counter(), idle))
    return results


_DECODE_ONE = """
import sys, importlib.util
name, which, path = sys.argv[1], sys.argv[2], sys.argv[3]
def kib(key): return int([l.split()[1] for l in open('/proc/self/status') if l.startswith(key)][0])
if which == 'old':
    spec = importlib.util.spec_from_file_location('old_images', sys.argv[4])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
else:
    import models.images as mod
data = open(path, 'rb').read(); start = kib('VmRSS')
try: result = 'x'.join(map(str, mod.decode_image(data).shape[:2]))
except Exception as exc: result = getattr(exc, 'code', type(exc).__name__)
print(result, (kib('VmHWM') - start) / 1024)
"""


def decoder_table(corpus: list[tuple[str, bytes]], work: Path) -> dict:
    old = work / "old_images.py"
    shown = subprocess.run(["git", "show", f"{PRE_FIX}:models/images.py"], cwd=REPO, capture_output=True)
    have_old = shown.returncode == 0
    if have_old:
        old.write_bytes(shown.stdout)
    rows = []
    for name, data in corpus:
        path = work / name
        path.write_bytes(data)
        row: list[object] = [name, f"{len(data):,}"]
        for which in (("new", "old") if have_old else ("new",)):
            out = subprocess.run(
                [sys.executable, "-c", _DECODE_ONE, name, which, str(path), str(old)],
                cwd=REPO, capture_output=True, text=True, check=True,
            ).stdout.split()
            row += [out[0], float(out[1])] if which == "new" else [float(out[1])]
        rows.append(row if have_old else row + ["–"])
    notes = [
        "Peak RSS of a fresh process over its RSS just before decoding (VmHWM), one image per process.",
        f"pre-fix = models/images.py at commit {PRE_FIX} (uint16 RGBA compositing, float32 16-bit scaling, "
        "PIL's WebP reader)." if have_old else "pre-fix decoder not measured: git history not available.",
    ]
    return {
        "title": "Hostile images: decoder peak memory",
        "columns": ["image", "bytes", "result", "peak MB (now)", "peak MB (pre-fix)"],
        "rows": rows,
        "notes": notes,
    }


def fuzz_table(home: Path, quick: bool) -> dict:
    """schemathesis over /openapi.json with an admin key: requests, statuses, 5xx."""
    from tests.console.live import make_keys
    from tests.hostile.fuzz import (
        CHECKS,
        EXCLUDED_OPERATIONS,
        EXCLUDED_PATHS,
        run_schemathesis,
        schemathesis_command,
    )

    title = "Schema fuzzing (schemathesis)"
    if schemathesis_command() is None:
        return {"title": title, "skipped": "schemathesis is not installed (dev extra)"}
    tokens = make_keys(f"sqlite:///{home / 'marginface.db'}")
    examples = 10 if quick else 25
    with Server(home, auth=True) as server:
        result = run_schemathesis(server.url, tokens["admin"], home / "fuzz", max_examples=examples)
    statuses = ", ".join(f"{code}×{n}" for code, n in sorted(result["statuses"].items()))
    return {
        "title": title,
        "columns": ["max examples / operation", "requests", "5xx", "exit code", "statuses"],
        "rows": [[examples, result["requests"], result["server_errors"], result["returncode"], statuses]],
        "notes": [
            f"Checks: {CHECKS}; phases examples, coverage, fuzzing; seed 1; 2 workers; admin key; "
            f"excluded: {', '.join(EXCLUDED_PATHS)} (never-ending stream). Exit code 0 = no check failed.",
            "Same run as tests/hostile/test_schema_fuzz.py (which asserts 5xx = 0 and exit code 0). "
            "Also excluded: " + ", ".join(EXCLUDED_OPERATIONS) + " (it would revoke the fuzzer's own key "
            "once the fuzzer has created a second admin key).",
        ],
    }


def run(quick: bool) -> list[dict]:
    """All three tables; ``BENCH_HOSTILE_PARTS=fuzz`` (comma list of decoder, server, fuzz) runs fewer."""
    from tests.hostile.corpus import hostile_images

    parts = set(os.environ.get("BENCH_HOSTILE_PARTS", "decoder,server,fuzz").split(","))
    corpus = list(hostile_images()) if parts & {"decoder", "server"} else []
    tables = []
    with tempfile.TemporaryDirectory(prefix="bench_hostile_") as tmp:
        work = Path(tmp)
        if "decoder" in parts:
            tables.append(decoder_table(corpus, work))
        home = work / "home"
        home.mkdir()
        install_default_pack(home)
        if "server" in parts:
            with Server(home) as server:
                tables.append(server_table(scenarios(server, corpus, quick)))
        if "fuzz" in parts:
            fuzz_home = work / "fuzz_home"
            (fuzz_home / "packs").mkdir(parents=True)
            (fuzz_home / "packs" / "default").symlink_to(home / "packs" / "default")
            tables.append(fuzz_table(fuzz_home, quick))
    return tables


def server_table(measured: Measured) -> dict:
    """The peak-RSS table, with the default limits that produced it."""
    rows = []
    for name, requests, statuses, peak in measured:
        codes = ", ".join(f"{code}×{n}" for code, n in sorted(statuses.items())) or "–"
        rows.append([name, requests or "–", codes, round(peak, 1)])
    worst = max(peak for name, _, _, peak in measured if not name.startswith("idle"))
    from app.settings import Settings

    defaults = Settings()
    return {
        "title": "Hostile uploads: server peak RSS",
        "columns": ["scenario", "requests", "statuses", "peak MB above idle"],
        "rows": rows,
        "notes": [
            f"Worst peak above idle: {worst:.0f} MB (target < {TARGET_MB} MB); "
            + ("met." if worst < TARGET_MB else "NOT met."),
            f"Default limits: max_image_pixels {defaults.max_image_pixels:,}, decode budget = 8 B/pixel of "
            f"one such image, max_inflight_bytes {defaults.max_inflight_bytes // 2**20} MiB (JSON ×3), "
            f"max_request_bytes {defaults.max_request_bytes // 2**20} MiB, detect_threads "
            f"{defaults.detect_threads}.",
            "Pre-fix peer (same corpus, measured in the issue on the pre-fix server): one 40 MP RGBA PNG "
            "1.5 GB, one 16-image enrolment 2.76 GB; the decoder table above re-measures its per-image part.",
            "413 = too many pixels or bytes (refused before decoding), 400 = corrupt, 503 = busy (admission "
            "by bytes in flight). CPU shared with other work (2 cores).",
        ],
    }


if __name__ == "__main__":
    main_for(run, __doc__)
