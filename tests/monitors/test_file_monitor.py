"""A monitor on a video file (paced like a camera): events, snapshots, filters, clusters, enrollment."""

from __future__ import annotations

import time

import cv2
import numpy as np

from tests.monitors.conftest import SCENE_S, check_scene_events, enroll, wait_for, wait_state


def test_file_monitor_events_clusters_and_enroll(make_client, cam_env, people, scene_video):
    cam_env(monitor_detect_max_side=320)  # the 480×360 scene is detected at 320×240, aligned at full size
    client = make_client()
    enroll(client, people)
    r = client.post("/monitors", json={"name": "door", "source": str(scene_video), "gallery": "cam",
                                       "fps": 5, "min_face": 40, "absence_s": 1.5})
    assert r.status_code == 201, r.text
    wait_state(client, "door", "finished", SCENE_S + 30)
    wait_for(lambda: len(client.get("/events").json()["events"]) >= 6, 5, "the last events")
    events = client.get("/events", params={"monitor": "door"}).json()["events"]
    check_scene_events(events)
    health = client.get("/monitors/door").json()["health"]
    assert health["frames_processed"] + health["frames_dropped"] >= 50 and health["last_error"] is None

    # filters
    assert {e["subject"] for e in client.get("/events", params={"subject": "person0"}).json()["events"]} == {
        "person0"}
    unknown = client.get("/events", params={"kind": "unknown"}).json()["events"]
    assert len(unknown) == 2
    newest = events[0]["first_seen"]
    assert len(client.get("/events", params={"since": newest}).json()["events"]) >= 1
    assert client.get("/events", params={"kind": "maybe"}).status_code == 422

    # snapshot: a real JPEG of a face
    snap = client.get(events[0]["snapshot_url"])
    assert snap.status_code == 200 and snap.headers["content-type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(snap.content, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and min(image.shape[:2]) >= 40

    # the stranger came twice: one cluster of two; naming it enrolls them
    clusters = client.get("/events/clusters").json()["clusters"]
    assert len(clusters) == 1 and clusters[0]["count"] == 2, clusters
    assert {unknown[0]["cluster_id"], unknown[1]["cluster_id"]} == {clusters[0]["id"]}
    r = client.post(f"/events/clusters/{clusters[0]['id']}/enroll", json={"name": "astronaut"})
    assert r.status_code == 201, r.text
    assert len(r.json()["face_ids"]) == 2
    photo = cv2.imencode(".jpg", people["astronaut"])[1].tobytes()
    r = client.post("/identify", data={"gallery": "cam"}, files={"image": ("a.jpg", photo, "image/jpeg")})
    assert r.json()["faces"][0]["match"]["name"] == "astronaut"

    # delete: the monitor stops; its events stay until retention or their own delete
    assert client.delete("/monitors/door").status_code == 200
    assert client.get("/monitors/door").status_code == 404
    assert client.delete(f"/events/{events[0]['id']}").status_code == 200
    assert client.get(f"/events/{events[0]['id']}").status_code == 404


def test_poor_first_sightings_do_not_make_an_enrolled_person_unknown(make_client, cam_env, people,
                                                                     scene_video):
    """person0 walks in blurred (detected, but matching nobody) for three frames, then sharp: one event,
    recognized: "unknown" waits for better sightings (MARGINFACE_MONITOR_UNKNOWN_WAIT_S)."""
    from tests.monitors.media import FPS, Appearance, render_frames, write_h264

    timeline = [Appearance("person0", 0.6, 3.4, "left")]
    frames = list(render_frames(people, timeline=timeline, duration=4.0))
    for i in range(3, 6):  # 0.6 s .. 1.2 s: strongly blurred
        frames[i] = cv2.GaussianBlur(frames[i], (0, 0), 6)
    video = write_h264(scene_video.parent / "blurred_entry.mp4", frames)
    client = make_client()
    enroll(client, people)
    assert client.post("/monitors", json={"name": "entry", "source": str(video), "gallery": "cam",
                                          "fps": FPS, "absence_s": 1.5}).status_code == 201
    wait_state(client, "entry", "finished", 30)
    time.sleep(1.5)
    events = client.get("/events", params={"monitor": "entry"}).json()["events"]
    assert [(e["kind"], e["subject"]) for e in events] == [("recognized", "person0")], [
        (e["kind"], e["subject"], e["details"]) for e in events]
