"""Test media: a short H.264 video made with FFmpeg from real photos (people appear, leave, come back),
pushed as RTSP by FFmpeg to a monitor in FFmpeg's listen mode or as HTTP MJPEG by a small threaded server."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

FPS = 5
SIZE = (480, 360)  # width, height
FACE_W = 150


@dataclass
class Appearance:
    """``who`` is visible from ``start`` to ``end`` seconds, left or right of the frame."""

    who: str
    start: float
    end: float
    side: str  # "left" or "right"


# Two enrolled people (person0, person2 of t1.jpg) and two strangers (the astronaut, person4), each
# appearing twice with gaps longer than the monitors' absence (1.5 s in the tests).
TIMELINE = [
    Appearance("person0", 0.6, 2.8, "left"),
    Appearance("astronaut", 0.6, 2.8, "right"),
    Appearance("person0", 5.2, 7.4, "left"),
    Appearance("person2", 5.2, 7.4, "right"),
    Appearance("astronaut", 9.6, 11.8, "left"),
    Appearance("person2", 9.6, 11.8, "right"),
]
DURATION = 12.4


def have_ffmpeg() -> bool:
    return shutil.which("ffmpeg") is not None


def face_crop(image: np.ndarray, box, margin: float = 0.35) -> np.ndarray:
    x1, y1, x2, y2 = box
    mx, my = margin * (x2 - x1), margin * (y2 - y1)
    h, w = image.shape[:2]
    return image[max(0, int(y1 - my)) : min(h, int(y2 + my)), max(0, int(x1 - mx)) : min(w, int(x2 + mx))]


def render_frames(people: dict[str, np.ndarray], timeline=TIMELINE, duration=DURATION, fps=FPS, size=SIZE):
    """Frames (BGR) of the scene: a plain wall, people pasted in as they come and go, drifting slowly."""
    width, height = size
    rng = np.random.default_rng(0)
    wall = np.full((height, width, 3), (150, 160, 170), np.uint8)
    wall = cv2.add(wall, rng.integers(0, 12, wall.shape, dtype=np.uint8))
    for i in range(int(round(duration * fps))):
        t = i / fps
        frame = wall.copy()
        for a in timeline:
            if a.start <= t < a.end:
                crop = people[a.who]
                scale = FACE_W / crop.shape[1]
                crop = cv2.resize(crop, (FACE_W, int(crop.shape[0] * scale)), interpolation=cv2.INTER_CUBIC)
                drift = int(6 * (t - a.start))
                x = (30 if a.side == "left" else width - FACE_W - 30) + drift
                y = max(0, (height - crop.shape[0]) // 2)
                h = min(crop.shape[0], height - y)
                frame[y : y + h, x : x + FACE_W] = crop[:h]
        yield frame


def write_h264(path: Path, frames, fps: int = FPS, size=SIZE) -> Path:
    """Encode BGR frames to H.264 (libx264, keyframe every second) with the ffmpeg binary."""
    width, height = size
    command = [
        "ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
        "-s", f"{width}x{height}",
        "-r", str(fps), "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        "-g", str(fps), "-pix_fmt", "yuv420p", str(path),
    ]
    proc = subprocess.Popen(command, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    for frame in frames:
        proc.stdin.write(np.ascontiguousarray(frame).tobytes())
    proc.stdin.close()
    assert proc.wait(60) == 0, "ffmpeg failed to encode the test video"
    return path


class RtspPusher:
    """``ffmpeg -re -i video -c copy -f rtsp rtsp://…``: pushes the video, in real time, to an RTSP server in
    listen mode (the monitor: FFmpeg's muxer has no listen mode, its demuxer does). Retries until the
    listener accepts; the stream ends with the video."""

    def __init__(self, video: Path, url: str, log_path: Path) -> None:
        self.video, self.url, self.log_path = video, url, log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> RtspPusher:
        command = ["ffmpeg", "-loglevel", "warning", "-re", "-i", str(self.video), "-c", "copy",
                   "-f", "rtsp", "-rtsp_transport", "tcp", self.url]
        deadline = time.monotonic() + timeout
        while True:
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
            try:
                self.proc.wait(1.5)
            except subprocess.TimeoutExpired:
                return self  # connected and streaming
            if time.monotonic() > deadline:
                raise RuntimeError(f"the RTSP listener never accepted: {self.log_path.read_text()[-500:]}")
            time.sleep(0.5)

    def wait(self, timeout: float) -> None:
        assert self.proc is not None
        self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class MjpegServer:
    """HTTP ``multipart/x-mixed-replace`` MJPEG of the frames at ``fps``, played ``plays`` times (one per
    connection); past that, or while ``down`` is set, requests get 503 and open streams end."""

    def __init__(self, frames: list[np.ndarray], fps: int = FPS, loop: bool = False, plays: int = 1) -> None:
        self.jpegs = [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes() for f in frames]
        self.fps, self.loop, self.plays = fps, loop, plays
        self.down = threading.Event()
        self.clients = 0
        self.play_started: float | None = None  # when the first frame was sent
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                if server.down.is_set() or server.clients >= server.plays:
                    self.send_error(503)
                    return
                server.clients += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                start = time.monotonic()
                i = 0
                try:
                    while not server.down.is_set():
                        if i >= len(server.jpegs):
                            if not server.loop:
                                return
                            i, start = 0, time.monotonic()
                        wait = start + i / server.fps - time.monotonic()
                        if wait > 0:
                            time.sleep(wait)
                        data = server.jpegs[i]
                        if i == 0 and server.play_started is None:
                            server.play_started = time.time()
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
                        self.wfile.write(f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n")
                        i += 1
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> MjpegServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.down.set()
        self.httpd.shutdown()
        self.httpd.server_close()
