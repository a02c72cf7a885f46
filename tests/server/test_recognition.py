"""Identify, verify and detect through HTTP with real photos, on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64

import cv2
import numpy as np

from tests.server.conftest import encode_jpeg, enroll_t1, jpeg_file


def _scaled_t1(t1_bgr: np.ndarray, scale: float) -> bytes:
    return encode_jpeg(cv2.resize(t1_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))


def _rescaled(jpeg: bytes, scale: float) -> bytes:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return encode_jpeg(cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC))


def _which_t1_face(box: list[float], t1_faces: list[dict], scale: float) -> int:
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]) / scale
    centres = [np.array([(f["box"][0] + f["box"][2]) / 2, (f["box"][1] + f["box"][3]) / 2]) for f in t1_faces]
    return int(np.argmin([np.linalg.norm(centre - c) for c in centres]))


def test_identify_finds_each_enrolled_person_at_another_scale(client, t1_faces, t1_bgr, astronaut_jpeg):
    subject_ids = enroll_t1(client, t1_faces)
    scale = 0.7
    r = client.post(
        "/identify",
        data={"gallery": "t1", "top_k": "3"},
        files={"image": jpeg_file(_scaled_t1(t1_bgr, scale))},
    )
    assert r.status_code == 200, r.text
    faces = r.json()["faces"]
    assert len(faces) == 6
    for face in faces:
        assert len(face["box"]) == 4 and len(face["landmarks"]) == 5 and 0 < face["score"] <= 1
        expected = f"person{_which_t1_face(face['box'], t1_faces, scale)}"
        assert face["match"] is not None, face
        assert face["match"]["name"] == expected
        assert face["match"]["subject_id"] == subject_ids[expected]
        sims = [c["similarity"] for c in face["candidates"]]
        assert len(face["candidates"]) == 3 and sims == sorted(sims, reverse=True)
        assert len({c["subject_id"] for c in face["candidates"]}) == 3  # per subject, not per face

    # someone never enrolled matches nobody
    r = client.post("/identify", data={"gallery": "t1"}, files={"image": jpeg_file(astronaut_jpeg)})
    assert r.status_code == 200
    (face,) = r.json()["faces"]
    assert face["match"] is None and face["candidates"][0]["similarity"] < r.json()["threshold"]


def test_results_are_per_subject_and_deletes_leave_search_at_once(client, t1_faces, t1_bgr):
    enroll_t1(client, t1_faces)
    # a second face of person2 (another scale): still one candidate entry for person2
    r = client.post(
        "/galleries/t1/subjects/person2/faces",
        files={"image": jpeg_file(_rescaled(t1_faces[2]["crop"], 1.5), "again.jpg")},
    )
    assert r.status_code == 201, r.text
    face_id = r.json()["results"][0]["face_id"]
    query = {"image": jpeg_file(t1_faces[2]["crop"])}
    r = client.post("/identify", data={"gallery": "t1", "top_k": "6"}, files=query)
    (face,) = r.json()["faces"]
    assert [c["name"] for c in face["candidates"]].count("person2") == 1
    assert len(face["candidates"]) == 6

    assert client.delete(f"/galleries/t1/faces/{face_id}").status_code == 200
    assert client.delete(f"/galleries/t1/faces/{face_id}").status_code == 404
    r = client.post("/identify", data={"gallery": "t1"}, files=query)
    assert r.json()["faces"][0]["match"]["name"] == "person2"
    assert r.json()["faces"][0]["match"]["face_id"] != face_id

    assert client.delete("/galleries/t1/subjects/person2").status_code == 200
    r = client.post("/identify", data={"gallery": "t1", "top_k": "6"}, files=query)
    (face,) = r.json()["faces"]
    assert "person2" not in [c["name"] for c in face["candidates"]]
    assert face["match"] is None or face["match"]["name"] != "person2"
    assert client.get("/readyz").status_code == 200


def test_verify_pairs_and_against_a_subject(client, t1_faces, t1_bgr):
    same = client.post(
        "/verify",
        files={"image1": jpeg_file(t1_faces[0]["crop"]), "image2": jpeg_file(_scaled_t1(t1_bgr, 0.6))},
        data={"face2": str(_index_of_leftmost_face(client, _scaled_t1(t1_bgr, 0.6)))},
    )
    assert same.status_code == 200, same.text
    body = same.json()
    assert body["match"] is True and body["similarity"] > body["threshold"]
    assert body["face1"]["faces_found"] == 1 and body["face2"]["faces_found"] == 6
    assert len(body["face2"]["landmarks"]) == 5

    different = client.post(
        "/verify",
        json={
            "image1": base64.b64encode(t1_faces[0]["crop"]).decode(),
            "image2": base64.b64encode(t1_faces[3]["crop"]).decode(),
        },
    )
    assert different.status_code == 200
    assert different.json()["match"] is False

    enroll_t1(client, t1_faces)
    r = client.post(
        "/verify",
        data={"gallery": "t1", "subject": "person4"},
        files={"image1": jpeg_file(t1_faces[4]["crop"])},
    )
    assert r.status_code == 200 and r.json()["match"] is True and r.json()["subject"]["name"] == "person4"
    r = client.post(
        "/verify",
        data={"gallery": "t1", "subject": "person4"},
        files={"image1": jpeg_file(t1_faces[1]["crop"])},
    )
    assert r.status_code == 200 and r.json()["match"] is False


def _index_of_leftmost_face(client, image: bytes) -> int:
    faces = client.post("/detect", files={"image": jpeg_file(image)}).json()["faces"]
    return int(np.argmin([f["box"][0] for f in faces]))


def test_detect_and_no_face(client, t1_bgr):
    r = client.post("/detect", files={"image": jpeg_file(encode_jpeg(t1_bgr))}, data={"max_faces": "4"})
    assert r.status_code == 200 and len(r.json()["faces"]) == 4
    blank = encode_jpeg(np.full((200, 200, 3), 127, np.uint8))
    r = client.post("/verify", files={"image1": jpeg_file(blank), "image2": jpeg_file(blank)})
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_face"
