"""Live sources: the scene as RTSP (pushed by FFmpeg to a monitor in FFmpeg's listen mode) and as HTTP
MJPEG (served here); streams that drop and come back; a source that never connects."""

from __future__ import annotations

import time

from tests.monitors.conftest import SCENE_S, check_scene_events, enroll, wait_for, wait_state
from tests.monitors.media import MjpegServer, RtspPusher
from tests.server.servers import free_port


def _monitor(client, name: str, source: str) -> None:
    r = client.post("/monitors", json={"name": name, "source": source, "gallery": "cam", "fps": 5,
                                       "min_face": 40, "absence_s": 1.5})
    assert r.status_code == 201, r.text


def _brief(events: list[dict]) -> list[tuple]:
    return [(e["kind"], e["subject"], e["first_seen"][11:22], e["details"]["frames"]) for e in events]


def _events(client, name: str) -> list[dict]:
    return client.get("/events", params={"monitor": name, "limit": 1000}).json()["events"]


def test_rtsp_stream_in_listen_mode_ends_and_comes_back(make_client, cam_env, people, scene_video, tmp_path):
    client = make_client()
    enroll(client, people)
    url = f"rtsp://127.0.0.1:{free_port()}/live"
    _monitor(client, "rtsp-cam", url.replace("rtsp://", "rtsp-listen://"))
    wait_state(client, "rtsp-cam", "listening", 30)
    pusher = RtspPusher(scene_video, url, tmp_path / "ffmpeg.log").start()
    try:
        pusher.wait(SCENE_S + 30)  # FFmpeg pushes the file once, in real time, then hangs up
        wait_for(lambda: len(_events(client, "rtsp-cam")) >= 6, 10, "six events",
                 show=lambda: (client.get("/monitors/rtsp-cam").json(), _brief(_events(client, "rtsp-cam"))))
        time.sleep(1.0)
        check_scene_events(_events(client, "rtsp-cam"))
        health = wait_for(lambda: (h := client.get("/monitors/rtsp-cam").json()["health"])["state"]
                          == "listening" and h, 15, "the monitor to listen again after the stream ended")
        # every kept frame is processed or, under overload (a shared CPU), dropped and counted
        assert health["frames_processed"] + health["frames_dropped"] >= 45 and health["last_error"]
        # the camera comes back: a second push is watched like the first
        pusher = RtspPusher(scene_video, url, tmp_path / "ffmpeg.log").start()
        pusher.wait(SCENE_S + 30)
        wait_for(lambda: len(_events(client, "rtsp-cam")) >= 12, 10, "twelve events")
        time.sleep(1.0)
        events = sorted(_events(client, "rtsp-cam"), key=lambda e: e["seq"])
        assert len(events) == 12
        check_scene_events(events[6:])
    finally:
        pusher.stop()


def test_mjpeg_stream_drops_and_comes_back(make_client, cam_env, people, scene_frames):
    client = make_client()
    enroll(client, people)
    server = MjpegServer(scene_frames).start()
    try:
        _monitor(client, "mjpeg-cam", server.url)
        # one play, then the camera is gone: its stream ends and reconnections get 503
        health = wait_for(lambda: (h := client.get("/monitors/mjpeg-cam").json()["health"])["state"]
                          == "reconnecting" and h, SCENE_S + 30, "the end of the first play")
        time.sleep(1.0)
        check_scene_events(_events(client, "mjpeg-cam"))
        # 62 frames at 5 fps: the cap keeps (nearly) all; each is processed or dropped (overload) and counted
        assert health["frames_processed"] + health["frames_dropped"] >= 50, health
        connects = health["connects"]
        time.sleep(4.0)
        health = client.get("/monitors/mjpeg-cam").json()["health"]
        assert health["last_error"] and health["connects"] - connects <= 4, health  # backoff, no busy loop
        server.plays = 2  # back: the monitor reconnects and sees the scene again
        wait_for(lambda: server.clients == 2, 40, "the reconnection")
        wait_state(client, "mjpeg-cam", "reconnecting", SCENE_S + 30)
        time.sleep(1.0)
        events = _events(client, "mjpeg-cam")
        second = sorted(events, key=lambda e: e["seq"])[6:]
        assert len(events) == 12
        check_scene_events(second)
        metrics = client.get("/metrics").text
        assert 'marginface_monitor_events_total{monitor="mjpeg-cam"} 12.0' in metrics
        assert 'marginface_monitor_frames_dropped_total{monitor="mjpeg-cam"}' in metrics
    finally:
        server.stop()


def test_source_that_never_connects(make_client, cam_env, people):
    client = make_client()
    enroll(client, people)
    _monitor(client, "nowhere", f"rtsp://127.0.0.1:{free_port()}/none")
    time.sleep(6.0)
    health = client.get("/monitors/nowhere").json()["health"]
    assert health["state"] in ("reconnecting", "connecting"), health
    assert health["last_error"] and health["frames_processed"] == 0
    # exponential backoff (0.5, 1, 2, 4 s ± jitter): a handful of attempts, not a busy loop
    assert 2 <= health["connects"] <= 5, health
    assert client.get("/events", params={"monitor": "nowhere"}).json()["events"] == []


def test_bad_monitor_requests(make_client, cam_env, people, scene_video, tmp_path):
    client = make_client()
    enroll(client, people)
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(scene_video.read_bytes())
    cases = [
        ({"source": str(outside)}, 422, "source_not_allowed"),
        ({"source": str(scene_video.parent / "missing.mp4")}, 422, "source_not_found"),
        ({"gallery": "nope"}, 404, "gallery_not_found"),
        ({"name": "Bad Name"}, 422, "invalid_request"),
        ({"roi": [0.5, 0.5, 0.8, 0.2]}, 422, "invalid_request"),
        ({"fps": 0}, 422, "invalid_request"),
        ({"source": "/dev/videoX"}, 422, "invalid_source"),
    ]
    base = {"name": "ok", "source": str(scene_video), "gallery": "cam"}
    for change, status, code in cases:
        r = client.post("/monitors", json=base | change)
        assert r.status_code == status and r.json()["error"]["code"] == code, (change, r.text)
    assert client.post("/monitors", json=base).status_code == 201
    r = client.post("/monitors", json=base)
    assert r.status_code == 409 and r.json()["error"]["code"] == "monitor_exists"
    assert client.delete("/monitors/ghost").json()["error"]["code"] == "monitor_not_found"
    secret = client.post("/monitors", json=base | {"name": "cred", "source": "rtsp://u:pw@10.0.0.9/s"})
    assert secret.json()["source"] == "rtsp://u:***@10.0.0.9/s"
