"""A model-based driver: concurrent clients do random operations on a real server and keep a model of it.

Each client owns its subjects (names ``c<k>-...``) in a shared gallery and galleries of its own, so the
model stays exact while several clients write to the same gallery at once. The model only follows
acknowledged answers; after every batch the server must agree with it (``check``).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

SHARED = "shared"
SAME = 0.9  # similarity of a photo to its own enrolled copy is ~1.0; different people are far below


@dataclass
class Photo:
    identity: int  # -1: no face
    data: bytes


@dataclass
class SubjectModel:
    id: int
    name: str
    owner: int
    faces: dict[int, int] = field(default_factory=dict)  # face id → identity


@dataclass
class World:
    """What the server must hold: gallery → subject id → subject."""

    galleries: dict[str, dict[int, SubjectModel]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    deleted_faces: dict[int, int] = field(default_factory=dict)  # face id → owner
    deleted_subjects: dict[int, int] = field(default_factory=dict)  # subject id → owner
    ever: dict[str, set[int]] = field(default_factory=dict)  # gallery → identities ever enrolled there


class Failure(AssertionError):
    pass


class Client:
    """One concurrent client: a seeded random walk over the operations."""

    def __init__(self, k: int, world: World, photos: list[Photo], base_url, seed: int, strict: bool):
        self.k = k
        self.world = world
        self.photos = photos
        self.faces = [p for p in photos if p.identity >= 0]
        self.base_url = base_url  # callable: the server's current url (it changes across restarts)
        self.rng = random.Random(seed)
        self.strict = strict  # one process: read-your-writes checked right after each write
        self.counts: Counter = Counter()
        self.statuses: Counter = Counter()
        self.errors: list[str] = []
        self.serial = 0

    # plumbing
    def call(self, method: str, path: str, **kwargs) -> httpx.Response:
        with httpx.Client(base_url=self.base_url(), timeout=60) as http:
            r = http.request(method, path, **kwargs)
        self.statuses[r.status_code] += 1
        if r.status_code >= 500:
            raise Failure(f"client {self.k}: {method} {path} → {r.status_code} {r.text[:300]}")
        return r

    def expect(self, condition: bool, message: str) -> None:
        if not condition:
            raise Failure(f"client {self.k}: {message}")

    def mine(self, gallery: str) -> list[SubjectModel]:
        with self.world.lock:
            return [s for s in self.world.galleries.get(gallery, {}).values() if s.owner == self.k]

    def my_galleries(self) -> list[str]:
        with self.world.lock:
            return [g for g in self.world.galleries if g == SHARED or g.startswith(f"c{self.k}-")]

    def new_name(self, what: str) -> str:
        self.serial += 1
        return f"c{self.k}-{what}{self.serial}"

    # operations
    def op_create_gallery(self) -> None:
        if len(self.my_galleries()) > 2:
            return self.op_delete_gallery()
        name = self.new_name("g")
        r = self.call("POST", "/galleries", json={"name": name})
        self.expect(r.status_code == 201, f"create gallery {name}: {r.status_code} {r.text[:200]}")
        with self.world.lock:
            self.world.galleries[name] = {}

    def op_delete_gallery(self) -> None:
        own = [g for g in self.my_galleries() if g != SHARED]
        if not own:
            return
        name = self.rng.choice(own)
        r = self.call("DELETE", f"/galleries/{name}")
        self.expect(r.status_code == 200, f"delete gallery {name}: {r.status_code}")
        with self.world.lock:
            gone = self.world.galleries.pop(name)
            self.world.deleted_subjects.update((sid, self.k) for sid in gone)
            self.world.deleted_faces.update((f, self.k) for s in gone.values() for f in s.faces)

    def op_enroll_new(self) -> None:
        gallery = self.rng.choice(self.my_galleries())
        if len(self.mine(gallery)) >= 12:
            return self.op_delete_subject()
        photo = self.rng.choice(self.photos)
        name = self.new_name("s")
        r = self.call("POST", f"/galleries/{gallery}/enroll", data={"subject": name}, files=_file(photo))
        if photo.identity < 0:
            self.expect(r.status_code == 422, f"enroll without a face: {r.status_code}")
            r2 = self.call("GET", f"/galleries/{gallery}/subjects/{name}")
            self.expect(r2.status_code == 404, f"a rejected enroll left subject {name} behind")
            return
        if r.status_code == 422:  # rejected by a policy (quality): nothing stored
            return
        self.expect(r.status_code == 201, f"enroll {name}: {r.status_code} {r.text[:200]}")
        body = r.json()
        subject = SubjectModel(
            body["subject"]["id"], name, self.k, {body["results"][0]["face_id"]: photo.identity}
        )
        with self.world.lock:
            self.world.galleries[gallery][subject.id] = subject
            self.world.ever.setdefault(gallery, set()).add(photo.identity)
        self.check_findable_now(gallery, subject, photo)

    def op_enroll_existing(self) -> None:
        gallery = self.rng.choice(self.my_galleries())
        subjects = self.mine(gallery)
        if not subjects:
            return self.op_enroll_new()
        subject = self.rng.choice(subjects)
        photo = self.rng.choice(self.faces)
        r = self.call("POST", f"/galleries/{gallery}/subjects/{subject.id}/faces", files=_file(photo))
        if r.status_code == 422:
            return
        self.expect(r.status_code == 201, f"enroll into {subject.name}: {r.status_code} {r.text[:200]}")
        with self.world.lock:
            subject.faces[r.json()["results"][0]["face_id"]] = photo.identity
            self.world.ever.setdefault(gallery, set()).add(photo.identity)
        self.check_findable_now(gallery, subject, photo)

    def op_delete_face(self) -> None:
        gallery = self.rng.choice(self.my_galleries())
        with_faces = [s for s in self.mine(gallery) if s.faces]
        if not with_faces:
            return
        subject = self.rng.choice(with_faces)
        face_id = self.rng.choice(sorted(subject.faces))
        r = self.call("DELETE", f"/galleries/{gallery}/faces/{face_id}")
        self.expect(r.status_code == 200, f"delete face {face_id}: {r.status_code} {r.text[:200]}")
        with self.world.lock:
            identity = subject.faces.pop(face_id)
            self.world.deleted_faces[face_id] = self.k
        if self.strict:  # a delete is a delete: this process never returns it again
            self.check_identity(gallery, identity, only_owner=self.k)

    def op_delete_subject(self) -> None:
        gallery = self.rng.choice(self.my_galleries())
        subjects = self.mine(gallery)
        if not subjects:
            return
        subject = self.rng.choice(subjects)
        r = self.call("DELETE", f"/galleries/{gallery}/subjects/{subject.id}")
        self.expect(r.status_code == 200, f"delete subject {subject.name}: {r.status_code}")
        with self.world.lock:
            del self.world.galleries[gallery][subject.id]
            self.world.deleted_subjects[subject.id] = self.k
            self.world.deleted_faces.update((f, self.k) for f in subject.faces)
        if self.strict:
            for identity in set(subject.faces.values()):
                self.check_identity(gallery, identity, only_owner=self.k)

    def op_rename(self) -> None:
        gallery = self.rng.choice(self.my_galleries())
        subjects = self.mine(gallery)
        if not subjects:
            return
        subject = self.rng.choice(subjects)
        name = self.new_name("r")
        r = self.call("PATCH", f"/galleries/{gallery}/subjects/{subject.id}", json={"name": name})
        self.expect(r.status_code == 200, f"rename {subject.name}: {r.status_code} {r.text[:200]}")
        with self.world.lock:
            subject.name = name

    def op_identify(self) -> None:
        gallery = self.rng.choice(self.my_galleries())
        identity = self.rng.choice(self.faces).identity
        if self.strict:
            self.check_identity(gallery, identity, only_owner=self.k)
        else:
            self.identify(gallery, identity)

    def op_verify(self) -> None:
        gallery = self.rng.choice(self.my_galleries())
        subjects = self.mine(gallery)
        if not subjects:
            return
        subject = self.rng.choice(subjects)
        photo = self.rng.choice(self.faces)
        data = {"gallery": gallery, "subject": str(subject.id)}
        r = self.call("POST", "/verify", data=data, files={"image1": _file(photo)["image"]})
        if not subject.faces:
            self.expect(r.status_code == 409, f"verify against empty {subject.name}: {r.status_code}")
            return
        self.expect(r.status_code == 200, f"verify {subject.name}: {r.status_code} {r.text[:200]}")
        body = r.json()
        own = photo.identity in subject.faces.values()
        self.expect(
            body["subject"]["face_id"] in subject.faces, f"verify used face {body['subject']} not live"
        )
        self.expect(
            (body["similarity"] >= SAME) == own, f"verify {subject.name} with identity {photo.identity}"
        )

    OPS = {
        "enroll_new": 5,
        "enroll_existing": 3,
        "delete_face": 3,
        "delete_subject": 2,
        "rename": 1,
        "identify": 3,
        "verify": 2,
        "create_gallery": 1,
        "delete_gallery": 0.5,
    }

    def run(self, steps: int) -> None:
        names, weights = zip(*self.OPS.items(), strict=True)
        try:
            for _ in range(steps):
                op = self.rng.choices(names, weights)[0]
                getattr(self, f"op_{op}")()
                self.counts[op] += 1
        except Exception as exc:  # noqa: BLE001 - reported by the driver
            self.errors.append(f"{type(exc).__name__}: {exc}")

    # checks
    def identify(self, gallery: str, identity: int) -> list[dict]:
        """Candidates (subject id, name, similarity, face id) for the photo of ``identity``: same person."""
        photo = next(p for p in self.faces if p.identity == identity)
        r = self.call("POST", "/identify", data={"gallery": gallery, "top_k": "100"}, files=_file(photo))
        self.expect(r.status_code == 200, f"identify in {gallery}: {r.status_code} {r.text[:200]}")
        faces = r.json()["faces"]
        self.expect(len(faces) >= 1, "identify found no face")
        largest = max(faces, key=lambda f: (f["box"][2] - f["box"][0]) * (f["box"][3] - f["box"][1]))
        return [c for c in largest["candidates"] if c["similarity"] >= SAME]

    def check_identity(self, gallery: str, identity: int, only_owner: int | None = None) -> None:
        """The server's matches for this identity are exactly the model's live faces of it.

        ``only_owner``: during a batch, judge only that client's subjects (others change concurrently).
        """
        found = self.identify(gallery, identity)
        with self.world.lock:
            subjects = dict(self.world.galleries.get(gallery, {}))
            deleted_faces = dict(self.world.deleted_faces)
            deleted_subjects = dict(self.world.deleted_subjects)

        def judged(owner: int) -> bool:
            return only_owner is None or owner == only_owner

        for c in found:
            if c["face_id"] in deleted_faces and judged(deleted_faces[c["face_id"]]):
                raise Failure(f"client {self.k}: deleted face returned: {c}")
            if c["subject_id"] in deleted_subjects and judged(deleted_subjects[c["subject_id"]]):
                raise Failure(f"client {self.k}: deleted subject returned: {c}")
            subject = subjects.get(c["subject_id"])
            if subject is None:
                self.expect(only_owner is not None, f"unknown subject returned: {c}")
                continue
            if judged(subject.owner):
                self.expect(
                    subject.faces.get(c["face_id"]) == identity, f"{c} is not a live face of {identity}"
                )
                self.expect(c["name"] == subject.name, f"{c} has not the name {subject.name!r}")
        got = {
            c["subject_id"]
            for c in found
            if c["subject_id"] in subjects and judged(subjects[c["subject_id"]].owner)
        }
        expected = {s.id for s in subjects.values() if identity in s.faces.values() and judged(s.owner)}
        self.expect(
            got == expected,
            f"identity {identity} in {gallery}: server {sorted(got)}, model {sorted(expected)}",
        )

    def check_findable_now(self, gallery: str, subject: SubjectModel, photo: Photo) -> None:
        if self.strict:
            found = {c["subject_id"] for c in self.identify(gallery, photo.identity)}
            self.expect(subject.id in found, f"{subject.name} not findable right after its enrollment")


def _file(photo: Photo) -> dict:
    return {"image": ("photo.jpg", photo.data, "image/jpeg")}


class Driver:
    """Batches of concurrent clients, a full check after each batch, restarts between some batches."""

    def __init__(self, servers, photos: list[Photo], clients: int, seed: int, strict: bool) -> None:
        self.servers = servers  # list of Server: clients pick one at random per request
        self.photos = photos
        self.world = World()
        self.rng = random.Random(seed)
        self.clients = [
            Client(k, self.world, photos, self._url_picker(seed * 100 + k), seed * 1000 + k, strict)
            for k in range(clients)
        ]
        self.checker = Client(-1, self.world, photos, self._url_picker(seed * 100 + 99), 0, False)
        self.checks = 0
        self.restarts = 0

    def _url_picker(self, seed: int):
        rng = random.Random(seed)
        return lambda: rng.choice(self.servers).url

    def setup(self) -> None:
        r = httpx.post(f"{self.servers[0].url}/galleries", json={"name": SHARED}, timeout=60)
        assert r.status_code == 201, r.text
        self.world.galleries[SHARED] = {}

    def batch(self, steps: int) -> None:
        threads = [threading.Thread(target=c.run, args=(steps,)) for c in self.clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        errors = [e for c in self.clients for e in c.errors]
        if errors:
            raise Failure("\n".join(errors[:5]))

    def check(self, settle_s: float = 5.0) -> None:
        """Every worker agrees with the model (retried for ``settle_s``: other workers sync in 0.2 s)."""
        deadline = time.monotonic() + settle_s
        checker = self.checker
        while True:
            try:
                self._check_once(checker)
                self.checks += 1
                return
            except Failure:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)

    def _check_once(self, checker: Client) -> None:
        listed = {g["name"] for g in checker.call("GET", "/galleries").json()["galleries"]}
        checker.expect(
            listed == set(self.world.galleries),
            f"galleries {sorted(listed)} ≠ {sorted(self.world.galleries)}",
        )
        for gallery, subjects in self.world.galleries.items():
            body = checker.call("GET", f"/galleries/{gallery}/subjects", params={"limit": 1000}).json()
            server = {s["id"]: s for s in body["subjects"]}
            checker.expect(
                set(server) == set(subjects), f"{gallery}: subjects {sorted(server)} ≠ {sorted(subjects)}"
            )
            for sid, subject in subjects.items():
                checker.expect(server[sid]["name"] == subject.name, f"{gallery}: name of {sid}")
                checker.expect(
                    server[sid]["faces"] == len(subject.faces), f"{gallery}: faces of {subject.name}"
                )
            # every identity ever enrolled here (a deleted one must stay gone) and one never enrolled
            ever = self.world.ever.get(gallery, set())
            never = [p.identity for p in checker.faces if p.identity not in ever][:1]
            for identity in sorted(ever | set(never)):
                checker.check_identity(gallery, identity)
        for server in self.servers:
            for _ in range(server.workers * 2):
                r = httpx.get(f"{server.url}/readyz", timeout=30)
                checker.expect(r.status_code == 200, f"/readyz {r.status_code}: {r.text[:300]}")

    def restart(self) -> None:
        server = self.rng.choice(self.servers)
        server.restart(hard=self.rng.random() < 0.5)
        self.restarts += 1

    def totals(self) -> tuple[Counter, Counter]:
        ops, statuses = Counter(), Counter(self.checker.statuses)
        for c in self.clients:
            ops.update(c.counts)
            statuses.update(c.statuses)
        return ops, statuses
