"""A preview of the agent's video: an OpenCV window where there is a display, else a local page.

OpenCV's "headless" wheels (the ones this SDK installs) have no GUI at all, and a machine
without a display cannot open a window either; ``preview_mode("auto")`` checks both and falls
back to a page served on 127.0.0.1 (an MJPEG stream any browser shows). ``"none"`` only drains
the track.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from typing import Literal

import aiortc
import av

from vision_agents.core.utils.live_track import video_frames
from vision_agents.core.utils.tasks import TaskOwner
from vision_agents.core.utils.video import encode_jpeg

logger = logging.getLogger(__name__)

PreviewMode = Literal["auto", "window", "page", "none"]
_MODES = ("auto", "window", "page", "none")

_PAGE = b"""<!doctype html><meta charset="utf-8"><title>agent video</title>
<body style="margin:0;background:#111"><img src="/stream" style="max-width:100%;display:block;margin:auto">
"""


def window_available() -> bool:
    """True when OpenCV was built with a GUI and there is a display to put a window on."""
    try:
        import cv2
    except ImportError:
        return False
    gui = next(
        (
            line
            for line in cv2.getBuildInformation().splitlines()
            if line.strip().startswith("GUI:")
        ),
        "",
    )
    if not gui or gui.split(":", 1)[1].strip().upper() == "NONE":
        return False
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def preview_mode(mode: str) -> Literal["window", "page", "none"]:
    """Resolve ``mode``; ``"window"`` without a GUI is an error naming the fallbacks."""
    if mode not in _MODES:
        raise ValueError(f"preview must be one of {', '.join(_MODES)}; got {mode!r}")
    if mode == "auto":
        return "window" if window_available() else "page"
    if mode == "window" and not window_available():
        raise RuntimeError(
            "no preview window possible: OpenCV has no GUI (opencv-python-headless) or there is "
            "no display; use preview='page' (a local web page) or preview='none'"
        )
    return "window" if mode == "window" else ("page" if mode == "page" else "none")


class VideoPreview:
    """Shows a video track; ``frames`` counts the frames received, ``latest`` is the newest."""

    def __init__(
        self,
        mode: PreviewMode = "auto",
        *,
        title: str = "agent",
        host: str = "127.0.0.1",
        port: int = 0,
        fps: float = 15,
    ) -> None:
        self.mode = preview_mode(mode)
        self.title = title
        self.frames = 0
        self.latest: av.VideoFrame | None = None
        self._host, self._port = host, port
        self._interval = 1 / fps
        self._tasks = TaskOwner("preview")
        self._server: asyncio.Server | None = None
        self._new_frame = asyncio.Condition()
        self._stop = threading.Event()
        self._window: threading.Thread | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str | None:
        """The page's address in ``"page"`` mode once started."""
        if self._server is None:
            return None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}/"

    async def show(self, track: aiortc.MediaStreamTrack) -> None:
        """Start showing ``track`` (replacing nothing: one track per preview)."""
        if self.mode == "page" and self._server is None:
            self._server = await asyncio.start_server(self._serve, self._host, self._port)
            logger.info("agent video preview at %s", self.url)
        if self.mode == "window" and self._window is None:
            self._window = threading.Thread(target=self._window_loop, name="preview-window")
            self._window.start()
        self._tasks.spawn(self._read(track), "read")

    async def close(self) -> None:
        await self._tasks.close()
        self._stop.set()
        for writer in list(self._clients):
            writer.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None
        if self._window is not None:
            await asyncio.to_thread(self._window.join, 5)
            self._window = None

    async def _read(self, track: aiortc.MediaStreamTrack) -> None:
        async for frame in video_frames(track):
            self.frames += 1
            self.latest = frame
            async with self._new_frame:
                self._new_frame.notify_all()

    def _window_loop(self) -> None:
        import cv2

        from vision_agents.core.utils.video import frame_to_ndarray

        shown = None
        try:
            while not self._stop.is_set():
                frame = self.latest
                if frame is not None and frame is not shown:
                    cv2.imshow(self.title, frame_to_ndarray(frame, "bgr24"))
                    shown = frame
                cv2.waitKey(max(1, int(self._interval * 1000)))
        finally:
            cv2.destroyWindow(self.title)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b"/"
            if path == b"/stream":
                await self._stream_mjpeg(writer)
            elif path == b"/frame.jpg" and self.latest is not None:
                body = encode_jpeg(self.latest)
                writer.write(_head(b"200 OK", b"image/jpeg", len(body)) + body)
            elif path == b"/":
                writer.write(_head(b"200 OK", b"text/html; charset=utf-8", len(_PAGE)) + _PAGE)
            else:
                writer.write(_head(b"404 Not Found", b"text/plain", 9) + b"not found")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            self._clients.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _stream_mjpeg(self, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nConnection: close\r\n"
            b"Content-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n"
        )
        sent = None
        while not self._stop.is_set():
            frame = self.latest
            if frame is None or frame is sent:
                async with self._new_frame:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._new_frame.wait(), 1)
                continue
            body = encode_jpeg(frame)
            writer.write(
                b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
                + b"\r\n"
            )
            await writer.drain()
            sent = frame
            await asyncio.sleep(self._interval)


def _head(status: bytes, content_type: bytes, length: int) -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\nContent-Type: "
        + content_type
        + b"\r\nContent-Length: "
        + str(length).encode()
        + b"\r\nConnection: close\r\n\r\n"
    )
