"""Beyond the concurrency limit the server answers 503 with Retry-After instead of queueing without bound."""

from __future__ import annotations

import threading

from tests.server.conftest import encode_jpeg, jpeg_file


def test_saturated_server_answers_503_with_retry_after(make_client, tmp_path, t1_bgr):
    client = make_client(f"sqlite:///{tmp_path / 'busy.db'}", max_concurrent_requests=2)
    image = encode_jpeg(t1_bgr)
    barrier = threading.Barrier(10)
    responses = []

    def call() -> None:
        barrier.wait()
        responses.append(client.post("/detect", files={"image": jpeg_file(image)}))

    threads = [threading.Thread(target=call) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 503}
    busy = [r for r in responses if r.status_code == 503]
    assert busy and statuses.count(200) >= 2, statuses
    assert all(r.headers["retry-after"] == "1" and r.json()["error"]["code"] == "busy" for r in busy)
    assert all(len(r.json()["faces"]) == 6 for r in responses if r.status_code == 200)
    assert "marginface_rejected_busy_total" in client.get("/metrics").text
    # once the burst is over, requests are admitted again
    assert client.post("/detect", files={"image": jpeg_file(image)}).status_code == 200
