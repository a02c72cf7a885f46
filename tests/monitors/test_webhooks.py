"""Webhooks against a local receiver that fails, goes down and comes back; kill -9 with deliveries pending."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import httpx

from tests.monitors.conftest import SCENE_S, check_scene_events, enroll, wait_for, wait_state
from tests.monitors.receiver import Receiver
from tests.server.conftest import encode_jpeg
from tests.server.servers import REPO_ROOT, ServerProcess, free_port

SECRET = "s3cret-for-the-test-receiver"


class SseReader:
    """Reads ``text/event-stream`` in a background thread: (id, event JSON) pairs."""

    def __init__(self, url: str, last_event_id: str | None = None) -> None:
        self.events: list[tuple[str, dict]] = []
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        threading.Thread(target=self._read, args=(url, headers), daemon=True).start()

    def _read(self, url: str, headers: dict) -> None:
        try:
            with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(5, read=None)) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                current: dict[str, str] = {}
                for line in response.iter_lines():
                    if not line:
                        if "data" in current:
                            self.events.append((current.get("id", ""), json.loads(current["data"])))
                        current = {}
                    elif not line.startswith(":") and ":" in line:
                        key, _, value = line.partition(":")
                        current[key] = value.strip()
        except httpx.HTTPError:
            pass  # the server went away (kill -9)


def test_every_event_arrives_signed_despite_failures_and_an_outage(make_client, cam_env, people, scene_video):
    cam_env(webhook_max_attempts=10)  # backoff 0.2, 0.4, 0.8, then 1 s: ~8 s, past the 4 s outage
    client = make_client()
    enroll(client, people)
    receiver = Receiver(free_port(), SECRET, fail_first=3).up()
    hook = client.post("/webhooks", json={"url": receiver.url, "secret": SECRET}).json()
    assert hook["secret"] == SECRET
    other = client.post("/webhooks", json={"url": receiver.url, "secret": SECRET, "monitor": "elsewhere"})
    dead_port = free_port()  # nothing ever listens here: its deliveries end in the dead-letter list
    dead = client.post("/webhooks", json={"url": f"http://127.0.0.1:{dead_port}/x"}).json()
    assert other.status_code == 201 and len(dead["secret"]) >= 16
    r = client.post("/monitors", json={"name": "door", "source": str(scene_video), "gallery": "cam",
                                       "absence_s": 1.5})
    assert r.status_code == 201
    wait_for(lambda: receiver.requests >= 3, 20, "the first (failed) deliveries")
    receiver.down()  # the receiver is down for a while
    time.sleep(4.0)
    receiver.up()
    wait_state(client, "door", "finished", SCENE_S + 30)
    events = client.get("/events").json()["events"]
    check_scene_events(events)
    wait_for(lambda: set(receiver.ids()) >= {e["id"] for e in events}, 30, "every event at the receiver")
    assert all(r["signature_ok"] and r["header_id"] == r["event"]["id"] for r in receiver.received)
    # at least once: duplicates are possible in principle, detectable by id; none expected here
    assert len(receiver.ids()) == len(set(receiver.ids())) == 6
    delivered = client.get("/webhooks/deliveries", params={"webhook": hook["id"]}).json()["deliveries"]
    assert {d["state"] for d in delivered} == {"delivered"} and max(d["attempts"] for d in delivered) >= 2
    # the per-monitor webhook of another monitor got nothing; the unreachable one is dead-lettered
    def deliveries(**params) -> list[dict]:
        return client.get("/webhooks/deliveries", params=params).json()["deliveries"]

    assert deliveries(webhook=other.json()["id"]) == []
    dead_letters = wait_for(lambda: len(d := deliveries(state="dead")) == 6 and d, 30, "six dead letters")
    assert all(d["webhook"] == dead["id"] and d["attempts"] == 10 for d in dead_letters)
    assert client.post(f"/webhooks/deliveries/{dead_letters[0]['id']}/retry").status_code == 200
    state = client.get("/webhooks/deliveries", params={"webhook": dead["id"], "state": "pending"}).json()
    assert len(state["deliveries"]) == 1
    receiver.down()


def test_pending_deliveries_survive_kill9(make_settings, default_pack, people, scene_video, tmp_path):
    env = {
        "MARGINFACE_MONITOR_FILE_DIRS": f'["{scene_video.parent}"]',
        "MARGINFACE_WEBHOOK_BACKOFF_S": "0.5",
        "MARGINFACE_WEBHOOK_BACKOFF_MAX_S": "1.0",
        "MARGINFACE_WEBHOOK_POLL_S": "0.2",
        "MARGINFACE_WEBHOOK_MAX_ATTEMPTS": "1000",
        "MARGINFACE_HOME": str(default_pack.parent.parent),
    }
    url = f"sqlite:///{tmp_path / 'store.db'}"
    receiver = Receiver(free_port(), SECRET)  # not up yet: every attempt fails
    first = ServerProcess(url, tmp_path / "server1.log", **env).start()
    try:
        api = httpx.Client(base_url=first.url, timeout=30)
        assert api.post("/galleries", json={"name": "cam"}).status_code == 201
        for name in ("person0", "person2"):
            r = api.post("/galleries/cam/enroll", data={"subject": name},
                         files={"image": ("p.jpg", encode_jpeg(people[name]), "image/jpeg")})
            assert r.status_code == 201, r.text
        assert api.post("/webhooks", json={"url": receiver.url, "secret": SECRET}).status_code == 201
        sse = SseReader(f"{first.url}/events/stream")
        cli = [sys.executable, "-m", "cli.main", "monitors", "--server", first.url]
        added = subprocess.run(cli + ["add", "door", "--source", str(scene_video), "--gallery", "cam",
                                      "--absence", "1.5"], capture_output=True, text=True, cwd=REPO_ROOT)
        assert added.returncode == 0 and "monitor door added" in added.stdout, added.stderr
        refused = subprocess.run(cli + ["add", "door", "--source", str(scene_video), "--gallery", "cam"],
                                 capture_output=True, text=True, cwd=REPO_ROOT)
        assert refused.returncode == 1 and "monitor_exists" in refused.stderr
        wait_state(api, "door", "finished", SCENE_S + 40)
        listing = subprocess.run(cli + ["list"], capture_output=True, text=True, cwd=REPO_ROOT)
        assert listing.returncode == 0 and "door" in listing.stdout and "finished" in listing.stdout
        shown = subprocess.run(cli + ["events", "--kind", "recognized"], capture_output=True, text=True,
                               cwd=REPO_ROOT)
        assert shown.stdout.count("person0") == 2 and "unknown" not in shown.stdout
        deleted = subprocess.run(cli + ["delete", "door"], capture_output=True, text=True, cwd=REPO_ROOT)
        assert deleted.returncode == 0  # so that the restarted server does not watch the file again
        events = api.get("/events").json()["events"]
        assert len(events) == 6
        # server-sent events: each event once, id = seq; a client resuming with Last-Event-ID gets the rest
        wait_for(lambda: len(sse.events) == 6, 10, "six server-sent events")
        assert sorted(e["id"] for _, e in sse.events) == sorted(e["id"] for e in events)
        assert all(str(e["seq"]) == sid for sid, e in sse.events)
        third = sorted(e["seq"] for e in events)[2]
        resumed = SseReader(f"{first.url}/events/stream", last_event_id=str(third))
        wait_for(lambda: len(resumed.events) == 3, 10, "the events after Last-Event-ID")
        assert sorted(e["seq"] for _, e in resumed.events) == sorted(e["seq"] for e in events)[3:]
        pending = wait_for(lambda: [d for d in api.get("/webhooks/deliveries").json()["deliveries"]
                                    if d["state"] == "pending" and d["attempts"] >= 1], 10, "failed attempts")
        assert len(pending) == 6
        first.kill9()
    finally:
        first.stop()
    receiver.up()
    with ServerProcess(url, tmp_path / "server2.log", **env):
        wait_for(lambda: set(receiver.ids()) == {e["id"] for e in events}, 30, "delivery after the restart")
    assert all(r["signature_ok"] for r in receiver.received)
    receiver.down()
