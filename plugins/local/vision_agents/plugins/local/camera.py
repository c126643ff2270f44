"""Cameras through FFmpeg (PyAV): a device, a file, a stream URL or a ``lavfi`` test pattern.

Every kind of source goes through the same code: ``resolve_camera`` turns the user's choice
into an FFmpeg input (url, format, options), ``CameraTrack`` opens it and decodes it in a
thread, releasing frames at their timestamps (so files and test patterns play in real time,
like a device) and keeping only the newest few for the reader.
"""

from __future__ import annotations

import asyncio
import errno
import fractions
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import av

from vision_agents.core.utils.live_track import LiveQueueTrack
from vision_agents.plugins.local.errors import (
    DeviceBusyError,
    DeviceError,
    DeviceNotFoundError,
    describe_choices,
)

logger = logging.getLogger(__name__)

_VIDEO_CLOCK = 90000
_KEEP_FRAMES = 3


@dataclass(frozen=True)
class CameraDevice:
    """A camera the OS lists; ``input`` is what FFmpeg opens."""

    index: int
    name: str
    input: str

    def __str__(self) -> str:
        return f"{self.index}: {self.name} ({self.input})"


@dataclass(frozen=True)
class CameraInput:
    """An FFmpeg input: what to open, with which demuxer, and its options."""

    url: str
    format: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    live: bool = True
    """A device or stream (frames come at their own pace) rather than a file or a pattern."""


def camera_format() -> str:
    """FFmpeg's camera input on this OS."""
    if sys.platform.startswith("linux"):
        return "v4l2"
    if sys.platform == "darwin":
        return "avfoundation"
    if sys.platform == "win32":
        return "dshow"
    raise DeviceError(f"no known camera input for platform {sys.platform!r}")


def list_cameras() -> list[CameraDevice]:
    """Cameras the OS lists (Linux: V4L2 nodes with their names from sysfs).

    On macOS and Windows FFmpeg has no listing API; choose a camera by index (macOS) or by
    its name as the OS shows it, and the error for a wrong choice carries FFmpeg's message.
    """
    if not sys.platform.startswith("linux"):
        return []
    cameras = []
    for node in sorted(Path("/sys/class/video4linux").glob("video*")):
        suffix = node.name.removeprefix("video")
        if not suffix.isdigit():
            continue
        try:
            name = (node / "name").read_text().strip()
        except OSError:
            name = node.name
        cameras.append(CameraDevice(int(suffix), name, f"/dev/{node.name}"))
    cameras.sort(key=lambda c: c.index)
    return cameras


def resolve_camera(
    choice: int | str | Path,
    *,
    size: tuple[int, int] | None = (640, 480),
    fps: float | None = 30,
) -> CameraInput:
    """Turn a user's camera choice into an FFmpeg input.

    - an index (``0``, ``"1"``): the OS's camera with that number;
    - ``"lavfi:<graph>"``: an FFmpeg filter source, e.g. ``"lavfi:testsrc2=size=640x480:rate=30"``;
    - a path to an existing file: the file, played in real time;
    - a URL (``rtsp://...``, ``http://...``): the stream;
    - anything else: a camera by (part of) its name.

    ``size`` and ``fps`` are asked of devices only; files and patterns keep their own.
    """
    if isinstance(choice, Path) or (isinstance(choice, str) and os.path.isfile(choice)):
        path = Path(choice)
        if not path.is_file():
            raise DeviceNotFoundError(f"video file not found: {path}")
        return CameraInput(str(path), live=False)
    if isinstance(choice, str) and choice.startswith("lavfi:"):
        return CameraInput(choice.removeprefix("lavfi:"), "lavfi", live=False)
    if isinstance(choice, str) and "://" in choice:
        return CameraInput(choice)
    fmt = camera_format()
    options = _device_options(size, fps)
    if isinstance(choice, int) or choice.strip().isdigit():
        index = int(choice)
        if fmt == "v4l2":
            return CameraInput(f"/dev/video{index}", fmt, options)
        if fmt == "avfoundation":
            return CameraInput(f"{index}:none", fmt, options)
        raise DeviceNotFoundError(
            f"cameras on {sys.platform} are chosen by name (e.g. 'Integrated Camera'), "
            f"got index {index}"
        )
    if fmt == "v4l2":
        if choice.startswith("/dev/"):
            return CameraInput(choice, fmt, options)
        wanted = choice.casefold()
        cameras = list_cameras()
        matches = [c for c in cameras if wanted in c.name.casefold()]
        if not matches:
            raise DeviceNotFoundError(
                f"no camera named {choice!r}; cameras: {describe_choices([str(c) for c in cameras])}"
            )
        return CameraInput(matches[0].input, fmt, options)
    if fmt == "avfoundation":
        return CameraInput(f"{choice}:none", fmt, options)
    return CameraInput(f"video={choice}", fmt, options)


def _device_options(size: tuple[int, int] | None, fps: float | None) -> dict[str, str]:
    options: dict[str, str] = {}
    if size is not None:
        options["video_size"] = f"{size[0]}x{size[1]}"
    if fps is not None:
        options["framerate"] = f"{fps:g}"
    return options


def open_input(source: CameraInput) -> av.container.InputContainer:
    """Open ``source`` with FFmpeg, turning its failures into errors that say what exists."""
    try:
        return av.open(source.url, format=source.format, options=source.options, timeout=10.0)
    except av.FFmpegError as exc:
        cameras = describe_choices([str(c) for c in list_cameras()])
        code = getattr(exc, "errno", None)
        if code == errno.EBUSY:
            raise DeviceBusyError(
                f"camera {source.url!r} is busy (another program is using it); cameras: {cameras}"
            ) from exc
        if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
            raise DeviceNotFoundError(
                f"camera {source.url!r} does not exist; cameras: {cameras}"
            ) from exc
        if code in (errno.EACCES, errno.EPERM):
            raise DeviceBusyError(
                f"no permission to open camera {source.url!r} (on Linux, join the 'video' "
                f"group); cameras: {cameras}"
            ) from exc
        raise DeviceError(
            f"FFmpeg could not open {source.url!r} (format {source.format or 'auto'}): {exc}; "
            f"cameras: {cameras}"
        ) from exc


class CameraTrack(LiveQueueTrack[av.VideoFrame]):
    """A live aiortc video track from any ``CameraInput``.

    ``start()`` opens the input (raising ``DeviceError`` subclasses) and starts the capture
    thread; ``stop()`` ends the track and joins the thread. Frames not pulled in time are
    dropped, oldest first (``dropped`` counts them), as with a real camera.
    """

    def __init__(self, source: CameraInput, *, loop: bool = False) -> None:
        super().__init__("video", keep=_KEEP_FRAMES)
        self.source = source
        self.loop_file = loop
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._container: av.container.InputContainer | None = None

    async def start(self) -> None:
        """Open the input (off the event loop: devices can take a moment) and start capturing."""
        if self._thread is not None:
            return
        self.bind_loop(asyncio.get_running_loop())
        self._container = await asyncio.to_thread(open_input, self.source)
        if not self._container.streams.video:
            self._container.close()
            raise DeviceError(f"{self.source.url!r} has no video stream")
        self._thread = threading.Thread(
            target=self._run, name=f"camera:{self.source.url}", daemon=True
        )
        self._thread.start()

    @property
    def captured(self) -> int:
        """Frames captured so far."""
        return self.produced

    async def _before_recv(self) -> None:
        if self._thread is None:
            await self.start()

    def stop(self) -> None:
        super().stop()
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _deliver(self, frame: av.VideoFrame | None) -> None:
        if not self.deliver(frame):
            self._stop.set()  # the loop is gone: stop capturing

    def _run(self) -> None:
        container = self._container
        assert container is not None
        start = time.monotonic()
        offset = 0.0
        try:
            while not self._stop.is_set():
                offset = self._play(container, start, offset)
                if not self.loop_file or self._stop.is_set():
                    break
                container.close()
                container = self._container = open_input(self.source)
        except Exception:
            logger.exception("camera %s failed", self.source.url)
        finally:
            container.close()
            self._deliver(None)

    def _play(self, container: av.container.InputContainer, start: float, offset: float) -> float:
        """Read the input to its end (or until stopped); returns where a following loop starts."""
        first: float | None = None
        last = offset
        for frame in container.decode(video=0):
            if self._stop.is_set():
                break
            t = frame.time if frame.time is not None else time.monotonic() - start
            first = t if first is None else first
            media_t = offset + t - first
            last = media_t
            if not self.source.live:
                delay = start + media_t - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
            frame.pts = round(media_t * _VIDEO_CLOCK)
            frame.time_base = fractions.Fraction(1, _VIDEO_CLOCK)
            self._deliver(frame)
        return last + 1 / 30
