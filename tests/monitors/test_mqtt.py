"""MQTT delivery against the real Mosquitto broker (127.0.0.1:1883): events, the retained last person,
Home Assistant discovery validated against the documented MQTT sensor schema; reconnection to a
throwaway broker that is stopped and started again."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import uuid

import pytest

from tests.monitors.conftest import SCENE_S, check_scene_events, enroll, wait_for, wait_state
from tests.server.servers import free_port

BROKER = ("127.0.0.1", 1883)

# Home Assistant MQTT sensor (https://www.home-assistant.io/integrations/sensor.mqtt/): state_topic is the
# only required key; the types of the optional keys used here, and of the device block's keys.
HA_SENSOR_REQUIRED = {"state_topic": str}
HA_SENSOR_OPTIONAL = {
    "name": (str, type(None)), "unique_id": str, "object_id": str, "value_template": str,
    "json_attributes_topic": str, "json_attributes_template": str, "availability_topic": str,
    "payload_available": str, "payload_not_available": str, "icon": str, "device_class": (str, type(None)),
    "unit_of_measurement": str, "state_class": str, "qos": int, "expire_after": int, "force_update": bool,
    "device": dict, "availability": list, "availability_mode": str, "entity_category": str,
    "enabled_by_default": bool, "encoding": str,
}
HA_DEVICE = {"identifiers": (list, str), "name": str, "manufacturer": str, "model": str, "sw_version": str,
             "connections": list, "configuration_url": str, "suggested_area": str, "via_device": str}


def validate_ha_sensor(config: dict) -> None:
    for key, kind in HA_SENSOR_REQUIRED.items():
        assert isinstance(config.get(key), kind), f"{key} is required ({kind})"
    for key, value in config.items():
        assert key in HA_SENSOR_REQUIRED or key in HA_SENSOR_OPTIONAL, f"unknown sensor key {key!r}"
        if key in HA_SENSOR_OPTIONAL:
            assert isinstance(value, HA_SENSOR_OPTIONAL[key]), f"{key}: {type(value).__name__}"
    device = config.get("device", {})
    assert device.get("identifiers") or device.get("connections"), "a device needs identifiers or connections"
    for key, value in device.items():
        assert key in HA_DEVICE and isinstance(value, HA_DEVICE[key]), f"device.{key}"
    for topic_key in ("state_topic", "json_attributes_topic", "availability_topic"):
        if topic_key in config:
            assert "#" not in config[topic_key] and "+" not in config[topic_key]
    if "unique_id" in config:
        assert config["unique_id"].replace("_", "").replace("-", "").isalnum()


def _broker_up(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


class Listener:
    """A paho-mqtt subscriber collecting (topic, payload, retained) in a background loop."""

    def __init__(self, port: int, topics: list[str]) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: [c.subscribe(t, qos=1) for t in topics]
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _client, _userdata, msg) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))

    def on(self, topic: str) -> list[tuple[bytes, bool]]:
        with self.lock:
            return [(p, r) for t, p, r in self.messages if t == topic]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def prefixes() -> tuple[str, str]:
    if not _broker_up(*BROKER):
        pytest.skip("no MQTT broker on 127.0.0.1:1883")
    tag = uuid.uuid4().hex[:10]
    return f"mftest-{tag}", f"hatest-{tag}"


def test_events_person_and_discovery_on_mosquitto(make_client, cam_env, people, scene_video, prefixes):
    prefix, disc = prefixes
    listener = Listener(1883, [f"{prefix}/#", f"{disc}/#"])
    try:
        cam_env(mqtt_url="mqtt://127.0.0.1:1883", mqtt_prefix=prefix, mqtt_discovery_prefix=disc)
        client = make_client()
        enroll(client, people)
        assert client.post("/monitors", json={"name": "porch", "source": str(scene_video), "gallery": "cam",
                                              "absence_s": 1.5}).status_code == 201
        config_topic = f"{disc}/sensor/marginface_porch/person/config"
        wait_for(lambda: listener.on(config_topic), 20, "the discovery config")
        config = json.loads(listener.on(config_topic)[0][0])
        validate_ha_sensor(config)
        assert config["state_topic"] == f"{prefix}/porch/person"
        assert listener.on(f"{prefix}/status")[-1][0] == b"online"
        wait_state(client, "porch", "finished", SCENE_S + 30)
        stored = client.get("/events").json()["events"]
        check_scene_events(stored)
        wait_for(lambda: len(listener.on(f"{prefix}/porch/event")) >= 6, 10, "six MQTT events")
        published = [json.loads(p) for p, _ in listener.on(f"{prefix}/porch/event")]
        assert sorted(e["id"] for e in published) == sorted(e["id"] for e in stored)
        # the retained person state: a new subscriber gets the last one at once
        late = Listener(1883, [f"{prefix}/porch/person"])
        try:
            wait_for(lambda: late.on(f"{prefix}/porch/person"), 10, "the retained person")
            payload, retained = late.on(f"{prefix}/porch/person")[0]
            state = json.loads(payload)
            newest = max(stored, key=lambda e: e["seq"])
            assert retained and state["event_id"] == newest["id"]
            assert state["name"] == (newest["subject"] if newest["kind"] == "recognized" else "unknown")
        finally:
            late.close()
        # deleting the monitor removes its Home Assistant entity (empty retained config)
        client.delete("/monitors/porch")
        wait_for(lambda: listener.on(config_topic)[-1][0] == b"", 15, "the discovery config removal")
    finally:
        listener.close()
        _clear_retained(1883, prefix, disc)


def _clear_retained(port: int, prefix: str, disc: str) -> None:
    import paho.mqtt.publish as publish

    topics = (f"{prefix}/status", f"{prefix}/porch/person", f"{disc}/sensor/marginface_porch/person/config")
    for topic in topics:
        publish.single(topic, b"", retain=True, hostname="127.0.0.1", port=port)


@pytest.mark.skipif(shutil.which("mosquitto") is None and not shutil.os.path.exists("/usr/sbin/mosquitto"),
                    reason="no mosquitto binary for a throwaway broker")
def test_reconnects_to_a_broker_that_comes_back(make_client, cam_env, people, scene_video, tmp_path):
    """A throwaway broker on its own port, down when the events happen, up later: they arrive then."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    cam_env(mqtt_url=f"mqtt://127.0.0.1:{port}", mqtt_prefix="mfr", mqtt_discovery_prefix="")
    client = make_client()
    enroll(client, people)
    assert client.post("/monitors", json={"name": "gate", "source": str(scene_video), "gallery": "cam",
                                          "absence_s": 1.5}).status_code == 201
    wait_state(client, "gate", "finished", SCENE_S + 30)
    assert len(client.get("/events").json()["events"]) == 6
    broker = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _broker_up("127.0.0.1", port), 10, "the broker")
        listener = Listener(port, ["mfr/#"])
        try:
            # events queued while the broker was down are published once the backoff reconnects
            wait_for(lambda: len(listener.on("mfr/gate/event")) == 6, 45, "queued events after reconnection")
        finally:
            listener.close()
    finally:
        broker.terminate()
        broker.wait(10)
    time.sleep(0.1)
