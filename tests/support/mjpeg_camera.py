"""A network camera for tests: an HTTP MJPEG stream of a real recording.

Serves ``multipart/x-mixed-replace`` JPEG frames (what many IP cameras offer) on a
loopback port, and can be stopped and started again on the same port to play a
camera that drops off the network and comes back.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

from tests.support.net import free_port

BOUNDARY = "frameboundary"


def load_jpegs(video: Path, count: int = 60, width: int = 384) -> list[bytes]:
    capture = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < count:
        ok, image = capture.read()
        if not ok:
            break
        scale = width / image.shape[1]
        image = cv2.resize(image, (width, round(image.shape[0] * scale)))
        frames.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes())
    capture.release()
    return frames


class MjpegCamera:
    """Streams ``jpegs`` in a loop at ``fps`` to every client of ``url``."""

    def __init__(self, jpegs: list[bytes], fps: float = 7.0, port: int | None = None) -> None:
        self.jpegs = jpegs
        self.fps = fps
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self._server: ThreadingHTTPServer | None = None
        self._running = threading.Event()

    def start(self) -> MjpegCamera:
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                index = 0
                try:
                    while camera._running.is_set():
                        jpeg = camera.jpegs[index % len(camera.jpegs)]
                        self.wfile.write(
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n"
                        )
                        index += 1
                        time.sleep(1.0 / camera.fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._running.set()
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Drop every client and stop listening, like a camera losing power."""
        self._running.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
