"""Monitor test fixtures: real photos composed into an H.264 video, a gallery with two enrolled people."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.monitors.media import DURATION, TIMELINE, face_crop, have_ffmpeg, render_frames, write_h264
from tests.server.conftest import encode_jpeg, jpeg_file, make_client, make_settings, pg_url  # noqa: F401

ENROLLED = ("person0", "person2")
ABSENCE_S = 1.5


@pytest.fixture(scope="session")
def people(default_pack: Path, t1_image_path: Path, astronaut_bgr: np.ndarray) -> dict[str, np.ndarray]:
    """Face photos with margin: the six people of t1.jpg (left to right) and the astronaut."""
    from models.pipeline import FacePipeline

    pipeline = FacePipeline.from_pack("default")
    t1 = cv2.imread(str(t1_image_path))
    faces = sorted(pipeline.detect(t1), key=lambda f: f.box[0])
    out = {f"person{i}": face_crop(t1, f.box) for i, f in enumerate(faces)}
    out["astronaut"] = face_crop(astronaut_bgr, pipeline.detect(astronaut_bgr)[0].box)
    return out


@pytest.fixture(scope="session")
def scene_frames(people) -> list[np.ndarray]:
    return list(render_frames(people))


@pytest.fixture(scope="session")
def scene_video(scene_frames, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scene as an H.264 MP4 (FFmpeg); skips when the ffmpeg binary is missing."""
    if not have_ffmpeg():
        pytest.skip("ffmpeg is not installed (scripts/ci/setup_ffmpeg.sh installs it)")
    return write_h264(tmp_path_factory.mktemp("video") / "scene.mp4", scene_frames)


@pytest.fixture
def cam_env(monkeypatch: pytest.MonkeyPatch, scene_video: Path) -> Callable[..., None]:
    """Monitor settings through the environment (as in production), with short timings for tests."""

    def setup(**values) -> None:
        env = {
            "MONITOR_FILE_DIRS": f'["{scene_video.parent}"]',
            "MONITOR_LEASE_S": "3",
            "WEBHOOK_BACKOFF_S": "0.2",
            "WEBHOOK_BACKOFF_MAX_S": "1.0",
            "WEBHOOK_POLL_S": "0.2",
        } | {k.upper(): str(v) for k, v in values.items()}
        for key, value in env.items():
            monkeypatch.setenv(f"MARGINFACE_{key}", value)

    setup()
    return setup


def enroll(client, people: dict[str, np.ndarray], gallery: str = "cam", names=ENROLLED) -> None:
    r = client.post("/galleries", json={"name": gallery})
    assert r.status_code == 201, r.text
    for name in names:
        r = client.post(f"/galleries/{gallery}/enroll", data={"subject": name},
                        files={"image": jpeg_file(encode_jpeg(people[name]))})
        assert r.status_code == 201, r.text


def wait_for(predicate: Callable[[], object], timeout: float, what: str, period: float = 0.2, show=None):
    """Poll ``predicate`` until truthy; on timeout, fail showing ``show()`` (the state that was reached)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(period)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}" + (f": {show()}" if show else ""))


def wait_state(api, monitor: str, state: str, timeout: float) -> dict:
    """Wait until the monitor's health state is ``state`` (``api``: a TestClient or httpx.Client)."""
    return wait_for(lambda: (h := api.get(f"/monitors/{monitor}").json()["health"])["state"] == state and h,
                    timeout, f"monitor {monitor} to be {state}",
                    show=lambda: api.get(f"/monitors/{monitor}").json()["health"])


def expected_counts() -> Counter:
    """One event per appearance: recognized with the name for enrolled people, unknown for the others."""
    return Counter(
        ("recognized", a.who) if a.who in ENROLLED else ("unknown", None) for a in TIMELINE
    )


def check_scene_events(events: list[dict]) -> None:
    """The scene's events: right kinds and names, one per appearance, spaced like the appearances."""
    got = Counter((e["kind"], e["subject"]) for e in events)
    assert got == expected_counts(), got
    for name in ENROLLED:
        starts = sorted(a.start for a in TIMELINE if a.who == name)
        seen = sorted(_t(e["first_seen"]) for e in events if e["subject"] == name)
        # the gap between two appearances in the stream is the gap between their events (±1.5 s: first_seen
        # is when the frame reached the server, and a stream's first second arrives late, after probing)
        assert abs((seen[1] - seen[0]) - (starts[1] - starts[0])) < 1.5, (name, seen, starts)
    for e in events:
        assert e["snapshot_url"] and _t(e["last_seen"]) >= _t(e["first_seen"])
        if e["kind"] == "recognized":
            assert e["similarity"] >= e["details"]["threshold"]


def _t(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp).timestamp()


SCENE_S = DURATION
