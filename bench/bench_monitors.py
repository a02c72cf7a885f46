"""Camera monitors: how many 5 fps streams one server sustains with no event lost, and event latency.

Each configuration runs N HTTP MJPEG streams of the test scene (real photos: two enrolled people, one
stranger, six appearances per play) at 5 fps into a real ``marginface serve`` process with one global
webhook to a local receiver. A configuration is *sustained* when every expected event was stored with the
right decision and reached the webhook, and monitors kept ≥ 90 % of the 5 fps. Latency: the moment the
stream server sent the first frame with the face → the webhook request arrived. The peer measured in the
same run is the bare pipeline (detect + embed of one frame, no server): its frames per second / 5 is the
stream count the CPU could carry if detection were all there was.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import httpx
import numpy as np

from bench.results import main_for

FPS = 5
STREAMS_FULL = [1, 2, 4, 6]
STREAMS_QUICK = [1, 2]
RESOLUTIONS = [(640, 480), (1280, 720)]


def _people(pipeline) -> dict[str, np.ndarray]:
    from skimage import data

    from models.packs.checks import insightface_image
    from tests.monitors.media import face_crop

    t1 = cv2.imread(str(insightface_image("t1.jpg")))
    faces = sorted(pipeline.detect(t1), key=lambda f: f.box[0])
    out = {f"person{i}": face_crop(t1, f.box) for i, f in enumerate(faces)}
    astronaut = np.ascontiguousarray(data.astronaut()[:, :, ::-1])
    out["astronaut"] = face_crop(astronaut, pipeline.detect(astronaut)[0].box)
    return out


def _bare_fps(pipeline, frames: list[np.ndarray]) -> float:
    """Frames per second of detect + align + embed in a plain loop (no server, no decoding)."""
    start = time.perf_counter()
    for frame in frames:
        faces = pipeline.detect(frame, min_size=40)
        if faces:
            pipeline.embed_crops(pipeline.align(frame, faces))
    return len(frames) / (time.perf_counter() - start)


def _match(event: dict, plays: list[float], timeline) -> float | None:
    """Send time of the first frame of the appearance this event reports (None: no such appearance)."""
    from datetime import datetime

    seen = datetime.fromisoformat(event["first_seen"]).timestamp()
    who = event["subject"] if event["kind"] == "recognized" else None
    best = None
    for start in plays:
        for a in timeline:
            if (a.who if a.who in ("person0", "person2") else None) != who:
                continue
            at = start + a.start
            if abs(seen - at) < 1.5 and (best is None or abs(seen - at) < abs(seen - best)):
                best = at
    return best


def _run_config(server_url: str, frames, n: int, receiver, scene_s: float, timeline) -> dict:
    from tests.monitors.media import MjpegServer

    api = httpx.Client(base_url=server_url, timeout=30)
    streams = [MjpegServer(frames, fps=FPS).start() for _ in range(n)]
    before = set(receiver.ids())
    try:
        for i, stream in enumerate(streams):
            r = api.post("/monitors", json={"name": f"cam{i}", "source": stream.url, "gallery": "bench",
                                            "fps": FPS, "min_face": 40, "absence_s": 1.5})
            r.raise_for_status()
        # each stream plays the scene once; its start = when its server sent the first frame
        deadline = time.monotonic() + scene_s + 60
        while time.monotonic() < deadline and not all(s.clients for s in streams):
            time.sleep(0.05)
        time.sleep(scene_s / 2)  # mid-play: the monitors' measured fps (a 5 s window)
        fps = [m["health"]["fps"] for m in api.get("/monitors").json()["monitors"]]
        time.sleep(scene_s / 2 + 6)
        health = {m["name"]: m["health"] for m in api.get("/monitors").json()["monitors"]}
        events = api.get("/events", params={"limit": 1000}).json()["events"]
        events = [e for e in events if e["id"] not in before and e["monitor"].startswith("cam")]
        wait = time.monotonic() + 20
        while time.monotonic() < wait and not {e["id"] for e in events} <= set(receiver.ids()):
            time.sleep(0.2)
    finally:
        for i in range(n):
            api.delete(f"/monitors/cam{i}")
        for s in streams:
            s.stop()
    got = {e["id"]: e for e in events}
    arrivals = receiver.arrivals()
    latencies = []
    correct = 0
    for e in events:
        i = int(e["monitor"][3:])
        sent = _match(e, [streams[i].play_started or 0.0], timeline)
        if sent is not None:
            correct += 1
            if e["id"] in arrivals:
                latencies.append((e["kind"], arrivals[e["id"]] - sent))
    expected = 6 * n
    delivered = sum(1 for uid in got if uid in arrivals)
    dropped = sum(h["frames_dropped"] for h in health.values())
    return {"expected": expected, "stored": len(events), "correct": correct, "delivered": delivered,
            "fps": min(fps) if fps else 0.0, "dropped": dropped, "latencies": latencies}


def run(quick: bool) -> list[dict]:
    from app.events.webhooks import verify  # noqa: F401 - the receiver checks signatures with it
    from models.packs.install import install_pack
    from tests.monitors.media import DURATION, TIMELINE, render_frames
    from tests.monitors.receiver import Receiver
    from tests.server.servers import ServerProcess, free_port

    home = Path(tempfile.mkdtemp(prefix="mf-bench-monitors-"))
    os.environ["MARGINFACE_HOME"] = str(home)
    install_pack("default", progress=False)
    from models.pipeline import FacePipeline

    pipeline = FacePipeline.from_pack("default")
    people = _people(pipeline)
    secret = "bench-secret-0123456789"
    receiver = Receiver(free_port(), secret).up()
    rows = []
    env = {"MARGINFACE_HOME": str(home), "MARGINFACE_WEBHOOK_POLL_S": "0.2"}
    server = ServerProcess(f"sqlite:///{home / 'bench.db'}", home / "server.log", **env).start()
    try:
        api = httpx.Client(base_url=server.url, timeout=30)
        api.post("/galleries", json={"name": "bench"}).raise_for_status()
        for name in ("person0", "person2"):
            jpeg = cv2.imencode(".jpg", people[name])[1].tobytes()
            api.post("/galleries/bench/enroll", data={"subject": name},
                     files={"image": ("p.jpg", jpeg, "image/jpeg")}).raise_for_status()
        api.post("/webhooks", json={"url": receiver.url, "secret": secret}).raise_for_status()
        for size in RESOLUTIONS:
            frames = list(render_frames(people, size=size))
            bare = _bare_fps(pipeline, frames[:30])
            for n in STREAMS_QUICK if quick else STREAMS_FULL:
                r = _run_config(server.url, frames, n, receiver, DURATION, TIMELINE)
                lat = sorted(s for kind, s in r["latencies"] if kind == "recognized")
                unknown = [s for kind, s in r["latencies"] if kind == "unknown"]
                p50 = statistics.median(lat) if lat else float("nan")
                p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))] if lat else float("nan")
                u50 = statistics.median(unknown) if unknown else float("nan")
                complete = r["stored"] == r["expected"] == r["correct"] == r["delivered"]
                ok = complete and r["fps"] >= 0.9 * FPS
                rows.append([f"{size[0]}×{size[1]}", n, f"{r['correct']}/{r['expected']}",
                             f"{r['delivered']}/{r['stored']}", round(r["fps"], 2), r["dropped"],
                             round(p50, 2), round(p95, 2), round(u50, 2), round(bare, 1),
                             "yes" if ok else "no"])
                print(rows[-1], flush=True)
    finally:
        server.stop()
        receiver.down()
    return [{
        "title": "Camera monitors: 5 fps streams sustained, event latency",
        "columns": ["resolution", "streams", "right events", "webhooks delivered", "min monitor fps",
                    "frames dropped", "recognized latency p50 s", "p95 s", "unknown latency p50 s",
                    "bare pipeline fps", "sustained"],
        "rows": rows,
        "notes": [
            "One `marginface serve` process (SQLite store, 2 detect threads), N HTTP MJPEG streams of the "
            "test scene at 5 fps (6 appearances each: 4 recognized, 2 unknown), one global webhook to a "
            "local receiver. Sustained = every event stored with the right decision and delivered, "
            "monitors ≥ 4.5 fps.",
            "Latency: the stream server sends the first frame with the face → the webhook arrives. It "
            "includes, by design, the vote over 3 sightings (≥ 0.4 s at 5 fps) and, for unknowns, the "
            "1.5 s wait for better sightings (MARGINFACE_MONITOR_UNKNOWN_WAIT_S).",
            "Bare pipeline fps: detect + align + embed of the same frames in a plain loop, same run (the "
            "peer); bare fps / 5 bounds the streams the CPU could carry.",
            "The CPU (2 cores) was shared with other engineers' jobs while this ran: compare rows of the "
            "same run, not absolute numbers across machines.",
        ],
    }]


if __name__ == "__main__":
    main_for(run, __doc__)
