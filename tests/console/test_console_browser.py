"""The console in a real browser (Debian's Chromium via Playwright) against a live server with auth.

Screenshots of the main pages are saved under ``out/test-artifacts/console`` (or
``$MARGINFACE_TEST_ARTIFACTS/console``).
"""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import encode_jpeg

pytestmark = pytest.mark.timeout(300)

XSS = "<img src=x onerror=alert(1)>"


def expect(locator):
    from playwright.sync_api import expect as _expect

    return _expect(locator)


def sign_in(page, live: dict, token: str) -> None:
    page.goto(f"{live['url']}/")
    page.get_by_label("API key").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Galleries", exact=True)).to_be_visible()


def nav(page, name: str):
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name)


def admin_api(live: dict) -> httpx.Client:
    return httpx.Client(
        base_url=live["url"], headers={"Authorization": f"Bearer {live['admin']}"}, timeout=60
    )


def unlabelled_controls(page) -> list[str]:
    """Inputs, selects and textareas with no label (neither <label for> nor aria-label)."""
    return page.evaluate(
        """[...document.querySelectorAll('input, select, textarea')]
             .filter((el) => !el.labels.length && !el.getAttribute('aria-label'))
             .map((el) => el.outerHTML)"""
    )


def shoot(page, shots: Path, name: str, full: bool = True) -> None:
    assert unlabelled_controls(page) == [], name
    page.wait_for_timeout(300)  # let images decode
    page.evaluate("document.getElementById('toast').hidden = true")  # a notice left by the previous step
    page.screenshot(path=str(shots / f"console_{name}.png"), full_page=full)


def test_walkthrough(page, live, t1_bgr, t1_faces, t1_image_path, tmp_path, shots) -> None:
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.goto(f"{live['url']}/")
    assert page.url.endswith("/console/")

    # a wrong key: an error, still signed out
    page.get_by_label("API key").fill("mf_not_a_real_key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown or revoked")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    shoot(page, shots, "signin")

    # the admin key; kept in this tab's sessionStorage, never in a URL
    page.get_by_label("API key").fill(live["admin"])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Galleries", exact=True)).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('marginface.key')") == live["admin"]
    assert page.evaluate("localStorage.length") == 0

    # create a gallery
    page.get_by_label("Name", exact=True).fill("people")
    page.get_by_label("Index kind").select_option("flat")
    page.get_by_role("button", name="Create gallery").click()
    expect(page.get_by_role("heading", name="people")).to_be_visible()

    # enroll three people by file upload, and a group photo that must be refused
    page.get_by_role("link", name="Enroll photos").click()
    expect(page.get_by_role("heading", name="Enroll")).to_be_visible()
    people = {"Alice": 0, "Bob": 2, "Carol": 4}
    accepted = 0
    for name, index in people.items():
        photos = [tmp_path / f"{name.lower()}.jpg"]
        photos[0].write_bytes(t1_faces[index]["crop"])
        if name == "Bob":  # two photos in one go: the same face cropped wider
            photos.append(tmp_path / "bob_wide.jpg")
            photos[1].write_bytes(wide_crop(t1_bgr, t1_faces[index]["box"]))
        page.get_by_label("Subject name").fill(name)
        page.get_by_label("Choose photos").set_input_files([str(p) for p in photos])
        accepted += len(photos)
        expect(page.locator(".result.accepted")).to_have_count(accepted)
    page.get_by_label("Subject name").fill("Group")
    page.get_by_label("Choose photos").set_input_files(str(t1_image_path))
    rejected = page.locator(".result.rejected")
    expect(rejected).to_have_count(1)
    expect(rejected).to_contain_text("multiple_faces")
    expect(rejected.locator(".box")).to_have_count(6)  # the refused photo still shows its faces
    expect(page.locator(".result.accepted .box .label")).to_have_text(["Alice", "Bob", "Bob", "Carol"])
    shoot(page, shots, "enroll")

    # identify the group photo: six boxes, the three enrolled people named on the right faces
    nav(page, "Identify").click()
    page.get_by_label("Gallery", exact=True).select_option("people")
    page.get_by_label("Choose a photo").set_input_files(str(t1_image_path))
    boxes = page.locator(".result-area .box")
    expect(boxes).to_have_count(6)
    placed = sorted(
        (boxes.nth(i).bounding_box()["x"], boxes.nth(i).locator(".label").inner_text()) for i in range(6)
    )
    labels = [label.split(" ")[1] for _, label in placed]  # "3. Bob 0.87" → "Bob"
    assert labels == ["Alice", "unknown", "Bob", "unknown", "Carol", "unknown"], placed
    expect(page.locator(".faces-table tbody tr.match")).to_have_count(3)
    shoot(page, shots, "identify")

    # verify: Alice's photo against the enrolled subject Alice, then against Carol
    nav(page, "Verify").click()
    page.get_by_label("Compare", exact=True).select_option("subject")
    page.get_by_label("Gallery", exact=True).select_option("people")
    page.get_by_label("First photo").set_input_files(str(tmp_path / "alice.jpg"))
    page.get_by_label("Subject", exact=True).fill("Alice")
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.locator(".verdict")).to_contain_text("same person")
    shoot(page, shots, "verify")
    page.get_by_label("Subject", exact=True).fill("Carol")
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.locator(".verdict")).to_contain_text("different people")
    page.get_by_label("Compare", exact=True).select_option("pair")  # two photos of Bob
    page.get_by_label("First photo").set_input_files(str(tmp_path / "bob.jpg"))
    page.get_by_label("Second photo").set_input_files(str(tmp_path / "bob_wide.jpg"))
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(page.locator(".verdict")).to_contain_text("same person")
    expect(page.locator(".pair .box")).to_have_count(2)

    # Bob's page: his faces with their thumbnails (stored crops, fetched with the key); delete one
    nav(page, "Galleries").click()
    page.get_by_role("link", name="people").click()
    page.get_by_role("link", name="Bob").click()
    expect(page.get_by_role("heading", name="Bob")).to_be_visible()
    faces = page.locator("li.face")
    expect(faces).to_have_count(2)
    face_id = faces.first.get_attribute("data-face-id")
    thumb = faces.first.locator(".thumb img")
    expect(thumb).to_be_visible()
    assert thumb.evaluate("img => img.naturalWidth") > 0
    assert thumb.get_attribute("src").startswith("blob:")
    shoot(page, shots, "subject")
    page.get_by_role("button", name=f"Delete face {face_id}").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete face").click()
    expect(page.locator("li.face")).to_have_count(1)
    page.reload()
    expect(page.get_by_role("heading", name="Bob")).to_be_visible()
    expect(page.locator("li.face")).to_have_count(1)
    assert page.locator(f"li.face[data-face-id='{face_id}']").count() == 0
    with admin_api(live) as api:
        left = api.get("/galleries/people/subjects/Bob/faces").json()["faces"]
        assert len(left) == 1 and str(left[0]["id"]) != face_id

    # gallery list, keys (token shown once, then revoked), system
    nav(page, "Galleries").click()
    expect(page.get_by_role("row", name="people")).to_contain_text("flat")
    shoot(page, shots, "galleries")
    nav(page, "Keys").click()
    page.get_by_label("Name", exact=True).fill("ci-script")
    page.get_by_role("button", name="Create key").click()
    token = page.get_by_label("New key token", exact=True).inner_text()
    assert token.startswith("mf_")
    assert (
        httpx.get(f"{live['url']}/keys/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    shoot(page, shots, "keys")
    page.get_by_role("button", name="Revoke key ci-script").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("row", name="ci-script")).to_contain_text("revoked")
    assert (
        httpx.get(f"{live['url']}/keys/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )
    nav(page, "System").click()
    expect(page.get_by_text("Readiness: ready")).to_be_visible()
    expect(page.get_by_role("row", name="people")).to_be_visible()
    shoot(page, shots, "system")

    nav(page, "Cameras").click()
    expect(page.get_by_role("heading", name="Events")).to_be_visible()

    # sign out: the key leaves the tab
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('marginface.key')") is None
    assert not [u for u in urls if live["admin"] in u or token in u]
    assert page.js_errors == [] and page.dialogs == []


def wide_crop(image, box) -> bytes:
    """A second real photo of a face: the group photo cropped with a wider margin around its box."""
    x1, y1, x2, y2 = box
    mx, my = 0.9 * (x2 - x1), 0.9 * (y2 - y1)
    top, left = max(0, int(y1 - my)), max(0, int(x1 - mx))
    return encode_jpeg(image[top : int(y2 + my), left : int(x2 + mx)])


def test_hostile_name_stays_text(page, live, astronaut_jpeg, tmp_path, shots) -> None:
    with admin_api(live) as api:
        assert api.post("/galleries", json={"name": "xss"}).status_code == 201
        r = api.post(
            "/galleries/xss/enroll",
            data={"subject": XSS},
            files={"image": ("astronaut.jpg", astronaut_jpeg, "image/jpeg")},
        )
        assert r.status_code == 201, r.text
        subject_id = r.json()["subject"]["id"]
        meta = {"note": "<script>alert(2)</script>"}
        assert api.patch(f"/galleries/xss/subjects/{subject_id}", json={"metadata": meta}).status_code == 200
    sign_in(page, live, live["admin"])
    page.goto(f"{live['url']}/console/#/galleries/xss")
    expect(page.get_by_role("link", name=XSS)).to_have_text(XSS)
    page.get_by_role("link", name=XSS).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(XSS)
    assert "<script>alert(2)</script>" in page.get_by_label("Metadata (JSON object)").input_value()
    nav(page, "Identify").click()
    page.get_by_label("Gallery", exact=True).select_option("xss")
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(astronaut_jpeg)
    page.get_by_label("Choose a photo").set_input_files(str(photo))
    expect(page.locator(".result-area .box .label")).to_contain_text(XSS)
    expect(page.locator(".faces-table th.name")).to_have_text(XSS)
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("main script").count() == 0
    page.wait_for_timeout(500)
    assert page.dialogs == [], page.dialogs
    assert page.js_errors == []


def test_plain_key_sees_no_admin_controls(page, live, astronaut_jpeg, shots) -> None:
    with admin_api(live) as api:
        api.post("/galleries", json={"name": "readonly"})
        api.post(
            "/galleries/readonly/enroll",
            data={"subject": "Eileen"},
            files={"image": ("a.jpg", astronaut_jpeg, "image/jpeg")},
        )
    sign_in(page, live, live["plain"])
    expect(page.get_by_text("console-plain · plain key")).to_be_visible()
    expect(nav(page, "Keys")).to_be_hidden()
    expect(nav(page, "Enroll")).to_be_hidden()
    expect(page.get_by_role("row", name="readonly")).to_be_visible()
    assert page.get_by_role("button", name="Create gallery").count() == 0
    assert page.get_by_role("button", name="Delete").count() == 0
    page.get_by_role("link", name="readonly").click()
    expect(page.get_by_role("link", name="Eileen")).to_be_visible()
    assert page.get_by_role("link", name="Enroll photos").count() == 0
    assert page.get_by_role("button", name="Add subject").count() == 0
    page.get_by_role("link", name="Eileen").click()
    expect(page.locator("li.face")).to_have_count(1)
    assert page.get_by_role("button").filter(has_text="Delete").count() == 0
    assert page.get_by_role("button", name="Save").count() == 0
    shoot(page, shots, "plain_subject")
    page.goto(f"{live['url']}/console/#/keys")
    expect(page.get_by_text("Managing keys needs an admin key.")).to_be_visible()
    # hidden is not the only guard: the API refuses the plain key
    status = page.evaluate(
        """async () => (await fetch('/galleries/readonly', {method: 'DELETE',
             headers: {Authorization: 'Bearer ' + sessionStorage.getItem('marginface.key')}})).status"""
    )
    assert status == 403
    assert page.js_errors == [] and page.dialogs == []


def test_phone_width(browser, live, shots, t1_image_path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    page = context.new_page()
    try:
        sign_in(page, live, live["admin"])
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways at phone width ({width} px)"
        nav(page, "Identify").click()
        page.get_by_label("Choose a photo").set_input_files(str(t1_image_path))
        expect(page.locator(".result-area .box")).to_have_count(6)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.locator(".result-area").evaluate("el => el.scrollIntoView()")
        shoot(page, shots, "phone", full=False)
    finally:
        context.close()


def test_revoked_key_signs_the_tab_out(page, live) -> None:
    with admin_api(live) as api:
        created = api.post("/keys", json={"name": "short-lived"}).json()
    sign_in(page, live, created["token"])
    with admin_api(live) as api:
        assert api.delete(f"/keys/{created['key']['id']}").status_code == 200
    nav(page, "System").click()
    expect(page.get_by_role("alert")).to_contain_text("refused")
    expect(page.get_by_label("API key")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('marginface.key')") is None


def test_webcam_photo_is_enrolled_or_refused(page, live) -> None:
    """The webcam path end to end with Chromium's fake camera: its test pattern has no face."""
    with admin_api(live) as api:
        api.post("/galleries", json={"name": "webcam"})
    sign_in(page, live, live["admin"])
    nav(page, "Enroll").click()
    page.get_by_label("Gallery", exact=True).select_option("webcam")
    page.get_by_label("Subject name").fill("Someone")
    page.get_by_role("button", name="Use webcam").click()
    expect(page.get_by_label("webcam preview")).to_be_visible()
    # polled from here: wait_for_function would evaluate a string in the page, which the CSP forbids
    for _ in range(100):
        if page.evaluate("document.querySelector('video').videoWidth") > 0:
            break
        page.wait_for_timeout(100)
    page.get_by_role("button", name="Take photo").click()
    expect(page.locator(".result.rejected")).to_contain_text("no_face")
    page.get_by_role("button", name="Close webcam").click()
    expect(page.get_by_label("webcam preview")).to_have_count(0)
    # reopened, then left by navigating: the camera is released
    page.get_by_role("button", name="Use webcam").click()
    expect(page.get_by_label("webcam preview")).to_be_visible()
    tracks = page.evaluate(
        "window.__tracks = document.querySelector('video').srcObject.getTracks(); __tracks.length"
    )
    assert tracks == 1
    nav(page, "Galleries").click()
    expect(page.get_by_role("heading", name="Galleries", exact=True)).to_be_visible()
    assert page.evaluate("window.__tracks.map((t) => t.readyState)") == ["ended"]
    assert page.js_errors == [] and page.dialogs == []


def test_keyboard_only(page, live) -> None:
    """Sign in, reach a page and answer a confirmation with the keyboard alone (Esc keeps, Enter deletes)."""
    with admin_api(live) as api:
        api.post("/galleries", json={"name": "keyboard"})
    page.goto(f"{live['url']}/")
    expect(page.get_by_label("API key")).to_be_focused()  # the page puts the focus there
    page.keyboard.type(live["admin"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Galleries", exact=True)).to_be_visible()
    delete = page.get_by_role("button", name="Delete gallery keyboard")
    delete.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(page.get_by_role("row", name="keyboard")).to_be_visible()
    delete.focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # Cancel → Delete gallery
    expect(page.get_by_role("dialog").get_by_role("button", name="Delete gallery")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("row", name="keyboard")).to_have_count(0)
    with admin_api(live) as api:
        assert api.get("/galleries/keyboard").status_code == 404


def test_subject_search_and_pages(page, live) -> None:
    with admin_api(live) as api:
        api.post("/galleries", json={"name": "crowd"})
        for i in range(30):
            assert api.post("/galleries/crowd/subjects", json={"name": f"member-{i:02d}"}).status_code == 201
    sign_in(page, live, live["admin"])
    page.goto(f"{live['url']}/console/#/galleries/crowd")
    subjects = page.locator("ul.subjects li a")
    expect(subjects).to_have_count(24)
    expect(page.get_by_text("Page 1 · 30 subjects in the gallery")).to_be_visible()
    page.get_by_role("button", name="Next page").click()
    expect(subjects).to_have_text([f"member-{i:02d}" for i in range(24, 30)])
    expect(page.get_by_role("button", name="Next page")).to_be_disabled()
    page.get_by_role("button", name="Previous page").click()
    expect(subjects).to_have_count(24)
    page.get_by_label("Search subjects").fill("ber-2")  # member-20 … member-29, across both pages
    expect(subjects).to_have_text([f"member-{i}" for i in range(20, 30)])
    page.get_by_label("Search subjects").fill("nobody")
    expect(page.get_by_text("No subject matches.")).to_be_visible()
    page.get_by_label("Search subjects").fill("")
    expect(subjects).to_have_count(24)
    assert page.js_errors == []


def test_drop_rename_and_delete_a_subject(page, live, astronaut_jpeg) -> None:
    with admin_api(live) as api:
        api.post("/galleries", json={"name": "crew"})
    sign_in(page, live, live["admin"])
    page.goto(f"{live['url']}/console/#/enroll?gallery=crew")
    page.get_by_label("Subject name").fill("Eileen")
    # drag-and-drop: a real drop event carrying the photo in its DataTransfer
    transfer = page.evaluate_handle(
        """(b64) => {
             const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
             const dt = new DataTransfer();
             dt.items.add(new File([bytes], "astronaut.jpg", { type: "image/jpeg" }));
             return dt;
           }""",
        base64.b64encode(astronaut_jpeg).decode(),
    )
    page.locator(".dropzone").dispatch_event("drop", {"dataTransfer": transfer})
    expect(page.locator(".result.accepted")).to_contain_text("Enrolled as face")
    page.locator(".result.accepted").get_by_role("link", name="Eileen").click()
    expect(page.get_by_role("heading", name="Eileen")).to_be_visible()

    # rename and metadata; a metadata that is not a JSON object is refused here
    page.get_by_label("Metadata (JSON object)").fill("[1, 2]")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("must be a JSON object")
    page.get_by_label("Name", exact=True).fill("Eileen Collins")
    page.get_by_label("Metadata (JSON object)").fill('{"mission": "STS-93"}')
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Eileen Collins")
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Eileen Collins")
    with admin_api(live) as api:
        subject = api.get("/galleries/crew/subjects/Eileen Collins").json()
        assert subject["metadata"] == {"mission": "STS-93"} and subject["faces"] == 1

    # delete the subject: a confirmation, then the gallery page without it
    page.get_by_role("button", name="Delete subject").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete subject").click()
    expect(page.get_by_role("heading", name="crew")).to_be_visible()
    expect(page.get_by_text("No subject yet.")).to_be_visible()
    with admin_api(live) as api:
        assert api.get("/galleries/crew/subjects/Eileen Collins").status_code == 404
        assert api.get("/galleries/crew").json()["faces"] == 0
    assert page.js_errors == [] and page.dialogs == []
