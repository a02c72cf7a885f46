"""Every kind of bad input through the API: the right 4xx and error code, never a 500, store intact."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.server.conftest import encode_jpeg, jpeg_file


def _png_header_claiming(width: int, height: int) -> bytes:
    """A real small PNG whose IHDR is rewritten to declare huge dimensions (a decompression bomb's header)."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = bytes(data[12:16]) + struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr) & 0xFFFFFFFF)
    return bytes(data)


@pytest.fixture
def sqlite_client(make_client, tmp_path):
    return make_client(
        f"sqlite:///{tmp_path / 'bad.db'}",
        max_request_bytes=2_000_000,
        max_image_bytes=1_000_000,
        max_images_per_enroll=3,
    )


@pytest.fixture
def good_jpeg(t1_faces) -> bytes:
    return t1_faces[0]["crop"]


def _expect(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text
    assert response.json()["error"]["message"]


def test_bad_images(sqlite_client, good_jpeg):
    c = sqlite_client
    png = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(png, format="PNG")
    cases = {
        "empty": (b"", 400, "empty_image"),
        "garbage": (b"this is not an image at all" * 10, 400, "corrupt_image"),
        "truncated": (good_jpeg[: len(good_jpeg) // 3], 400, "corrupt_image"),
        "huge_dimensions_header": (_png_header_claiming(100_000, 100_000), 413, "too_many_pixels"),
        "too_many_bytes": (b"\xff\xd8" + b"\x00" * 1_200_000, 413, "image_too_large"),
    }
    for name, (data, status, code) in cases.items():
        r = c.post("/detect", files={"image": (f"{name}.jpg", data, "image/jpeg")})
        assert r.status_code == status and r.json()["error"]["code"] == code, (name, r.text)
    # a valid image without a face
    r = c.post("/detect", files={"image": ("blank.png", png.getvalue(), "image/png")})
    assert r.status_code == 200 and r.json()["faces"] == []


def test_bad_request_shapes(sqlite_client, good_jpeg):
    c = sqlite_client
    b64 = base64.b64encode(good_jpeg).decode()
    _expect(c.post("/detect"), 422, "missing_image")
    _expect(c.post("/detect", json={}), 422, "missing_image")
    _expect(
        c.post("/detect", content=b"{not json", headers={"content-type": "application/json"}),
        400,
        "invalid_json",
    )
    _expect(c.post("/detect", json=[1, 2]), 422, "invalid_request")
    _expect(c.post("/detect", json={"image": "@@@not base64@@@"}), 400, "bad_base64")
    _expect(c.post("/detect", json={"image": 12345}), 422, "invalid_request")
    _expect(c.post("/detect", json={"image": b64, "max_faces": "many"}), 422, "invalid_request")
    _expect(c.post("/detect", json={"image": b64, "max_faces": 0}), 422, "invalid_request")
    _expect(c.post("/detect", json={"image": b64, "surprise": 1}), 422, "invalid_request")
    _expect(
        c.post("/detect", content=b"raw", headers={"content-type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    broken = {"content-type": "multipart/form-data; boundary=x"}
    _expect(c.post("/detect", content=b"--x\r\nbroken", headers=broken), 422, "missing_image")
    no_boundary = {"content-type": "multipart/form-data"}
    _expect(c.post("/detect", content=b"--x\r\nbroken", headers=no_boundary), 400, "bad_multipart")
    _expect(c.post("/detect", files={"other": jpeg_file(good_jpeg)}), 422, "invalid_request")
    _expect(c.post("/verify", files={"image1": jpeg_file(good_jpeg)}), 422, "missing_image")
    _expect(
        c.post("/verify", data={"gallery": "g"}, files={"image1": jpeg_file(good_jpeg)}),
        422,
        "invalid_request",
    )
    _expect(
        c.post(
            "/verify",
            data={"face1": "7"},
            files={"image1": jpeg_file(good_jpeg), "image2": jpeg_file(good_jpeg)},
        ),
        400,
        "bad_face_index",
    )
    _expect(c.post("/identify", files={"image": jpeg_file(good_jpeg)}), 422, "invalid_request")
    _expect(
        c.post("/identify", data={"gallery": "nope"}, files={"image": jpeg_file(good_jpeg)}),
        404,
        "gallery_not_found",
    )
    _expect(
        c.post(
            "/identify", data={"gallery": "nope", "top_k": "1000000"}, files={"image": jpeg_file(good_jpeg)}
        ),
        422,
        "invalid_request",
    )


def test_management_errors_and_store_intact(sqlite_client, good_jpeg, astronaut_jpeg):
    c = sqlite_client
    _expect(c.post("/galleries", json={"name": "bad name/with slash"}), 422, "invalid_request")
    _expect(c.post("/galleries", json={"name": "g", "index": "lsh"}), 422, "invalid_request")
    _expect(c.post("/galleries", json={"name": "g", "pack": "not-loaded"}), 422, "unknown_pack")
    assert c.post("/galleries", json={"name": "g"}).status_code == 201
    _expect(c.post("/galleries", json={"name": "g"}), 409, "gallery_exists")
    _expect(c.get("/galleries/none"), 404, "gallery_not_found")
    _expect(c.delete("/galleries/none"), 404, "gallery_not_found")
    assert c.post("/galleries/g/subjects", json={"name": "ann", "metadata": {"team": "a"}}).status_code == 201
    _expect(c.post("/galleries/g/subjects", json={"name": "ann"}), 409, "subject_exists")
    _expect(c.post("/galleries/g/subjects", json={"name": ""}), 422, "invalid_request")
    _expect(c.post("/galleries/g/subjects", json={"name": "x", "metadata": [1]}), 422, "invalid_request")
    _expect(c.get("/galleries/g/subjects/99999"), 404, "subject_not_found")
    _expect(c.get("/galleries/g/subjects/bob"), 404, "subject_not_found")
    _expect(c.get("/galleries/g/subjects?limit=0"), 422, "invalid_request")
    _expect(c.delete("/galleries/g/faces/424242"), 404, "face_not_found")
    _expect(c.delete("/galleries/g/faces/abc"), 422, "invalid_request")
    _expect(c.get("/no/such/route"), 404, "not_found")
    _expect(c.put("/galleries"), 405, "method_not_allowed")
    _expect(
        c.post("/galleries/g/subjects/bob/faces", files={"image": jpeg_file(good_jpeg)}),
        404,
        "subject_not_found",
    )
    _expect(c.post("/galleries/g/subjects/ann/faces"), 422, "missing_image")

    blank = encode_jpeg(np.full((300, 300, 3), 200, np.uint8))
    files = [
        ("image", ("ok.jpg", good_jpeg, "image/jpeg")),
        ("image", ("blank.jpg", blank, "image/jpeg")),
        ("image", ("broken.jpg", b"garbage", "image/jpeg")),
    ]
    r = c.post("/galleries/g/subjects/ann/faces", files=files)
    assert r.status_code == 201, r.text
    results = r.json()["results"]
    assert "face_id" in results[0]
    assert results[1]["error"]["code"] == "no_face"
    assert (
        results[2]["error"]["code"] == "bad_image" and results[2]["error"]["image_error"] == "corrupt_image"
    )
    _expect(c.post("/galleries/g/subjects/ann/faces", files=[files[1]]), 422, "no_face")
    _expect(c.post("/galleries/g/enroll", data={"subject": "new"}, files=[files[1]]), 422, "no_face")
    assert c.get("/galleries/g/subjects/new").status_code == 404  # no empty subject left behind
    _expect(c.post("/galleries/g/subjects/ann/faces", files=files + files[:1]), 413, "too_many_images")
    _expect(
        c.post("/galleries/g/subjects/ann/faces", json={"images": ["a", "b", "c", "d"]}),
        413,
        "too_many_images",
    )
    face_image = cv2.imdecode(np.frombuffer(good_jpeg, np.uint8), cv2.IMREAD_COLOR)
    tiny = encode_jpeg(cv2.resize(face_image, None, fx=0.15, fy=0.15, interpolation=cv2.INTER_AREA))
    r = c.post("/galleries/g/subjects/ann/faces", files={"image": jpeg_file(tiny)})
    assert r.status_code == 422 and r.json()["error"]["code"] in ("too_small", "no_face")

    # the one good face is the only one stored, and it is searchable
    faces = c.get("/galleries/g/subjects/ann/faces").json()["faces"]
    assert [f["id"] for f in faces] == [results[0]["face_id"]]
    r = c.post("/identify", data={"gallery": "g"}, files={"image": jpeg_file(good_jpeg)})
    assert r.json()["faces"][0]["match"]["name"] == "ann"
    assert c.get("/galleries/g").json()["faces"] == 1
    assert c.get("/readyz").status_code == 200


def test_request_size_limits(sqlite_client, good_jpeg):
    c = sqlite_client
    big = b"\xff" * 2_100_000
    _expect(c.post("/detect", files={"image": jpeg_file(big)}), 413, "request_too_large")

    def chunks():  # no Content-Length: caught while streaming
        for _ in range(30):
            yield b"x" * 100_000

    _expect(
        c.post("/detect", content=chunks(), headers={"content-type": "application/json"}),
        413,
        "request_too_large",
    )
    assert c.post("/detect", files={"image": jpeg_file(good_jpeg)}).status_code == 200
