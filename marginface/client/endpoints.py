"""Every endpoint of the API as a builder: arguments in, a ``Call[ResultType]`` out. The sync and async
clients expose each builder as a method (one line each, see ``sync.py`` / ``aio.py``), so a new endpoint is
a function here plus those two lines."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from marginface.client._core import Call, ImageInput, image_part
from marginface.client.types import (
    CreatedKey,
    DetectResult,
    EnrollResult,
    FacePage,
    Gallery,
    IdentifyResult,
    Key,
    Subject,
    SubjectPage,
    VerifyResult,
)


def _p(value: object) -> str:
    return quote(str(value), safe="")


# -- health -------------------------------------------------------------------------------------------
def health() -> Call[dict[str, Any]]:
    """``GET /healthz``: the process is up."""
    return Call("GET", "/healthz")


def ready() -> Call[dict[str, Any]]:
    """``GET /readyz``: packs loaded, store reachable (raises ``Unavailable`` when not ready)."""
    return Call("GET", "/readyz")


def metrics() -> Call[str]:
    """``GET /metrics``: Prometheus text."""
    return Call("GET", "/metrics", decode=lambda r: r.text)


# -- galleries ----------------------------------------------------------------------------------------
def create_gallery(
    name: str, *, pack: str | None = None, index: str | None = None, keep_crops: bool | None = None
) -> Call[Gallery]:
    body: dict[str, Any] = {"name": name}
    for key, value in (("pack", pack), ("index", index), ("keep_crops", keep_crops)):
        if value is not None:
            body[key] = value
    return Call("POST", "/galleries", json=body)


def list_galleries() -> Call[list[Gallery]]:
    return Call("GET", "/galleries", decode=lambda r: r.json()["galleries"])


def get_gallery(name: str) -> Call[Gallery]:
    return Call("GET", f"/galleries/{_p(name)}")


def delete_gallery(name: str) -> Call[dict[str, Any]]:
    return Call("DELETE", f"/galleries/{_p(name)}")


# -- subjects -----------------------------------------------------------------------------------------
def create_subject(gallery: str, name: str, *, metadata: dict[str, Any] | None = None) -> Call[Subject]:
    return Call("POST", f"/galleries/{_p(gallery)}/subjects", json={"name": name, "metadata": metadata or {}})


def list_subjects(gallery: str, *, limit: int = 100, after: int = 0) -> Call[SubjectPage]:
    return Call("GET", f"/galleries/{_p(gallery)}/subjects", params={"limit": limit, "after": after})


def get_subject(gallery: str, subject: str | int) -> Call[Subject]:
    return Call("GET", f"/galleries/{_p(gallery)}/subjects/{_p(subject)}")


def update_subject(
    gallery: str, subject: str | int, *, name: str | None = None, metadata: dict[str, Any] | None = None
) -> Call[Subject]:
    body = {k: v for k, v in (("name", name), ("metadata", metadata)) if v is not None}
    return Call("PATCH", f"/galleries/{_p(gallery)}/subjects/{_p(subject)}", json=body)


def delete_subject(gallery: str, subject: str | int) -> Call[dict[str, Any]]:
    return Call("DELETE", f"/galleries/{_p(gallery)}/subjects/{_p(subject)}")


# -- faces --------------------------------------------------------------------------------------------
def enroll(gallery: str, subject: str, images: ImageInput | list[ImageInput]) -> Call[EnrollResult]:
    """``POST /galleries/{g}/enroll``: one or more photos (one face each) into ``subject`` (created when
    missing). Partial success: each image gets a ``face_id`` or an ``error`` in ``results``."""
    many = images if isinstance(images, list) else [images]
    return Call(
        "POST",
        f"/galleries/{_p(gallery)}/enroll",
        data={"subject": subject},
        files=[image_part("image", i) for i in many],
    )


def add_faces(gallery: str, subject: str | int, images: ImageInput | list[ImageInput]) -> Call[EnrollResult]:
    """``POST /galleries/{g}/subjects/{s}/faces``: photos into an existing subject."""
    many = images if isinstance(images, list) else [images]
    return Call(
        "POST",
        f"/galleries/{_p(gallery)}/subjects/{_p(subject)}/faces",
        files=[image_part("image", i) for i in many],
    )


def list_faces(gallery: str, subject: str | int, *, limit: int = 100, after: int = 0) -> Call[FacePage]:
    path = f"/galleries/{_p(gallery)}/subjects/{_p(subject)}/faces"
    return Call("GET", path, params={"limit": limit, "after": after})


def delete_face(gallery: str, face_id: int) -> Call[dict[str, Any]]:
    return Call("DELETE", f"/galleries/{_p(gallery)}/faces/{int(face_id)}")


def face_crop(gallery: str, face_id: int) -> Call[bytes]:
    """``GET /galleries/{g}/faces/{id}/crop``: the stored aligned crop (image bytes)."""
    return Call("GET", f"/galleries/{_p(gallery)}/faces/{int(face_id)}/crop", decode=lambda r: r.content)


# -- recognition --------------------------------------------------------------------------------------
def detect(image: ImageInput, *, max_faces: int | None = None) -> Call[DetectResult]:
    return Call("POST", "/detect", data={"max_faces": max_faces}, files=[image_part("image", image)])


def identify(
    image: ImageInput,
    gallery: str,
    *,
    top_k: int | None = None,
    threshold: float | None = None,
    max_faces: int | None = None,
) -> Call[IdentifyResult]:
    data = {"gallery": gallery, "top_k": top_k, "threshold": threshold, "max_faces": max_faces}
    return Call("POST", "/identify", data=data, files=[image_part("image", image)])


def verify(
    image1: ImageInput,
    image2: ImageInput | None = None,
    *,
    gallery: str | None = None,
    subject: str | int | None = None,
    face1: int | None = None,
    face2: int | None = None,
    threshold: float | None = None,
) -> Call[VerifyResult]:
    """Two photos, or one photo and an enrolled ``gallery`` + ``subject``."""
    files = [image_part("image1", image1)]
    if image2 is not None:
        files.append(image_part("image2", image2))
    data = {"gallery": gallery, "subject": subject, "face1": face1, "face2": face2, "threshold": threshold}
    return Call("POST", "/verify", data=data, files=files)


# -- keys (admin) -------------------------------------------------------------------------------------
def whoami() -> Call[dict[str, Any]]:
    return Call("GET", "/keys/me")


def list_keys() -> Call[list[Key]]:
    return Call("GET", "/keys", decode=lambda r: r.json()["keys"])


def create_key(name: str, *, admin: bool = False) -> Call[CreatedKey]:
    return Call("POST", "/keys", json={"name": name, "admin": admin})


def revoke_key(key_id: int) -> Call[dict[str, Any]]:
    return Call("DELETE", f"/keys/{int(key_id)}")


# -- trust: calibration and policy (issue 11) --------------------------------------------------------------
def calibrate(
    gallery: str, *, impostors: list[ImageInput] | None = None, **fields: float | bool
) -> Call[dict[str, Any]]:
    """``POST /galleries/{g}/calibrate``: thresholds for ``target_fpir`` / ``target_far`` (``dry_run``,
    ``use_gallery``, ``growth_limit``), optionally with photos of people who are not in the gallery."""
    files = [image_part("impostors", i) for i in impostors or []]
    return Call("POST", f"/galleries/{_p(gallery)}/calibrate", data=dict(fields), files=files or None)


def get_policy(gallery: str) -> Call[dict[str, Any]]:
    return Call("GET", f"/galleries/{_p(gallery)}/policy")


def set_policy(gallery: str, policy: dict[str, Any]) -> Call[dict[str, Any]]:
    return Call("PUT", f"/galleries/{_p(gallery)}/policy", json=policy)


# -- gallery migration (issue 13) -------------------------------------------------------------------------
def migrate_gallery(gallery: str, pack: str, *, wait: bool = False) -> Call[dict[str, Any]]:
    """``POST /galleries/{g}/migrate``: re-embed the stored crops with ``pack`` (202 unless ``wait``)."""
    return Call("POST", f"/galleries/{_p(gallery)}/migrate", json={"pack": pack, "wait": wait})


# -- monitors, events, webhooks (issue 15) ----------------------------------------------------------------
def create_monitor(name: str, source: str, gallery: str, **options: Any) -> Call[dict[str, Any]]:
    """``POST /monitors``: a camera or stream (``fps``, ``min_face``, ``roi``, ``absence_s``, ...)."""
    return Call("POST", "/monitors", json={"name": name, "source": source, "gallery": gallery, **options})


def list_monitors() -> Call[dict[str, Any]]:
    return Call("GET", "/monitors")


def get_monitor(name: str) -> Call[dict[str, Any]]:
    return Call("GET", f"/monitors/{_p(name)}")


def delete_monitor(name: str) -> Call[dict[str, Any]]:
    return Call("DELETE", f"/monitors/{_p(name)}")


def list_events(**filters: Any) -> Call[dict[str, Any]]:
    """``GET /events`` (``monitor``, ``subject``, ``kind``, ``cluster``, ``since``, ``until``, ``after``,
    ``before``, ``limit``)."""
    return Call("GET", "/events", params=filters)


def get_event(event_id: str) -> Call[dict[str, Any]]:
    return Call("GET", f"/events/{_p(event_id)}")


def event_snapshot(event_id: str) -> Call[bytes]:
    return Call("GET", f"/events/{_p(event_id)}/snapshot", decode=lambda r: r.content)


def delete_event(event_id: str) -> Call[dict[str, Any]]:
    return Call("DELETE", f"/events/{_p(event_id)}")


def list_clusters(*, gallery: str | None = None, min_count: int = 2) -> Call[dict[str, Any]]:
    return Call("GET", "/events/clusters", params={"gallery": gallery, "min_count": min_count})


def enroll_cluster(cluster_id: int, name: str) -> Call[dict[str, Any]]:
    return Call("POST", f"/events/clusters/{int(cluster_id)}/enroll", json={"name": name})


def create_webhook(
    url: str, *, secret: str | None = None, monitor: str | None = None
) -> Call[dict[str, Any]]:
    body = {k: v for k, v in (("url", url), ("secret", secret), ("monitor", monitor)) if v is not None}
    return Call("POST", "/webhooks", json=body)


def list_webhooks() -> Call[dict[str, Any]]:
    return Call("GET", "/webhooks")


def delete_webhook(hook_id: int) -> Call[dict[str, Any]]:
    return Call("DELETE", f"/webhooks/{int(hook_id)}")


# -- anything else ------------------------------------------------------------------------------------
def request(method: str, path: str, **kwargs: Any) -> Call[Any]:
    """Any endpoint this client does not name yet (``params``, ``json``, ``data``, ``files``)."""
    return Call(method.upper(), path, decode=_json_or_bytes, **kwargs)


def _json_or_bytes(response: httpx.Response) -> Any:
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()
    return response.content
